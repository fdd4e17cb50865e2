"""F(2x2, 5x5) for kernels/winograd.py: its matrices and one tile's transforms (36 products)."""
import numpy as np
from numba import njit

# NOTE: F(2, 5) by Toom-Cook at the points 0, 1, -1, 2, -2 and ∞ (Lavin & Gray, 2015): two
# outputs of 5 taps g over 6 samples d are y = Aᵀ [(G g) ⊙ (Bᵀ d)], and a 2x2 output tile of a
# 5x5 kernel over its 6x6 input patch is Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A: 36 products.
# Float32 error against float64 direct convolution: at most 4.1e-6 of the sum of the terms'
# magnitudes (Σ|w||x|) over 2,000 drawn layers, where F(2x2, 3x3) reaches 2.2e-7 and direct
# float32 sums about 1e-7 (tests/kernels/test_winograd.py). Other points, in a simulation of
# one tile over 32 channels: 0, ±1, 2, -1/2 gives about half the error but a Bᵀ with twice the
# nonzeros and no shared terms; ±1/2 instead of ±2 gains little, ±3 loses.
AT = np.array([[1, 1, 1, 1, 1, 0],
               [0, 1, -1, 2, -2, 1]], dtype=np.float64)
G = np.array([[1 / 4, 0, 0, 0, 0],
              [-1 / 6, -1 / 6, -1 / 6, -1 / 6, -1 / 6],
              [-1 / 6, 1 / 6, -1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6, 1 / 3, 2 / 3],
              [1 / 24, -1 / 12, 1 / 6, -1 / 3, 2 / 3],
              [0, 0, 0, 0, 1]])
BT = np.array([[4, 0, -5, 0, 1, 0],
               [0, -4, -4, 1, 1, 0],
               [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0],
               [0, 2, -1, -2, 1, 0],
               [0, 4, 0, -5, 0, 1]], dtype=np.float64)
# float32 constants: float32 data stays float32 (an int or a Python float would make it
# float64); float64 data stays float64.
TWO, FOUR, FIVE = np.float32(2), np.float32(4), np.float32(5)


@njit(cache=True, inline="always")
def _bt(d0, d1, d2, d3, d4, d5):
    """Bᵀ d, with the terms rows 1-2 and rows 3-4 share taken once."""
    s, t = d4 - FOUR * d2, d3 - FOUR * d1
    u, v = d4 - d2, TWO * (d3 - d1)
    return FOUR * d0 - FIVE * d2 + d4, s + t, s - t, u + v, u - v, FOUR * d1 - FIVE * d3 + d5


@njit(cache=True, inline="always")
def _at(m0, m1, m2, m3, m4, m5):
    """Aᵀ m."""
    return m0 + m1 + m2 + m3 + m4, m1 - m2 + TWO * (m3 - m4) + m5


@njit(cache=True, inline="always")
def _a(y0, y1):
    """A y, A's rows being (1, 0), (1, 1), (1, -1), (1, 2), (1, -2), (0, 1)."""
    return y0, y0 + y1, y0 - y1, y0 + TWO * y1, y0 - TWO * y1, y1


@njit(cache=True, inline="always")
def combine_rows(d0, d1, d2, d3, d4, d5, Wd, rows, PW):
    """rows[a, PW + w] = (Bᵀ d)[a] at w < Wd, d being the six image rows of a tile row."""
    r0, r1, r2 = rows[0, PW:PW + Wd], rows[1, PW:PW + Wd], rows[2, PW:PW + Wd]
    r3, r4, r5 = rows[3, PW:PW + Wd], rows[4, PW:PW + Wd], rows[5, PW:PW + Wd]
    for w in range(Wd):
        r0[w], r1[w], r2[w], r3[w], r4[w], r5[w] = _bt(d0[w], d1[w], d2[w], d3[w], d4[w],
                                                       d5[w])


@njit(cache=True, inline="always")
def combine_columns(rows, TW, V, p0):
    """V[6a + b, p0 + tj] = (r B)[b] for the six columns r = rows[a, 2tj:2tj + 6] of tile tj;
    rows 6 and 7 of rows are scratch."""
    ev, od = rows[6], rows[7]
    for a in range(6):
        # NOTE: the even and odd columns apart first: then each tile reads both at tj, tj + 1
        # and tj + 2, unit strides that run in SIMD lanes (2.5x faster than stride 2).
        r = rows[a]
        for j in range(TW + 2):
            ev[j], od[j] = r[2 * j], r[2 * j + 1]
        v0, v1, v2 = V[6 * a, p0:p0 + TW], V[6 * a + 1, p0:p0 + TW], V[6 * a + 2, p0:p0 + TW]
        v3, v4, v5 = V[6 * a + 3, p0:p0 + TW], V[6 * a + 4, p0:p0 + TW], V[6 * a + 5, p0:p0 + TW]
        for tj in range(TW):
            v0[tj], v1[tj], v2[tj], v3[tj], v4[tj], v5[tj] = _bt(
                ev[tj], od[tj], ev[tj + 1], od[tj + 1], ev[tj + 2], od[tj + 2])


@njit(cache=True, inline="always")
def output_row(M, q0, TW, S):
    """S[2i + j, tj] = (Aᵀ m A)[i, j] for the tiles tj < TW of a row, m[6a + b] being
    M[6a + b, q0 + tj]; S (16, >= TW): rows 4 to 15 are scratch."""
    # NOTE: two passes, each a loop over the tiles on contiguous rows (so that it runs in SIMD
    # lanes): row i of Aᵀ m, into S[4 + 6i + b], then the outputs.
    for b in range(6):
        m0, m1, m2 = M[b, q0:q0 + TW], M[6 + b, q0:q0 + TW], M[12 + b, q0:q0 + TW]
        m3, m4, m5 = M[18 + b, q0:q0 + TW], M[24 + b, q0:q0 + TW], M[30 + b, q0:q0 + TW]
        s0, s1 = S[4 + b], S[10 + b]
        for tj in range(TW):
            s0[tj], s1[tj] = _at(m0[tj], m1[tj], m2[tj], m3[tj], m4[tj], m5[tj])
    y00, y01, y10, y11 = S[0], S[1], S[2], S[3]
    for tj in range(TW):
        y00[tj], y01[tj] = _at(S[4, tj], S[5, tj], S[6, tj], S[7, tj], S[8, tj], S[9, tj])
        y10[tj], y11[tj] = _at(S[10, tj], S[11, tj], S[12, tj], S[13, tj], S[14, tj], S[15, tj])


@njit(cache=True, inline="always")
def adjoint_tile(dM, m, y00, y01, y10, y11):
    """dM[6a + b, m] = (A dY Aᵀ)[a, b] for the 2x2 tile dY: the adjoint of output_row."""
    e00, e10, e20, e30, e40, e50 = _a(y00, y10)
    e01, e11, e21, e31, e41, e51 = _a(y01, y11)
    dM[0, m], dM[1, m], dM[2, m], dM[3, m], dM[4, m], dM[5, m] = _a(e00, e01)
    dM[6, m], dM[7, m], dM[8, m], dM[9, m], dM[10, m], dM[11, m] = _a(e10, e11)
    dM[12, m], dM[13, m], dM[14, m], dM[15, m], dM[16, m], dM[17, m] = _a(e20, e21)
    dM[18, m], dM[19, m], dM[20, m], dM[21, m], dM[22, m], dM[23, m] = _a(e30, e31)
    dM[24, m], dM[25, m], dM[26, m], dM[27, m], dM[28, m], dM[29, m] = _a(e40, e41)
    dM[30, m], dM[31, m], dM[32, m], dM[33, m], dM[34, m], dM[35, m] = _a(e50, e51)
