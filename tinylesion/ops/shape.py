"""Reductions and shape ops: sum, mean, max/min, var/std, reshape, transpose, expand, repeat,
indexing, zero padding."""
import numpy as np

from ..backend import get_array_module, scatter_add
from ..autograd import Function
from ._util import expand_reduced, normalize_axis, sum_to


class Sum(Function):
    def forward(self, x, axis=None, keepdims=False):
        self.x_shape, self.keepdims = x.shape, keepdims
        self.axes = normalize_axis(axis, x.ndim)
        return x.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, gy):
        g = expand_reduced(gy, self.x_shape, self.axes, self.keepdims)
        return get_array_module(gy).broadcast_to(g, self.x_shape)


class Mean(Function):
    def forward(self, x, axis=None, keepdims=False):
        self.x_shape, self.keepdims = x.shape, keepdims
        self.axes = normalize_axis(axis, x.ndim)
        self.count = 1
        for a in self.axes:
            self.count *= x.shape[a]
        return x.mean(axis=self.axes, keepdims=keepdims)

    def backward(self, gy):
        g = expand_reduced(gy, self.x_shape, self.axes, self.keepdims) / self.count
        return get_array_module(gy).broadcast_to(g, self.x_shape)


class Max(Function):
    """Maximum over axes; tied maxima share the gradient equally (as torch.amax)."""
    pick = "max"

    def forward(self, x, axis=None, keepdims=False):
        self.x, self.keepdims = x, keepdims
        self.axes = normalize_axis(axis, x.ndim)
        self.y = getattr(x, self.pick)(axis=self.axes, keepdims=True)
        return self.y if keepdims else self.y.reshape(
            [n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, gy):
        xp = get_array_module(gy)
        # NOTE: a NaN maximum is shared by the NaN entries (PyTorch's evenly_distribute).
        mask = ((self.x == self.y) | (xp.isnan(self.x) & xp.isnan(self.y))).astype(gy.dtype)
        mask /= mask.sum(axis=self.axes, keepdims=True)
        return mask * expand_reduced(gy, self.x.shape, self.axes, self.keepdims)


class Min(Max):
    """Minimum over axes; tied minima share the gradient equally (as torch.amin)."""
    pick = "min"


class Var(Function):
    """Variance over axes with `correction` (PyTorch's; 1 is the unbiased estimate):
    Σ(x − mean)² / (n − correction), NaN or inf when n − correction <= 0, as in PyTorch."""

    def forward(self, x, axis=None, correction=1, keepdims=False):
        self.x, self.keepdims = x, keepdims
        self.axes = normalize_axis(axis, x.ndim)
        n = 1
        for a in self.axes:
            n *= x.shape[a]
        self.dof = float(n - correction)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.y = x.var(axis=self.axes, ddof=correction, keepdims=keepdims)
        return self.y

    def deviation(self):
        """x − mean, the core of both gradients."""
        return self.x - self.x.mean(axis=self.axes, keepdims=True)

    def backward(self, gy):
        # NOTE: d var / dx = 2 (x − mean) / (n − correction); the mean's own change cancels.
        g = expand_reduced(gy, self.x.shape, self.axes, self.keepdims)
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * (2 * self.deviation()) / self.dof


class Std(Var):
    """Standard deviation: the square root of Var."""

    def forward(self, x, axis=None, correction=1, keepdims=False):
        var = super().forward(x, axis, correction, keepdims)
        self.y = get_array_module(x).sqrt(var)
        return self.y

    def backward(self, gy):
        # NOTE: d std = d var / (2 std); where std is 0 the gradient is 0, as in PyTorch.
        xp = get_array_module(gy)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = xp.where(self.y == 0, 0, gy / (self.y * self.dof)).astype(gy.dtype)
            return expand_reduced(scale, self.x.shape, self.axes, self.keepdims) * \
                self.deviation()


class TakeAlong(Function):
    """x's entries at `index` along `axis` (index keeps that axis, of length 1), as the values
    of torch.max(dim): the gradient goes to those entries only."""

    def forward(self, x, index, axis, keepdims=False):
        xp = get_array_module(x)
        self.x_shape, self.index, self.axis, self.keepdims = x.shape, index, axis, keepdims
        y = xp.take_along_axis(x, index, axis)
        return y if keepdims else xp.squeeze(y, axis)

    def backward(self, gy):
        xp = get_array_module(gy)
        axis = self.axis % len(self.x_shape)
        if not self.keepdims:
            gy = xp.expand_dims(gy, axis)
        positions = xp.arange(self.x_shape[axis]).reshape(
            (-1,) + (1,) * (len(self.x_shape) - axis - 1))
        return (positions == self.index) * gy


class Reshape(Function):
    def forward(self, x, shape):
        self.x_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot reshape a tensor of shape {x.shape} "
                             f"({x.size} elements) into {shape}") from None

    def backward(self, gy):
        return gy.reshape(self.x_shape)


class Transpose(Function):
    def forward(self, x, axes=None):
        self.axes = tuple(range(x.ndim))[::-1] if axes is None else tuple(
            a % x.ndim for a in axes)
        if sorted(self.axes) != list(range(x.ndim)):
            raise ValueError(f"transpose axes {axes} are not a permutation of {x.ndim} axes")
        return x.transpose(self.axes)

    def backward(self, gy):
        inverse = [0] * len(self.axes)
        for i, a in enumerate(self.axes):
            inverse[a] = i
        return gy.transpose(inverse)


class Expand(Function):
    """A broadcast view in a larger shape; the gradient sums over the repeated axes."""

    def forward(self, x, shape):
        self.x_shape = x.shape
        return get_array_module(x).broadcast_to(x, shape)

    def backward(self, gy):
        return sum_to(gy, self.x_shape)


class Repeat(Function):
    """x tiled `reps` times along each axis (numpy.tile, reps as long as the result's ndim)."""

    def forward(self, x, reps):
        self.reps, self.x_shape = reps, x.shape
        self.padded = (1,) * (len(reps) - x.ndim) + x.shape
        return get_array_module(x).tile(x, reps)

    def backward(self, gy):
        # NOTE: view gy as (r0, n0, r1, n1, ...) and sum over the copies r0, r1, ...
        split = [n for pair in zip(self.reps, self.padded) for n in pair]
        return gy.reshape(split).sum(axis=tuple(range(0, len(split), 2))).reshape(self.x_shape)


class GetItem(Function):
    """Basic and advanced indexing; repeated indices accumulate their gradients."""

    def forward(self, x, index):
        self.x_shape, self.x_dtype = x.shape, x.dtype
        self.index = index
        return x[index]

    def backward(self, gy):
        gx = get_array_module(gy).zeros(self.x_shape, dtype=gy.dtype)
        scatter_add(gx, self.index, gy)
        return gx


class SetItem(Function):
    """A copy of x with x[index] = v (v broadcast); PyTorch's setitem in the graph."""

    def forward(self, x, v, index):
        self.index, self.v_shape = index, v.shape
        y = x.copy()
        y[index] = v
        return y

    def backward(self, gy):
        gx = gv = None
        if self.needs_input_grad[0]:  # the replaced entries no longer depend on x
            gx = gy.copy()
            gx[self.index] = 0
        if self.needs_input_grad[1]:
            gv = sum_to(gy[self.index], self.v_shape)
        return gx, gv


def _is_int(item):
    """An integer index: a Python or NumPy integer, or a 0-d integer array (a tensor's)."""
    if isinstance(item, (bool, np.bool_)):
        return False
    return isinstance(item, (int, np.integer)) or (
        getattr(item, "ndim", None) == 0 and getattr(item, "dtype", np.dtype(bool)).kind in "iu")


def _is_array(item):
    """An advanced index: an array (or list) of integers or booleans with at least 1 dim."""
    return (isinstance(item, list) or getattr(item, "ndim", 0) > 0) and not isinstance(item, str)


def torch_index_steps(index):
    """`index` as one or two NumPy indices that, applied in turn, give PyTorch's result.

    NOTE: NumPy counts an int as an advanced index, so `x[0, :, [1, 2]]` puts the indexed
    axis first (its ints and arrays are "separated" by the slice); PyTorch applies the ints
    first, as basic indexing, and places the array's axis where the array stands. So when ints
    and arrays meet, the ints (with the slices, None and Ellipsis) go first and the arrays
    second.
    """
    if not isinstance(index, tuple) or not any(map(_is_int, index)) \
            or not any(map(_is_array, index)):
        return [index]
    basic, advanced = [], []
    for item in index:
        if _is_int(item):
            basic.append(item)          # its axis is gone after the first step
        elif _is_array(item):
            array = np.asarray(item) if isinstance(item, list) else item
            basic += [slice(None)] * (array.ndim if array.dtype == np.bool_ else 1)
            advanced.append(array)
        else:
            basic.append(item)
            advanced.append(Ellipsis if item is Ellipsis else slice(None))
    return [tuple(basic), tuple(advanced)]


class Pad2d(Function):
    """Zero padding of the last two axes by (left, right, top, bottom)."""

    def forward(self, x, padding):
        xp = get_array_module(x)
        left, right, top, bottom = padding
        if min(padding) < 0:
            raise ValueError(f"padding {padding} must not be negative")
        self.crop = (slice(top, top + x.shape[-2]), slice(left, left + x.shape[-1]))
        widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
        return xp.pad(x, widths)

    def backward(self, gy):
        return gy[(Ellipsis,) + self.crop]
