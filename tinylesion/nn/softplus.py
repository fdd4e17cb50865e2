"""Softplus and the activations built on it or alike: LogSigmoid, Mish, Softsign."""
from ..ops.activation import Tanh
from ..ops.softplus import LogSigmoid as _LogSigmoid, Softplus as _Softplus
from .elu import PointwiseWithInplace
from .module import Module


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + e^(βx))/β (x where βx > threshold), as torch.nn.functional.softplus."""
    if beta == 0:
        raise ValueError("softplus: beta must not be 0")
    return _Softplus.apply(input, beta=float(beta), threshold=float(threshold))


def logsigmoid(input):
    """log σ(x), computed without overflow."""
    return _LogSigmoid.apply(input)


def mish(input, inplace=False):
    """x · tanh(softplus(x)) (inplace is accepted; the result is a new tensor)."""
    return input * Tanh.apply(softplus(input))


def softsign(input):
    """x / (1 + |x|)."""
    return input / (input.abs() + 1)


class Softplus(Module):
    """The softplus activation as a layer."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class LogSigmoid(Module):
    """log σ(x) as a layer."""

    def forward(self, input):
        return logsigmoid(input)


class Mish(PointwiseWithInplace):
    """x · tanh(softplus(x)) as a layer."""
    _function = "mish"


class Softsign(Module):
    """x / (1 + |x|) as a layer."""

    def forward(self, input):
        return softsign(input)
