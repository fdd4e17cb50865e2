"""ELU and PReLU: activations whose negative side is scaled, by a constant or a weight."""
from ..backend import get_array_module
from ..autograd import Function
from ._util import check_dtype, sum_to


class ELU(Function):
    """x where x > 0, alpha·(e^x − 1) elsewhere."""

    def forward(self, x, alpha=1.0):
        check_dtype(x, "f", "elu")
        xp = get_array_module(x)
        self.positive = x > 0
        self.alpha = xp.asarray(alpha, dtype=x.dtype)
        # NOTE: expm1 of the non-positive part only: e^x of a large positive x would overflow
        self.y = xp.where(self.positive, x, self.alpha * xp.expm1(xp.minimum(x, 0)))
        return self.y

    def backward(self, gy):
        # NOTE: d/dx alpha·(e^x − 1) = alpha·e^x = y + alpha (at 0 too, as PyTorch's)
        return get_array_module(gy).where(self.positive, gy, gy * (self.y + self.alpha))


class PReLU(Function):
    """x where x > 0, w·x elsewhere; w broadcasts against x (one slope, or one per channel)."""

    def forward(self, x, w):
        check_dtype(x, "f", "prelu")
        self.x, self.w_shape = x, w.shape
        self.positive = x > 0
        self.w = w
        return get_array_module(x).where(self.positive, x, w * x)

    def backward(self, gy):
        xp = get_array_module(gy)
        zero = xp.zeros((), dtype=gy.dtype)
        gx = xp.where(self.positive, gy, gy * self.w) if self.needs_input_grad[0] else None
        gw = sum_to(xp.where(self.positive, zero, gy * self.x), self.w_shape) \
            if self.needs_input_grad[1] else None
        return gx, gw
