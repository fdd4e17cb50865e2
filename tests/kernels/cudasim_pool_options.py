"""numba.cuda max-pool kernels with padding and ceil_mode under the CUDA simulator, against the
CPU kernels (and the GPU form of average pooling, array expressions, against its CPU kernel).

Run in a fresh interpreter with NUMBA_ENABLE_CUDASIM=1 (tests/test_pool_options.py does).
"""
import os

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("run with NUMBA_ENABLE_CUDASIM=1 in a fresh interpreter",
                allow_module_level=True)

from numba.core import config  # noqa: E402

from kernels.avgpool import avgpool2d_backward, avgpool2d_forward  # noqa: E402
from kernels.pool import maxpool2d_backward, maxpool2d_forward  # noqa: E402

assert config.ENABLE_CUDASIM, "numba was imported before NUMBA_ENABLE_CUDASIM was set"

# (N, C, H, W), kernel, stride, padding, ceil_mode
CASES = [
    ((1, 2, 7, 7), (3, 3), (2, 2), (1, 1), False),
    ((1, 1, 8, 8), (3, 3), (2, 2), (0, 0), True),
    ((2, 1, 5, 6), (2, 3), (2, 2), (1, 1), True),
    ((1, 1, 5, 5), (3, 3), (1, 1), (1, 1), False),
    ((1, 2, 2, 3), (3, 4), (2, 2), (1, 1), True),  # ceil_mode: window larger than the input
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kernel,stride,padding,ceil", CASES)
def test_maxpool_gpu_equals_cpu(shape, kernel, stride, padding, ceil, dtype):
    rng = np.random.default_rng(sum(shape))
    for x in (rng.standard_normal(shape).astype(dtype),
              rng.integers(0, 3, shape).astype(dtype),
              np.full(shape, -np.inf, dtype)):
        y_cpu, am_cpu = maxpool2d_forward(x, kernel, stride, padding, ceil, impl="cpu")
        y, am = maxpool2d_forward(x, kernel, stride, padding, ceil, impl="gpu")
        np.testing.assert_array_equal(y, y_cpu)
        np.testing.assert_array_equal(am, am_cpu)
        gy = rng.standard_normal(y.shape).astype(dtype)
        gx_cpu = maxpool2d_backward(gy, am_cpu, shape, kernel, stride, padding, ceil,
                                    impl="cpu")
        gather = maxpool2d_backward(gy, am, shape, kernel, stride, padding, ceil, impl="gpu")
        tol = 1e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(gather, gx_cpu, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape,kernel,stride,padding,ceil", CASES)
def test_avgpool_gpu_equals_cpu(shape, kernel, stride, padding, ceil):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    for include in (True, False):
        args = (kernel, stride, padding, ceil, include)
        y = avgpool2d_forward(x, *args, impl="gpu")
        np.testing.assert_allclose(y, avgpool2d_forward(x, *args, impl="cpu"), rtol=1e-12)
        gy = rng.standard_normal(y.shape)
        np.testing.assert_allclose(avgpool2d_backward(gy, shape, *args, impl="gpu"),
                                   avgpool2d_backward(gy, shape, *args, impl="cpu"),
                                   rtol=1e-12, atol=1e-15)
