"""The kernels that inline channel_sums._plane_sum (relu, pool_relu, batchnorm backward with
channel sums) give channel_sums' bits on data whose sum depends on the order of the additions:
a stale compiled copy of an older order (see kernels/cache_stamp.py)
fails here."""
import numpy as np
import pytest

from kernels import maxpool2d_forward
from kernels.batchnorm import batchnorm_backward, batchnorm_backward_channel_sums, batchnorm_forward
from kernels.channel_sums import SHORT, channel_sums
from kernels.pool_relu import maxpool2d_relu_backward, relu_mask
from kernels.relu import relu_backward_channel_sums, relu_forward

# (N, C, H, W): planes below SHORT (the eight-lane path) and above it (the 64 lanes)
SHAPES = [(2, 3, 9, 12), (2, 3, 20, 30), (1, 2, 64, 75)]


def _wide(rng, shape, dtype):
    """Signed values over ten decades: their float64 sums round, differently in each order."""
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return (sign * 10.0 ** rng.uniform(-5, 5, shape)).astype(dtype)


def _eight_lane_sums(a):
    """Σ per channel in the eight-lane order that every plane took before (for the check that
    the data tells the orders apart)."""
    N, C = a.shape[:2]
    flat = a.reshape(N, C, -1).astype(np.float64)
    out = np.zeros(C)
    for c in range(C):
        for n in range(N):
            p = flat[n, c]
            rows = p.size // 8
            acc = np.zeros(8)
            for row in p[:8 * rows].reshape(rows, 8):
                acc += row
            rest = 0.0
            for v in p[8 * rows:]:
                rest += v
            out[c] += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + \
                ((acc[4] + acc[5]) + (acc[6] + acc[7])) + rest
    return out


def _check(sums, gx, discriminating=True):
    np.testing.assert_array_equal(sums, channel_sums(gx))
    if discriminating and gx[0, 0].size >= SHORT:   # the data must tell the orders apart
        assert not np.array_equal(sums, _eight_lane_sums(gx))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_sums(shape, dtype):
    rng = np.random.default_rng(1)
    y = relu_forward(rng.standard_normal(shape).astype(dtype))
    gx, sums = relu_backward_channel_sums(_wide(rng, shape, dtype), y, impl="cpu")
    _check(sums, gx)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pool_relu_backward_sums(shape, dtype):
    rng = np.random.default_rng(2)
    z = np.maximum(rng.standard_normal(shape), 0).astype(dtype)
    y, argmax = maxpool2d_forward(z, 2, 2, 0, False)
    gz, sums = maxpool2d_relu_backward(_wide(rng, y.shape, dtype), argmax, relu_mask(y),
                                       z.shape, 2, 2, 0, False, impl="cpu")
    _check(sums, gz)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_backward_sums(shape, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    gamma = rng.uniform(0.5, 2, shape[1]).astype(dtype)
    _, mean, var = batchnorm_forward(x, gamma, None, 1e-5)
    gy = _wide(rng, shape, dtype)
    got = batchnorm_backward_channel_sums(gy, x, gamma, mean, var, 1e-5)
    np.testing.assert_array_equal(got[0], batchnorm_backward(gy, x, gamma, mean, var, 1e-5)[0])
    # NOTE: in float32, gx = k·(gy − Σgy/M − x̂·b) is rounded to the ulp of those large
    # shifts, and its float64 sums are then exact in any order: only float64 tells them apart
    _check(got[3], got[0], discriminating=dtype == np.float64)
