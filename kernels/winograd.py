"""Winograd F(4x4, 3x3), F(2x2, 3x3) and F(2x2, 5x5) convolution on the CPU."""
import math
import os

import numba
import numpy as np
from numba import njit, prange

from . import winograd23, winograd25, winograd33, winograd43, winograd_filters
from .blas import gemm
# (kernels.channel_sums._plane_sum is inlined into _forward's cached code; a change there
# recompiles it: kernels/cache_stamp.py)
from .channel_sums import _plane_sum, channel_sums
from .conv_parts import _claim, _task_blocks, single_blas

# NOTE: minimal filtering F(m x m, r x r) (Lavin & Gray, 2015), here F(2x2, 3x3), F(4x4, 3x3)
# and F(2x2, 5x5) (kernels/winograd23.py, winograd43.py and winograd25.py). An m x m
# tile of the output of an r x r kernel g over the α x α input patch d under it (α = m + r - 1)
# is Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A: a product of α x α matrices element by element, α²
# multiplies instead of m²r² (F(4x4, 3x3): 36 for 16 outputs, F(2x2, 3x3): 16 for 4). Summed
# over the input channels c, each of the α² elements ξ of the transforms becomes a matrix
# product:
#     M[ξ] (F x tiles) = U[ξ] (F x C) @ V[ξ] (C x tiles),  U = G g Gᵀ,  V = Bᵀ d B,
# so the convolution is α² BLAS products plus cheap transforms (additions, and for α = 6
# multiplications by 2, 4, 5 and 8). Tile (ti, tj) reads the input patch with origin
# (m*ti - PH, m*tj - PW); zeros outside the image. The transforms of a block of tile rows
# stay in one thread's cache between the products. One set of kernels serves the three; the
# transforms are picked by m and α² (the rows of V and M).
ZERO = np.float32(0)  # max(v, ZERO) keeps float32 v in float32
FILTER_MATRICES = {(2, 3): winograd23.G, (3, 3): winograd33.G, (4, 3): winograd43.G,
                   (2, 5): winograd25.G}  # by (m, r)
# The output tile of 3x3 layers: 4 (F(4x4, 3x3)) or 2 (F(2x2, 3x3): a third of the rounding
# error, 1.8x the products). TINYLESION_WINOGRAD_TILE=2 chooses the latter for a process.
TILE_3X3 = 2 if os.environ.get("TINYLESION_WINOGRAD_TILE", "4").strip() == "2" else 4
# Below this many pixels a side F(4x4, 3x3) loses: its tiles waste more of the image's border
# and its products get narrow. Measured on the seed models' layers (1 thread, batch 8, forward
# / input gradient / weight gradient, against F(2x2, 3x3)): 0.84 / 0.77 / 0.89 of the time at
# 75x100 (32->32), 0.79 / 0.78 / 0.93 at 37x50 (32->64), 0.85 / 0.90 / 0.91 at 64x64 (16->32),
# 0.73 / 0.75 / 0.83 at 32x32 (32->64). Since the transforms run over several small images at
# once, also at 18x25 (1 thread, batch 32, CPU time: 0.83-0.86 / 0.82-0.91 / 0.85-0.91 at
# 64->128 and 128->128) and 28x28 (128->128: 0.74 / 0.80 / 0.77); not at 9x12 (1.1-1.2: a
# quarter of its products are the extra tile of each tile row).
F4_MIN_SIDE = 16
# Below F4_MIN_SIDE, F(3x3, 3x3) (kernels/winograd33.py) where its products are at most this
# share of F(2x2, 3x3)'s (tile_size): at 9x12 375 against 560 an image and channel pair
# (0.67: 3 x 4 tiles plus one extra a tile row, against 5 x 6 plus one).
F3_SHARE = 0.8
# F(3x3, 3x3)'s forward blocks (forward and input gradient): F3_WIDE times MIN_COLUMNS tiles,
# and one block per thread rather than two where the batch has them: each of its 25 products
# packs all of U[ξ] for the block's columns, and a 9x12 image is only 15 of them. Measured at
# 9x12, batch 32, CPU time against 128 columns and two blocks a thread (medians, a loaded
# machine): 0.80-0.83x at 1 thread (forward and input gradient, 128->256 and 256->256),
# 0.90-0.92x at 2 threads.
F3_WIDE = 2
# Bytes of one thread's V and M for one block of tiles (the L2 cache is ~1 MiB per core), but
# at least MIN_COLUMNS tiles per block (GW_MIN_COLUMNS for the weight gradient) where the batch
# has them: BLAS runs narrow products slowly (1 core: 256x256 @ 256x30 at 40 GFLOP/s, @ 256x120
# at 75). Measured on the seed models' layers: wider blocks for the weight gradient than the
# budget gives only lose (256->256 on 9x12: 22 ms at 64 columns, 38 ms at 512).
TILE_BLOCK_BYTES = 1 << 20
MIN_COLUMNS, GW_MIN_COLUMNS = 128, 64
# The weight gradient's budget: its products (F x P @ P x C into the thread's own dU) gain from
# more tiles per block. Measured at 1 thread, batch 32, against 1 MiB (CPU time, a loaded
# machine): 1.13-1.2x on padua4's 75x100 and 37x50 layers, the same on its 18x25 and 9x12 ones
# (where GW_MIN_COLUMNS sets the blocks); the whole padua4 training step 1.01-1.03x.
GW_BLOCK_BYTES = 2 << 20
# F(3x3, 3x3)'s weight gradient (and its one-pass backward, kernels/winograd_backward.py): at
# least this many tiles per block, where GW_MIN_COLUMNS gives 75 on 9x12 images (5 of them):
# each block adds its products into the whole dU (25 F x C matrices), and the one pass's
# U[ξ]ᵀ dM[ξ] gets wide. Measured at 9x12, batch 32, both gradients (CPU time against the two
# passes at 64 columns, medians of 9, a loaded machine), 128->256 / 256->256: the one pass at
# 240 columns 0.83 / 0.92 at 1 thread, 0.88 / 0.88 at 2; at 64 columns 0.90-1.01 / 1.14-1.16
# (its U[ξ]ᵀ dM[ξ] 75 tiles wide); at 480 0.80 / 1.00 and 0.82 / 0.96.
F3_GW_COLUMNS = 240
# NOTE: tried on padua4's 9x12 layers and left out: the products and the output transform per
# block of 32, 64 or 128 filters, so that a block's M stays in the L2 cache. Measured at 1
# thread, batch 16 (one thread's share of batch 32), CPU time, alternating with this code in
# one process (medians of 40-60 rounds, a loaded machine), 128->256 / 256->256: 0.98 / 1.21,
# 1.16 / 1.17 and 1.06 / 1.06 of this code's forward time. BLAS packs its operands on every
# call, so V[ξ] is packed again for each block of filters; a profile of the 128->256 forward
# (perf, 1 thread): OpenBLAS 54% of the time (its kernel 34%, packing 16%, zeroing M 4%), the
# transforms 32%; of the backward: OpenBLAS 62% (kernel 38%, packing 22%), transforms 26%.
# NOTE: the transforms copy image rows in memory order through views indexed from 0: the
# output pass and the transform of gy once went over a block's rows with a stride of m rows
# (a cache miss on every short row) and indexed buffers at an offset (a check per element
# that kept the loops scalar). Measured at 1 thread, batch 32, CPU time against that, one
# process alternating (a loaded machine), same bits: forward 0.79-1.04, weight gradient
# 0.54-0.96, both gradients (one pass) 0.61-0.95 on padua4's 18x25 and 37x50 and
# baseline_cnn's 32x32 layers.
# One image on several threads: kernels/winograd_latency.py (False: the blocks of tile rows).
ONE_IMAGE = True


def filter_transform(W, m):
    """U (α², F, C) = G g Gᵀ for each r x r kernel g = W[f, c] (output tiles m x m); U[α a + b]
    is element (a, b). (kernels/winograd_filters.py: on Numba's threads.)"""
    return winograd_filters.transform(W, FILTER_MATRICES[m, W.shape[2]])


def filter_transform_adjoint(dU, F, C, R, m):
    """gW (F, C, r, r) = Gᵀ dU[:, f, c] G: the gradient of filter_transform."""
    return winograd_filters.adjoint(dU, F, C, R, FILTER_MATRICES[m, R])


# ---------------------------------------------------------------- transforms (one thread)
# A block is a matrix of P columns (tiles) per channel: the tile rows [tr0, tr1) of one image
# or of a few small images side by side; the tiles of image n start at column q. Each tile row
# has TWv = virtual_tiles(TW) columns: its TW tiles and one or two more whose patch runs past
# the row's (into the next row's, in the input transform's flat rows). So every transform runs
# over all the tiles of an image's block in one loop, long enough for the SIMD lanes even on
# 9x12 images; the extra tiles cost their share of the products (1/TWv: 4% on 100-pixel-wide
# layers), their outputs are dropped and their output gradients are zero. F(3x3, 3x3) (small
# images: a quarter more products on 12-pixel-wide ones) leaves them out of V and M: its
# columns of V and M are TWc = tile_columns(TW) a tile row (kernels/winograd33.py). Measured at
# 9x12, 1 thread, batch 16 (one thread's share of batch 32), CPU time, alternating with the
# extra tiles kept in one process (medians of 40 rounds, a loaded machine): forward 0.93 /
# 0.95 of the time, backward 0.94 / 0.97 on 128->256 / 256->256 (with the compaction's loops
# written tile by tile instead: 1.00 and 0.98-1.02, the products' saving spent there).
@njit(cache=True, inline="always")
def _bias_relu(v, bias, relu):
    v = v + bias
    return max(v, ZERO) if relu else v


@njit(cache=True, inline="always")
def _split(r, m, count, ph):
    """ph[k, u] = r[m*u + k] for u < count: a row split by column modulo m (2 or 4)."""
    if m == 4:
        p0, p1, p2, p3 = ph[0], ph[1], ph[2], ph[3]
        for u in range(count):
            p0[u], p1[u], p2[u], p3[u] = r[4 * u], r[4 * u + 1], r[4 * u + 2], r[4 * u + 3]
    elif m == 3:
        winograd33.split(r, count, ph)
    else:
        p0, p1 = ph[0], ph[1]
        for u in range(count):
            p0[u], p1[u] = r[2 * u], r[2 * u + 1]


@njit(cache=True, inline="always")
def virtual_tiles(TW, m, alpha):
    """Tiles per tile row: TW, and the one or two extra (see the note above) that make every
    tile row m*TWv wide in the input transform's flat rows."""
    return TW + (1 if alpha - m <= m else 2)


@njit(cache=True, inline="always")
def tile_columns(TW, m, alpha):
    """Columns of V and M per tile row: TW for F(3x3, 3x3), whose extra tiles are left out of
    the products (kernels/winograd33.py), else virtual_tiles."""
    return TW if m == 3 else virtual_tiles(TW, m, alpha)


@njit(cache=True, inline="always")
def _input_transform(x, n0, step, images, PH, PW, tr0, tr1, TW, P, q, plane, rows, ph, V, m):
    """V[α a + b, c*P + q + g*Q + (ti - tr0)*TWc + tj] = (Bᵀ d B)[a, b] for the α x α patches d
    of tile rows [tr0, tr1) of the images n0 + g*step, g < images (Q = (tr1 - tr0)*TWc
    columns each, TWc = tile_columns; tiles m x m). Scratch: plane (m, >= (nb + 2)*m*TWv),
    one image's block rows, zero-padded, split by row modulo m; rows (α, >= images*nb*m*TWv +
    2m), their Bᵀ-combined rows, each tile row's side by side, image after image; ph (4,
    >= images*nb*TWv + 2)."""
    C, H, Wd, alpha = x.shape[1], x.shape[2], x.shape[3], rows.shape[0]
    TWv = virtual_tiles(TW, m, alpha)
    Wv, nb = m * TWv, tr1 - tr0
    count = images * nb * TWv
    h0 = m * tr0 - PH
    # NOTE: image row h0 + m*i + k' is plane[k', i*Wv + PW:...]; padding and the columns past
    # the image stay zero. Then row a of Bᵀ d for tile row i reads plane rows m*i + k: at
    # plane[k % m, i*Wv + (k // m)*Wv + w], one loop over all tile rows (combine_rows). Tile
    # tj of a tile row reads columns m*tj .. m*tj + α - 1 of its combined rows; on the flat
    # rows, tile u = (ti - tr0)*TWv + tj reads m*u .. m*u + α - 1 (split, then columns). The
    # combined rows of several small images lie one after the other, so the split and the
    # columns run once over all their tiles (9x12 images: 35 tiles each, too few for the SIMD
    # lanes); a real tile never reads past its own tile row, only the extra ones do.
    for c in range(C):
        for g in range(images):
            n = n0 + g * step
            for hh in range(m * (nb - 1) + alpha):
                h = h0 + hh
                o = (hh // m) * Wv + PW
                dst = plane[hh % m, o:o + Wd]  # (a view: unit-stride loops from 0 vectorise)
                if 0 <= h < H:
                    src = x[n, c, h]
                    for w in range(Wd):
                        dst[w] = src[w]
                else:
                    for w in range(Wd):
                        dst[w] = 0
            if alpha == 4:
                winograd23.combine_rows(plane, nb * Wv, Wv, rows, g * nb * Wv)
            elif m == 4:
                winograd43.combine_rows(plane, nb * Wv, Wv, rows, g * nb * Wv)
            elif m == 3:
                winograd33.combine_rows(plane, nb * Wv, Wv, rows, g * nb * Wv)
            else:
                winograd25.combine_rows(plane, nb * Wv, Wv, rows, g * nb * Wv)
        for a in range(alpha):
            _split(rows[a], m, count + 2, ph)
            if alpha == 4:
                winograd23.columns(ph, count, V, alpha * a, c * P + q)
            elif m == 4:
                winograd43.columns(ph, count, V, alpha * a, c * P + q)
            elif m == 3:
                winograd33.columns_real(ph, images * nb, TW, TWv, V, alpha * a, c * P + q)
            else:
                winograd25.columns(ph, count, V, alpha * a, c * P + q)


@njit(cache=True, inline="always")
def _output_transform(M, n0, images, tr0, tr1, TW, P, q, b, relu, S, lines, y, m, keep):
    """y[n0 + g, f, m*ti:m*ti+m, m*tj:m*tj+m] = Aᵀ m A + b[f] (then ReLU) for g < images and
    the α x α matrices m[α a + b] = M[α a + b, f*P + q + g*Q + (ti - tr0)*TWc + tj] (Q =
    (tr1 - tr0)*TWc, TWc = tile_columns); S (40, >= the block's tiles) and lines (m, >= its tiles times m):
    scratch. The transforms run once over the tiles of all the images. keep: empty, or an
    array of y's shape: then y is 0 where keep <= 0 (a ReLU's backward, keep its output)."""
    F, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    TWv = virtual_tiles(TW, m, m + 2 if M.shape[0] != 36 else 6)
    nb, Wv = tr1 - tr0, m * TWv
    count = images * nb * TWv
    for f in range(F):
        q0 = f * P + q
        if M.shape[0] == 16:
            winograd23.output(M, q0, count, S)
        elif m == 4:
            winograd43.output(M, q0, count, S)
        elif m == 3:
            winograd33.output(M, q0, images * nb * TW, S)
        else:
            winograd25.output(M, q0, count, S)
        # NOTE: row i of every tile, interleaved: lines[i, (g*nb + ti - tr0)*Wv + m*tj + j] is
        # output row m*ti + i, column m*tj + j of image g. Then y's plane is written row after
        # row (in memory order: a strided order misses the cache on every short row), each
        # row one loop from 0 over views (unit strides the compiler vectorises).
        for i in range(m):
            if m == 3:
                winograd33.interleave_real(S[3 * i:3 * i + 3], images * nb, TW, TWv, lines[i])
            else:
                _interleave(S[m * i:m * i + m], m, count, lines[i])
        bf = b[f]
        for g in range(images):
            for h in range(m * tr0, min(OH, m * tr1)):
                o = (g * nb + h // m - tr0) * Wv
                src, yr = lines[h % m, o:o + OW], y[n0 + g, f, h]
                if keep.shape[0] > 0:
                    _masked_copy(src, keep[n0 + g, f, h], bf, relu, yr)
                else:
                    for w in range(OW):
                        yr[w] = _bias_relu(src[w], bf, relu)


@njit(cache=True, inline="always")
def _masked_copy(src, keep, bias, relu, dst):
    """dst = _bias_relu(src) where not keep <= 0 (NaN in keep passes, as in kernels.relu),
    else 0: a select, not a branch (a ReLU's mask is unpredictable)."""
    for w in range(dst.shape[0]):
        v = _bias_relu(src[w], bias, relu)
        dst[w] = v if not keep[w] <= 0 else ZERO


@njit(cache=True, inline="always")
def _interleave(ph, m, count, r):
    """r[m*u + k] = ph[k, u] for u < count: the inverse of _split."""
    if m == 4:
        p0, p1, p2, p3 = ph[0], ph[1], ph[2], ph[3]
        for u in range(count):
            r[4 * u], r[4 * u + 1], r[4 * u + 2], r[4 * u + 3] = p0[u], p1[u], p2[u], p3[u]
    elif m == 3:
        winograd33.interleave(ph, count, r)
    else:
        p0, p1 = ph[0], ph[1]
        for u in range(count):
            r[2 * u], r[2 * u + 1] = p0[u], p1[u]


@njit(cache=True, inline="always")
def _output_transform_adjoint(gy, n0, step, images, tr0, tr1, TW, P, q, S, lines, dM, m):
    """dM[α a + b, f*P + q + g*Q + (ti - tr0)*TWc + tj] = (A dY Aᵀ)[a, b] for the m x m tiles
    dY of gy[n0 + g*step, f], g < images (zero beyond the output, and for the extra tiles):
    the adjoint of _output_transform; S and lines: scratch as there."""
    F, OH, OW = gy.shape[1], gy.shape[2], gy.shape[3]
    TWv = virtual_tiles(TW, m, m + 2 if dM.shape[0] != 36 else 6)
    nb, Wv = tr1 - tr0, m * TWv
    count = images * nb * TWv
    for f in range(F):
        # NOTE: gy's rows in memory order into lines[i] (row m*ti + i of image g at
        # lines[i, (g*nb + ti - tr0)*Wv:]), zero past the output; then S[m*i + j, t] = dY[i, j]
        # of tile t.
        for g in range(images):
            n = n0 + g * step
            for h in range(m * tr0, m * tr1):
                o = (g * nb + h // m - tr0) * Wv
                dst = lines[h % m, o:o + Wv]
                if h < OH:
                    r = gy[n, f, h]
                    for w in range(OW):
                        dst[w] = r[w]
                    for w in range(OW, Wv):
                        dst[w] = 0
                else:
                    for w in range(Wv):
                        dst[w] = 0
        for i in range(m):
            if m == 3:
                winograd33.split_real(lines[i], images * nb, TW, TWv, S[3 * i:3 * i + 3])
            else:
                _split(lines[i], m, count, S[m * i:m * i + m])
        if dM.shape[0] == 16:
            winograd23.adjoint(S, count, dM, f * P + q)
        elif m == 4:
            winograd43.adjoint(S, count, dM, f * P + q)
        elif m == 3:
            winograd33.adjoint(S, images * nb * TW, dM, f * P + q)
        else:
            winograd25.adjoint(S, count, dM, f * P + q)


# ---------------------------------------------------------------- kernels
@njit(parallel=True, cache=True, nogil=True)
def _forward(x, U, b, relu, m, PH, PW, RB, G, keep, sums, planes, rows, flats, scratch, lines,
             Vs, Ms, y):
    N, F, C = x.shape[0], U.shape[1], U.shape[2]
    TH, TW = (y.shape[2] + m - 1) // m, (y.shape[3] + m - 1) // m
    TWc = tile_columns(TW, m, rows.shape[1])
    T = Vs.shape[0]
    blocks = (TH + RB - 1) // RB
    per_image = N >= 2 * T
    # a task: G whole images (G > 1), else one image or one block of its tile rows
    tasks = (N + G - 1) // G if G > 1 else (N if per_image else N * blocks)
    counter = np.zeros(1, np.int64)
    for t in prange(T):
        V, M = Vs[t], Ms[t]
        while True:
            task = _claim(counter)
            if task >= tasks:
                break
            if G > 1:
                n0, n1, k0, k1 = task * G, min(N, task * G + G), 0, 1
            else:
                n0, k0, k1 = _task_blocks(task, blocks, per_image)
                n1 = n0 + 1
            for k in range(k0, k1):
                tr0 = k * RB
                tr1 = min(TH, tr0 + RB)
                Q = (tr1 - tr0) * TWc  # columns per image
                P = (n1 - n0) * Q
                _input_transform(x, n0, 1, n1 - n0, PH, PW, tr0, tr1, TW, P, 0, planes[t],
                                 rows[t], flats[t], V, m)
                for xi in range(V.shape[0]):
                    gemm(False, False, U[xi], V[xi, :C * P].reshape(C, P),
                         M[xi, :F * P].reshape(F, P), 0.0)
                _output_transform(M, n0, n1 - n0, tr0, tr1, TW, P, 0, b, relu, scratch[t],
                                  lines[t], y, m, keep)
            if sums.shape[0] > 0:  # (whole images) NOTE: each plane as kernels.relu sums it,
                for n in range(n0, n1):   # while in the cache: the same bits
                    for f in range(F):
                        sums[n, f] = _plane_sum(y[n, f].reshape(y.shape[2] * y.shape[3]))
    return y


@njit(parallel=True, cache=True, nogil=True)
def _weight_gradient(gy, x, m, PH, PW, RB, G, planes, rows, flats, scratch, lines, Vs, Ms, dUs):
    N, C = x.shape[0], x.shape[1]
    F = gy.shape[1]
    TH, TW = (gy.shape[2] + m - 1) // m, (gy.shape[3] + m - 1) // m
    TWc = tile_columns(TW, m, rows.shape[1])
    T = Vs.shape[0]
    for t in prange(T):
        V, dM = Vs[t], Ms[t]
        dUs[t] = 0
        mine = (N - t + T - 1) // T  # static: images t, t+T, ... in a fixed order
        for j0 in range(0, mine, G):
            j1 = min(mine, j0 + G)
            for tr0 in range(0, TH, RB):
                tr1 = min(TH, tr0 + RB)
                Q = (tr1 - tr0) * TWc
                P = (j1 - j0) * Q
                _input_transform(x, t + j0 * T, T, j1 - j0, PH, PW, tr0, tr1, TW, P, 0,
                                 planes[t], rows[t], flats[t], V, m)
                _output_transform_adjoint(gy, t + j0 * T, T, j1 - j0, tr0, tr1, TW, P, 0,
                                          scratch[t], lines[t], dM, m)
                # NOTE: M[ξ] = U[ξ] V[ξ], so dU[ξ] = Σ dM[ξ] V[ξ]ᵀ over tiles and images.
                for xi in range(V.shape[0]):
                    gemm(False, True, dM[xi, :F * P].reshape(F, P),
                         V[xi, :C * P].reshape(C, P), dUs[t, xi], 1.0)
    return dUs


# ---------------------------------------------------------------- drivers
def applies(kernel, stride, padding):
    """True when this module can compute the layer: 3x3 or 5x5, stride 1, padding at most
    2 or 4 (the input gradient's padding, kernel size - 1 - padding, must not be negative)."""
    KH, KW = kernel
    return KH == KW and KH in (3, 5) and tuple(stride) == (1, 1) and max(padding) <= KH - 1


def tile_size(R, OH, OW):
    """The output tile m of an R x R layer with an OH x OW output: TILE_3X3 for 3x3 layers of
    at least F4_MIN_SIDE pixels a side; below, 3 where F(3x3, 3x3) takes at most F3_SHARE of
    F(2x2, 3x3)'s products (unless TILE_3X3 is 2); else 2."""
    if R != 3 or TILE_3X3 == 2:
        return 2
    if min(OH, OW) >= F4_MIN_SIDE:
        return TILE_3X3
    return 3 if _products(3, OH, OW) <= F3_SHARE * _products(2, OH, OW) else 2


def gw_min_columns(m):
    """The least tiles per block of the weight gradient on m x m output tiles."""
    return F3_GW_COLUMNS if m == 3 else GW_MIN_COLUMNS


def gw_images(m, RB, TH, G, images, per_image_bytes):
    """The weight gradient's images per block (G from _block_shape): on F(4x4, 3x3), where one
    block holds whole images, as many as GW_BLOCK_BYTES holds (V and M, per_image_bytes an
    image), up to `images`."""
    # NOTE: baseline_cnn's 32->64 layer on 32x32 (72 tiles an image, 1 MB of V and M): two
    # images a block widen the products (dU[ξ] += dM[ξ] V[ξ]ᵀ: 144 columns). Measured (one
    # pass, batch 32, CPU time against one image a block, a loaded machine): 0.87-0.93 at 1
    # thread, 0.87-0.97 at 2; four images on 18x25 (64->128) took 1.08-1.16.
    if m != 4 or RB < TH:
        return G
    return max(G, min(images, GW_BLOCK_BYTES // per_image_bytes))


def _products(m, OH, OW):
    """Multiplications per image and channel pair of a 3x3 layer on m x m output tiles, the
    extra tile of each tile row included."""
    return (m + 2) ** 2 * -(-OH // m) * virtual_tiles(-(-OW // m), m, m + 2)


def _block_shape(C, F, TH, TW, alpha, itemsize, N, tasks_wanted, min_columns, budget=None):
    """(tile rows, images) per block: V and M (α² matrices each) within `budget` bytes
    (default TILE_BLOCK_BYTES), at least min_columns tiles where the images have them, and at
    least tasks_wanted blocks to share out."""
    budget = TILE_BLOCK_BYTES if budget is None else budget
    RB = max(1, min(TH, budget // (alpha ** 2 * (C + F) * TW * itemsize)))
    RB = min(TH, max(RB, -(-min_columns // TW)))
    G = 1
    if RB == TH:  # small images: several side by side
        G = max(1, min(N, -(-min_columns // (TH * TW)), -(-N // tasks_wanted)))
    if G == 1 and N * -(-TH // RB) < tasks_wanted:
        RB = max(1, min(RB, -(-TH * N // tasks_wanted)))
    return RB, G


def _stride(count, itemsize):
    """Elements between two of the α² matrices of a buffer: never a multiple of 4 KiB, so that
    the transforms' α² streams do not fall on the same cache sets."""
    return (-(-count * itemsize // 4096) * 4096 + 256) // itemsize


def _buffers(T, C, F, RB, G, TH, TW, alpha, m, dt):
    """Per-thread scratch of the transforms (see their docstrings) and the V and M of a
    block."""
    RB = min(RB, TH)
    TWv = virtual_tiles(TW, m, alpha)
    planes = np.zeros((T, m, (RB + 3) * m * TWv), dt)
    rows = np.zeros((T, alpha, G * RB * m * TWv + 4 * m), dt)
    flats = np.empty((T, 4, G * RB * TWv + 4), dt)
    scratch = np.empty((T, winograd43.SCRATCH_ROWS, G * RB * TWv), dt)
    lines = np.empty((T, m, G * RB * m * TWv + 4 * m), dt)  # one line per row of a tile
    P = G * RB * TWv
    Vs = np.empty((T, alpha ** 2, _stride(C * P, dt.itemsize)), dt)
    Ms = np.empty((T, alpha ** 2, _stride(F * P, dt.itemsize)), dt)
    return planes, rows, flats, scratch, lines, Vs, Ms


def _forward_U(x, U, b, m, padding, OH, OW, relu, keep=None):
    """y, or (y masked by keep > 0, its float64 channel sums) when keep (y's shape) is given."""
    N, C, H, Wd = x.shape
    F, dt, alpha = U.shape[1], x.dtype, math.isqrt(U.shape[0])  # U: (α², F, C)
    T = numba.get_num_threads()
    TH, TW = -(-OH // m), -(-OW // m)
    wide = F3_WIDE if alpha == 5 else 1
    RB, G = _block_shape(C, F, TH, virtual_tiles(TW, m, alpha), alpha, dt.itemsize, N,
                         max(1, 2 * T // wide), wide * MIN_COLUMNS)
    y = np.empty((N, F, OH, OW), dt)
    bb = np.zeros(F, dt) if b is None else np.ascontiguousarray(b, dtype=dt)
    # NOTE: the tasks of a batch of fewer than 2 images per thread are blocks of part of an
    # image, which cannot sum its planes: then kernels.channel_sums sums the masked y
    # afterwards (_plane_sum too: the same bits).
    whole = keep is not None and (N >= 2 * T or RB >= TH)
    sums = np.empty((N, F) if whole else (0, 0), np.float64)
    _forward(x, U, bb, relu, m, *padding, RB, G,
             np.empty((0, 0, 0, 0), dt) if keep is None else np.ascontiguousarray(keep, dt),
             sums, *_buffers(T, C, F, RB, G, TH, TW, alpha, m, dt), y)
    if keep is None:
        return y
    if not whole:
        return y, channel_sums(y)
    total = np.zeros(F, np.float64)
    for n in range(N):  # in the order of kernels.channel_sums
        total += sums[n]
    return y, total


def forward(x, W, b, kernel, stride, padding, OH, OW, relu, filters=None):
    """y (N, F, OH, OW), as conv_cpu.forward, for a layer where `applies` holds. filters: None,
    or a function m -> filter_transform(W, m) (an inference caller's kept transform)."""
    x = np.ascontiguousarray(x)
    m = tile_size(W.shape[2], OH, OW)
    with single_blas():  # NOTE: also for the filter transform: idle BLAS threads would spin
        U = filter_transform(np.asarray(W, x.dtype), m) if filters is None else filters(m)
        T = numba.get_num_threads()
        if x.shape[0] == 1 and T > 1 and ONE_IMAGE:
            from . import winograd_latency as one   # (it imports this module)
            if one.fits(U, m, OH, OW, x.dtype.itemsize):
                return one.forward_one(x, U, b, m, padding, OH, OW, relu, T)
        return _forward_U(x, U, b, m, padding, OH, OW, relu)


def backward(gy, x, W, kernel, stride, padding, OH, OW, need_gx, need_gW, relu_input=False):
    """(gx, gW), as conv_cpu.backward, for a layer where `applies` holds (batch >= threads);
    both gradients in one pass where kernels/winograd_backward.py applies.
    relu_input: x is a ReLU's output; then gx is masked as the ReLU's backward masks it
    (kernels.relu_backward(gx, x)), and a third value is its float64 channel sums, the bits
    kernels.relu_backward_channel_sums gives (None without need_gx)."""
    x = np.ascontiguousarray(x)
    gy = np.ascontiguousarray(gy, dtype=x.dtype)
    from . import winograd_backward as fused   # (it imports this module)
    with single_blas():  # NOTE: also for the filter transforms: idle BLAS threads would spin
        if need_gx and need_gW and fused.applies(W.shape[2], OH, OW):
            gx, gW, sums = fused.backward(gy, x, W, padding, OH, OW, relu_input)
        else:
            gx, gW, sums = _backward(gy, x, W, padding, OH, OW, need_gx, need_gW, relu_input)
    return (gx, gW, sums) if relu_input else (gx, gW)


def _backward(gy, x, W, padding, OH, OW, need_gx, need_gW, relu_input):
    N, C, H, Wd = x.shape
    F, R, dt = W.shape[0], W.shape[2], x.dtype
    m = tile_size(R, OH, OW)
    gx = gW = sums = None
    if need_gx:
        # NOTE: the input gradient is the convolution of gy with the kernels flipped and
        # transposed (C x F x r x r), padded by r - 1 - padding: a forward Winograd convolution.
        # A ReLU's mask on x, and the sums, are applied in its output pass.
        Ut = winograd_filters.transform_flipped(W, FILTER_MATRICES[m, R])
        gx = _forward_U(gy, Ut, None, m,
                        (R - 1 - padding[0], R - 1 - padding[1]), H, Wd, False,
                        x if relu_input else None)
        if relu_input:
            gx, sums = gx
    if need_gW:
        T = numba.get_num_threads()
        TH, TW = -(-OH // m), -(-OW // m)
        alpha = m + R - 1
        # NOTE: a fixed (not timed) block shape: it sets the order of the sums.
        RB, G = _block_shape(C, F, TH, virtual_tiles(TW, m, alpha), alpha, dt.itemsize,
                             -(-N // T), 1, gw_min_columns(m), GW_BLOCK_BYTES)
        G = gw_images(m, RB, TH, G, -(-N // T), alpha ** 2 * (C + F) * TH
                      * virtual_tiles(TW, m, alpha) * dt.itemsize)
        dUs = np.empty((T, alpha ** 2, F, C), dt)
        _weight_gradient(gy, x, m, *padding, RB, G,
                         *_buffers(T, C, F, RB, G, TH, TW, alpha, m, dt), dUs)
        dU = dUs[0].copy()
        for t in range(1, T):  # in a fixed order
            dU += dUs[t]
        gW = filter_transform_adjoint(dU, F, C, R, m)
    return gx, gW, sums
