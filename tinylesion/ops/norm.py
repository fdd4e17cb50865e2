"""The vector p-norm over some axes, (Σ|x|^p)^(1/p), with PyTorch's gradient where it is 0."""
import math

from ..backend import get_array_module
from ..autograd import Function
from ._util import expand_reduced


class VectorNorm(Function):
    """‖x‖_p over `axes`: p = 2 (Euclidean), 1, inf (max |x|), -inf (min |x|), 0 (the number
    of non-zero entries) or any other real p."""

    def forward(self, x, ord=2.0, axes=(), keepdims=False):
        xp = get_array_module(x)
        self.x, self.ord, self.axes, self.keepdims = x, ord, axes, keepdims
        magnitude = xp.abs(x)
        if ord == math.inf:
            y = magnitude.max(axis=axes, keepdims=keepdims)
        elif ord == -math.inf:
            y = magnitude.min(axis=axes, keepdims=keepdims)
        elif ord == 0:
            y = (x != 0).sum(axis=axes, keepdims=keepdims).astype(x.dtype)
        elif ord == 1:
            y = magnitude.sum(axis=axes, keepdims=keepdims)
        elif ord == 2:
            y = xp.sqrt((x * x).sum(axis=axes, keepdims=keepdims))
        else:
            y = (magnitude ** ord).sum(axis=axes, keepdims=keepdims) ** (1.0 / ord)
        self.y = xp.asarray(y)
        return self.y

    def backward(self, gy):
        xp = get_array_module(gy)
        x, p = self.x, self.ord
        gy = expand_reduced(gy, x.shape, self.axes, self.keepdims)
        y = expand_reduced(self.y, x.shape, self.axes, self.keepdims)
        zero = xp.zeros((), dtype=gy.dtype)
        if p == 0:
            return xp.zeros(x.shape, gy.dtype)
        if p == 1:
            return gy * xp.sign(x)
        if p in (math.inf, -math.inf):
            # NOTE: the entries whose |x| is the extreme share the gradient equally, as
            # PyTorch's amax does (NaN entries count as extreme).
            magnitude = xp.abs(x)
            hit = (magnitude == y) | xp.isnan(magnitude)
            count = hit.sum(axis=self.axes, keepdims=True)
            return xp.where(hit, xp.sign(x) * gy / count, zero)
        if p == 2:
            # NOTE: d‖x‖/dx = x / ‖x‖; at ‖x‖ = 0 the gradient is taken as 0 (PyTorch's)
            return xp.where(y == 0, zero, gy * x / xp.where(y == 0, 1, y))
        # NOTE: d‖x‖_p/dx = sign(x)|x|^(p−1) / ‖x‖^(p−1); 0 where x = 0 or ‖x‖ = 0
        safe = xp.where(x == 0, 1, xp.abs(x))
        scaled = xp.where(x == 0, zero, xp.sign(x) * safe ** (p - 1))
        return xp.where(y == 0, zero, scaled * gy / xp.where(y == 0, 1, y) ** (p - 1))
