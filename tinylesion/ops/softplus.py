"""Softplus, log(1 + e^(βx))/β, and the log-sigmoid, −softplus(−x), without overflow."""
from ..backend import get_array_module
from ..autograd import Function
from ._util import check_dtype
from .activation import sigmoid_array


class Softplus(Function):
    """log(1 + e^(βx))/β, and x itself where βx > threshold (as PyTorch's)."""

    def forward(self, x, beta=1.0, threshold=20.0):
        check_dtype(x, "f", "softplus")
        xp = get_array_module(x)
        self.scaled = x * xp.asarray(beta, dtype=x.dtype)
        self.linear = self.scaled > threshold
        # NOTE: log(1 + e^z) = max(z, 0) + log1p(e^−|z|), which never overflows
        smooth = xp.maximum(self.scaled, 0) + xp.log1p(xp.exp(-xp.abs(self.scaled)))
        return xp.where(self.linear, x, smooth / xp.asarray(beta, dtype=x.dtype))

    def backward(self, gy):
        # NOTE: d/dx log(1 + e^(βx))/β = σ(βx)
        return get_array_module(gy).where(self.linear, gy, gy * sigmoid_array(self.scaled))


class LogSigmoid(Function):
    """log σ(x) = min(x, 0) − log(1 + e^−|x|)."""

    def forward(self, x):
        check_dtype(x, "f", "logsigmoid")
        xp = get_array_module(x)
        self.x = x
        return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, gy):
        # NOTE: d/dx log σ(x) = 1 − σ(x) = σ(−x)
        return gy * sigmoid_array(-self.x)
