"""The activation modules of the ImageNet backbones: ReLU6, Hardtanh, SiLU, Hardswish,
Hardsigmoid (inplace is accepted for PyTorch's sake; the result is always a new tensor)."""
from . import functional as F
from .module import Module


class Hardtanh(Module):
    """x clipped to [min_val, max_val]."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        if max_val <= min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val "
                             f"({min_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, x):
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self):
        return (f"min_val={self.min_val}, max_val={self.max_val}"
                + (", inplace=True" if self.inplace else ""))


class ReLU6(Hardtanh):
    """min(max(x, 0), 6) (MobileNetV2)."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class _Pointwise(Module):
    """An elementwise activation without parameters: F.<_function>(x)."""
    _function = None

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return getattr(F, self._function)(x)


class SiLU(_Pointwise):
    """x · σ(x) (EfficientNet)."""
    _function = "silu"

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Hardswish(_Pointwise):
    """x · relu6(x + 3) / 6 (MobileNetV3)."""
    _function = "hardswish"


class Hardsigmoid(_Pointwise):
    """relu6(x + 3) / 6 (MobileNetV3's squeeze-and-excitation gate)."""
    _function = "hardsigmoid"
