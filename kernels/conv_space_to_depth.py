"""CPU convolution whose windows do not overlap (stride >= kernel): a 1x1 product per block."""
import numpy as np
from numba import njit, prange

from .blas import gemm
from .conv_parts import _claim, _compact

# NOTE: the work of one task is a function of its own (not inlined into the prange loop): on
# melanoma_cnn's stride-3 layer the same code ran 1.2-1.3x slower inside the parallel loop's body.
# NOTE: with stride >= kernel (SH >= KH, SW >= KW) every input pixel lies in at most one window,
# so im2col is a pure reshuffle (space-to-depth, when stride == kernel): X[(c*KH + i)*KW + j,
# (oh, ow)] = x[c, oh*SH + i - PH, ow*SW + j - PW] (zero outside the image), and the layer is
# the 1x1 convolution y = W2 @ X with K = C*KH*KW. The input gradient is W2ᵀ @ gy written
# straight back through the same map: each input pixel receives exactly one value (or zero, in
# the gaps between windows and past the last window), so there is no col2im accumulation and
# blocks write disjoint pixels. A task is a block of columns: several whole images when one
# image has few output pixels (melanoma_cnn's 3x3 stride-3 layer: 81 per image), so that each
# product is wide enough for BLAS to run at speed, else a block of one image's output rows.
TASK_COLUMNS = 384   # output pixels per task (the products' width), when images are small


def blocking(N, OH, OW, tasks_wanted, columns=None):
    """(images per task, output rows per task): tasks of about TASK_COLUMNS output pixels,
    at least tasks_wanted of them when the batch allows."""
    columns = TASK_COLUMNS if columns is None else columns
    P = OH * OW
    if P >= columns:
        RB = max(1, min(OH, columns // OW))
        if N * -(-OH // RB) < tasks_wanted:
            RB = max(1, min(RB, -(-OH * N // tasks_wanted)))
        return 1, RB
    B = max(1, min(columns // P, -(-N // tasks_wanted)))
    return B, OH


@njit(cache=True, inline="always")
def _task(task, B, RB, OH, N):
    """(first image, images, first row, end row) of a task."""
    if B > 1:
        n0 = task * B
        return n0, min(B, N - n0), 0, OH
    tiles = -(-OH // RB)
    n, k = task // tiles, task % tiles
    return n, 1, k * RB, min(OH, k * RB + RB)


@njit(cache=True, inline="always")
def _gather(x, n, KH, KW, SH, SW, PH, PW, r0, r1, OW, col, c0):
    """col[(c*KH + i)*KW + j, c0 + (oh-r0)*OW + ow] = x[n, c, oh*SH + i - PH, ow*SW + j - PW]
    (zero outside the image) for output rows [r0, r1)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    if KW == 3 and SW == 3 and PW == 0 and 3 * OW <= W:
        _gather33(x, n, KH, SH, PH, r0, r1, OW, col, c0)
        return
    for c in range(C):
        for oh in range(r0, r1):
            d = c0 + (oh - r0) * OW
            for i in range(KH):
                h = oh * SH + i - PH
                r = (c * KH + i) * KW
                if h < 0 or h >= H:
                    for j in range(KW):
                        col[r + j, d:d + OW] = 0
                    continue
                src = x[n, c, h]
                for ow in range(OW):   # one window's row at a time: reads in order
                    w0 = ow * SW - PW
                    if w0 >= 0 and w0 + KW <= W:
                        for j in range(KW):
                            col[r + j, d + ow] = src[w0 + j]
                    else:
                        for j in range(KW):
                            w = w0 + j
                            col[r + j, d + ow] = src[w] if 0 <= w < W else 0


@njit(cache=True, inline="always")
def _scatter(col, c0, KH, KW, SH, SW, PH, PW, r0, r1, OH, OW, gx, n):
    """The adjoint of _gather, which is one-to-one: the rows of gx[n] that output rows [r0, r1)
    own, set from col; zero where no window reads (gaps, and past the last window)."""
    C, H, W = gx.shape[1], gx.shape[2], gx.shape[3]
    h0 = max(0, r0 * SH - PH)
    h1 = H if r1 == OH else min(H, r1 * SH - PH)
    w_end = max(0, min(W, OW * SW - PW))
    if KW == 3 and SW == 3 and PW == 0 and 3 * OW <= W:
        _scatter33(col, c0, KH, SH, PH, r0, r1, OH, OW, gx, n)
        return
    for c in range(C):
        for h in range(h0, h1):
            oh = (h + PH) // SH
            i = h + PH - oh * SH
            row = gx[n, c, h]
            if oh >= OH or i >= KH:
                row[:] = 0
                continue
            d = c0 + (oh - r0) * OW
            r = (c * KH + i) * KW
            for ow in range(OW):
                w0 = ow * SW - PW
                if w0 >= 0 and w0 + SW <= W:
                    for j in range(KW):
                        row[w0 + j] = col[r + j, d + ow]
                    for j in range(KW, SW):
                        row[w0 + j] = 0
                else:
                    for j in range(SW):
                        w = w0 + j
                        if 0 <= w < W:
                            row[w] = col[r + j, d + ow] if j < KW else 0
            row[w_end:] = 0


@njit(cache=True, inline="always")
def _gather33(x, n, KH, SH, PH, r0, r1, OW, col, c0):
    """_gather for windows 3 pixels wide and 3 apart, none across the image's sides."""
    # NOTE: with the window's width and stride as constants the copy of a window's row is
    # unrolled, without _gather's checks: 1.5-2x faster on melanoma_cnn's conv4 (1 thread).
    # No views of the short rows of col: one costs more than its copy (a reference count).
    C, H = x.shape[1], x.shape[2]
    for c in range(C):
        for oh in range(r0, r1):
            d = c0 + (oh - r0) * OW
            for i in range(KH):
                h = oh * SH + i - PH
                r = (c * KH + i) * 3
                if h < 0 or h >= H:
                    for e in range(d, d + OW):
                        col[r, e], col[r + 1, e], col[r + 2, e] = 0, 0, 0
                    continue
                src = x[n, c, h]
                for ow in range(OW):
                    w0, e = 3 * ow, d + ow
                    col[r, e], col[r + 1, e], col[r + 2, e] = src[w0], src[w0 + 1], src[w0 + 2]


@njit(cache=True, inline="always")
def _scatter33(col, c0, KH, SH, PH, r0, r1, OH, OW, gx, n):
    """_scatter for windows 3 pixels wide and 3 apart, none across the image's sides (the
    adjoint of _gather33)."""
    C, H, W = gx.shape[1], gx.shape[2], gx.shape[3]
    h0 = max(0, r0 * SH - PH)
    h1 = H if r1 == OH else min(H, r1 * SH - PH)
    for c in range(C):
        for h in range(h0, h1):
            oh = (h + PH) // SH
            i = h + PH - oh * SH
            row = gx[n, c, h]
            if oh >= OH or i >= KH:
                for w in range(W):
                    row[w] = 0
                continue
            d = c0 + (oh - r0) * OW
            r = (c * KH + i) * 3
            for ow in range(OW):
                w0, e = 3 * ow, d + ow
                row[w0], row[w0 + 1], row[w0 + 2] = col[r, e], col[r + 1, e], col[r + 2, e]
            for w in range(3 * OW, W):
                row[w] = 0


@njit(parallel=True, cache=True, nogil=True)
def _forward(x, W2, b, has_b, relu, KH, KW, SH, SW, PH, PW, B, RB, cols, outs, y):
    N, OH, T = x.shape[0], y.shape[2], cols.shape[0]
    tasks = -(-N // B) if B > 1 else N * -(-OH // RB)
    counter = np.zeros(1, np.int64)
    for t in prange(T):
        while True:
            task = _claim(counter)
            if task >= tasks:
                break
            n0, nb, r0, r1 = _task(task, B, RB, OH, N)
            _forward_task(x, W2, b, has_b, relu, KH, KW, SH, SW, PH, PW, n0, nb, r0, r1,
                          cols[t], outs[t], y)
    return y


@njit(cache=True, nogil=True)
def _forward_task(x, W2, b, has_b, relu, KH, KW, SH, SW, PH, PW, n0, nb, r0, r1, cols, outs,
                  y):
    """One task of _forward: images [n0, n0 + nb), output rows [r0, r1)."""
    F, CK = W2.shape
    OW = y.shape[3]
    P = (r1 - r0) * OW
    col = cols[:CK * nb * P].reshape(CK, nb * P)
    for k in range(nb):
        _gather(x, n0 + k, KH, KW, SH, SW, PH, PW, r0, r1, OW, col, k * P)
    out = outs[:F * nb * P].reshape(F, nb * P)
    gemm(False, False, W2, col, out, 0.0)
    for k in range(nb):
        _compact(out[:, k * P:(k + 1) * P], n0 + k, r0, r1, OW, OW, b, has_b, relu, y)


@njit(parallel=True, cache=True, nogil=True)
def _backward(gy, x, W2, need_gx, need_gW, KH, KW, SH, SW, PH, PW, B, RB, cols, gys, gWs, gx):
    N, OH, T = x.shape[0], gy.shape[2], cols.shape[0]
    tasks = -(-N // B) if B > 1 else N * -(-OH // RB)
    for t in prange(T):
        gWs[t] = 0
        for task in range(t, tasks, T):  # static: partial gW sums in a fixed order
            n0, nb, r0, r1 = _task(task, B, RB, OH, N)
            _backward_task(gy, x, W2, need_gx, need_gW, KH, KW, SH, SW, PH, PW, n0, nb, r0, r1,
                           cols[t], gys[t], gWs[t], gx)
    return gx


@njit(cache=True, nogil=True)
def _backward_task(gy, x, W2, need_gx, need_gW, KH, KW, SH, SW, PH, PW, n0, nb, r0, r1, cols,
                   gys, gW, gx):
    """One task of _backward: images [n0, n0 + nb), output rows [r0, r1)."""
    F, CK = W2.shape
    OH, OW = gy.shape[2], gy.shape[3]
    P = (r1 - r0) * OW
    g = gys[:F * nb * P].reshape(F, nb * P)
    for k in range(nb):
        for f in range(F):
            g[f, k * P:(k + 1) * P] = gy[n0 + k, f].reshape(OH * OW)[r0 * OW:r1 * OW]
    col = cols[:CK * nb * P].reshape(CK, nb * P)
    if need_gW:
        for k in range(nb):
            _gather(x, n0 + k, KH, KW, SH, SW, PH, PW, r0, r1, OW, col, k * P)
        gemm(False, True, g, col, gW, 1.0)
    if need_gx:
        gemm(True, False, W2, g, col, 0.0)
        for k in range(nb):
            _scatter(col, k * P, KH, KW, SH, SW, PH, PW, r0, r1, OH, OW, gx, n0 + k)


def forward(x, W, b, kernel, stride, padding, OH, OW, relu, threads):
    """y (N, F, OH, OW) for a layer with stride >= kernel (run inside single_blas)."""
    N, C = x.shape[:2]
    F, dt = W.shape[0], x.dtype
    W2 = np.ascontiguousarray(W.reshape(F, -1))
    CK = W2.shape[1]
    bb = np.zeros(F, dt) if b is None else np.ascontiguousarray(b, dtype=dt)
    B, RB = blocking(N, OH, OW, 2 * threads)
    cols = np.empty((threads, CK * B * RB * OW), dt)
    outs = np.empty((threads, F * B * RB * OW), dt)
    y = np.empty((N, F, OH, OW), dt)
    return _forward(x, W2, bb, b is not None, relu, *kernel, *stride, *padding, B, RB, cols,
                    outs, y)


def backward(gy, x, W, kernel, stride, padding, need_gx, need_gW, threads):
    """(gx, gW), either None where not needed, for a layer with stride >= kernel (run inside
    single_blas); gy C-contiguous in x's dtype."""
    N, C = x.shape[:2]
    F, dt = W.shape[0], x.dtype
    OH, OW = gy.shape[2], gy.shape[3]
    W2 = np.ascontiguousarray(W.reshape(F, -1))
    CK = W2.shape[1]
    B, RB = blocking(N, OH, OW, threads)
    cols = np.empty((threads, CK * B * RB * OW), dt)
    gys = np.empty((threads, F * B * RB * OW), dt)
    gWs = np.empty((threads, F, CK), dt)
    gx = np.empty(x.shape, dt) if need_gx else np.empty((1, 1, 1, 1), dt)
    _backward(gy, x, W2, need_gx, need_gW, *kernel, *stride, *padding, B, RB, cols, gys, gWs,
              gx)
    return (gx if need_gx else None), (gWs.sum(axis=0).reshape(W.shape) if need_gW else None)
