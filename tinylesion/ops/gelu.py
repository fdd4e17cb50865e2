"""GELU, x·Φ(x), exactly (with erf) or with its tanh approximation."""
import math

from .. import backend
from ..autograd import Function
from ._util import check_dtype

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_CUBIC = 0.044715


class GELU(Function):
    """y = x·Φ(x), Φ the standard normal CDF; approximate="tanh" uses
    Φ(x) ≈ ½(1 + tanh(√(2/π)(x + 0.044715x³)))."""

    def forward(self, x, approximate="none"):
        check_dtype(x, "f", "gelu")
        xp = backend.get_array_module(x)
        self.x, self.approximate = x, approximate
        if approximate == "tanh":
            self.t = xp.tanh(_SQRT_2_OVER_PI * (x + _CUBIC * x * x * x))
            return 0.5 * x * (1 + self.t)
        self.cdf = 0.5 * (1 + backend.erf(x * _INV_SQRT_2))
        return x * self.cdf

    def backward(self, gy):
        x = self.x
        xp = backend.get_array_module(x)
        if self.approximate == "tanh":
            # NOTE: d/dx ½x(1 + t) = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)
            t = self.t
            inner = _SQRT_2_OVER_PI * (1 + 3 * _CUBIC * x * x)
            return gy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner)
        # NOTE: d/dx xΦ(x) = Φ(x) + x·φ(x), φ the standard normal density
        pdf = _INV_SQRT_2PI * xp.exp(-0.5 * x * x)
        return gy * (self.cdf + x * pdf)
