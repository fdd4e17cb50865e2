"""numba.cuda im2col/col2im and the GPU conv path under the CUDA simulator, against the CPU.

Run in a fresh interpreter with NUMBA_ENABLE_CUDASIM=1 (test_conv.py does), on tiny shapes:
the simulator runs every CUDA thread as a Python thread.
"""
import os

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("run with NUMBA_ENABLE_CUDASIM=1 in a fresh interpreter",
                allow_module_level=True)

from numba.core import config  # noqa: E402

from kernels import col2im, conv2d_backward, conv2d_forward, im2col  # noqa: E402

assert config.ENABLE_CUDASIM, "numba was imported before NUMBA_ENABLE_CUDASIM was set"

# (N, C, H, W), (F, KH, KW), stride, padding: batch 1, odd sizes, stride 3 > kernel 2,
# a 7x7 kernel with padding 3, non-square kernels and strides
CASES = [
    ((1, 2, 5, 7), (3, 3, 3), (1, 1), (1, 1)),
    ((1, 1, 7, 8), (2, 2, 2), (3, 3), (0, 1)),
    ((2, 1, 9, 9), (2, 7, 7), (1, 1), (3, 3)),
    ((1, 2, 9, 7), (2, 3, 3), (3, 3), (0, 0)),
    ((2, 2, 6, 7), (3, 2, 3), (2, 1), (1, 2)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape,w,stride,padding", CASES)
def test_gpu_equals_cpu(x_shape, w, stride, padding, dtype):
    rng = np.random.default_rng(sum(x_shape) + sum(w))
    x = rng.standard_normal(x_shape).astype(dtype)
    kernel = w[1:]
    col = im2col(x, kernel, stride, padding, impl="gpu")
    np.testing.assert_array_equal(col, im2col(x, kernel, stride, padding, impl="cpu"))
    g = rng.standard_normal(col.shape).astype(dtype)
    gx = col2im(g, x_shape, kernel, stride, padding, impl="gpu")
    gx_cpu = col2im(g, x_shape, kernel, stride, padding, impl="cpu")
    tol = 1e-6 if dtype == np.float32 else 1e-14
    assert gx.dtype == dtype
    np.testing.assert_allclose(gx, gx_cpu, rtol=tol, atol=tol)

    W = rng.standard_normal((w[0], x_shape[1]) + kernel).astype(dtype)
    b = rng.standard_normal(w[0]).astype(dtype)
    y = conv2d_forward(x, W, b, stride, padding, impl="gpu")
    y_cpu = conv2d_forward(x, W, b, stride, padding, impl="cpu")
    assert y.dtype == dtype
    np.testing.assert_allclose(y, y_cpu, rtol=10 * tol, atol=10 * tol)
    gy = rng.standard_normal(y.shape).astype(dtype)
    for got, want in zip(conv2d_backward(gy, x, W, stride, padding, impl="gpu"),
                         conv2d_backward(gy, x, W, stride, padding, impl="cpu")):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=10 * tol, atol=10 * tol)
