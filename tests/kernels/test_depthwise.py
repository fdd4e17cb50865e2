"""Depthwise and grouped convolution kernels: CPU against the reference and against plain
per-channel convolutions, the GPU kernels under the CUDA simulator, bad arguments."""
import itertools
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kernels import conv2d_backward, conv2d_forward
from kernels.depthwise import depthwise_conv2d_backward, depthwise_conv2d_forward
from kernels.grouped import grouped_backward, grouped_forward

from cudasim import run_under_simulator

TOL = {np.float32: 2e-5, np.float64: 1e-12}


def rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def make(x_shape, w_shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    return x, W, b, rng


def per_group(x, W, b, stride, padding, groups):
    """The grouped convolution as `groups` separate plain convolutions (reference kernels)."""
    C, F = x.shape[1], W.shape[0]
    Cg, Fg = C // groups, F // groups
    parts = [conv2d_forward(np.ascontiguousarray(x[:, g * Cg:(g + 1) * Cg]),
                            np.ascontiguousarray(W[g * Fg:(g + 1) * Fg]),
                            None if b is None else b[g * Fg:(g + 1) * Fg], stride, padding,
                            impl="reference") for g in range(groups)]
    return np.concatenate(parts, axis=1)


# stride 1 and 2, padding 0/1/2, kernel 3 and 5, odd sizes, channel multiplier 1 and 2
GRID = [(stride, padding, k, mult)
        for stride, padding, k, mult in itertools.product((1, 2), (0, 1, 2), (3, 5), (1, 2))]


@pytest.mark.parametrize("stride,padding,k,mult", GRID)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_equals_reference(stride, padding, k, mult, dtype):
    C = 3
    x, W, b, rng = make((2, C, 9, 7), (C * mult, 1, k, k), dtype, stride * 100 + k + mult)
    y_ref = depthwise_conv2d_forward(x, W, b, stride, padding, impl="reference")
    y = depthwise_conv2d_forward(x, W, b, stride, padding, impl="cpu")
    assert y.dtype == dtype and y.shape == y_ref.shape
    assert rel_err(y, y_ref) < TOL[dtype]
    # the reference itself against C*mult single-channel convolutions
    assert rel_err(y_ref, per_group(x, W, b, stride, padding, C)) < TOL[dtype]
    gy = rng.standard_normal(y.shape).astype(dtype)
    ref = depthwise_conv2d_backward(gy, x, W, stride, padding, impl="reference")
    cpu = depthwise_conv2d_backward(gy, x, W, stride, padding, impl="cpu")
    for name, a, r in zip(("gx", "gW", "gb"), cpu, ref):
        assert a.dtype == dtype and a.shape == r.shape, name
        assert rel_err(a, r) < TOL[dtype], name


@st.composite
def depthwise_cases(draw):
    KH, KW = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    SH, SW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    PH, PW = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    N, C, M = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    H = max(1, KH - 2 * PH) + draw(st.integers(0, 7))
    W = max(1, KW - 2 * PW) + draw(st.integers(0, 7))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (N, C, H, W), (C * M, 1, KH, KW), (SH, SW), (PH, PW), dtype, draw(st.integers(0, 999))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depthwise_cases())
def test_cpu_equals_reference_drawn(case):
    x_shape, w_shape, stride, padding, dtype, seed = case
    x, W, b, rng = make(x_shape, w_shape, dtype, seed)
    y_ref = depthwise_conv2d_forward(x, W, b, stride, padding, impl="reference")
    y = depthwise_conv2d_forward(x, W, b, stride, padding, impl="cpu")
    assert rel_err(y, y_ref) < TOL[dtype]
    gy = rng.standard_normal(y.shape).astype(dtype)
    ref = depthwise_conv2d_backward(gy, x, W, stride, padding, impl="reference")
    cpu = depthwise_conv2d_backward(gy, x, W, stride, padding, impl="cpu")
    for a, r in zip(cpu, ref):
        assert rel_err(a, r) < TOL[dtype]


def test_only_what_is_needed_and_no_bias():
    x, W, _, rng = make((2, 4, 6, 6), (4, 1, 3, 3), np.float64, 1)
    y = depthwise_conv2d_forward(x, W, None, 1, 1, impl="cpu")
    assert rel_err(y, per_group(x, W, None, 1, 1, 4)) < 1e-12
    gy = rng.standard_normal(y.shape)
    gx, gW, gb = depthwise_conv2d_backward(gy, x, W, 1, 1, need_gx=False, need_gb=False,
                                           impl="cpu")
    assert gx is None and gb is None and gW.shape == W.shape


def test_noncontiguous_input():
    x, W, b, _ = make((3, 4, 7, 6), (8, 1, 3, 3), np.float32, 2)
    xt = x.transpose(1, 0, 2, 3).copy().transpose(1, 0, 2, 3)
    assert not xt.flags.c_contiguous
    np.testing.assert_allclose(depthwise_conv2d_forward(xt, W, b, 2, 1, impl="cpu"),
                               depthwise_conv2d_forward(x, W, b, 2, 1, impl="reference"),
                               rtol=1e-5, atol=1e-5)


# (x shape, W shape, stride, padding, groups): general groups, depthwise through conv2d's
# dispatch, and the models' shapes (MobileNetV2 3x3 stride 1 and 2, EfficientNet 5x5 stride 2)
GROUPED = [
    ((2, 4, 7, 6), (6, 2, 3, 3), (1, 1), (1, 1), 2),
    ((1, 6, 9, 8), (9, 2, 3, 2), (2, 1), (0, 1), 3),
    ((2, 8, 6, 7), (4, 4, 5, 5), (2, 2), (2, 2), 2),
    ((2, 4, 5, 5), (8, 1, 3, 3), (1, 1), (1, 1), 4),
    ((2, 6, 9, 9), (6, 1, 3, 3), (2, 2), (1, 1), 6),
    ((1, 5, 11, 11), (5, 1, 5, 5), (2, 2), (2, 2), 5),
]


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,groups", GROUPED)
@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_grouped_equals_per_group_convolutions(x_shape, w_shape, stride, padding, groups, impl):
    x, W, b, rng = make(x_shape, w_shape, np.float64, groups)
    y = conv2d_forward(x, W, b, stride, padding, impl=impl, groups=groups)
    assert rel_err(y, per_group(x, W, b, stride, padding, groups)) < 1e-12
    gy = rng.standard_normal(y.shape)
    got = conv2d_backward(gy, x, W, stride, padding, impl=impl, groups=groups)
    Cg, Fg = x.shape[1] // groups, W.shape[0] // groups
    gx = np.zeros_like(x)
    gW = np.zeros_like(W)
    for g in range(groups):
        c, f = slice(g * Cg, (g + 1) * Cg), slice(g * Fg, (g + 1) * Fg)
        gx[:, c], gW[f], _ = conv2d_backward(np.ascontiguousarray(gy[:, f]),
                                             np.ascontiguousarray(x[:, c]),
                                             np.ascontiguousarray(W[f]), stride, padding,
                                             impl="reference")
    for a, r in zip(got, (gx, gW, gy.sum(axis=(0, 2, 3)))):
        assert rel_err(a, r) < 1e-12
    # the general path gives the depthwise kernels' answer too
    if W.shape[1] == 1:
        general = grouped_forward(x, W, b, stride, padding, groups, impl)
        assert rel_err(general, y) < 1e-12
        for a, r in zip(grouped_backward(gy, x, W, stride, padding, groups, True, True, True,
                                         impl), got):
            assert rel_err(a, r) < 1e-12


def test_fused_relu_with_groups():
    x, W, b, _ = make((2, 4, 6, 6), (4, 2, 3, 3), np.float32, 3)
    y = conv2d_forward(x, W, b, 1, 1, relu=True, groups=2)
    np.testing.assert_array_equal(y, np.maximum(conv2d_forward(x, W, b, 1, 1, groups=2), 0))


def test_bad_arguments():
    x = np.zeros((1, 4, 5, 5), np.float32)
    with pytest.raises(ValueError, match="groups=3 must divide"):
        conv2d_forward(x, np.zeros((3, 1, 3, 3), np.float32), groups=3)
    with pytest.raises(ValueError, match="expects 6 input channels"):
        conv2d_forward(x, np.zeros((4, 3, 3, 3), np.float32), groups=2)
    with pytest.raises(ValueError, match="positive int"):
        conv2d_forward(x, np.zeros((4, 1, 3, 3), np.float32), groups=0)
    with pytest.raises(ValueError, match="float32 or both float64"):
        conv2d_forward(x, np.zeros((4, 1, 3, 3)), groups=4)
    with pytest.raises(ValueError, match=r"b must have shape \(4,\)"):
        conv2d_forward(x, np.zeros((4, 1, 3, 3), np.float32), np.zeros(3, np.float32),
                       groups=4)
    with pytest.raises(ValueError, match="smaller than kernel"):
        depthwise_conv2d_forward(x, np.zeros((4, 1, 7, 7), np.float32))
    with pytest.raises(ValueError, match=r"\(k\*C, 1, KH, KW\)"):
        depthwise_conv2d_forward(x, np.zeros((6, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match="gy has shape"):
        depthwise_conv2d_backward(np.zeros((1, 4, 2, 2), np.float32), x,
                                  np.zeros((4, 1, 3, 3), np.float32), impl="cpu")


def test_gpu_kernels_under_cuda_simulator():
    """The numba.cuda depthwise kernels equal the CPU kernels in the simulator."""
    run_under_simulator(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                     "cudasim_depthwise.py"))
