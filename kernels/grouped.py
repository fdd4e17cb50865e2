"""Grouped 2-D convolution (PyTorch's conv2d with groups=G): per-group im2col + batched GEMM.

x is (N, C, H, W) and W is (F, C/G, KH, KW): the output channels [g·F/G, (g+1)·F/G) read only
the input channels [g·C/G, (g+1)·C/G). The column matrix of x, whose rows are ordered channel
by channel, splits into G row blocks, one per group, so one batched product over (image, group)
does all the groups at once. Depthwise layers (G = C, W of shape (k·C, 1, KH, KW)) go to
kernels/depthwise.py instead.
"""
import numpy as np

from ._xp import get_array_module, pair
from .im2col import col2im, conv_output_size, im2col


def check_groups(x, W, b, groups):
    """ValueError naming the problem unless x (N, C, H, W), W (F, C/groups, KH, KW) and b (F,)
    fit `groups`."""
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    if x.ndim != 4 or W.ndim != 4:
        raise ValueError(f"conv2d: x must be NCHW and W (F, C/groups, KH, KW), got shapes "
                         f"{tuple(x.shape)} and {tuple(W.shape)}")
    C, F = x.shape[1], W.shape[0]
    if C % groups or F % groups:
        raise ValueError(f"conv2d: groups={groups} must divide the {C} input channels and the "
                         f"{F} output channels")
    if W.shape[1] * groups != C:
        raise ValueError(f"conv2d: with groups={groups}, W of shape {tuple(W.shape)} expects "
                         f"{W.shape[1] * groups} input channels, but x has {C} (shape "
                         f"{tuple(x.shape)})")
    if x.dtype not in (np.float32, np.float64) or W.dtype != x.dtype:
        raise ValueError(f"conv2d: x and W must both be float32 or both float64, got "
                         f"{x.dtype} and {W.dtype}")
    if b is not None and tuple(b.shape) != (F,):
        raise ValueError(f"conv2d: b must have shape ({F},), got {tuple(b.shape)}")


def is_depthwise(x, W, groups):
    """True when every group is one input channel (PyTorch's depthwise convolution)."""
    return groups > 1 and groups == x.shape[1] and W.shape[1] == 1


def grouped_forward(x, W, b, stride, padding, groups, impl):
    """y (N, F, OH, OW): im2col by `impl`, then y[n, g] = W[g] @ col[n, g] for every (n, g)."""
    check_groups(x, W, b, groups)
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    kernel = tuple(W.shape[2:])
    OH, OW = conv_output_size(x.shape, kernel, stride, padding)
    xp = get_array_module(x)
    N, F, G = x.shape[0], W.shape[0], groups
    rows = W[0].size  # (C/G)·KH·KW: explicit, so that an empty batch (N = 0) reshapes too
    col = im2col(x, kernel, stride, padding, impl=impl).reshape(N, G, rows, OH * OW)
    y = xp.matmul(W.reshape(1, G, F // G, rows), col).reshape(N, F, OH, OW)
    if b is not None:
        y += b.reshape(1, F, 1, 1)
    return y


def grouped_backward(gy, x, W, stride, padding, groups, need_gx, need_gW, need_gb, impl):
    """(gx, gW, gb): gW[g] = Σₙ gy[n, g] col[n, g]ᵀ, gx = col2im(W[g]ᵀ gy[n, g])."""
    check_groups(x, W, None, groups)
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    kernel = tuple(W.shape[2:])
    OH, OW = conv_output_size(x.shape, kernel, stride, padding)
    xp = get_array_module(x)
    N, F, G = x.shape[0], W.shape[0], groups
    if tuple(gy.shape) != (N, F, OH, OW):
        raise ValueError(f"conv2d backward: gy has shape {tuple(gy.shape)}, expected "
                         f"{(N, F, OH, OW)}")
    gy4 = gy.reshape(N, G, F // G, OH * OW)
    W3 = W.reshape(G, F // G, -1)
    gx = gW = gb = None
    if need_gW:
        col = im2col(x, kernel, stride, padding, impl=impl).reshape(N, G, W[0].size, OH * OW)
        gW = xp.matmul(gy4, col.transpose(0, 1, 3, 2)).sum(axis=0).reshape(W.shape)
    if need_gb:
        gb = gy.sum(axis=(0, 2, 3))
    if need_gx:
        gcol = xp.matmul(W3.transpose(0, 2, 1)[None], gy4).reshape(N, G * W[0].size, OH * OW)
        gx = col2im(xp.ascontiguousarray(gcol), x.shape, kernel, stride, padding, impl=impl)
    return gx, gW, gb
