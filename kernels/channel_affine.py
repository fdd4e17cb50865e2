"""y = x * scale[c] + shift[c] per channel in one pass (batch norm in eval mode): a plain
reference (NumPy or CuPy) and a Numba CPU kernel."""
import numpy as np
from numba import njit, prange

from kernels._xp import get_array_module, pick_impl

SERIAL_MAX = 1 << 15  # up to this many elements, waking the thread pool costs more than it saves


def channel_affine_reference(x, scale, shift):
    """x (N, C, ...) times scale (C,) plus shift (C,), broadcast over the other axes."""
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    y = x * scale.reshape(shape)
    y += shift.reshape(shape)
    return y


@njit(cache=True)
def _serial(x, scale, shift, y):
    N, C, L = x.shape
    for n in range(N):
        for c in range(C):
            s, h = scale[c], shift[c]
            for i in range(L):
                v = x[n, c, i] * s
                y[n, c, i] = v + h


@njit(parallel=True, cache=True, nogil=True)
def _parallel(x, scale, shift, y):
    N, C, L = x.shape
    for t in prange(N * C):
        n, c = t // C, t % C
        s, h = scale[c], shift[c]
        for i in range(L):
            v = x[n, c, i] * s
            y[n, c, i] = v + h


def channel_affine_cpu(x, scale, shift):
    """The reference's numbers (a product, then a sum, each rounded), one pass, in threads."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    N, C = x.shape[:2]
    shape3 = (N, C, x.size // max(1, N * C))
    kernel = _serial if x.size <= SERIAL_MAX else _parallel
    kernel(x.reshape(shape3), np.ascontiguousarray(scale, x.dtype),
           np.ascontiguousarray(shift, x.dtype), y.reshape(shape3))
    return y


def channel_affine(x, scale, shift, impl=None):
    """y = x * scale[c] + shift[c] for x (N, C, ...) with scale, shift (C,) of x's dtype."""
    impl = pick_impl(impl, x)
    if impl == "cpu":
        return channel_affine_cpu(x, scale, shift)
    xp = get_array_module(x)
    return channel_affine_reference(x, xp.asarray(scale, x.dtype), xp.asarray(shift, x.dtype))
