"""torch's functions that read or write along an axis at an index tensor: index_select,
index_add, scatter, scatter_add (differentiable) and nonzero."""
import numpy as np

from . import backend
from .errors import InputError
from .functions import _check_tensor, _dim
from .ops.scatter import IndexAdd, IndexSelect, Scatter, ScatterAdd
from .tensor import Tensor


def _index_array(index, x, name):
    """index as an int64 array on x's device; TypeError unless it holds integers."""
    if isinstance(index, Tensor) and index.device != x.device:
        raise InputError(f"{name}(): index is on {index.device} but the tensor on {x.device}")
    data = index.array if isinstance(index, Tensor) else index
    data = x.xp.asarray(data) if hasattr(data, "dtype") else x.xp.asarray(np.asarray(data))
    if data.dtype.kind not in "iu":
        raise TypeError(f"{name}(): index must be an integer tensor (int32 or int64), not "
                        f"{data.dtype}")
    return data.astype(np.int64, copy=False)


def _check_bounds(index, size, axis, name):
    """Every index in 0..size-1 (checked on the CPU only: on the GPU it would wait for the
    device; there NumPy's wrap-around of negative indices is not caught)."""
    if backend.is_cupy_array(index) or index.size == 0:
        return
    low, high = int(index.min()), int(index.max())
    if low < 0 or high >= size:
        bad = low if low < 0 else high
        raise InputError(f"{name}(): index {bad} is out of bounds for dimension {axis} with "
                         f"size {size}")


def index_select(input, dim, index):
    """The slices of input at the entries of a 1-D (or 0-D) integer index along dim, as
    torch.index_select; differentiable (repeated indices add their gradients)."""
    x = _check_tensor(input, "index_select")
    axis = _dim(dim, x.ndim, "index_select")
    index = _index_array(index, x, "index_select")
    if index.ndim > 1:
        raise InputError(f"index_select(): index must be a vector (1-D), not shape "
                         f"{index.shape}")
    index = index.reshape(-1)
    if x.ndim == 0:
        _check_bounds(index, 1, 0, "index_select")
        return IndexSelect.apply(x.reshape(1), index=index, axis=0).reshape(index.shape[:0])
    _check_bounds(index, x.shape[axis], axis, "index_select")
    return IndexSelect.apply(x, index=index, axis=axis)


def index_add(input, dim, index, source, *, alpha=1):
    """A copy of input with alpha · source[..., i, ...] added at input[..., index[i], ...]
    along dim (index 1-D; repeated indices accumulate), as torch.index_add; differentiable in
    input and source."""
    x = _check_tensor(input, "index_add")
    if not isinstance(source, Tensor):
        raise TypeError(f"index_add(): source must be a Tensor, not {type(source).__name__}")
    require_alike(x, source, "index_add", "source")
    axis = _dim(dim, x.ndim, "index_add")
    index = _index_array(index, x, "index_add")
    if index.ndim > 1:
        raise InputError(f"index_add(): index must be a vector (1-D), not shape {index.shape}")
    index = index.reshape(-1)
    shape = x.shape or (1,)
    expected = shape[:axis] + (index.size,) + shape[axis + 1:]
    if (source.shape or (1,)) != expected:
        raise InputError(f"index_add(): source of shape {source.shape} does not fit: expected "
                         f"{expected} for a tensor of shape {x.shape} and {index.size} "
                         "indices")
    _check_bounds(index, shape[axis], axis, "index_add")
    return IndexAdd.apply(x.reshape(shape), source.reshape(expected), index=index, axis=axis,
                          alpha=alpha).reshape(x.shape)


def _scatter_index(x, dim, index, src, name):
    """(axis, index array) after torch's checks of a scatter's index against x and src."""
    axis = _dim(dim, x.ndim, name)
    index = _index_array(index, x, name)
    if index.ndim != max(x.ndim, 1) and not (x.ndim == 0 and index.ndim == 0):
        raise InputError(f"{name}(): index must have as many dimensions as the tensor "
                         f"({x.ndim}), not {index.ndim}")
    shape = x.shape or (1,)
    for d, n in enumerate(index.shape):
        if d != axis and n > shape[d]:
            raise InputError(f"{name}(): index of shape {index.shape} is larger than the "
                             f"tensor of shape {x.shape} in dimension {d}")
        if src is not None and n > (src.shape or (1,))[d]:
            raise InputError(f"{name}(): index of shape {index.shape} is larger than src of "
                             f"shape {src.shape} in dimension {d}")
    _check_bounds(index, shape[axis], axis, name)
    return axis, index.reshape(index.shape or (1,))


def require_alike(reference, other, name, what):
    """InputError unless tensor `other` (described by `what`) has reference's device and
    dtype, as PyTorch requires of its operands."""
    if other.device != reference.device:
        raise InputError(f"{name}(): {what} is on {other.device}, not {reference.device}")
    if other.dtype != reference.dtype:
        raise InputError(f"{name}(): {what} has dtype {other.dtype}, not {reference.dtype} "
                         "(operands must share one dtype)")


def _source(x, src, name):
    if not isinstance(src, Tensor):
        raise TypeError(f"{name}(): src must be a Tensor, not {type(src).__name__}")
    require_alike(x, src, name, "src")
    if src.ndim != x.ndim:
        raise InputError(f"{name}(): src must have as many dimensions as the tensor "
                         f"({x.ndim}), not {src.ndim}")
    return src.reshape(src.shape or (1,))


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    """A copy of input with out[..., index[i], ...] = src[i] along dim for each position i of
    index (src a tensor of input's dtype, or a number, which `value=` also gives); where an
    index repeats, one of the writes wins. reduce='add' is scatter_add; differentiable in
    input and src."""
    x = _check_tensor(input, "scatter")
    if (src is None) == (value is None):
        raise TypeError("scatter(): give either src (a tensor or number) or value=")
    src = value if src is None else src
    if reduce == "add" and isinstance(src, Tensor):
        return scatter_add(x, dim, index, src)
    if reduce is not None:
        raise NotImplementedError(f"scatter(): reduce={reduce!r} is not implemented (only "
                                  "None, or 'add' with a src tensor)")
    if isinstance(src, Tensor):
        src = _source(x, src, "scatter")
        axis, index = _scatter_index(x, dim, index, src, "scatter")
        out = Scatter.apply(x.reshape(x.shape or (1,)), src, index=index, axis=axis)
    else:
        if isinstance(src, bool) or not isinstance(src, (int, float, np.number, np.bool_)):
            raise TypeError(f"scatter(): value must be a number or src a Tensor, not "
                            f"{type(src).__name__}")
        axis, index = _scatter_index(x, dim, index, None, "scatter")
        value = np.asarray(src).astype(x.dtype).item()   # cast as torch does (2.7 -> 2)
        out = Scatter.apply(x.reshape(x.shape or (1,)), None, index=index, axis=axis,
                            value=value)
    return out.reshape(x.shape)


def scatter_add(input, dim, index, src):
    """A copy of input with src[i] added at out[..., index[i], ...] along dim for each
    position i of index (repeated indices accumulate); differentiable in input and src."""
    x = _check_tensor(input, "scatter_add")
    src = _source(x, src, "scatter_add")
    axis, index = _scatter_index(x, dim, index, src, "scatter_add")
    return ScatterAdd.apply(x.reshape(x.shape or (1,)), src, index=index,
                            axis=axis).reshape(x.shape)


def nonzero(input, *, as_tuple=False):
    """The indices of the non-zero entries, as an (N, ndim) int64 tensor in row-major order,
    or (as_tuple=True) a tuple of ndim 1-D int64 tensors (one for a 0-d input)."""
    x = _check_tensor(input, "nonzero")
    data = x.array.reshape(1) if (as_tuple and x.ndim == 0) else x.array
    if not as_tuple and x.ndim == 0:
        count = int(bool(data))
        return Tensor._wrap(x.xp.zeros((count, 0), dtype=np.int64))
    found = x.xp.nonzero(data)
    if as_tuple:
        return tuple(Tensor._wrap(i.astype(np.int64, copy=False)) for i in found)
    return Tensor._wrap(x.xp.stack(found, axis=1).astype(np.int64, copy=False))
