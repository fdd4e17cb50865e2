"""kernels.pool_relu (the backward of ReLU then max pooling, with the bias gradient's channel
sums, in one pass): the Numba kernel against the plain reference and the unfused kernels."""
import numpy as np
import pytest

from kernels import maxpool2d_backward, maxpool2d_forward, relu_backward_channel_sums
from kernels import pool_relu
from kernels.pool_relu import maxpool2d_relu_backward, relu_in_place_mask, relu_mask

# (N, C, H, W, kernel, stride, padding, ceil_mode): padua4's 2x2 pooling with an odd side;
# melanoma_cnn's 3x3 stride 3; overlapping windows; padding and ceil_mode
CASES = [(2, 3, 9, 11, 2, 2, 0, False), (2, 4, 10, 9, 3, 3, 0, False),
         (3, 2, 9, 8, 3, 2, 0, False), (2, 3, 7, 10, 3, 2, 1, True)]


def _case(case, dtype, seed=0):
    N, C, H, W, k, s, p, ceil = case
    rng = np.random.default_rng(seed)
    z = np.maximum(rng.standard_normal((N, C, H, W)), 0).astype(dtype)   # a ReLU's output
    z[0, 0, :3, :3] = 0                                                   # windows of zeros
    z[-1, -1, 0, 0] = np.nan                                             # NaN passes
    y, argmax = maxpool2d_forward(z, k, s, p, ceil)
    gy = rng.standard_normal(y.shape).astype(dtype)
    return z, y, argmax, gy, (k, s, p, ceil)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_equals_the_unfused_kernels_bit_for_bit(case, dtype):
    z, y, argmax, gy, pool = _case(case, dtype)
    gz, sums = maxpool2d_relu_backward(gy, argmax, relu_mask(y), z.shape, *pool, impl="cpu")
    want_gz, want_sums = relu_backward_channel_sums(
        maxpool2d_backward(gy, argmax, z.shape, *pool, impl="cpu"), z, impl="cpu")
    assert gz.dtype == dtype and sums.dtype == np.float64
    np.testing.assert_array_equal(gz, want_gz)
    np.testing.assert_array_equal(sums, want_sums)
    assert (gz[0, 0, :2, :2] == 0).all()   # zero windows pass no gradient


@pytest.mark.parametrize("case", CASES)
def test_cpu_equals_the_float64_reference(case):
    z, y, argmax, gy, pool = _case(case, np.float32, seed=1)
    keep = relu_mask(y)
    gz, sums = maxpool2d_relu_backward(gy, argmax, keep, z.shape, *pool, impl="cpu")
    ref_gz, ref_sums = maxpool2d_relu_backward(gy.astype(np.float64), argmax, keep, z.shape,
                                               *pool, impl="reference")
    np.testing.assert_allclose(gz, ref_gz, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sums, ref_sums, rtol=1e-6, atol=1e-5)
    # the mask at work: where the pooled value is 0 nothing reaches z; NaN passes
    assert not keep.all() and keep[-1, -1, 0, 0]
    if pool[1] >= pool[0]:   # windows apart: each kept pooled gradient lands on its own pixel
        assert np.count_nonzero(gz) == np.count_nonzero(gy * keep)


def test_bad_arguments_are_refused_naming_them():
    z, y, argmax, gy, pool = _case(CASES[0], np.float32)
    with pytest.raises(ValueError, match=r"gy .* argmax .* mask"):
        maxpool2d_relu_backward(gy[:, :1], argmax, relu_mask(y), z.shape)
    bad = argmax.copy()
    bad[0, 0, 0, 0] = z.shape[2] * z.shape[3]
    with pytest.raises(ValueError, match="1 argmax entries outside the 9x11 input"):
        maxpool2d_relu_backward(gy, bad, relu_mask(y), z.shape)


@pytest.mark.parametrize("size", [(2, 3, 5, 7), (4, 8, 40, 40)])   # serial, then parallel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_mask_kernels_equal_the_plain_expressions(size, dtype):
    """relu_mask and relu_in_place_mask (one pass, threads above SERIAL_MAX) against NumPy:
    the mask ~(y <= 0), the ReLU max(y, 0) with NaN kept, -0 and 0 not kept."""
    assert (np.prod(size) > pool_relu.SERIAL_MAX) == (size[-1] == 40)
    rng = np.random.default_rng(2)
    y = rng.standard_normal(size).astype(dtype)
    y.flat[:4] = [np.nan, -0.0, 0.0, np.inf]
    y.flat[-1] = -np.inf
    want_keep = ~(y <= 0)
    want_relu = np.maximum(y, 0)
    keep = relu_mask(y)
    assert keep.dtype == np.bool_ and keep.shape == y.shape
    np.testing.assert_array_equal(keep, want_keep)
    np.testing.assert_array_equal(relu_mask(y[:, ::2]), want_keep[:, ::2])   # strided input
    z = y.copy()
    keep = relu_in_place_mask(z)
    np.testing.assert_array_equal(keep, want_keep)
    np.testing.assert_array_equal(z, want_relu)   # in place; NaN stays NaN
    assert keep.flat[0] and not keep.flat[1] and not keep.flat[2] and keep.flat[3]


def test_relu_in_place_mask_refuses_a_view_it_cannot_write_through():
    y = np.ones((2, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="writeable C-contiguous"):
        relu_in_place_mask(y[:, ::2])
    y.flags.writeable = False
    with pytest.raises(ValueError, match="writeable C-contiguous"):
        relu_in_place_mask(y)
