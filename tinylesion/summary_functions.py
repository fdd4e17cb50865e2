"""torch's summaries of a tensor: std_mean, var_mean, aminmax, histc, searchsorted,
bucketize and cdist."""
import collections
import numbers

import numpy as np

from .functions import _check_tensor, amax, amin, mean, std, var
from .linalg import vector_norm
from .tensor import Tensor, tensor

aminmax_result = collections.namedtuple("aminmax", ["min", "max"])


def _spread_mean(spread, input, dim, unbiased, keepdim, correction):
    if isinstance(dim, bool):   # the form (input, unbiased)
        dim, unbiased = None, dim
    x = _check_tensor(input, spread.__name__ + "_mean")
    dims = dim if dim is None or isinstance(dim, (tuple, list)) else (dim,)
    return (spread(x, dim, unbiased, keepdim, correction=correction),
            mean(x, dims, keepdim=keepdim) if dims is not None else
            (mean(x).reshape((1,) * x.ndim) if keepdim else mean(x)))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) over dim with std's arguments (correction 1 by default)."""
    return _spread_mean(std, input, dim, unbiased, keepdim, correction)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) over dim with var's arguments (correction 1 by default)."""
    return _spread_mean(var, input, dim, unbiased, keepdim, correction)


def aminmax(input, *, dim=None, keepdim=False):
    """The named tuple (min, max) over dim (every entry when None)."""
    x = _check_tensor(input, "aminmax")
    if x.numel() == 0:
        raise RuntimeError("aminmax(): cannot compute on an empty tensor")
    if dim is None:
        lo, hi = amin(x, None, keepdim), amax(x, None, keepdim)
    else:
        if isinstance(dim, (tuple, list)):
            raise TypeError(f"aminmax(): dim must be an int, not {dim!r}")
        lo, hi = amin(x, dim, keepdim), amax(x, dim, keepdim)
    return aminmax_result(lo, hi)


def histc(input, bins=100, min=0, max=0):
    """The counts of input's values in `bins` equal bins over [min, max] (the data's range
    when min == max), in input's dtype; values outside (and NaN) are left out."""
    x = _check_tensor(input, "histc")
    if x.dtype.kind != "f":
        raise TypeError(f"histc() is not implemented for {x.dtype} tensors")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise RuntimeError(f"histc(): bins must be > 0, but got {bins!r}")
    xp, data = x.xp, x.array.reshape(-1)
    lo, hi = float(min), float(max)
    if lo > hi:
        raise RuntimeError(f"histc(): max must be larger than min, not min={min}, max={max}")
    if lo == hi and data.size:   # the data's range (not finite with a NaN or inf, as torch)
        lo, hi = float(data.min()), float(data.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise RuntimeError(f"histc(): range of [{lo}, {hi}] is not finite")
    inside = data[(data >= lo) & (data <= hi)]
    index = ((inside - lo) * bins / (hi - lo)).astype(np.int64)
    index = xp.minimum(index, bins - 1)   # the value max goes to the last bin
    return Tensor._wrap(xp.bincount(index, minlength=bins).astype(x.dtype))


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None,
                 sorter=None):
    """For each value of input, the index where it would go in sorted_sequence (its last
    dimension, one row per leading index of input's) keeping it sorted: before equal entries,
    after them with right=True or side='right'."""
    seq = _check_tensor(sorted_sequence, "searchsorted")
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"searchsorted(): side must be 'left' or 'right', not {side!r}")
        if right and side == "left":
            raise RuntimeError("searchsorted(): side and right can't be set to opposites, got "
                               "side of left while right was True")
        right = side == "right"
    xp = seq.xp
    scalar = isinstance(input, numbers.Number)
    values = xp.asarray(input, dtype=seq.dtype) if scalar else (
        input if isinstance(input, Tensor) else tensor(input, device=seq.device)).array
    if scalar and seq.ndim != 1:
        raise RuntimeError("searchsorted(): a scalar value needs a 1-D sorted_sequence")
    if seq.ndim > 1 and seq.shape[:-1] != values.shape[:-1]:
        raise RuntimeError(f"searchsorted(): boundaries tensor should be 1 dimension or the "
                           f"first N-1 dimensions of boundaries tensor and input value tensor "
                           f"must match, but we got boundaries tensor {seq.shape} and input "
                           f"value tensor {values.shape}")
    data = seq.array
    if sorter is not None:
        order = sorter.array if isinstance(sorter, Tensor) else xp.asarray(sorter)
        if order.shape != data.shape or order.dtype.kind not in "iu":
            raise RuntimeError(f"searchsorted(): sorter must be an integer tensor of the "
                               f"sorted_sequence's shape {seq.shape}")
        data = xp.take_along_axis(data, order, axis=-1)
    how = "right" if right else "left"
    if data.ndim == 1:
        out = xp.searchsorted(data, values, side=how)
    else:
        rows, vals = data.reshape(-1, data.shape[-1]), values.reshape(-1, values.shape[-1])
        out = xp.stack([xp.searchsorted(r, v, side=how) for r, v in zip(rows, vals)])
        out = out.reshape(values.shape)
    return Tensor._wrap(xp.asarray(out, dtype=np.int32 if out_int32 else np.int64))


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The index of the bucket of 1-D sorted boundaries each value falls in:
    boundaries[i−1] < x <= boundaries[i] (right=False) or boundaries[i−1] <= x <
    boundaries[i] (right=True)."""
    b = _check_tensor(boundaries, "bucketize")
    if b.ndim != 1:
        raise RuntimeError(f"bucketize(): boundaries tensor must be 1 dimension, but got dim "
                           f"{b.ndim}")
    return searchsorted(b, input, out_int32=out_int32, right=right)


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """The p-norm distances between each row of x1 (*, P, M) and each row of x2 (*, R, M):
    (*, P, R), the batch dimensions broadcast. The gradient at a zero distance is 0."""
    a, b = _check_tensor(x1, "cdist"), _check_tensor(x2, "cdist")
    if a.ndim < 2 or b.ndim < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X1 got: {a.ndim}D, X2 "
                           f"got: {b.ndim}D")
    if a.shape[-1] != b.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: "
                           f"{a.shape[-1]} X2: {b.shape[-1]}")
    if a.dtype.kind != "f" or a.dtype != b.dtype:
        raise TypeError(f"cdist only supports floating-point dtypes of one kind, X1 got: "
                        f"{a.dtype}, X2 got: {b.dtype}")
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values, not {p!r}")
    if compute_mode not in ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                            "donot_use_mm_for_euclid_dist"):
        raise ValueError(f"cdist: {compute_mode!r} is not a valid value for compute_mode")
    differences = a.unsqueeze(-2) - b.unsqueeze(-3)
    return vector_norm(differences, float(p), dim=-1)
