"""The backward pass of ReLU then max pooling in one pass, with the per-channel sums a preceding
convolution's bias gradient takes: plain reference (NumPy or CuPy) and a Numba CPU kernel.

y = maxpool(relu(z)): the pooled output is the ReLU output at its argmax, so the ReLU's mask at
an argmax position is `pooled > 0` there, and the gradient of z is gy scattered to the argmax
positions where the pooled value is > 0 (NaN passes, as in kernels.relu). Nothing but the
pooled output's mask and the argmax is needed: the ReLU output itself need not be kept.
"""
import numpy as np
from numba import njit, prange

from kernels import threads
from kernels._xp import get_array_module, is_gpu_array, pick_impl
from kernels.channel_sums import _plane_sum
from kernels.pool import maxpool2d_backward, maxpool2d_backward_reference
from kernels.relu import relu_forward


SERIAL_MAX = 1 << 15  # up to this many elements, waking the thread pool costs more than it saves


@njit(cache=True, inline="always")
def _mask_one(y, keep, relu, i):
    v = y[i]
    kept = not v <= 0     # NOTE: NaN <= 0 is false: NaN is kept (and passes the ReLU)
    keep[i] = kept
    if relu and not kept:
        y[i] = 0


@njit(cache=True)
def _mask_serial(y, keep, relu):
    for i in range(y.size):
        _mask_one(y, keep, relu, i)


@njit(parallel=True, cache=True, nogil=True)
def _mask_parallel(y, keep, relu):
    for i in prange(y.size):
        _mask_one(y, keep, relu, i)


@threads.guarded
def _mask_cpu(pooled, relu):
    flat = pooled.reshape(-1)   # a view: the ReLU is applied in place
    keep = np.empty(pooled.shape, np.bool_)
    (_mask_serial if flat.size <= SERIAL_MAX else _mask_parallel)(flat, keep.reshape(-1), relu)
    return keep


def _check_in_place(pooled):
    if not pooled.flags.c_contiguous or not pooled.flags.writeable:
        raise ValueError(f"relu_in_place_mask: the pooled output must be a writeable "
                         f"C-contiguous array (got shape {pooled.shape}, strides "
                         f"{pooled.strides})")


def relu_mask(pooled):
    """The ReLU's mask seen through the pooling: True where pooled > 0 or NaN (bool array);
    one parallel pass on the CPU."""
    if is_gpu_array(pooled):
        return ~(pooled <= 0)
    return _mask_cpu(np.ascontiguousarray(pooled), False)


def relu_in_place_mask(pooled):
    """max(pooled, 0) in place (NaN passes, as kernels.relu_forward) and its relu_mask, in one
    pass over the array on the CPU; the pooled output of max pooling (ReLU commutes with
    max)."""
    if is_gpu_array(pooled):
        return ~(relu_forward(pooled, out=pooled) <= 0)
    _check_in_place(pooled)
    return _mask_cpu(pooled, True)


def _check(gy, argmax, keep, x_shape):
    x_shape = tuple(int(s) for s in x_shape)
    if len(x_shape) != 4 or gy.ndim != 4 or gy.shape != argmax.shape or \
            gy.shape != keep.shape or gy.shape[:2] != x_shape[:2]:
        raise ValueError(f"maxpool2d_relu_backward: gy {gy.shape}, argmax {argmax.shape} and "
                         f"mask {keep.shape} must have one (N, C, OH, OW) shape, with N, C of "
                         f"the input {x_shape}")
    return x_shape


def maxpool2d_relu_backward_reference(gy, argmax, keep, x_shape):
    """(gz, sums) by plain array operations: gz = maxpool2d_backward(gy where keep, argmax),
    sums = gz summed over every axis but 1 (in float64, in gy's dtype on the GPU)."""
    x_shape = _check(gy, argmax, keep, x_shape)
    xp = get_array_module(gy, argmax, keep)
    masked = xp.where(keep, gy, xp.zeros((), gy.dtype))
    gz = maxpool2d_backward_reference(masked, argmax, x_shape)
    dtype = np.float64 if xp is np else gy.dtype
    return gz, gz.sum(axis=(0, 2, 3), dtype=dtype)


@njit(parallel=True, cache=True, nogil=True)
def _backward_sums(gy, argmax, keep, gz, out, want_sums):
    N, C, Q = gy.shape
    HW = gz.shape[2]
    bad = np.zeros(C, np.int64)
    for c in prange(C):  # NOTE: one thread a channel: the order of the sums is fixed
        total = 0.0
        for n in range(N):
            g = gz[n, c]
            for k in range(HW):
                g[k] = 0
            for q in range(Q):
                a = argmax[n, c, q]
                if a < 0 or a >= HW:
                    bad[c] += 1
                elif keep[n, c, q]:
                    g[a] += gy[n, c, q]
            # NOTE: summed as kernels.relu sums the masked plane (the same bits as the unfused
            # passes), while the plane is in cache
            if want_sums:
                total += _plane_sum(g)
        out[c] = total
    return bad.sum()


@threads.guarded
def maxpool2d_relu_backward_cpu(gy, argmax, keep, x_shape, sums=True):
    """The Numba kernel: (gz, float64 sums or None), one pass over gy, argmax and the mask."""
    N, C, H, W = x_shape = _check(gy, argmax, keep, x_shape)
    gz = np.empty(x_shape, gy.dtype)
    out = np.empty(C, np.float64)
    flat = (N, C, -1)
    bad = _backward_sums(np.ascontiguousarray(gy).reshape(flat),
                         np.ascontiguousarray(argmax).reshape(flat),
                         np.ascontiguousarray(keep).reshape(flat), gz.reshape(N, C, H * W), out,
                         bool(sums))
    if bad:
        raise ValueError(f"maxpool2d_relu_backward: {bad} argmax entries outside the {H}x{W} "
                         f"input")
    return gz, (out if sums else None)


def maxpool2d_relu_backward(gy, argmax, keep, x_shape, kernel=None, stride=None, padding=0,
                            ceil_mode=False, impl=None, sums=True):
    """(gz, sums) for y = maxpool(relu(z)): gz, the gradient of z (x_shape), from the pooled
    gradient gy, the pooling's argmax and keep = relu_mask(y); sums, gz summed over every axis
    but 1 (a convolution's bias gradient; float64 on the CPU as kernels.channel_sums gives
    it, gy's dtype on the GPU), None unless `sums`. The same numbers as
    relu_backward_channel_sums applied to maxpool2d_backward's gradient. kernel, stride,
    padding, ceil_mode: the pooling's (the GPU then gathers, deterministically)."""
    which = pick_impl(impl, gy, argmax)
    if which == "cpu":
        return maxpool2d_relu_backward_cpu(gy, argmax, keep, x_shape, sums)
    if which == "reference":
        gz, total = maxpool2d_relu_backward_reference(gy, argmax, keep, x_shape)
        return gz, (total if sums else None)
    x_shape = _check(gy, argmax, keep, x_shape)
    xp = get_array_module(gy, argmax, keep)
    gz = maxpool2d_backward(xp.where(keep, gy, xp.zeros((), gy.dtype)), argmax, x_shape, kernel,
                            stride, padding, ceil_mode, impl=which)
    return gz, (gz.sum(axis=(0, 2, 3)) if sums else None)
