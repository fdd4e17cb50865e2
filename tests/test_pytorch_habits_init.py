"""Default initialisation: Linear and Conv2d as PyTorch's (kaiming_uniform_ a=√5, bias
U(±1/√fan_in)); the papers' builders keep Keras' (Glorot-uniform, zero bias), bit for bit."""
import hashlib
import math

import numpy as np
import pytest

import tinylesion as tl
from tinylesion import backend, nn
from tinylesion.models import get_model
from tinylesion.nn.default_init import keras_initialization

# sha256 of every (name, array) of the state_dict after tl.manual_seed(123), and the next
# tl.rand draw, recorded with the builders before the default changed: the papers' models get
# the weights they always had, and leave the generator where they always left it.
PAPER_MODELS = {
    "padua4": (dict(num_classes=7, image_size=(100, 75)),
               "95b90eb0b4135f86c14f00190bab94fa6eb17305b266a0ab965cc8c35974a49a",
               0.3826501965522766),
    "melanoma_cnn": (dict(num_classes=2, image_size=(80, 75)),
                     "d8af0f09e6054b56674072959f54d7702b2d0f894230ea32d23e48a733ee30fa",
                     0.7407029867172241),
    "baseline_cnn": (dict(num_classes=7, image_size=(64, 64)),
                     "0d16fb10ff6eb2a2ed31472f838318d335ee59edf823d4393ba006f8fc76ba39",
                     0.16875165700912476),
    "dense_nn": (dict(num_classes=3, image_size=(12, 10)),
                 "7e439ee95dba629a10348d9866126c3504e0c6160e45c15332c6d2a0415ae265",
                 0.48318052291870117),
    "logistic_regression": (dict(num_classes=2, image_size=(9, 7)),
                            "ff45846039b3710705accbee7bc71386daab7965456631fa84a73d324bf6826c",
                            0.8579966425895691),
}


@pytest.mark.parametrize("name", sorted(PAPER_MODELS))
def test_paper_models_keep_their_keras_weights_bit_for_bit(name):
    config, digest, next_draw = PAPER_MODELS[name]
    tl.manual_seed(123)
    model = get_model(name, **config)
    h = hashlib.sha256()
    for key, value in model.state_dict().items():
        h.update(key.encode())
        h.update(np.ascontiguousarray(backend.to_numpy(getattr(value, "array", value))).tobytes())
    assert h.hexdigest() == digest
    assert float(tl.rand(1).item()) == next_draw
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is not None:
            assert not m.bias.array.any()                       # Keras: zero biases


def _bound(fan_in):
    return 1.0 / math.sqrt(fan_in)


@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Linear(300, 200), 300),
    (lambda: nn.Conv2d(16, 64, 3), 16 * 9),
    (lambda: nn.Conv2d(32, 64, (3, 5), groups=4), 8 * 15),
    (lambda: nn.Conv2d(12, 12, 3, groups=12), 9),
])
def test_layers_initialise_as_pytorch(make, fan_in):
    tl.manual_seed(0)
    layer = make()
    w, b = layer.weight.array.astype(np.float64), layer.bias.array.astype(np.float64)
    bound = _bound(fan_in)
    # weight and bias: U(−1/√fan_in, 1/√fan_in), whose variance is bound²/3
    for values in (w.ravel(), b):
        assert np.all(np.abs(values) <= bound) and np.abs(values).max() > 0.9 * bound
    n = w.size
    assert abs(w.mean()) < 4 * bound / math.sqrt(3 * n)
    assert abs(w.var() / (bound ** 2 / 3) - 1) < 4 * math.sqrt(0.8 / n)
    assert b.any() and abs(b.mean()) < 4 * bound / math.sqrt(3 * b.size) + 1e-12


def test_fan_in_of_each_layer_kind():
    # the largest |w| approaches 1/√fan_in from below, never above
    tl.manual_seed(1)
    for layer, fan_in in ((nn.Linear(7, 500), 7), (nn.Conv2d(2, 400, (3, 2)), 12),
                          (nn.Conv2d(6, 300, 1, groups=3), 2)):
        w = np.abs(layer.weight.array)
        assert w.max() <= _bound(fan_in) and w.max() > 0.97 * _bound(fan_in)
    assert nn.Linear(3, 2, bias=False).bias is None


def test_weights_then_bias_drawn_in_pytorchs_order():
    tl.manual_seed(5)
    layer = nn.Linear(4, 3)
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(layer.weight.array,
                                  rng.uniform(-0.5, 0.5, (3, 4)).astype(np.float32))
    np.testing.assert_array_equal(layer.bias.array, rng.uniform(-0.5, 0.5, 3).astype(np.float32))
    tl.manual_seed(5)
    first_weight, first_bias = layer.weight.array.copy(), layer.bias.array.copy()
    layer.reset_parameters()
    np.testing.assert_array_equal(layer.weight.array, first_weight)
    np.testing.assert_array_equal(layer.bias.array, first_bias)


def test_keras_initialization_block():
    tl.manual_seed(2)
    with keras_initialization():
        layer = nn.Conv2d(4, 8, 3)
        inner = nn.Linear(10, 20)
    after = nn.Linear(10, 20)
    assert not layer.bias.array.any() and not inner.bias.array.any() and after.bias.array.any()
    limit = math.sqrt(6.0 / (10 + 20))                        # Glorot: √(6 / (fan_in + fan_out))
    assert np.abs(inner.weight.array).max() <= limit
    assert np.abs(inner.weight.array).max() > _bound(10)       # wider than PyTorch's bound
