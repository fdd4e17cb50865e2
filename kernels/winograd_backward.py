"""Winograd backward in one pass: the weight gradient's transform of gy reused for the input
gradient (its products Uᵀ dM, then the adjoint of the input transform)."""
import numba
import numpy as np
from numba import njit, prange

from . import winograd
from .blas import gemm
# (kernels.channel_sums._plane_sum is inlined into _backward's cached code; a change there
# recompiles it: kernels/cache_stamp.py)
from .channel_sums import _plane_sum
from .winograd import (_block_shape, _buffers, _input_transform, _interleave,
                       _output_transform_adjoint, filter_transform, filter_transform_adjoint,
                       tile_columns, tile_size, virtual_tiles)
from .winograd25 import FIVE, FOUR, TWO

# NOTE: the forward pass is M[ξ] = U[ξ] V[ξ], V = Bᵀ d B over the input patches d, then
# y = Aᵀ M A per tile. Its adjoint, given dM = A dY Aᵀ (the transform of gy that the weight
# gradient dU[ξ] = Σ dM[ξ] V[ξ]ᵀ takes anyway), is dV[ξ] = U[ξ]ᵀ dM[ξ] and, per patch,
# dd = B dV Bᵀ, added into the input gradient where the patches overlap (α - m rows and
# columns). kernels/winograd.py computes the input gradient as a second forward convolution
# (of gy, with the kernels flipped): a second transform of gy (Bᵀ, F channels) and an output
# transform (Aᵀ, C channels). Here one adjoint input transform (B, C channels) replaces both,
# so the backward of a layer that doubles its channels (F = 2C) transforms 4C channels
# instead of 6C, and a layer with F = C 3C instead of 4C. dV overwrites V after V's last use.
# Measured at 1 thread, batch 32, CPU time, against the two passes (with a ReLU's mask on x,
# as in a training step; a loaded machine): 0.77-0.78 of the time on padua4's 32->64 (37x50)
# and 64->128 (18x25) layers, 0.90-0.93 on its 64->64 (37x50), 0.80 on 32->32 (75x100),
# 0.99-1.01 on 128->128 (18x25); 0.84 on baseline_cnn's 32->64 (32x32).
# F(3x3, 3x3) (padua4's 9x12 layers): 0.83-0.92 with wider blocks (winograd.F3_GW_COLUMNS).
FUSED = True  # False: kernels/winograd.py's two passes (to compare)
# (output tile m, kernel size r) that the adjoint transforms below are written for
TILES = ((2, 3), (3, 3), (4, 3), (2, 5))


@njit(cache=True, inline="always")
def _b6(v0, v1, v2, v3, v4, v5):
    """B v = (Bᵀ)ᵀ v for the 6 x 6 Bᵀ of F(4x4, 3x3) and F(2x2, 5x5) (winograd25.BT)."""
    p, q, r, s = v1 + v2, v1 - v2, v3 + v4, v3 - v4
    return (FOUR * v0, FOUR * (v5 - q) - TWO * s, -FIVE * v0 - FOUR * p - r,
            q + TWO * s - FIVE * v5, v0 + p + r, v5)


@njit(cache=True, inline="always")
def _b5(v0, v1, v2, v3, v4):
    """B v for the 5 x 5 Bᵀ of F(3x3, 3x3) (winograd33.BT)."""
    s = v1 + v2
    return (TWO * v0, TWO * (v2 - v1 + v4) - v0 - v3, -TWO * v0 - v1 - TWO * v2 - v2 - v4,
            v0 + s + v3 - TWO * v4, v4)


@njit(cache=True, inline="always")
def _b4(v0, v1, v2, v3):
    """B v for the 4 x 4 Bᵀ of F(2x2, 3x3) (winograd23.BT)."""
    return v0, v1 - v2 + v3, v1 + v2 - v0, -v3


@njit(cache=True, inline="always")
def _b_rows(src, s0, c0, count, E):
    """E[k, u] = (B v)[k] for u < count, v[b] = src[s0 + b, c0 + u] (α = E.shape[0] rows)."""
    if E.shape[0] == 6:
        v0, v1, v2 = src[s0, c0:c0 + count], src[s0 + 1, c0:c0 + count], \
            src[s0 + 2, c0:c0 + count]
        v3, v4, v5 = src[s0 + 3, c0:c0 + count], src[s0 + 4, c0:c0 + count], \
            src[s0 + 5, c0:c0 + count]
        e0, e1, e2, e3, e4, e5 = E[0], E[1], E[2], E[3], E[4], E[5]
        for u in range(count):
            e0[u], e1[u], e2[u], e3[u], e4[u], e5[u] = _b6(v0[u], v1[u], v2[u], v3[u], v4[u],
                                                           v5[u])
    elif E.shape[0] == 5:
        v0, v1, v2 = src[s0, c0:c0 + count], src[s0 + 1, c0:c0 + count], \
            src[s0 + 2, c0:c0 + count]
        v3, v4 = src[s0 + 3, c0:c0 + count], src[s0 + 4, c0:c0 + count]
        e0, e1, e2, e3, e4 = E[0], E[1], E[2], E[3], E[4]
        for u in range(count):
            e0[u], e1[u], e2[u], e3[u], e4[u] = _b5(v0[u], v1[u], v2[u], v3[u], v4[u])
    else:
        v0, v1 = src[s0, c0:c0 + count], src[s0 + 1, c0:c0 + count]
        v2, v3 = src[s0 + 2, c0:c0 + count], src[s0 + 3, c0:c0 + count]
        e0, e1, e2, e3 = E[0], E[1], E[2], E[3]
        for u in range(count):
            e0[u], e1[u], e2[u], e3[u] = _b4(v0[u], v1[u], v2[u], v3[u])


@njit(cache=True, inline="always")
def _columns_adjoint(dV, c0, count, m, lines, TW, TWv, rows, ph, E):
    """rows[a, m*u + k'] (u < count + 2, k' < m): the adjoint of the input transform's column
    pass (_split, then columns): Σ over s of (B dv)[k' + m*s] of tile u - s, dv[b] =
    dV[α a + b, c0 + u - s] (α = rows.shape[0]); ph (4, >= count + 2), E (α, >= count):
    scratch. F(3x3, 3x3): dV holds the real tiles only (winograd33.columns_real: lines tile
    rows of TW), count is theirs, and u runs over all lines*TWv tiles."""
    alpha = rows.shape[0]
    if m == 3:
        _columns_adjoint_real(dV, c0, count, lines, TW, TWv, rows, ph, E)
        return
    for a in range(alpha):
        _b_rows(dV, alpha * a, c0, count, E)
        for k in range(m):
            p, e = ph[k], E[k]
            for u in range(count):
                p[u] = e[u]
            p[count] = 0
            p[count + 1] = 0
            for s in range(1, (alpha - 1 - k) // m + 1):  # columns k + m*s of the tile u - s
                e = E[k + m * s]
                for u in range(count):
                    p[u + s] += e[u]
        _interleave(ph, m, count + 2, rows[a])


@njit(cache=True, inline="always")
def _columns_adjoint_real(dV, c0, count, lines, TW, TWv, rows, ph, E):
    """_columns_adjoint for F(3x3, 3x3)'s real tiles: the extra tiles' terms are zero."""
    alpha, total = rows.shape[0], lines * TWv
    for a in range(alpha):
        _b_rows(dV, alpha * a, c0, count, E)
        for k in range(3):
            p, e = ph[k], E[k]
            for u in range(total + 2):
                p[u] = 0
            if TW == 4:
                for i in range(lines):
                    s, o = TWv * i, TW * i
                    a0, a1, a2, a3 = e[o], e[o + 1], e[o + 2], e[o + 3]
                    p[s], p[s + 1], p[s + 2], p[s + 3] = a0, a1, a2, a3
            else:
                for i in range(lines):
                    s, o = TWv * i, TW * i
                    for j in range(TW):
                        p[s + j] = e[o + j]
            if k < 2:  # column k + 3 of the tile u - 1
                e = E[k + 3]
                for i in range(lines):
                    s, o = TWv * i + 1, TW * i
                    for j in range(TW):
                        p[s + j] += e[o + j]
        _interleave(ph, 3, total + 2, rows[a])


@njit(cache=True, inline="always")
def _rows_adjoint(E, nb, Wv, m, n, c, h0, PW, added, gx):
    """The adjoint of the input transform's row pass (the copy into the plane, combine_rows),
    given E[k, i*Wv + PW + w] = (B r)[k] of tile row i: image row h0 + m*i + k of gx[n, c]
    is the sum of those terms over i and k; the rows above h0 + added (which the block before
    began) are added to, the others set."""
    alpha, H, Wd = E.shape[0], gx.shape[2], gx.shape[3]
    for hh in range(m * (nb - 1) + alpha):
        h = h0 + hh
        if h < 0 or h >= H:
            continue
        dst = gx[n, c, h]
        add = hh < added
        for i in range(max(0, (hh - alpha + m) // m), min(nb - 1, hh // m) + 1):
            src = E[hh - m * i, i * Wv + PW:i * Wv + PW + Wd]
            if add:
                for w in range(Wd):
                    dst[w] += src[w]
            else:
                for w in range(Wd):
                    dst[w] = src[w]
                add = True


@njit(parallel=True, cache=True, nogil=True)
def _backward(gy, x, U, m, PH, PW, RB, G, relu_input, planes, rows, flats, scratch, lines, Vs,
              Ms, Es, dUs, sums, gx):
    N, C = x.shape[0], x.shape[1]
    F = gy.shape[1]
    TH, TW = (gy.shape[2] + m - 1) // m, (gy.shape[3] + m - 1) // m
    alpha = rows.shape[1]
    TWv, TWc = virtual_tiles(TW, m, alpha), tile_columns(TW, m, alpha)
    Wv = m * TWv
    T = Vs.shape[0]
    for t in prange(T):
        V, dM, E = Vs[t], Ms[t], Es[t]
        dUs[t] = 0
        mine = (N - t + T - 1) // T  # static: images t, t+T, ... in a fixed order
        for j0 in range(0, mine, G):
            images = min(mine, j0 + G) - j0
            n0 = t + j0 * T
            for tr0 in range(0, TH, RB):
                tr1 = min(TH, tr0 + RB)
                nb = tr1 - tr0
                P = images * nb * TWc
                _input_transform(x, n0, T, images, PH, PW, tr0, tr1, TW, P, 0, planes[t],
                                 rows[t], flats[t], V, m)
                _output_transform_adjoint(gy, n0, T, images, tr0, tr1, TW, P, 0, scratch[t],
                                          lines[t], dM, m)
                for xi in range(V.shape[0]):
                    Vx, dMx = V[xi, :C * P].reshape(C, P), dM[xi, :F * P].reshape(F, P)
                    gemm(False, True, dMx, Vx, dUs[t, xi], 1.0)
                    gemm(True, False, U[xi], dMx, Vx, 0.0)  # dV[ξ] = U[ξ]ᵀ dM[ξ], over V
                for c in range(C):
                    _columns_adjoint(V, c * P, P, m, images * nb, TW, TWv, rows[t], flats[t],
                                     E)
                    for g in range(images):
                        _b_rows(rows[t], 0, g * nb * Wv, nb * Wv, E)
                        _rows_adjoint(E, nb, Wv, m, n0 + g * T, c, m * tr0 - PH, PW,
                                      alpha - m if tr0 > 0 else 0, gx)
            if relu_input:  # NOTE: masked and summed as kernels.relu does, plane by plane
                for g in range(images):
                    n = n0 + g * T
                    for c in range(C):
                        plane, keep = gx[n, c].reshape(-1), x[n, c].reshape(-1)
                        for k in range(plane.shape[0]):
                            plane[k] = plane[k] if not keep[k] <= 0 else 0
                        sums[n, c] = _plane_sum(plane)
    return gx


def applies(R, OH, OW):
    """True when FUSED and this module has the transforms of the layer's tile size."""
    return FUSED and (tile_size(R, OH, OW), R) in TILES


def backward(gy, x, W, padding, OH, OW, relu_input=False):
    """(gx, gW, sums) of a Winograd layer (kernels/winograd.py's `applies`) for C-contiguous
    NumPy gy and x of one dtype, both gradients wanted; relu_input: x is a ReLU's output, then
    gx is masked as the ReLU's backward masks it and sums is its float64 channel sums (the
    bits of kernels.relu_backward_channel_sums), else None. For `applies` layers; called under
    kernels.conv_parts.single_blas (winograd.backward)."""
    N, C, H, Wd = x.shape
    F, R, dt = W.shape[0], W.shape[2], x.dtype
    m = tile_size(R, OH, OW)
    alpha = m + R - 1
    T = numba.get_num_threads()
    TH, TW = -(-OH // m), -(-OW // m)
    TWv = virtual_tiles(TW, m, alpha)
    # NOTE: the weight gradient's block shape (fixed, not timed: it sets the order of the sums)
    RB, G = _block_shape(C, F, TH, TWv, alpha, dt.itemsize, -(-N // T), 1,
                         winograd.gw_min_columns(m), winograd.GW_BLOCK_BYTES)
    RB = min(RB, TH)
    G = winograd.gw_images(m, RB, TH, G, -(-N // T),
                           alpha ** 2 * (C + F) * TH * TWv * dt.itemsize)
    U = filter_transform(np.asarray(W, dt), m)
    dUs = np.empty((T, alpha ** 2, F, C), dt)
    Es = np.empty((T, alpha, (max(G, m) + 1) * RB * TWv + 8), dt)
    sums = np.empty((N, C) if relu_input else (0, 0), np.float64)
    gx = np.empty(x.shape, dt)
    _backward(gy, x, U, m, padding[0], padding[1], RB, G, relu_input,
              *_buffers(T, C, F, RB, G, TH, TW, alpha, m, dt), Es, dUs, sums, gx)
    dU = dUs[0].copy()
    for t in range(1, T):  # in a fixed order
        dU += dUs[t]
    total = None
    if relu_input:
        total = np.zeros(C, np.float64)
        for n in range(N):  # in the order of kernels.channel_sums
            total += sums[n]
    return gx, filter_transform_adjoint(dU, F, C, R, m), total
