"""torch.scatter_reduce: src's entries combined into a copy of input at index along dim by
'sum', 'prod', 'mean', 'amax' or 'amin' (include_self: with input's own entry), with torch's
gradients (ties of amax/amin share it evenly)."""
import numpy as np

from .functions import where
from .index_functions import _check_tensor, _scatter_index, _source, scatter_add
from .ops.gather import _full_index
from .tensor import Tensor

REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def _slices(index, axis, xp):
    """For each position k along axis, the fancy index of the destinations of index's slice k
    (no destination repeats within one slice) and the slice of index's positions."""
    where_all = _full_index(index, axis, xp)
    for k in range(index.shape[axis]):
        pick = (slice(None),) * axis + (slice(k, k + 1),)
        yield tuple(w[pick] if w.ndim else w for w in
                    (xp.broadcast_to(g, index.shape) for g in where_all)), pick


def _combine(out, index, src, axis, op, xp):
    """out with op(out, src) applied at each destination of index, slice by slice."""
    for dest, pick in _slices(index, axis, xp):
        out[dest] = op(out[dest], src[pick])
    return out


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """A copy of input with each src[i] combined into out[..., index[i], ...] along dim by
    `reduce`; include_self=False leaves input's own entries out where something is
    scattered."""
    x = _check_tensor(input, "scatter_reduce")
    if reduce not in REDUCTIONS:
        raise RuntimeError(f"scatter_reduce(): reduce argument must be one of {REDUCTIONS}, "
                           f"not {reduce!r}")
    src = _source(x, src, "scatter_reduce")
    axis, index = _scatter_index(x, dim, index, src, "scatter_reduce")
    x = x.reshape(x.shape or (1,))
    xp = x.xp
    src_used = src[tuple(slice(0, n) for n in index.shape)]
    s = src_used.array
    touched = _combine(xp.zeros(x.shape, bool), index, xp.ones(index.shape, bool), axis,
                       lambda a, b: a | b, xp)
    keep_self = include_self or None
    if reduce in ("sum", "mean"):
        base = x if include_self else where(Tensor._wrap(touched), 0, x)
        total = scatter_add(base, axis, Tensor._wrap(index), src_used)
        if reduce == "sum":
            return total.reshape(input.shape)
        count = _combine(xp.where(touched & (not include_self), 0, 1).astype(x.dtype), index,
                         xp.ones(index.shape, x.dtype), axis, lambda a, b: a + b, xp)
        out = total // Tensor._wrap(count) if x.dtype.kind in "iu" else \
            total / Tensor._wrap(count)
        return out.reshape(input.shape)
    # amax, amin, prod: the exact values first, then an expression with the same gradient
    op = {"amax": xp.maximum, "amin": xp.minimum, "prod": xp.multiply}[reduce]
    start = x.array.copy()
    if not include_self:
        start[touched] = {"amax": -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min,
                          "amin": np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).max,
                          "prod": 1}[reduce]
    values = _combine(start, index, s, axis, op, xp)
    if x.dtype.kind != "f" or not (x.requires_grad or src_used.requires_grad):
        return Tensor._wrap(values).reshape(input.shape)
    from_self = ~touched | bool(keep_self)
    gathered = xp.take_along_axis(values, index, axis)
    if reduce == "prod":
        # NOTE: d out / d e is the product of the group's other members: the product of its
        # non-zero members over e (e ≠ 0), or that product where e is the group's only zero
        zeros = _combine(xp.where(from_self & (x.array == 0), 1, 0), index,
                         (s == 0).astype(np.int64), axis, lambda a, b: a + b, xp)
        nonzero = _combine(xp.where(from_self & (x.array != 0), x.array, 1), index,
                           xp.where(s != 0, s, 1), axis, lambda a, b: a * b, xp)

        def others(e, zeros_e, nonzero_e):
            safe = xp.where(e == 0, 1, e)
            return xp.where(e == 0, xp.where(zeros_e == 1, nonzero_e, 0),
                            xp.where(zeros_e == 0, nonzero_e / safe, 0))
        w_self = xp.where(from_self, others(x.array, zeros, nonzero), 0)
        w_src = others(s, xp.take_along_axis(zeros, index, axis),
                       xp.take_along_axis(nonzero, index, axis))
    else:
        ties = _combine(xp.where(from_self & (x.array == values), 1.0, 0.0).astype(x.dtype),
                        index, (s == gathered).astype(x.dtype), axis, lambda a, b: a + b, xp)
        w_self = xp.where(from_self & (x.array == values), 1 / xp.maximum(ties, 1), 0)
        w_src = xp.where(s == gathered, 1 / xp.take_along_axis(xp.maximum(ties, 1), index,
                                                                 axis), 0)
    expression = scatter_add(x * Tensor._wrap(w_self.astype(x.dtype)), axis,
                             Tensor._wrap(index), src_used * Tensor._wrap(w_src.astype(x.dtype)))
    out = Tensor._wrap(values) + (expression - expression.detach())
    return out.reshape(input.shape)
