"""Element-wise arithmetic and the matrix product, with broadcasting."""
import numpy as np

from .. import backend
from ..backend import get_array_module
from ..autograd import Function
from ._util import check_dtype, floating, sum_to


class Add(Function):
    def forward(self, x, y, inplace=False, relu=False):
        self.x_shape, self.y_shape = x.shape, y.shape
        if inplace:   # into x's array (nn.inference_fusion.add_relu, where nothing is recorded)
            xp = get_array_module(x)
            if relu and xp is np and x.shape == y.shape and x.dtype == y.dtype:
                from kernels.residual import add_relu_into
                return add_relu_into(x, y)   # (the sum and the ReLU in one parallel pass)
            xp.add(x, y, out=x)
            return xp.maximum(x, 0, out=x) if relu else x
        if relu:
            raise ValueError("Add: relu=True only with inplace=True (nothing recorded)")
        return x + y

    def backward(self, gy):
        return (sum_to(gy, self.x_shape) if self.needs_input_grad[0] else None,
                sum_to(gy, self.y_shape) if self.needs_input_grad[1] else None)


class Sub(Function):
    def forward(self, x, y):
        self.x_shape, self.y_shape = x.shape, y.shape
        return x - y

    def backward(self, gy):
        return (sum_to(gy, self.x_shape) if self.needs_input_grad[0] else None,
                sum_to(-gy, self.y_shape) if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, gy):
        return (sum_to(gy * self.y, self.x.shape) if self.needs_input_grad[0] else None,
                sum_to(gy * self.x, self.y.shape) if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, x, y):
        self.x, self.y = x, y
        return x / y

    def backward(self, gy):
        gx = gy / self.y
        return (sum_to(gx, self.x.shape) if self.needs_input_grad[0] else None,
                sum_to(-gx * self.x / self.y, self.y.shape) if self.needs_input_grad[1]
                else None)


def _check_integer_divisor(x, y, name):
    """Integer division by zero raises ZeroDivisionError, as in PyTorch (NumPy gives 0)."""
    if x.dtype.kind == "b":
        raise TypeError(f"{name} is not implemented for bool tensors")
    if x.dtype.kind in "iu" and bool((y == 0).any()):
        raise ZeroDivisionError(f"{name}: integer division by zero")


class FloorDiv(Function):
    """x // y rounded towards −∞ (Python's and PyTorch's floor_divide); no gradient, as in
    PyTorch (backward() through it raises)."""

    def forward(self, x, y):
        _check_integer_divisor(x, y, "floor division (//)")
        with np.errstate(divide="ignore", invalid="ignore"):
            return get_array_module(x, y).floor_divide(x, y)

    def backward(self, gy):
        raise RuntimeError("the derivative of floor division (//) is not implemented "
                           "(as in PyTorch): detach its inputs or compute it under no_grad()")


class Remainder(Function):
    """x % y with the sign of y (Python's and PyTorch's remainder)."""

    def forward(self, x, y):
        _check_integer_divisor(x, y, "remainder (%)")
        self.x, self.y = x, y
        with np.errstate(divide="ignore", invalid="ignore"):
            return get_array_module(x, y).remainder(x, y)

    def backward(self, gy):
        # NOTE: x % y = x − y·⌊x / y⌋, and ⌊x / y⌋ is piecewise constant: d/dx = 1,
        # d/dy = −⌊x / y⌋ (PyTorch's formula).
        gx = gy_ = None
        if self.needs_input_grad[0]:
            gx = sum_to(gy, self.x.shape)
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                quotient = get_array_module(gy).floor_divide(self.x, self.y)
            gy_ = sum_to(-gy * quotient, self.y.shape)
        return gx, gy_


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """x ** c for a constant exponent c."""

    def forward(self, x, exponent):
        self.x, self.exponent = x, exponent
        with np.errstate(divide="ignore", invalid="ignore"):
            return x ** exponent

    def backward(self, gy):
        c = self.exponent
        if c == 0:  # NOTE: d(x⁰)/dx = 0, also at x = 0 (where c·x^(c−1) would be 0·∞)
            return get_array_module(gy).zeros_like(gy)
        return gy * (c * self.x ** (c - 1))


def _integer_power(x, y):
    """x ** y for integer arrays, negative exponents included, as PyTorch computes them
    (NumPy refuses): 1 for x = 1, ±1 for x = −1, else 0 (the integer part of 1 / x^|y|)."""
    xp = get_array_module(x, y)
    negative = y < 0
    if not bool(negative.any()):
        return x ** y
    power = x ** xp.abs(y)
    minus_one = xp.where(y % 2 == 0, 1, -1).astype(power.dtype)
    small = xp.where(x == 1, 1, xp.where(x == -1, minus_one, 0)).astype(power.dtype)
    return xp.where(negative, small, power)


class PowTensor(Function):
    """x ** y for two tensors."""

    def forward(self, x, y):
        self.x, self.y = x, y
        with np.errstate(divide="ignore", invalid="ignore"):  # NaN and inf as PyTorch, silent
            self.out = _integer_power(x, y) if x.dtype.kind in "iu" else x ** y
        return self.out

    def backward(self, gy):
        xp = get_array_module(gy)
        x, y = self.x, self.y
        gx = gy_ = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.needs_input_grad[0]:  # NOTE: y·x^(y−1), taken as 0 where y = 0 (PyTorch)
                gx = gy * xp.where(y == 0, 0, y * x ** (y - 1))
            if self.needs_input_grad[1]:
                # NOTE: d(x^y)/dy = x^y · log x, taken as 0 where x = 0 and y >= 0 (PyTorch);
                # NaN for x < 0, as log x.
                gy_ = gy * xp.where((x == 0) & (y >= 0), 0, self.out * xp.log(x))
        return (sum_to(gx, self.x.shape) if gx is not None else None,
                sum_to(gy_, self.y.shape) if gy_ is not None else None)


class MatMul(Function):
    """numpy.matmul semantics: 1-D operands are promoted, leading dimensions broadcast."""

    def forward(self, x, y):
        self.x, self.y = x, y
        return x @ y

    def backward(self, gy):
        xp = get_array_module(gy)
        x, y = self.x, self.y
        x2 = x[None, :] if x.ndim == 1 else x
        y2 = y[:, None] if y.ndim == 1 else y
        g2 = gy  # NOTE: restore the axes the 1-D operands lost, the column's first
        if y.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        if x.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        gx = gy_ = None
        if self.needs_input_grad[0]:
            gx = sum_to(g2 @ xp.swapaxes(y2, -1, -2), x2.shape).reshape(x.shape)
        if self.needs_input_grad[1]:
            gy_ = sum_to(xp.swapaxes(x2, -1, -2) @ g2, y2.shape).reshape(y.shape)
        return gx, gy_


class Exp(Function):
    def forward(self, x):
        self.y = get_array_module(x).exp(floating(x))
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    def forward(self, x):
        self.x = x = floating(x)
        with np.errstate(divide="ignore", invalid="ignore"):  # log 0 = −inf, as in PyTorch
            return get_array_module(x).log(x)

    def backward(self, gy):
        with np.errstate(divide="ignore", invalid="ignore"):
            return gy / self.x


class Sqrt(Function):
    def forward(self, x):
        self.y = get_array_module(x).sqrt(floating(x))
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class Abs(Function):
    def forward(self, x):
        check_dtype(x, "fiu", "abs")
        self.x = x
        return abs(x)

    def backward(self, gy):
        return gy * get_array_module(gy).sign(self.x)


class ToDevice(Function):
    """The array on another device; the gradient goes back to the first."""

    def forward(self, x, device):
        self.source = backend.device_of(x)
        return backend.to_device(x, device)

    def backward(self, gy):
        return backend.to_device(gy, self.source)


class Cast(Function):
    def forward(self, x, dtype):
        self.x_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, gy):
        return gy.astype(self.x_dtype)


class Clone(Function):
    """A copy of the data that stays in the graph (the gradient passes unchanged)."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy
