"""Per-channel sums of an (N, C, ...) array in float64 on Numba threads: a convolution's bias
gradient, the same on every run."""
import numpy as np
from numba import njit, prange

SHORT = 256  # planes shorter than this take the eight-sum path (no scratch array to set up)
LANES = 64   # running float64 sums of the long-plane path: lane j takes p[j], p[j + 64], ...


# NOTE: kernels/relu.py, pool_relu.py, batchnorm.py and winograd.py inline _plane_sum into
# their cached kernels; the kernels' cache is stamped with the whole package
# (kernels/cache_stamp.py), so a change here recompiles them, and
# tests/kernels/test_plane_sum_callers.py checks that they give these bits.
@njit(cache=True, inline="always")
def _plane_sum(p):
    """Σ p in float64 in an order fixed by len(p) alone: shorter than SHORT, eight running sums
    (p[j], p[j + 8], ...) added pairwise, then the tail; otherwise LANES running sums (the tail
    into the first lanes), added pairwise."""
    L = p.shape[0]
    if L < SHORT:
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
        k = 0
        while k + 8 <= L:
            a0 += p[k]
            a1 += p[k + 1]
            a2 += p[k + 2]
            a3 += p[k + 3]
            a4 += p[k + 4]
            a5 += p[k + 5]
            a6 += p[k + 6]
            a7 += p[k + 7]
            k += 8
        rest = 0.0
        for j in range(k, L):
            rest += p[j]
        return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + rest
    # NOTE: each lane is its own chain of float64 additions in the written order, so the
    # compiler's loop vectoriser may run the lanes side by side in SIMD registers (it does:
    # about 3x the eight scalar chains' rate on long planes) without changing a bit; LLVM
    # does not vectorise the eight named sums above (Numba leaves SLP vectorisation off).
    acc = np.zeros(LANES, np.float64)
    k = 0
    while k + LANES <= L:
        for j in range(LANES):
            acc[j] += p[k + j]
        k += LANES
    for j in range(L - k):
        acc[j] += p[k + j]
    h = LANES // 2
    while h >= 1:
        for j in range(h):
            acc[j] += acc[j + h]
        h //= 2
    return acc[0]


@njit(parallel=True, cache=True, nogil=True)
def _channel_sums(a, out):
    N, C = a.shape[0], a.shape[1]
    for c in prange(C):  # NOTE: one thread a channel: the order of the sums is fixed
        total = 0.0
        for n in range(N):
            total += _plane_sum(a[n, c])
        out[c] = total
    return out


def channel_sums(a):
    """Σ over every axis but 1 of a (N, C, ...) float array, in float64 (a float64 array (C,))."""
    a = np.ascontiguousarray(a)
    N, C = a.shape[:2]
    return _channel_sums(a.reshape(N, C, -1), np.empty(C, np.float64))
