"""F(4x4, 3x3) for kernels/winograd.py: its matrices and block transforms (36 products for 16
outputs, where F(2x2, 3x3) takes 64)."""
import numpy as np
from numba import njit

from .winograd25 import BT, FOUR, TWO, _bt  # noqa: F401 (the same Bᵀ)

# NOTE: F(4, 3) by Toom-Cook at the points 0, 1, -1, 2, -2 and ∞ (Lavin & Gray, 2015): the
# same six points as F(2, 5), so the same input transform Bᵀ (winograd25.BT, ._bt).
# Four outputs of 3 taps g over 6 samples d are y = Aᵀ [(G g) ⊙ (Bᵀ d)]; a 4x4 output tile of
# a 3x3 kernel over its 6x6 input patch is Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A. Tiles start every 4
# pixels (F(2x2, ·): every 2). Float32 error against float64 direct convolution, in a
# simulation of single tiles over 64 channels: about 1e-6 of Σ|w||x|, where F(2x2, 3x3) stays
# near 2e-7 (tests/kernels/test_winograd.py measures the kernels themselves).
AT = np.array([[1, 1, 1, 1, 1, 0],
               [0, 1, -1, 2, -2, 0],
               [0, 1, 1, 4, 4, 0],
               [0, 1, -1, 8, -8, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6],
              [1 / 24, -1 / 12, 1 / 6],
              [0, 0, 1]])
EIGHT = np.float32(8)
SCRATCH_ROWS = 40  # output's and adjoint's scratch: 16 tile elements + 24 partial rows


@njit(cache=True, inline="always")
def _at(m0, m1, m2, m3, m4, m5):
    """Aᵀ m, with the sums and differences rows 1-3 share taken once."""
    a, b, c, d = m1 + m2, m1 - m2, m3 + m4, m3 - m4
    return m0 + a + c, b + TWO * d, a + FOUR * c, b + EIGHT * d + m5


@njit(cache=True, inline="always")
def _a(y0, y1, y2, y3):
    """A y, A's rows being (1, 0, 0, 0), (1, 1, 1, 1), (1, -1, 1, -1), (1, 2, 4, 8),
    (1, -2, 4, -8), (0, 0, 0, 1)."""
    p, q = y0 + y2, y1 + y3
    u, v = y0 + FOUR * y2, TWO * y1 + EIGHT * y3
    return y0, p + q, p - q, u + v, u - v, y3


@njit(cache=True, inline="always")
def combine_rows(plane, count, Wv, rows, off=0):
    """rows[a, off + u] = (Bᵀ d)[a] for u < count, d[k] = plane[k % 4, u + (k // 4)*Wv]: image
    rows split by row modulo 4 (row 4i + k' at plane[k', i*Wv:(i + 1)*Wv]), each tile row's six
    at once."""
    p0, p1, p2, p3 = plane[0], plane[1], plane[2], plane[3]
    p4, p5 = plane[0, Wv:], plane[1, Wv:]  # (views: indices from 0, which vectorise)
    r0, r1, r2 = rows[0, off:off + count], rows[1, off:off + count], rows[2, off:off + count]
    r3, r4, r5 = rows[3, off:off + count], rows[4, off:off + count], rows[5, off:off + count]
    for u in range(count):
        r0[u], r1[u], r2[u], r3[u], r4[u], r5[u] = _bt(p0[u], p1[u], p2[u], p3[u], p4[u], p5[u])


@njit(cache=True, inline="always")
def columns(ph, count, V, r0, c0):
    """V[r0 + b, c0 + u] = (r B)[b] for the six columns of tile u, r[4u + k] = ph[k % 4, u + k // 4]:
    a row split by column modulo 4 (unit strides that run in SIMD lanes)."""
    p0, p1, p2, p3 = ph[0], ph[1], ph[2], ph[3]
    o0, o1, o2 = V[r0, c0:c0 + count], V[r0 + 1, c0:c0 + count], V[r0 + 2, c0:c0 + count]
    o3, o4, o5 = V[r0 + 3, c0:c0 + count], V[r0 + 4, c0:c0 + count], V[r0 + 5, c0:c0 + count]
    for u in range(count):
        o0[u], o1[u], o2[u], o3[u], o4[u], o5[u] = _bt(p0[u], p1[u], p2[u], p3[u], p0[u + 1],
                                                       p1[u + 1])


@njit(cache=True, inline="always")
def output(M, q0, TW, S):
    """S[4i + j, tj] = (Aᵀ m A)[i, j] for the tiles tj < TW, m[6a + b] being M[6a + b, q0 + tj];
    S (SCRATCH_ROWS, >= TW): rows 16 on are scratch."""
    # NOTE: two passes over contiguous rows (SIMD lanes across the tiles): the rows of Aᵀ m
    # into S[16 + 6i + b], then the outputs.
    for b in range(6):
        m0, m1, m2 = M[b, q0:q0 + TW], M[6 + b, q0:q0 + TW], M[12 + b, q0:q0 + TW]
        m3, m4, m5 = M[18 + b, q0:q0 + TW], M[24 + b, q0:q0 + TW], M[30 + b, q0:q0 + TW]
        s0, s1, s2, s3 = S[16 + b], S[22 + b], S[28 + b], S[34 + b]
        for tj in range(TW):
            s0[tj], s1[tj], s2[tj], s3[tj] = _at(m0[tj], m1[tj], m2[tj], m3[tj], m4[tj],
                                                 m5[tj])
    for i in range(4):
        k = 16 + 6 * i
        o0, o1, o2, o3 = S[4 * i], S[4 * i + 1], S[4 * i + 2], S[4 * i + 3]
        for tj in range(TW):
            o0[tj], o1[tj], o2[tj], o3[tj] = _at(S[k, tj], S[k + 1, tj], S[k + 2, tj],
                                                 S[k + 3, tj], S[k + 4, tj], S[k + 5, tj])


@njit(cache=True, inline="always")
def adjoint(S, TW, dM, q0):
    """dM[6a + b, q0 + tj] = (A dY Aᵀ)[a, b] for the 4x4 tiles dY[i, j] = S[4i + j, tj]: the
    adjoint of output; S rows 16 on are scratch."""
    # NOTE: e = A dY column by column into S[16 + 4a + j], then each row of e times Aᵀ.
    for j in range(4):
        y0, y1, y2, y3 = S[j], S[4 + j], S[8 + j], S[12 + j]
        e0, e1, e2 = S[16 + j], S[20 + j], S[24 + j]
        e3, e4, e5 = S[28 + j], S[32 + j], S[36 + j]
        for tj in range(TW):
            e0[tj], e1[tj], e2[tj], e3[tj], e4[tj], e5[tj] = _a(y0[tj], y1[tj], y2[tj],
                                                                y3[tj])
    for a in range(6):
        k = 16 + 4 * a
        d0, d1, d2 = dM[6 * a, q0:q0 + TW], dM[6 * a + 1, q0:q0 + TW], dM[6 * a + 2, q0:q0 + TW]
        d3, d4 = dM[6 * a + 3, q0:q0 + TW], dM[6 * a + 4, q0:q0 + TW]
        d5 = dM[6 * a + 5, q0:q0 + TW]
        for tj in range(TW):
            d0[tj], d1[tj], d2[tj], d3[tj], d4[tj], d5[tj] = _a(S[k, tj], S[k + 1, tj],
                                                                S[k + 2, tj], S[k + 3, tj])
