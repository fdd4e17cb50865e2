"""Grouped and depthwise convolution through F.conv2d and nn.Conv2d: float64 gradient checks,
PyTorch's stored results, the module's arguments, shapes and errors."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tinylesion as tl
from tinylesion import nn
from tinylesion.nn import functional as F
from tinylesion.testing import gradcheck

import torch_reference as reference


def conv(groups, stride, padding, bias=True):
    if bias:
        return lambda x, W, b: F.conv2d(x, W, b, stride, padding, groups=groups)
    return lambda x, W: F.conv2d(x, W, None, stride, padding, groups=groups)


# (x shape, W shape, stride, padding, groups): the models' layers at small sizes (MobileNetV2's
# 3x3 depthwise at stride 1 and 2, EfficientNet's 5x5 at stride 2, a channel multiplier of 2),
# then general groups with odd sizes
CASES = [
    ((2, 4, 7, 7), (4, 1, 3, 3), 1, 1, 4),
    ((2, 3, 8, 9), (3, 1, 3, 3), 2, 1, 3),
    ((1, 3, 9, 8), (3, 1, 5, 5), 2, 2, 3),
    ((2, 2, 5, 6), (4, 1, 3, 3), 1, 0, 2),
    ((1, 4, 7, 6), (6, 2, 3, 2), (2, 1), (1, 0), 2),
    ((2, 6, 5, 5), (3, 2, 3, 3), 1, 2, 3),
]


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,groups", CASES)
def test_gradcheck(x_shape, w_shape, stride, padding, groups, rng, device):
    gradcheck(conv(groups, stride, padding), rng.standard_normal(x_shape),
              rng.standard_normal(w_shape), rng.standard_normal(w_shape[0]), device=device)


@st.composite
def grouped_cases(draw):
    groups = draw(st.integers(1, 3))
    Cg, Fg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    K = draw(st.integers(1, 4))
    S, P = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    H = max(1, K - 2 * P) + draw(st.integers(0, 4))
    W = max(1, K - 2 * P) + draw(st.integers(0, 4))
    return ((draw(st.integers(1, 2)), groups * Cg, H, W), (groups * Fg, Cg, K, K), S, P, groups,
            draw(st.integers(0, 999)))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grouped_cases())
def test_gradcheck_drawn(case):
    x_shape, w_shape, stride, padding, groups, seed = case
    rng = np.random.default_rng(seed)
    gradcheck(conv(groups, stride, padding, bias=False), rng.standard_normal(x_shape),
              rng.standard_normal(w_shape))


@pytest.mark.parametrize("case", reference.cases("grouped_conv"))
def test_matches_torch(case):
    load = lambda name: reference.load(f"grouped_conv/{case}/{name}")
    x = tl.Tensor(load("x"), requires_grad=True)
    W = tl.Tensor(load("W"), requires_grad=True)
    b = tl.Tensor(load("b"), requires_grad=True)
    stride, padding = tuple(load("stride")), tuple(load("padding"))
    y = F.conv2d(x, W, b, stride, padding, groups=int(load("groups")))
    y.backward(load("gy"))
    tol = dict(rtol=1e-4, atol=1e-4) if x.dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    assert y.dtype == x.dtype
    for got, name in ((y, "y"), (x.grad, "gx"), (W.grad, "gW"), (b.grad, "gb")):
        np.testing.assert_allclose(got.numpy(), load(name), **tol, err_msg=name)


def test_module_shapes_repr_and_errors():
    tl.manual_seed(0)
    depthwise = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=8, bias=False)
    assert depthwise.weight.shape == (16, 1, 3, 3) and depthwise.groups == 8
    assert repr(depthwise) == ("Conv2d(8, 16, kernel_size=(3, 3), stride=(2, 2), "
                               "padding=(1, 1), groups=8, bias=False)")
    grouped = nn.Conv2d(6, 4, 1, groups=2)
    assert grouped.weight.shape == (4, 3, 1, 1) and "groups=2" in repr(grouped)
    assert "groups" not in repr(nn.Conv2d(3, 4, 3))
    x = tl.Tensor(np.random.default_rng(0).standard_normal((2, 8, 9, 9)).astype(np.float32))
    assert depthwise(x).shape == (2, 16, 5, 5)
    # the layer is its channels' own convolutions
    W = depthwise.weight.numpy()
    one = F.conv2d(x[:, 3:4], tl.Tensor(W[6:8]), None, 2, 1)
    np.testing.assert_allclose(depthwise(x).numpy()[:, 6:8], one.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="in_channels .6. must be divisible by groups .4."):
        nn.Conv2d(6, 8, 3, groups=4)
    with pytest.raises(ValueError, match="out_channels .6. must be divisible by groups .4."):
        nn.Conv2d(8, 6, 3, groups=4)
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        nn.Conv2d(8, 8, 3, groups=0)
    with pytest.raises(ValueError, match="groups=2 expects 6"):
        F.conv2d(x, tl.Tensor(np.zeros((4, 3, 3, 3), np.float32)), groups=2)
    with pytest.raises(ValueError, match="not divisible by groups=2"):
        F.conv2d(x, tl.Tensor(np.zeros((5, 4, 3, 3), np.float32)), groups=2)
    with pytest.raises(NotImplementedError, match="dilation=2"):
        nn.Conv2d(8, 8, 3, groups=8, dilation=2)


def test_frozen_weight_and_input_gradients_only():
    rng = np.random.default_rng(3)
    x = tl.Tensor(rng.standard_normal((2, 4, 6, 6)), requires_grad=True)
    W = tl.Tensor(rng.standard_normal((4, 1, 3, 3)))
    F.conv2d(x, W, None, 1, 1, groups=4).sum().backward()
    assert W.grad is None and x.grad.shape == x.shape
    x2 = tl.Tensor(x.numpy())
    W2 = tl.Tensor(W.numpy(), requires_grad=True)
    F.conv2d(x2, W2, None, 1, 1, groups=4).sum().backward()
    assert x2.grad is None and W2.grad.shape == W2.shape
