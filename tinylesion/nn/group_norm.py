"""GroupNorm: normalise each sample over groups of channels, then scale and shift per
channel."""
import numpy as np

from .. import backend
from ..errors import InputError
from .module import Module, Parameter


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """(x − mean) / √(var + eps) over each sample's num_groups groups of channels (and all
    positions), the variance biased, times weight plus bias per channel, as
    torch.nn.functional.group_norm. input is (N, C, *)."""
    x = input
    if x.ndim < 2:
        raise InputError(f"group_norm: expected input of shape (N, C, *), not {x.shape}")
    N, C = x.shape[:2]
    if isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer)) \
            or num_groups < 1 or C % num_groups:
        raise InputError(f"group_norm: num_groups={num_groups!r} must be a positive int "
                         f"dividing the {C} channels of the input (shape {x.shape})")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != (C,):
            raise InputError(f"group_norm: {name} of shape {tuple(p.shape)} for an input of "
                             f"{C} channels")
    groups = x.reshape(N, num_groups, -1)
    centred = groups - groups.mean(2, keepdim=True)
    var = (centred * centred).mean(2, keepdim=True)
    out = (centred * (var + eps) ** -0.5).reshape(x.shape)
    per_channel = (C,) + (1,) * (x.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(per_channel)
    if bias is not None:
        out = out + bias.reshape(per_channel)
    return out


class GroupNorm(Module):
    """Group normalisation of (N, C, *) input with a learned weight (ones) and bias (zeros)
    per channel unless affine=False."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None,
                 dtype=None):
        super().__init__()
        for name, n in (("num_groups", num_groups), ("num_channels", num_channels)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"GroupNorm: {name} must be a positive int, not {n!r}")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine = eps, affine
        xp = backend.as_device("cpu" if device is None else device).xp
        dtype = np.dtype(backend.DEFAULT_DTYPE if dtype is None else dtype)
        if affine:
            self.weight = Parameter(xp.ones(self.num_channels, dtype))
            self.bias = Parameter(xp.zeros(self.num_channels, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self):
        """Weight back to ones and bias to zeros."""
        if self.affine:
            self.weight.fill_(1.0)
            self.bias.fill_(0.0)

    def forward(self, input):
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
