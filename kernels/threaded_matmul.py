"""Matrix products of the CPU's linear layers on Numba threads, each calling the BLAS on one
thread, so that the BLAS's own thread pool is never woken during a training step."""
import numpy as np
from numba import njit, prange

from . import threads
from .blas import gemm, gemv
from .conv_parts import single_blas

# NOTE: OpenBLAS's worker threads spin (sched_yield in a loop) for about 2^28 cycles after
# every multi-threaded product before they sleep. A linear layer's product between two
# convolutions thus leaves a spinning thread on a core that the next Numba kernel needs: on 2
# cores, a padua4 training step took 467 ms of CPU time where the same step with the BLAS held
# at one thread took 425 (a loaded machine). Here the product is cut into tasks that the Numba
# threads share out, each one single-threaded BLAS call. The cut (`plan`) depends on the shape
# alone, never on the thread count, so every element is the same sum of the same products
# whatever the thread count:
# - blocks of C of about BLOCK_ROWS x BLOCK_COLUMNS elements, wider when C has few rows and
#   taller when it has few columns (a (32 x 1) x (1 x 150,528) product in 512 x 256 blocks was
#   588 calls of a few microseconds' work each), but about TASKS of them when C is large;
# - when C is one block and K is long, K in fixed chunks whose partial products are added in
#   their order (the logistic regression's head, (32 x 150,528) x (150,528 x 7));
# - when K is at most SMALL_K (a linear layer's weight gradient: K is the batch), blocks of
#   whole rows of C, about four of them: such products are bound by writing C, which the BLAS
#   does best along whole rows (1 thread: (1024 x 32) x (32 x 12,288) 7.2 ms in 256-row blocks
#   against 8.9 in 512 x 256 blocks; padua4's (512 x 32) x (32 x 6144) 2.1 against 2.6);
# - a product with one row or one column, the matrix-vector product (BLAS gemv, 3x faster
#   than gemm there), in fixed blocks of that row or column;
# - below TINY_FLOPS, NumPy's own product: one BLAS call, which OpenBLAS runs on the calling
#   thread at that size whatever its thread setting (NumPy's OpenBLAS 0.3.31 on 2 threads woke
#   no other thread up to m*n*k = 524,288, four times this bound), and without the ~5 us of
#   switching the BLAS to one thread and back.
BLOCK_ROWS, BLOCK_COLUMNS = 512, 256
TASKS = 16                  # a large product is cut into about this many tasks
MIN_TASK_FLOPS = 1 << 21    # ... each of at least this many FLOPs (about 20-50 us)
ALIGN = 64                  # block sides and K chunks are multiples of this
TINY_FLOPS = 1 << 18        # 2*M*N*K up to this: NumPy's product, on the calling thread
SMALL_K = 64                # K up to this: blocks of whole rows of C
K_CHUNK = 512               # K chunks are at least this long
MAX_PARTIALS = 1 << 20      # elements of the K chunks' partial products at most


def _round_up(n, multiple):
    return -(-n // multiple) * multiple


def _side(n, base, widened, tasks):
    """A block side for a dimension of n: `widened` (>= base), but no more than what cuts n
    into `tasks` blocks (and never less than base), as a multiple of ALIGN, at most n."""
    cap = max(base, _round_up(-(-n // tasks), ALIGN))
    return max(1, min(n, widened, cap))


def plan(M, N, K):
    """How op(A) @ op(B) of shape (M, N) with inner dimension K is cut: ('tiny',), ('vector',
    block), or ('blocks', block rows, block columns, K chunk). Depends on the shape only."""
    flops = 2 * M * N * K
    if flops <= TINY_FLOPS:
        return ("tiny",)
    if M == 1 or N == 1:
        length = max(M, N)
        block = max(-(-length // TASKS), -(-MIN_TASK_FLOPS // (2 * K)))
        return ("vector", min(length, _round_up(block, 4)))
    if K <= SMALL_K and M >= 2 * ALIGN:
        return ("blocks", min(M, max(ALIGN, _round_up(-(-M // 4), 8))), N, K)
    bm = min(M, BLOCK_ROWS)
    bn = min(N, BLOCK_COLUMNS)
    if M < BLOCK_ROWS:
        bn = _side(N, bn, BLOCK_COLUMNS * (BLOCK_ROWS // M), TASKS)
    if N < BLOCK_COLUMNS:
        bm = _side(M, bm, BLOCK_ROWS * (BLOCK_COLUMNS // N), TASKS)
    blocks = -(-M // bm) * -(-N // bn)
    chunks = 1
    if blocks == 1:
        chunks = min(TASKS, K // K_CHUNK, flops // MIN_TASK_FLOPS, MAX_PARTIALS // (M * N))
    if chunks < 2:
        return ("blocks", bm, bn, K)
    return ("blocks", bm, bn, _round_up(-(-K // chunks), ALIGN))


@njit(parallel=True, cache=True, nogil=True)
def _blocked(trans_a, trans_b, A, B, bm, bn, kc, C, partial):
    """C = op(A) @ op(B) in blocks of bm x bn; with K in chunks of kc when kc < K: each chunk's
    product into `partial`, then C = the partials' sum in the chunks' order."""
    M, N = C.shape
    K = A.shape[0] if trans_a else A.shape[1]
    row_blocks = (M + bm - 1) // bm
    blocks = row_blocks * ((N + bn - 1) // bn)
    chunks = (K + kc - 1) // kc
    for task in prange(blocks * chunks):
        block, chunk = task % blocks, task // blocks
        i0 = (block % row_blocks) * bm
        j0 = (block // row_blocks) * bn
        k0 = chunk * kc
        i1, j1, k1 = min(M, i0 + bm), min(N, j0 + bn), min(K, k0 + kc)
        a = A[k0:k1, i0:i1] if trans_a else A[i0:i1, k0:k1]
        b = B[j0:j1, k0:k1] if trans_b else B[k0:k1, j0:j1]
        c = C[i0:i1, j0:j1] if chunks == 1 else partial[chunk, i0:i1, j0:j1]
        gemm(trans_a, trans_b, a, b, c, 0.0)
    if chunks > 1:
        for i in prange(M):
            C[i] = partial[0, i]
            for chunk in range(1, chunks):
                C[i] += partial[chunk, i]
    return C


@njit(parallel=True, cache=True, nogil=True)
def _vector(trans_a, trans_b, A, B, block, C):
    """C = op(A) @ op(B) where C has one row or one column: matrix-vector products over blocks
    of `block` elements of C."""
    M, N = C.shape
    by_rows = N == 1
    length = M if by_rows else N
    for task in prange((length + block - 1) // block):
        s0 = task * block
        s1 = min(length, s0 + block)
        if by_rows:      # C[s0:s1, 0] = op(A)[s0:s1] @ op(B)[:, 0]
            x = B[0] if trans_b else B[:, 0]
            a = A[:, s0:s1] if trans_a else A[s0:s1]
            gemv(trans_a, a, x, C[s0:s1, 0])
        else:            # C[0, s0:s1] = op(B)[:, s0:s1]ᵀ @ op(A)[0]
            x = A[:, 0] if trans_a else A[0]
            b = B[s0:s1] if trans_b else B[:, s0:s1]
            gemv(not trans_b, b, x, C[0, s0:s1])
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
    trans_X): single-threaded BLAS calls over a cut of the product that depends on its shape
    only (`plan`), so the same numbers for every thread count."""
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
    if M == 0 or N == 0 or K == 0:
        return np.zeros((M, N), A.dtype)
    how = plan(M, N, K)
    if how[0] == "tiny":
        return np.matmul(A.T if trans_a else A, B.T if trans_b else B)
    C = np.empty((M, N), A.dtype)
    A, B = _rows_contiguous(A), _rows_contiguous(B)
    with single_blas():
        if how[0] == "vector":
            _vector(trans_a, trans_b, A, B, how[1], C)
        else:
            _, bm, bn, kc = how
            chunks = -(-K // kc)
            if chunks == 1 and bm == M and bn == N:   # one task: no parallel region
                gemm(trans_a, trans_b, A, B, C, 0.0)
                return C
            partial = np.empty((chunks if chunks > 1 else 0, M, N), A.dtype)
            _blocked(trans_a, trans_b, A, B, bm, bn, kc, C, partial)
    return C
