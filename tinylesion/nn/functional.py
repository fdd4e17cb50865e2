"""The functional interface (torch.nn.functional's names): one-line wrappers over the ops.

The first argument is named `input`, as in torch.nn.functional, so that keyword calls carry
over; PyTorch arguments that tinylesion does not implement are accepted at their default
values and named in a NotImplementedError otherwise.
"""
import warnings

import numpy as np

from kernels.pool import pooled_size

from .. import backend, ops
from ..backend import get_array_module
from ..errors import InputError
from ..tensor import Tensor, is_grad_enabled
from .loss_functions import (  # noqa: F401  (torch.nn.functional's names)
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, l1_loss,
    mse_loss, nll_loss)


def _pair(value, name):
    """An int or a pair of ints as a pair of non-negative ints."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 0 for v in pair):
        raise ValueError(f"{name} must be an int or a pair of non-negative ints, not {value!r}")
    return int(pair[0]), int(pair[1])


# PyTorch arguments that tinylesion takes only at their default value
_ONLY_DEFAULT = {"dilation": 1, "groups": 1, "padding": 0, "ceil_mode": False,
                 "return_indices": False, "padding_mode": "zeros"}


def _only_default(function, **given):
    """Raise NotImplementedError naming any of these arguments given other than its default."""
    for name, value in given.items():
        default = _ONLY_DEFAULT[name]
        if name in ("dilation", "padding"):  # an int or a pair
            is_default = _pair(value, name) == (default, default)
        else:
            is_default = isinstance(value, type(default)) and value == default
        if not is_default:
            raise NotImplementedError(f"{function}: {name}={value!r} is not implemented "
                                      f"(only {name}={default!r})")


def _array(value):
    """The backend array of a Tensor, or the array itself (running statistics)."""
    return value.array if isinstance(value, Tensor) else value


def linear(input, weight, bias=None):
    """x Wᵀ + b, with W of shape (out_features, in_features)."""
    x = input
    if x.ndim == 0 or weight.ndim != 2:
        raise InputError(f"linear: needs an input of at least 1 dimension and a 2-D weight, "
                         f"got input {x.shape} and weight {weight.shape}")
    if x.shape[-1] != weight.shape[1]:
        raise InputError(f"linear: input has {x.shape[-1]} features but the weight expects "
                         f"{weight.shape[1]} (weight shape {weight.shape})")
    return ops.Linear.apply(x, weight, bias)


def _same_padding(kernel):
    """(top, bottom, left, right) keeping the size at stride 1 (extra pixel at the end)."""
    (KH, KW) = kernel
    return (KH - 1) // 2, KH - 1 - (KH - 1) // 2, (KW - 1) // 2, KW - 1 - (KW - 1) // 2


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution of x (N, C, H, W) with weight (F, C/groups, KH, KW); padding may be
    'same'. groups splits the channels as in PyTorch (groups=C: depthwise).

    dilation other than 1 is not implemented (a NotImplementedError says so)."""
    _only_default("conv2d", dilation=dilation)
    return _conv2d(input, weight, bias, stride, padding, groups, relu=False)


def _conv2d(x, weight, bias, stride, padding, groups, relu, pool=None, winograd_filters=None,
            batch_norm=None):
    """conv2d, then ReLU in the same output pass when relu (nn.Sequential's fusion); then, with
    pool = (kernel_size, stride, padding, ceil_mode) and relu, max pooling in the same op (its
    backward one pass through the pooling, the ReLU's mask and the bias gradient's sums);
    winograd_filters: see kernels.conv2d_forward.
    batch_norm (groups 1, no relu nor pool): batch_norm's keyword arguments but `training`,
    applied with the batch's statistics in the same op (its backward sums the bias gradient in
    the pass that writes the batch norm's input gradient)."""
    if x.ndim != 4:
        raise InputError(f"conv2d expects input of shape (N, C, H, W), got {x.shape}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, not {groups!r}")
    if weight.ndim != 4 or weight.shape[1] * groups != x.shape[1]:
        raise InputError(f"conv2d: input has {x.shape[1]} channels but the weight "
                         f"{weight.shape} with groups={groups} expects "
                         f"{weight.shape[1] * groups if weight.ndim == 4 else '?'}")
    if weight.shape[0] % groups:
        raise ValueError(f"conv2d: the weight's {weight.shape[0]} output channels are not "
                         f"divisible by groups={groups}")
    stride = _pair(stride, "stride")
    if min(stride) < 1:
        raise ValueError(f"stride must be positive, not {stride}")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' needs stride 1 (as in PyTorch)")
            top, bottom, left, right = _same_padding(weight.shape[2:])
            if (top, left) != (bottom, right):  # even kernel: pad the extra pixel first
                x = ops.Pad2d.apply(x, padding=(left, right, top, bottom))
                padding = (0, 0)
            else:
                padding = (top, left)
        else:
            raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', not {padding!r}")
    padding = _pair(padding, "padding")
    H, W = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    KH, KW = weight.shape[2:]
    if H < KH or W < KW:
        raise ValueError(f"conv2d: input of {x.shape[2]}x{x.shape[3]} (padded {H}x{W}) is "
                         f"smaller than the {KH}x{KW} kernel")
    if batch_norm is not None:
        if groups != 1 or relu or pool is not None:
            raise ValueError("conv2d with batch_norm: groups 1 only, no ReLU nor pooling")
        return _conv2d_batch_norm(x, weight, bias, stride, padding, batch_norm)
    if pool is not None and relu:
        SH, SW = stride
        shape = x.shape[:2] + ((H - KH) // SH + 1, (W - KW) // SW + 1)
        kernel, pool_stride, pool_padding = _max_pool_args(shape, *pool)
        return ops.Conv2dReluMaxPool.apply(x, weight, bias, stride=stride, padding=padding,
                                           groups=int(groups), kernel=kernel,
                                           pool_stride=pool_stride, pool_padding=pool_padding,
                                           ceil_mode=bool(pool[3]))
    return ops.Conv2d.apply(x, weight, bias, stride=stride, padding=padding,
                            groups=int(groups), relu=relu, winograd_filters=winograd_filters)


def _conv2d_batch_norm(x, weight, bias, stride, padding, bn):
    """batch_norm(conv2d(x), training=True, **bn) as one op (ops.Conv2dBatchNorm), with the
    checks of the two functions apart."""
    (SH, SW), (PH, PW) = stride, padding
    KH, KW = weight.shape[2:]
    shape = (x.shape[0], weight.shape[0], (x.shape[2] + 2 * PH - KH) // SH + 1,
             (x.shape[3] + 2 * PW - KW) // SW + 1)
    if shape[0] * shape[2] * shape[3] < 2:
        raise ValueError(f"batch_norm in training needs more than one value per channel, "
                         f"got input of shape {shape}")
    C, xp = weight.shape[0], x.xp
    gamma = bn["weight"] if bn["weight"] is not None else Tensor(xp.ones(C, dtype=x.dtype))
    beta = bn["bias"] if bn["bias"] is not None else Tensor(xp.zeros(C, dtype=x.dtype))
    running_mean, running_var = bn["running_mean"], bn["running_var"]
    return ops.Conv2dBatchNorm.apply(
        x, weight, bias, gamma, beta, stride=stride, padding=padding, eps=bn["eps"],
        momentum=bn["momentum"],
        running_mean=None if running_mean is None else _array(running_mean),
        running_var=None if running_var is None else _array(running_var))


def _max_pool_args(shape, kernel_size, stride, padding, ceil_mode):
    """(kernel, stride, padding) pairs of a max pooling of an input of `shape`, checked."""
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding = _pair(padding, "padding")
    if min(kernel) < 1 or min(stride) < 1:
        raise ValueError(f"kernel_size {kernel} and stride {stride} must be positive")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"max_pool2d: padding {padding} should be at most half of the "
                         f"kernel size {kernel}")
    if min(pooled_size(n, k, s, p, bool(ceil_mode))
           for n, k, s, p in zip(shape[-2:], kernel, stride, padding)) < 1:
        raise ValueError(f"max_pool2d: input of {shape[-2]}x{shape[-1]} (padding "
                         f"{padding}) is smaller than the {kernel[0]}x{kernel[1]} window")
    return kernel, stride, padding


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max-pooling over kernel_size windows (stride defaults to kernel_size) as PyTorch's:
    `padding` (at most half the kernel) never wins a maximum; ceil_mode rounds the output size
    up, keeping only windows that start inside the input or its left padding.

    dilation and return_indices are not implemented beyond their defaults.
    """
    _only_default("max_pool2d", dilation=dilation, return_indices=return_indices)
    x = input
    _pool_input(x, "max_pool2d")
    kernel, stride, padding = _max_pool_args(x.shape, kernel_size, stride, padding, ceil_mode)
    if x.ndim == 3:  # (C, H, W), as PyTorch takes it
        y = ops.MaxPool2d.apply(x.reshape((1,) + x.shape), kernel=kernel, stride=stride,
                                padding=padding, ceil_mode=bool(ceil_mode))
        return y.reshape(y.shape[1:])
    return ops.MaxPool2d.apply(x, kernel=kernel, stride=stride, padding=padding,
                               ceil_mode=bool(ceil_mode))


def _relu_max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """max_pool2d(relu(x)) as one op (nn.Sequential's fusion of ReLU and MaxPool2d)."""
    _pool_input(x, "max_pool2d")
    kernel, stride, padding = _max_pool_args(x.shape, kernel_size, stride, padding, ceil_mode)
    args = dict(kernel=kernel, stride=stride, padding=padding, ceil_mode=bool(ceil_mode))
    if x.ndim == 3:  # (C, H, W), as PyTorch takes it
        y = ops.ReluMaxPool.apply(x.reshape((1,) + x.shape), **args)
        return y.reshape(y.shape[1:])
    return ops.ReluMaxPool.apply(x, **args)


def pad2d(x, padding):
    """Zero padding of the last two axes: an int, (left, right, top, bottom) as ZeroPad2d, or
    (left, right) for the last axis only (as torch.nn.functional.pad reads two numbers)."""
    if isinstance(padding, (int, np.integer)):
        padding = (padding,) * 4
    padding = tuple(int(p) for p in padding)
    if len(padding) == 2:
        padding += (0, 0)
    if len(padding) != 4 or min(padding) < 0:
        raise ValueError(f"padding must be a non-negative int, (left, right, top, bottom) or "
                         f"(left, right), not {padding}")
    return ops.Pad2d.apply(x, padding=padding)


def _channel_shape(x):
    """Broadcast shape of per-channel parameters: (1, C) or (1, C, 1, 1)."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over (N[, H, W]) per channel; in training, batch statistics are
    used and the running ones (Tensors or arrays) updated in place (unbiased variance), as
    PyTorch does."""
    x = input
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"batch_norm expects (N, C), (N, C, L) or (N, C, H, W), got {x.shape}")
    C = x.shape[1]
    xp = x.xp
    if weight is None:
        weight = Tensor(xp.ones(C, dtype=x.dtype))
    if bias is None:
        bias = Tensor(xp.zeros(C, dtype=x.dtype))
    if training:
        count = x.array.size // C
        if count < 2:
            raise ValueError(f"batch_norm in training needs more than one value per channel, "
                             f"got input of shape {x.shape}")
        x4 = x if x.ndim != 3 else x.reshape(x.shape[0], C, x.shape[2], 1)
        y = ops.BatchNormTrain.apply(
            x4, weight, bias, eps=eps, momentum=momentum,
            running_mean=None if running_mean is None else _array(running_mean),
            running_var=None if running_var is None else _array(running_var))
        return y if x.ndim != 3 else y.reshape(x.shape)
    # evaluation: a per-channel affine map built from differentiable ops
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm with training=False needs running_mean and running_var")
    shape = _channel_shape(x)
    scale = weight / Tensor(xp.sqrt(xp.asarray(_array(running_var)) + eps))
    shift = bias - Tensor(xp.asarray(_array(running_mean))) * scale
    if not (is_grad_enabled() and (x.requires_grad or scale.requires_grad or
                                   shift.requires_grad)) and scale.dtype == x.dtype:
        # NOTE: nothing to record: x * scale + shift in one pass into one new array (the same
        # roundings), instead of a temporary x * scale and a second pass.
        from kernels.channel_affine import channel_affine
        return Tensor._wrap(channel_affine(x.array, scale.array, shift.array))
    return x * scale.reshape(shape) + shift.reshape(shape)


def dropout(input, p=0.5, training=True, inplace=False):
    """Inverted dropout: zero with probability p, scale survivors by 1/(1−p); identity in eval.

    inplace is accepted for PyTorch's sake; the result is always a new tensor."""
    x = input
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], not {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return ops.Dropout.apply(x, p=p, rng=backend.generator(x.device))


def relu(input, inplace=False):
    """max(x, 0). inplace=True writes into `input`'s array when nothing is recorded (under
    no_grad: an activation fewer in memory), and the result shares it; otherwise the result
    is a new array."""
    if inplace and not is_grad_enabled() and _writable_float(input.array):
        return ops.ReLU.apply(input, inplace=True)
    return ops.ReLU.apply(input)


def _writable_float(a):
    """True for a C-contiguous, writeable float array (one a kernel can overwrite)."""
    return a.dtype.kind == "f" and a.flags.c_contiguous and getattr(a.flags, "writeable", True)


def sigmoid(input):
    """1 / (1 + e^−x)."""
    return ops.Sigmoid.apply(input)


def tanh(input):
    """The hyperbolic tangent."""
    return ops.Tanh.apply(input)


def softmax(input, axis=-1, dim=None):
    """e^x / Σ e^x along `axis` (`dim` is accepted as PyTorch's name)."""
    return ops.Softmax.apply(input, axis=axis if dim is None else dim)


def log_softmax(input, axis=-1, dim=None):
    """log softmax along `axis`, stable for logits of any size."""
    return ops.LogSoftmax.apply(input, axis=axis if dim is None else dim)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, negative_slope·x elsewhere (inplace is accepted for PyTorch's sake; the
    result is a new tensor)."""
    return ops.LeakyReLU.apply(input, negative_slope=float(negative_slope))


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x clipped to [min_val, max_val] (inplace is accepted for PyTorch's sake; the result is
    a new tensor)."""
    if max_val < min_val:
        raise ValueError(f"hardtanh: max_val ({max_val}) must not be smaller than min_val "
                         f"({min_val})")
    return ops.Hardtanh.apply(input, min_val=float(min_val), max_val=float(max_val))


def relu6(input, inplace=False):
    """min(max(x, 0), 6): hardtanh(x, 0, 6)."""
    return ops.Hardtanh.apply(input, min_val=0.0, max_val=6.0)


def silu(input, inplace=False):
    """x · σ(x) (the swish)."""
    return ops.SiLU.apply(input)


def hardswish(input, inplace=False):
    """x · relu6(x + 3) / 6."""
    return ops.Hardswish.apply(input)


def hardsigmoid(input, inplace=False):
    """relu6(x + 3) / 6."""
    return ops.Hardsigmoid.apply(input)


def one_hot(tensor, num_classes=-1):
    """Class indices of shape (*) as int64 rows of shape (*, num_classes), 1 at each index;
    num_classes=-1 takes the largest index + 1. Not differentiable."""
    t = _array(tensor)
    t = t if hasattr(t, "dtype") else np.asarray(t)
    xp = get_array_module(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"one_hot needs integer class indices, not {t.dtype}")
    if num_classes == -1:
        if t.size == 0:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor")
        num_classes = int(t.max()) + 1
    if num_classes < 1:
        raise ValueError(f"one_hot: num_classes must be positive or -1, not {num_classes}")
    if t.size and int(t.min()) < 0:
        raise ValueError(f"one_hot: class values must be non-negative, got {int(t.min())}")
    if t.size and int(t.max()) >= num_classes:
        raise ValueError(f"one_hot: class value {int(t.max())} is not smaller than "
                         f"num_classes={num_classes}")
    return Tensor._wrap((t[..., None] == xp.arange(num_classes)).astype(np.int64))


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(input, pad, mode="constant", value=None):
    """Pad the last len(pad) // 2 axes as torch.nn.functional.pad: pad = (left, right) of the
    last axis, then of the one before, ...; negative numbers crop. mode 'constant' (with
    `value`, default 0), or 'reflect', 'replicate', 'circular' (nn/padding.py)."""
    x = input
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {PAD_MODES}, not {mode!r}")
    pad = tuple(pad)
    if not all(isinstance(p, (int, np.integer)) for p in pad):
        raise TypeError(f"pad: the padding must be ints, not {pad!r}")
    if len(pad) % 2 or len(pad) > 2 * x.ndim:
        raise ValueError(f"pad: the padding {pad} must hold an even number of ints, at most "
                         f"two per dimension of the {x.ndim}-D input")
    if mode != "constant":
        from .padding import copy_pad
        return copy_pad(x, pad, mode, value)
    # (before, after) per axis, from the first padded axis to the last
    widths = [(int(pad[i]), int(pad[i + 1])) for i in range(len(pad) - 2, -1, -2)]
    sizes = x.shape[x.ndim - len(widths):]
    for (before, after), n in zip(widths, sizes):
        if n + before + after < 0:
            raise ValueError(f"pad: padding {pad} leaves a negative size for input {x.shape}")
    return ops.ConstantPad.apply(x, widths=widths, value=0.0 if value is None else value)


def _pooled_sizes(x, kernel, stride, padding, ceil_mode):
    """PyTorch's pooled (height, width) of x, or None when a side would be empty (with
    ceil_mode a kernel larger than the padded input still gives one clipped window)."""
    sizes = tuple(pooled_size(n, k, s, p, bool(ceil_mode))
                  for n, k, s, p in zip(x.shape[-2:], kernel, stride, padding))
    return sizes if min(sizes) >= 1 else None


def _pool_input(x, function):
    if x.ndim not in (3, 4):
        raise ValueError(f"{function} expects input of shape (N, C, H, W) or (C, H, W), got "
                         f"{x.shape}")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """The mean over kernel windows (stride defaults to kernel_size) after zero padding, as
    PyTorch's: ceil_mode rounds the output size up (the last window starts inside the input or
    its left padding); the divisor is the window's size clipped to the padded input
    (count_include_pad), its positions inside the input (count_include_pad=False), or
    divisor_override."""
    x = input
    _pool_input(x, "avg_pool2d")
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding = _pair(padding, "padding")
    if min(kernel) < 1 or min(stride) < 1:
        raise ValueError(f"avg_pool2d: kernel_size {kernel} and stride {stride} must be "
                         "positive")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"avg_pool2d: padding {padding} should be at most half of the "
                         f"kernel size {kernel}")
    if divisor_override is not None and (not isinstance(divisor_override, (int, np.integer))
                                         or divisor_override == 0):
        raise ValueError(f"avg_pool2d: divisor_override must be a non-zero int, not "
                         f"{divisor_override!r}")
    H, W = x.shape[-2] + 2 * padding[0], x.shape[-1] + 2 * padding[1]
    if _pooled_sizes(x, kernel, stride, padding, ceil_mode) is None:
        raise ValueError(f"avg_pool2d: input of {x.shape[-2]}x{x.shape[-1]} (padded {H}x{W}) "
                         f"is smaller than the {kernel[0]}x{kernel[1]} window")
    return ops.AvgPool2d.apply(x, kernel=kernel, stride=stride, padding=padding,
                               ceil_mode=bool(ceil_mode),
                               count_include_pad=bool(count_include_pad),
                               divisor_override=divisor_override)


def adaptive_avg_pool2d(input, output_size):
    """The mean over PyTorch's adaptive bins (bin i of an axis of n entries covers
    ⌊i·n/out⌋ to ⌈(i+1)·n/out⌉), for any output size; None keeps that axis's size.
    output_size=1 is global average pooling."""
    x = input
    _pool_input(x, "adaptive_avg_pool2d")
    sizes = (output_size, output_size) if not isinstance(output_size, (tuple, list)) \
        else tuple(output_size)
    if len(sizes) != 2 or output_size is None:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair, not "
                         f"{output_size!r}")
    H, W = x.shape[-2:]
    OH, OW = (n if s is None else s for s, n in zip(sizes, (H, W)))
    if not all(isinstance(s, (int, np.integer)) and s >= 1 for s in (OH, OW)):
        raise ValueError(f"adaptive_avg_pool2d: output_size must hold positive ints (or None), "
                         f"not {output_size!r}")
    if H < 1 or W < 1:
        raise ValueError(f"adaptive_avg_pool2d: input of shape {x.shape} is empty")
    if H % OH == 0 and W % OW == 0:  # equal windows without overlap: plain average pooling
        kernel = (H // OH, W // OW)
        return ops.AvgPool2d.apply(x, kernel=kernel, stride=kernel)
    return ops.AdaptiveAvgPool2d.apply(x, output_size=(int(OH), int(OW)))


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Channel dropout: zero whole channels x[n, c] with probability p and scale the others
    by 1/(1−p); the identity in evaluation. As in PyTorch, a 3-D input is read as (N, C, L)
    (with its warning), and inputs other than 3-D or 4-D are warned about."""
    x = input
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], not {p}")
    if x.ndim < 2:
        raise ValueError(f"dropout2d expects input of shape (N, C, H, W), got {x.shape}")
    if x.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is "
                      "deprecated; dropout2d is meant for 3-D or 4-D inputs.", UserWarning,
                      stacklevel=2)
    if x.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that "
                      "channel-wise 1D dropout behavior is desired - input is interpreted as "
                      "shape (N, C, L), where C is the channel dim.", UserWarning, stacklevel=2)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    mask_shape = x.shape[:2] + (1,) * (x.ndim - 2)
    return ops.Dropout.apply(x, p=p, rng=backend.generator(x.device), shape=mask_shape)


from .gelu import gelu  # noqa: E402,F401  (torch.nn.functional's names, in their own modules)
from .normalization import layer_norm  # noqa: E402,F401
from .attention import scaled_dot_product_attention  # noqa: E402,F401
from .upsampling import interpolate, upsample  # noqa: E402,F401
from .normalize import normalize  # noqa: E402,F401
from .elu import celu, elu, selu  # noqa: E402,F401
from .embedding import embedding  # noqa: E402,F401
from .group_norm import group_norm  # noqa: E402,F401
from .prelu import prelu  # noqa: E402,F401
from .distance import cosine_similarity, pairwise_distance  # noqa: E402,F401
from .softplus import logsigmoid, mish, softplus, softsign  # noqa: E402,F401
from .more_losses import (cosine_embedding_loss, huber_loss, kl_div,  # noqa: E402,F401
                          margin_ranking_loss, smooth_l1_loss, triplet_margin_loss)
from .conv_transpose import conv_transpose1d, conv_transpose2d  # noqa: E402,F401
from .layers1d import avg_pool1d, conv1d, max_pool1d  # noqa: E402,F401
from .instance_norm import instance_norm  # noqa: E402,F401
from .pixel_shuffle import pixel_shuffle, pixel_unshuffle  # noqa: E402,F401
from .fold import fold, unfold  # noqa: E402,F401
from .adaptive_max_pool import adaptive_max_pool1d, adaptive_max_pool2d  # noqa: E402,F401
from .more_layers import (bilinear, dropout1d, dropout3d, glu, softmin,  # noqa: E402,F401
                          threshold)
from .likelihood_losses import (gaussian_nll_loss, hinge_embedding_loss,  # noqa: E402,F401
                                multi_margin_loss, multilabel_soft_margin_loss,
                                poisson_nll_loss, soft_margin_loss)
