"""A BLAS matrix product callable from Numba code, with leading dimensions and beta (no copies)."""
import llvmlite.binding as llvm
import numpy as np
from numba import njit, types
from numba.extending import get_cython_function_address

# NOTE: SciPy's BLAS (the one Numba's own np.dot calls) is bound by symbol name, so that the
# functions using it can still be cached (cache=True): the symbol is resolved in every process.
for _name in ("sgemm", "dgemm"):
    llvm.add_symbol("tinylesion_" + _name,
                    get_cython_function_address("scipy.linalg.cython_blas", _name))
_ARGS = (types.intp,) * 13
_sgemm = types.ExternalFunction("tinylesion_sgemm", types.void(*_ARGS))
_dgemm = types.ExternalFunction("tinylesion_dgemm", types.void(*_ARGS))


@njit(cache=True)
def gemm(trans_a, trans_b, A, B, C, beta):
    """C = op(A) @ op(B) + beta * C for row-major 2-D views whose rows may be strided.

    op(A) is A.T when trans_a, else A (same for B). Every array needs unit stride along its
    last axis; C may be a window of a larger array (its row stride is the leading dimension).
    """
    M, N = C.shape
    K = A.shape[0] if trans_a else A.shape[1]
    isz = C.itemsize
    if A.strides[1] != isz or B.strides[1] != isz or C.strides[1] != isz:
        raise ValueError("gemm: every matrix needs unit stride along its rows")
    if (A.shape[1] if trans_a else A.shape[0]) != M or \
            (B.shape[1] if trans_b else B.shape[0]) != K or \
            (B.shape[0] if trans_b else B.shape[1]) != N:
        raise ValueError("gemm: shapes do not match")
    # NOTE: BLAS is column-major: a row-major X is Xᵀ there, so C = op(A)op(B) is computed as
    # Cᵀ = op(B)ᵀ op(A)ᵀ with the same transpose flags, and m, n swapped.
    ints = np.empty(6, np.int32)
    ints[0], ints[1], ints[2] = N, M, K
    ints[3] = max(1, B.strides[0] // isz)
    ints[4] = max(1, A.strides[0] // isz)
    ints[5] = max(1, C.strides[0] // isz)
    flags = np.empty(2, np.uint8)
    flags[0] = 84 if trans_b else 78  # 'T' or 'N'
    flags[1] = 84 if trans_a else 78
    scalars = np.empty(2, C.dtype)
    scalars[0] = 1
    scalars[1] = beta
    i, f, s = ints.ctypes.data, flags.ctypes.data, scalars.ctypes.data
    if M == 0 or N == 0:
        return
    if isz == 4:
        _sgemm(f, f + 1, i, i + 4, i + 8, s, B.ctypes.data, i + 12, A.ctypes.data, i + 16,
               s + isz, C.ctypes.data, i + 20)
    else:
        _dgemm(f, f + 1, i, i + 4, i + 8, s, B.ctypes.data, i + 12, A.ctypes.data, i + 16,
               s + isz, C.ctypes.data, i + 20)
