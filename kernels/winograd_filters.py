"""The Winograd filter transforms U = G g Gᵀ, of the kernels and of the flipped and transposed
ones, and their adjoint: BLAS products shared out over Numba's threads."""
import numba
import numpy as np
from numba import njit, prange

from .blas import gemm
from .conv_parts import single_blas

# NOTE: (G g Gᵀ)[a, b] = Σᵢⱼ G[a, i] G[b, j] g[i, j]: the Kronecker product K = G ⊗ G (α² x r²)
# times g flattened, so all F*C kernels are one product K @ Wᵀ (W: F*C rows of r² taps).
# NumPy runs it on one thread, with copies for the strided layouts the input gradient and the
# weight gradient need; here each thread multiplies its share of the columns into U in place:
# - forward: U[:, f, c] = K g[f, c]: columns (f, c) of W's rows, split into blocks;
# - input gradient: U'[:, c, f] = K flip(g[f, c]), and flipping an r x r kernel reverses its
#   r² taps, so U'[:, c, :] = K[:, ::-1] @ W[:, c]ᵀ, one product per input channel c (the rows
#   W[f, c] are C*r² apart, which BLAS reads in place);
# - weight gradient: gW[f, c] = Kᵀ dU[:, f, c]: rows of gW, split into blocks.
# The same BLAS products with the same K as K @ Wᵀ in NumPy (tests/kernels/
# test_winograd_filters.py compares them).


def kron_matrix(G, dtype):
    """K = G ⊗ G (α² x r²) in `dtype`: row α a + b, column r i + j is G[a, i] G[b, j]."""
    return np.ascontiguousarray(np.kron(G, G).astype(dtype))


@njit(parallel=True, cache=True, nogil=True)
def _forward(K, W2, U2, T):
    """U2 (α², n) = K @ W2ᵀ for W2 (n, r²), columns shared out over T blocks."""
    n = W2.shape[0]
    for t in prange(T):
        j0, j1 = t * n // T, (t + 1) * n // T
        if j1 > j0:
            gemm(False, True, K, W2[j0:j1], U2[:, j0:j1], 0.0)


@njit(parallel=True, cache=True, nogil=True)
def _flipped(Kr, W3, U):
    """U[:, c, :] (α² x F) = Kr @ W3[:, c]ᵀ for W3 (F, C, r²), one product per c."""
    for c in prange(W3.shape[1]):
        gemm(False, True, Kr, W3[:, c], U[:, c], 0.0)


@njit(parallel=True, cache=True, nogil=True)
def _adjoint(K, dU2, gW2, T):
    """gW2 (n, r²) = dU2ᵀ @ K for dU2 (α², n), rows shared out over T blocks."""
    n = gW2.shape[0]
    for t in prange(T):
        j0, j1 = t * n // T, (t + 1) * n // T
        if j1 > j0:
            gemm(True, False, dU2[:, j0:j1], K, gW2[j0:j1], 0.0)


def _blocks(n):
    """Blocks of columns: a few per thread, none narrower than 64 columns."""
    return max(1, min(4 * numba.get_num_threads(), n // 64))


def transform(W, G):
    """U (α², F, C) = G g Gᵀ for each kernel g = W[f, c] (W: F x C x r x r, G: α x r)."""
    F, C, R = W.shape[:3]
    K = kron_matrix(G, W.dtype)
    W2 = np.ascontiguousarray(W).reshape(F * C, R * R)
    U = np.empty((K.shape[0], F, C), W.dtype)
    with single_blas():
        _forward(K, W2, U.reshape(K.shape[0], F * C), _blocks(F * C))
    return U


def transform_flipped(W, G):
    """U (α², C, F) = G g' Gᵀ for the kernels g' = W[f, c, ::-1, ::-1] of the input gradient
    (W transposed to C x F x r x r and flipped): the transform of that array, without it."""
    F, C, R = W.shape[:3]
    Kr = np.ascontiguousarray(kron_matrix(G, W.dtype)[:, ::-1])
    W3 = np.ascontiguousarray(W).reshape(F, C, R * R)
    U = np.empty((Kr.shape[0], C, F), W.dtype)
    with single_blas():
        _flipped(Kr, W3, U)
    return U


def adjoint(dU, F, C, R, G):
    """gW (F, C, r, r) = Gᵀ dU[:, f, c] G: the gradient of `transform`."""
    K = kron_matrix(G, dU.dtype)
    dU2 = np.ascontiguousarray(dU).reshape(K.shape[0], F * C)
    gW = np.empty((F, C, R, R), dU.dtype)
    with single_blas():
        _adjoint(K, dU2, gW.reshape(F * C, R * R), _blocks(F * C))
    return gW
