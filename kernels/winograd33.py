"""F(3x3, 3x3) for kernels/winograd.py: its matrices and block transforms (25 products for 9
outputs, where F(2x2, 3x3) takes 36)."""
import numpy as np
from numba import njit

from .winograd25 import FOUR, TWO

# NOTE: F(3, 3) by Toom-Cook at the points 0, 1, -1, 2 and ∞: three outputs of 3 taps g over 5
# samples d are y = Aᵀ [(G g) ⊙ (Bᵀ d)], and a 3x3 output tile of a 3x3 kernel over its 5x5
# input patch is Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A. G's rows are the points' powers over
# Π (pⱼ - pₖ) (2, -2, -6 and 6), so Bᵀ and Aᵀ hold only small integers. Tiles start every 3
# pixels: 9x12 images (padua4's last layers) are 3 x 4 tiles, where F(2x2, 3x3) needs 5 x 6
# with a padding row and column. Float32 error, in a simulation of single tiles over 256
# channels against float64: at most 1.4e-7 of Σ|w||x| (0, ±1, -2 or ±1/2 for the fourth
# point: 1.4-1.5e-7; 0, 1, 2, 1/2: 1.3e-6; ±1, ±2 without ∞: 4.8e-7); F(2x2, 3x3) about the
# same, F(4x4, 3x3) several times more (tests/kernels/test_winograd.py measures the kernels).
AT = np.array([[1, 1, 1, 1, 0],
               [0, 1, -1, 2, 0],
               [0, 1, 1, 4, 1]], dtype=np.float64)
G = np.array([[1 / 2, 0, 0],
              [-1 / 2, -1 / 2, -1 / 2],
              [-1 / 6, 1 / 6, -1 / 6],
              [1 / 6, 1 / 3, 2 / 3],
              [0, 0, 1]])
BT = np.array([[2, -1, -2, 1, 0],
               [0, -2, -1, 1, 0],
               [0, 2, -3, 1, 0],
               [0, -1, 0, 1, 0],
               [0, 2, -1, -2, 1]], dtype=np.float64)


@njit(cache=True, inline="always")
def _bt(d0, d1, d2, d3, d4):
    """Bᵀ d, with the differences the rows share taken once."""
    a, b = d3 - d1, d3 - d2
    return TWO * (d0 - d2) + a, b - TWO * d1, b + TWO * (d1 - d2), a, d4 - d2 - TWO * a


@njit(cache=True, inline="always")
def _at(m0, m1, m2, m3, m4):
    """Aᵀ m."""
    s = m1 + m2
    return m0 + s + m3, m1 - m2 + TWO * m3, s + FOUR * m3 + m4


@njit(cache=True, inline="always")
def _a(y0, y1, y2):
    """A y, A's rows being (1, 0, 0), (1, 1, 1), (1, -1, 1), (1, 2, 4), (0, 0, 1)."""
    p = y0 + y2
    return y0, p + y1, p - y1, y0 + TWO * y1 + FOUR * y2, y2


@njit(cache=True, inline="always")
def split(r, count, ph):
    """ph[k, u] = r[3u + k] for u < count: a row split by column modulo 3."""
    p0, p1, p2 = ph[0], ph[1], ph[2]
    for u in range(count):
        p0[u], p1[u], p2[u] = r[3 * u], r[3 * u + 1], r[3 * u + 2]


@njit(cache=True, inline="always")
def interleave(ph, count, r):
    """r[3u + k] = ph[k, u] for u < count: the inverse of split."""
    p0, p1, p2 = ph[0], ph[1], ph[2]
    for u in range(count):
        r[3 * u], r[3 * u + 1], r[3 * u + 2] = p0[u], p1[u], p2[u]


@njit(cache=True, inline="always")
def combine_rows(plane, count, Wv, rows, off=0):
    """rows[a, off + u] = (Bᵀ d)[a] for u < count, d[k] = plane[k % 3, u + (k // 3)*Wv]: image
    rows split by row modulo 3 (row 3i + k' at plane[k', i*Wv:(i + 1)*Wv]), each tile row's
    five at once."""
    p0, p1, p2 = plane[0], plane[1], plane[2]
    r0, r1, r2 = rows[0, off:off + count], rows[1, off:off + count], rows[2, off:off + count]
    r3, r4 = rows[3, off:off + count], rows[4, off:off + count]
    for u in range(count):
        r0[u], r1[u], r2[u], r3[u], r4[u] = _bt(p0[u], p1[u], p2[u], p0[u + Wv], p1[u + Wv])


@njit(cache=True, inline="always")
def columns(ph, count, V, r0, c0):
    """V[r0 + b, c0 + u] = (r B)[b] for the five columns of tile u, r[3u + k] = ph[k % 3, u + k // 3]:
    a row split by column modulo 3 (unit strides that run in SIMD lanes)."""
    p0, p1, p2 = ph[0], ph[1], ph[2]
    o0, o1, o2 = V[r0, c0:c0 + count], V[r0 + 1, c0:c0 + count], V[r0 + 2, c0:c0 + count]
    o3, o4 = V[r0 + 3, c0:c0 + count], V[r0 + 4, c0:c0 + count]
    for u in range(count):
        o0[u], o1[u], o2[u], o3[u], o4[u] = _bt(p0[u], p1[u], p2[u], p0[u + 1], p1[u + 1])


# NOTE: a tile row of the input transform's flat rows has one extra tile (kernels/winograd.py:
# 9x12 images are 4 real tiles and 1 extra a tile row, a quarter more products). The F(3x3)
# blocks leave the extra tiles out of V and M: columns_real writes the real tiles' columns
# of V side by side (column TW*i + j for tile j of tile row i), split_real and
# interleave_real read and write the real tiles of the output's rows. The extra tiles'
# patches are never read, and their outputs, zero-filled gradients, never needed.
@njit(cache=True, inline="always")
def columns_real(ph, lines, TW, TWv, V, r0, c0):
    """V[r0 + b, c0 + TW*i + j] = (r B)[b] of tile u = TWv*i + j (as columns computes it from
    the split row ph) for j < TW, i < lines: the real tiles of each tile row."""
    p0, p1, p2 = ph[0], ph[1], ph[2]
    o0, o1, o2 = V[r0, c0:], V[r0 + 1, c0:], V[r0 + 2, c0:]
    o3, o4 = V[r0 + 3, c0:], V[r0 + 4, c0:]
    if TW == 4:  # NOTE: four tiles' loads, then their stores: SIMD lanes across the four
        for i in range(lines):
            s, o = TWv * i, TW * i
            a0, a1, a2, a3, a4 = p0[s], p0[s + 1], p0[s + 2], p0[s + 3], p0[s + 4]
            b0, b1, b2, b3, b4 = p1[s], p1[s + 1], p1[s + 2], p1[s + 3], p1[s + 4]
            c0, c1, c2, c3 = p2[s], p2[s + 1], p2[s + 2], p2[s + 3]
            x0, y0, z0, v0, w0 = _bt(a0, b0, c0, a1, b1)
            x1, y1, z1, v1, w1 = _bt(a1, b1, c1, a2, b2)
            x2, y2, z2, v2, w2 = _bt(a2, b2, c2, a3, b3)
            x3, y3, z3, v3, w3 = _bt(a3, b3, c3, a4, b4)
            o0[o], o0[o + 1], o0[o + 2], o0[o + 3] = x0, x1, x2, x3
            o1[o], o1[o + 1], o1[o + 2], o1[o + 3] = y0, y1, y2, y3
            o2[o], o2[o + 1], o2[o + 2], o2[o + 3] = z0, z1, z2, z3
            o3[o], o3[o + 1], o3[o + 2], o3[o + 3] = v0, v1, v2, v3
            o4[o], o4[o + 1], o4[o + 2], o4[o + 3] = w0, w1, w2, w3
        return
    for i in range(lines):
        s, o = TWv * i, TW * i
        for j in range(TW):
            u = s + j
            o0[o + j], o1[o + j], o2[o + j], o3[o + j], o4[o + j] = _bt(
                p0[u], p1[u], p2[u], p0[u + 1], p1[u + 1])


@njit(cache=True, inline="always")
def split_real(r, lines, TW, TWv, ph):
    """ph[k, TW*i + j] = r[3*(TWv*i + j) + k] for k < 3, j < TW, i < lines: split for the real
    tiles of each tile row."""
    p0, p1, p2 = ph[0], ph[1], ph[2]
    if TW == 4:
        for i in range(lines):
            s, o = 3 * TWv * i, TW * i
            e = r[s:s + 12]
            a0, a1, a2, a3, a4, a5 = e[0], e[1], e[2], e[3], e[4], e[5]
            a6, a7, a8, a9, a10, a11 = e[6], e[7], e[8], e[9], e[10], e[11]
            p0[o], p0[o + 1], p0[o + 2], p0[o + 3] = a0, a3, a6, a9
            p1[o], p1[o + 1], p1[o + 2], p1[o + 3] = a1, a4, a7, a10
            p2[o], p2[o + 1], p2[o + 2], p2[o + 3] = a2, a5, a8, a11
        return
    for i in range(lines):
        s, o = 3 * TWv * i, TW * i
        for j in range(TW):
            p0[o + j], p1[o + j], p2[o + j] = r[s + 3 * j], r[s + 3 * j + 1], r[s + 3 * j + 2]


@njit(cache=True, inline="always")
def interleave_real(ph, lines, TW, TWv, r):
    """r[3*(TWv*i + j) + k] = ph[k, TW*i + j] for k < 3, j < TW, i < lines: the inverse of
    split_real (the extra tiles' columns of r are left as they are)."""
    p0, p1, p2 = ph[0], ph[1], ph[2]
    if TW == 4:
        for i in range(lines):
            s, o = 3 * TWv * i, TW * i
            a0, a1, a2, a3 = p0[o], p0[o + 1], p0[o + 2], p0[o + 3]
            b0, b1, b2, b3 = p1[o], p1[o + 1], p1[o + 2], p1[o + 3]
            c0, c1, c2, c3 = p2[o], p2[o + 1], p2[o + 2], p2[o + 3]
            e = r[s:s + 12]
            e[0], e[1], e[2], e[3], e[4], e[5] = a0, b0, c0, a1, b1, c1
            e[6], e[7], e[8], e[9], e[10], e[11] = a2, b2, c2, a3, b3, c3
        return
    for i in range(lines):
        s, o = 3 * TWv * i, TW * i
        for j in range(TW):
            r[s + 3 * j], r[s + 3 * j + 1], r[s + 3 * j + 2] = p0[o + j], p1[o + j], p2[o + j]


@njit(cache=True, inline="always")
def output(M, q0, count, S):
    """S[3i + j, t] = (Aᵀ m A)[i, j] for the tiles t < count, m[5a + b] being M[5a + b, q0 + t];
    S (24, >= count): rows 9 to 23 are scratch."""
    # NOTE: two passes over contiguous rows (SIMD lanes across the tiles): the rows of Aᵀ m
    # into S[9 + 5i + b], then the outputs.
    for b in range(5):
        m0, m1, m2 = M[b, q0:q0 + count], M[5 + b, q0:q0 + count], M[10 + b, q0:q0 + count]
        m3, m4 = M[15 + b, q0:q0 + count], M[20 + b, q0:q0 + count]
        s0, s1, s2 = S[9 + b], S[14 + b], S[19 + b]
        for t in range(count):
            s0[t], s1[t], s2[t] = _at(m0[t], m1[t], m2[t], m3[t], m4[t])
    for i in range(3):
        k = 9 + 5 * i
        o0, o1, o2 = S[3 * i], S[3 * i + 1], S[3 * i + 2]
        for t in range(count):
            o0[t], o1[t], o2[t] = _at(S[k, t], S[k + 1, t], S[k + 2, t], S[k + 3, t],
                                      S[k + 4, t])


@njit(cache=True, inline="always")
def adjoint(S, count, dM, q0):
    """dM[5a + b, q0 + t] = (A dY Aᵀ)[a, b] for the 3x3 tiles dY[i, j] = S[3i + j, t]: the
    adjoint of output; S rows 9 to 23 are scratch."""
    # NOTE: e = A dY column by column into S[9 + 3a + j], then each row of e times Aᵀ.
    for j in range(3):
        y0, y1, y2 = S[j], S[3 + j], S[6 + j]
        e0, e1, e2, e3, e4 = S[9 + j], S[12 + j], S[15 + j], S[18 + j], S[21 + j]
        for t in range(count):
            e0[t], e1[t], e2[t], e3[t], e4[t] = _a(y0[t], y1[t], y2[t])
    for a in range(5):
        k = 9 + 3 * a
        d0, d1, d2 = dM[5 * a, q0:q0 + count], dM[5 * a + 1, q0:q0 + count], \
            dM[5 * a + 2, q0:q0 + count]
        d3, d4 = dM[5 * a + 3, q0:q0 + count], dM[5 * a + 4, q0:q0 + count]
        for t in range(count):
            d0[t], d1[t], d2[t], d3[t], d4[t] = _a(S[k, t], S[k + 1, t], S[k + 2, t])
