"""nn.Sequential runs a Conv2d followed by a ReLU as one op (the ReLU in the convolution's
output pass): the same outputs and gradients as the two layers apart."""
import numpy as np
import pytest

import kernels
import tinylesion as tl
from tinylesion import nn
from tinylesion.nn import functional as F
from tinylesion.testing import gradcheck


def _model(rng, dtype):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 5, 3), nn.ReLU())
    if dtype == np.float64:
        model.double()
    state = {k: rng.standard_normal(v.shape).astype(dtype)
             for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    return model


def _unfused(model, x):
    for layer in model:
        x = layer(x)
    return x


def test_same_outputs_and_gradients_as_the_layers_apart():
    rng = np.random.default_rng(0)
    model = _model(rng, np.float32)
    x = rng.standard_normal((2, 3, 10, 9)).astype(np.float32)
    results = []
    for run in (model, lambda t: _unfused(model, t)):
        model.zero_grad()
        xt = tl.tensor(x, requires_grad=True)
        y = run(xt)
        (y * tl.tensor(np.arange(y.numel(), dtype=np.float32).reshape(y.shape))).sum().backward()
        results.append([y.numpy(), xt.grad.numpy()] + [p.grad.numpy() for p in model.parameters()])
    for fused, apart in zip(*results):
        np.testing.assert_array_equal(fused, apart)


def test_the_relu_runs_inside_the_convolution(monkeypatch):
    """No separate ReLU op: the fused path is taken (it fails if Sequential called ReLU)."""
    rng = np.random.default_rng(1)
    model = _model(rng, np.float32)

    def refuse(*args, **kwargs):
        raise AssertionError("a separate ReLU ran")

    monkeypatch.setattr(kernels, "relu_forward", refuse)
    y = model(tl.tensor(rng.standard_normal((2, 3, 10, 9)).astype(np.float32)))
    assert y.shape == (2, 5, 3, 2) and float(y.numpy().min()) >= 0
    with pytest.raises(AssertionError, match="separate ReLU"):
        _unfused(model, tl.tensor(np.ones((1, 3, 10, 9), np.float32)))


def test_gradient_finite_differences():
    rng = np.random.default_rng(2)
    model = _model(rng, np.float64)
    x = rng.standard_normal((2, 3, 8, 7))
    assert all(p.dtype == np.float64 for p in model.parameters())
    gradcheck(lambda x: model(x), x, rtol=1e-6)


def test_not_fused_when_a_forward_is_replaced_or_the_layers_differ():
    rng = np.random.default_rng(3)
    model = _model(rng, np.float32)
    seen = []
    conv = model[0]
    inner = conv.forward
    object.__setattr__(conv, "forward", lambda x: seen.append(1) or inner(x))
    x = tl.tensor(rng.standard_normal((1, 3, 10, 9)).astype(np.float32))
    y = model(x)
    assert seen == [1]   # the wrapped forward ran, as Grad-CAM needs
    vars(conv).pop("forward")
    np.testing.assert_array_equal(y.numpy(), model(x).numpy())
    leaky = nn.Sequential(nn.Conv2d(3, 2, 3), nn.LeakyReLU(0.1))
    z = leaky(x).numpy()
    assert (z < 0).any()   # a LeakyReLU is not a ReLU


def test_the_backward_masks_and_sums_in_one_pass(monkeypatch):
    """The ReLU's mask and the bias gradient's channel sums come from one kernel: no separate
    ReLU backward and no separate sums run (and the gradients are those of the layers apart,
    test_same_outputs_and_gradients_as_the_layers_apart)."""
    import kernels.conv as conv

    rng = np.random.default_rng(4)
    model = _model(rng, np.float32)

    def refuse(*args, **kwargs):
        raise AssertionError("a separate pass ran")

    monkeypatch.setattr(kernels, "relu_backward", refuse)
    monkeypatch.setattr(conv, "channel_sums", refuse)
    model(tl.tensor(rng.standard_normal((2, 3, 10, 9)).astype(np.float32))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(AssertionError, match="separate pass"):
        _unfused(model, tl.tensor(np.ones((1, 3, 10, 9), np.float32))).sum().backward()
