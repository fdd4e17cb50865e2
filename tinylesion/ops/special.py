"""Element-wise functions with their own derivatives: erf, erfc, erfinv, atan2 and hypot."""
import math

from ..autograd import Function
from ..backend import get_array_module, special_function
from ._util import sum_to

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


class Erf(Function):
    """erf(x) = 2/√π ∫₀ˣ e^(−t²) dt; d/dx = 2/√π · e^(−x²)."""

    def forward(self, x):
        self.x = x
        return special_function("erf", x).astype(x.dtype, copy=False)

    def backward(self, gy):
        xp = get_array_module(gy)
        return gy * (_TWO_OVER_SQRT_PI * xp.exp(-self.x * self.x))


class Erfc(Function):
    """erfc(x) = 1 − erf(x), accurate where erf(x) is near 1; d/dx = −2/√π · e^(−x²)."""

    def forward(self, x):
        self.x = x
        return special_function("erfc", x).astype(x.dtype, copy=False)

    def backward(self, gy):
        xp = get_array_module(gy)
        return gy * (-_TWO_OVER_SQRT_PI * xp.exp(-self.x * self.x))


class Erfinv(Function):
    """The inverse of erf on (−1, 1); d/dx = √π/2 · e^(y²) at y = erfinv(x)."""

    def forward(self, x):
        self.y = special_function("erfinv", x).astype(x.dtype, copy=False)
        return self.y

    def backward(self, gy):
        xp = get_array_module(gy)
        return gy * (xp.exp(self.y * self.y) / _TWO_OVER_SQRT_PI)


class Atan2(Function):
    """The angle of the point (b, a): atan2(a, b); d/da = b/(a² + b²), d/db = −a/(a² + b²)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return get_array_module(a).arctan2(a, b)

    def backward(self, gy):
        r2 = self.a * self.a + self.b * self.b
        ga = sum_to(gy * self.b / r2, self.a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-gy * self.a / r2, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Hypot(Function):
    """√(a² + b²) without overflow; d/da = a / hypot, d/db = b / hypot."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.y = get_array_module(a).hypot(a, b)
        return self.y

    def backward(self, gy):
        ga = sum_to(gy * self.a / self.y, self.a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(gy * self.b / self.y, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb
