"""Activations and the (log-)softmax, stable for logits of any size."""
import kernels

from ..backend import get_array_module
from ..autograd import Function
from ._util import check_dtype, floating


class ReLU(Function):
    # NOTE: only the output is kept: y > 0 exactly where x > 0, and the next layer holds y
    # anyway, so the backward pass costs no extra memory.
    def forward(self, x, inplace=False):
        check_dtype(x, "fiu", "relu")
        # (inplace: into x itself, for nn.functional.relu under no_grad, where nothing is kept)
        self.y = kernels.relu_forward(x, out=x if inplace else None).reshape(x.shape)
        return self.y   # (the kernel gives 0-d as 1-d)

    def backward(self, gy):
        return kernels.relu_backward(gy, self.y).reshape(gy.shape)


class LeakyReLU(Function):
    """x where x > 0, negative_slope·x elsewhere (the gradient at 0 is the slope, as PyTorch's)."""

    def forward(self, x, negative_slope=0.01):
        xp = get_array_module(x)
        self.positive = x > 0
        self.slope = xp.asarray(negative_slope, dtype=x.dtype)
        return xp.where(self.positive, x, x * self.slope)

    def backward(self, gy):
        return get_array_module(gy).where(self.positive, gy, gy * self.slope)


class Sigmoid(Function):
    def forward(self, x):
        self.y = sigmoid_array(floating(x))
        return self.y

    def backward(self, gy):
        return gy * self.y * (1 - self.y)


class Tanh(Function):
    def forward(self, x):
        self.y = get_array_module(x).tanh(floating(x))
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


def sigmoid_array(x):
    """1 / (1 + e^-x) without overflow for large |x|."""
    xp = get_array_module(x)
    # NOTE: σ(x) = ½(1 + tanh(x/2)) is exact and never overflows.
    return 0.5 * (1 + xp.tanh(0.5 * x))


def log_softmax_array(x, axis):
    """log softmax along `axis`, shifted by the maximum so that e^x cannot overflow."""
    xp = get_array_module(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    def forward(self, x, axis=-1):
        check_dtype(x, "f", "softmax")
        self.axis = axis
        self.y = get_array_module(x).exp(log_softmax_array(x, axis))
        return self.y

    def backward(self, gy):
        # NOTE: J = diag(y) - y yᵀ, so gx = y · (gy - Σ gy·y).
        y = self.y
        return y * (gy - (gy * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x, axis=-1):
        check_dtype(x, "f", "log_softmax")
        self.axis = axis
        self.y = log_softmax_array(x, axis)
        return self.y

    def backward(self, gy):
        # NOTE: gx = gy - softmax · Σ gy.
        xp = get_array_module(gy)
        return gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


class Hardtanh(Function):
    """x clipped to [min_val, max_val]; the gradient is gy strictly inside, 0 at and beyond
    the bounds (PyTorch's hardtanh, and ReLU6 = hardtanh(x, 0, 6))."""

    def forward(self, x, min_val=-1.0, max_val=1.0):
        xp = get_array_module(x)
        self.outside = (x <= min_val) | (x >= max_val)
        return xp.clip(x, min_val, max_val).astype(x.dtype, copy=False)

    def backward(self, gy):
        return get_array_module(gy).where(self.outside, gy.dtype.type(0), gy)


class SiLU(Function):
    """x · σ(x) (the swish)."""

    def forward(self, x):
        check_dtype(x, "f", "silu")
        xp = get_array_module(x)
        # NOTE: σ from e^−|x| keeps its relative precision for x ≪ 0, where ½(1 + tanh(x/2))
        # cancels to 0 (x·σ(x) would be 0 instead of PyTorch's −4e-8 at x = −20 in float32).
        e = xp.exp(-xp.abs(x))
        self.x = x
        self.s = xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return x * self.s

    def backward(self, gy):
        # NOTE: d/dx x·σ(x) = σ(x) + x·σ(x)(1 − σ(x)) = σ(x)(1 + x(1 − σ(x))).
        s = self.s
        return gy * (s * (1 + self.x * (1 - s)))


class Hardswish(Function):
    """x · min(max(x + 3, 0), 6) / 6; the gradient is 0 up to −3, x/3 + 1/2 strictly between
    −3 and 3, and 1 from 3 on (PyTorch's values at the kinks)."""

    def forward(self, x):
        check_dtype(x, "f", "hardswish")
        self.x = x
        xp = get_array_module(x)
        return (x * xp.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)

    def backward(self, gy):
        xp = get_array_module(gy)
        x = self.x
        slope = (x / 3 + 0.5).astype(gy.dtype, copy=False)
        return xp.where(x <= -3, gy.dtype.type(0), xp.where(x < 3, gy * slope, gy))


class Hardsigmoid(Function):
    """min(max(x + 3, 0), 6) / 6; the gradient is 1/6 strictly inside (−3, 3), else 0."""

    def forward(self, x):
        check_dtype(x, "f", "hardsigmoid")
        xp = get_array_module(x)
        self.inside = (x > -3) & (x < 3)
        return (xp.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)

    def backward(self, gy):
        xp = get_array_module(gy)
        return xp.where(self.inside, gy * gy.dtype.type(1 / 6), gy.dtype.type(0))
