"""2-D convolution (PyTorch's conv2d, cross-correlation) forward and backward by im2col + GEMM."""
import numba
import numpy as np
from numba import njit, prange

from . import threads
from ._xp import get_array_module, is_gpu_array, pair
from .im2col import (_col2im_parallel, _im2col_parallel, col2im, col2im_block, conv_output_size,
                     im2col, im2col_block)

# Bytes of one thread's column block: a few MiB keeps it in this thread's share of the L3 cache
# while the matrix product still sees a few hundred columns.
COL_BLOCK_BYTES = 4 << 20


def _check_args(x, W, b, stride, padding):
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    if x.ndim != 4:
        raise ValueError(f"conv2d: x must be NCHW (4 dimensions), got shape {tuple(x.shape)}")
    if W.ndim != 4:
        raise ValueError(f"conv2d: W must be (F, C, KH, KW), got shape {tuple(W.shape)}")
    if x.shape[1] != W.shape[1]:
        raise ValueError(f"conv2d: x has {x.shape[1]} channels (shape {tuple(x.shape)}) but W "
                         f"expects {W.shape[1]} (shape {tuple(W.shape)})")
    if x.dtype not in (np.float32, np.float64) or W.dtype != x.dtype:
        raise ValueError(f"conv2d: x and W must both be float32 or both float64, got "
                         f"{x.dtype} and {W.dtype}")
    if b is not None and tuple(b.shape) != (W.shape[0],):
        raise ValueError(f"conv2d: b must have shape ({W.shape[0]},), got {tuple(b.shape)}")
    kernel = (W.shape[2], W.shape[3])
    OH, OW = conv_output_size(x.shape, kernel, stride, padding)
    return kernel, stride, padding, OH, OW


# ---------------------------------------------------------------- reference (NumPy or CuPy)
def conv2d_forward_reference(x, W, b, stride, padding, relu=False):
    """Plain version: whole-batch im2col, then one batched product W2 @ col[n]."""
    kernel, stride, padding, OH, OW = _check_args(x, W, b, stride, padding)
    xp = get_array_module(x)
    F = W.shape[0]
    col = im2col(x, kernel, stride, padding, impl="reference")
    y = xp.matmul(W.reshape(F, -1), col).reshape(x.shape[0], F, OH, OW)
    if b is not None:
        y += b.reshape(1, F, 1, 1).astype(y.dtype, copy=False)
    if relu:
        xp.maximum(y, 0, out=y)
    return y


def conv2d_backward_reference(gy, x, W, stride, padding, need_gx=True, need_gW=True,
                              need_gb=True):
    """Plain version: gW = Σₙ gy[n] col[n]ᵀ, gb = Σ gy, gx = col2im(W2ᵀ gy[n])."""
    kernel, stride, padding, OH, OW = _check_args(x, W, None, stride, padding)
    xp = get_array_module(x)
    N, F = x.shape[0], W.shape[0]
    gy2 = gy.reshape(N, F, OH * OW)
    gx = gW = gb = None
    if need_gW:
        col = im2col(x, kernel, stride, padding, impl="reference")
        gW = xp.tensordot(gy2, col, axes=([0, 2], [0, 2])).reshape(W.shape)
    if need_gb:
        gb = gy.sum(axis=(0, 2, 3))
    if need_gx:
        gcol = xp.matmul(W.reshape(F, -1).T, gy2)
        gx = col2im(gcol, x.shape, kernel, stride, padding, impl="reference")
    return gx, gW, gb


# ---------------------------------------------------------------- CPU (Numba + BLAS)
# NOTE: each Numba thread takes whole (image, block of output rows) tasks: it writes the block's
# columns into its own cache-sized buffer and multiplies them with a single-threaded BLAS call
# (Numba's np.dot), so im2col, the product and the bias never wait on each other or on a second
# thread pool. The BLAS is held at one thread for the duration of the call (_single_blas).
@njit(cache=True, inline="always")
def _bias_relu_copy(src, dst, b, has_b, relu):
    """dst[f, p] = src[f, p] + b[f], then max(., 0) when relu; src may be dst."""
    for f in range(dst.shape[0]):
        bf = b[f] if has_b else 0
        for p in range(dst.shape[1]):
            v = src[f, p] + bf
            dst[f, p] = max(v, 0) if relu else v


@njit(parallel=True, cache=True)
def _forward_cpu(x, W2, b, has_b, relu, KH, KW, SH, SW, PH, PW, OH, OW, RB, cols, outs, y):
    N, F, CK = x.shape[0], W2.shape[0], W2.shape[1]
    T = cols.shape[0]
    tiles = (OH + RB - 1) // RB
    for t in prange(T):
        for task in range(t, N * tiles, T):
            n, k = task // tiles, task % tiles
            oh0 = k * RB
            oh1 = min(OH, oh0 + RB)
            P = (oh1 - oh0) * OW
            col = cols[t, :CK * P].reshape(CK, P)
            im2col_block(x, n, KH, KW, SH, SW, PH, PW, oh0, oh1, OW, col)
            if tiles == 1:
                np.dot(W2, col, y[n])
                if has_b or relu:
                    _bias_relu_copy(y[n], y[n], b, has_b, relu)
            else:
                out = outs[t, :F * P].reshape(F, P)
                np.dot(W2, col, out)
                _bias_relu_copy(out, y[n, :, oh0 * OW:oh1 * OW], b, has_b, relu)
    return y


@njit(parallel=True, cache=True)
def _backward_cpu(gy, x, W2, W2T, need_gx, need_gW, KH, KW, SH, SW, PH, PW, OH, OW, RB,
                  cols, gys, gWs, gWtmp, gx):
    N, F, CK = x.shape[0], W2.shape[0], W2.shape[1]
    T = cols.shape[0]
    tiles = (OH + RB - 1) // RB
    for t in prange(T):
        gWs[t] = 0
        for n in range(t, N, T):
            if need_gx:
                gx[n] = 0
            for k in range(tiles):
                oh0 = k * RB
                oh1 = min(OH, oh0 + RB)
                P = (oh1 - oh0) * OW
                col = cols[t, :CK * P].reshape(CK, P)
                if tiles == 1:
                    g = gy[n]
                else:
                    g = gys[t, :F * P].reshape(F, P)
                    g[:, :] = gy[n, :, oh0 * OW:oh1 * OW]
                if need_gW:
                    im2col_block(x, n, KH, KW, SH, SW, PH, PW, oh0, oh1, OW, col)
                    np.dot(g, col.T, gWtmp[t])
                    gWs[t] += gWtmp[t]
                if need_gx:
                    np.dot(W2T, g, col)
                    col2im_block(col, n, KH, KW, SH, SW, PH, PW, oh0, oh1, OW, gx)
    return gx


class _single_blas:
    """Context: every loaded BLAS at one thread (Numba threads call it concurrently), restored."""
    _controller = None

    def __enter__(self):
        if _single_blas._controller is None:
            import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot calls)
            from threadpoolctl import ThreadpoolController
            _single_blas._controller = ThreadpoolController()
        self._limiter = _single_blas._controller.limit(limits=1, user_api="blas")
        return self

    def __exit__(self, *exc):
        self._limiter.restore_original_limits()


def _rows_per_block(CK, OH, OW, itemsize, tasks_wanted, N):
    """Output rows per task: the column block stays under COL_BLOCK_BYTES."""
    RB = max(1, min(OH, COL_BLOCK_BYTES // max(1, CK * OW * itemsize)))
    if N < tasks_wanted:  # too few images to share out: split each image into row blocks
        RB = min(RB, max(1, -(-OH * N // tasks_wanted)))
    return RB


@threads.guarded
def conv2d_forward_cpu(x, W, b, stride, padding, relu=False):
    """Numba/BLAS forward: per-thread im2col blocks times W, bias and ReLU fused."""
    kernel, stride, padding, OH, OW = _check_args(x, W, b, stride, padding)
    x = np.ascontiguousarray(x)
    N, F = x.shape[0], W.shape[0]
    W2 = np.ascontiguousarray(W.reshape(F, -1))
    CK = W2.shape[1]
    T = numba.get_num_threads()
    RB = _rows_per_block(CK, OH, OW, x.dtype.itemsize, 2 * T, N)
    P = RB * OW
    cols = np.empty((T, CK * P), dtype=x.dtype)
    outs = np.empty((T, F * P if RB < OH else 1), dtype=x.dtype)
    y = np.empty((N, F, OH * OW), dtype=x.dtype)
    bb = np.zeros(F, x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    with _single_blas():
        _forward_cpu(x, W2, bb, b is not None, relu, *kernel, *stride, *padding, OH, OW, RB,
                     cols, outs, y)
    return y.reshape(N, F, OH, OW)


@threads.guarded
def conv2d_backward_cpu(gy, x, W, stride, padding, need_gx=True, need_gW=True, need_gb=True):
    """Numba/BLAS backward: per thread, gW += gy·colᵀ and gx = col2im(Wᵀ·gy), image by image."""
    kernel, stride, padding, OH, OW = _check_args(x, W, None, stride, padding)
    N, F = x.shape[0], W.shape[0]
    if tuple(gy.shape) != (N, F, OH, OW):
        raise ValueError(f"conv2d backward: gy has shape {tuple(gy.shape)}, expected "
                         f"{(N, F, OH, OW)}")
    gb = gy.sum(axis=(0, 2, 3), dtype=np.float64).astype(x.dtype) if need_gb else None
    if not (need_gx or need_gW):
        return None, None, gb
    x = np.ascontiguousarray(x)
    gy = np.ascontiguousarray(gy, dtype=x.dtype).reshape(N, F, OH * OW)
    W2 = W.reshape(F, -1)
    CK = W2.shape[1]
    T = numba.get_num_threads()
    if N < T:  # too few images to give each thread its own: parallel im2col, threaded BLAS
        return _backward_whole_batch(gy, x, W2, kernel, stride, padding, OH, OW, need_gx,
                                     need_gW) + (gb,)
    W2 = np.ascontiguousarray(W2)
    RB = _rows_per_block(CK, OH, OW, x.dtype.itemsize, 1, N)
    P = RB * OW
    cols = np.empty((T, CK * P), dtype=x.dtype)
    gys = np.empty((T, F * P if RB < OH else 1), dtype=x.dtype)
    gWs = np.empty((T, F, CK), dtype=x.dtype)
    gWtmp = np.empty((T, F, CK), dtype=x.dtype)
    gx = np.empty(x.shape, dtype=x.dtype) if need_gx else np.empty((1, 1, 1, 1), x.dtype)
    with _single_blas():
        _backward_cpu(gy, x, W2, np.ascontiguousarray(W2.T), need_gx, need_gW, *kernel,
                      *stride, *padding, OH, OW, RB, cols, gys, gWs, gWtmp, gx)
    gW = gWs.sum(axis=0).reshape(W.shape) if need_gW else None
    return (gx if need_gx else None), gW, gb


def _backward_whole_batch(gy, x, W2, kernel, stride, padding, OH, OW, need_gx, need_gW):
    """Backward for a batch smaller than the thread count (e.g. one image)."""
    N = x.shape[0]
    CK = W2.shape[1]
    args = (*kernel, *stride, *padding, OH, OW)
    gx = gW = None
    if need_gW:
        col = _im2col_parallel(x, *args, np.empty((N, CK, OH * OW), x.dtype))
        gW = np.zeros(W2.shape, dtype=x.dtype)
        for n in range(N):
            gW += gy[n] @ col[n].T
        gW = gW.reshape(W2.shape[0], x.shape[1], *kernel)
    if need_gx:
        gcol = np.matmul(W2.T, gy)
        gx = _col2im_parallel(gcol, *args, np.empty(x.shape, x.dtype))
    return gx, gW


# ---------------------------------------------------------------- GPU (CUDA kernels + cuBLAS)
# Bytes of the column matrix of one chunk of the batch on the device.
GPU_COL_BYTES = 256 << 20


def _gpu_chunk(x, CK, OH, OW):
    return max(1, min(x.shape[0], GPU_COL_BYTES // max(1, CK * OH * OW * x.dtype.itemsize)))


def conv2d_forward_gpu(x, W, b, stride, padding, relu=False):
    """Device forward: im2col kernel per chunk of the batch, then one batched cuBLAS product."""
    kernel, stride, padding, OH, OW = _check_args(x, W, b, stride, padding)
    xp = get_array_module(x, W)
    N, F = x.shape[0], W.shape[0]
    W2 = W.reshape(F, -1)
    y = xp.empty((N, F, OH * OW), dtype=x.dtype)
    step = _gpu_chunk(x, W2.shape[1], OH, OW)
    for s in range(0, N, step):
        col = im2col(x[s:s + step], kernel, stride, padding, impl="gpu")
        xp.matmul(W2, col, out=y[s:s + step])
    y = y.reshape(N, F, OH, OW)
    if b is not None:
        y += b.reshape(1, F, 1, 1)
    if relu:
        xp.maximum(y, 0, out=y)
    return y


def conv2d_backward_gpu(gy, x, W, stride, padding, need_gx=True, need_gW=True, need_gb=True):
    """Device backward: per chunk, gW += Σ gy·colᵀ (cuBLAS) and gx = col2im(Wᵀ·gy) (kernel)."""
    kernel, stride, padding, OH, OW = _check_args(x, W, None, stride, padding)
    xp = get_array_module(x, W)
    N, F = x.shape[0], W.shape[0]
    W2 = W.reshape(F, -1)
    gy2 = gy.reshape(N, F, OH * OW)
    gb = gy.sum(axis=(0, 2, 3)) if need_gb else None
    gW = xp.zeros(W2.shape, dtype=x.dtype) if need_gW else None
    gx = xp.empty(x.shape, dtype=x.dtype) if need_gx else None
    step = _gpu_chunk(x, W2.shape[1], OH, OW)
    for s in range(0, N, step):
        e = min(N, s + step)
        if need_gW:
            col = im2col(x[s:e], kernel, stride, padding, impl="gpu")
            gW += xp.matmul(gy2[s:e], col.transpose(0, 2, 1)).sum(axis=0)
        if need_gx:
            gcol = xp.matmul(W2.T, gy2[s:e])
            gx[s:e] = col2im(gcol, (e - s,) + tuple(x.shape[1:]), kernel, stride, padding,
                             impl="gpu")
    return gx, (gW.reshape(W.shape) if need_gW else None), gb


# ---------------------------------------------------------------- public
def _pick(impl, x):
    if impl is None:
        return "gpu" if is_gpu_array(x) else "cpu"
    if impl not in ("reference", "cpu", "gpu"):
        raise ValueError(f"impl must be 'reference', 'cpu' or 'gpu', got {impl!r}")
    return impl


def conv2d_forward(x, W, b=None, stride=1, padding=0, relu=False, impl=None):
    """y (N, F, OH, OW) = conv2d(x (N, C, H, W), W (F, C, KH, KW)) + b (F,), then ReLU if asked."""
    impl = _pick(impl, x)
    if impl == "reference":
        return conv2d_forward_reference(x, W, b, stride, padding, relu)
    if impl == "cpu":
        return conv2d_forward_cpu(x, W, b, stride, padding, relu)
    return conv2d_forward_gpu(x, W, b, stride, padding, relu)


def conv2d_backward(gy, x, W, stride=1, padding=0, need_gx=True, need_gW=True, need_gb=True,
                    impl=None):
    """(gx, gW, gb) for y = conv2d(x, W, b); each is None where not needed."""
    impl = _pick(impl, x)
    if impl == "reference":
        return conv2d_backward_reference(gy, x, W, stride, padding, need_gx, need_gW, need_gb)
    if impl == "cpu":
        return conv2d_backward_cpu(gy, x, W, stride, padding, need_gx, need_gW, need_gb)
    return conv2d_backward_gpu(gy, x, W, stride, padding, need_gx, need_gW, need_gb)
