"""y = x * scale[c] + shift[c] per channel in one pass (batch norm in eval mode), then ReLU if
asked: a plain reference (NumPy or CuPy) and a Numba CPU kernel."""
import numpy as np
from numba import njit, prange

from kernels._xp import get_array_module, pick_impl

SERIAL_MAX = 1 << 15  # up to this many elements, waking the thread pool costs more than it saves


def channel_affine_reference(x, scale, shift, relu=False):
    """x (N, C, ...) times scale (C,) plus shift (C,), broadcast over the other axes."""
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    y = x * scale.reshape(shape)
    y += shift.reshape(shape)
    if relu:
        get_array_module(y).maximum(y, 0, out=y)
    return y


@njit(cache=True)
def _serial(x, scale, shift, relu, y):
    N, C, L = x.shape
    for n in range(N):
        for c in range(C):
            s, h = scale[c], shift[c]
            for i in range(L):
                v = x[n, c, i] * s
                v = v + h
                y[n, c, i] = max(v, 0) if relu else v


@njit(parallel=True, cache=True, nogil=True)
def _parallel(x, scale, shift, relu, y):
    N, C, L = x.shape
    for t in prange(N * C):
        n, c = t // C, t % C
        s, h = scale[c], shift[c]
        for i in range(L):
            v = x[n, c, i] * s
            v = v + h
            y[n, c, i] = max(v, 0) if relu else v


def channel_affine_cpu(x, scale, shift, relu=False, out=None):
    """The reference's numbers (a product, then a sum, each rounded), one pass, in threads;
    into `out` when given (x itself: in place)."""
    x = np.ascontiguousarray(x)
    y = np.empty_like(x) if out is None else out
    N, C = x.shape[:2]
    shape3 = (N, C, x.size // max(1, N * C))
    kernel = _serial if x.size <= SERIAL_MAX else _parallel
    kernel(x.reshape(shape3), np.ascontiguousarray(scale, x.dtype),
           np.ascontiguousarray(shift, x.dtype), relu, y.reshape(shape3))
    return y


def channel_affine(x, scale, shift, impl=None, relu=False, out=None):
    """y = x * scale[c] + shift[c] (then max(y, 0) when relu) for x (N, C, ...) with scale,
    shift (C,) of x's dtype; into `out` (a C-contiguous array like x, or x) when given."""
    if out is not None and not (out.shape == x.shape and out.dtype == x.dtype
                                and out.flags.c_contiguous):
        raise ValueError(f"channel_affine: out must be a C-contiguous {x.dtype} array of "
                         f"shape {x.shape}")
    impl = pick_impl(impl, x)
    if impl == "cpu":
        return channel_affine_cpu(x, scale, shift, relu, out)
    xp = get_array_module(x)
    y = channel_affine_reference(x, xp.asarray(scale, x.dtype), xp.asarray(shift, x.dtype),
                                 relu)
    if out is None:
        return y
    out[...] = y
    return out
