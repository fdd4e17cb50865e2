"""im2col and col2im: the patches of an NCHW batch as columns of a matrix, and back."""
import numpy as np
from numba import njit, prange

from . import threads
from ._xp import cuda_simulator_enabled, get_array_module, is_gpu_array, launch, pair

# Layout of `col` (all versions): shape (N, C*KH*KW, OH*OW), C-contiguous, with
#   col[n, (c*KH + i)*KW + j, oh*OW + ow] = xpad[n, c, oh*SH + i, ow*SW + j],
# where xpad is x with PH zero rows above and below and PW zero columns left and right.
# So for image n, W.reshape(F, C*KH*KW) @ col[n] is the convolution output in (F, OH*OW): NCHW.


def conv_output_size(x_shape, kernel, stride, padding):
    """(OH, OW) for PyTorch's floor convention; ValueError naming the sizes when < 1."""
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    if KH < 1 or KW < 1:
        raise ValueError(f"kernel size must be >= 1, got {kernel}")
    if SH < 1 or SW < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if PH < 0 or PW < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if len(x_shape) != 4:
        raise ValueError(f"expected an NCHW input of 4 dimensions, got shape {tuple(x_shape)}")
    H, W = x_shape[2], x_shape[3]
    OH = (H + 2 * PH - KH) // SH + 1
    OW = (W + 2 * PW - KW) // SW + 1
    if OH < 1 or OW < 1:
        raise ValueError(
            f"output size would be {OH}x{OW}: input {H}x{W} with padding {PH},{PW} is smaller "
            f"than kernel {KH}x{KW}")
    return OH, OW


# ---------------------------------------------------------------- reference (NumPy or CuPy)
def im2col_reference(x, kernel, stride, padding):
    """Plain array-operation im2col (any xp)."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    OH, OW = conv_output_size(x.shape, kernel, stride, padding)
    xpad = xp.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)))
    col = xp.empty((N, C, KH, KW, OH, OW), dtype=x.dtype)
    for i in range(KH):
        for j in range(KW):
            col[:, :, i, j] = xpad[:, :, i:i + SH * (OH - 1) + 1:SH, j:j + SW * (OW - 1) + 1:SW]
    return col.reshape(N, C * KH * KW, OH * OW)


def col2im_reference(col, x_shape, kernel, stride, padding):
    """Plain array-operation col2im (any xp): the adjoint of im2col, overlaps summed."""
    xp = get_array_module(col)
    N, C, H, W = x_shape
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    OH, OW = conv_output_size(x_shape, kernel, stride, padding)
    col6 = col.reshape(N, C, KH, KW, OH, OW)
    # NOTE: rows/columns past the last window (floor) get no gradient; make room for them.
    xpad = xp.zeros((N, C, max(H + 2 * PH, SH * (OH - 1) + KH),
                     max(W + 2 * PW, SW * (OW - 1) + KW)), dtype=col.dtype)
    for i in range(KH):
        for j in range(KW):
            xpad[:, :, i:i + SH * (OH - 1) + 1:SH, j:j + SW * (OW - 1) + 1:SW] += col6[:, :, i, j]
    return xpad[:, :, PH:PH + H, PW:PW + W]

# ---------------------------------------------------------------- CPU (Numba)
@njit(cache=True, inline="always")
def _valid_range(j, P, S, size, OW):
    """[lo, hi): the output columns ow whose input column ow*S + j - P lies inside [0, size)."""
    lo = 0
    if P - j > 0:
        lo = min((P - j + S - 1) // S, OW)
    hi = 0
    if size - 1 + P - j >= 0:
        hi = min((size - 1 + P - j) // S + 1, OW)
    return lo, max(lo, hi)


@njit(cache=True, inline="always")
def _im2col_rows(x, n, c, KH, KW, SH, SW, PH, PW, oh0, oh1, OW, col):
    """Write channel c of image n, output rows [oh0, oh1), into the 2-D col (C*KH*KW, P)."""
    H, W = x.shape[2], x.shape[3]
    for i in range(KH):
        for j in range(KW):
            r = (c * KH + i) * KW + j
            lo, hi = _valid_range(j, PW, SW, W, OW)
            off = j - PW
            for oh in range(oh0, oh1):
                h = oh * SH + i - PH
                base = (oh - oh0) * OW
                if h < 0 or h >= H:
                    for ow in range(OW):
                        col[r, base + ow] = 0
                else:
                    for ow in range(lo):
                        col[r, base + ow] = 0
                    for ow in range(lo, hi):
                        col[r, base + ow] = x[n, c, h, ow * SW + off]
                    for ow in range(hi, OW):
                        col[r, base + ow] = 0


@njit(cache=True, inline="always")
def _col2im_rows(col, n, c, KH, KW, SH, SW, PH, PW, oh0, oh1, OW, gx):
    """Add channel c's rows of the 2-D col (output rows [oh0, oh1)) into gx[n, c]."""
    H, W = gx.shape[2], gx.shape[3]
    for i in range(KH):
        for j in range(KW):
            r = (c * KH + i) * KW + j
            lo, hi = _valid_range(j, PW, SW, W, OW)
            off = j - PW
            for oh in range(oh0, oh1):
                h = oh * SH + i - PH
                if h >= 0 and h < H:
                    base = (oh - oh0) * OW
                    for ow in range(lo, hi):
                        gx[n, c, h, ow * SW + off] += col[r, base + ow]


@njit(cache=True)
def im2col_block(x, n, KH, KW, SH, SW, PH, PW, oh0, oh1, OW, col):
    """im2col of output rows [oh0, oh1) of image n into the 2-D col (C*KH*KW, (oh1-oh0)*OW)."""
    for c in range(x.shape[1]):
        _im2col_rows(x, n, c, KH, KW, SH, SW, PH, PW, oh0, oh1, OW, col)


@njit(cache=True)
def col2im_block(col, n, KH, KW, SH, SW, PH, PW, oh0, oh1, OW, gx):
    """Add the 2-D col of output rows [oh0, oh1) of image n into gx[n] (not zeroed here)."""
    for c in range(gx.shape[1]):
        _col2im_rows(col, n, c, KH, KW, SH, SW, PH, PW, oh0, oh1, OW, gx)


@njit(parallel=True, cache=True, nogil=True)
def _im2col_parallel(x, KH, KW, SH, SW, PH, PW, OH, OW, col):
    N, C = x.shape[0], x.shape[1]
    for t in prange(N * C):
        _im2col_rows(x, t // C, t % C, KH, KW, SH, SW, PH, PW, 0, OH, OW, col[t // C])
    return col


@njit(parallel=True, cache=True, nogil=True)
def _col2im_parallel(col, KH, KW, SH, SW, PH, PW, OH, OW, gx):
    N, C = gx.shape[0], gx.shape[1]
    for t in prange(N * C):
        gx[t // C, t % C] = 0
        _col2im_rows(col[t // C], t // C, t % C, KH, KW, SH, SW, PH, PW, 0, OH, OW, gx)
    return gx


@threads.guarded
def im2col_cpu(x, kernel, stride, padding):
    """Numba im2col, parallel over (image, channel)."""
    N, C = x.shape[:2]
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    OH, OW = conv_output_size(x.shape, kernel, stride, padding)
    col = np.empty((N, C * KH * KW, OH * OW), dtype=x.dtype)
    return _im2col_parallel(x, KH, KW, SH, SW, PH, PW, OH, OW, col)


@threads.guarded
def col2im_cpu(col, x_shape, kernel, stride, padding):
    """Numba col2im, parallel over (image, channel): each task owns one plane of gx."""
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    OH, OW = conv_output_size(x_shape, kernel, stride, padding)
    gx = np.empty(x_shape, dtype=col.dtype)
    return _col2im_parallel(col, KH, KW, SH, SW, PH, PW, OH, OW, gx)


# ---------------------------------------------------------------- GPU (numba.cuda)
# NOTE: the simulator runs every CUDA thread as a Python thread: small blocks keep it quick.
_THREADS_PER_BLOCK = None
_gpu = {}
cuda = None  # numba.cuda once a GPU kernel is needed (a module global: the simulator swaps it)


def _gpu_kernels():
    """Compile the CUDA kernels on first use, so that the CPU path never imports numba.cuda."""
    global _THREADS_PER_BLOCK, cuda
    if _gpu:
        return _gpu
    from numba import cuda as numba_cuda
    cuda = numba_cuda
    _THREADS_PER_BLOCK = 32 if cuda_simulator_enabled() else 256

    @cuda.jit
    def im2col_kernel(x, col, KH, KW, SH, SW, PH, PW, OH, OW):
        # one thread per element of col (N, C*KH*KW, OH*OW); consecutive threads write
        # consecutive output positions
        N, C, H, W = x.shape
        R, Q = col.shape[1], col.shape[2]
        t = cuda.grid(1)
        if t >= N * R * Q:
            return
        n = t // (R * Q)
        r = (t // Q) % R
        q = t % Q
        c = r // (KH * KW)
        i = (r // KW) % KH
        j = r % KW
        h = (q // OW) * SH + i - PH
        w = (q % OW) * SW + j - PW
        if h >= 0 and h < H and w >= 0 and w < W:
            col[n, r, q] = x[n, c, h, w]
        else:
            col[n, r, q] = 0

    @cuda.jit
    def col2im_kernel(col, gx, KH, KW, SH, SW, PH, PW, OH, OW):
        # one thread per element of gx: gathers the columns that read it (no atomics, so the
        # sum is deterministic)
        N, C, H, W = gx.shape
        t = cuda.grid(1)
        if t >= N * C * H * W:
            return
        n = t // (C * H * W)
        c = (t // (H * W)) % C
        h = (t // W) % H
        w = t % W
        acc = 0.0
        for i in range(KH):
            dh = h + PH - i
            if dh >= 0 and dh % SH == 0 and dh // SH < OH:
                for j in range(KW):
                    dw = w + PW - j
                    if dw >= 0 and dw % SW == 0 and dw // SW < OW:
                        acc += col[n, (c * KH + i) * KW + j, (dh // SH) * OW + dw // SW]
        gx[n, c, h, w] = acc

    _gpu.update(im2col=im2col_kernel, col2im=col2im_kernel)
    return _gpu


def _launch(kernel, n, xp, *args):
    """Launch a 1-D grid of n threads, on CuPy's current stream when the arrays are CuPy's."""
    launch(cuda, kernel, max(1, -(-n // _THREADS_PER_BLOCK)), _THREADS_PER_BLOCK, xp, *args)


def im2col_gpu(x, kernel, stride, padding):
    """numba.cuda im2col: CuPy in, CuPy out (NumPy in the simulator)."""
    xp = get_array_module(x)
    k = _gpu_kernels()
    N, C = x.shape[:2]
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    OH, OW = conv_output_size(x.shape, kernel, stride, padding)
    col = xp.empty((N, C * KH * KW, OH * OW), dtype=x.dtype)
    _launch(k["im2col"], col.size, xp, xp.ascontiguousarray(x), col, KH, KW, SH, SW, PH, PW,
            OH, OW)
    return col


def col2im_gpu(col, x_shape, kernel, stride, padding):
    """numba.cuda col2im (a gather per input element): CuPy in, CuPy out."""
    xp = get_array_module(col)
    k = _gpu_kernels()
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    OH, OW = conv_output_size(x_shape, kernel, stride, padding)
    gx = xp.empty(x_shape, dtype=col.dtype)
    _launch(k["col2im"], gx.size, xp, xp.ascontiguousarray(col), gx, KH, KW, SH, SW, PH, PW,
            OH, OW)
    return gx


# ---------------------------------------------------------------- public
def _check_impl(impl, x):
    if impl is None:
        return "gpu" if is_gpu_array(x) else "cpu"
    if impl not in ("reference", "cpu", "gpu"):
        raise ValueError(f"impl must be 'reference', 'cpu' or 'gpu', got {impl!r}")
    return impl


def _check_float(x, name):
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must be float32 or float64, got {x.dtype}")


def im2col(x, kernel, stride=1, padding=0, impl=None):
    """Patches of x (N, C, H, W) as col (N, C*KH*KW, OH*OW); see the layout note above."""
    kernel, stride = pair(kernel, "kernel"), pair(stride, "stride")
    padding = pair(padding, "padding")
    _check_float(x, "x")
    conv_output_size(x.shape, kernel, stride, padding)
    impl = _check_impl(impl, x)
    if impl == "reference":
        return im2col_reference(x, kernel, stride, padding)
    if impl == "cpu":
        return im2col_cpu(np.ascontiguousarray(x), kernel, stride, padding)
    return im2col_gpu(x, kernel, stride, padding)


def col2im(col, x_shape, kernel, stride=1, padding=0, impl=None):
    """Sum the columns col (N, C*KH*KW, OH*OW) back into an array of shape x_shape."""
    kernel, stride = pair(kernel, "kernel"), pair(stride, "stride")
    padding = pair(padding, "padding")
    _check_float(col, "col")
    x_shape = tuple(int(s) for s in x_shape)
    OH, OW = conv_output_size(x_shape, kernel, stride, padding)
    N, C = x_shape[:2]
    want = (N, C * kernel[0] * kernel[1], OH * OW)
    if tuple(col.shape) != want:
        raise ValueError(f"col has shape {tuple(col.shape)}, expected {want} for x of shape "
                         f"{x_shape}, kernel {kernel}, stride {stride}, padding {padding}")
    impl = _check_impl(impl, col)
    if impl == "reference":
        return col2im_reference(col, x_shape, kernel, stride, padding)
    if impl == "cpu":
        return col2im_cpu(np.ascontiguousarray(col), x_shape, kernel, stride, padding)
    return col2im_gpu(col, x_shape, kernel, stride, padding)


