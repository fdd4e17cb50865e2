"""F(2x2, 3x3) for kernels/winograd.py: its matrices and block transforms (16 products a tile)."""
import numpy as np
from numba import njit

# NOTE: F(2, 3) at the points 0, 1, -1 and ∞ (Lavin & Gray, 2015): a 2x2 output tile of a 3x3
# kernel g over its 4x4 input patch d is Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A. Only additions and
# subtractions in Bᵀ and Aᵀ; G halves.
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)


@njit(cache=True, inline="always")
def _bt(d0, d1, d2, d3):
    """Bᵀ d."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit(cache=True, inline="always")
def _at(m0, m1, m2, m3):
    """Aᵀ m."""
    return m0 + m1 + m2, m1 - m2 - m3


@njit(cache=True, inline="always")
def _a(y0, y1):
    """A y, A's rows being (1, 0), (1, 1), (1, -1), (0, -1)."""
    return y0, y0 + y1, y0 - y1, -y1


@njit(cache=True, inline="always")
def combine_rows(plane, count, Wv, rows, off=0):
    """rows[a, off + u] = (Bᵀ d)[a] for u < count, d[k] = plane[k % 2, u + (k // 2)*Wv]: image
    rows split by parity (row 2i + k' at plane[k', i*Wv:(i + 1)*Wv]), each tile row's four at
    once."""
    p0, p1 = plane[0], plane[1]
    r0, r1 = rows[0, off:off + count], rows[1, off:off + count]
    r2, r3 = rows[2, off:off + count], rows[3, off:off + count]
    for u in range(count):
        r0[u], r1[u], r2[u], r3[u] = _bt(p0[u], p1[u], p0[u + Wv], p1[u + Wv])


@njit(cache=True, inline="always")
def columns(ph, count, V, r0, c0):
    """V[r0 + b, c0 + u] = (r B)[b] for the four columns of tile u, r[2u + k] = ph[k % 2, u + k // 2]:
    a row split by column parity (unit strides that run in SIMD lanes)."""
    e, o = ph[0], ph[1]
    o0, o1 = V[r0, c0:c0 + count], V[r0 + 1, c0:c0 + count]
    o2, o3 = V[r0 + 2, c0:c0 + count], V[r0 + 3, c0:c0 + count]
    for u in range(count):
        o0[u], o1[u], o2[u], o3[u] = _bt(e[u], o[u], e[u + 1], o[u + 1])


@njit(cache=True, inline="always")
def output(M, q0, count, S):
    """S[2i + j, t] = (Aᵀ m A)[i, j] for the tiles t < count, m[4a + b] being M[4a + b, q0 + t];
    S (12, >= count): rows 4 to 11 are scratch."""
    # NOTE: the rows of Aᵀ m into S[4 + 4i + b], then the outputs: loops over the tiles on
    # contiguous rows (SIMD lanes).
    for b in range(4):
        m0, m1 = M[b, q0:q0 + count], M[4 + b, q0:q0 + count]
        m2, m3 = M[8 + b, q0:q0 + count], M[12 + b, q0:q0 + count]
        s0, s1 = S[4 + b], S[8 + b]
        for t in range(count):
            s0[t], s1[t] = _at(m0[t], m1[t], m2[t], m3[t])
    for i in range(2):
        k = 4 + 4 * i
        o0, o1 = S[2 * i], S[2 * i + 1]
        for t in range(count):
            o0[t], o1[t] = _at(S[k, t], S[k + 1, t], S[k + 2, t], S[k + 3, t])


@njit(cache=True, inline="always")
def adjoint(S, count, dM, q0):
    """dM[4a + b, q0 + t] = (A dY Aᵀ)[a, b] for the 2x2 tiles dY[i, j] = S[2i + j, t]: the
    adjoint of output; S rows 4 to 11 are scratch."""
    # NOTE: e = A dY column by column into S[4 + 2a + j], then each row of e times Aᵀ.
    for j in range(2):
        y0, y1 = S[j], S[2 + j]
        e0, e1, e2, e3 = S[4 + j], S[6 + j], S[8 + j], S[10 + j]
        for t in range(count):
            e0[t], e1[t], e2[t], e3[t] = _a(y0[t], y1[t])
    for a in range(4):
        k = 4 + 2 * a
        d0, d1 = dM[4 * a, q0:q0 + count], dM[4 * a + 1, q0:q0 + count]
        d2, d3 = dM[4 * a + 2, q0:q0 + count], dM[4 * a + 3, q0:q0 + count]
        for t in range(count):
            d0[t], d1[t], d2[t], d3[t] = _a(S[k, t], S[k + 1, t])
