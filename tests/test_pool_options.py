"""Max pooling with padding and ceil_mode, average pooling with padding, ceil_mode,
count_include_pad and divisor_override: PyTorch's output sizes and divisors by hand, the CPU
kernels against the reference, float64 gradient checks, PyTorch's stored results, the GPU
kernels under the CUDA simulator."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tinylesion as tl
from kernels.avgpool import avgpool2d_backward, avgpool2d_forward
from kernels.pool import maxpool2d_backward, maxpool2d_forward, pooled_size
from tinylesion import nn
from tinylesion.nn import functional as F
from tinylesion.testing import gradcheck

import torch_reference as reference
from cudasim import run_under_simulator


# ---- output sizes and divisors, by hand -------------------------------------------------------
@pytest.mark.parametrize("size,k,s,p,ceil,expected", [
    (112, 3, 2, 1, False, 56),   # ResNet's stem
    (8, 3, 2, 0, False, 3), (8, 3, 2, 0, True, 4),
    (6, 2, 2, 0, True, 3), (5, 2, 2, 0, True, 3), (5, 2, 2, 0, False, 2),
    # ceil would add a window starting at 6 = size + padding: dropped
    (5, 2, 3, 1, False, 2), (5, 2, 3, 1, True, 2),
    (7, 3, 2, 1, True, 4), (35, 3, 1, 1, False, 35),
])
def test_pooled_size(size, k, s, p, ceil, expected):
    assert pooled_size(size, k, s, p, ceil) == expected


def test_ceil_mode_windows_by_hand():
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    y, am = maxpool2d_forward(x, 2, 2, ceil_mode=True)
    np.testing.assert_array_equal(y[0, 0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]])
    np.testing.assert_array_equal(am[0, 0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]])
    ones = np.ones((1, 1, 5, 5))
    # clipped windows: count_include_pad divides by the part inside the (unpadded) input here
    np.testing.assert_array_equal(avgpool2d_forward(ones, 2, 2, ceil_mode=True), 1.0)
    # padding 1: the corner windows hold one input position of 3x3 (or of 1 when excluded)
    y = avgpool2d_forward(ones, 3, 2, padding=1, ceil_mode=True)
    assert y.shape == (1, 1, 3, 3)
    np.testing.assert_allclose(y[0, 0], [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9],
                                         [4 / 9, 6 / 9, 4 / 9]])
    np.testing.assert_array_equal(avgpool2d_forward(ones, 3, 2, 1, True, False), 1.0)
    np.testing.assert_array_equal(avgpool2d_forward(ones * 3, 3, 2, 1, True, True, 3)[0, 0, 1],
                                  [6, 9, 6])


def test_padding_never_wins_a_maximum():
    x = -np.ones((1, 1, 3, 3)) * np.arange(1, 10).reshape(3, 3)
    for impl in ("reference", "cpu"):
        y, am = maxpool2d_forward(x, 3, 2, padding=1, impl=impl)
        np.testing.assert_array_equal(y[0, 0], [[-1, -2], [-4, -5]])  # not the padding's 0
        np.testing.assert_array_equal(am[0, 0], [[0, 1], [3, 4]])
    # a window of -inf alone points at its first input element, as PyTorch's
    x = np.full((1, 1, 3, 3), -np.inf)
    for impl in ("reference", "cpu"):
        y, am = maxpool2d_forward(x, 3, 2, padding=1, impl=impl)
        assert np.all(y == -np.inf)
        np.testing.assert_array_equal(am[0, 0], [[0, 1], [3, 4]])


# ---- CPU kernels against the reference -------------------------------------------------------
@st.composite
def pool_cases(draw):
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    SH, SW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    PH, PW = draw(st.integers(0, KH // 2)), draw(st.integers(0, KW // 2))
    H = max(1, KH - 2 * PH) + draw(st.integers(0, 7))
    W = max(1, KW - 2 * PW) + draw(st.integers(0, 7))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W)
    return (shape, (KH, KW), (SH, SW), (PH, PW), draw(st.booleans()), draw(st.booleans()),
            draw(st.sampled_from([np.float32, np.float64])), draw(st.integers(0, 999)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool_cases())
def test_cpu_equals_reference(case):
    shape, kernel, stride, padding, ceil, include, dtype, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    if seed % 3 == 0:
        x = rng.integers(0, 3, shape).astype(dtype)   # ties everywhere
    elif seed % 3 == 1:
        x[rng.random(shape) < 0.2] = np.nan           # NaN wins (the first one)
        x[rng.random(shape) < 0.2] = -np.inf          # windows of -inf alone
    y_ref, am_ref = maxpool2d_forward(x, kernel, stride, padding, ceil, impl="reference")
    y, am = maxpool2d_forward(x, kernel, stride, padding, ceil, impl="cpu")
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(am, am_ref)
    gy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(
        maxpool2d_backward(gy, am, shape, kernel, stride, padding, ceil, impl="cpu"),
        maxpool2d_backward(gy, am, shape, kernel, stride, padding, ceil, impl="reference"),
        rtol=1e-6)
    x = np.nan_to_num(x, nan=0.5, neginf=-2.0)
    override = [None, 5][seed % 2]
    args = (kernel, stride, padding, ceil, include, override)
    a_ref = avgpool2d_forward(x, *args, impl="reference")
    a = avgpool2d_forward(x, *args, impl="cpu")
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(a, a_ref, rtol=tol, atol=tol)
    gy = rng.standard_normal(a.shape).astype(dtype)
    np.testing.assert_allclose(avgpool2d_backward(gy, shape, *args, impl="cpu"),
                               avgpool2d_backward(gy, shape, *args, impl="reference"),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("shape,kernel,stride,padding,ceil", [
    ((2, 4, 17, 15), 3, 2, 1, False),    # ResNet / DenseNet stem max pool
    ((2, 3, 12, 12), 3, 1, 1, False),    # Inception's average pool
    ((2, 4, 14, 13), 2, 2, 0, False),    # DenseNet's transition
    ((1, 2, 9, 8), 3, 2, 0, True),
    ((2, 8, 7, 7), 7, 7, 0, False),      # global pooling (tiled: one reshape and sum)
    ((2, 3, 9, 9), 4, 4, 0, True),       # tiles with a clipped last window
])
def test_models_pools_cpu_equals_reference(shape, kernel, stride, padding, ceil):
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    y, am = maxpool2d_forward(x, kernel, stride, padding, ceil, impl="cpu")
    y_ref, am_ref = maxpool2d_forward(x, kernel, stride, padding, ceil, impl="reference")
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(am, am_ref)
    for include in (True, False):
        np.testing.assert_allclose(
            avgpool2d_forward(x, kernel, stride, padding, ceil, include, impl="cpu"),
            avgpool2d_forward(x, kernel, stride, padding, ceil, include, impl="reference"),
            rtol=1e-6, atol=1e-6)


# ---- gradient checks through F --------------------------------------------------------------
POOL_GRAD_CASES = [  # shape, kernel, stride, padding, ceil_mode
    ((2, 2, 9, 9), 3, 2, 1, False), ((1, 2, 8, 7), 3, 2, 0, True),
    ((1, 3, 7, 10), (2, 3), 2, 1, True), ((2, 1, 5, 6), 3, 1, 1, False),
    ((1, 2, 5, 5), 2, 2, 0, True), ((1, 1, 7, 9), (3, 2), (2, 3), (1, 1), True),
]


@pytest.mark.parametrize("shape,kernel,stride,padding,ceil", POOL_GRAD_CASES)
def test_max_pool2d_gradcheck(shape, kernel, stride, padding, ceil, rng, device):
    gradcheck(lambda t: F.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil),
              rng.standard_normal(shape), device=device)


@pytest.mark.parametrize("shape,kernel,stride,padding,ceil", POOL_GRAD_CASES)
@pytest.mark.parametrize("include,override", [(True, None), (False, None), (True, 4)])
def test_avg_pool2d_gradcheck(shape, kernel, stride, padding, ceil, include, override, rng,
                              device):
    gradcheck(lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil, include, override),
              rng.standard_normal(shape), device=device)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool_cases())
def test_gradcheck_drawn(case):
    shape, kernel, stride, padding, ceil, include, _, seed = case
    x = np.random.default_rng(seed).standard_normal(shape)
    gradcheck(lambda t: F.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil), x)
    gradcheck(lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil, include), x)


# ---- PyTorch's results ----------------------------------------------------------------------
def _option_cases():
    return [f"case{i}/{dtype}" for i in range(len(POOL_OPTION_KWARGS))
            for dtype in ("float32", "float64")]


# the cases of bench/torch_fixtures.py's POOL_OPTION_CASES, in order
POOL_OPTION_KWARGS = [
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool2d", dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("max_pool2d", dict(kernel_size=(2, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True)),
    ("max_pool2d", dict(kernel_size=2, stride=2, ceil_mode=True)),
    ("max_pool2d", dict(kernel_size=3, stride=1, padding=1)),
    ("avg_pool2d", dict(kernel_size=3, stride=1, padding=1)),
    ("avg_pool2d", dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
    ("avg_pool2d", dict(kernel_size=2, stride=2)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                        count_include_pad=False)),
    ("avg_pool2d", dict(kernel_size=2, stride=2, ceil_mode=True)),
    ("avg_pool2d", dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True,
                        divisor_override=4)),
]


@pytest.mark.parametrize("case", _option_cases())
@pytest.mark.parametrize("as_module", [False, True])
def test_matches_torch(case, as_module):
    name, kwargs = POOL_OPTION_KWARGS[int(case.split("/")[0][4:])]
    load = lambda part: reference.load(f"pool_options/{case}/{part}")
    x = tl.Tensor(load("x"), requires_grad=True)
    if as_module:
        module = {"max_pool2d": nn.MaxPool2d, "avg_pool2d": nn.AvgPool2d}[name](**kwargs)
        y = module(x)
    else:
        y = getattr(F, name)(x, **kwargs)
    y.backward(load("gy"))
    tol = dict(rtol=1e-5, atol=1e-6) if x.dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    assert y.shape == load("y").shape and y.dtype == x.dtype
    np.testing.assert_allclose(y.numpy(), load("y"), **tol)
    np.testing.assert_allclose(x.grad.numpy(), load("gx"), **tol)
    if name == "max_pool2d":
        _, am = maxpool2d_forward(load("x"), kwargs["kernel_size"], kwargs["stride"],
                                  kwargs.get("padding", 0), kwargs.get("ceil_mode", False))
        np.testing.assert_array_equal(am, load("indices"))


# ---- modules and errors ---------------------------------------------------------------------
def test_module_reprs_and_errors():
    assert repr(nn.MaxPool2d(3, 2, 1)) == ("MaxPool2d(kernel_size=3, stride=2, padding=1, "
                                           "dilation=1, ceil_mode=False)")
    assert repr(nn.MaxPool2d(2, ceil_mode=True)) == ("MaxPool2d(kernel_size=2, stride=2, "
                                                     "padding=0, dilation=1, ceil_mode=True)")
    assert repr(nn.AvgPool2d(3, 1, 1)) == "AvgPool2d(kernel_size=3, stride=1, padding=1)"
    x = tl.Tensor(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="at most half"):
        F.max_pool2d(x, 3, 1, padding=2)
    with pytest.raises(ValueError, match="at most half"):
        nn.AvgPool2d(2, padding=2)(x)
    with pytest.raises(ValueError, match="smaller than the 7x7 window"):
        F.max_pool2d(x, 7, padding=1)
    with pytest.raises(NotImplementedError, match="dilation=2"):
        nn.MaxPool2d(2, dilation=2)
    with pytest.raises(NotImplementedError, match="return_indices"):
        F.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(ValueError, match="at most half"):
        maxpool2d_forward(np.zeros((1, 1, 4, 4)), 2, 1, padding=(0, 2))
    with pytest.raises(ValueError, match="gy has shape"):
        avgpool2d_backward(np.zeros((1, 1, 3, 3)), (1, 1, 4, 4), 2, 2)


def test_three_dimensional_input_to_avg_pool2d():
    x = np.random.default_rng(1).standard_normal((3, 7, 6))
    y = F.avg_pool2d(tl.Tensor(x), 3, 2, 1, ceil_mode=True)
    y4 = F.avg_pool2d(tl.Tensor(x[None]), 3, 2, 1, ceil_mode=True)
    np.testing.assert_array_equal(y.numpy(), y4.numpy()[0])


def test_gpu_kernels_under_cuda_simulator():
    """The numba.cuda max-pool kernels with padding and ceil_mode equal the CPU kernels."""
    run_under_simulator(os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels",
                                     "cudasim_pool_options.py"))
