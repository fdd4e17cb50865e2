"""GELU: the Gaussian error linear unit, exact or with its tanh approximation."""
from .. import ops as _ops  # noqa: F401  (ops before ops.gelu: the package's import order)
from ..ops.gelu import GELU as _GELU
from .module import Module

_APPROXIMATIONS = ("none", "tanh")


def gelu(input, approximate="none"):
    """x·Φ(x) (approximate="tanh": the tanh approximation), as torch.nn.functional.gelu."""
    if approximate not in _APPROXIMATIONS:
        raise ValueError(f"approximate argument must be either none or tanh, "
                         f"got {approximate!r}")
    return _GELU.apply(input, approximate=approximate)


class GELU(Module):
    """The GELU activation as a layer."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in _APPROXIMATIONS:
            raise ValueError(f"approximate argument must be either none or tanh, "
                             f"got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return gelu(input, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"
