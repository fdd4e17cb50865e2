"""Winograd F(2x2, 3x3) convolution on the CPU: 16 products per 2x2 output tile instead of 36."""
import numba
import numpy as np
from numba import njit, prange

from .blas import gemm
from .conv_parts import _claim, _task_blocks, single_blas

# NOTE: minimal filtering F(2x2, 3x3) (Lavin & Gray, 2015). A 2x2 tile of the output of a 3x3
# kernel g over the 4x4 input patch d under it is Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A: a product of
# 4x4 matrices element by element, 16 multiplies instead of 2*2*9 = 36. Summed over the
# input channels c, each of the 16 elements ξ of the 4x4 transforms becomes a matrix product:
#     M[ξ] (F x tiles) = U[ξ] (F x C) @ V[ξ] (C x tiles),  U = G g Gᵀ,  V = Bᵀ d B,
# so the convolution is 16 BLAS products plus cheap transforms (additions only). Tile (ti, tj)
# reads the input patch with origin (2*ti - PH, 2*tj - PW); zeros outside the image.
# The transforms of a block of tile rows stay in one thread's cache between the products.
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
# Bytes of one thread's V and M for one block of tiles (the L2 cache is ~1 MiB per core), but
# at least MIN_COLUMNS tiles per block (GW_MIN_COLUMNS for the weight gradient) where the batch
# has them: BLAS runs narrow products slowly (1 core: 256x256 @ 256x30 at 40 GFLOP/s, @ 256x120
# at 75). Measured on the seed models' layers: wider blocks for the weight gradient than the
# budget gives only lose (256->256 on 9x12: 22 ms at 64 columns, 38 ms at 512).
TILE_BLOCK_BYTES = 1 << 20
MIN_COLUMNS, GW_MIN_COLUMNS = 128, 64


def filter_transform(W):
    """U (16, F, C) = G g Gᵀ for each 3x3 kernel g = W[f, c]; U[4a + b] is element (a, b)."""
    F, C = W.shape[:2]
    # NOTE: (G g Gᵀ)[a, b] = Σᵢⱼ G[a, i] G[b, j] g[i, j]: the Kronecker product G ⊗ G (16 x 9)
    # times g flattened, so all F*C kernels take one matrix product.
    K = np.kron(G, G).astype(W.dtype)
    return np.ascontiguousarray((K @ W.reshape(F * C, 9).T).reshape(16, F, C))


def filter_transform_adjoint(dU, F, C):
    """gW (F, C, 3, 3) = Gᵀ dU[:, f, c] G: the gradient of filter_transform."""
    K = np.kron(G, G).astype(dU.dtype)
    return np.ascontiguousarray((K.T @ dU.reshape(16, F * C)).T.reshape(F, C, 3, 3))


# ---------------------------------------------------------------- transforms (one thread)
# A block is a matrix of P columns (tiles) per channel: the tile rows [tr0, tr1) of one image
# or of a few small images side by side; the tiles of image n start at column q.
@njit(cache=True, inline="always")
def _input_transform(x, n, PH, PW, tr0, tr1, TW, P, q, zrow, rows, V):
    """V[4a + b, c*P + q + (ti - tr0)*TW + tj] = (Bᵀ d B)[a, b] for the patches d of tile rows
    [tr0, tr1) of image n; rows (4, 2*TW + 2): the Bᵀ-combined rows, zero at their borders."""
    C, H, Wd = x.shape[1], x.shape[2], x.shape[3]
    r0, r1 = rows[0, PW:PW + Wd], rows[1, PW:PW + Wd]
    r2, r3 = rows[2, PW:PW + Wd], rows[3, PW:PW + Wd]
    # NOTE: Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]; the rows of the
    # patch are combined first (whole image rows at once), then the columns of each tile.
    for c in range(C):
        for ti in range(tr0, tr1):
            h = 2 * ti - PH
            d0 = x[n, c, h] if 0 <= h < H else zrow
            d1 = x[n, c, h + 1] if 0 <= h + 1 < H else zrow
            d2 = x[n, c, h + 2] if 0 <= h + 2 < H else zrow
            d3 = x[n, c, h + 3] if 0 <= h + 3 < H else zrow
            for w in range(Wd):
                a0, a1, a2, a3 = d0[w], d1[w], d2[w], d3[w]
                r0[w] = a0 - a2
                r1[w] = a1 + a2
                r2[w] = a2 - a1
                r3[w] = a1 - a3
            p0 = c * P + q + (ti - tr0) * TW
            for a in range(4):
                r = rows[a]
                v0, v1 = V[4 * a, p0:p0 + TW], V[4 * a + 1, p0:p0 + TW]
                v2, v3 = V[4 * a + 2, p0:p0 + TW], V[4 * a + 3, p0:p0 + TW]
                for tj in range(TW):
                    e0, e1, e2, e3 = r[2 * tj], r[2 * tj + 1], r[2 * tj + 2], r[2 * tj + 3]
                    v0[tj] = e0 - e2
                    v1[tj] = e1 + e2
                    v2[tj] = e2 - e1
                    v3[tj] = e1 - e3


@njit(cache=True, inline="always")
def _output_transform(M, n, tr0, tr1, TW, P, q, b, has_b, relu, spare, y):
    """y[n, f, 2ti:2ti+2, 2tj:2tj+2] = Aᵀ m A (+ b[f], then ReLU) for the 4x4 matrices
    m[4a + b] = M[4a + b, f*P + q + (ti - tr0)*TW + tj]; what falls outside y goes to spare."""
    F, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    # NOTE: Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]: rows of m first (s0, s1), then columns.
    for f in range(F):
        bf = b[f] if has_b else 0
        for ti in range(tr0, tr1):
            q0 = f * P + q + (ti - tr0) * TW
            y0 = y[n, f, 2 * ti]
            y1 = y[n, f, 2 * ti + 1] if 2 * ti + 1 < OH else spare
            for tj in range(TW):
                m = q0 + tj
                s00 = M[0, m] + M[4, m] + M[8, m]
                s01 = M[1, m] + M[5, m] + M[9, m]
                s02 = M[2, m] + M[6, m] + M[10, m]
                s03 = M[3, m] + M[7, m] + M[11, m]
                s10 = M[4, m] - M[8, m] - M[12, m]
                s11 = M[5, m] - M[9, m] - M[13, m]
                s12 = M[6, m] - M[10, m] - M[14, m]
                s13 = M[7, m] - M[11, m] - M[15, m]
                v00 = s00 + s01 + s02 + bf
                v01 = s01 - s02 - s03 + bf
                v10 = s10 + s11 + s12 + bf
                v11 = s11 - s12 - s13 + bf
                if relu:
                    v00, v01, v10, v11 = max(v00, 0), max(v01, 0), max(v10, 0), max(v11, 0)
                y0[2 * tj] = v00
                y1[2 * tj] = v10
                if 2 * tj + 1 < OW:
                    y0[2 * tj + 1] = v01
                    y1[2 * tj + 1] = v11


@njit(cache=True, inline="always")
def _output_transform_adjoint(gy, n, tr0, tr1, TW, P, q, zrow, dM):
    """dM[4a + b, f*P + q + (ti - tr0)*TW + tj] = (A dY Aᵀ)[a, b] for the 2x2 tiles dY of
    gy[n, f] (zero beyond the output; zrow: zeros): the adjoint of _output_transform."""
    F, OH, OW = gy.shape[1], gy.shape[2], gy.shape[3]
    for f in range(F):
        for ti in range(tr0, tr1):
            q0 = f * P + q + (ti - tr0) * TW
            g0 = gy[n, f, 2 * ti]
            g1 = gy[n, f, 2 * ti + 1] if 2 * ti + 1 < OH else zrow
            for tj in range(TW):
                y00, y10 = g0[2 * tj], g1[2 * tj]
                y01 = g0[2 * tj + 1] if 2 * tj + 1 < OW else 0
                y11 = g1[2 * tj + 1] if 2 * tj + 1 < OW else 0
                # NOTE: A's rows are (1, 0), (1, 1), (1, -1), (0, -1): e[a] = A[a] dY, then
                # dM[a, b] = e[a] · A[b].
                e00, e01 = y00, y01
                e10, e11 = y00 + y10, y01 + y11
                e20, e21 = y00 - y10, y01 - y11
                e30, e31 = -y10, -y11
                m = q0 + tj
                dM[0, m], dM[1, m], dM[2, m], dM[3, m] = e00, e00 + e01, e00 - e01, -e01
                dM[4, m], dM[5, m], dM[6, m], dM[7, m] = e10, e10 + e11, e10 - e11, -e11
                dM[8, m], dM[9, m], dM[10, m], dM[11, m] = e20, e20 + e21, e20 - e21, -e21
                dM[12, m], dM[13, m], dM[14, m], dM[15, m] = e30, e30 + e31, e30 - e31, -e31


# ---------------------------------------------------------------- kernels
@njit(parallel=True, cache=True)
def _forward(x, U, b, has_b, relu, PH, PW, RB, G, zrows, rows, spares, Vs, Ms, y):
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
                for xi in range(16):
                    gemm(False, False, U[xi], V[xi, :C * P].reshape(C, P),
                         M[xi, :F * P].reshape(F, P), 0.0)
                for n in range(n0, n1):
                    _output_transform(M, n, tr0, tr1, TW, P, (n - n0) * Q, b, has_b, relu,
                                      spares[t], y)
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
                for xi in range(16):
                    gemm(False, True, dM[xi, :F * P].reshape(F, P),
                         V[xi, :C * P].reshape(C, P), dUs[t, xi], 1.0)
    return dUs


# ---------------------------------------------------------------- drivers
def applies(kernel, stride, padding):
    """True when this module can compute the layer: 3x3, stride 1, padding at most 2."""
    return tuple(kernel) == (3, 3) and tuple(stride) == (1, 1) and max(padding) <= 2


def _block_shape(C, F, TH, TW, itemsize, N, tasks_wanted, min_columns):
    """(tile rows, images) per block: V and M within TILE_BLOCK_BYTES, at least min_columns
    tiles where the images have them, and at least tasks_wanted blocks to share out."""
    RB = max(1, min(TH, TILE_BLOCK_BYTES // (16 * (C + F) * TW * itemsize)))
    RB = min(TH, max(RB, -(-min_columns // TW)))
    G = 1
    if RB == TH:  # small images: several side by side
        G = max(1, min(N, -(-min_columns // (TH * TW)), -(-N // tasks_wanted)))
    if G == 1 and N * -(-TH // RB) < tasks_wanted:
        RB = max(1, min(RB, -(-TH * N // tasks_wanted)))
    return RB, G


def _stride(count, itemsize):
    """Elements between two of the 16 matrices of a buffer: never a multiple of 4 KiB, so that
    the transforms' 16 streams do not fall on the same cache sets."""
    return (-(-count * itemsize // 4096) * 4096 + 256) // itemsize


def _buffers(T, C, F, RB, G, TH, TW, Wd, dt):
    """Per-thread zeros, Bᵀ-combined rows, a spare output row, and the V and M of a block."""
    zrows = np.zeros((T, max(Wd, 2 * TW + 2)), dt)
    rows = np.zeros((T, 4, 2 * TW + 2), dt)
    spares = np.empty((T, 2 * TW + 2), dt)
    P = G * min(RB, TH) * TW
    Vs = np.empty((T, 16, _stride(C * P, dt.itemsize)), dt)
    Ms = np.empty((T, 16, _stride(F * P, dt.itemsize)), dt)
    return zrows, rows, spares, Vs, Ms


def _forward_U(x, U, b, padding, OH, OW, relu):
    N, C, H, Wd = x.shape
    F, dt = U.shape[1], x.dtype
    T = numba.get_num_threads()
    TH, TW = (OH + 1) // 2, (OW + 1) // 2
    RB, G = _block_shape(C, F, TH, TW, dt.itemsize, N, 2 * T, MIN_COLUMNS)
    y = np.empty((N, F, OH, OW), dt)
    bb = np.zeros(F, dt) if b is None else np.ascontiguousarray(b, dtype=dt)
    return _forward(x, U, bb, b is not None, relu, *padding, RB, G,
                    *_buffers(T, C, F, RB, G, TH, TW, Wd, dt), y)


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
    F, dt = W.shape[0], x.dtype
    gx = gW = None
    if need_gx:
        # NOTE: the input gradient is the convolution of gy with the kernels flipped and
        # transposed (C x F x 3 x 3), padded by 2 - padding: a forward Winograd convolution.
        Wt = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        gx = _forward_U(gy, filter_transform(Wt), None, (2 - padding[0], 2 - padding[1]),
                        H, Wd, False)
    if need_gW:
        T = numba.get_num_threads()
        TH, TW = (OH + 1) // 2, (OW + 1) // 2
        # NOTE: a fixed (not timed) block shape: it sets the order of the sums.
        RB, G = _block_shape(C, F, TH, TW, dt.itemsize, -(-N // T), 1, GW_MIN_COLUMNS)
        dUs = np.empty((T, 16, F, C), dt)
        zrows, rows, _, Vs, Ms = _buffers(T, C, F, RB, G, TH, TW, Wd, dt)
        _weight_gradient(gy, x, *padding, RB, G, zrows, rows, Vs, Ms, dUs)
        dU = dUs[0].copy()
        for t in range(1, T):  # in a fixed order
            dU += dUs[t]
        gW = filter_transform_adjoint(dU, F, C)
    return gx, gW
