"""ELU: the exponential linear unit, x for x > 0 and alpha·(e^x − 1) below."""
from ..ops.elu import ELU as _ELU
from .module import Module


def elu(input, alpha=1.0, inplace=False):
    """x where x > 0, alpha·(e^x − 1) elsewhere, as torch.nn.functional.elu (inplace is
    accepted; the result is a new tensor)."""
    return _ELU.apply(input, alpha=float(alpha))


class ELU(Module):
    """The ELU activation as a layer."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return elu(input, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")
