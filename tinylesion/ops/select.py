"""Element-wise selection: where, clamp, maximum and minimum, with broadcasting."""
from ..backend import get_array_module
from ..autograd import Function
from ._util import sum_to


class Where(Function):
    """a where cond holds, else b (cond a boolean array, not differentiated)."""

    def forward(self, a, b, cond):
        self.cond, self.a_shape, self.b_shape = cond, a.shape, b.shape
        return get_array_module(a, b).where(cond, a, b)

    def backward(self, gy):
        xp = get_array_module(gy)
        zero = xp.zeros((), dtype=gy.dtype)
        return (sum_to(xp.where(self.cond, gy, zero), self.a_shape)
                if self.needs_input_grad[0] else None,
                sum_to(xp.where(self.cond, zero, gy), self.b_shape)
                if self.needs_input_grad[1] else None)


class Clamp(Function):
    """min(max(x, low), high); low and high are optional (None) and may be tensors.

    NOTE: as torch.clamp, x gets the gradient where low <= x <= high (the bounds included),
    low where x < low, high where x > high, and high alone where low > high (the result is
    high there). NaN in x stays NaN.
    """

    def forward(self, x, low, high):
        xp = get_array_module(x)
        self.x, self.low, self.high = x, low, high
        y = x if low is None else xp.maximum(x, low)
        return y if high is None else xp.minimum(y, high)

    def backward(self, gy):
        xp = get_array_module(gy)
        x, low, high = self.x, self.low, self.high
        inside, below, above = xp.ones(x.shape, dtype=bool), None, None
        if low is not None:
            inside, below = inside & (x >= low), x < low
        if high is not None:
            inside, above = inside & (x <= high), x > high
        if low is not None and high is not None:  # NOTE: low > high gives high everywhere
            crossed = low > high
            below, above = below & ~crossed, above | crossed
        zero = xp.zeros((), dtype=gy.dtype)
        pick = lambda mask, shape: sum_to(xp.where(mask, gy, zero), shape)
        return (pick(inside, x.shape) if self.needs_input_grad[0] else None,
                pick(below, low.shape) if self.needs_input_grad[1] else None,
                pick(above, high.shape) if self.needs_input_grad[2] else None)


class Maximum(Function):
    """Element-wise maximum; NOTE: tied entries share the gradient half and half (PyTorch)."""
    pick = "maximum"

    def forward(self, x, y):
        self.x, self.y = x, y
        return getattr(get_array_module(x, y), self.pick)(x, y)

    def backward(self, gy):
        xp = get_array_module(gy)
        x, y = self.x, self.y
        x_loses, y_loses = (x < y, x > y) if self.pick == "maximum" else (x > y, x < y)
        shared = xp.where(x == y, gy / 2, gy)
        zero = xp.zeros((), dtype=gy.dtype)
        return (sum_to(xp.where(x_loses, zero, shared), x.shape)
                if self.needs_input_grad[0] else None,
                sum_to(xp.where(y_loses, zero, shared), y.shape)
                if self.needs_input_grad[1] else None)


class Minimum(Maximum):
    """Element-wise minimum; tied entries share the gradient half and half (PyTorch)."""
    pick = "minimum"
