"""Batch-norm kernels: CPU and array-expression (GPU) versions against the reference and PyTorch."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernels.batchnorm import batchnorm_backward, batchnorm_backward_channel_sums, batchnorm_forward
from kernels.channel_sums import channel_sums

import torch_reference as reference

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def rel_err(a, b, scale=0.0):
    """max |a - b| relative to max |b|, or to `scale` when larger."""
    return float(np.abs(a - b).max() / max(np.abs(b).max(), scale, 1e-30))


def grad_scales(gy, x, gamma, eps):
    """The sizes of the terms that make up (gx, ggamma, gbeta): each gradient is a sum of
    terms this large, which may cancel, so its rounding error is relative to them."""
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    x64, gy64 = x.astype(np.float64), np.abs(gy.astype(np.float64))
    invstd = 1.0 / np.sqrt(x64.var(axis=axes) + eps)
    xhat = np.abs(x64 - x64.mean(axis=axes).reshape(shape)) * invstd.reshape(shape)
    return (np.abs(gy64 * (gamma * invstd).reshape(shape)).max(),
            (gy64 * xhat).sum(axis=axes).max(), gy64.sum(axis=axes).max())


@st.composite
def bn_cases(draw):
    """(N, C) or (N, C, H, W) with batch 1 and odd sizes, an offset that tests cancellation."""
    C = draw(st.integers(1, 4))
    if draw(st.booleans()):
        shape = (draw(st.integers(2, 9)), C)
    else:
        H, W = draw(st.integers(1, 7)), draw(st.integers(1, 7))
        N = draw(st.integers(1 if H * W > 1 else 2, 3))
        shape = (N, C, H, W)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    offset = draw(st.sampled_from([0.0, 3.0, 100.0]))
    seed = draw(st.integers(0, 2**31 - 1))
    return shape, dtype, offset, seed


def make(shape, dtype, offset, seed):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = (rng.standard_normal(shape) * rng.uniform(0.5, 2.0) + offset).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, C).astype(dtype)
    beta = rng.standard_normal(C).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, gy


@settings(max_examples=50, deadline=None)
@given(bn_cases(), st.sampled_from(["cpu", "gpu"]))
def test_fast_equals_reference(case, impl):
    shape, dtype, offset, seed = case
    x, gamma, beta, gy = make(shape, dtype, offset, seed)
    eps = 1e-5
    ref = batchnorm_forward(x, gamma, beta, eps, impl="reference")
    out = batchnorm_forward(x, gamma, beta, eps, impl=impl)
    for a, b, n in zip(out, ref, ("y", "mean", "var")):
        assert a.dtype == dtype and a.shape == b.shape, n
        assert rel_err(a, b) < TOL[dtype], n
    gref = batchnorm_backward(gy, x, gamma, ref[1], ref[2], eps, impl="reference")
    gout = batchnorm_backward(gy, x, gamma, ref[1], ref[2], eps, impl=impl)
    scales = grad_scales(gy, x, gamma, eps)
    for a, b, scale, n in zip(gout, gref, scales, ("gx", "ggamma", "gbeta")):
        assert a.dtype == dtype and a.shape == b.shape, n
        assert rel_err(a, b, scale) < TOL[dtype], n


@pytest.mark.parametrize("impl", ["reference", "cpu", "gpu"])
def test_statistics_and_output(impl):
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 13.0]])
    y, mean, var = batchnorm_forward(x, None, None, 0.0, impl=impl)
    np.testing.assert_allclose(mean, [3.0, 11.0], rtol=1e-15)
    np.testing.assert_allclose(var, [8 / 3, 2.0], rtol=1e-15)  # biased
    np.testing.assert_allclose(y[:, 0], np.array([-2, 0, 2]) / np.sqrt(8 / 3), rtol=1e-14)
    # a large offset: the statistics stay exact to float32 rounding
    x = (np.random.default_rng(0).standard_normal((64, 3, 5, 5)) + 1e4).astype(np.float32)
    y, mean, var = batchnorm_forward(x, None, None, 1e-5, impl=impl)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(var, x64.var(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3), dtype=np.float64), 1.0, rtol=1e-3)


@pytest.mark.parametrize("impl", ["reference", "cpu", "gpu"])
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 3, 2), (1, 2, 3, 3)])
def test_gradient_finite_differences(impl, shape):
    x, gamma, beta, w = make(shape, np.float64, 0.5, 7)
    eps = 1e-3

    def loss(x, gamma, beta):
        return (batchnorm_forward(x, gamma, beta, eps, impl=impl)[0] * w).sum()

    y, mean, var = batchnorm_forward(x, gamma, beta, eps, impl=impl)
    grads = batchnorm_backward(w, x, gamma, mean, var, eps, impl=impl)
    h = 1e-6
    for k, a in enumerate((x, gamma, beta)):
        num = np.empty_like(a)
        for i in range(a.size):
            args_p = [x.copy(), gamma.copy(), beta.copy()]
            args_m = [x.copy(), gamma.copy(), beta.copy()]
            args_p[k].flat[i] += h
            args_m[k].flat[i] -= h
            num.flat[i] = (loss(*args_p) - loss(*args_m)) / (2 * h)
        np.testing.assert_allclose(grads[k], num, rtol=1e-6, atol=1e-7)


def test_noncontiguous_and_no_affine():
    x, gamma, beta, gy = make((3, 4, 5, 6), np.float64, 1.0, 2)
    xt = x.transpose(1, 0, 2, 3)
    gyt = gy.transpose(1, 0, 2, 3)
    ones, zeros = np.ones(3), np.zeros(3)
    for impl in ("cpu", "gpu"):
        y, mean, var = batchnorm_forward(xt, None, None, 1e-5, impl=impl)
        y_ref, _, _ = batchnorm_forward(xt, ones, zeros, 1e-5, impl="reference")
        assert rel_err(y, y_ref) < 1e-12
        g = batchnorm_backward(gyt, xt, None, mean, var, 1e-5, impl=impl)
        g_ref = batchnorm_backward(gyt, xt, ones, mean, var, 1e-5, impl="reference")
        for a, b in zip(g, g_ref):
            assert rel_err(a, b) < 1e-12


def test_bad_arguments():
    x = np.zeros((4, 3, 2, 2), np.float32)
    with pytest.raises(ValueError, match="gamma must have shape"):
        batchnorm_forward(x, np.ones(4, np.float32), None, 1e-5)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batchnorm_forward(np.zeros((1, 3)), None, None, 1e-5)
    with pytest.raises(ValueError, match=r"\(N, C\) or \(N, C, H, W\)"):
        batchnorm_forward(np.zeros((2, 3, 4)), None, None, 1e-5)
    with pytest.raises(ValueError, match="float32 and float64"):
        batchnorm_forward(x.astype(np.int32), None, None, 1e-5)
    with pytest.raises(ValueError, match="differ in shape"):
        batchnorm_backward(x[:2], x, None, np.zeros(3), np.ones(3), 1e-5)
    with pytest.raises(ValueError, match="impl"):
        batchnorm_forward(x, None, None, 1e-5, impl="numba")


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (3, 4, 17, 9), (4, 2), (1, 3, 1, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
def test_channel_sums_in_the_input_gradient_pass_give_the_same_bits(shape, dtype, affine):
    """The CPU backward with channel sums: gx, ggamma, gbeta bit for bit those of
    batchnorm_backward, and the sums bit for bit kernels.channel_sums(gx) (what the
    convolution's backward would compute from gx in a separate pass)."""
    x, gamma, beta, gy = make(shape, dtype, 2.0, 11)
    gamma = gamma if affine else None
    y, mean, var = batchnorm_forward(x, gamma, beta, 1e-5)
    want = batchnorm_backward(gy, x, gamma, mean, var, 1e-5)
    got = batchnorm_backward_channel_sums(gy, x, gamma, mean, var, 1e-5)
    assert len(got) == 4
    for a, b in zip(got[:3], want):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert got[3].dtype == np.float64
    np.testing.assert_array_equal(got[3], channel_sums(want[0]))


@pytest.mark.parametrize("impl", ["reference", "gpu"])
def test_channel_sums_elsewhere_are_the_sums_of_gx(impl):
    x, gamma, beta, gy = make((3, 4, 5, 6), np.float32, 1.0, 12)
    y, mean, var = batchnorm_forward(x, gamma, beta, 1e-5, impl=impl)
    want = batchnorm_backward(gy, x, gamma, mean, var, 1e-5, impl=impl)
    got = batchnorm_backward_channel_sums(gy, x, gamma, mean, var, 1e-5, impl=impl)
    for a, b in zip(got[:3], want):
        np.testing.assert_array_equal(a, b)
    assert got[3].dtype == np.float32
    np.testing.assert_array_equal(got[3], want[0].sum(axis=(0, 2, 3)))
    with pytest.raises(ValueError, match="differ in shape"):
        batchnorm_backward_channel_sums(gy[:2], x, gamma, mean, var, 1e-5, impl=impl)


@pytest.mark.parametrize("case", reference.cases("batchnorm"))
def test_against_torch(case):
    """PyTorch's batch_norm in training mode and its gradients, stored by
    bench/torch_fixtures.py: (N, C) and (N, C, H, W), batch 1, both dtypes."""
    key = f"batchnorm/{case}"
    x, gamma, beta, gy = (reference.load(f"{key}/{name}") for name in ("x", "gamma", "beta", "gy"))
    eps = float(reference.load(f"{key}/eps"))
    y, mean, var = batchnorm_forward(x, gamma, beta, eps)
    gx, ggamma, gbeta = batchnorm_backward(gy, x, gamma, mean, var, eps)
    # PyTorch accumulates float32 in float32: allow it more rounding than the reference
    tol = {np.float32: 1e-4, np.float64: 1e-10}[x.dtype.type]
    assert rel_err(y, reference.load(f"{key}/y")) < tol
    scales = grad_scales(gy, x, gamma, eps)
    for a, name, scale in zip((gx, ggamma, gbeta), ("gx", "ggamma", "gbeta"), scales):
        assert rel_err(a, reference.load(f"{key}/{name}"), scale) < tol, name
