"""BLAS matrix products (gemm) and matrix-vector products (gemv) callable from Numba code, with
leading dimensions (no copies)."""
import llvmlite.binding as llvm
import numpy as np
from numba import njit, types
from numba.extending import get_cython_function_address

# NOTE: SciPy's BLAS (the one Numba's own np.dot calls) is bound by symbol name, so that the
# functions using it can still be cached (cache=True): the symbol is resolved in every process.
for _name in ("sgemm", "dgemm", "sgemv", "dgemv"):
    llvm.add_symbol("tinylesion_" + _name,
                    get_cython_function_address("scipy.linalg.cython_blas", _name))
_ARGS = (types.intp,) * 13
_sgemm = types.ExternalFunction("tinylesion_sgemm", types.void(*_ARGS))
_dgemm = types.ExternalFunction("tinylesion_dgemm", types.void(*_ARGS))
_sgemv = types.ExternalFunction("tinylesion_sgemv", types.void(*_ARGS[:11]))
_dgemv = types.ExternalFunction("tinylesion_dgemv", types.void(*_ARGS[:11]))


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


@njit(cache=True)
def gemv(trans_a, A, x, y):
    """y = op(A) @ x for a row-major 2-D view A with unit stride along its rows, and 1-D x, y
    with positive strides (op(A) = A.T when trans_a)."""
    R, S = A.shape
    isz = A.itemsize
    if A.strides[1] != isz or x.strides[0] <= 0 or y.strides[0] <= 0:
        raise ValueError("gemv: A needs unit stride along its rows, x and y positive strides")
    if (R if trans_a else S) != x.shape[0] or (S if trans_a else R) != y.shape[0]:
        raise ValueError("gemv: shapes do not match")
    if y.shape[0] == 0:
        return
    if x.shape[0] == 0:
        y[:] = 0
        return
    # NOTE: row-major A (R x S) is the column-major S x R matrix: op(A) x is that matrix's
    # transpose times x when not trans_a, the matrix itself times x when trans_a.
    ints = np.empty(5, np.int32)
    ints[0], ints[1] = S, R
    ints[2] = max(1, A.strides[0] // isz)
    ints[3] = x.strides[0] // isz
    ints[4] = y.strides[0] // isz
    flags = np.empty(1, np.uint8)
    flags[0] = 78 if trans_a else 84  # 'N' or 'T'
    scalars = np.empty(2, y.dtype)
    scalars[0] = 1
    scalars[1] = 0
    i, f, s = ints.ctypes.data, flags.ctypes.data, scalars.ctypes.data
    if isz == 4:
        _sgemv(f, i, i + 4, s, A.ctypes.data, i + 8, x.ctypes.data, i + 12, s + isz,
               y.ctypes.data, i + 16)
    else:
        _dgemv(f, i, i + 4, s, A.ctypes.data, i + 8, x.ctypes.data, i + 12, s + isz,
               y.ctypes.data, i + 16)
