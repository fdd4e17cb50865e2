"""Modules: naming, state_dict, modes, init, batch-norm statistics, and PyTorch parity."""
import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn as nn
import tinylesion.nn.functional as F
from tinylesion.testing import gradcheck

import torch_reference as reference


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.ZeroPad2d(1), nn.Conv2d(4, 6, 3, stride=2), nn.ReLU(), nn.Flatten(),
        nn.Dropout(0.25), nn.Linear(6 * 2 * 2, 5))


def test_sequential_names_and_order():
    model = small_cnn()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "5.weight", "5.bias",
                     "9.weight", "9.bias"]
    assert list(model.state_dict()) == [
        "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
        "1.num_batches_tracked", "5.weight", "5.bias", "9.weight", "9.bias"]
    assert model[0].weight.shape == (4, 3, 3, 3) and model[9].weight.shape == (5, 24)
    assert model(tl.Tensor(np.zeros((2, 3, 8, 8), np.float32))).shape == (2, 5)


def test_keras_initialization_is_glorot_uniform_with_zero_bias():
    # (the default, PyTorch's, is tested in test_pytorch_habits_init.py)
    from tinylesion.nn.default_init import keras_initialization
    tl.manual_seed(0)
    with keras_initialization():
        layer = nn.Linear(300, 200)
        conv = nn.Conv2d(8, 16, 3)
    limit = np.sqrt(6 / 500)
    w = layer.weight.numpy()
    assert w.dtype == np.float32 and abs(w).max() <= limit
    assert abs(w.std() - limit / np.sqrt(3)) < 0.01 * limit
    assert np.all(layer.bias.numpy() == 0)
    assert abs(conv.weight.numpy()).max() <= np.sqrt(6 / (8 * 9 + 16 * 9))


def test_he_normal_std():
    tl.manual_seed(1)
    w = nn.init.he_normal(nn.Parameter(np.zeros((256, 128, 3, 3), np.float32)))
    np.testing.assert_allclose(w.numpy().std(), np.sqrt(2 / (128 * 9)), rtol=0.02)


def test_state_dict_round_trip_and_errors(tmp_path):
    a, b = small_cnn(), small_cnn()
    b.load_state_dict(a.state_dict())
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_array_equal(va, vb, err_msg=k)
    sd = dict(a.state_dict())
    del sd["0.bias"]
    sd["extra.weight"] = np.zeros(2)
    sd["9.weight"] = np.zeros((3, 3))
    with pytest.raises(ValueError) as err:
        b.load_state_dict(sd)
    message = str(err.value)
    assert "0.bias" in message and "extra.weight" in message and "9.weight" in message
    assert "(3, 3)" in message


def test_train_eval_modes_switch_dropout_and_batch_norm():
    model = small_cnn()
    x = tl.Tensor(np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32))
    model.eval()
    assert not model[8].training and not model[1].training
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    model.train()
    assert model[8].training


def test_batch_norm_running_statistics_unbiased():
    bn = nn.BatchNorm2d(3, momentum=0.1)
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 5)) * 2 + 3
    bn(tl.Tensor(x.astype(np.float32)))
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * var, rtol=1e-5)
    assert int(bn.num_batches_tracked.numpy()) == 1


def test_model_gradcheck_float64():
    tl.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 3)).double()
    x = np.random.default_rng(1).standard_normal((2, 2, 4, 4))
    gradcheck(lambda t: model(t), x, rtol=1e-4, atol=1e-6)


def test_layer_errors_name_the_problem():
    with pytest.raises(ValueError, match="channels"):
        nn.Conv2d(3, 4, 3)(tl.Tensor(np.zeros((1, 2, 5, 5), np.float32)))
    with pytest.raises(ValueError, match="smaller than"):
        nn.Conv2d(3, 4, 7)(tl.Tensor(np.zeros((1, 3, 5, 5), np.float32)))
    with pytest.raises(ValueError, match="smaller than"):
        nn.MaxPool2d(3)(tl.Tensor(np.zeros((1, 3, 2, 2), np.float32)))
    with pytest.raises(ValueError, match="features"):
        nn.Linear(5, 2)(tl.Tensor(np.zeros((1, 4), np.float32)))
    with pytest.raises(ValueError, match="class"):
        F.cross_entropy(tl.Tensor(np.zeros((2, 3))), np.array([0, 3]))


def test_matches_pytorch_forward_and_backward():
    # PyTorch's loss, gradients and running statistics: bench/torch_fixtures.py
    model = small_cnn().double()
    model[8].p = 0.0  # dropout is random; switch it off for the comparison
    model.load_state_dict({k: reference.load(f"nn/state/{k}") for k in model.state_dict()})
    x, target, weight = (reference.load(f"nn/{k}") for k in ("x", "target", "weight"))
    loss = F.cross_entropy(model(tl.Tensor(x)), target, weight=weight)
    loss.backward()
    np.testing.assert_allclose(loss.item(), reference.load("nn/loss"), rtol=1e-10)
    for name, p in model.named_parameters():
        reference.assert_matches(p.grad.numpy(), f"nn/grad/{name}", rtol=1e-8, atol=1e-12)
    for name, value in model.state_dict().items():
        if "running" in name:
            reference.assert_matches(value, f"nn/buffer/{name}", rtol=1e-10)


# ---- PyTorch's semantics for the public API ------------------------------------------------
def test_load_state_dict_errors_are_runtime_errors_and_strict_false_names_the_keys():
    a, b = small_cnn(), small_cnn()
    sd = dict(a.state_dict())
    del sd["0.bias"]
    sd["extra"] = np.zeros(2)
    with pytest.raises(RuntimeError, match="missing keys: 0.bias.*unexpected keys: extra"):
        b.load_state_dict(sd)
    result = b.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra"]
    missing, unexpected = result
    assert (missing, unexpected) == (["0.bias"], ["extra"])
    sd = dict(a.state_dict())
    sd["9.bias"] = np.zeros(7)
    with pytest.raises(RuntimeError, match=r"9.bias: checkpoint \(7,\) vs model \(5,\)"):
        b.load_state_dict(sd, strict=False)   # a wrong shape is an error even when not strict


def test_load_state_dict_converts_dtypes_and_takes_tensors():
    model = small_cnn()
    state = {k: (tl.Tensor(v.astype(np.float64)) if v.dtype.kind == "f" else v)
             for k, v in small_cnn().double().state_dict().items()}
    model.load_state_dict(state)
    assert all(v.dtype == np.float32 for k, v in model.state_dict().items()
               if "num_batches" not in k)
    assert model.state_dict()["1.num_batches_tracked"].dtype == np.int64


def test_batch_norm_momentum_none_is_a_cumulative_average():
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(3, momentum=None)
    batches = [rng.standard_normal((5, 3, 2)) * (i + 1) + i for i in range(4)]
    for x in batches:
        bn(tl.Tensor(x))
    means = [x.mean(axis=(0, 2)) for x in batches]
    variances = [x.var(axis=(0, 2), ddof=1) for x in batches]
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean(means, axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), np.mean(variances, axis=0), rtol=1e-5)


def test_flatten_layer_range_and_zero_grad_to_zeros():
    x = tl.Tensor(np.zeros((2, 3, 4, 5)))
    assert nn.Flatten()(x).shape == (2, 60) and nn.Flatten(1, 2)(x).shape == (2, 12, 5)
    assert nn.Flatten(0)(x).shape == (120,)
    model = nn.Linear(3, 2)
    model(tl.Tensor(np.ones((1, 3), np.float32))).sum().backward()
    model.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(model.weight.grad.numpy(), 0)
    model.zero_grad()
    assert model.weight.grad is None


def test_pytorch_argument_forms_of_the_layers():
    x = tl.Tensor(np.random.default_rng(0).standard_normal((2, 3, 7, 6)).astype(np.float32))
    tl.manual_seed(0)
    plain = nn.Conv2d(3, 4, 3, 1, 1, bias=False)
    tl.manual_seed(0)
    # PyTorch's order: stride, padding, dilation, groups, bias, padding_mode
    torch_style = nn.Conv2d(3, 4, (3, 3), (1, 1), (1, 1), 1, 1, False, "zeros")
    assert torch_style.bias is None
    np.testing.assert_array_equal(plain(x).numpy(), torch_style(x).numpy())
    assert nn.MaxPool2d(2, 2, 0, 1, False, False)(x).shape == (2, 3, 3, 3)
    relu, dropout = nn.ReLU(inplace=True), nn.Dropout(p=0.5, inplace=True).eval()
    np.testing.assert_array_equal(relu(x).numpy(), np.maximum(x.numpy(), 0))
    np.testing.assert_array_equal(dropout(x).numpy(), x.numpy())
    for make, named in [(lambda: nn.Conv2d(3, 4, 3, dilation=2), "dilation=2"),
                        (lambda: nn.Conv2d(3, 4, 3, padding_mode="reflect"), "padding_mode"),
                        (lambda: nn.MaxPool2d(2, return_indices=True), "return_indices")]:
        with pytest.raises(NotImplementedError, match=named):
            make()


def test_functional_takes_pytorch_keyword_names():
    rng = np.random.default_rng(1)
    x = tl.Tensor(rng.standard_normal((2, 3, 6, 5)).astype(np.float32))
    W = tl.Tensor(rng.standard_normal((4, 3, 3, 2)).astype(np.float32))
    np.testing.assert_array_equal(
        F.conv2d(input=x, weight=W, bias=None, stride=(2, 1), padding=1, dilation=1,
                 groups=1).numpy(), F.conv2d(x, W, None, (2, 1), 1).numpy())
    np.testing.assert_array_equal(F.max_pool2d(input=x, kernel_size=2, stride=1).numpy(),
                                  F.max_pool2d(x, 2, 1).numpy())
    rows = x.reshape(18, 10)
    np.testing.assert_array_equal(F.linear(input=rows, weight=rows).numpy(),
                                  F.linear(rows, rows).numpy())
    np.testing.assert_array_equal(F.relu(input=x, inplace=True).numpy(), F.relu(x).numpy())
    np.testing.assert_array_equal(F.dropout(input=x, p=0.5, training=False).numpy(), x.numpy())
    np.testing.assert_array_equal(F.softmax(input=rows, dim=0).numpy(),
                                  F.softmax(rows, 0).numpy())
    target = np.arange(18) % 10
    assert F.cross_entropy(input=rows, target=target).item() == \
        F.cross_entropy(rows, target).item()
    with pytest.raises(ValueError, match="groups=3 expects 9"):
        F.conv2d(x, W, groups=3)


def test_batch_norm_takes_running_statistics_as_arrays_or_tensors():
    x = tl.Tensor(np.random.default_rng(2).standard_normal((4, 3, 5, 5)).astype(np.float32))
    mean_array, var_array = np.zeros(3, np.float32), np.ones(3, np.float32)
    mean_tensor, var_tensor = tl.Tensor(mean_array), tl.Tensor(var_array)
    y_array = F.batch_norm(x, mean_array, var_array, training=True, momentum=0.5)
    y_tensor = F.batch_norm(x, mean_tensor, var_tensor, training=True, momentum=0.5)
    np.testing.assert_array_equal(y_array.numpy(), y_tensor.numpy())
    np.testing.assert_array_equal(mean_array, mean_tensor.numpy())  # updated in place
    assert not np.all(mean_array == 0)
    np.testing.assert_array_equal(F.batch_norm(x, mean_array, var_array).numpy(),
                                  F.batch_norm(x, mean_tensor, var_tensor).numpy())
    with pytest.raises(ValueError, match="needs running_mean and running_var"):
        F.batch_norm(x, None, None, training=False)


def test_zero_pad_with_two_numbers_pads_the_width_as_pytorch():
    x = tl.Tensor(np.ones((1, 1, 2, 3), np.float32))
    y = nn.ZeroPad2d((1, 2))(x).numpy()
    assert y.shape == (1, 1, 2, 6) and y[..., 0].sum() == 0 and y[..., 4:].sum() == 0
    with pytest.raises(ValueError, match="padding"):
        nn.ZeroPad2d((1, 2, 3))(x)


def test_sequential_from_an_ordered_dict_and_module_to_dtype():
    from collections import OrderedDict
    model = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 2, 3)), ("act", nn.ReLU())]))
    assert list(model.state_dict()) == ["conv.weight", "conv.bias"]
    with pytest.raises(TypeError, match="at key 'act'"):
        nn.Sequential({"conv": nn.Conv2d(1, 2, 3), "act": "relu"})
    assert model.to(tl.float64) is model and model.conv.weight.dtype == np.float64
    assert model.to("cpu", np.float32).conv.bias.dtype == np.float32
    with pytest.raises(TypeError, match="neither a device"):
        model.to(3)
    with pytest.raises(TypeError, match="floating-point"):
        model.to(np.int64)
