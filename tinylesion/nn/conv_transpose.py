"""The transposed convolution (a U-Net decoder's up-convolution): F.conv_transpose2d,
nn.ConvTranspose2d, and their 1-D forms on a height of 1, with torch's arguments (stride,
padding, output_padding, groups, dilation)."""
import numpy as np

from .. import backend, ops
from ..errors import InputError
from . import default_init
from .functional import _pair
from .module import Module, Parameter


def _positive_pair(value, name, function):
    pair = _pair(value, name)
    if min(pair) < 1:
        raise ValueError(f"{function}: {name} must be positive, not {value!r}")
    return pair


def _groups(groups, function):
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{function}: groups must be a positive int, not {groups!r}")
    return int(groups)


def transposed_size(n, kernel, stride, padding, output_padding, dilation):
    """The output length of a transposed convolution along one axis."""
    return (n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _show(sizes):
    """A size tuple as the caller gave it: a number for 1-D, the tuple for 2-D."""
    return sizes[0] if len(sizes) == 1 else sizes


def _checked_size(fn, x, weight, bias, stride, padding, output_padding, groups, dilation):
    """Check a transposed convolution's arguments (sizes as tuples of one entry per spatial
    axis) and return its output size along those axes."""
    groups = _groups(groups, fn)
    if weight.ndim != x.ndim or weight.shape[0] != x.shape[1]:
        raise InputError(f"{fn}: input has {x.shape[1]} channels but the weight of shape "
                         f"{weight.shape} expects weight.shape[0] of them")
    if x.shape[1] % groups:
        raise ValueError(f"{fn}: the input's {x.shape[1]} channels are not divisible by "
                         f"groups={groups}")
    if bias is not None and tuple(bias.shape) != (weight.shape[1] * groups,):
        raise InputError(f"{fn}: bias of shape {bias.shape} for "
                         f"{weight.shape[1] * groups} output channels")
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= max(s, d):
            raise ValueError(f"{fn}: output_padding {_show(output_padding)} must be smaller "
                             f"than either stride {_show(stride)} or dilation "
                             f"{_show(dilation)}")
    size = tuple(transposed_size(n, k, s, p, op, d) for n, k, s, p, op, d in zip(
        x.shape[2:], weight.shape[2:], stride, padding, output_padding, dilation))
    if min(size) < 1:
        raise ValueError(f"{fn}: the output size {_show(size)} of input {x.shape} is not "
                         f"positive (padding {_show(padding)} too large)")
    if x.dtype != weight.dtype or x.dtype.kind != "f":
        raise TypeError(f"{fn}: input and weight must have one floating dtype, not {x.dtype} "
                        f"and {weight.dtype}")
    return size, groups


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """The transposed convolution of x (N, C_in, H, W) (or (C_in, H, W)) with weight
    (C_in, C_out/groups, KH, KW): each input pixel spreads the kernel over the output, stride
    apart; output size (H − 1)·stride − 2·padding + dilation·(KH − 1) + output_padding
    + 1."""
    fn = "conv_transpose2d"
    x = input
    if x.ndim == 3:   # unbatched (C, H, W), as torch takes it
        y = conv_transpose2d(x.unsqueeze(0), weight, bias, stride, padding, output_padding,
                             groups, dilation)
        return y.squeeze(0)
    if x.ndim != 4:
        raise InputError(f"{fn}: expected input of shape (N, C, H, W) or (C, H, W), not "
                         f"{x.shape}")
    stride = _positive_pair(stride, "stride", fn)
    dilation = _positive_pair(dilation, "dilation", fn)
    padding, output_padding = _pair(padding, "padding"), _pair(output_padding, "output_padding")
    size, groups = _checked_size(fn, x, weight, bias, stride, padding, output_padding, groups,
                                 dilation)
    return ops.ConvTranspose2d.apply(x, weight, bias, stride=stride, padding=padding,
                                     dilation=dilation, groups=groups, size=size)


def _single(value, name, fn, least=0):
    """An int (or a 1-tuple of one) of at least `least`, as a 1-tuple."""
    from .layers1d import _single as single
    n = single(value, name)
    if n < least:
        raise ValueError(f"{fn}: {name} must be {'positive' if least else 'non-negative'}, "
                         f"not {value!r}")
    return (n,)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """The transposed convolution of x (N, C_in, L) (or (C_in, L)) with weight
    (C_in, C_out/groups, K): conv_transpose2d on a height of 1; output length
    (L − 1)·stride − 2·padding + dilation·(K − 1) + output_padding + 1."""
    fn = "conv_transpose1d"
    x = input
    if x.ndim == 2:   # unbatched (C, L), as torch takes it
        y = conv_transpose1d(x.unsqueeze(0), weight, bias, stride, padding, output_padding,
                             groups, dilation)
        return y.squeeze(0)
    if x.ndim != 3:
        raise InputError(f"{fn}: expected input of shape (N, C, L) or (C, L), not {x.shape}")
    stride, dilation = _single(stride, "stride", fn, 1), _single(dilation, "dilation", fn, 1)
    padding = _single(padding, "padding", fn)
    output_padding = _single(output_padding, "output_padding", fn)
    size, groups = _checked_size(fn, x, weight, bias, stride, padding, output_padding, groups,
                                 dilation)
    y = ops.ConvTranspose2d.apply(x.unsqueeze(2), weight.unsqueeze(2), bias,
                                  stride=(1,) + stride, padding=(0,) + padding,
                                  dilation=(1,) + dilation, groups=groups, size=(1,) + size)
    return y.squeeze(2)


def _output_padding(cls, x, output_size, kernel_size, stride, padding, dilation):
    """The output_padding that gives `output_size` (its last len(kernel_size) entries)."""
    axes = len(kernel_size)
    wanted = tuple(output_size)[-axes:]
    least = [transposed_size(n, k, s, p, 0, d) for n, k, s, p, d in zip(
        x.shape[-axes:], kernel_size, stride, padding, dilation)]
    extra = tuple(int(w) - n for w, n in zip(wanted, least))
    if len(wanted) != axes or any(not 0 <= e < max(s, d) for e, s, d in
                                  zip(extra, stride, dilation)):
        most = tuple(n + max(s, d) - 1 for n, s, d in zip(least, stride, dilation))
        raise ValueError(f"{cls}: output_size {tuple(output_size)} is not reachable: the "
                         f"sizes run from {_show(tuple(least))} to {_show(most)}")
    return extra



def _set_channels(module, cls, in_channels, out_channels, groups, padding_mode):
    """Check a transposed convolution's padding_mode and groups; set its channels and groups."""
    if padding_mode != "zeros":
        raise ValueError(f"{cls}: only padding_mode='zeros' is supported, not {padding_mode!r}")
    groups = _groups(groups, cls)
    for name, n in (("in_channels", in_channels), ("out_channels", out_channels)):
        if n % groups:
            raise ValueError(f"{cls}: {name} ({n}) must be divisible by groups ({groups})")
    module.in_channels, module.out_channels, module.groups = in_channels, out_channels, groups


def _make_parameters(module, bias, device, dtype):
    """The weight (in_channels, out_channels/groups, *kernel_size) and bias, drawn as torch's."""
    xp = backend.as_device("cpu" if device is None else device).xp
    dtype = np.dtype(backend.DEFAULT_DTYPE if dtype is None else dtype)
    module.weight = Parameter(xp.zeros((module.in_channels, module.out_channels // module.groups)
                                       + module.kernel_size, dtype))
    module.bias = Parameter(xp.zeros(module.out_channels, dtype)) if bias else None
    module.reset_parameters()

class ConvTranspose2d(Module):
    """The transposed 2-D convolution; weight (in_channels, out_channels/groups, KH, KW) and
    bias initialised as torch's (see default_init). forward(input, output_size=None):
    output_size picks the output_padding giving that size."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__()
        _set_channels(self, "ConvTranspose2d", in_channels, out_channels, groups, padding_mode)
        self.kernel_size = _positive_pair(kernel_size, "kernel_size", "ConvTranspose2d")
        self.stride = _positive_pair(stride, "stride", "ConvTranspose2d")
        self.dilation = _positive_pair(dilation, "dilation", "ConvTranspose2d")
        self.padding = _pair(padding, "padding")
        self.output_padding = _pair(output_padding, "output_padding")
        _make_parameters(self, bias, device, dtype)

    def reset_parameters(self):
        """Draw the weight and bias again (torch's default: fan_in from weight.shape[1:])."""
        default_init.reset_parameters(self.weight, self.bias)

    def _output_padding(self, x, output_size):
        if output_size is None:
            return self.output_padding
        return _output_padding(type(self).__name__, x, output_size, self.kernel_size,
                               self.stride, self.padding, self.dilation)

    def forward(self, input, output_size=None):
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                self._output_padding(input, output_size), self.groups,
                                self.dilation)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        for name, default in (("padding", (0, 0)), ("output_padding", (0, 0)),
                              ("dilation", (1, 1)), ("groups", 1)):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text if self.bias is not None else text + ", bias=False"


class ConvTranspose1d(Module):
    """The transposed 1-D convolution (ConvTranspose2d's op on a height of 1); weight
    (in_channels, out_channels/groups, K) and bias initialised as torch's (see default_init).
    forward(input, output_size=None): output_size picks the output_padding giving that
    length."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__()
        cls = "ConvTranspose1d"
        _set_channels(self, cls, in_channels, out_channels, groups, padding_mode)
        self.kernel_size = _single(kernel_size, "kernel_size", cls, 1)
        self.stride = _single(stride, "stride", cls, 1)
        self.dilation = _single(dilation, "dilation", cls, 1)
        self.padding = _single(padding, "padding", cls)
        self.output_padding = _single(output_padding, "output_padding", cls)
        _make_parameters(self, bias, device, dtype)

    def reset_parameters(self):
        """Draw the weight and bias again (torch's default: fan_in from weight.shape[1:])."""
        default_init.reset_parameters(self.weight, self.bias)

    def forward(self, input, output_size=None):
        output_padding = self.output_padding if output_size is None else _output_padding(
            "ConvTranspose1d", input, output_size, self.kernel_size, self.stride, self.padding,
            self.dilation)
        return conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                output_padding, self.groups, self.dilation)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        for name, default in (("padding", (0,)), ("output_padding", (0,)),
                              ("dilation", (1,)), ("groups", 1)):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text if self.bias is not None else text + ", bias=False"
