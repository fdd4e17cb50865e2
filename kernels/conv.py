"""2-D convolution (PyTorch's conv2d, cross-correlation) forward and backward by im2col + GEMM;
groups other than 1 go to kernels/depthwise.py (one input channel per group) or
kernels/grouped.py (any other grouping)."""
import numpy as np

from . import conv_cpu, depthwise, grouped, threads
from .channel_sums import channel_sums
from ._xp import get_array_module, pair, pick_impl
from .im2col import col2im, conv_output_size, im2col
from .relu import relu_backward_channel_sums


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
@threads.guarded
def conv2d_forward_cpu(x, W, b, stride, padding, relu=False, winograd_filters=None):
    """Numba threads, single-threaded BLAS products per image block, bias and ReLU fused."""
    kernel, stride, padding, OH, OW = _check_args(x, W, b, stride, padding)
    return conv_cpu.forward(x, W, b, kernel, stride, padding, OH, OW, relu, winograd_filters)


@threads.guarded
def conv2d_backward_cpu(gy, x, W, stride, padding, need_gx=True, need_gW=True, need_gb=True,
                        relu_input=False):
    """Numba threads: gW accumulated per thread, gx as the adjoint of the forward products;
    relu_input: see conv2d_backward_relu_input (then a fourth value)."""
    kernel, stride, padding, OH, OW = _check_args(x, W, None, stride, padding)
    N, F = x.shape[0], W.shape[0]
    if tuple(gy.shape) != (N, F, OH, OW):
        raise ValueError(f"conv2d backward: gy has shape {tuple(gy.shape)}, expected "
                         f"{(N, F, OH, OW)}")
    gb = channel_sums(gy).astype(x.dtype) if need_gb else None
    if relu_input:
        gx, gW, sums = conv_cpu.backward(gy, x, W, kernel, stride, padding, OH, OW, need_gx,
                                         need_gW, relu_input=True)
        return gx, gW, gb, sums
    gx = gW = None
    if need_gx or need_gW:
        gx, gW = conv_cpu.backward(gy, x, W, kernel, stride, padding, OH, OW, need_gx, need_gW)
    return gx, gW, gb


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
def conv2d_forward(x, W, b=None, stride=1, padding=0, relu=False, impl=None, groups=1,
                   winograd_filters=None):
    """y (N, F, OH, OW) = conv2d(x (N, C, H, W), W (F, C/groups, KH, KW)) + b (F,), then ReLU
    if asked. winograd_filters: None, or m -> kernels.winograd.filter_transform(W, m), which
    the CPU's Winograd path then calls instead of transforming W (an inference caller keeps
    the transform between calls)."""
    impl = pick_impl(impl, x)
    if groups != 1:
        grouped.check_groups(x, W, b, groups)
        if grouped.is_depthwise(x, W, groups):
            y = depthwise.depthwise_conv2d_forward(x, W, b, stride, padding, impl=impl)
        else:
            y = grouped.grouped_forward(x, W, b, stride, padding, groups, impl)
        if relu:
            get_array_module(y).maximum(y, 0, out=y)
        return y
    if impl == "reference":
        return conv2d_forward_reference(x, W, b, stride, padding, relu)
    if impl == "cpu":
        return conv2d_forward_cpu(x, W, b, stride, padding, relu, winograd_filters)
    return conv2d_forward_gpu(x, W, b, stride, padding, relu)


def conv2d_backward(gy, x, W, stride=1, padding=0, need_gx=True, need_gW=True, need_gb=True,
                    impl=None, groups=1):
    """(gx, gW, gb) for y = conv2d(x, W, b, groups=groups); each is None where not needed."""
    impl = pick_impl(impl, x)
    if groups != 1:
        grouped.check_groups(x, W, None, groups)
        if grouped.is_depthwise(x, W, groups):
            return depthwise.depthwise_conv2d_backward(gy, x, W, stride, padding, need_gx,
                                                       need_gW, need_gb, impl=impl)
        return grouped.grouped_backward(gy, x, W, stride, padding, groups, need_gx, need_gW,
                                        need_gb, impl)
    if impl == "reference":
        return conv2d_backward_reference(gy, x, W, stride, padding, need_gx, need_gW, need_gb)
    if impl == "cpu":
        return conv2d_backward_cpu(gy, x, W, stride, padding, need_gx, need_gW, need_gb)
    return conv2d_backward_gpu(gy, x, W, stride, padding, need_gx, need_gW, need_gb)


def conv2d_backward_relu_input(gy, x, W, stride=1, padding=0, need_gW=True, need_gb=True,
                               impl=None):
    """(gx, gW, gb, sums) for y = conv2d(x, W, b) whose input x is a ReLU's output z = relu(u):
    gx is the gradient of u, relu_backward(the gradient of x, x), and sums its channel sums,
    both as relu_backward_channel_sums gives them (the same bits; float64 sums on the CPU),
    where the CPU's Winograd path masks and sums in the pass that writes the gradient."""
    impl = pick_impl(impl, x)
    if impl == "cpu":
        return conv2d_backward_cpu(gy, x, W, stride, padding, True, need_gW, need_gb,
                                   relu_input=True)
    gx, gW, gb = conv2d_backward(gy, x, W, stride, padding, True, need_gW, need_gb, impl=impl)
    gx, sums = relu_backward_channel_sums(gx, x, impl=impl)
    return gx, gW, gb, sums
