"""numba.cuda kernels of depthwise.py (and the grouped path on "gpu") under the CUDA simulator,
against the CPU kernels.

Run in a fresh interpreter with NUMBA_ENABLE_CUDASIM=1 (test_depthwise.py does), on tiny shapes:
the simulator runs every CUDA thread as a Python thread.
"""
import os

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("run with NUMBA_ENABLE_CUDASIM=1 in a fresh interpreter",
                allow_module_level=True)

from numba.core import config  # noqa: E402

from kernels import conv2d_backward, conv2d_forward  # noqa: E402
from kernels.depthwise import (depthwise_conv2d_backward,  # noqa: E402
                               depthwise_conv2d_forward)

assert config.ENABLE_CUDASIM, "numba was imported before NUMBA_ENABLE_CUDASIM was set"

# (N, C, H, W), multiplier, kernel, stride, padding
CASES = [
    ((1, 2, 5, 4), 1, 3, 1, 1),
    ((2, 1, 6, 5), 2, 3, 2, 1),
    ((1, 2, 7, 6), 1, 5, 2, 2),
    ((1, 1, 5, 5), 2, 3, 3, 0),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,mult,k,stride,padding", CASES)
def test_depthwise_gpu_equals_cpu(shape, mult, k, stride, padding, dtype):
    rng = np.random.default_rng(sum(shape) + k)
    x = rng.standard_normal(shape).astype(dtype)
    W = rng.standard_normal((shape[1] * mult, 1, k, k)).astype(dtype)
    b = rng.standard_normal(shape[1] * mult).astype(dtype)
    y_cpu = depthwise_conv2d_forward(x, W, b, stride, padding, impl="cpu")
    y = depthwise_conv2d_forward(x, W, b, stride, padding, impl="gpu")
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, y_cpu, rtol=tol, atol=tol)
    gy = rng.standard_normal(y.shape).astype(dtype)
    cpu = depthwise_conv2d_backward(gy, x, W, stride, padding, impl="cpu")
    gpu = depthwise_conv2d_backward(gy, x, W, stride, padding, impl="gpu")
    for a, c in zip(gpu, cpu):
        assert a.dtype == dtype and a.shape == c.shape
        np.testing.assert_allclose(a, c, rtol=tol, atol=tol)


def test_grouped_gpu_path_equals_cpu():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 4, 5, 4))
    W = rng.standard_normal((6, 2, 3, 3))
    y = conv2d_forward(x, W, None, 1, 1, impl="gpu", groups=2)
    np.testing.assert_allclose(y, conv2d_forward(x, W, None, 1, 1, impl="cpu", groups=2),
                               rtol=1e-12, atol=1e-12)
    gy = rng.standard_normal(y.shape)
    for a, c in zip(conv2d_backward(gy, x, W, 1, 1, impl="gpu", groups=2),
                    conv2d_backward(gy, x, W, 1, 1, impl="cpu", groups=2)):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
