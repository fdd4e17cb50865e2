"""Making tensors as torch does: zeros, ones, full, arange, linspace, eye, random draws,
from_numpy and the *_like forms, with torch's dtype=, device= and requires_grad= keywords."""
import math

import numpy as np

from . import backend
from .rng import numpy_generator
from .tensor import Tensor


def _size(args, size, name):
    """Sizes given as ints, one tuple or list, or size=: a tuple of non-negative ints."""
    if size is not None:
        if args:
            raise TypeError(f"{name}() got sizes both as arguments {args} and size={size!r}")
        args = (size,)
    if not args:  # as torch: a 0-d tensor is asked for with an empty tuple, zeros(())
        raise TypeError(f"{name}() missing its size (for a 0-d tensor, pass ())")
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    for n in args:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"{name}(): sizes must be ints, not {n!r} in {args}")
        if n < 0:
            raise ValueError(f"{name}(): sizes must not be negative, not {n} in {args}")
    return tuple(int(n) for n in args)


def _dtype(dtype, default=backend.DEFAULT_DTYPE):
    return np.dtype(default if dtype is None else dtype)


def _make(array, requires_grad):
    """A Tensor around a freshly made array (not copied)."""
    if requires_grad and array.dtype.kind != "f":
        raise TypeError(f"only floating-point tensors can require gradients, not {array.dtype}")
    return Tensor._wrap(array, requires_grad=bool(requires_grad))


def _xp(device):
    return backend.as_device("cpu" if device is None else device).xp


def zeros(*size, dtype=None, device=None, requires_grad=False, out=None):
    """A tensor of zeros (float32 unless dtype= says otherwise)."""
    _no_out(out, "zeros")
    return _make(_xp(device).zeros(_size(size, None, "zeros"), _dtype(dtype)), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False, out=None):
    """A tensor of ones (float32 unless dtype= says otherwise)."""
    _no_out(out, "ones")
    return _make(_xp(device).ones(_size(size, None, "ones"), _dtype(dtype)), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False, out=None):
    """A tensor whose values are whatever the memory held (as torch.empty)."""
    _no_out(out, "empty")
    return _make(_xp(device).empty(_size(size, None, "empty"), _dtype(dtype)), requires_grad)


def _fill_dtype(value):
    """torch.full's dtype for a fill value: bool, int64, or the default float."""
    if isinstance(value, (bool, np.bool_)):
        return np.bool_
    if isinstance(value, (int, np.integer)):
        return np.int64
    return backend.DEFAULT_DTYPE


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False, out=None):
    """A tensor of `size` filled with `fill_value`, dtype from the value as torch.full."""
    _no_out(out, "full")
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    array = _xp(device).full(_size((size,), None, "full"), fill_value,
                             _dtype(dtype, _fill_dtype(fill_value)))
    return _make(array, requires_grad)


def _like(input, dtype, device):
    """(xp, dtype) for a *_like function: the input's unless given."""
    if not isinstance(input, Tensor):
        raise TypeError(f"expected a Tensor, not {type(input).__name__}")
    return _xp(input.device if device is None else device), _dtype(dtype, input.dtype)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False):
    """Zeros of the input's shape, dtype and device."""
    xp, dtype = _like(input, dtype, device)
    return _make(xp.zeros(input.shape, dtype), requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False):
    """Ones of the input's shape, dtype and device."""
    xp, dtype = _like(input, dtype, device)
    return _make(xp.ones(input.shape, dtype), requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False):
    """An uninitialised tensor of the input's shape, dtype and device."""
    xp, dtype = _like(input, dtype, device)
    return _make(xp.empty(input.shape, dtype), requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    """`fill_value` in the input's shape, dtype and device."""
    xp, dtype = _like(input, dtype, device)
    return _make(xp.full(input.shape, fill_value, dtype), requires_grad)


def _number(value, name):
    if isinstance(value, Tensor):
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, not {value!r}")
    return value


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False, out=None):
    """start, start + step, ... up to end (excluded): int64 when every argument is an int,
    float32 otherwise (as torch.arange). The values are start + i·step, computed in float64."""
    _no_out(out, "arange")
    if end is None:
        start, end = 0, start
    start, end, step = (_number(v, n) for v, n in ((start, "start"), (end, "end"),
                                                   (step, "step")))
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: end {end} cannot be reached from start {start} "
                         f"with step {step}")
    integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    dtype = _dtype(dtype, np.int64 if integral else backend.DEFAULT_DTYPE)
    count = math.ceil((end - start) / step)
    if integral:
        values = start + step * np.arange(count, dtype=np.int64)
    else:
        values = float(start) + float(step) * np.arange(count, dtype=np.float64)
    return _make(_xp(device).asarray(values.astype(dtype)), requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False,
             out=None):
    """`steps` evenly spaced values from start to end (both included), float32 by default.

    NOTE: torch's formula, in the output dtype: start + i·h for the first half, end − (n−1−i)·h
    for the second, h = (end − start)/(steps − 1); so the last value is end exactly. (torch's
    vectorised CPU loop steps from the start of each SIMD block, which may differ in the last
    bit on long ranges.)
    """
    _no_out(out, "linspace")
    start, end = _number(start, "start"), _number(end, "end")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, not {steps!r}")
    dtype = _dtype(dtype)
    work = dtype if dtype.kind == "f" else np.dtype(np.float64)
    index = np.arange(steps)
    if steps == 1:
        values = np.full(1, start, work)
    else:
        h = (work.type(end) - work.type(start)) / work.type(steps - 1)
        first = work.type(start) + h * index.astype(work)
        last = work.type(end) - h * (steps - 1 - index).astype(work)
        values = np.where(index < steps // 2, first, last)
    return _make(_xp(device).asarray(values.astype(dtype)), requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False, out=None):
    """The n×m identity matrix (m = n by default)."""
    _no_out(out, "eye")
    n, m = _size((n, n if m is None else m), None, "eye")
    return _make(_xp(device).eye(n, m, dtype=_dtype(dtype)), requires_grad)


def _generator(device, generator):
    if generator is not None:
        if backend.as_device("cpu" if device is None else device).name != "cpu":
            raise ValueError("generator=: a tl.Generator draws on the CPU; draw there and "
                             "move the tensor with .to(device)")
        return numpy_generator(generator)
    return backend.generator(backend.as_device("cpu" if device is None else device))


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False, out=None):
    """Uniform draws from [0, 1), from the generator that tl.manual_seed seeds."""
    _no_out(out, "rand")
    dtype = _dtype(dtype)
    _floating(dtype, "rand")
    draws = _generator(device, generator).random(_size(size, None, "rand"), dtype=dtype)
    return _make(draws, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False, out=None):
    """Standard normal draws, from the generator that tl.manual_seed seeds."""
    _no_out(out, "randn")
    dtype = _dtype(dtype)
    _floating(dtype, "randn")
    draws = _generator(device, generator).standard_normal(_size(size, None, "randn"),
                                                          dtype=dtype)
    return _make(draws, requires_grad)


def randint(*args, size=None, generator=None, dtype=None, device=None, requires_grad=False,
            out=None):
    """Integers drawn uniformly from [low, high): randint(high, size) or
    randint(low, high, size); int64 unless dtype= says otherwise."""
    _no_out(out, "randint")
    if size is None and args:
        args, size = args[:-1], args[-1]
    if len(args) not in (1, 2) or size is None or not isinstance(size, (tuple, list)):
        raise TypeError("randint takes (high, size) or (low, high, size), size a tuple: "
                        "randint(3, 10, (5,))")
    low, high = (0, args[0]) if len(args) == 1 else args
    if not low < high:
        raise ValueError(f"randint: low {low} must be below high {high}")
    draws = _generator(device, generator).integers(low, high, _size((size,), None, "randint"))
    return _make(draws.astype(_dtype(dtype, np.int64)), requires_grad)


def from_numpy(ndarray):
    """A tensor sharing memory with a NumPy array (changes to one show in the other)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, not {type(ndarray).__name__}")
    if ndarray.dtype.kind not in "biuf":
        raise TypeError(f"from_numpy: arrays of dtype {ndarray.dtype} are not supported")
    return Tensor._wrap(ndarray)


def _floating(dtype, name):
    if dtype.kind != "f":
        raise TypeError(f"{name}: dtype must be floating point, not {dtype}")


def _no_out(out, name):
    if out is not None:
        raise NotImplementedError(f"{name}: out= is not implemented; assign the result instead")
