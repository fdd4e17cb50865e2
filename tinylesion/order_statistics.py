"""torch's order statistics: median, nanmedian, kthvalue, quantile, nanquantile and mode, the
values differentiable (picked from the input with gather), the indices int64."""
import collections

import numpy as np

from .functions import _check_tensor, _dim, stack
from .running_scan import scan
from .tensor import Tensor

median_result = collections.namedtuple("median", ["values", "indices"])
kthvalue_result = collections.namedtuple("kthvalue", ["values", "indices"])
mode_result = collections.namedtuple("mode", ["values", "indices"])
INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _sorted_order(x, d):
    """The stable ascending order along d (NaN last) and the count of non-NaN values
    (keepdims)."""
    xp, data = x.xp, x.array
    order = xp.argsort(data, axis=d, kind="stable")
    valid = (~xp.isnan(data)).sum(axis=d, keepdims=True) if data.dtype.kind == "f" else \
        xp.full(data.shape[:d] + (1,) + data.shape[d + 1:], data.shape[d])
    return order, valid


def _pick(x, d, order, rank, keepdim):
    """(values, indices) at the given rank (keepdims int array) of the sorted order along d."""
    xp = x.xp
    indices = xp.take_along_axis(order, rank.astype(np.int64), axis=d)
    values = x.gather(d, Tensor._wrap(indices))
    if not keepdim:
        values, indices = values.squeeze(d), xp.squeeze(indices, axis=d)
    return values, Tensor._wrap(indices.copy())


def _prepare(input, dim, name):
    x = _check_tensor(input, name)
    if dim is None:
        if x.numel() == 0:
            raise RuntimeError(f"{name}() input tensor cannot be empty")
        return x.reshape(-1), 0
    d = _dim(dim, x.ndim, name)
    x = x.reshape(1) if x.ndim == 0 else x
    if x.shape[d] == 0:
        raise IndexError(f"{name}(): cannot compute along dimension {dim} of size 0")
    return x, d


def _median(input, dim, keepdim, name, skip_nan):
    x, d = _prepare(input, dim, name)
    order, valid = _sorted_order(x, d)
    n = x.shape[d]
    if skip_nan:   # the lower middle of the non-NaN values (all NaN: the middle one)
        rank = x.xp.where(valid > 0, (valid - 1) // 2, (n - 1) // 2)
    else:          # NaN where there is one (sorted last: at position `valid`)
        rank = x.xp.where(valid < n, valid, (n - 1) // 2)
    values, indices = _pick(x, d, order, rank, keepdim and dim is not None)
    if dim is None:
        return values
    if input.ndim == 0:
        values, indices = values.reshape(()), indices.reshape(())
    return median_result(values, indices)


def median(input, dim=None, keepdim=False):
    """The lower of the two middle values (torch's rule; NaN if any): of all entries (a 0-d
    tensor) or along dim, then the named tuple (values, indices)."""
    return _median(input, dim, keepdim, "median", skip_nan=False)


def nanmedian(input, dim=None, keepdim=False):
    """median ignoring NaN values (NaN only where every value is)."""
    return _median(input, dim, keepdim, "nanmedian", skip_nan=True)


def kthvalue(input, k, dim=-1, keepdim=False):
    """The k-th smallest value along dim (k from 1) and its index, a named tuple."""
    x, d = _prepare(input, dim, "kthvalue")
    n = x.shape[d]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise IndexError(f"kthvalue(): selected number k={k!r} is out of range for dimension "
                         f"{dim} of size {n}")
    order, _ = _sorted_order(x, d)
    rank = x.xp.full(order.shape[:d] + (1,) + order.shape[d + 1:], k - 1)
    values, indices = _pick(x, d, order, rank, keepdim)
    if input.ndim == 0:
        values, indices = values.reshape(()), indices.reshape(())
    return kthvalue_result(values, indices)


def _quantile(input, q, dim, keepdim, interpolation, name, skip_nan):
    x = _check_tensor(input, name)
    if x.dtype.kind != "f":
        raise TypeError(f"{name}() input tensor must be either float or double dtype, not "
                        f"{x.dtype}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"{name}() interpolation must be one of {INTERPOLATIONS}, not "
                         f"{interpolation!r}")
    if isinstance(q, Tensor):
        if q.ndim > 1 or q.dtype != x.dtype:
            raise TypeError(f"{name}() q must be a scalar or a 1-D tensor of the input's dtype "
                            f"{x.dtype}, not {q.dtype} of shape {q.shape}")
        qs, scalar = [float(v) for v in q.numpy().reshape(-1)], q.ndim == 0
    elif isinstance(q, (int, float, np.floating, np.integer)) and not isinstance(q, bool):
        qs, scalar = [float(q)], True
    else:
        raise TypeError(f"{name}() q must be a number or a tensor, not {type(q).__name__}")
    if not all(0.0 <= v <= 1.0 for v in qs):
        raise ValueError(f"{name}() q values must be in the range [0, 1], not {qs}")
    flat = dim is None
    x2, d = _prepare(x, dim, name)
    xp = x.xp
    order, valid = _sorted_order(x2, d)
    ordered = x2.gather(d, Tensor._wrap(order))
    n = x2.shape[d]
    count = valid if skip_nan else xp.full(valid.shape, n)
    nan_slice = (valid == 0) if skip_nan else (valid < n)
    out = []
    for v in qs:
        rank = xp.where(nan_slice, n - 1, v * (count - 1)).astype(x.dtype)
        if interpolation == "nearest":
            rank = xp.round(rank)   # half to even, as torch.round
        below = xp.floor(rank) if interpolation != "higher" else xp.ceil(rank)
        above = xp.ceil(rank) if interpolation != "lower" else xp.floor(rank)
        low = ordered.gather(d, Tensor._wrap(below.astype(np.int64)))
        high = ordered.gather(d, Tensor._wrap(above.astype(np.int64)))
        if interpolation in ("lower", "higher", "nearest"):
            value = low
        else:
            weight = 0.5 if interpolation == "midpoint" else Tensor._wrap(rank - below)
            from .elementwise_functions import lerp
            value = lerp(low, high, weight)
        if flat:
            value = value.reshape((1,) * x.ndim if keepdim else ())
        elif not keepdim:
            value = value.squeeze(d)
        out.append(value)
    return out[0] if scalar else stack(out)


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The q-th quantiles (q a number, or a 1-D tensor: a leading dimension) of all entries or
    along dim, between the sorted values at rank q·(n − 1) by `interpolation` ('linear',
    'lower', 'higher', 'midpoint', 'nearest'); NaN where a slice holds one."""
    return _quantile(input, q, dim, keepdim, interpolation, "quantile", skip_nan=False)


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """quantile ignoring NaN values (NaN only where every value is)."""
    return _quantile(input, q, dim, keepdim, interpolation, "nanquantile", skip_nan=True)


def mode(input, dim=-1, keepdim=False):
    """The most frequent value along dim (the smallest of equally frequent ones) and the
    index of its last occurrence, a named tuple."""
    x, d = _prepare(input, dim, "mode")
    xp = x.xp
    moved = xp.moveaxis(x.array, d, -1)
    order = xp.argsort(moved, axis=-1, kind="stable")
    ordered = xp.take_along_axis(moved, order, axis=-1)
    n = ordered.shape[-1]
    # NOTE: run lengths in the sorted values: the position of each run's start, carried
    # forward; the longest run (the first, i.e. smallest value, among equals) is the mode
    starts = xp.concatenate([xp.ones(ordered.shape[:-1] + (1,), bool),
                             ordered[..., 1:] != ordered[..., :-1]], axis=-1)
    start_at = scan("maximum", xp.where(starts, xp.arange(n), 0), -1)
    length = xp.arange(n) - start_at + 1
    end = xp.argmax(length, axis=-1)[..., None]   # the last position of the longest run
    lo = xp.take_along_axis(start_at, end, axis=-1)
    # the largest original index among that run's positions (stable sort: its last entry)
    positions = xp.arange(n)
    in_run = (positions >= lo) & (positions <= end)
    index = xp.where(in_run, order, -1).max(axis=-1, keepdims=True)
    index = xp.moveaxis(index, -1, d)
    values = x.gather(d, Tensor._wrap(index))
    if not keepdim:
        values, index = values.squeeze(d), xp.squeeze(index, axis=d)
    if input.ndim == 0:
        values, index = values.reshape(()), index.reshape(())
    return mode_result(values, Tensor._wrap(index.astype(np.int64)))
