"""The 1-D layers (a sequence of length L per channel): conv1d, max_pool1d and avg_pool1d as
their 2-D versions over a height of 1, with torch's arguments."""
import numpy as np

from .. import backend
from ..errors import InputError
from . import default_init
from . import functional as F
from .module import Module, Parameter


def _single(value, name):
    """An int or a 1-tuple as an int."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an int or a 1-tuple, not {value!r}")
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {value!r}")
    return int(value)


def _as_2d(x, function):
    """x (N, C, L) or (C, L) as (N, C, 1, L), and whether it was unbatched."""
    if x.ndim not in (2, 3):
        raise InputError(f"{function}: expected input of shape (N, C, L) or (C, L), not "
                         f"{x.shape}")
    unbatched = x.ndim == 2
    x = x.unsqueeze(0) if unbatched else x
    return x.unsqueeze(2), unbatched


def _back(y, unbatched):
    y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


def _dilated(weight, dilation):
    """weight (F, C, K) with dilation − 1 zeros between its taps (differentiable): the
    convolution with it is the dilated convolution with weight."""
    if dilation == 1:
        return weight
    K = weight.shape[-1]
    spread = F.pad(weight.unsqueeze(-1), (0, dilation - 1)).reshape(*weight.shape[:2], -1)
    return spread[..., :(K - 1) * dilation + 1]


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution of x (N, C, L) with weight (F, C/groups, K), its taps dilation apart;
    padding may be 'same' or 'valid'."""
    dilation = _single(dilation, "dilation")
    if dilation < 1:
        raise ValueError(f"conv1d: dilation must be positive, not {dilation}")
    x, unbatched = _as_2d(input, "conv1d")
    if weight.ndim != 3:
        raise InputError(f"conv1d: weight must be (out_channels, in_channels/groups, K), not "
                         f"{weight.shape}")
    if isinstance(groups, int) and groups > 0 and x.shape[1] != weight.shape[1] * groups:
        raise InputError(f"conv1d: input {tuple(input.shape)} has {x.shape[1]} channels but "
                         f"the weight {tuple(weight.shape)} with groups={groups} expects "
                         f"{weight.shape[1] * groups}")
    weight = _dilated(weight, dilation)
    if not isinstance(padding, str):
        padding = (0, _single(padding, "padding"))
    y = F.conv2d(x, weight.unsqueeze(2), bias, (1, _single(stride, "stride")), padding,
                 groups=groups)
    return _back(y, unbatched)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max pooling over windows of kernel_size along the last axis (stride defaults to
    kernel_size), torch's padding and ceil_mode."""
    F._only_default("max_pool1d", dilation=_single(dilation, "dilation"),
                    return_indices=return_indices)
    x, unbatched = _as_2d(input, "max_pool1d")
    kernel = _single(kernel_size, "kernel_size")
    stride = kernel if stride is None else _single(stride, "stride")
    y = F.max_pool2d(x, (1, kernel), (1, stride), (0, _single(padding, "padding")),
                     ceil_mode=ceil_mode)
    return _back(y, unbatched)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """The mean over windows of kernel_size along the last axis, torch's padding rules."""
    x, unbatched = _as_2d(input, "avg_pool1d")
    kernel = _single(kernel_size, "kernel_size")
    stride = kernel if stride is None else _single(stride, "stride")
    y = F.avg_pool2d(x, (1, kernel), (1, stride), (0, _single(padding, "padding")),
                     ceil_mode, count_include_pad)
    return _back(y, unbatched)


class Conv1d(Module):
    """1-D convolution; weight (out_channels, in_channels/groups, K) and bias initialised as
    torch's (see default_init)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        F._only_default("Conv1d", padding_mode=padding_mode)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
            raise ValueError(f"Conv1d: groups must be a positive int, not {groups!r}")
        for name, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if n % groups:
                raise ValueError(f"Conv1d: {name} ({n}) must be divisible by groups ({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, int(groups)
        self.kernel_size = (_single(kernel_size, "kernel_size"),)
        self.stride = (_single(stride, "stride"),)
        self.dilation = (_single(dilation, "dilation"),)
        self.padding = padding if isinstance(padding, str) else (_single(padding, "padding"),)
        xp = backend.as_device("cpu" if device is None else device).xp
        dtype = np.dtype(backend.DEFAULT_DTYPE if dtype is None else dtype)
        self.weight = Parameter(xp.zeros((out_channels, in_channels // groups)
                                         + self.kernel_size, dtype))
        self.bias = Parameter(xp.zeros(out_channels, dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """Draw the weight and bias again (torch's default initialisation)."""
        default_init.reset_parameters(self.weight, self.bias)

    def forward(self, input):
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        return conv1d(input, self.weight, self.bias, self.stride[0], padding,
                      self.dilation[0], self.groups)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0,):
            text += f", padding={self.padding}"
        if self.dilation != (1,):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text if self.bias is not None else text + ", bias=False"


class MaxPool1d(Module):
    """Max pooling along the last axis (see max_pool1d)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        F._only_default("MaxPool1d", dilation=_single(dilation, "dilation"),
                        return_indices=return_indices)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode
        self.return_indices = return_indices

    def forward(self, input):
        return max_pool1d(input, self.kernel_size, self.stride, self.padding,
                          ceil_mode=self.ceil_mode)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool1d(Module):
    """Average pooling along the last axis (see avg_pool1d)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size = (_single(kernel_size, "kernel_size"),)
        self.stride = self.kernel_size if stride is None else (_single(stride, "stride"),)
        self.padding = (_single(padding, "padding"),)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, input):
        return avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
