"""Activations and the (log-)softmax, stable for logits of any size."""
import kernels

from ..backend import get_array_module
from ..autograd import Function
from ._util import check_dtype, floating


class ReLU(Function):
    # NOTE: only the output is kept: y > 0 exactly where x > 0, and the next layer holds y
    # anyway, so the backward pass costs no extra memory.
    def forward(self, x):
        check_dtype(x, "fiu", "relu")
        self.y = kernels.relu_forward(x).reshape(x.shape)  # the kernel gives 0-d as 1-d
        return self.y

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
