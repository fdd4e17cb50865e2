"""CPU convolution: Numba threads, each running single-threaded BLAS products on its own images."""
import os

import numba
import numpy as np
from numba import njit, prange

from . import conv_products, conv_rows, conv_space_to_depth, winograd
from .blas import gemm
from .conv_parts import (_claim, _compact, _grid_col2im, _grid_cols, _gy_on_grid, _interior,
                         _pad_into, _padded_col2im, _padded_cols, _task_blocks, single_blas)
from .im2col import _col2im_parallel, _im2col_parallel
from .relu import relu_backward_channel_sums_cpu

# NOTE: four ways to one result, chosen per layer (see `_path`):
# - "winograd" (3x3 or 5x5, stride 1, padding < kernel size, enough channels): Winograd's
#   F(2x2, 3x3) and F(2x2, 5x5), 16 products instead of 36 and 36 instead of 100 per 2x2
#   output tile (see kernels/winograd.py).
# - "shift" (stride 1, C >= SHIFT_MIN_CHANNELS): no im2col at all. The image is copied once
#   into a zero-padded buffer xpad (C, Hp+1, Wp), flattened per channel; the output is
#   computed on the padded width, out[f, oh*Wp + ow], where tap (i, j) of the kernel is the
#   plain matrix product W[:, :, i, j] (F, C) @ xpad[:, s:s+P] with s = i*Wp + j: a strided
#   window that BLAS reads in place. KH*KW products accumulate (beta = 1); the Wp - OW extra
#   columns per row are dropped when out is copied into y with the bias.
# - "grid" (stride 1, few channels, e.g. RGB input): the same padded-width layout, but the
#   KH*KW windows are copied into a column matrix (each row one contiguous copy) so that one
#   product with K = C*KH*KW replaces KH*KW products with a tiny K.
# - "rows" (stride 1, few channels but C*KW >= ROWS_MIN_CHANNELS, e.g. melanoma_cnn's 7x7 RGB
#   layer): the KW horizontal taps become channels, X[n, c*KW + j, h, ow] = x[n, c, h, ow + j
#   - PW] (zero outside), and the layer becomes a KH x 1 convolution of X as on the "shift"
#   path: KH products with K = C*KW read X in place, where "grid" copies KH*KW rows per
#   column (on that layer, 2 cores, batch 32: forward 1.11-1.17x and weight gradient
#   1.06-1.34x "grid"'s speed). X is never made for the batch: each thread expands one band of
#   an image's rows at a time into its cache (kernels/conv_rows.py); the input gradient (of a
#   layer that is not the first) runs the "shift" path's adjoint on the KH x 1 kernel, then
#   folds the taps back.
# - "space_to_depth" (stride >= kernel, stride > 1: windows that do not overlap, e.g.
#   melanoma_cnn's 3x3 stride-3 layer): im2col is a one-to-one reshuffle, the layer a 1x1
#   convolution with K = C*KH*KW; the input gradient is written back without accumulation
#   (kernels/conv_space_to_depth.py).
# - "general" (any stride, narrow images): im2col of (image, block of output rows) from the
#   zero-padded copy into a per-thread buffer (no bounds checks), one product per block.
# In the forward pass each thread claims whole tasks (an image, or one block of its output
# rows) from a shared counter, so a core slowed by other work (the loader's threads) just
# takes fewer tasks; the backward pass deals images out statically (thread t takes images
# t, t+T, ...), because its per-thread weight-gradient sums must be added in the same order
# on every run for training to be reproducible. Each thread calls the BLAS single-threaded
# (see `single_blas`): copies, products and the bias run back to back in that thread's cache.
# The "grid" and "general" paths share one kernel each way (`_forward_columns`,
# `_backward_columns`): they differ only in how a block's column matrix is built.
SHIFT_MIN_CHANNELS = 16
ROWS_MIN_CHANNELS = 16   # C*KW from which a few-channel layer takes the "rows" path
# The Winograd path where it applies and pays (switch it off to compare; TINYLESION_WINOGRAD=0
# does so for a whole process). Measured on 2 cores, batch 32, forward + both gradients: 1.1-1.5x
# faster than "shift" on the seed models' 3x3 layers with C, F >= 32 (32->32 on 75x100 to
# 256->256 on 9x12), 0.9-1.05x at 16->32 on 64x64 with F(2x2, 3x3) (too few products per
# transform; with F(4x4, 3x3) it pays there: WINOGRAD_F4_MIN_CHANNELS). On
# melanoma_cnn's 5x5 layer (32->64 on 112x112, padding 2 or 0), against "shift": forward
# 1.07-1.33x (its products' inner dimension is only C = 32), input gradient 1.21-1.71x,
# weight gradient 1.27-1.73x (with another job on one of the cores: 0.98-1.10x, 1.10-1.49x,
# 1.0-1.47x).
WINOGRAD = os.environ.get("TINYLESION_WINOGRAD", "1") != "0"
SPACE_TO_DEPTH = True   # the "space_to_depth" path where it applies (False: "general")
WINOGRAD_MIN_CHANNELS, WINOGRAD_MIN_FILTERS = 32, 32
# ... but from WINOGRAD_F4_MIN_CHANNELS input channels for a 3x3 layer on F(4x4, 3x3) tiles
# (winograd.tile_size: 4), 2.25x fewer multiplications than F(2x2, 3x3). baseline_cnn's
# 16->32 layer on 64x64, batch 32, 1 thread, CPU time (a loaded machine), against "shift":
# forward 0.78-0.90x, input gradient 0.86-0.97x, weight gradient 0.76-0.79x the time.
WINOGRAD_F4_MIN_CHANNELS = 16
# Largest share of wasted columns (KW - 1) / Wp for which the padded-width layouts pay.
MAX_GRID_WASTE = 0.1
# Block sizes, measured on the seed models' layers (bench/kernels.py): the shift path's output
# block is re-read by each of the KH*KW products, so it stays near the L1/L2 cache size; the
# grid path's products run best at up to ~1024 columns.
OUT_BLOCK_BYTES = 64 << 10
SHIFT_ROWS = None  # rows per block of the shift path; None: measured (_shift_block_rows)
GRID_BLOCK_BYTES, GRID_BLOCK_COLUMNS = 1 << 20, 1024
GW_BLOCK_COLUMNS = 512  # inner dimension of the shift path's weight-gradient products
COL_BLOCK_BYTES = 2 << 20
# The "rows" path (kernels/conv_rows.py): each thread expands a band of an image's rows at a
# time, ROWS_BAND_BYTES of them (in its cache); its weight-gradient products have an inner
# dimension of ROWS_GW_COLUMNS (whole output rows). On melanoma_cnn's 7x7 RGB layer (224x224,
# batch 32, 1 thread, CPU time, a loaded machine) the weight gradient took 0.91x the time with
# bands of ~0.4 MB than with an image's whole expanded copy (4.3 MB) a thread, and 0.94-0.96x
# with 4 rows a product than with 2; against the batch's expanded copy before (135 MB), the
# weight gradient 1.26-1.37x and the forward 1.06-1.23x faster.
ROWS_BAND_BYTES = 512 << 10
ROWS_GW_COLUMNS = 1024


# ---------------------------------------------------------------- forward
@njit(parallel=True, cache=True, nogil=True)
def _forward_shift(x, Wk, b, has_b, relu, KH, KW, PH, PW, RB, pads, outs, y):
    N, F = x.shape[0], Wk.shape[1]
    OH, OW = y.shape[2], y.shape[3]
    Wp = x.shape[3] + 2 * PW
    T = outs.shape[0]
    tiles = (OH + RB - 1) // RB
    per_image = N >= 2 * T
    counter = np.zeros(1, np.int64)
    for t in prange(T):
        last = -1
        while True:
            task = _claim(counter)
            if task >= (N if per_image else N * tiles):
                break
            n, k0, k1 = _task_blocks(task, tiles, per_image)
            if n != last:
                _pad_into(x, n, PH, PW, Wp, pads[t])
                last = n
            for k in range(k0, k1):
                r0 = k * RB
                r1 = min(OH, r0 + RB)
                P = (r1 - r0) * Wp
                out = outs[t, :F * P].reshape(F, P)
                for i in range(KH):
                    for j in range(KW):
                        s = (r0 + i) * Wp + j
                        gemm(False, False, Wk[i * KW + j], pads[t, :, s:s + P], out,
                             1.0 if i + j > 0 else 0.0)
                _compact(out, n, r0, r1, Wp, OW, b, has_b, relu, y)
    return y


@njit(parallel=True, cache=True, nogil=True)
def _forward_columns(x, W2, b, has_b, relu, KH, KW, SH, SW, PH, PW, grid, RB, pads, cols, outs,
                     y):
    """The "grid" and "general" paths: per block of output rows, a column matrix, one product."""
    N = x.shape[0]
    F, CK = W2.shape
    OH, OW = y.shape[2], y.shape[3]
    Wp = x.shape[3] + 2 * PW
    L = Wp if grid else OW  # columns per output row: the padded width, or the output's
    T = outs.shape[0]
    tiles = (OH + RB - 1) // RB
    per_image = N >= 2 * T
    counter = np.zeros(1, np.int64)
    for t in prange(T):
        last = -1
        while True:
            task = _claim(counter)
            if task >= (N if per_image else N * tiles):
                break
            n, k0, k1 = _task_blocks(task, tiles, per_image)
            if n != last:
                _pad_into(x, n, PH, PW, Wp, pads[t])
                last = n
            for k in range(k0, k1):
                r0 = k * RB
                r1 = min(OH, r0 + RB)
                P = (r1 - r0) * L
                col = cols[t, :CK * P].reshape(CK, P)
                if grid:
                    _grid_cols(pads[t], KH, KW, Wp, r0, P, col)
                else:
                    _padded_cols(pads[t], KH, KW, SH, SW, Wp, r0, r1, OW, col)
                out = outs[t, :F * P].reshape(F, P)
                gemm(False, False, W2, col, out, 0.0)
                _compact(out, n, r0, r1, L, OW, b, has_b, relu, y)
    return y


# ---------------------------------------------------------------- backward
@njit(parallel=True, cache=True, nogil=True)
def _backward_shift(gy, x, Wk, need_gx, need_gW, KH, KW, PH, PW, RB, RBW, pads, gpads, gys,
                    gWs, gx):
    N, F = x.shape[0], Wk.shape[1]
    OH = gy.shape[2]
    Wp = x.shape[3] + 2 * PW
    T = gys.shape[0]
    tiles = (OH + RB - 1) // RB
    for t in prange(T):
        gWs[t] = 0
        for n in range(t, N, T):  # static: partial gW sums in a fixed order
            g = gys[t, :F * OH * Wp].reshape(F, OH * Wp)
            _gy_on_grid(gy, n, 0, OH, Wp, g)
            # NOTE: gW[:, :, i, j] = Σ g @ xpad_windowᵀ: products per tap over blocks of
            # ~GW_BLOCK_COLUMNS columns (the inner dimension: long blocks run well); the
            # gradient of the padded input gets Wᵀ g added over the same windows, block by
            # block (the adjoint of the forward products).
            if need_gW:
                _pad_into(x, n, PH, PW, Wp, pads[t])
                for r0 in range(0, OH, RBW):
                    r1 = min(OH, r0 + RBW)
                    for i in range(KH):
                        for j in range(KW):
                            s = (r0 + i) * Wp + j
                            gemm(False, True, g[:, r0 * Wp:r1 * Wp],
                                 pads[t, :, s:s + (r1 - r0) * Wp], gWs[t, i * KW + j], 1.0)
            if need_gx:
                gpads[t] = 0
                for k in range(tiles):
                    r0 = k * RB
                    r1 = min(OH, r0 + RB)
                    P = (r1 - r0) * Wp
                    for i in range(KH):
                        for j in range(KW):
                            s = (r0 + i) * Wp + j
                            gemm(True, False, Wk[i * KW + j], g[:, r0 * Wp:r1 * Wp],
                                 gpads[t, :, s:s + P], 1.0)
                _interior(gpads[t], n, PH, PW, Wp, gx)
    return gx


@njit(parallel=True, cache=True, nogil=True)
def _backward_columns(gy, x, W2, need_gx, need_gW, KH, KW, SH, SW, PH, PW, grid, RB, pads,
                      gpads, cols, gys, gWs, gx):
    """The "grid" and "general" paths backward: the forward's column blocks, transposed."""
    N = x.shape[0]
    F, CK = W2.shape
    OH, OW = gy.shape[2], gy.shape[3]
    Wp = x.shape[3] + 2 * PW
    L = Wp if grid else OW
    T = gys.shape[0]
    tiles = (OH + RB - 1) // RB
    for t in prange(T):
        gWs[t] = 0
        for n in range(t, N, T):  # static: partial gW sums in a fixed order
            if need_gW:
                _pad_into(x, n, PH, PW, Wp, pads[t])
            if need_gx:
                gpads[t] = 0
            for k in range(tiles):
                r0 = k * RB
                r1 = min(OH, r0 + RB)
                P = (r1 - r0) * L
                g = gys[t, :F * P].reshape(F, P)
                _gy_on_grid(gy, n, r0, r1, L, g)
                col = cols[t, :CK * P].reshape(CK, P)
                if need_gW:
                    if grid:
                        _grid_cols(pads[t], KH, KW, Wp, r0, P, col)
                    else:
                        _padded_cols(pads[t], KH, KW, SH, SW, Wp, r0, r1, OW, col)
                    gemm(False, True, g, col, gWs[t], 1.0)
                if need_gx:
                    gemm(True, False, W2, g, col, 0.0)
                    if grid:
                        _grid_col2im(col, KH, KW, Wp, r0, P, gpads[t])
                    else:
                        _padded_col2im(col, KH, KW, SH, SW, Wp, r0, r1, OW, gpads[t])
            if need_gx:
                _interior(gpads[t], n, PH, PW, Wp, gx)
    return gx


# ---------------------------------------------------------------- block size for the shift path
@njit(cache=True)
def _time_taps(Wk, pad, out, KH, KW, Wp, P, reps):
    for _ in range(reps):
        for i in range(KH):
            for j in range(KW):
                s = i * Wp + j
                gemm(False, False, Wk[i * KW + j], pad[:, s:s + P], out, 1.0 if i + j else 0.0)


_shift_rows = {}  # (dtype, F, C, KH, KW, Wp) -> rows per block, measured once per process


def _shift_block_rows(dt, F, C, KH, KW, Wp, OH):
    """Rows per block for the shift path: BLAS speed depends on the block's width P = RB*Wp in
    ways no simple rule captures, so the first call times the KH*KW products of one block for
    a few candidate widths (single-threaded, on scratch arrays; a few milliseconds)."""
    import time
    budget = max(1, OUT_BLOCK_BYTES // (F * Wp * np.dtype(dt).itemsize))
    if SHIFT_ROWS is not None:
        return SHIFT_ROWS
    if F * C * KH * KW * Wp * OH < 10 ** 6:  # too small to be worth measuring
        return budget
    key = (np.dtype(dt).str, F, C, KH, KW, Wp)
    if key not in _shift_rows:
        candidates = sorted({rb for rb in (1, 2, 3, 4, 6, 8, budget) if rb <= max(1, OH)})
        rng = np.random.default_rng(0)
        Wk = rng.standard_normal((KH * KW, F, C)).astype(dt)
        best, best_rate = candidates[0], 0.0
        with single_blas():
            for rb in candidates:
                P = rb * Wp
                pad = rng.standard_normal((C, (rb + KH) * Wp)).astype(dt)
                out = np.empty((F, P), dt)
                reps = min(200, max(1, int(3e7 / (2 * KH * KW * F * C * P))))
                _time_taps(Wk, pad, out, KH, KW, Wp, P, 1)
                elapsed = []
                for _ in range(3):
                    start = time.thread_time()
                    _time_taps(Wk, pad, out, KH, KW, Wp, P, reps)
                    elapsed.append(time.thread_time() - start)
                rate = reps * P / max(min(elapsed), 1e-9)
                if rate > best_rate * 1.03:  # prefer the smaller block unless clearly faster
                    best, best_rate = rb, rate
        _shift_rows[key] = best
    return _shift_rows[key]


# ---------------------------------------------------------------- the "rows" path's layout
@njit(parallel=True, cache=True, nogil=True)
def _fold_rows(gX, KW, PW, gx):
    """The adjoint of the rows layout (conv_rows.expand_reference without the vertical padding):
    gx[n, c, h, w] = sum over j of gX[n, c*KW + j, h, w - j + PW]."""
    N, C, H, Wd = gx.shape
    OW = gX.shape[3]
    for t in prange(N * C):
        n, c = t // C, t % C
        for h in range(H):
            for w in range(Wd):
                total = 0.0
                for j in range(KW):
                    ow = w - j + PW
                    if 0 <= ow < OW:
                        total += gX[n, c * KW + j, h, ow]
                gx[n, c, h, w] = total
    return gx


def _rows_weight(W):
    """W (F, C, KH, KW) as the KH x 1 kernel over the channels c*KW + j of the rows layout."""
    F, C, KH, KW = W.shape
    return np.ascontiguousarray(W.transpose(0, 1, 3, 2).reshape(F, C * KW, KH, 1))


# ---------------------------------------------------------------- drivers
def _winograd_min_channels(kernel, H, W, padding):
    """Input channels from which a layer that winograd.applies to takes the Winograd path."""
    (KH, KW), (PH, PW) = kernel, padding
    if (KH, KW) == (3, 3) and \
            winograd.tile_size(3, H + 2 * PH - KH + 1, W + 2 * PW - KW + 1) == 4:
        return min(WINOGRAD_MIN_CHANNELS, WINOGRAD_F4_MIN_CHANNELS)
    return WINOGRAD_MIN_CHANNELS


def _path(C, kernel, stride, W, padding, F, H=None):
    """'winograd', 'shift', 'rows', 'grid', 'space_to_depth' or 'general' for this layer of
    an H x W input (H: W when not given; see the note at the top)."""
    (KH, KW), (SH, SW), PW = kernel, stride, padding[1]
    if WINOGRAD and winograd.applies(kernel, stride, padding) \
            and C >= _winograd_min_channels(kernel, W if H is None else H, W, padding) \
            and F >= WINOGRAD_MIN_FILTERS:
        return "winograd"
    if SPACE_TO_DEPTH and (SH, SW) != (1, 1) and SH >= KH and SW >= KW:
        return "space_to_depth"
    if (SH, SW) != (1, 1) or (KW - 1) > MAX_GRID_WASTE * (W + 2 * PW):
        return "general"
    if C >= SHIFT_MIN_CHANNELS:
        return "shift"
    return "rows" if KW > 1 and C * KW >= ROWS_MIN_CHANNELS else "grid"


def _rows(per_row_bytes, budget, OH, N, tasks_wanted, max_rows=None):
    """Output rows per block: the block stays under budget; enough blocks to share out."""
    RB = max(1, min(OH, budget // max(1, per_row_bytes), OH if max_rows is None else max_rows))
    if N * -(-OH // RB) < tasks_wanted:
        RB = max(1, min(RB, -(-OH * N // tasks_wanted)))
    return RB


def forward(x, W, b, kernel, stride, padding, OH, OW, relu, winograd_filters=None):
    """y (N, F, OH, OW) on NumPy arrays (arguments checked by the caller); winograd_filters:
    see kernels.conv2d_forward."""
    x = np.ascontiguousarray(x)
    N, C, H, Wd = x.shape
    path = _forward_path_of(N, C, kernel, stride, Wd, padding, W.shape[0], OH, OW)
    if path == "products":
        return conv_products.forward(x, W, b, kernel, stride, padding, OH, OW, relu)
    if path == "winograd":
        return winograd.forward(x, W, b, kernel, stride, padding, OH, OW, relu,
                                winograd_filters)
    if path == "rows":
        F, T = W.shape[0], numba.get_num_threads()
        RB = _rows(1, _shift_block_rows(x.dtype, F, C * kernel[1], kernel[0], 1, OW, OH), OH,
                   N, 2 * T)
        with single_blas():
            return conv_rows.forward(x, W, b, kernel, padding, OH, OW, relu, RB, T,
                                     ROWS_BAND_BYTES)
    if path == "space_to_depth":
        with single_blas():
            return conv_space_to_depth.forward(x, W, b, kernel, stride, padding, OH, OW, relu,
                                               numba.get_num_threads())
    return _forward_path(path, x, W, b, kernel, stride, padding, OH, OW, relu)


# The forward "products" path (kernels/conv_products.py): every 1x1 stride-1 layer without
# padding, and, for a batch of fewer than 2 images per thread (batch-1 latency), every other
# layer of SHIFT_MIN_CHANNELS or more input channels (an RGB layer's column matrix is long and
# thin: its row blocks run faster) but the Winograd ones with at least WINOGRAD_MIN_TILES
# output tiles of 2x2: on fewer (resnet50's 7x7 layers: 16) Winograd's products are too narrow
# (1 thread, 512->512 on 7x7: 7.6 ms against 3.7 ms), on more it is as fast or faster.
# PRODUCTS: "auto" (that rule), "never" or "always" (to compare and to test).
PRODUCTS = "auto"
WINOGRAD_MIN_TILES = 32


def forward_path(x_shape, W_shape, stride, padding):
    """The CPU forward pass's path for this layer: "products", "winograd", "shift", "grid",
    "rows", "space_to_depth" or "general" (stride and padding as pairs)."""
    (N, C, H, Wd), (F, _, KH, KW) = x_shape, W_shape
    OH = (H + 2 * padding[0] - KH) // stride[0] + 1
    OW = (Wd + 2 * padding[1] - KW) // stride[1] + 1
    return _forward_path_of(N, C, (KH, KW), tuple(stride), Wd, tuple(padding), F, OH, OW)


def _forward_path_of(N, C, kernel, stride, Wd, padding, F, OH, OW):
    """The forward pass's path: "products", or _path's."""
    H = (OH - 1) * stride[0] + kernel[0] - 2 * padding[0]   # (an input height giving OH)
    path = _path(C, kernel, stride, Wd, padding, F, H=H)
    if PRODUCTS != "auto":
        return "products" if PRODUCTS == "always" else path
    if conv_products.is_pointwise(kernel, stride, padding):
        return "products"
    if N < 2 * numba.get_num_threads() and C >= SHIFT_MIN_CHANNELS and (
            path != "winograd" or N * -(-OH // 2) * -(-OW // 2) < WINOGRAD_MIN_TILES):
        return "products"
    return path


def _forward_path(path, x, W, b, kernel, stride, padding, OH, OW, relu):
    """forward on the "shift", "grid" or "general" path."""
    N, C, H, Wd = x.shape
    F = W.shape[0]
    (KH, KW), (PH, PW), dt = kernel, padding, x.dtype
    T = numba.get_num_threads()
    y = np.empty((N, F, OH, OW), dt)
    bb = np.zeros(F, dt) if b is None else np.ascontiguousarray(b, dtype=dt)
    Hp, Wp = H + 2 * PH, Wd + 2 * PW
    with single_blas():
        if path == "shift":
            Wk = np.ascontiguousarray(W.transpose(2, 3, 0, 1).reshape(KH * KW, F, C))
            RB = _rows(1, _shift_block_rows(dt, F, C, KH, KW, Wp, OH), OH, N, 2 * T)
            pads = np.zeros((T, C, (Hp + 1) * Wp), dt)
            outs = np.empty((T, F * RB * Wp), dt)
            return _forward_shift(x, Wk, bb, b is not None, relu, KH, KW, PH, PW, RB, pads,
                                  outs, y)
        W2 = np.ascontiguousarray(W.reshape(F, -1))
        CK = W2.shape[1]
        grid = path == "grid"
        L = Wp if grid else OW
        if grid:
            RB = _rows(CK * Wp * dt.itemsize, GRID_BLOCK_BYTES, OH, N, 2 * T,
                       GRID_BLOCK_COLUMNS // Wp)
        else:
            RB = _rows(CK * OW * dt.itemsize, COL_BLOCK_BYTES, OH, N, 2 * T)
        if N < 2 * T:   # blocks of one image shared out: of one size (resnet50's 7x7 layer at
            RB = -(-OH // -(-OH // RB))   # batch 1 had 31, 31, 31 and 19 rows, now 4 x 28)
        pads = np.zeros((T, C, (Hp + 1) * Wp), dt)
        cols = np.empty((T, CK * RB * L), dt)
        outs = np.empty((T, F * RB * L), dt)
        return _forward_columns(x, W2, bb, b is not None, relu, KH, KW, *stride, PH, PW, grid,
                                RB, pads, cols, outs, y)


def backward(gy, x, W, kernel, stride, padding, OH, OW, need_gx, need_gW, relu_input=False):
    """(gx, gW) on NumPy arrays, either None where not needed (arguments checked). relu_input:
    x is a ReLU's output; then gx comes through the ReLU's backward (kernels.relu_backward(gx,
    x)), with its float64 channel sums as a third value (relu_backward_channel_sums' bits;
    the Winograd path masks and sums in its output pass)."""
    x = np.ascontiguousarray(x)
    if relu_input:
        if need_gx and x.shape[0] >= numba.get_num_threads() and _path(
                x.shape[1], kernel, stride, x.shape[3], padding, W.shape[0], H=x.shape[2]) \
                == "winograd":
            return winograd.backward(gy, x, W, kernel, stride, padding, OH, OW, True, need_gW,
                                     relu_input=True)
        gx, gW = backward(gy, x, W, kernel, stride, padding, OH, OW, need_gx, need_gW)
        if gx is None:
            return gx, gW, None
        gx, sums = relu_backward_channel_sums_cpu(gx, x)
        return gx, gW, sums
    N, C, H, Wd = x.shape
    F, dt = W.shape[0], x.dtype
    gy = np.ascontiguousarray(gy, dtype=dt)
    if N < numba.get_num_threads():  # too few images to give each thread its own
        return _backward_whole_batch(gy, x, W, kernel, stride, padding, OH, OW, need_gx,
                                     need_gW)
    path = _path(C, kernel, stride, Wd, padding, F, H=H)
    if path == "winograd":
        return winograd.backward(gy, x, W, kernel, stride, padding, OH, OW, need_gx, need_gW)
    if path == "rows":
        (KH, KW), (PH, PW) = kernel, padding
        gW = gX = None
        if need_gW:
            T = numba.get_num_threads()
            with single_blas():
                gW = conv_rows.weight_gradient(gy, x, kernel, padding,
                                               max(1, min(OH, ROWS_GW_COLUMNS // OW)), T,
                                               ROWS_BAND_BYTES)
        if need_gx:   # the adjoint of the KH x 1 products (X itself is not read)
            X = np.empty((N, C * KW, H, OW), dt)
            gX, _ = _backward_path("shift", gy, X, _rows_weight(W), (KH, 1), (1, 1), (PH, 0),
                                   OH, OW, True, False)
            gX = _fold_rows(gX, KW, PW, np.empty(x.shape, dt))
        return gX, gW
    if path == "space_to_depth":
        with single_blas():
            return conv_space_to_depth.backward(gy, x, W, kernel, stride, padding, need_gx,
                                                need_gW, numba.get_num_threads())
    return _backward_path(path, gy, x, W, kernel, stride, padding, OH, OW, need_gx, need_gW)


def _backward_path(path, gy, x, W, kernel, stride, padding, OH, OW, need_gx, need_gW):
    """backward on the "shift", "grid" or "general" path."""
    N, C, H, Wd = x.shape
    F = W.shape[0]
    (KH, KW), (PH, PW), dt = kernel, padding, x.dtype
    T = numba.get_num_threads()
    Hp, Wp = H + 2 * PH, Wd + 2 * PW
    gx = np.empty(x.shape, dt) if need_gx else np.empty((1, 1, 1, 1), dt)
    W2 = np.ascontiguousarray(W.reshape(F, -1))
    CK = W2.shape[1]
    with single_blas():
        # every path works from zero-padded copies of the image and of its gradient
        pads = np.zeros((T, C, (Hp + 1) * Wp) if need_gW else (T, 1, 1), dt)
        gpads = np.zeros((T, C, (Hp + 1) * Wp) if need_gx else (T, 1, 1), dt)
        if path == "shift":
            Wk = np.ascontiguousarray(W.transpose(2, 3, 0, 1).reshape(KH * KW, F, C))
            # NOTE: a fixed (not timed) block height: the tiles set the order in which the
            # input gradient's terms are added, and results must not vary from run to run.
            RB = _rows(F * Wp * dt.itemsize, OUT_BLOCK_BYTES, OH, N, 1)
            gys = np.empty((T, F * OH * Wp), dt)
            gWs = np.empty((T, KH * KW, F, C), dt)
            RBW = max(1, min(OH, GW_BLOCK_COLUMNS // Wp))
            _backward_shift(gy, x, Wk, need_gx, need_gW, KH, KW, PH, PW, RB, RBW, pads, gpads,
                            gys, gWs, gx)
            gW = gWs.sum(axis=0).transpose(1, 2, 0).reshape(W.shape)
        else:
            grid = path == "grid"
            L = Wp if grid else OW
            if grid:
                RB = _rows(CK * Wp * dt.itemsize, GRID_BLOCK_BYTES, OH, N, 1,
                           GRID_BLOCK_COLUMNS // Wp)
            else:
                RB = _rows(CK * OW * dt.itemsize, COL_BLOCK_BYTES, OH, N, 1)
            cols = np.empty((T, CK * RB * L), dt)
            gys = np.empty((T, F * RB * L), dt)
            gWs = np.empty((T, F, CK), dt)
            _backward_columns(gy, x, W2, need_gx, need_gW, KH, KW, *stride, PH, PW, grid, RB,
                              pads, gpads, cols, gys, gWs, gx)
            gW = gWs.sum(axis=0).reshape(W.shape)
    return (gx if need_gx else None), (gW if need_gW else None)


def _backward_whole_batch(gy, x, W, kernel, stride, padding, OH, OW, need_gx, need_gW):
    """Backward for a batch smaller than the thread count: parallel im2col, threaded BLAS."""
    N, F = x.shape[0], W.shape[0]
    W2 = W.reshape(F, -1)
    gy = gy.reshape(N, F, OH * OW)
    args = (*kernel, *stride, *padding, OH, OW)
    gx = gW = None
    if need_gW:
        col = _im2col_parallel(x, *args, np.empty((N, W2.shape[1], OH * OW), x.dtype))
        gW = sum(gy[n] @ col[n].T for n in range(N)).reshape(W.shape)
    if need_gx:
        gx = _col2im_parallel(np.matmul(W2.T, gy), *args, np.empty(x.shape, x.dtype))
    return gx, gW
