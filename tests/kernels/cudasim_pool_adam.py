"""numba.cuda kernels of pool.py and adam.py under the CUDA simulator, against the CPU kernels.

Run in a fresh interpreter with NUMBA_ENABLE_CUDASIM=1 (test_pool.py does), on tiny shapes:
the simulator runs every CUDA thread as a Python thread. Batch norm's GPU path is array
expressions, tested with NumPy in test_batchnorm.py.
"""
import os

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("run with NUMBA_ENABLE_CUDASIM=1 in a fresh interpreter",
                allow_module_level=True)

from numba.core import config  # noqa: E402

from kernels.adam import adam_step  # noqa: E402
from kernels.pool import maxpool2d_backward, maxpool2d_forward  # noqa: E402

assert config.ENABLE_CUDASIM, "numba was imported before NUMBA_ENABLE_CUDASIM was set"

# (N, C, H, W), kernel, stride: batch 1, odd sizes, stride 3 > kernel 2, overlapping 3/1,
# a 7x7 window, non-square windows and strides
POOL_CASES = [
    ((1, 1, 5, 5), (2, 2), (2, 2)),
    ((1, 2, 7, 8), (2, 2), (3, 3)),
    ((2, 1, 5, 7), (3, 3), (1, 1)),
    ((1, 2, 9, 9), (3, 3), (3, 3)),
    ((1, 1, 9, 8), (7, 7), (2, 1)),
    ((2, 2, 6, 7), (2, 3), (1, 2)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kernel,stride", POOL_CASES)
def test_maxpool_gpu_equals_cpu(shape, kernel, stride, dtype):
    rng = np.random.default_rng(sum(shape))
    with_nans = rng.standard_normal(shape).astype(dtype)
    with_nans[rng.random(shape) < 0.2] = np.nan
    for x in (rng.standard_normal(shape).astype(dtype),
              rng.integers(0, 3, shape).astype(dtype),  # full of ties
              with_nans):
        y_cpu, am_cpu = maxpool2d_forward(x, kernel, stride, impl="cpu")
        y, am = maxpool2d_forward(x, kernel, stride, impl="gpu")
        np.testing.assert_array_equal(y, y_cpu)
        np.testing.assert_array_equal(am, am_cpu)
        gy = rng.standard_normal(y.shape).astype(dtype)
        gx_cpu = maxpool2d_backward(gy, am_cpu, shape, kernel, stride, impl="cpu")
        gather = maxpool2d_backward(gy, am, shape, kernel, stride, impl="gpu")
        scatter = maxpool2d_backward(gy, am, shape, impl="gpu")  # no kernel: atomic adds
        tol = 1e-6 if dtype == np.float32 else 1e-14
        for gx in (gather, scatter):
            assert gx.dtype == dtype and gx.shape == shape
            np.testing.assert_allclose(gx, gx_cpu, rtol=tol, atol=tol)


def test_maxpool_gpu_nan_and_noncontiguous():
    x = np.array([[[[1.0, np.nan], [np.nan, 2.0]]]])
    y, am = maxpool2d_forward(x, 2, 2, impl="gpu")
    assert np.isnan(y.item()) and am.item() == 1
    xt = np.random.default_rng(0).standard_normal((3, 1, 5, 4)).transpose(1, 0, 2, 3)
    y, am = maxpool2d_forward(xt, 2, 2, impl="gpu")
    np.testing.assert_array_equal(y, maxpool2d_forward(xt, 2, 2, impl="cpu")[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
def test_adam_gpu_equals_cpu(dtype, nesterov):
    rng = np.random.default_rng(1)
    p_cpu = rng.standard_normal((3, 7)).astype(dtype)
    p_gpu = p_cpu.copy()
    state = [np.zeros_like(p_cpu) for _ in range(4)]
    for step in range(1, 4):
        g = rng.standard_normal(p_cpu.shape).astype(dtype)
        adam_step(p_cpu, g, state[0], state[1], 0.01, 0.9, 0.99, 1e-8, 0.01, step,
                  nesterov=nesterov, impl="cpu")
        adam_step(p_gpu, g, state[2], state[3], 0.01, 0.9, 0.99, 1e-8, 0.01, step,
                  nesterov=nesterov, impl="gpu")
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(p_gpu, p_cpu, rtol=tol, atol=tol)
    np.testing.assert_allclose(state[2], state[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(state[3], state[1], rtol=tol, atol=tol)
