"""PyTorch's tensor-level functions (tl.cat, tl.max, tl.clamp, ...) with torch's names,
argument names and semantics; the Tensor methods of the same names call these."""
import builtins
import collections
import functools

import numpy as np

from . import backend, ops
from .errors import InputError
from .creation import _no_out
from .ops.arithmetic import Clone
from .ops.join import Cat, Stack
from .ops.select import Clamp, Maximum, Minimum, Where
from .ops.shape import Expand, Min, Repeat, Std, TakeAlong, Var
from .tensor import Tensor

MaxResult = collections.namedtuple("max", ["values", "indices"])
MaxResult.__doc__ = "(values, indices) of max(dim), as torch.return_types.max."
MinResult = collections.namedtuple("min", ["values", "indices"])
MinResult.__doc__ = "(values, indices) of min(dim), as torch.return_types.min."


# ---- helpers ----------------------------------------------------------------------------
def _check_tensor(x, name):
    """x as a Tensor: a NumPy/CuPy array (such as a tensor's `.array`) is taken as a tensor of
    it, unrecorded; anything else that is not a Tensor is a TypeError."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray) or backend.is_cupy_array(x):
        return Tensor._wrap(x)
    raise TypeError(f"{name}() expects a Tensor, not {type(x).__name__}")


def _dim(dim, ndim, name):
    """`dim` as a non-negative axis of a tensor with `ndim` dimensions (0-d takes -1 and 0)."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{name}(): dim must be an int, not {dim!r}")
    n = builtins.max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{name}(): dimension {dim} is out of range for a tensor of "
                         f"{ndim} dimensions (expected {-n}..{n - 1})")
    return int(dim) % n


def _dims(dim, ndim, name):
    """None (every axis), an int or a sequence of ints as a tuple of axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    return tuple(_dim(d, ndim, name) for d in dims)


def _tensors(tensors, name):
    """A non-empty list of Tensors, all on one device."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name}() expects a list or tuple of Tensors, "
                        f"not {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{name}() expects a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): item {i} is a {type(t).__name__}, not a Tensor")
        if t.device != tensors[0].device:
            raise ValueError(f"{name}(): tensors on different devices ({tensors[0].device} "
                             f"at 0, {t.device} at {i}): move them to one first")
    return list(tensors)


def _promoted(tensors):
    """The tensors cast to their common dtype (PyTorch's promotion)."""
    dtype = functools.reduce(backend.promote_types, (t.dtype for t in tensors))
    return [t._cast(dtype) for t in tensors]


# ---- joining and splitting ----------------------------------------------------------------
def cat(tensors, dim=0, *, out=None):
    """Concatenate along `dim` (shapes equal elsewhere; mixed dtypes promote as in torch).
    Differentiable: each input gets its slice of the gradient."""
    _no_out(out, "cat")
    tensors = _promoted(_tensors(tensors, "cat"))
    # NOTE: as in torch, 1-D empty tensors are skipped whatever the others' shape
    kept = [t for t in tensors if t.shape != (0,)] or tensors[:1]
    first = kept[0]
    for i, t in enumerate(kept):
        if t.ndim == 0:
            raise ValueError(f"cat(): a zero-dimensional tensor (item {i}) cannot be "
                             "concatenated: unsqueeze it first")
    axis = _dim(dim, first.ndim, "cat")
    for i, t in enumerate(kept):
        if (t.ndim != first.ndim or t.shape[:axis] != first.shape[:axis]
                or t.shape[axis + 1:] != first.shape[axis + 1:]):
            raise InputError(f"cat(): shapes must match except in dimension {dim}: "
                             f"{first.shape} and {t.shape} (item {i})")
    return Cat.apply(*kept, axis=axis)


concat = concatenate = cat


def stack(tensors, dim=0, *, out=None):
    """Join tensors of one shape along a new dimension `dim`. Differentiable."""
    _no_out(out, "stack")
    tensors = _promoted(_tensors(tensors, "stack"))
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise InputError(f"stack(): every tensor must have one shape, but item 0 has "
                             f"{tensors[0].shape} and item {i} has {t.shape}")
    axis = _dim(dim, tensors[0].ndim + 1, "stack")
    return Stack.apply(*tensors, axis=axis)


def split(tensor, split_size_or_sections, dim=0):
    """Pieces of `split_size` along `dim` (the last may be smaller), or of the listed sizes."""
    tensor = _check_tensor(tensor, "split")
    axis = _dim(dim, tensor.ndim, "split")
    n = tensor.shape[axis]
    sizes = split_size_or_sections
    if isinstance(sizes, (int, np.integer)):
        if sizes <= 0:
            raise ValueError(f"split(): split_size must be positive, not {sizes}")
        sizes = [builtins.min(sizes, n - start) for start in range(0, n, sizes)] or [0]
    elif builtins.sum(sizes) != n:
        raise ValueError(f"split(): sections {list(sizes)} add up to {builtins.sum(sizes)}, "
                         f"not to the size {n} of dimension {dim}")
    pieces, start = [], 0
    for size in sizes:
        pieces.append(tensor[(slice(None),) * axis + (slice(start, start + size),)])
        start += size
    return tuple(pieces)


def chunk(input, chunks, dim=0):
    """`chunks` pieces of ceil(n / chunks) along `dim` (fewer when n does not fill them)."""
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks < 1:
        raise ValueError(f"chunk(): chunks must be a positive int, not {chunks!r}")
    input = _check_tensor(input, "chunk")
    n = input.shape[_dim(dim, input.ndim, "chunk")]
    return split(input, builtins.max(-(-n // chunks), 1), dim)


# ---- shapes -------------------------------------------------------------------------------
def flatten(input, start_dim=0, end_dim=-1):
    """Collapse the dimensions from start_dim to end_dim (inclusive) into one."""
    return input.flatten(start_dim, end_dim)


def reshape(input, shape):
    """The same data in another shape (one dimension may be -1)."""
    return input.reshape(shape)


def transpose(input, dim0, dim1):
    """Swap two dimensions."""
    return input.transpose(dim0, dim1)


def permute(input, dims):
    """Reorder the dimensions."""
    return input.permute(dims)


def t(input):
    """The transpose of a tensor of at most 2 dimensions (0-D and 1-D as they are)."""
    input = _check_tensor(input, "t")
    if input.ndim > 2:
        raise ValueError(f"t() expects a tensor of at most 2 dimensions, not shape "
                         f"{input.shape}: use transpose(dim0, dim1) or permute")
    return input.transpose(0, 1) if input.ndim == 2 else input.reshape(input.shape)


def unsqueeze(input, dim):
    """A new dimension of size 1 at `dim` (-ndim-1 <= dim <= ndim)."""
    input = _check_tensor(input, "unsqueeze")
    axis = _dim(dim, input.ndim + 1, "unsqueeze")
    return input.reshape(input.shape[:axis] + (1,) + input.shape[axis:])


def squeeze(input, dim=None):
    """Drop the dimensions of size 1 (all, or those of `dim`, an int or tuple); a named
    dimension whose size is not 1 stays, as in torch."""
    input = _check_tensor(input, "squeeze")
    axes = set(_dims(dim, input.ndim, "squeeze"))
    return input.reshape(tuple(n for i, n in enumerate(input.shape)
                               if not (i in axes and n == 1)))


def expand(input, *sizes):
    """A broadcast of `input` to `sizes` (-1 keeps a size; only size-1 dimensions grow, and
    new dimensions come first). Differentiable: the gradient sums over the copies."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    input = _check_tensor(input, "expand")
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise ValueError(f"expand(): {len(sizes)} sizes {sizes} for a tensor of "
                         f"{input.ndim} dimensions {input.shape}")
    shape = []
    for i, size in enumerate(sizes):
        old = input.shape[i - lead] if i >= lead else None
        if size == -1 and old is not None:
            size = old
        if size < 0 or (old not in (None, 1, size)):
            raise ValueError(f"expand(): cannot expand shape {input.shape} to {sizes}: "
                             f"size {sizes[i]} at dimension {i} (only size-1 dimensions grow,"
                             " -1 only for existing ones)")
        shape.append(int(size))
    return Expand.apply(input, shape=tuple(shape))


def repeat(input, *sizes):
    """The tensor tiled `sizes[i]` times along dimension i (at least ndim sizes)."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    input = _check_tensor(input, "repeat")
    if len(sizes) < input.ndim:
        raise ValueError(f"repeat(): {len(sizes)} repeats {sizes} for a tensor of "
                         f"{input.ndim} dimensions: give at least one per dimension")
    if any(r < 0 for r in sizes):
        raise ValueError(f"repeat(): repeats must not be negative, not {sizes}")
    return Repeat.apply(input, reps=tuple(int(r) for r in sizes))


def clone(input):
    """A copy that stays in the graph (the gradient flows back to `input`)."""
    return Clone.apply(input)


# ---- element-wise -------------------------------------------------------------------------
def exp(input): return input.exp()
def log(input): return input.log()
def sqrt(input): return input.sqrt()
def abs(input): return input.abs()
def sigmoid(input): return input.sigmoid()
def relu(input): return input.relu()
def tanh(input): return input.tanh()
def matmul(input, other): return input @ other


def softmax(input, dim, dtype=None):
    """exp(x) / Σ exp(x) along `dim` (computed stably)."""
    x = _check_tensor(input, "softmax")
    x = x if dtype is None else x.to(dtype)
    return ops.Softmax.apply(x, axis=_dim(dim, x.ndim, "softmax"))


def log_softmax(input, dim, dtype=None):
    """log softmax along `dim` (computed stably)."""
    x = _check_tensor(input, "log_softmax")
    x = x if dtype is None else x.to(dtype)
    return ops.LogSoftmax.apply(x, axis=_dim(dim, x.ndim, "log_softmax"))


def maximum(input, other):
    """Element-wise maximum (broadcast, promoted); ties share the gradient half and half."""
    return Maximum.apply(*_check_tensor(input, "maximum")._operands(other))


def minimum(input, other):
    """Element-wise minimum (broadcast, promoted); ties share the gradient half and half."""
    return Minimum.apply(*_check_tensor(input, "minimum")._operands(other))


def _bound(x, value, name):
    """A clamp bound as a tensor of x's dtype on x's device, or None."""
    if value is None:
        return None
    return x._operands(value)[1]


def clamp(input, min=None, max=None):
    """min(max(input, min), max), bounds numbers or tensors (broadcast). The gradient passes
    where min <= input <= max, the bounds included, as in torch; NaN stays NaN."""
    x = _check_tensor(input, "clamp")
    if min is None and max is None:
        raise ValueError("clamp(): give at least one of min and max")
    for bound in (min, max):  # an integer tensor with a float bound gives a float result
        if bound is not None:
            x = x._operands(bound)[0]
    return Clamp.apply(x, _bound(x, min, "min"), _bound(x, max, "max"))


clip = clamp


def where(condition, input, other):
    """input where condition holds, else other (either may be a number); broadcast, and
    promoted as torch. Differentiable in input and other."""
    if isinstance(condition, Tensor):
        condition = condition.array
    condition = backend.get_array_module(condition).asarray(condition)
    if condition.dtype != np.bool_:
        raise TypeError(f"where(): condition must be boolean, not {condition.dtype}")
    if isinstance(input, Tensor):
        a, b = input._operands(other)
    elif isinstance(other, Tensor):
        b, a = other._operands(input)
    else:
        a, b = Tensor(input, device=backend.device_of(condition))._operands(other)
    return Where.apply(a, b, cond=backend.to_device(condition, a.device))


# ---- reductions ---------------------------------------------------------------------------
def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum over `dim` (int, tuple or None for all)."""
    x = input if dtype is None else input.to(dtype)
    return x.sum(dim, keepdim)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over `dim` (int, tuple or None for all) of a floating-point tensor."""
    x = input if dtype is None else input.to(dtype)
    return x.mean(dim, keepdim)


def _correction(unbiased, correction, name):
    """torch's correction from unbiased= (True: 1, False: 0) or correction= (default 1)."""
    if unbiased is not None and correction is not None:
        raise TypeError(f"{name}(): give unbiased= or correction=, not both")
    if unbiased is not None:
        return 1 if unbiased else 0
    return 1 if correction is None else correction


def _spread(op, name, input, dim, unbiased, keepdim, correction):
    if isinstance(dim, bool):        # std(x, False): the unbiased flag in dim's place
        dim, unbiased = None, dim
    input = _check_tensor(input, name)
    if input.dtype.kind != "f":
        raise TypeError(f"{name}() needs a floating-point tensor, not {input.dtype}")
    return op.apply(input, axis=_dims(dim, input.ndim, name),
                    correction=_correction(unbiased, correction, name), keepdims=keepdim)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over `dim`: Σ(x − mean)² / (n − correction); correction=1 (unbiased) by
    default, as torch 2; unbiased=False is correction=0."""
    return _spread(Var, "var", input, dim, unbiased, keepdim, correction)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation, the square root of var (same arguments); where it is 0 the
    gradient is 0, as in torch."""
    return _spread(Std, "std", input, dim, unbiased, keepdim, correction)


def _all(dim):
    """torch's dim=() (every dimension) as None."""
    return None if isinstance(dim, (tuple, list)) and len(dim) == 0 else dim


def amax(input, dim=(), keepdim=False):
    """Maximum over `dim` (int or tuple; () or None for all); ties share the gradient."""
    return ops.Max.apply(input, axis=_dims(_all(dim), input.ndim, "amax"), keepdims=keepdim)


def amin(input, dim=(), keepdim=False):
    """Minimum over `dim` (int or tuple; () or None for all); ties share the gradient."""
    return Min.apply(input, axis=_dims(_all(dim), input.ndim, "amin"), keepdims=keepdim)


def _arg(input, dim, keepdim, pick):
    """argmax/argmin as int64 tensors outside the graph; the first of ties (NaN wins)."""
    input = _check_tensor(input, pick)
    xp = input.xp
    if dim is None:
        index = getattr(input.array, pick)()
        index = index.reshape((1,) * input.ndim) if keepdim else index
        return Tensor._wrap(xp.asarray(index, dtype=np.int64))
    axis = _dim(dim, input.ndim, pick)
    data = input.array.reshape(1) if input.ndim == 0 else input.array
    index = getattr(data, pick)(axis=axis).astype(np.int64)
    if input.ndim == 0:
        return Tensor._wrap(index.reshape(()))
    return Tensor._wrap(xp.expand_dims(index, axis) if keepdim else index)


def _not_bool(input, name):
    input = _check_tensor(input, name)
    if input.dtype == np.bool_:
        raise TypeError(f"{name}() does not support bool input (as in PyTorch): convert it "
                        "first, e.g. x.long()")
    return input


def argmax(input, dim=None, keepdim=False):
    """Indices of the maxima along `dim` (of the flattened tensor when None)."""
    return _arg(_not_bool(input, "argmax"), dim, keepdim, "argmax")


def argmin(input, dim=None, keepdim=False):
    """Indices of the minima along `dim` (of the flattened tensor when None)."""
    return _arg(_not_bool(input, "argmin"), dim, keepdim, "argmin")


def _extreme(input, dim, keepdim, other, pick):
    """torch.max/min's three forms: whole tensor, (values, indices) along dim, element-wise."""
    input = _check_tensor(input, pick)
    if other is not None or isinstance(dim, Tensor):
        other = dim if other is None else other
        return (maximum if pick == "max" else minimum)(input, other)
    if dim is None:
        return (amax if pick == "max" else amin)(input, None, keepdim)
    axis = _dim(dim, input.ndim, pick)
    if input.ndim == 0:
        index = Tensor._wrap(input.xp.zeros((), dtype=np.int64))
        return (MaxResult if pick == "max" else MinResult)(clone(input), index)
    indices = _arg(input, axis, True, "arg" + pick)
    values = TakeAlong.apply(input, index=indices.array, axis=axis, keepdims=keepdim)
    indices = indices if keepdim else indices.reshape(values.shape)
    return (MaxResult if pick == "max" else MinResult)(values, indices)


def max(input, dim=None, keepdim=False, *, other=None):
    """max(t): the largest entry (ties share the gradient); max(t, dim, keepdim): the named
    tuple (values, indices), the gradient to the first maximum; max(a, b): maximum(a, b)."""
    return _extreme(input, dim, keepdim, other, "max")


def min(input, dim=None, keepdim=False, *, other=None):
    """min(t), min(t, dim, keepdim) -> (values, indices), min(a, b), as max."""
    return _extreme(input, dim, keepdim, other, "min")


# ---- questions ----------------------------------------------------------------------------
def numel(input):
    """The number of elements."""
    return _check_tensor(input, "numel").numel()


def is_tensor(obj):
    """True for a tinylesion Tensor."""
    return isinstance(obj, Tensor)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when |input − other| <= atol + rtol·|other| everywhere (broadcast)."""
    a, b = _check_tensor(input, "allclose")._operands(other)
    return bool(a.xp.allclose(a.array, b.array, rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(input, other):
    """True when both tensors have one shape and equal elements (dtypes may differ)."""
    a, b = _check_tensor(input, "equal"), _check_tensor(other, "equal")
    if a.shape != b.shape:
        return False
    a, b = a._operands(b)
    return bool((a.array == b.array).all())
