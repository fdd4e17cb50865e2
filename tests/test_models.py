"""Models: registry, output shapes, parameter counts, size errors, training, PyTorch parity."""
import numpy as np
import pytest

import tinylesion as tl
from tinylesion import models, nn, optim
from tinylesion.nn import functional as F

import torch_reference as reference

# (width, height) sizes each model accepts; melanoma_cnn needs at least 72x72
SIZES = {
    "logistic_regression": [(20, 12), (9, 7)],
    "dense_nn": [(16, 12), (10, 10)],
    "melanoma_cnn": [(72, 72), (96, 80)],
    "baseline_cnn": [(16, 16), (30, 21)],
    "padua1": [(10, 6), (7, 5)],
    "padua2": [(32, 24), (9, 4)],
    "padua3": [(17, 13), (8, 8)],
    "padua4": [(20, 16), (33, 19)],
    "padua5": [(32, 32), (40, 33)],
}
BINARY_HEADED = {"logistic_regression", "dense_nn", "melanoma_cnn"}


def _batch(size, N=2, dtype=np.float32, seed=0):
    W, H = size
    return tl.Tensor(np.random.default_rng(seed).standard_normal((N, 3, H, W)).astype(dtype))


def test_registry_names_and_defaults():
    assert models.list_models()[:9] == ["logistic_regression", "dense_nn", "melanoma_cnn",
                                        "baseline_cnn", "padua1", "padua2", "padua3", "padua4",
                                        "padua5"]  # then the backbones (tests/test_backbones.py)
    m = models.get_model("padua4")
    assert (m.name, m.num_classes, m.image_size, m.binary) == ("padua4", 7, (100, 75), False)
    assert models.get_model("baseline_cnn").image_size == (128, 128)
    m = models.get_model("melanoma_cnn", image_size="96x80")
    assert (m.num_classes, m.image_size, m.binary) == (2, (96, 80), True)
    assert models.get_model("dense_nn", image_size=(8, 8)).weight_decay > 0


@pytest.mark.parametrize("call, message", [
    (lambda: models.get_model("resnet"), "unknown model 'resnet'"),
    (lambda: models.get_model("padua2", blocks=3), "fixes blocks"),
    (lambda: models.get_model("padua2", dropout=0.3), "no option dropout"),
    (lambda: models.get_model("padua2", num_classes=1), "num_classes must be"),
    (lambda: models.get_model("padua2", image_size="100by75"), "WIDTHxHEIGHT"),
    (lambda: models.get_model("padua2", image_size=(0, 10)), "positive integers"),
    (lambda: models.padua_cnn(blocks=6), "blocks must be an integer from 1 to 5"),
])
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("name", list(SIZES))
@pytest.mark.parametrize("num_classes", [2, 5])
def test_output_shape(name, num_classes):
    for size in SIZES[name]:
        m = models.get_model(name, num_classes=num_classes, image_size=size)
        out = 1 if num_classes == 2 and name in BINARY_HEADED else num_classes
        assert m.binary == (out == 1) and m.num_classes == num_classes
        y = m(_batch(size, N=3))
        assert y.shape == (3, out) and y.dtype == np.float32
        # the config rebuilds the same architecture
        again = models.get_model(name, **m.config)
        assert [p.shape for p in again.parameters()] == [p.shape for p in m.parameters()]


def test_input_of_another_size_is_rejected():
    m = models.get_model("padua2", image_size=(32, 24))
    with pytest.raises(ValueError, match=r"padua2 was built for input \(N, 3, 24, 32\)"):
        m(_batch((24, 32)))


def _conv(C_in, C_out, k):
    return C_in * C_out * k * k + C_out


def _fc(n_in, n_out):
    return n_in * n_out + n_out


def test_parameter_counts_by_hand():
    # padua4 at 100x75: 75x100 → 37x50 → 18x25 → 9x12 → 4x6 after the pools
    padua4 = (_conv(3, 32, 3) + _conv(32, 32, 3) + _conv(32, 64, 3) + _conv(64, 64, 3)
              + _conv(64, 128, 3) + _conv(128, 128, 3) + _conv(128, 256, 3)
              + _conv(256, 256, 3) + _fc(256 * 4 * 6, 512) + _fc(512, 7))
    assert models.get_model("padua4").num_parameters() == padua4 == 4_322_087
    # baseline_cnn at 128x128: 128 → 64 → 32 → 16
    baseline = (_conv(3, 16, 3) + _conv(16, 32, 3) + _conv(32, 64, 3) + _fc(64 * 16 * 16, 512)
                + _fc(512, 7))
    assert models.get_model("baseline_cnn").num_parameters() == baseline == 8_416_295
    # melanoma_cnn at 224: 224 → 112 → 56 → 28, conv stride 3 → 9, pool 3 → 3; BN: 2·C each
    melanoma = (_conv(3, 32, 7) + 2 * 32 + _conv(32, 64, 5) + 2 * 64 + _conv(64, 128, 3)
                + 2 * 128 + _conv(128, 128, 3) + 2 * 128 + _fc(128 * 3 * 3, 512)
                + _fc(512, 32) + _fc(32, 1))
    assert models.get_model("melanoma_cnn").num_parameters() == melanoma == 884_929
    assert models.get_model("logistic_regression", num_classes=7,
                            image_size=(100, 75)).num_parameters() == _fc(3 * 75 * 100, 7)


def test_dense_nn_has_154_421_657_parameters(monkeypatch):
    # NOTE: skipping the random fill leaves the 600 MB of weights as untouched zero pages,
    # so the real model is built in milliseconds.
    monkeypatch.setattr(nn.init, "xavier_uniform_", lambda t, gain=1.0: t)
    m = models.dense_nn()
    assert m.binary and m.num_parameters() == 154_421_657
    assert [p.shape for p in m.parameters()][::2] == [
        (1024, 3 * 224 * 224), (256, 1024), (64, 256), (16, 64), (4, 16), (1, 4)]


@pytest.mark.parametrize("name, size, message", [
    ("melanoma_cnn", (40, 40), r"melanoma_cnn: input 40x40 is too small: layer 18 "
                               r"\(MaxPool2d 3x3\) gets 1x1"),
    ("melanoma_cnn", (71, 200), r"input 71x200 .* layer 18 \(MaxPool2d 3x3\) gets 2x8"),
    ("melanoma_cnn", (16, 20), r"layer 15 \(Conv2d 3x3 stride 3\) gets 2x2"),
    ("melanoma_cnn", (4, 4), r"layer 14 \(MaxPool2d 2x2\) gets 1x1"),
    ("baseline_cnn", (4, 9), r"baseline_cnn: input 4x9 .* layer 8 \(MaxPool2d 2x2\) gets 1x2"),
    ("padua5", (100, 8), r"padua5: input 100x8 .* layer 19 \(MaxPool2d 2x2\) gets 12x1"),
])
def test_too_small_input_names_the_layer(name, size, message):
    with pytest.raises(ValueError, match=message):
        models.get_model(name, image_size=size)


def test_smallest_melanoma_input_runs():
    m = models.get_model("melanoma_cnn", image_size=(72, 72))
    assert m(_batch((72, 72))).shape == (2, 1)


def test_block_dropout_rates_rise():
    m = models.padua_cnn(blocks=3, block_dropout=True, image_size=(16, 16))
    rates = [layer.p for layer in m if isinstance(layer, nn.Dropout)]
    assert rates == [0.1, 0.2, 0.3, 0.5]
    m.eval()
    x = _batch((16, 16))
    np.testing.assert_array_equal(m(x).numpy(), m(x).numpy())


def test_short_training_run_lowers_the_loss():
    tl.manual_seed(0)
    m = models.get_model("padua2", image_size=(32, 24))
    rng = np.random.default_rng(1)
    x = tl.Tensor(rng.standard_normal((8, 3, 24, 32)).astype(np.float32))
    t = rng.integers(0, 7, 8)
    opt = optim.Adam(m.parameters(), lr=1e-3)

    def eval_loss():
        m.eval()
        with tl.no_grad():
            loss = F.cross_entropy(m(x), t).item()
        m.train()
        return loss

    first = eval_loss()
    for _ in range(50):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), t)
        loss.backward()
        opt.step()
    last = eval_loss()
    assert np.isfinite(last) and last < 0.1 * first, (first, last)


def test_binary_model_trains_with_bce():
    tl.manual_seed(0)
    m = models.get_model("logistic_regression", image_size=(8, 6))
    rng = np.random.default_rng(2)
    x = tl.Tensor(rng.standard_normal((32, 3, 6, 8)).astype(np.float32))
    y = rng.integers(0, 2, (32, 1)).astype(np.float32)
    opt = optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(m(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


# ---- PyTorch parity (float64): the models built independently in PyTorch ------------------
# PyTorch's twins (bench/torch_models.py) were run by bench/torch_fixtures.py on the same
# weights and batches, made here by the recipes in tests/torch_reference.py.
MODEL_SEEDS = reference.MODEL_SEEDS


def _model_with_reference_weights(key, name, num_classes, size, **options):
    """The tinylesion model in float64 with the weights PyTorch's twin had, checked to be the
    same architecture (state_dict names and shapes) and the same weights."""
    m = models.get_model(name, num_classes=num_classes, image_size=size, **options).double()
    assert reference.state_layout(m.state_dict()) == list(reference.load(f"{key}/layout"))
    weights = reference.model_weights([(k, v.shape) for k, v in m.state_dict().items()],
                                      MODEL_SEEDS["weights"])
    m.load_state_dict(weights)
    return m, weights


def _reference_batch(key, size, N, weights):
    x = reference.model_input(size, N, MODEL_SEEDS["x"])
    np.testing.assert_allclose(reference.fingerprint(list(weights.values()) + [x]),
                               reference.load(f"{key}/fingerprint"), rtol=1e-12,
                               err_msg="the recipe no longer gives the stored inputs")
    return tl.Tensor(x)


@pytest.mark.parametrize("name, num_classes, size, options", reference.MODEL_CASES)
def test_logits_equal_pytorch_in_eval(name, num_classes, size, options):
    key = reference.model_key(name, num_classes, size, **options)
    m, weights = _model_with_reference_weights(key, name, num_classes, size, **options)
    m.eval()
    x = _reference_batch(key, size, MODEL_SEEDS["N"], weights)
    np.testing.assert_allclose(m(x).numpy(), reference.load(f"{key}/logits"), rtol=1e-10,
                               atol=1e-12)


def test_melanoma_training_step_equals_pytorch():
    """Batch statistics, running-statistics update and every parameter's gradient."""
    key = "melanoma_step"
    m, weights = _model_with_reference_weights(key, "melanoma_cnn", 2, (72, 76))
    m.train()
    x = _reference_batch(key, (72, 76), 4, weights)
    y = reference.load(f"{key}/y")
    loss = F.binary_cross_entropy_with_logits(m(x), y)
    loss.backward()
    np.testing.assert_allclose(loss.item(), reference.load(f"{key}/loss"), rtol=1e-10)
    for name, p in m.named_parameters():
        reference.assert_matches(p.grad.numpy(), f"{key}/grad/{name}", rtol=1e-7, atol=1e-10)
        np.testing.assert_array_equal(p.numpy(), weights[name], err_msg=name)  # unchanged
    for name, value in m.state_dict().items():
        if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            reference.assert_matches(np.asarray(value, np.float64),
                                     f"{key}/buffer/{name}", rtol=1e-10)
