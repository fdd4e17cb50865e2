"""ReLU forward and backward: plain reference (NumPy or CuPy) and a Numba CPU kernel; the backward
pass fused with the per-channel sums a convolution's bias gradient takes (Conv2d with relu=True).

The forward pass keeps only its output y; the backward pass needs nothing else, because
y > 0 exactly where x > 0. As in PyTorch, NaN passes through the forward pass and passes the
gradient on (threshold_backward zeroes gy only where y <= 0, which is false for NaN).
"""
import numpy as np
from numba import njit, prange

from kernels._xp import get_array_module, pick_impl
from kernels.channel_sums import _plane_sum

SERIAL_MAX = 1 << 15  # up to this many elements, waking the thread pool costs more than it saves


# ---------------------------------------------------------------- reference (and the GPU)
def relu_forward_reference(x):
    return get_array_module(x).maximum(x, 0)  # maximum propagates NaN


def relu_backward_reference(gy, y):
    xp = get_array_module(gy, y)
    return xp.where(y <= 0, xp.zeros((), gy.dtype), gy)


# ---------------------------------------------------------------- CPU: one pass, in threads
@njit(cache=True)
def _forward_serial(x, y):
    for i in range(x.size):
        v = x[i]
        y[i] = v if not v <= 0 else 0  # NOTE: NaN <= 0 is false, so NaN passes


@njit(parallel=True, cache=True, nogil=True)
def _forward_parallel(x, y):
    for i in prange(x.size):
        v = x[i]
        y[i] = v if not v <= 0 else 0


@njit(cache=True)
def _backward_serial(gy, y, gx):
    for i in range(gy.size):
        gx[i] = gy[i] if not y[i] <= 0 else 0


@njit(parallel=True, cache=True, nogil=True)
def _backward_parallel(gy, y, gx):
    for i in prange(gy.size):
        gx[i] = gy[i] if not y[i] <= 0 else 0


def relu_forward_cpu(x, out=None):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x) if out is None else out
    kernel = _forward_serial if x.size <= SERIAL_MAX else _forward_parallel
    kernel(x.reshape(-1), y.reshape(-1))
    return y


def relu_backward_cpu(gy, y):
    if gy.shape != y.shape:
        raise ValueError(f"relu backward: gradient shape {gy.shape} differs from the output's "
                         f"{y.shape}")
    gy, y = np.ascontiguousarray(gy), np.ascontiguousarray(y)
    gx = np.empty_like(gy)
    kernel = _backward_serial if gy.size <= SERIAL_MAX else _backward_parallel
    kernel(gy.reshape(-1), y.reshape(-1), gx.reshape(-1))
    return gx


# ---------------------------------------------------------------- CPU: backward and channel sums
@njit(parallel=True, cache=True, nogil=True)
def _backward_sums(gy, y, gx, out):
    N, C = gy.shape[0], gy.shape[1]
    for c in prange(C):  # NOTE: one thread a channel: the order of the sums is fixed
        total = 0.0
        for n in range(N):
            g, m, out_plane = gy[n, c], y[n, c], gx[n, c]
            for k in range(g.shape[0]):  # NOTE: then summed while the plane is in cache
                out_plane[k] = g[k] if not m[k] <= 0 else 0
            total += _plane_sum(out_plane)
        out[c] = total
    return out


def relu_backward_channel_sums_cpu(gy, y):
    """(gx, sums): relu_backward_cpu's gx and channel_sums(gx), in one pass over gy and y."""
    if gy.shape != y.shape or gy.ndim < 2:
        raise ValueError(f"relu backward with channel sums: gradient shape {gy.shape} and "
                         f"output shape {y.shape} must be equal, (N, C, ...)")
    gy, y = np.ascontiguousarray(gy), np.ascontiguousarray(y)
    N, C = gy.shape[:2]
    gx = np.empty_like(gy)
    sums = _backward_sums(gy.reshape(N, C, -1), y.reshape(N, C, -1), gx.reshape(N, C, -1),
                          np.empty(C, np.float64))
    return gx, sums


# ---------------------------------------------------------------- public
def relu_forward(x, impl=None, out=None):
    """max(x, 0) elementwise (NaN stays NaN); into `out` when given (a C-contiguous array of
    x's shape and dtype; x itself for an in-place ReLU)."""
    if out is not None and not (out.shape == x.shape and out.dtype == x.dtype
                                and out.flags.c_contiguous):
        raise ValueError(f"relu: out must be a C-contiguous {x.dtype} array of shape "
                         f"{x.shape}")
    if pick_impl(impl, x) == "cpu":
        return relu_forward_cpu(x, out)
    if out is None:
        return relu_forward_reference(x)
    xp = get_array_module(x)
    y = xp.where(x <= 0, xp.zeros((), x.dtype), x)  # NaN passes, as in the reference
    out[...] = y
    return out


def relu_backward(gy, y, impl=None):
    """0 where the forward output y <= 0, else gy."""
    if pick_impl(impl, gy, y) == "cpu":
        return relu_backward_cpu(gy, y)
    return relu_backward_reference(gy, y)


def relu_backward_channel_sums(gy, y, impl=None):
    """(relu_backward(gy, y), its sums over every axis but 1) for (N, C, ...) arrays; the sums
    in float64 on the CPU (as kernels.channel_sums gives them), in gy's dtype on the GPU."""
    if pick_impl(impl, gy, y) == "cpu":
        return relu_backward_channel_sums_cpu(gy, y)
    gx = relu_backward_reference(gy, y)
    return gx, gx.sum(axis=(0,) + tuple(range(2, gx.ndim)))
