"""F(2x2, 5x5) for kernels/winograd.py: its matrices and block transforms (36 products a tile)."""
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
def combine_rows(plane, count, Wv, rows, off=0):
    """rows[a, off + u] = (Bᵀ d)[a] for u < count, d[k] = plane[k % 2, u + (k // 2)*Wv]: image
    rows split by parity (row 2i + k' at plane[k', i*Wv:(i + 1)*Wv]), each tile row's six at
    once."""
    p0, p1 = plane[0], plane[1]
    r0, r1, r2 = rows[0, off:off + count], rows[1, off:off + count], rows[2, off:off + count]
    r3, r4, r5 = rows[3, off:off + count], rows[4, off:off + count], rows[5, off:off + count]
    for u in range(count):
        r0[u], r1[u], r2[u], r3[u], r4[u], r5[u] = _bt(p0[u], p1[u], p0[u + Wv], p1[u + Wv],
                                                       p0[u + 2 * Wv], p1[u + 2 * Wv])


@njit(cache=True, inline="always")
def columns(ph, count, V, r0, c0):
    """V[r0 + b, c0 + u] = (r B)[b] for the six columns of tile u, r[2u + k] = ph[k % 2, u + k // 2]:
    a row split by column parity (unit strides that run in SIMD lanes)."""
    e, o = ph[0], ph[1]
    o0, o1, o2 = V[r0, c0:c0 + count], V[r0 + 1, c0:c0 + count], V[r0 + 2, c0:c0 + count]
    o3, o4, o5 = V[r0 + 3, c0:c0 + count], V[r0 + 4, c0:c0 + count], V[r0 + 5, c0:c0 + count]
    for u in range(count):
        o0[u], o1[u], o2[u], o3[u], o4[u], o5[u] = _bt(e[u], o[u], e[u + 1], o[u + 1], e[u + 2],
                                                       o[u + 2])


@njit(cache=True, inline="always")
def output(M, q0, count, S):
    """S[2i + j, t] = (Aᵀ m A)[i, j] for the tiles t < count, m[6a + b] being M[6a + b, q0 + t];
    S (16, >= count): rows 4 to 15 are scratch."""
    # NOTE: two passes, each a loop over the tiles on contiguous rows (SIMD lanes): row i of
    # Aᵀ m, into S[4 + 6i + b], then the outputs.
    for b in range(6):
        m0, m1, m2 = M[b, q0:q0 + count], M[6 + b, q0:q0 + count], M[12 + b, q0:q0 + count]
        m3, m4 = M[18 + b, q0:q0 + count], M[24 + b, q0:q0 + count]
        m5 = M[30 + b, q0:q0 + count]
        s0, s1 = S[4 + b], S[10 + b]
        for t in range(count):
            s0[t], s1[t] = _at(m0[t], m1[t], m2[t], m3[t], m4[t], m5[t])
    y00, y01, y10, y11 = S[0], S[1], S[2], S[3]
    for t in range(count):
        y00[t], y01[t] = _at(S[4, t], S[5, t], S[6, t], S[7, t], S[8, t], S[9, t])
        y10[t], y11[t] = _at(S[10, t], S[11, t], S[12, t], S[13, t], S[14, t], S[15, t])


@njit(cache=True, inline="always")
def adjoint(S, count, dM, q0):
    """dM[6a + b, q0 + t] = (A dY Aᵀ)[a, b] for the 2x2 tiles dY[i, j] = S[2i + j, t]: the
    adjoint of output; S rows 4 to 15 are scratch."""
    # NOTE: e = A dY column by column into S[4 + 2a + j], then each row of e times Aᵀ.
    for j in range(2):
        y0, y1 = S[j], S[2 + j]
        e0, e1, e2, e3, e4, e5 = S[4 + j], S[6 + j], S[8 + j], S[10 + j], S[12 + j], S[14 + j]
        for t in range(count):
            e0[t], e1[t], e2[t], e3[t], e4[t], e5[t] = _a(y0[t], y1[t])
    for a in range(6):
        k = 4 + 2 * a
        d0, d1, d2 = dM[6 * a, q0:q0 + count], dM[6 * a + 1, q0:q0 + count], \
            dM[6 * a + 2, q0:q0 + count]
        d3, d4, d5 = dM[6 * a + 3, q0:q0 + count], dM[6 * a + 4, q0:q0 + count], \
            dM[6 * a + 5, q0:q0 + count]
        for t in range(count):
            d0[t], d1[t], d2[t], d3[t], d4[t], d5[t] = _a(S[k, t], S[k + 1, t])
