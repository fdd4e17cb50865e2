"""torch.unique and torch.bincount: the distinct values of a tensor and how often each occurs
(not differentiable)."""
import numpy as np

from .errors import InputError
from .functions import _check_tensor, _dim
from .tensor import Tensor


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct values in ascending order (sorted=False gives them sorted too), or with
    dim the distinct slices along dim; return_inverse adds each entry's (slice's) position
    in that result (int64, input's shape, or (input.size(dim),)); return_counts adds how
    often each occurs (int64)."""
    x = _check_tensor(input, "unique")
    xp = x.xp
    axis = None if dim is None else _dim(dim, x.ndim, "unique")
    data = x.array
    if axis is not None and x.ndim == 0:
        data, axis = data.reshape(1), 0
    found = xp.unique(data, return_inverse=True, return_counts=True, axis=axis)
    values, inverse, counts = found
    inverse = inverse.reshape(x.shape if axis is None else (-1,)).astype(np.int64, copy=False)
    out = [Tensor._wrap(values)]
    if return_inverse:
        out.append(Tensor._wrap(inverse))
    if return_counts:
        out.append(Tensor._wrap(counts.astype(np.int64, copy=False)))
    return out[0] if len(out) == 1 else tuple(out)


def bincount(input, weights=None, minlength=0):
    """How often each of 0..max(input) occurs in a 1-D tensor of non-negative integers (at
    least minlength counts), int64; with weights the sum of the weights of each value
    (float32 weights give float32, other weights float64)."""
    x = _check_tensor(input, "bincount")
    if x.dtype.kind not in "iu":
        raise TypeError(f"bincount(): input must hold integers, not {x.dtype}")
    if isinstance(minlength, bool) or not isinstance(minlength, (int, np.integer)) \
            or minlength < 0:
        raise ValueError(f"bincount(): minlength must be a non-negative int, not "
                         f"{minlength!r}")
    if x.ndim != 1 or (x.array.size and int(x.array.min()) < 0):
        raise InputError("bincount(): input must be a 1-D tensor of non-negative integers, "
                         f"not shape {x.shape}" + (" with negative values" if x.ndim == 1
                                                   else ""))
    if weights is None:
        return Tensor._wrap(x.xp.bincount(x.array, minlength=int(minlength)).astype(np.int64))
    w = weights.array if isinstance(weights, Tensor) else x.xp.asarray(weights)
    if w.shape != x.shape:
        raise InputError(f"bincount(): weights of shape {w.shape} do not match the input "
                         f"of shape {x.shape}")
    dtype = np.float32 if w.dtype == np.float32 else np.float64
    counts = x.xp.bincount(x.array, weights=w.astype(np.float64), minlength=int(minlength))
    return Tensor._wrap(counts.astype(dtype))
