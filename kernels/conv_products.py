"""CPU convolution forward as plain matrix products: 1x1 layers read the image in place, and
batches too small to give each thread its own images share out blocks of filters and pixels."""
import math

import numba
import numpy as np
from numba import njit, prange

from .blas import gemm
from .conv_parts import _claim, single_blas
from .im2col import _im2col_parallel

# NOTE: a 1x1 convolution with stride 1 and no padding is y[n] (F x HW) = W (F x C) @ x[n]
# (C x HW), NCHW as it stands: no column matrix, no padded copy. Any other layer of a small
# batch (fewer images than twice the threads, e.g. batch-1 latency) takes the column matrix of
# the whole batch once (im2col, parallel over channels) and the same products. Either way the
# work is dealt out as tasks (image, block of filters, block of pixels) from a shared counter,
# so that one image keeps both cores busy: splitting the filters keeps each product's columns
# long (a 7x7 image has 49 pixels; its halves would run BLAS at half speed). The bias and ReLU
# are applied to each block right after its product, while it is in the cache.
BLOCK_BYTES = 512 << 10     # one task's output block, at most (kept in the L2 cache)
MIN_COLUMNS = 128           # pixels per block, at least (where the image has them)
MIN_FILTERS = 32            # filters per block, at least (where the layer has them)
TASKS_PER_THREAD = 2        # so that a thread slowed by other work takes fewer


@njit(parallel=True, cache=True, nogil=True)
def _products(col, W2, b, has_b, relu, FS, PS, T, y2):
    """y2[n, f0:f1, p0:p1] = W2[f0:f1] @ col[n, :, p0:p1] (+ b, ReLU) for every block."""
    N, P = col.shape[0], col.shape[2]
    F = W2.shape[0]
    FB, PB = (F + FS - 1) // FS, (P + PS - 1) // PS
    tasks = N * FB * PB
    counter = np.zeros(1, np.int64)
    for _ in prange(T):
        while True:
            task = _claim(counter)
            if task >= tasks:
                break
            n, rest = task // (FB * PB), task % (FB * PB)
            f0, p0 = (rest // PB) * FS, (rest % PB) * PS
            f1, p1 = min(F, f0 + FS), min(P, p0 + PS)
            out = y2[n, f0:f1, p0:p1]
            gemm(False, False, W2[f0:f1], col[n, :, p0:p1], out, 0.0)
            if has_b or relu:
                for f in range(f1 - f0):
                    bf = b[f0 + f] if has_b else 0
                    for p in range(p1 - p0):
                        v = out[f, p] + bf
                        out[f, p] = max(v, 0) if relu else v
    return y2


def blocks(N, F, P, itemsize, T):
    """(filters, pixels) per task: for a batch of fewer than 2 images per thread, each image
    cut along its longer side into as few equal blocks as give every thread the same share;
    else blocks within BLOCK_BYTES, enough tasks for T threads where the layer can be cut that
    fine, and a task count that T divides, in blocks of one size."""
    if 1 < T and N < 2 * T:
        return _small_batch_blocks(N, F, P, itemsize, T)
    PS = max(min(P, MIN_COLUMNS), min(P, BLOCK_BYTES // max(1, F * itemsize)))
    FS = F if F * PS * itemsize <= BLOCK_BYTES else \
        max(min(F, MIN_FILTERS), BLOCK_BYTES // (PS * itemsize))
    wanted = TASKS_PER_THREAD * T if T > 1 else 1

    def count(fs, ps):
        return N * -(-F // fs) * -(-P // ps)

    while count(FS, PS) < wanted and FS > MIN_FILTERS:
        FS = max(MIN_FILTERS, -(-FS // 2))
    while count(FS, PS) < wanted and PS > MIN_COLUMNS:
        PS = max(MIN_COLUMNS, -(-PS // 2))
    return _even(N, F, P, -(-F // FS), -(-P // PS), T)


# NOTE: each task's BLAS call packs its whole block of W (F x C) and of the columns (C x P):
# cutting the filters packs the columns once per filter block, cutting the pixels packs W once
# per pixel block. One thread's CPU time over resnet50's batch-1 products (1x1 and im2col
# layers, relative to one product per layer): 1.00-1.13 for two blocks along the longer side
# (filters when F >= P), 1.02-1.33 along the shorter, 1.00-1.59 for the four blocks of
# TASKS_PER_THREAD = 2; 1.7-4.1 for eight. So a small batch gets one block per thread, cut
# along the longer side (outputs up to 3 MB a block ran no slower than smaller ones).
SMALL_BATCH_BLOCKS = 8      # a small batch's output blocks: at most this many BLOCK_BYTES


def _small_batch_blocks(N, F, P, itemsize, T):
    FB, PB = _cut(F, P, 1, 1, T // math.gcd(N, T))   # N x blocks per image: T divides it
    while -(-F // FB) * -(-P // PB) * itemsize > SMALL_BATCH_BLOCKS * BLOCK_BYTES:
        more = _cut(F, P, FB, PB, 2)
        if more == (FB, PB):
            break
        FB, PB = more
    return _even(N, F, P, FB, PB, T)


def _cut(F, P, FB, PB, step):
    """(FB, PB) with the longer side of the blocks cut `step` times finer (the other side where
    that one would fall below its minimum; unchanged where neither can)."""
    f_ok = FB * step <= F and -(-F // (FB * step)) >= min(F, MIN_FILTERS)
    p_ok = PB * step <= P and -(-P // (PB * step)) >= min(P, MIN_COLUMNS)
    if f_ok and (-(-F // FB) >= -(-P // PB) or not p_ok):
        return FB * step, PB
    return (FB, PB * step) if p_ok else (FB, PB)


def _even(N, F, P, FB, PB, T):
    """(filters, pixels) per block for about FB x PB blocks per image: blocks of one size, as
    many as T divides."""
    # NOTE: 1024 filters cut at 336 left a block of 16, and 3136 pixels at 512 one of 64, so
    # that one thread took 4 blocks' work of 7.
    FB, PB = min(FB, F), min(PB, P)
    while T > 1 and (N * FB * PB) % T and (PB < P or FB < F):
        if PB < P and (P // (PB + 1) >= MIN_COLUMNS or FB >= F):
            PB += 1
        else:
            FB += 1
    FS, PS = -(-F // FB), -(-P // PB)
    if 16 < FS < F and -(-F // (-(-FS // 16) * 16)) == FB:   # whole SIMD widths of filters
        FS = -(-FS // 16) * 16
    return FS, PS


def is_pointwise(kernel, stride, padding):
    """True for a 1x1 layer with stride 1 and no padding: a product on the image as it is."""
    return tuple(kernel) == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0)


def forward(x, W, b, kernel, stride, padding, OH, OW, relu):
    """y (N, F, OH, OW) of a C-contiguous NumPy x: W2 @ x[n] for a pointwise layer, else
    W2 @ im2col(x)[n]; parallel over tasks (image, filters, pixels)."""
    N = x.shape[0]
    F, dt = W.shape[0], x.dtype
    if is_pointwise(kernel, stride, padding):
        col = x.reshape(N, x.shape[1], OH * OW)
    else:
        (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
        col = _im2col_parallel(x, KH, KW, SH, SW, PH, PW, OH, OW,
                               np.empty((N, x.shape[1] * KH * KW, OH * OW), dt))
    W2 = np.ascontiguousarray(W.reshape(F, -1), dtype=dt)
    bb = np.zeros(F, dt) if b is None else np.ascontiguousarray(b, dtype=dt)
    T = numba.get_num_threads()
    FS, PS = blocks(N, F, OH * OW, dt.itemsize, T)
    y = np.empty((N, F, OH, OW), dt)
    with single_blas():
        _products(col, W2, bb, b is not None, relu, FS, PS, T, y.reshape(N, F, OH * OW))
    return y
