"""Adaptive max pooling to a fixed output size: F.adaptive_max_pool2d / nn.AdaptiveMaxPool2d
(and the 1-D ones over a height of 1), with return_indices as torch's."""
import numpy as np

from .. import ops
from ..errors import InputError
from ..tensor import Tensor
from .module import Module


def _sizes(output_size, shape, function):
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(sizes) != 2 or output_size is None:
        raise ValueError(f"{function}: output_size must be an int or a pair, not "
                         f"{output_size!r}")
    sizes = tuple(n if s is None else s for s, n in zip(sizes, shape[-2:]))
    if not all(isinstance(s, (int, np.integer)) and s >= 1 for s in sizes):
        raise ValueError(f"{function}: output_size must hold positive ints (or None), not "
                         f"{output_size!r}")
    return tuple(int(s) for s in sizes)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """The maximum over torch's adaptive bins (bin i of n entries covers ⌊i·n/out⌋ to
    ⌈(i+1)·n/out⌉) of (N, C, H, W) or (C, H, W); with return_indices also each maximum's
    position h·W + w (int64)."""
    x = input
    if x.ndim not in (3, 4) or min(x.shape[-2:]) < 1:
        raise InputError(f"adaptive_max_pool2d: expected a non-empty input of shape "
                         f"(N, C, H, W) or (C, H, W), not {x.shape}")
    found = []   # the op puts the maxima's positions here
    y = ops.AdaptiveMaxPool2d.apply(x, output_size=_sizes(output_size, x.shape,
                                                          "adaptive_max_pool2d"), found=found)
    return (y, Tensor._wrap(found[0])) if return_indices else y


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """adaptive_max_pool2d along the last axis of (N, C, L) or (C, L)."""
    x = input
    if x.ndim not in (2, 3):
        raise InputError(f"adaptive_max_pool1d: expected input of shape (N, C, L) or (C, L), "
                         f"not {x.shape}")
    size = output_size[0] if isinstance(output_size, (tuple, list)) and len(output_size) == 1 \
        else output_size
    out = adaptive_max_pool2d(x.unsqueeze(-2), (1, size), return_indices)
    return tuple(t.squeeze(-2) for t in out) if return_indices else out.squeeze(-2)


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed output size (an int, or a pair whose None entries keep the
    input's size)."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input):
        return adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(AdaptiveMaxPool2d):
    """Max pooling of the last axis to a fixed length."""

    def forward(self, input):
        return adaptive_max_pool1d(input, self.output_size, self.return_indices)
