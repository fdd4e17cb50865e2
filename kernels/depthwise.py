"""Depthwise 2-D convolution (groups = in_channels): reference, Numba CPU and numba.cuda kernels.

x is (N, C, H, W) and W is (F, 1, KH, KW) with F = M*C: output channel o reads input channel
o // M alone (M is the channel multiplier), as PyTorch's conv2d(..., groups=C). The forward
pass is y[n, o] = b[o] + Σᵢⱼ W[o, 0, i, j] · xpad[n, o // M, oh·SH + i, ow·SW + j].
"""
import math

import numpy as np
from numba import njit, prange

from . import threads
from ._xp import cuda_simulator_enabled, get_array_module, launch, pair, pick_impl
from .im2col import _valid_range, conv_output_size


def _check_args(x, W, b, stride, padding):
    """(stride, padding, OH, OW) after checking shapes and dtypes; ValueError naming them."""
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    if x.ndim != 4 or W.ndim != 4:
        raise ValueError(f"depthwise conv2d: x must be NCHW and W (F, 1, KH, KW), got shapes "
                         f"{tuple(x.shape)} and {tuple(W.shape)}")
    C, F = x.shape[1], W.shape[0]
    if W.shape[1] != 1 or F % C or F == 0:
        raise ValueError(f"depthwise conv2d: W must be (k*C, 1, KH, KW) for x of {C} channels, "
                         f"got shape {tuple(W.shape)}")
    if x.dtype not in (np.float32, np.float64) or W.dtype != x.dtype:
        raise ValueError(f"depthwise conv2d: x and W must both be float32 or both float64, "
                         f"got {x.dtype} and {W.dtype}")
    if b is not None and tuple(b.shape) != (F,):
        raise ValueError(f"depthwise conv2d: b must have shape ({F},), got {tuple(b.shape)}")
    OH, OW = conv_output_size(x.shape, W.shape[2:], stride, padding)
    return stride, padding, OH, OW


def _check_gy(gy, x, W, OH, OW):
    expected = (x.shape[0], W.shape[0], OH, OW)
    if tuple(gy.shape) != expected:
        raise ValueError(f"depthwise conv2d backward: gy has shape {tuple(gy.shape)}, expected "
                         f"{expected}")


# ---------------------------------------------------------------- reference (NumPy or CuPy)
def _windows(KH, KW, stride, OH, OW):
    """(i, j, slices) for each kernel tap: the strided view of xpad that tap reads."""
    SH, SW = stride
    return [(i, j, (Ellipsis, slice(i, i + SH * (OH - 1) + 1, SH),
                    slice(j, j + SW * (OW - 1) + 1, SW)))
            for i in range(KH) for j in range(KW)]


def _padded_repeated(x, M, padding, xp):
    """x zero-padded, each channel repeated M times (channel o of the result is x's o // M)."""
    PH, PW = padding
    xpad = xp.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW))) if PH or PW else x
    return xp.repeat(xpad, M, axis=1) if M > 1 else xpad


def depthwise_forward_reference(x, W, b, stride, padding):
    """Plain version: one multiply-add of a strided view per kernel tap."""
    stride, padding, OH, OW = _check_args(x, W, b, stride, padding)
    xp = get_array_module(x)
    F, _, KH, KW = W.shape
    xr = _padded_repeated(x, F // x.shape[1], padding, xp)
    y = xp.zeros((x.shape[0], F, OH, OW), dtype=x.dtype)
    for i, j, s in _windows(KH, KW, stride, OH, OW):
        y += W[:, 0, i, j].reshape(1, F, 1, 1) * xr[s]
    if b is not None:
        y += b.reshape(1, F, 1, 1)
    return y


def depthwise_backward_reference(gy, x, W, stride, padding, need_gx=True, need_gW=True,
                                 need_gb=True):
    """Plain version: each tap's gradient is the same strided view, read or added into."""
    stride, padding, OH, OW = _check_args(x, W, None, stride, padding)
    _check_gy(gy, x, W, OH, OW)
    xp = get_array_module(x)
    (N, C, H, Wd), (F, _, KH, KW), (PH, PW) = x.shape, W.shape, padding
    M = F // C
    gx = gW = gb = None
    taps = _windows(KH, KW, stride, OH, OW)
    if need_gW:
        xr = _padded_repeated(x, M, padding, xp)
        gW = xp.zeros(W.shape, dtype=x.dtype)
        for i, j, s in taps:
            gW[:, 0, i, j] = (gy * xr[s]).sum(axis=(0, 2, 3))
    if need_gb:
        gb = gy.sum(axis=(0, 2, 3))
    if need_gx:
        g = xp.zeros((N, F, H + 2 * PH, Wd + 2 * PW), dtype=x.dtype)
        for i, j, s in taps:
            g[s] += W[:, 0, i, j].reshape(1, F, 1, 1) * gy
        gx = g.reshape(N, C, M, H + 2 * PH, Wd + 2 * PW).sum(axis=2)[..., PH:PH + H, PW:PW + Wd]
    return gx, gW, gb


# ---------------------------------------------------------------- CPU (Numba)
# NOTE: each task is one (image, channel) plane, and every loop runs along an output row with
# the kernel tap (i, j) fixed, a contiguous a·x + y that LLVM vectorises. _valid_range gives
# the output columns whose input column lies inside the image, so no test sits in the inner
# loop. A column stride SW > 1 would make those rows strided gathers (3 GFLOP/s instead of
# ~10-15 at stride 1): the plane is first split into its SW column phases,
# ph[r, h, q] = x[h, q·SW + r], so that input column ow·SW + off, with off = q0·SW + r
# (q0 = off // SW), is ph[r, h, ow + q0], contiguous in ow.
# NOTE: the helpers index views that start at the first valid column, with a loop counter
# from 0: Numba wraps negative indices around, and an index such as ow + off with a run-time
# offset could be negative, so it would test every element and the loop would not vectorise
# (1 GFLOP/s instead of ~10 at MobileNetV2's shapes).
@njit(cache=True, inline="always")
def _row_axpy(yr, xr, w, lo, hi, off):
    """yr[ow] += w · xr[ow + off] for ow in [lo, hi)."""
    ys, xs = yr[lo:hi], xr[lo + off:]
    for k in range(hi - lo):
        ys[k] += w * xs[k]


@njit(cache=True, inline="always")
def _row_scatter(gxr, gyr, w, lo, hi, off):
    """gxr[ow + off] += w · gyr[ow] for ow in [lo, hi)."""
    gxs, gys = gxr[lo + off:], gyr[lo:hi]
    for k in range(hi - lo):
        gxs[k] += w * gys[k]


@njit(cache=True, inline="always")
def _row_products(acc, gyr, xr, lo, hi, off):
    """acc[ow] += gyr[ow] · xr[ow + off] for ow in [lo, hi) (no reduction: vectorises)."""
    accs, gys, xs = acc[lo:hi], gyr[lo:hi], xr[lo + off:]
    for k in range(hi - lo):
        accs[k] += gys[k] * xs[k]


@njit(cache=True, inline="always")
def _split_phases(plane, SW, ph):
    """ph[r, h, q] = plane[h, q·SW + r]."""
    H, W = plane.shape
    for h in range(H):
        for r in range(SW):
            row = plane[h, r:]
            out = ph[r, h]
            for q in range((W - r + SW - 1) // SW):
                out[q] = row[q * SW]


@njit(cache=True, inline="always")
def _split_phases_padded(plane, SW, PH, PW, ph):
    """ph[r, h + PH, q] = plane[h, q·SW + r − PW] (ph zeroed first: the padding stays 0)."""
    H, W = plane.shape
    Wq = ph.shape[2]
    if SW == 2:
        # NOTE: both phases in one loop (an interleaved load LLVM vectorises): column w goes
        # to phase (w + PW) % 2 at (w + PW) // 2
        p0 = PW % 2
        for h in range(H):
            row = plane[h]
            even, odd = ph[p0, h + PH, PW // 2:], ph[1 - p0, h + PH, (PW + 1) // 2:]
            for k in range(W // 2):
                even[k] = row[2 * k]
                odd[k] = row[2 * k + 1]
            if W % 2:
                even[W // 2] = row[W - 1]
        return
    for h in range(H):
        for r in range(SW):
            lo, hi = _valid_range(r, PW, SW, W, Wq)
            src = plane[h, lo * SW + r - PW:]
            out = ph[r, h + PH, lo:hi]
            for k in range(hi - lo):
                out[k] = src[k * SW]


@njit(cache=True, inline="always")
def _merge_phases(ph, SW, plane):
    """plane[h, q·SW + r] = ph[r, h, q] (the inverse of _split_phases)."""
    H, W = plane.shape
    for h in range(H):
        for r in range(SW):
            row = plane[h, r:]
            src = ph[r, h]
            for q in range((W - r + SW - 1) // SW):
                row[q * SW] = src[q]


@njit(cache=True, inline="always")
def _plane_forward(src, Wk, o, bias, SH, SW, PH, PW, W, yp):
    """One output plane yp from the input plane's column phases src (SW, H, ⌈W/SW⌉)."""
    H = src.shape[1]
    KH, KW = Wk.shape[1], Wk.shape[2]
    OH, OW = yp.shape
    for oh in range(OH):
        yr = yp[oh]
        for ow in range(OW):
            yr[ow] = bias
        for i in range(KH):
            h = oh * SH - PH + i
            if h < 0 or h >= H:
                continue
            for j in range(KW):
                lo, hi = _valid_range(j, PW, SW, W, OW)
                off = j - PW
                _row_axpy(yr, src[off % SW, h], Wk[o, i, j], lo, hi, off // SW)


@njit(parallel=True, cache=True, nogil=True)
def _forward_cpu(x, Wk, b, SH, SW, PH, PW, y):
    N, C, H, W = x.shape
    F = Wk.shape[0]
    M = F // C
    Wq = (W + 2 * PW + SW - 1) // SW
    for t in prange(N * F):
        n, o = t // F, t % F
        c = o // M
        if SW == 1:
            _plane_forward(x[n, c:c + 1], Wk, o, b[o], SH, 1, PH, PW, W, y[n, o])
        else:
            # NOTE: the phases of the zero-padded plane: every tap then reads a whole output
            # row (the rows are short at stride 2, and per-row bounds would cost more than
            # the padding's multiply-adds)
            ph = np.zeros((SW, H + 2 * PH, Wq), x.dtype)
            _split_phases_padded(x[n, c], SW, PH, PW, ph)
            _plane_forward(ph, Wk, o, b[o], SH, SW, 0, 0, Wq * SW, y[n, o])


@njit(cache=True, inline="always")
def _plane_grad_x(gy, n, Wk, c, M, SH, SW, PH, PW, W, gph):
    """Add the gradients of input plane c of image n into its column phases gph."""
    H = gph.shape[1]
    KH, KW = Wk.shape[1], Wk.shape[2]
    OH, OW = gy.shape[2], gy.shape[3]
    for o in range(c * M, c * M + M):
        for oh in range(OH):
            gyr = gy[n, o, oh]
            for i in range(KH):
                h = oh * SH - PH + i
                if h < 0 or h >= H:
                    continue
                for j in range(KW):
                    lo, hi = _valid_range(j, PW, SW, W, OW)
                    off = j - PW
                    _row_scatter(gph[off % SW, h], gyr, Wk[o, i, j], lo, hi, off // SW)


@njit(parallel=True, cache=True, nogil=True)
def _grad_x_cpu(gy, Wk, SH, SW, PH, PW, gx):
    N, C, H, W = gx.shape
    M = Wk.shape[0] // C
    Wq = (W + SW - 1) // SW
    for t in prange(N * C):
        n, c = t // C, t % C
        if SW == 1:
            gxp = gx[n, c:c + 1]
            for h in range(H):
                for w in range(W):
                    gxp[0, h, w] = 0
            _plane_grad_x(gy, n, Wk, c, M, SH, 1, PH, PW, W, gxp)
        else:
            gph = np.zeros((SW, H, Wq), gx.dtype)
            _plane_grad_x(gy, n, Wk, c, M, SH, SW, PH, PW, W, gph)
            _merge_phases(gph, SW, gx[n, c])


@njit(cache=True, inline="always")
def _plane_grad_w(gyp, src, KH, KW, SH, SW, PH, PW, W, acc):
    """acc[i·KW + j, ow]: the column sums of gy · x for each tap (rows summed)."""
    H = src.shape[1]
    OH, OW = gyp.shape
    for oh in range(OH):
        gyr = gyp[oh]
        for i in range(KH):
            h = oh * SH - PH + i
            if h < 0 or h >= H:
                continue
            for j in range(KW):
                lo, hi = _valid_range(j, PW, SW, W, OW)
                off = j - PW
                _row_products(acc[i * KW + j], gyr, src[off % SW, h], lo, hi, off // SW)


@njit(parallel=True, cache=True, nogil=True)
def _grad_w_cpu(gy, x, KH, KW, SH, SW, PH, PW, partial):
    """partial[n, o, i, j]: image n's share of gW[o, 0, i, j], summed in float64."""
    N, C, H, W = x.shape
    F = gy.shape[1]
    M = F // C
    OW = gy.shape[3]
    Wq = (W + SW - 1) // SW
    for t in prange(N * F):
        n, o = t // F, t % F
        c = o // M
        # NOTE: per tap, a row of column sums (summed over the output rows only), reduced to
        # one float64 number at the end: the row updates vectorise, a running scalar would not.
        acc = np.zeros((KH * KW, OW), gy.dtype)
        if SW == 1:
            _plane_grad_w(gy[n, o], x[n, c:c + 1], KH, KW, SH, 1, PH, PW, W, acc)
        else:
            ph = np.empty((SW, H, Wq), x.dtype)
            _split_phases(x[n, c], SW, ph)
            _plane_grad_w(gy[n, o], ph, KH, KW, SH, SW, PH, PW, W, acc)
        for k in range(KH * KW):
            s = 0.0
            for ow in range(OW):
                s += acc[k, ow]
            partial[n, o, k // KW, k % KW] = s


def _kernel_taps(W):
    return np.ascontiguousarray(W.reshape(W.shape[0], W.shape[2], W.shape[3]))


@threads.guarded
def depthwise_forward_cpu(x, W, b, stride, padding):
    """Numba threads over the (image, output channel) planes."""
    (SH, SW), (PH, PW), OH, OW = _check_args(x, W, b, stride, padding)
    x = np.ascontiguousarray(x)
    bias = np.zeros(W.shape[0], x.dtype) if b is None else np.ascontiguousarray(b, x.dtype)
    y = np.empty((x.shape[0], W.shape[0], OH, OW), x.dtype)
    _forward_cpu(x, _kernel_taps(W), bias, SH, SW, PH, PW, y)
    return y


@threads.guarded
def depthwise_backward_cpu(gy, x, W, stride, padding, need_gx=True, need_gW=True,
                           need_gb=True):
    """Numba threads: gx over the input planes, gW as per-image float64 sums added in order."""
    (SH, SW), (PH, PW), OH, OW = _check_args(x, W, None, stride, padding)
    _check_gy(gy, x, W, OH, OW)
    gy, x = np.ascontiguousarray(gy), np.ascontiguousarray(x)
    gx = gW = gb = None
    if need_gx:
        gx = np.empty(x.shape, x.dtype)
        _grad_x_cpu(gy, _kernel_taps(W), SH, SW, PH, PW, gx)
    if need_gW:
        partial = np.empty((x.shape[0], W.shape[0], W.shape[2], W.shape[3]), np.float64)
        _grad_w_cpu(gy, x, W.shape[2], W.shape[3], SH, SW, PH, PW, partial)
        gW = partial.sum(axis=0).astype(x.dtype).reshape(W.shape)
    if need_gb:
        gb = gy.sum(axis=(0, 2, 3), dtype=np.float64).astype(x.dtype)
    return gx, gW, gb


# ---------------------------------------------------------------- GPU (numba.cuda)
# NOTE: the simulator runs each CUDA thread as a Python thread: small blocks keep it quick.
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
    def forward(x, Wk, b, SH, SW, PH, PW, y):
        # one thread per output element
        N, F, OH, OW = y.shape
        C, H, W = x.shape[1], x.shape[2], x.shape[3]
        KH, KW = Wk.shape[1], Wk.shape[2]
        t = cuda.grid(1)
        if t >= N * F * OH * OW:
            return
        ow = t % OW
        oh = (t // OW) % OH
        o = (t // (OW * OH)) % F
        n = t // (OW * OH * F)
        c = o // (F // C)
        acc = b[o]
        for i in range(KH):
            h = oh * SH - PH + i
            if h >= 0 and h < H:
                for j in range(KW):
                    w = ow * SW - PW + j
                    if w >= 0 and w < W:
                        acc += Wk[o, i, j] * x[n, c, h, w]
        y[n, o, oh, ow] = acc

    @cuda.jit
    def grad_x(gy, Wk, SH, SW, PH, PW, gx):
        # one thread per input element: a gather over the outputs whose window holds it
        N, C, H, W = gx.shape
        F, KH, KW = Wk.shape
        OH, OW = gy.shape[2], gy.shape[3]
        M = F // C
        t = cuda.grid(1)
        if t >= N * C * H * W:
            return
        w = t % W
        h = (t // W) % H
        c = (t // (W * H)) % C
        n = t // (W * H * C)
        acc = 0.0
        for i in range(KH):
            r = h + PH - i
            if r >= 0 and r % SH == 0 and r // SH < OH:
                oh = r // SH
                for j in range(KW):
                    s = w + PW - j
                    if s >= 0 and s % SW == 0 and s // SW < OW:
                        ow = s // SW
                        for o in range(c * M, c * M + M):
                            acc += Wk[o, i, j] * gy[n, o, oh, ow]
        gx[n, c, h, w] = acc

    @cuda.jit
    def grad_w(gy, x, KH, KW, SH, SW, PH, PW, partial):
        # one thread per (image, output channel, tap): that image's share of gW, in float64
        N, C, H, W = x.shape
        F, OH, OW = gy.shape[1], gy.shape[2], gy.shape[3]
        t = cuda.grid(1)
        if t >= N * F * KH * KW:
            return
        j = t % KW
        i = (t // KW) % KH
        o = (t // (KW * KH)) % F
        n = t // (KW * KH * F)
        c = o // (F // C)
        acc = 0.0
        for oh in range(OH):
            h = oh * SH - PH + i
            if h >= 0 and h < H:
                for ow in range(OW):
                    w = ow * SW - PW + j
                    if w >= 0 and w < W:
                        acc += gy[n, o, oh, ow] * x[n, c, h, w]
        partial[n, o, i, j] = acc

    _gpu.update(forward=forward, grad_x=grad_x, grad_w=grad_w)
    return _gpu


def _launch(kernel, n, xp, *args):
    launch(cuda, kernel, max(1, math.ceil(n / _THREADS)), _THREADS, xp, *args)


def depthwise_forward_gpu(x, W, b, stride, padding):
    """numba.cuda forward: one thread per output element."""
    (SH, SW), (PH, PW), OH, OW = _check_args(x, W, b, stride, padding)
    xp = get_array_module(x, W)
    k = _gpu_kernels()
    x = xp.ascontiguousarray(x)
    taps = xp.ascontiguousarray(W.reshape(W.shape[0], W.shape[2], W.shape[3]))
    bias = xp.zeros(W.shape[0], x.dtype) if b is None else xp.ascontiguousarray(b)
    y = xp.empty((x.shape[0], W.shape[0], OH, OW), x.dtype)
    _launch(k["forward"], y.size, xp, x, taps, bias, SH, SW, PH, PW, y)
    return y


def depthwise_backward_gpu(gy, x, W, stride, padding, need_gx=True, need_gW=True,
                           need_gb=True):
    """numba.cuda backward: gx gathered per input element, gW per (image, channel, tap)."""
    (SH, SW), (PH, PW), OH, OW = _check_args(x, W, None, stride, padding)
    _check_gy(gy, x, W, OH, OW)
    xp = get_array_module(x, W)
    k = _gpu_kernels()
    gy, x = xp.ascontiguousarray(gy), xp.ascontiguousarray(x)
    gx = gW = gb = None
    if need_gx:
        taps = xp.ascontiguousarray(W.reshape(W.shape[0], W.shape[2], W.shape[3]))
        gx = xp.empty(x.shape, x.dtype)
        _launch(k["grad_x"], gx.size, xp, gy, taps, SH, SW, PH, PW, gx)
    if need_gW:
        partial = xp.empty((x.shape[0], W.shape[0], W.shape[2], W.shape[3]), xp.float64)
        _launch(k["grad_w"], partial.size, xp, gy, x, W.shape[2], W.shape[3], SH, SW, PH, PW,
                partial)
        gW = partial.sum(axis=0).astype(x.dtype).reshape(W.shape)
    if need_gb:
        gb = gy.sum(axis=(0, 2, 3))
    return gx, gW, gb


# ---------------------------------------------------------------- public
_FORWARD = {"reference": depthwise_forward_reference, "cpu": depthwise_forward_cpu,
            "gpu": depthwise_forward_gpu}
_BACKWARD = {"reference": depthwise_backward_reference, "cpu": depthwise_backward_cpu,
             "gpu": depthwise_backward_gpu}


def depthwise_conv2d_forward(x, W, b=None, stride=1, padding=0, impl=None):
    """y (N, F, OH, OW) = conv2d(x (N, C, H, W), W (F, 1, KH, KW), b, groups=C), F = k*C."""
    return _FORWARD[pick_impl(impl, x)](x, W, b, stride, padding)


def depthwise_conv2d_backward(gy, x, W, stride=1, padding=0, need_gx=True, need_gW=True,
                              need_gb=True, impl=None):
    """(gx, gW, gb) of the depthwise convolution; each is None where not needed."""
    return _BACKWARD[pick_impl(impl, x)](gy, x, W, stride, padding, need_gx, need_gW, need_gb)
