"""Max pooling over NCHW arrays: plain reference, Numba CPU and numba.cuda GPU kernels."""
import math

import numpy as np
from numba import njit, prange

from kernels import threads
from kernels._xp import cuda_simulator_enabled, get_array_module, launch, pair, pick_impl
from kernels.im2col import _valid_range


def pooled_size(size, kernel, stride, padding, ceil_mode):
    """PyTorch's pooling output size along one axis: floor (or ceil) of
    (size + 2·padding − kernel) / stride, plus one; with ceil_mode, a last window that would
    start past the input and its left padding is dropped."""
    span = size + 2 * padding - kernel + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _geometry(x_shape, kernel, stride, padding=0, ceil_mode=False, what="max pooling"):
    """(KH, KW, SH, SW, PH, PW, OH, OW) of a pooling; ValueError naming a bad argument."""
    if len(x_shape) != 4:
        raise ValueError(f"{what} needs an NCHW input, got shape {tuple(x_shape)}")
    KH, KW = pair(kernel, "kernel")
    SH, SW = pair(kernel if stride is None else stride, "stride")
    PH, PW = pair(padding, "padding")
    if min(KH, KW, SH, SW) < 1:
        raise ValueError(f"kernel {(KH, KW)} and stride {(SH, SW)} must be positive")
    if PH < 0 or PW < 0 or 2 * PH > KH or 2 * PW > KW:
        raise ValueError(f"{what}: padding {(PH, PW)} must be non-negative and at most half "
                         f"of the kernel size {(KH, KW)}")
    H, W = x_shape[2], x_shape[3]
    OH = pooled_size(H, KH, SH, PH, ceil_mode)
    OW = pooled_size(W, KW, SW, PW, ceil_mode)
    # NOTE: with ceil_mode a kernel larger than the padded input still gives one window (as
    # in PyTorch), clipped to the input; only an empty output is an error.
    if OH < 1 or OW < 1:
        raise ValueError(f"{what} kernel {(KH, KW)} is larger than the input's height and "
                         f"width {(H, W)}" + (f" with padding {(PH, PW)}" if PH or PW else ""))
    return KH, KW, SH, SW, PH, PW, OH, OW


# --------------------------------------------------------------------------------------------
# Reference: plain array operations (NumPy or CuPy)
# --------------------------------------------------------------------------------------------

def maxpool2d_forward_reference(x, kernel, stride=None, padding=0, ceil_mode=False):
    """Reference max pooling: (y, argmax), argmax the flat index h*W + w inside each plane."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    KH, KW, SH, SW, PH, PW, OH, OW = _geometry(x.shape, kernel, stride, padding, ceil_mode)
    # NOTE: padding (and the part of the last window past the input, with ceil_mode) is -inf,
    # which never beats a number. It can win only where a whole window is -inf, and then only
    # as the window's first element (argmax takes the first maximum): clamping that position
    # into the input gives the window's first input element, which is PyTorch's index there.
    bottom = max(0, (OH - 1) * SH + KH - H - PH)
    right = max(0, (OW - 1) * SW + KW - W - PW)
    if PH or PW or bottom or right:
        x = xp.pad(x, ((0, 0), (0, 0), (PH, bottom), (PW, right)), constant_values=-np.inf)
    # NOTE: windows[k] holds, for every output, the window element k = i*KW + j (row-major);
    # argmax over k returns the first maximum (and the first NaN), as the other kernels do.
    windows = xp.stack([x[:, :, i:i + SH * (OH - 1) + 1:SH, j:j + SW * (OW - 1) + 1:SW]
                        for i in range(KH) for j in range(KW)])
    k = xp.argmax(windows, axis=0)
    y = xp.take_along_axis(windows, k[None], axis=0)[0]
    rows = xp.clip(xp.arange(OH).reshape(OH, 1) * SH + k // KW - PH, 0, H - 1)
    cols = xp.clip(xp.arange(OW).reshape(1, OW) * SW + k % KW - PW, 0, W - 1)
    return y, (rows * W + cols).astype(xp.int32)


def maxpool2d_backward_reference(gy, argmax, x_shape, kernel=None, stride=None, padding=0,
                                 ceil_mode=False):
    """Reference max-pool gradient: gy added into the argmax positions (windows may overlap)."""
    xp = get_array_module(gy, argmax)
    N, C, H, W = x_shape
    P = N * C
    planes = xp.arange(P, dtype=xp.int64).reshape(P, 1) * (H * W)
    index = (planes + argmax.reshape(P, -1).astype(xp.int64)).ravel()
    gx = xp.bincount(index, weights=gy.ravel().astype(xp.float64), minlength=P * H * W)
    return gx.astype(gy.dtype).reshape(x_shape)


# --------------------------------------------------------------------------------------------
# CPU: Numba, parallel over the N*C planes
# --------------------------------------------------------------------------------------------

# NOTE: outputs are allocated by NumPy and passed in: NumPy asks the kernel for huge pages
# (madvise) on large arrays, Numba's allocator does not, and first touching 4 KB pages cost
# up to 5x the kernel itself (205 MB: 126 ms against 24 ms for allocate-and-fill).
#
# NOTE: `take` below decides whether v replaces the running maximum b without a branch:
# not (v <= b) is v > b or v is NaN, and b == b keeps a NaN once taken. So the first maximum
# wins ties (PyTorch's rule) and the first NaN wins over numbers. The loops are written so that
# LLVM sees constant window sizes or strides (the inline="always" helpers called with literal
# arguments): that lets it unroll the window and vectorise across the output row, 3-25x faster
# than the same loops with run-time sizes.

@njit(cache=True, inline="always")
def _plane_unrolled(x, y, argmax, p, KH, KW, SH, SW):
    """One plane, one output at a time, the window unrolled (small constant windows)."""
    W = x.shape[2]
    OH, OW = y.shape[1], y.shape[2]
    for oh in range(OH):
        h0 = oh * SH
        for ow in range(OW):
            w0 = ow * SW
            best = x[p, h0, w0]
            off = 0
            for i in range(KH):
                for j in range(KW):
                    v = x[p, h0 + i, w0 + j]
                    take = (not (v <= best)) & (best == best)
                    best = v if take else best
                    off = (i * W + j) if take else off
            y[p, oh, ow] = best
            argmax[p, oh, ow] = h0 * W + w0 + off


@njit(cache=True, inline="always")
def _row_update(r, SW, yr, ar, off, OW):
    """Fold the window element at r[ow * SW] into the running maxima of one output row."""
    for ow in range(OW):
        v = r[ow * SW]
        b = yr[ow]
        take = (not (v <= b)) & (b == b)
        yr[ow] = v if take else b
        ar[ow] = off if take else ar[ow]


@njit(cache=True, inline="always")
def _plane_rows(x, y, argmax, p, KH, KW, SH, SW):
    """One plane, a whole output row at a time, the loop over the window outside."""
    W = x.shape[2]
    OH, OW = y.shape[1], y.shape[2]
    for oh in range(OH):
        h0 = oh * SH
        yr = y[p, oh]
        ar = argmax[p, oh]
        r = x[p, h0]
        for ow in range(OW):
            yr[ow] = r[ow * SW]
            ar[ow] = 0
        for i in range(KH):
            r = x[p, h0 + i]
            for j in range(KW):
                if SW == 1:
                    _row_update(r[j:], 1, yr, ar, i * W + j, OW)
                elif SW == 2:
                    _row_update(r[j:], 2, yr, ar, i * W + j, OW)
                else:
                    _row_update(r[j:], SW, yr, ar, i * W + j, OW)
        for ow in range(OW):
            ar[ow] += h0 * W + ow * SW


@njit(cache=True, inline="always")
def _row_max_from(r, start, SW, yr, ar, lo, hi, base):
    """Fold r[start + k·SW] (flat index base + k·SW) into the running maxima yr[lo + k]."""
    rs, ys, acs = r[start:], yr[lo:hi], ar[lo:hi]   # views from 0: no wrap-around tests
    for k in range(hi - lo):
        v = rs[k * SW]
        b = ys[k]
        take = (not (v <= b)) & (b == b)
        ys[k] = v if take else b
        acs[k] = (base + k * SW) if take else acs[k]


@njit(cache=True, inline="always")
def _plane_padded_rows(x, y, argmax, p, KH, KW, SH, SW, PH, PW):
    """One plane with padding (or ceil_mode), a whole output row at a time: each window's
    taps that fall inside the input, in row-major order, from a running maximum of -inf whose
    index is the window's first input element (PyTorch's index for a window of -inf)."""
    H, W = x.shape[1], x.shape[2]
    OH, OW = y.shape[1], y.shape[2]
    for oh in range(OH):
        h0 = oh * SH - PH
        hs = max(h0, 0)
        yr, ar = y[p, oh], argmax[p, oh]
        for ow in range(OW):
            yr[ow] = -np.inf
            ar[ow] = hs * W + max(ow * SW - PW, 0)
        for i in range(KH):
            h = h0 + i
            if h < 0 or h >= H:
                continue
            r = x[p, h]
            for j in range(KW):
                lo, hi = _valid_range(j, PW, SW, W, OW)
                if hi > lo:
                    start = lo * SW + j - PW
                    if SW == 1:
                        _row_max_from(r, start, 1, yr, ar, lo, hi, h * W + start)
                    elif SW == 2:
                        _row_max_from(r, start, 2, yr, ar, lo, hi, h * W + start)
                    else:
                        _row_max_from(r, start, SW, yr, ar, lo, hi, h * W + start)


@njit(parallel=True, cache=True, nogil=True)
def _maxpool_padded_cpu(x, y, argmax, KH, KW, SH, SW, PH, PW):
    for p in prange(x.shape[0]):
        _plane_padded_rows(x, y, argmax, p, KH, KW, SH, SW, PH, PW)


@njit(parallel=True, cache=True, nogil=True)
def _maxpool_forward_cpu(x, y, argmax, KH, KW, SH, SW):
    P = x.shape[0]
    for p in prange(P):
        if KH == 2 and KW == 2 and SH == 2 and SW == 2:
            _plane_unrolled(x, y, argmax, p, 2, 2, 2, 2)
        elif KH == 3 and KW == 3 and SH == 3 and SW == 3:
            _plane_unrolled(x, y, argmax, p, 3, 3, 3, 3)
        else:
            _plane_rows(x, y, argmax, p, KH, KW, SH, SW)


@njit(parallel=True, cache=True, nogil=True)
def _maxpool_backward_cpu(gy, argmax, gx):
    P, Q = gy.shape
    HW = gx.shape[1]
    bad = np.zeros(P, np.int64)
    for p in prange(P):
        for q in range(HW):
            gx[p, q] = 0
        for q in range(Q):
            a = argmax[p, q]
            if a < 0 or a >= HW:
                bad[p] += 1
            else:
                gx[p, a] += gy[p, q]
    return bad.sum()


@threads.guarded
def maxpool2d_forward_cpu(x, kernel, stride=None, padding=0, ceil_mode=False):
    """Numba max pooling on a NumPy array: (y, argmax)."""
    N, C, H, W = x.shape
    KH, KW, SH, SW, PH, PW, OH, OW = _geometry(x.shape, kernel, stride, padding, ceil_mode)
    x3 = np.ascontiguousarray(x).reshape(N * C, H, W)
    y = np.empty((N, C, OH, OW), x.dtype)
    argmax = np.empty((N, C, OH, OW), np.int32)
    y3, a3 = y.reshape(N * C, OH, OW), argmax.reshape(N * C, OH, OW)
    if PH or PW or (OH - 1) * SH + KH > H or (OW - 1) * SW + KW > W:
        _maxpool_padded_cpu(x3, y3, a3, KH, KW, SH, SW, PH, PW)
    else:
        _maxpool_forward_cpu(x3, y3, a3, KH, KW, SH, SW)
    return y, argmax


@threads.guarded
def maxpool2d_backward_cpu(gy, argmax, x_shape, kernel=None, stride=None, padding=0,
                           ceil_mode=False):
    """Numba max-pool gradient on NumPy arrays: gx of shape x_shape."""
    N, C, H, W = x_shape
    gy2 = np.ascontiguousarray(gy).reshape(N * C, -1)
    am2 = np.ascontiguousarray(argmax).reshape(N * C, -1)
    gx = np.empty(x_shape, gy.dtype)
    bad = _maxpool_backward_cpu(gy2, am2, gx.reshape(N * C, H * W))
    if bad:
        raise ValueError(f"maxpool2d_backward: {bad} argmax entries outside the {H}x{W} input")
    return gx


# --------------------------------------------------------------------------------------------
# GPU: numba.cuda kernels on CuPy arrays (NumPy arrays under the CUDA simulator)
# --------------------------------------------------------------------------------------------

# NOTE: the simulator runs each CUDA thread as a Python thread: small blocks keep it quick
# (and make the tiny test shapes span several blocks).
_THREADS = 32 if cuda_simulator_enabled() else 256
_gpu = {}
cuda = None  # numba.cuda once a GPU kernel is needed (a module global: the simulator swaps it)


def _gpu_kernels():
    """Compile the CUDA kernels on first use, so that the CPU path never imports numba.cuda."""
    global cuda
    if _gpu:
        return _gpu
    from numba import cuda as numba_cuda
    cuda = numba_cuda

    @cuda.jit
    def forward(x, y, argmax, KH, KW, SH, SW, PH, PW):
        # one thread per output element of the (P, OH, OW) arrays; each window clipped to the
        # input (padding and the ceil_mode overhang take no part), as PyTorch does
        P, OH, OW = y.shape
        H, W = x.shape[1], x.shape[2]
        t = cuda.grid(1)
        if t >= P * OH * OW:
            return
        p = t // (OH * OW)
        oh = (t // OW) % OH
        ow = t % OW
        hs = max(oh * SH - PH, 0)
        ws = max(ow * SW - PW, 0)
        he = min(oh * SH - PH + KH, H)
        we = min(ow * SW - PW + KW, W)
        best = x[p, hs, ws]
        best_i = hs * W + ws
        for h in range(hs, he):
            for w in range(ws, we):
                v = x[p, h, w]
                if v > best or (v != v and best == best):
                    best = v
                    best_i = h * W + w
        y[p, oh, ow] = best
        argmax[p, oh, ow] = best_i

    @cuda.jit
    def backward_gather(gy, argmax, gx, KH, KW, SH, SW, PH, PW):
        # one thread per input element: sums gy over the windows whose argmax is this element
        P, H, W = gx.shape
        OH, OW = gy.shape[1], gy.shape[2]
        t = cuda.grid(1)
        if t >= P * H * W:
            return
        p = t // (H * W)
        h = (t // W) % H
        w = t % W
        # windows oh with oh*SH - PH <= h <= oh*SH - PH + KH - 1
        oh_lo = max(0, (h + PH - KH + SH) // SH)
        oh_hi = min(OH - 1, (h + PH) // SH)
        ow_lo = max(0, (w + PW - KW + SW) // SW)
        ow_hi = min(OW - 1, (w + PW) // SW)
        me = h * W + w
        acc = 0.0  # float64 accumulator: at most a few additions
        for oh in range(oh_lo, oh_hi + 1):
            for ow in range(ow_lo, ow_hi + 1):
                if argmax[p, oh, ow] == me:
                    acc += gy[p, oh, ow]
        gx[p, h, w] = acc

    @cuda.jit
    def backward_scatter(gy, argmax, gx):
        # one thread per output element; overlapping windows meet in an atomic add
        P, Q = gy.shape
        HW = gx.shape[1]
        t = cuda.grid(1)
        if t >= P * Q:
            return
        p = t // Q
        q = t % Q
        a = argmax[p, q]
        if a >= 0 and a < HW:
            cuda.atomic.add(gx, (p, a), gy[p, q])

    _gpu.update(forward=forward, backward_gather=backward_gather,
                backward_scatter=backward_scatter)
    return _gpu


def _launch(kernel, n, xp, *args):
    """Launch a 1-D grid of n threads on CuPy's current stream (the default one otherwise)."""
    launch(cuda, kernel, max(1, math.ceil(n / _THREADS)), _THREADS, xp, *args)


def maxpool2d_forward_gpu(x, kernel, stride=None, padding=0, ceil_mode=False):
    """numba.cuda max pooling: CuPy in, CuPy out (NumPy in the simulator)."""
    xp = get_array_module(x)
    k = _gpu_kernels()
    N, C, H, W = x.shape
    KH, KW, SH, SW, PH, PW, OH, OW = _geometry(x.shape, kernel, stride, padding, ceil_mode)
    x3 = xp.ascontiguousarray(x).reshape(N * C, H, W)
    y = xp.empty((N * C, OH, OW), x.dtype)
    argmax = xp.empty((N * C, OH, OW), xp.int32)
    _launch(k["forward"], y.size, xp, x3, y, argmax, KH, KW, SH, SW, PH, PW)
    return y.reshape(N, C, OH, OW), argmax.reshape(N, C, OH, OW)


def maxpool2d_backward_gpu(gy, argmax, x_shape, kernel=None, stride=None, padding=0,
                           ceil_mode=False):
    """numba.cuda max-pool gradient: a deterministic gather when kernel and stride are known,
    an atomic scatter otherwise."""
    xp = get_array_module(gy, argmax)
    k = _gpu_kernels()
    N, C, H, W = x_shape
    P = N * C
    gy3 = xp.ascontiguousarray(gy).reshape(P, gy.shape[2], gy.shape[3])
    am3 = xp.ascontiguousarray(argmax).reshape(gy3.shape)
    if kernel is not None:
        KH, KW, SH, SW, PH, PW, OH, OW = _geometry(x_shape, kernel, stride, padding, ceil_mode)
        if (OH, OW) != gy3.shape[1:]:
            raise ValueError(f"maxpool2d_backward: gy has spatial shape {gy3.shape[1:]}, "
                             f"kernel {(KH, KW)} stride {(SH, SW)} padding {(PH, PW)} "
                             f"ceil_mode={ceil_mode} give {(OH, OW)}")
        gx = xp.empty((P, H, W), gy.dtype)
        _launch(k["backward_gather"], gx.size, xp, gy3, am3, gx, KH, KW, SH, SW, PH, PW)
    else:
        gx = xp.zeros((P, H * W), gy.dtype)
        _launch(k["backward_scatter"], gy3.size, xp, gy3.reshape(P, -1), am3.reshape(P, -1),
                gx)
    return gx.reshape(x_shape)


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------

_FORWARD = {"reference": maxpool2d_forward_reference, "cpu": maxpool2d_forward_cpu,
            "gpu": maxpool2d_forward_gpu}
_BACKWARD = {"reference": maxpool2d_backward_reference, "cpu": maxpool2d_backward_cpu,
             "gpu": maxpool2d_backward_gpu}


def maxpool2d_forward(x, kernel, stride=None, padding=0, ceil_mode=False, impl=None):
    """Max pooling of x (N,C,H,W) as PyTorch's max_pool2d: `padding` (at most half the kernel)
    takes no part in any maximum; ceil_mode rounds the output size up, keeping only windows
    that start inside the input or its left padding.

    Returns (y, argmax): y (N,C,OH,OW) of x's dtype; argmax int32 of y's shape, the flat index
    h*W + w of each maximum inside its (n, c) plane of the unpadded input (PyTorch's indices),
    the first maximum in row-major window order on ties. `stride` defaults to `kernel`.
    """
    _geometry(x.shape, kernel, stride, padding, ceil_mode)
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"maxpool2d_forward supports float32 and float64, got {x.dtype}")
    return _FORWARD[pick_impl(impl, x)](x, kernel, stride, padding, ceil_mode)


def maxpool2d_backward(gy, argmax, x_shape, kernel=None, stride=None, padding=0,
                       ceil_mode=False, impl=None):
    """Gradient of max pooling: gx of shape x_shape with gy added at the argmax positions
    (overlapping windows accumulate). kernel and stride are optional (argmax suffices)."""
    x_shape = tuple(int(s) for s in x_shape)
    if len(x_shape) != 4:
        raise ValueError(f"maxpool2d_backward: x_shape must be NCHW, got {x_shape}")
    if gy.shape != argmax.shape or gy.ndim != 4 or gy.shape[:2] != x_shape[:2]:
        raise ValueError(f"maxpool2d_backward: gy {gy.shape} and argmax {argmax.shape} must "
                         f"have the same (N, C, OH, OW) shape, with N, C of x {x_shape}")
    return _BACKWARD[pick_impl(impl, gy, argmax)](gy, argmax, x_shape, kernel, stride,
                                                  padding, ceil_mode)
