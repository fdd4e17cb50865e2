"""Max pooling kernels: the Numba CPU kernel against the reference, PyTorch, and gradients."""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernels.pool import maxpool2d_backward, maxpool2d_forward

import torch_reference as reference
from cudasim import run_under_simulator

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def rel_err(a, b):
    """max |a - b| relative to max |b| (absolute when b is all zeros)."""
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


@st.composite
def pool_cases(draw):
    """Shapes, kernels and strides: batch 1, odd sizes, stride > kernel, non-square."""
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    SH, SW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, W = KH + draw(st.integers(0, 8)), KW + draw(st.integers(0, 8))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    ties = draw(st.sampled_from(["none", "ties", "nans"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return (N, C, H, W), (KH, KW), (SH, SW), dtype, ties, seed


def make_input(shape, dtype, ties, seed):
    """Random values; "ties": few distinct values, every window has ties; "nans": some NaN."""
    rng = np.random.default_rng(seed)
    if ties == "ties":
        return rng.integers(0, 3, shape).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    if ties == "nans":
        x[rng.random(shape) < 0.2] = np.nan
    return x


@settings(max_examples=40, deadline=None)
@given(pool_cases())
def test_cpu_equals_reference(case):
    shape, kernel, stride, dtype, ties, seed = case
    x = make_input(shape, dtype, ties, seed)
    y_ref, am_ref = maxpool2d_forward(x, kernel, stride, impl="reference")
    y, am = maxpool2d_forward(x, kernel, stride, impl="cpu")
    N, C, H, W = shape
    assert y.shape == (N, C, (H - kernel[0]) // stride[0] + 1, (W - kernel[1]) // stride[1] + 1)
    assert y.dtype == dtype and am.shape == y.shape
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(am, am_ref)
    gy = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(dtype)
    gx_ref = maxpool2d_backward(gy, am_ref, x.shape, kernel, stride, impl="reference")
    gx = maxpool2d_backward(gy, am, x.shape, kernel, stride, impl="cpu")
    assert gx.shape == x.shape and gx.dtype == dtype
    assert rel_err(gx, gx_ref) < TOL[dtype]


@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_values_by_hand(impl):
    x = np.arange(2 * 5, dtype=np.float64).reshape(1, 1, 2, 5)[:, :, ::-1].copy()
    # x = [[5 6 7 8 9], [0 1 2 3 4]]; kernel 2, stride 3: windows cols 0-1 and 3-4
    y, am = maxpool2d_forward(x, 2, 3, impl=impl)
    np.testing.assert_array_equal(y, [[[[6, 9]]]])
    np.testing.assert_array_equal(am, [[[[1, 4]]]])
    # overlapping windows (kernel 2 stride 1) share a maximum: its gradient accumulates
    x = np.array([[[[1.0, 5.0, 2.0]]]])
    y, am = maxpool2d_forward(x, (1, 2), 1, impl=impl)
    gx = maxpool2d_backward(np.array([[[[1.0, 10.0]]]]), am, x.shape, (1, 2), 1, impl=impl)
    np.testing.assert_array_equal(gx, [[[[0.0, 11.0, 0.0]]]])


@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_first_maximum_wins_and_nan_propagates(impl):
    x = np.array([[[[3.0, 3.0], [3.0, 1.0]]]])
    y, am = maxpool2d_forward(x, 2, 2, impl=impl)
    assert am.item() == 0
    x = np.array([[[[1.0, np.nan], [np.nan, 2.0]]]])
    y, am = maxpool2d_forward(x, 2, 2, impl=impl)
    assert np.isnan(y.item()) and am.item() == 1


@pytest.mark.parametrize("impl", ["reference", "cpu"])
def test_gradient_finite_differences(impl):
    rng = np.random.default_rng(0)
    x = rng.permutation(60).reshape(1, 2, 5, 6).astype(np.float64)  # distinct values
    kernel, stride = (3, 2), (2, 1)
    y, am = maxpool2d_forward(x, kernel, stride, impl=impl)
    gy = rng.standard_normal(y.shape)
    gx = maxpool2d_backward(gy, am, x.shape, kernel, stride, impl=impl)
    h = 1e-3  # values differ by >= 1: no argmax changes under the perturbation
    num = np.empty_like(x)
    for i in range(x.size):
        xp_, xm = x.copy(), x.copy()
        xp_.flat[i] += h
        xm.flat[i] -= h
        num.flat[i] = ((maxpool2d_forward(xp_, kernel, stride, impl=impl)[0]
                        - maxpool2d_forward(xm, kernel, stride, impl=impl)[0]) * gy).sum() / (2 * h)
    np.testing.assert_allclose(gx, num, rtol=1e-9, atol=1e-9)


def test_noncontiguous_input():
    x = np.random.default_rng(3).standard_normal((3, 2, 9, 7))
    xt = x.transpose(1, 0, 2, 3)  # not C-contiguous
    y, am = maxpool2d_forward(xt, 3, 2, impl="cpu")
    y_ref, am_ref = maxpool2d_forward(np.ascontiguousarray(xt), 3, 2, impl="reference")
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(am, am_ref)


def test_bad_arguments():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="larger than"):
        maxpool2d_forward(x, 5, 1)
    with pytest.raises(ValueError, match="kernel"):
        maxpool2d_forward(x, (2, 2, 2), 1)
    with pytest.raises(ValueError, match="positive"):
        maxpool2d_forward(x, 2, 0)
    with pytest.raises(ValueError, match="NCHW"):
        maxpool2d_forward(x[0], 2, 2)
    with pytest.raises(ValueError, match="float32"):
        maxpool2d_forward(x.astype(np.int64), 2, 2)
    with pytest.raises(ValueError, match="impl"):
        maxpool2d_forward(x, 2, 2, impl="fast")
    y, am = maxpool2d_forward(x, 2, 2)
    with pytest.raises(ValueError, match="argmax entries outside"):
        maxpool2d_backward(y, am + 100, x.shape, 2, 2, impl="cpu")
    with pytest.raises(ValueError, match="same"):
        maxpool2d_backward(y[:, :, :1], am, x.shape, 2, 2)


@pytest.mark.parametrize("case", reference.cases("pool"))
def test_against_torch(case):
    """PyTorch's max_pool2d with indices and its gradient, stored by bench/torch_fixtures.py:
    overlapping windows, stride larger than the kernel, ties, NaN."""
    key = f"pool/{case}"
    x, gy = reference.load(f"{key}/x"), reference.load(f"{key}/gy")
    kernel, stride = (tuple(int(v) for v in reference.load(f"{key}/{name}"))
                      for name in ("kernel", "stride"))
    indices = reference.load(f"{key}/indices")
    y, am = maxpool2d_forward(x, kernel, stride)
    np.testing.assert_array_equal(y, reference.load(f"{key}/y"))  # NaN where PyTorch has NaN
    # same indices, ties included; in a window with several NaN PyTorch keeps the last, these
    # kernels the first: there both must point at a NaN
    N, C = x.shape[:2]
    planes = x.reshape(N, C, -1)
    ours = np.take_along_axis(planes, am.reshape(N, C, -1).astype(np.int64), axis=2)
    theirs = np.take_along_axis(planes, indices.reshape(N, C, -1), axis=2)
    differ = (am != indices).reshape(N, C, -1)
    assert np.isnan(ours[differ]).all() and np.isnan(theirs[differ]).all()
    if reference.load(f"{key}/values") != "nans":
        assert not differ.any()
    # the gradient, through PyTorch's choice of maximum
    gx = maxpool2d_backward(gy, indices.astype(am.dtype), x.shape, kernel, stride)
    assert rel_err(gx, reference.load(f"{key}/gx")) < TOL[x.dtype.type]


def test_gpu_kernels_under_cuda_simulator():
    """The numba.cuda kernels of pool.py and adam.py equal the CPU kernels in the simulator."""
    here = os.path.dirname(os.path.abspath(__file__))
    run_under_simulator(os.path.join(here, "cudasim_pool_adam.py"))
