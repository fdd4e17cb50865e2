"""Matrix products of the CPU's linear layers on Numba threads, each calling the BLAS on one
thread, so that the BLAS's own thread pool is never woken during a training step."""
import numpy as np
from numba import njit, prange

from . import threads
from .blas import gemm
from .conv_parts import single_blas

# NOTE: OpenBLAS's worker threads spin (sched_yield in a loop) for about 2^28 cycles after
# every multi-threaded product before they sleep. A linear layer's product between two
# convolutions thus leaves a spinning thread on a core that the next Numba kernel needs: on 2
# cores, a padua4 training step took 467 ms of CPU time where the same step with the BLAS held
# at one thread took 425 (a loaded machine). Here the product is cut into fixed blocks of C
# (BLOCK_ROWS x BLOCK_COLUMNS, not set by the thread count, so every element's sum is the same
# single-threaded BLAS call whatever the thread count), which the Numba threads share out.
BLOCK_ROWS, BLOCK_COLUMNS = 512, 256
MIN_FLOPS = 1 << 20  # below this a product runs as one call, in the calling thread


@njit(parallel=True, cache=True, nogil=True)
def _blocked(trans_a, trans_b, A, B, C):
    M, N = C.shape
    row_blocks = (M + BLOCK_ROWS - 1) // BLOCK_ROWS
    tasks = row_blocks * ((N + BLOCK_COLUMNS - 1) // BLOCK_COLUMNS)
    for task in prange(tasks):
        i0 = (task % row_blocks) * BLOCK_ROWS
        j0 = (task // row_blocks) * BLOCK_COLUMNS
        i1, j1 = min(M, i0 + BLOCK_ROWS), min(N, j0 + BLOCK_COLUMNS)
        a = A[:, i0:i1] if trans_a else A[i0:i1]
        b = B[j0:j1] if trans_b else B[:, j0:j1]
        gemm(trans_a, trans_b, a, b, C[i0:i1, j0:j1], 0.0)
    return C


def _rows_contiguous(X):
    """X, or a contiguous copy unless its rows are unit-stride and lie apart in memory (a row
    stride the BLAS can take as a leading dimension: not 0 as in broadcast views, not
    negative)."""
    isz = X.itemsize
    if X.strides[1] == isz and X.strides[0] % isz == 0 and X.strides[0] >= X.shape[1] * isz:
        return X
    return np.ascontiguousarray(X)


@threads.guarded
def matmul(A, B, trans_a=False, trans_b=False):
    """op(A) @ op(B) for 2-D float32 or float64 NumPy arrays of one dtype (op(X) = X.T when
    trans_X): the same numbers as one single-threaded BLAS call per block of the result."""
    if A.ndim != 2 or B.ndim != 2 or A.dtype != B.dtype or \
            A.dtype not in (np.float32, np.float64):
        raise ValueError(f"matmul: two 2-D float32 or float64 arrays of one dtype, got "
                         f"{A.dtype} {A.shape} and {B.dtype} {B.shape}")
    M = A.shape[1] if trans_a else A.shape[0]
    K = A.shape[0] if trans_a else A.shape[1]
    N = B.shape[0] if trans_b else B.shape[1]
    if (B.shape[1] if trans_b else B.shape[0]) != K:
        raise ValueError(f"matmul: shapes {A.shape}{'ᵀ' if trans_a else ''} and "
                         f"{B.shape}{'ᵀ' if trans_b else ''} do not match")
    C = np.empty((M, N), A.dtype)
    if M == 0 or N == 0:
        return C
    if K == 0:
        C[...] = 0
        return C
    A, B = _rows_contiguous(A), _rows_contiguous(B)
    with single_blas():
        if 2 * M * N * K < MIN_FLOPS:
            gemm(trans_a, trans_b, A, B, C, 0.0)
        else:
            _blocked(trans_a, trans_b, A, B, C)
    return C
