"""F.unfold / F.fold and nn.Unfold / nn.Fold: sliding kernel-sized blocks of an image as
columns, and columns summed back into an image, with torch's arguments."""

from .. import ops
from ..errors import InputError
from .functional import _pair
from .module import Module


def _blocks_args(kernel_size, dilation, padding, stride, function):
    kernel, dilation = _pair(kernel_size, "kernel_size"), _pair(dilation, "dilation")
    padding, stride = _pair(padding, "padding"), _pair(stride, "stride")
    for name, pair in (("kernel_size", kernel), ("dilation", dilation), ("stride", stride)):
        if min(pair) < 1:
            raise ValueError(f"{function}: {name} must be positive, not {pair}")
    return kernel, dilation, padding, stride


def _count(size, blocks):
    (KH, KW), (DH, DW), (PH, PW), (SH, SW) = blocks
    return [(n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, k, d, p, s in zip(size, (KH, KW), (DH, DW), (PH, PW), (SH, SW))]


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """x (N, C, H, W) (or (C, H, W)) -> (N, C·KH·KW, L): every block a column, L blocks in
    row-major order."""
    x = input
    if x.ndim == 3:
        return unfold(x.unsqueeze(0), kernel_size, dilation, padding, stride).squeeze(0)
    if x.ndim != 4:
        raise InputError(f"unfold: expected input of shape (N, C, H, W) or (C, H, W), not "
                         f"{x.shape}")
    blocks = _blocks_args(kernel_size, dilation, padding, stride, "unfold")
    if min(_count(x.shape[2:], blocks)) < 1:
        raise ValueError(f"unfold: input of shape {x.shape} (padding {blocks[2]}) is smaller "
                         f"than the dilated kernel {blocks[0]} (dilation {blocks[1]})")
    return ops.Unfold.apply(x, blocks=blocks)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """cols (N, C·KH·KW, L) (or (C·KH·KW, L)) -> (N, C, *output_size): each column added
    back at its block (overlaps sum), the adjoint of unfold."""
    x = input
    if x.ndim == 2:
        return fold(x.unsqueeze(0), output_size, kernel_size, dilation, padding,
                    stride).squeeze(0)
    if x.ndim != 3:
        raise InputError(f"fold: expected input of shape (N, C·KH·KW, L) or (C·KH·KW, L), "
                         f"not {x.shape}")
    size = _pair(output_size, "output_size")
    blocks = _blocks_args(kernel_size, dilation, padding, stride, "fold")
    K = blocks[0][0] * blocks[0][1]
    if x.shape[1] % K:
        raise InputError(f"fold: the input's {x.shape[1]} rows are not divisible by the "
                         f"kernel's {K} positions")
    counts = _count(size, blocks)
    if min(counts) < 1 or counts[0] * counts[1] != x.shape[2]:
        raise InputError(f"fold: an output of {size} holds {max(counts[0], 0)}x"
                         f"{max(counts[1], 0)} blocks, but the input has {x.shape[2]}")
    return ops.Fold.apply(x, size=size, blocks=blocks)


class Unfold(Module):
    """unfold(input, kernel_size, dilation, padding, stride)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, input):
        return unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Fold(Module):
    """fold(input, output_size, kernel_size, dilation, padding, stride)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input):
        return fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                    self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")
