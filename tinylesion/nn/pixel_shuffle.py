"""Rearranging channels into space and back: pixel_shuffle, pixel_unshuffle (sub-pixel
up-sampling) and nn.Unflatten, each a reshape and a permutation."""
import numpy as np

from ..errors import InputError
from .module import Module


def _factor(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: the factor must be a positive int, not {value!r}")
    return int(value)


def pixel_shuffle(input, upscale_factor):
    """(*, C·r², H, W) -> (*, C, H·r, W·r): each group of r² channels becomes an r×r block."""
    r = _factor(upscale_factor, "pixel_shuffle")
    x = input
    if x.ndim < 3 or x.shape[-3] % (r * r):
        raise InputError(f"pixel_shuffle: expected input of shape (*, C·{r * r}, H, W) with "
                         f"channels divisible by upscale_factor²={r * r}, not {x.shape}")
    *lead, C, H, W = x.shape
    c, k = C // (r * r), len(lead)
    y = x.reshape(*lead, c, r, r, H, W)
    y = y.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return y.reshape(*lead, c, H * r, W * r)


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H·r, W·r) -> (*, C·r², H, W), the inverse of pixel_shuffle."""
    r = _factor(downscale_factor, "pixel_unshuffle")
    x = input
    if x.ndim < 3 or x.shape[-2] % r or x.shape[-1] % r:
        raise InputError(f"pixel_unshuffle: expected input of shape (*, C, H, W) with H and W "
                         f"divisible by downscale_factor={r}, not {x.shape}")
    *lead, C, H, W = x.shape
    k = len(lead)
    y = x.reshape(*lead, C, H // r, r, W // r, r)
    y = y.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return y.reshape(*lead, C * r * r, H // r, W // r)


class PixelShuffle(Module):
    """pixel_shuffle(input, upscale_factor)."""

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = _factor(upscale_factor, "PixelShuffle")

    def forward(self, input):
        return pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """pixel_unshuffle(input, downscale_factor)."""

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = _factor(downscale_factor, "PixelUnshuffle")

    def forward(self, input):
        return pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"


class Unflatten(Module):
    """Split dimension `dim` into `unflattened_size` (a tuple of ints; one may be -1)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        if isinstance(unflattened_size, (int, np.integer)) or not all(
                isinstance(n, (int, np.integer)) for n in unflattened_size):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple of ints, not "
                            f"{unflattened_size!r}")
        self.dim, self.unflattened_size = dim, tuple(int(n) for n in unflattened_size)

    def forward(self, input):
        dim = self.dim % input.ndim if -input.ndim <= self.dim < input.ndim else None
        if dim is None:
            raise IndexError(f"Unflatten: dim {self.dim} is out of range for an input of "
                             f"{input.ndim} dimensions")
        sizes = self.unflattened_size
        known = int(np.prod([n for n in sizes if n != -1]))
        n = input.shape[dim]
        if sizes.count(-1) > 1 or (-1 not in sizes and known != n) or (
                -1 in sizes and (known == 0 or n % known)):
            raise RuntimeError(f"Unflatten: unflattened_size {sizes} does not fit dimension "
                               f"{self.dim} of size {n}")
        return input.reshape(*input.shape[:dim], *sizes, *input.shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
