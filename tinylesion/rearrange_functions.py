"""torch's functions that move or repeat entries, each a differentiable index_select or
selection: roll, repeat_interleave and masked_select; and count_nonzero and argwhere."""
import numpy as np

from . import backend
from .errors import InputError
from .functions import _check_tensor, _dim, _dims, expand
from .index_functions import index_select, nonzero
from .ops.shape import GetItem
from .tensor import Tensor


def _ints(value, name, what):
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name}(): {what} must be ints, not {value!r}")
    return tuple(int(v) for v in values)


def roll(input, shifts, dims=None):
    """The entries shifted by `shifts` along dims (wrapping around); with dims None the
    flattened tensor is rolled and the shape kept."""
    x = _check_tensor(input, "roll")
    shifts = _ints(shifts, "roll", "shifts")
    if dims is None:
        if len(shifts) != 1:
            raise InputError(f"roll(): {len(shifts)} shifts without dims: give one shift")
        return roll(x.reshape(-1), shifts, 0).reshape(x.shape)
    dims = _ints(dims, "roll", "dims")
    if len(shifts) != len(dims):
        raise InputError(f"roll(): shifts and dims must align: {len(shifts)} shifts, "
                         f"{len(dims)} dims")
    out = x
    for shift, dim in zip(shifts, dims):
        axis = _dim(dim, x.ndim, "roll")
        n = x.shape[axis] if x.ndim else 1
        if n and shift % n:
            out = index_select(out, axis, Tensor._wrap((x.xp.arange(n) - shift) % n))
    return out if out is not x else x.clone()


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Each entry (each slice along dim; of the flattened tensor when dim is None) repeated
    `repeats` times (an int, or one count per entry); repeat_interleave(counts) alone gives
    0, 1, ... each repeated counts[i] times."""
    x = _check_tensor(input, "repeat_interleave")
    if repeats is None:   # the one-argument form: the counts are the input
        return repeat_interleave(Tensor._wrap(x.xp.arange(x.numel())), x, 0)
    if dim is None:
        x, axis = x.reshape(-1), 0
    else:
        axis = _dim(dim, x.ndim, "repeat_interleave")
    n = x.shape[axis] if x.ndim else 1
    if isinstance(repeats, (int, np.integer)) and not isinstance(repeats, bool):
        if repeats < 0:
            raise InputError("repeat_interleave(): repeats must be non-negative")
        index = x.xp.repeat(x.xp.arange(n), int(repeats))
    else:   # NOTE: the output's size depends on the counts: they are read on the host
        counts = backend.to_numpy(repeats.array if isinstance(repeats, Tensor) else
                                  np.asarray(repeats))
        if counts.dtype.kind not in "iu" or counts.ndim > 1:
            raise TypeError(f"repeat_interleave(): repeats must be an int or a 1-D integer "
                            f"tensor, not {repeats!r}")
        counts = counts.reshape(-1)
        if counts.size not in (1, n):
            raise InputError(f"repeat_interleave(): {counts.size} repeats for {n} entries "
                             f"along dim {dim}")
        if counts.size and counts.min() < 0:
            raise InputError("repeat_interleave(): repeats must be non-negative")
        index = x.xp.asarray(np.repeat(np.arange(n), counts if counts.size == n else
                                       counts[0]))
    if output_size is not None and index.size != output_size:
        raise InputError(f"repeat_interleave(): output_size={output_size} but the repeats "
                         f"give {index.size}")
    return index_select(x, axis, Tensor._wrap(index))


def masked_select(input, mask):
    """The entries of input where mask (broadcast with it) is True, as a 1-D tensor;
    differentiable."""
    x = _check_tensor(input, "masked_select")
    m = mask.array if isinstance(mask, Tensor) else x.xp.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_select(): mask must be a bool tensor, not {m.dtype}")
    try:
        shape = np.broadcast_shapes(x.shape, m.shape)
    except ValueError:
        raise InputError(f"masked_select(): the mask of shape {m.shape} does not broadcast "
                         f"with the input of shape {x.shape}") from None
    x = x if x.shape == shape else expand(x, shape)
    where = x.xp.nonzero(x.xp.broadcast_to(m, shape))
    return GetItem.apply(x, index=where)


def count_nonzero(input, dim=None):
    """The number of non-zero entries (over dim: an int or a tuple), int64."""
    x = _check_tensor(input, "count_nonzero")
    axes = _dims(dim, x.ndim, "count_nonzero")
    return Tensor._wrap(x.xp.asarray((x.array != 0).sum(axis=axes)).astype(np.int64))


def argwhere(input):
    """The indices of the non-zero entries, (N, ndim) int64: nonzero(input)."""
    return nonzero(input)
