"""torch's running functions along a dimension: cummax, cummin (values and indices),
logcumsumexp, and diff (n-th forward differences)."""
import collections

import numpy as np

from .autograd import Function
from .backend import get_array_module
from .functions import _check_tensor, _dim, cat
from .running_scan import scan
from .tensor import Tensor

cummax_result = collections.namedtuple("cummax", ["values", "indices"])
cummin_result = collections.namedtuple("cummin", ["values", "indices"])


def _running_extreme(input, dim, name, ufunc, result):
    x = _check_tensor(input, name)
    d = _dim(dim, x.ndim, name)
    if x.ndim == 0:
        return result(x * 1, Tensor._wrap(x.xp.zeros((), np.int64)))
    xp, data = x.xp, x.array
    best = scan(ufunc, data, d)
    positions = xp.arange(data.shape[d]).reshape((-1,) + (1,) * (data.ndim - d - 1))
    # NOTE: the index moves to every entry equal to the running extreme (the last of ties, as
    # torch) and to every NaN (which then stays the extreme)
    hit = data == best
    if data.dtype.kind == "f":
        hit |= xp.isnan(data)
    indices = scan("maximum", xp.where(hit, positions, 0), d).astype(np.int64)
    return result(x.gather(d, Tensor._wrap(indices)), Tensor._wrap(indices))


def cummax(input, dim):
    """The running maximum along dim and the index where it was reached (the last of ties),
    a named tuple; the gradient goes to those entries."""
    return _running_extreme(input, dim, "cummax", "maximum", cummax_result)


def cummin(input, dim):
    """The running minimum along dim and its index, as cummax."""
    return _running_extreme(input, dim, "cummin", "minimum", cummin_result)


class _LogCumSumExp(Function):
    """y_i = log Σ_{j<=i} e^(x_j) along axis, by the running logaddexp (no overflow)."""

    def forward(self, x, axis=0):
        self.x, self.axis = x, axis
        self.y = scan("logaddexp", x, axis)
        return self.y

    def backward(self, gy):
        # NOTE: gx_i = Σ_{j>=i} gy_j e^(x_i − y_j), as the difference of the positive and the
        # negative parts of gy, each a reversed running logaddexp of log|gy_j| − y_j
        xp = get_array_module(gy)
        flip = (slice(None),) * self.axis + (slice(None, None, -1),)
        gx = xp.zeros_like(self.x)
        with np.errstate(divide="ignore"):
            for sign in (1, -1):
                part = xp.log(xp.maximum(sign * gy, 0)) - self.y
                tail = scan("logaddexp", part[flip], self.axis)[flip]
                gx += sign * xp.exp(self.x + tail)
        return gx


def logcumsumexp(input, dim):
    """log of the running sum of exp along dim, without overflow."""
    x = _check_tensor(input, "logcumsumexp")
    if x.dtype.kind != "f":
        raise TypeError(f"logcumsumexp() is not implemented for {x.dtype} tensors")
    d = _dim(dim, x.ndim, "logcumsumexp")
    if x.ndim == 0:
        return x * 1
    return _LogCumSumExp.apply(x, axis=d)


def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The n-th forward difference out[i] = x[i + 1] − x[i] along dim (applied n times), after
    joining prepend and append to x along dim; booleans give the exclusive or."""
    x = _check_tensor(input, "diff")
    if x.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"diff: order n must be a non-negative int, not {n!r}")
    d = _dim(dim, x.ndim, "diff")
    parts = [p if isinstance(p, Tensor) else None for p in (prepend, append)]
    for name, given, part in (("prepend", prepend, parts[0]), ("append", append, parts[1])):
        if given is not None and part is None:
            raise TypeError(f"diff: {name} must be a Tensor, not {type(given).__name__}")
    if any(p is not None for p in parts):
        x = cat([p for p in (parts[0], x, parts[1]) if p is not None], d)
    for _ in range(int(n)):
        if x.shape[d] == 0:
            break
        later = x.narrow(d, 1, x.shape[d] - 1)
        earlier = x.narrow(d, 0, x.shape[d] - 1)
        x = later ^ earlier if x.dtype == np.bool_ else later - earlier
    return x
