"""ELU, the exponential linear unit (x for x > 0, alpha·(e^x − 1) below), and its scaled
forms SELU and CELU."""
from ..ops.elu import ELU as _ELU
from .activation import _Pointwise
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


# NOTE: SELU's constants (Klambauer et al., 2017), as PyTorch's
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    """scale · elu(x, alpha) with SELU's constants."""
    return _ELU.apply(input, alpha=SELU_ALPHA) * SELU_SCALE


def celu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha·(e^(x/alpha) − 1) below: alpha · elu(x / alpha)."""
    if alpha == 0:
        raise ZeroDivisionError("celu: alpha cannot be 0")
    return _ELU.apply(input / float(alpha), alpha=1.0) * float(alpha)


class PointwiseWithInplace(_Pointwise):
    """A parameterless activation layer whose repr shows inplace=True when given."""

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class SELU(PointwiseWithInplace):
    """The SELU activation as a layer."""
    _function = "selu"


class CELU(ELU):
    """The CELU activation as a layer."""

    def forward(self, input):
        return celu(input, self.alpha)
