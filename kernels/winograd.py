"""Winograd F(2x2, 3x3) and F(2x2, 5x5) convolution on the CPU: 16 and 36 products per tile."""
import math

import numba
import numpy as np
from numba import njit, prange

from . import winograd5
from .blas import gemm
from .conv_parts import _claim, _task_blocks, single_blas

# NOTE: minimal filtering F(2x2, r x r) (Lavin & Gray, 2015), here for r = 3 and r = 5 (the
# latter's matrices in kernels/winograd5.py). A 2x2 tile of the output of an r x r kernel g
# over the α x α input patch d under it (α = r + 1) is Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A: a product
# of α x α matrices element by element, α² multiplies instead of 2*2*r². Summed over the
# input channels c, each of the α² elements ξ of the transforms becomes a matrix product:
#     M[ξ] (F x tiles) = U[ξ] (F x C) @ V[ξ] (C x tiles),  U = G g Gᵀ,  V = Bᵀ d B,
# so the convolution is α² BLAS products plus cheap transforms (additions, and for r = 5
# multiplications by 2, 4 and 5). Tile (ti, tj) reads the input patch with origin
# (2*ti - PH, 2*tj - PW); zeros outside the image. The transforms of a block of tile rows
# stay in one thread's cache between the products. One set of kernels serves both sizes; the
# transforms are picked by α² (the rows of V and M).
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
ZERO = np.float32(0)  # max(v, ZERO) keeps float32 v in float32
FILTER_MATRICES = {3: G, 5: winograd5.G}  # G by kernel size
# Bytes of one thread's V and M for one block of tiles (the L2 cache is ~1 MiB per core), but
# at least MIN_COLUMNS tiles per block (GW_MIN_COLUMNS for the weight gradient) where the batch
# has them: BLAS runs narrow products slowly (1 core: 256x256 @ 256x30 at 40 GFLOP/s, @ 256x120
# at 75). Measured on the seed models' layers: wider blocks for the weight gradient than the
# budget gives only lose (256->256 on 9x12: 22 ms at 64 columns, 38 ms at 512).
TILE_BLOCK_BYTES = 1 << 20
MIN_COLUMNS, GW_MIN_COLUMNS = 128, 64


def filter_transform(W):
    """U (α², F, C) = G g Gᵀ for each r x r kernel g = W[f, c]; U[α a + b] is element (a, b)."""
    F, C, R = W.shape[:3]
    Gr = FILTER_MATRICES[R]
    # NOTE: (G g Gᵀ)[a, b] = Σᵢⱼ G[a, i] G[b, j] g[i, j]: the Kronecker product G ⊗ G (α² x r²)
    # times g flattened, so all F*C kernels take one matrix product.
    K = np.kron(Gr, Gr).astype(W.dtype)
    return np.ascontiguousarray((K @ W.reshape(F * C, R * R).T).reshape(K.shape[0], F, C))


def filter_transform_adjoint(dU, F, C, R):
    """gW (F, C, r, r) = Gᵀ dU[:, f, c] G: the gradient of filter_transform."""
    Gr = FILTER_MATRICES[R]
    K = np.kron(Gr, Gr).astype(dU.dtype)
    return np.ascontiguousarray((K.T @ dU.reshape(K.shape[0], F * C)).T.reshape(F, C, R, R))


# ---------------------------------------------------------------- F(2x2, 3x3) transforms
@njit(cache=True, inline="always")
def _bt3(d0, d1, d2, d3):
    """Bᵀ d, Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit(cache=True, inline="always")
def _combine_rows3(d0, d1, d2, d3, Wd, rows, PW):
    """rows[a, PW + w] = (Bᵀ d)[a] at w < Wd, d being the four image rows of a tile row."""
    r0, r1 = rows[0, PW:PW + Wd], rows[1, PW:PW + Wd]
    r2, r3 = rows[2, PW:PW + Wd], rows[3, PW:PW + Wd]
    for w in range(Wd):
        r0[w], r1[w], r2[w], r3[w] = _bt3(d0[w], d1[w], d2[w], d3[w])


@njit(cache=True, inline="always")
def _combine_columns3(rows, TW, V, p0):
    """V[4a + b, p0 + tj] = (r B)[b] for the four columns r = rows[a, 2tj:2tj + 4] of tile tj."""
    # NOTE: read in place (stride 2): unlike F(2x2, 5x5)'s, splitting the even and odd columns
    # first does not pay for four columns a tile.
    for a in range(4):
        r = rows[a]
        v0, v1 = V[4 * a, p0:p0 + TW], V[4 * a + 1, p0:p0 + TW]
        v2, v3 = V[4 * a + 2, p0:p0 + TW], V[4 * a + 3, p0:p0 + TW]
        for tj in range(TW):
            v0[tj], v1[tj], v2[tj], v3[tj] = _bt3(r[2 * tj], r[2 * tj + 1], r[2 * tj + 2],
                                                  r[2 * tj + 3])


@njit(cache=True, inline="always")
def _row_pair(a, n, f, ti, spare):
    """Rows 2ti and 2ti + 1 of a[n, f], spare for the second past the last row."""
    return a[n, f, 2 * ti], (a[n, f, 2 * ti + 1] if 2 * ti + 1 < a.shape[2] else spare)


@njit(cache=True, inline="always")
def _bias_relu(v, bias, relu):
    v = v + bias
    return max(v, ZERO) if relu else v


@njit(cache=True, inline="always")
def _output_transform3(M, n, tr0, tr1, TW, P, q, b, relu, spare, y):
    """_output_transform for 4x4 tiles: one tile at a time, each stored at once."""
    F, OW = y.shape[1], y.shape[3]
    # NOTE: Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]: rows of m first (s0, s1), then columns.
    for f in range(F):
        for ti in range(tr0, tr1):
            y0, y1 = _row_pair(y, n, f, ti, spare)
            for tj in range(TW):
                m = f * P + q + (ti - tr0) * TW + tj
                s00 = M[0, m] + M[4, m] + M[8, m]
                s01 = M[1, m] + M[5, m] + M[9, m]
                s02 = M[2, m] + M[6, m] + M[10, m]
                s03 = M[3, m] + M[7, m] + M[11, m]
                s10 = M[4, m] - M[8, m] - M[12, m]
                s11 = M[5, m] - M[9, m] - M[13, m]
                s12 = M[6, m] - M[10, m] - M[14, m]
                s13 = M[7, m] - M[11, m] - M[15, m]
                y0[2 * tj] = _bias_relu(s00 + s01 + s02, b[f], relu)
                y1[2 * tj] = _bias_relu(s10 + s11 + s12, b[f], relu)
                if 2 * tj + 1 < OW:
                    y0[2 * tj + 1] = _bias_relu(s01 - s02 - s03, b[f], relu)
                    y1[2 * tj + 1] = _bias_relu(s11 - s12 - s13, b[f], relu)


@njit(cache=True, inline="always")
def _adjoint_tile3(dM, m, y00, y01, y10, y11):
    """dM[4a + b, m] = (A dY Aᵀ)[a, b] for the 2x2 tile dY: the adjoint of Aᵀ m A."""
    # NOTE: A's rows are (1, 0), (1, 1), (1, -1), (0, -1): e[a] = A[a] dY, then
    # dM[a, b] = e[a] · A[b].
    e00, e01 = y00, y01
    e10, e11 = y00 + y10, y01 + y11
    e20, e21 = y00 - y10, y01 - y11
    e30, e31 = -y10, -y11
    dM[0, m], dM[1, m], dM[2, m], dM[3, m] = e00, e00 + e01, e00 - e01, -e01
    dM[4, m], dM[5, m], dM[6, m], dM[7, m] = e10, e10 + e11, e10 - e11, -e11
    dM[8, m], dM[9, m], dM[10, m], dM[11, m] = e20, e20 + e21, e20 - e21, -e21
    dM[12, m], dM[13, m], dM[14, m], dM[15, m] = e30, e30 + e31, e30 - e31, -e31


# ---------------------------------------------------------------- transforms (one thread)
# A block is a matrix of P columns (tiles) per channel: the tile rows [tr0, tr1) of one image
# or of a few small images side by side; the tiles of image n start at column q.
@njit(cache=True, inline="always")
def _image_row(x, n, c, h, zrow):
    """x[n, c, h], or zeros above and below the image."""
    return x[n, c, h] if 0 <= h < x.shape[2] else zrow


@njit(cache=True, inline="always")
def _input_transform(x, n, PH, PW, tr0, tr1, TW, P, q, zrow, rows, V):
    """V[α a + b, c*P + q + (ti - tr0)*TW + tj] = (Bᵀ d B)[a, b] for the α x α patches d of
    tile rows [tr0, tr1) of image n; rows (α + 2, 2*TW + α - 2): the Bᵀ-combined rows, zero
    at their borders, and two rows of scratch (for F(2x2, 5x5))."""
    C, Wd = x.shape[1], x.shape[3]
    # NOTE: the rows of the patch are combined first (whole image rows at once), then the
    # columns of each tile.
    for c in range(C):
        for ti in range(tr0, tr1):
            h = 2 * ti - PH
            p0 = c * P + q + (ti - tr0) * TW
            if V.shape[0] == 16:
                _combine_rows3(_image_row(x, n, c, h, zrow), _image_row(x, n, c, h + 1, zrow),
                               _image_row(x, n, c, h + 2, zrow),
                               _image_row(x, n, c, h + 3, zrow), Wd, rows, PW)
                _combine_columns3(rows, TW, V, p0)
            else:
                winograd5.combine_rows(
                    _image_row(x, n, c, h, zrow), _image_row(x, n, c, h + 1, zrow),
                    _image_row(x, n, c, h + 2, zrow), _image_row(x, n, c, h + 3, zrow),
                    _image_row(x, n, c, h + 4, zrow), _image_row(x, n, c, h + 5, zrow), Wd,
                    rows, PW)
                winograd5.combine_columns(rows, TW, V, p0)


@njit(cache=True, inline="always")
def _output_transform(M, n, tr0, tr1, TW, P, q, b, relu, S, spare, y):
    """y[n, f, 2ti:2ti+2, 2tj:2tj+2] = Aᵀ m A + b[f] (then ReLU) for the α x α matrices
    m[α a + b] = M[α a + b, f*P + q + (ti - tr0)*TW + tj]; S: scratch (16, TW); what falls
    outside y goes to spare."""
    if M.shape[0] == 16:
        _output_transform3(M, n, tr0, tr1, TW, P, q, b, relu, spare, y)
        return
    F, OW = y.shape[1], y.shape[3]
    for f in range(F):
        for ti in range(tr0, tr1):
            # NOTE: a tile row at a time (vectorised passes over its tiles), then stored
            winograd5.output_row(M, f * P + q + (ti - tr0) * TW, TW, S)
            y0, y1 = _row_pair(y, n, f, ti, spare)
            for tj in range(TW):  # the tiles' left columns, then their right ones
                y0[2 * tj] = _bias_relu(S[0, tj], b[f], relu)
                y1[2 * tj] = _bias_relu(S[2, tj], b[f], relu)
            for tj in range(OW // 2):
                y0[2 * tj + 1] = _bias_relu(S[1, tj], b[f], relu)
                y1[2 * tj + 1] = _bias_relu(S[3, tj], b[f], relu)


@njit(cache=True, inline="always")
def _output_transform_adjoint(gy, n, tr0, tr1, TW, P, q, zrow, dM):
    """dM[α a + b, f*P + q + (ti - tr0)*TW + tj] = (A dY Aᵀ)[a, b] for the 2x2 tiles dY of
    gy[n, f] (zero beyond the output; zrow: zeros): the adjoint of _output_transform."""
    F, OW = gy.shape[1], gy.shape[3]
    for f in range(F):
        for ti in range(tr0, tr1):
            q0 = f * P + q + (ti - tr0) * TW
            g0, g1 = _row_pair(gy, n, f, ti, zrow)
            for tj in range(TW):
                y00, y10 = g0[2 * tj], g1[2 * tj]
                y01 = g0[2 * tj + 1] if 2 * tj + 1 < OW else 0
                y11 = g1[2 * tj + 1] if 2 * tj + 1 < OW else 0
                if dM.shape[0] == 16:
                    _adjoint_tile3(dM, q0 + tj, y00, y01, y10, y11)
                else:
                    winograd5.adjoint_tile(dM, q0 + tj, y00, y01, y10, y11)


# ---------------------------------------------------------------- kernels
@njit(parallel=True, cache=True)
def _forward(x, U, b, relu, PH, PW, RB, G, zrows, rows, scratch, spares, Vs, Ms, y):
    N, F, C = x.shape[0], U.shape[1], U.shape[2]
    TH, TW = (y.shape[2] + 1) // 2, (y.shape[3] + 1) // 2
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
                Q = (tr1 - tr0) * TW  # columns per image
                P = (n1 - n0) * Q
                for n in range(n0, n1):
                    _input_transform(x, n, PH, PW, tr0, tr1, TW, P, (n - n0) * Q, zrows[t],
                                     rows[t], V)
                for xi in range(V.shape[0]):
                    gemm(False, False, U[xi], V[xi, :C * P].reshape(C, P),
                         M[xi, :F * P].reshape(F, P), 0.0)
                for n in range(n0, n1):
                    _output_transform(M, n, tr0, tr1, TW, P, (n - n0) * Q, b, relu,
                                      scratch[t], spares[t], y)
    return y


@njit(parallel=True, cache=True)
def _weight_gradient(gy, x, PH, PW, RB, G, zrows, rows, Vs, Ms, dUs):
    N, C = x.shape[0], x.shape[1]
    F = gy.shape[1]
    TH, TW = (gy.shape[2] + 1) // 2, (gy.shape[3] + 1) // 2
    T = Vs.shape[0]
    for t in prange(T):
        V, dM = Vs[t], Ms[t]
        dUs[t] = 0
        mine = (N - t + T - 1) // T  # static: images t, t+T, ... in a fixed order
        for j0 in range(0, mine, G):
            j1 = min(mine, j0 + G)
            for tr0 in range(0, TH, RB):
                tr1 = min(TH, tr0 + RB)
                Q = (tr1 - tr0) * TW
                P = (j1 - j0) * Q
                for j in range(j0, j1):
                    n = t + j * T
                    _input_transform(x, n, PH, PW, tr0, tr1, TW, P, (j - j0) * Q, zrows[t],
                                     rows[t], V)
                    _output_transform_adjoint(gy, n, tr0, tr1, TW, P, (j - j0) * Q, zrows[t],
                                              dM)
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
    return KH == KW and KH in FILTER_MATRICES and tuple(stride) == (1, 1) \
        and max(padding) <= KH - 1


def _block_shape(C, F, TH, TW, alpha, itemsize, N, tasks_wanted, min_columns):
    """(tile rows, images) per block: V and M (α² matrices each) within TILE_BLOCK_BYTES, at
    least min_columns tiles where the images have them, and at least tasks_wanted blocks to
    share out."""
    RB = max(1, min(TH, TILE_BLOCK_BYTES // (alpha ** 2 * (C + F) * TW * itemsize)))
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


def _buffers(T, C, F, RB, G, TH, TW, alpha, Wd, dt):
    """Per-thread zeros, Bᵀ-combined rows, the output transform's scratch, a spare output row,
    and the V and M of a block."""
    width = 2 * TW + alpha - 2  # the padded width the tiles of a row read
    zrows = np.zeros((T, max(Wd, width)), dt)
    rows = np.zeros((T, alpha + 2, width), dt)
    scratch = np.empty((T, 16, TW), dt)
    spares = np.empty((T, width), dt)
    P = G * min(RB, TH) * TW
    Vs = np.empty((T, alpha ** 2, _stride(C * P, dt.itemsize)), dt)
    Ms = np.empty((T, alpha ** 2, _stride(F * P, dt.itemsize)), dt)
    return zrows, rows, scratch, spares, Vs, Ms


def _forward_U(x, U, b, padding, OH, OW, relu):
    N, C, H, Wd = x.shape
    F, dt, alpha = U.shape[1], x.dtype, math.isqrt(U.shape[0])  # U: (α², F, C)
    T = numba.get_num_threads()
    TH, TW = (OH + 1) // 2, (OW + 1) // 2
    RB, G = _block_shape(C, F, TH, TW, alpha, dt.itemsize, N, 2 * T, MIN_COLUMNS)
    y = np.empty((N, F, OH, OW), dt)
    bb = np.zeros(F, dt) if b is None else np.ascontiguousarray(b, dtype=dt)
    return _forward(x, U, bb, relu, *padding, RB, G,
                    *_buffers(T, C, F, RB, G, TH, TW, alpha, Wd, dt), y)


def forward(x, W, b, kernel, stride, padding, OH, OW, relu):
    """y (N, F, OH, OW), as conv_cpu.forward, for a layer where `applies` holds."""
    x = np.ascontiguousarray(x)
    with single_blas():  # NOTE: also for the filter transform: idle BLAS threads would spin
        return _forward_U(x, filter_transform(np.asarray(W, x.dtype)), b, padding, OH, OW,
                          relu)


def backward(gy, x, W, kernel, stride, padding, OH, OW, need_gx, need_gW):
    """(gx, gW), as conv_cpu.backward, for a layer where `applies` holds (batch >= threads)."""
    x = np.ascontiguousarray(x)
    gy = np.ascontiguousarray(gy, dtype=x.dtype)
    with single_blas():  # NOTE: also for the filter transforms: idle BLAS threads would spin
        return _backward(gy, x, W, padding, OH, OW, need_gx, need_gW)


def _backward(gy, x, W, padding, OH, OW, need_gx, need_gW):
    N, C, H, Wd = x.shape
    F, R, dt = W.shape[0], W.shape[2], x.dtype
    gx = gW = None
    if need_gx:
        # NOTE: the input gradient is the convolution of gy with the kernels flipped and
        # transposed (C x F x r x r), padded by r - 1 - padding: a forward Winograd convolution.
        Wt = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        gx = _forward_U(gy, filter_transform(Wt), None,
                        (R - 1 - padding[0], R - 1 - padding[1]), H, Wd, False)
    if need_gW:
        T = numba.get_num_threads()
        TH, TW = (OH + 1) // 2, (OW + 1) // 2
        # NOTE: a fixed (not timed) block shape: it sets the order of the sums.
        RB, G = _block_shape(C, F, TH, TW, R + 1, dt.itemsize, -(-N // T), 1, GW_MIN_COLUMNS)
        dUs = np.empty((T, (R + 1) ** 2, F, C), dt)
        zrows, rows, _, _, Vs, Ms = _buffers(T, C, F, RB, G, TH, TW, R + 1, Wd, dt)
        _weight_gradient(gy, x, *padding, RB, G, zrows, rows, Vs, Ms, dUs)
        dU = dUs[0].copy()
        for t in range(1, T):  # in a fixed order
            dU += dUs[t]
        gW = filter_transform_adjoint(dU, F, C, R)
    return gx, gW
