"""Running sums and products along an axis: cumsum, cumprod and prod (torch's names)."""
from ..backend import get_array_module
from ..autograd import Function
from ._util import expand_reduced


class CumSum(Function):
    """y[..., i, ...] = Σ_{j <= i} x[..., j, ...] along `axis`, computed in `dtype`."""

    def forward(self, x, axis=0, dtype=None):
        self.axis = axis
        return get_array_module(x).cumsum(x, axis=axis, dtype=dtype)

    def backward(self, gy):
        # NOTE: x_j reaches every y_i with i >= j, so gx_j = Σ_{i >= j} gy_i: the running sum
        # of gy taken from the end.
        xp = get_array_module(gy)
        reverse = [slice(None)] * gy.ndim
        reverse[self.axis] = slice(None, None, -1)
        reverse = tuple(reverse)
        return xp.ascontiguousarray(xp.cumsum(gy[reverse], axis=self.axis)[reverse])


def _along(ndim, axis, index):
    """The index tuple taking `index` (an int or a slice) along axis."""
    where = [slice(None)] * ndim
    where[axis] = index
    return tuple(where)


class CumProd(Function):
    """y[..., i, ...] = Π_{j <= i} x[..., j, ...] along `axis`, computed in `dtype`."""

    def forward(self, x, axis=0, dtype=None):
        self.x, self.axis = x, axis
        return get_array_module(x).cumprod(x, axis=axis, dtype=dtype)

    def backward(self, gy):
        # NOTE: gx_k = Σ_{i >= k} gy_i Π_{j <= i, j != k} x_j = (Π_{j < k} x_j) · S_k with
        # S_k = gy_k + x_{k+1} S_{k+1} (S_{n-1} = gy_{n-1}): no division, right at zeros.
        xp = get_array_module(gy)
        x, axis, n = self.x, self.axis, self.x.shape[self.axis]
        if n == 0:
            return xp.zeros(x.shape, gy.dtype)
        at = lambda i: _along(x.ndim, axis, i)
        S = xp.empty(x.shape, gy.dtype)
        S[at(n - 1)] = gy[at(n - 1)]
        for k in range(n - 2, -1, -1):
            S[at(k)] = gy[at(k)] + x[at(k + 1)] * S[at(k + 1)]
        before = xp.concatenate([xp.ones_like(x[at(slice(0, 1))]),
                                 xp.cumprod(x[at(slice(None, -1))], axis=axis)], axis)
        return before * S


def _exclusive_products(x, axis):
    """The product of the entries before each one along axis times the product of those
    after it (1 where there are none)."""
    xp = get_array_module(x)

    def along(index):
        where = [slice(None)] * x.ndim
        where[axis] = index
        return tuple(where)

    ones = xp.ones_like(x[along(slice(0, 1))])
    before = xp.concatenate([ones, xp.cumprod(x[along(slice(None, -1))], axis=axis)], axis)
    flipped_tail = x[along(slice(None, 0, -1))]   # x[n-1], ..., x[1]
    after = xp.concatenate([xp.cumprod(flipped_tail, axis=axis)[along(slice(None, None, -1))],
                            ones], axis)
    return before * after


class Prod(Function):
    """The product of the entries along one axis (or of all, axis None), in `dtype`."""

    def forward(self, x, axis=None, keepdims=False, dtype=None):
        xp = get_array_module(x)
        self.x, self.axis, self.keepdims = x, axis, keepdims
        return xp.asarray(xp.prod(x, axis=axis, keepdims=keepdims, dtype=dtype))

    def backward(self, gy):
        # NOTE: d(Π x)/dx_i is the product of all the other entries; taken as (product before
        # i) · (product after i), it needs no division and is right where some x are 0.
        x = self.x
        xp = get_array_module(x)
        if x.size == 0:
            return xp.zeros(x.shape, gy.dtype)
        if self.axis is None:
            return (gy.reshape(()) * _exclusive_products(x.reshape(-1), 0)).reshape(x.shape)
        others = _exclusive_products(x, self.axis)
        return expand_reduced(gy, x.shape, (self.axis,), self.keepdims) * others
