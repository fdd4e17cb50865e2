"""Winograd forward of one image on several threads: transforms split by channel and filter,
products split by transform element (batch-1 latency)."""
import math

import numpy as np
from numba import njit, prange

from .blas import gemm
from .winograd import (_buffers, _input_transform, _output_transform, _stride, tile_columns,
                       virtual_tiles)

# NOTE: the batched kernel (kernels/winograd.py) deals out blocks of tile rows, each through
# all three stages. One image of 14x14 has 7 tile rows: blocks of 2 rows (16 tiles, narrow
# products that read all of U[ξ] for 16 columns) and one thread with 4 rows to the other's 3.
# Here the whole image is one block, in three parallel stages with a barrier between them:
# the input transform, channels shared out; the α² products U[ξ] (F x C) @ V[ξ] (C x tiles),
# one per task, each reading U[ξ] once with every tile as a column; the output transform,
# filters shared out. Every stage is split evenly, and each element of the output is the
# same sum (the same BLAS call on the same columns) whatever the thread count. Used where the
# image's transforms V fit in MAX_BYTES (resnet50's 14x14 layers, 256 channels: 0.9 MB): on
# larger ones the stages' V and M leave the cache between them and one thread ran 4-20% slower
# than the blocks (1 thread, CPU time: 14x14 256->256 0.87x the blocks' time, 28x28 128->128
# 1.04x, 56x56 64->64 on F(4x4, 3x3) 1.20x).
MAX_BYTES = 1 << 20


def fits(U, m, OH, OW, itemsize):
    """True when one image's input transforms V (α² x C x tiles) fit in MAX_BYTES."""
    alpha = math.isqrt(U.shape[0])
    tiles = -(-OH // m) * virtual_tiles(-(-OW // m), m, alpha)
    return U.shape[0] * U.shape[2] * tiles * itemsize <= MAX_BYTES


@njit(parallel=True, cache=True, nogil=True)
def _forward_one(x, U, b, relu, m, PH, PW, T, planes, rows, flats, scratch, lines, V, M, y):
    C, F = x.shape[1], U.shape[1]
    TH, TW = (y.shape[2] + m - 1) // m, (y.shape[3] + m - 1) // m
    P = TH * tile_columns(TW, m, rows.shape[1])
    for t in prange(T):
        c0, c1 = t * C // T, (t + 1) * C // T
        if c1 > c0:
            _input_transform(x[:, c0:c1], 0, 1, 1, PH, PW, 0, TH, TW, P, 0, planes[t], rows[t],
                             flats[t], V[:, c0 * P:], m)
    for xi in prange(U.shape[0]):
        gemm(False, False, U[xi], V[xi, :C * P].reshape(C, P), M[xi, :F * P].reshape(F, P),
             0.0)
    for t in prange(T):
        f0, f1 = t * F // T, (t + 1) * F // T
        if f1 > f0:
            _output_transform(M[:, f0 * P:], 0, 1, 0, TH, TW, P, 0, b[f0:f1], relu, scratch[t],
                              lines[t], y[:, f0:f1], m, y[:0])
    return y


def forward_one(x, U, b, m, padding, OH, OW, relu, T):
    """y (1, F, OH, OW) of one C-contiguous image x (1, C, H, W) from the filter transform U
    (α², F, C) of tile m, on T threads (the caller holds the BLAS at one thread)."""
    C, F, dt = x.shape[1], U.shape[1], x.dtype
    alpha = math.isqrt(U.shape[0])
    TH, TW = -(-OH // m), -(-OW // m)
    P = TH * tile_columns(TW, m, alpha)
    planes, rows, flats, scratch, lines, _, _ = _buffers(T, 0, 0, TH, 1, TH, TW, alpha, m, dt)
    V = np.empty((U.shape[0], _stride(C * P, dt.itemsize)), dt)
    M = np.empty((U.shape[0], _stride(F * P, dt.itemsize)), dt)
    y = np.empty((1, F, OH, OW), dt)
    bb = np.zeros(F, dt) if b is None else np.ascontiguousarray(b, dtype=dt)
    return _forward_one(x, U, bb, relu, m, padding[0], padding[1], T, planes, rows, flats,
                        scratch, lines, V, M, y)
