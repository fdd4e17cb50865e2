"""The transposed convolution (a U-Net decoder's up-convolution): F.conv_transpose2d and
nn.ConvTranspose2d with torch's arguments (stride, padding, output_padding, groups, dilation)."""
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
    groups = _groups(groups, fn)
    if weight.ndim != 4 or weight.shape[0] != x.shape[1]:
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
            raise ValueError(f"{fn}: output_padding {output_padding} must be smaller than "
                             f"either stride {stride} or dilation {dilation}")
    size = tuple(transposed_size(n, k, s, p, op, d) for n, k, s, p, op, d in zip(
        x.shape[2:], weight.shape[2:], stride, padding, output_padding, dilation))
    if min(size) < 1:
        raise ValueError(f"{fn}: the output size {size} of input {x.shape} is not positive "
                         f"(padding {padding} too large)")
    if x.dtype != weight.dtype or x.dtype.kind != "f":
        raise TypeError(f"{fn}: input and weight must have one floating dtype, not {x.dtype} "
                        f"and {weight.dtype}")
    return ops.ConvTranspose2d.apply(x, weight, bias, stride=stride, padding=padding,
                                     dilation=dilation, groups=groups, size=size)


class ConvTranspose2d(Module):
    """The transposed 2-D convolution; weight (in_channels, out_channels/groups, KH, KW) and
    bias initialised as torch's (see default_init). forward(input, output_size=None):
    output_size picks the output_padding giving that size."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d: only padding_mode='zeros' is supported, not "
                             f"{padding_mode!r}")
        groups = _groups(groups, "ConvTranspose2d")
        for name, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if n % groups:
                raise ValueError(f"ConvTranspose2d: {name} ({n}) must be divisible by groups "
                                 f"({groups})")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _positive_pair(kernel_size, "kernel_size", "ConvTranspose2d")
        self.stride = _positive_pair(stride, "stride", "ConvTranspose2d")
        self.dilation = _positive_pair(dilation, "dilation", "ConvTranspose2d")
        self.padding = _pair(padding, "padding")
        self.output_padding = _pair(output_padding, "output_padding")
        xp = backend.as_device("cpu" if device is None else device).xp
        dtype = np.dtype(backend.DEFAULT_DTYPE if dtype is None else dtype)
        self.weight = Parameter(xp.zeros((in_channels, out_channels // groups)
                                         + self.kernel_size, dtype))
        self.bias = Parameter(xp.zeros(out_channels, dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """Draw the weight and bias again (torch's default: fan_in from weight.shape[1:])."""
        default_init.reset_parameters(self.weight, self.bias)

    def _output_padding(self, x, output_size):
        if output_size is None:
            return self.output_padding
        wanted = tuple(output_size)[-2:]
        least = [transposed_size(n, k, s, p, 0, d) for n, k, s, p, d in zip(
            x.shape[-2:], self.kernel_size, self.stride, self.padding, self.dilation)]
        extra = tuple(int(w) - n for w, n in zip(wanted, least))
        if len(wanted) != 2 or any(not 0 <= e < max(s, d) for e, s, d in
                                   zip(extra, self.stride, self.dilation)):
            most = tuple(n + max(s, d) - 1 for n, s, d in zip(least, self.stride,
                                                               self.dilation))
            raise ValueError(f"ConvTranspose2d: output_size {tuple(output_size)} is not "
                             f"reachable: the sizes run from {tuple(least)} to {most}")
        return extra

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
