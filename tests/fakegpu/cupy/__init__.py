"""A stand-in for CuPy on the CPU, for tests only: NumPy arrays that behave as device arrays.

`cupy.ndarray` is a NumPy subclass whose data is said to live on "the device". It follows
CuPy where CuPy differs from NumPy in ways a program could trip on, and is strict about them:

- a ufunc or NumPy function given a cupy.ndarray and a NumPy array (ndim >= 1) raises
  TypeError, as do numpy.asarray/array/ascontiguousarray of a cupy.ndarray (CuPy refuses
  implicit conversion), and assigning a NumPy array into a cupy.ndarray;
- reductions and integer indexing give 0-d cupy arrays, never NumPy scalars;
- every device-to-host copy (cupy.asnumpy, .get(), .item(), .tolist(), float(), int(),
  bool(), repr) is counted in `transfers["d2h"]`, host-to-device copies in `transfers["h2d"]`;
- every operation is queued on the current stream (cupy.cuda), and reading an array that
  another stream wrote without waiting for it raises cupy.cuda.StreamOrderError.

Importing it under NUMBA_ENABLE_CUDASIM=1 also connects numba.cuda's simulator to it
(_simulator.py): `numba.cuda.external_stream` exists, and kernels launched on CuPy arrays
must be given the current CuPy stream and no host array.
"""
import functools
import os
import threading

import numpy as _np

from . import cuda

__version__ = "13.0.0-fake"

transfers = {"d2h": 0, "h2d": 0}
_count_lock = threading.Lock()
_record = threading.local()

# NumPy's converters, kept before they are made strict below
_np_array, _np_asarray = _np.array, _np.asarray
_np_asanyarray, _np_ascontiguousarray = _np.asanyarray, _np.ascontiguousarray
_np_asfortranarray = _np.asfortranarray


def _count(kind, what):
    with _count_lock:
        transfers[kind] += 1
    log = getattr(_record, "log", None)
    if log is not None:
        import traceback
        log.append((kind, what, "".join(traceback.format_stack(limit=12)[:-2])))


def record_transfers():
    """Start keeping (kind, what, stack) of each transfer of this thread in a list; returns it."""
    _record.log = []
    return _record.log


def reset_transfers():
    transfers.update(d2h=0, h2d=0)


def _is_host(a):
    return isinstance(a, _np.ndarray) and not isinstance(a, ndarray)


class ndarray(_np.ndarray):
    """An array on the (pretend) device."""

    # the stream and position of the last write, checked by readers on other streams
    _stream = None
    _position = 0

    def __array_finalize__(self, obj):
        if isinstance(obj, ndarray):
            self._stream, self._position = obj._stream, obj._position

    # ---- the NumPy protocols: device arrays only, results on the device ---------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _call(getattr(ufunc, method), f"{ufunc.__name__}.{method}", inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _call(func, func.__name__, args, kwargs)

    # ---- indexing ---------------------------------------------------------------------
    def __getitem__(self, index):
        _refuse_host(index, "an index")
        result = _np.ndarray.__getitem__(self, _unwrap(index))
        return _wrap(result, like=self)

    def __setitem__(self, index, value):
        _refuse_host(index, "an index")
        if _is_host(value) and value.ndim >= 1:
            raise TypeError("cupy.ndarray: assigning a numpy.ndarray into a device array; "
                            "use cupy.asarray first")
        _check_reads([self, value, index], "__setitem__")
        _np.ndarray.__setitem__(self, _unwrap(index), _unwrap(value))
        _mark_written([self])

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    # ---- methods NumPy answers with scalars ---------------------------------------------
    def argmax(self, axis=None, out=None, keepdims=False):
        return _wrap(_np.ndarray.argmax(self.view(_np.ndarray), axis, keepdims=keepdims),
                     like=self)

    def argmin(self, axis=None, out=None, keepdims=False):
        return _wrap(_np.ndarray.argmin(self.view(_np.ndarray), axis, keepdims=keepdims),
                     like=self)

    # ---- device to host -----------------------------------------------------------------
    def get(self, stream=None, order="C", out=None, blocking=True):
        """A NumPy copy on the host (a device-to-host transfer)."""
        _check_reads([self], "get")
        _count("d2h", f"get {self.dtype} {self.shape}")
        host = _np_array(self.view(_np.ndarray), order=order, copy=True)
        if out is not None:
            out[...] = host
            return out
        return host

    def item(self, *args):
        _check_reads([self], "item")
        _count("d2h", f"item {self.dtype} {self.shape}")
        return _np.ndarray.item(self.view(_np.ndarray), *args)

    def tolist(self):
        _check_reads([self], "tolist")
        _count("d2h", f"tolist {self.dtype} {self.shape}")
        return _np.ndarray.tolist(self.view(_np.ndarray))

    def _scalar(self, kind):
        if self.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python scalars")
        return kind(self.item())

    def __float__(self):
        return self._scalar(float)

    def __int__(self):
        return self._scalar(int)

    def __index__(self):
        if self.dtype.kind not in "iu" or self.ndim != 0:
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        return self._scalar(int)

    def __bool__(self):
        return self._scalar(bool)

    def __repr__(self):
        _count("d2h", "repr")
        return repr(self.view(_np.ndarray))

    __str__ = __repr__

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                        "`.get()` to construct a NumPy array explicitly.")

    @property
    def device(self):
        return cuda.Device(0)

    @property
    def data(self):
        """The device pointer (cupy.cuda.MemoryPointer): `.ptr` is the first element's address,
        which the stand-in NCCL (cuda/nccl.py) reads and writes."""
        return cuda.memory.MemoryPointer(self.ctypes.data)

    def copy(self, order="C"):
        _check_reads([self], "copy")
        return _wrap(_np.ndarray.copy(self.view(_np.ndarray), order=order), like=None)

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        _check_reads([self], "astype")
        view = self.view(_np.ndarray)
        result = view.astype(dtype, order=order, copy=copy)
        return self if result is view else _wrap(result, like=None)

    def fill(self, value):
        _np.ndarray.fill(self.view(_np.ndarray), value)
        _mark_written([self])


ndarray.__module__ = "cupy"

# ---------------------------------------------------------------------------------------------
# Dispatch: refuse host arrays next to device arrays, run NumPy on views, wrap the results
# ---------------------------------------------------------------------------------------------


def _walk(obj):
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _walk(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _walk(item)
    else:
        yield obj


def _refuse_host(obj, what):
    for a in _walk(obj):
        if _is_host(a) and a.ndim >= 1:
            raise TypeError(f"Unsupported type {type(a)}: a numpy.ndarray given as {what} "
                            "with cupy arrays (CuPy never mixes host and device arrays)")


def _unwrap(obj):
    if isinstance(obj, ndarray):
        return obj.view(_np.ndarray)
    if isinstance(obj, tuple):
        return tuple(_unwrap(o) for o in obj)
    if isinstance(obj, list):
        return [_unwrap(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _unwrap(v) for k, v in obj.items()}
    return obj


def _check_reads(objs, what):
    reader = cuda.get_current_stream()
    for a in _walk(objs):
        if isinstance(a, ndarray):
            cuda.check_read(a._stream, a._position, reader, f"{what}: an array")


def _mark_written(objs):
    stream = cuda.get_current_stream()
    position = cuda.advance(stream)
    for a in _walk(objs):
        if isinstance(a, ndarray):
            a._stream, a._position = stream, position
            base = a.base
            while isinstance(base, ndarray):
                base._stream, base._position = stream, position
                base = base.base


def _wrap(result, like=None):
    """Results of NumPy on the device: arrays and scalars become cupy arrays (0-d for scalars)."""
    if isinstance(result, ndarray):
        return result
    if isinstance(result, _np.ndarray):
        out = result.view(ndarray)
        if like is not None and _np.may_share_memory(result, like.view(_np.ndarray)):
            out._stream, out._position = like._stream, like._position
        else:
            _mark_written([out])
        return out
    if isinstance(result, _np.generic):
        return _wrap(_np_asarray(result))
    if isinstance(result, tuple):
        return tuple(_wrap(r, like) for r in result)
    if isinstance(result, list):
        return [_wrap(r, like) for r in result]
    return result


def _call(func, name, args, kwargs):
    """Run a NumPy function on device arrays; TypeError when host arrays are mixed in."""
    _refuse_host((args, kwargs), f"an argument of {name}")
    _check_reads((args, kwargs), name)
    out = kwargs.get("out")
    result = func(*_unwrap(args), **_unwrap(kwargs))
    if out is not None:
        outs = out if isinstance(out, tuple) else (out,)
        _mark_written(list(outs))
        if isinstance(out, tuple):
            return outs[0] if len(outs) == 1 else outs
        return out
    return _wrap(result)


# ---------------------------------------------------------------------------------------------
# Module functions
# ---------------------------------------------------------------------------------------------

def asarray(a, dtype=None, order=None, copy=None, blocking=False):
    """A device array: `a` itself when it already is one of that dtype, else a copy."""
    if isinstance(a, ndarray):
        return a if dtype is None or _np.dtype(dtype) == a.dtype else a.astype(dtype)
    for item in _walk(a):
        if isinstance(item, ndarray):
            raise TypeError("cupy.asarray of a sequence holding cupy arrays: use cupy.stack")
    host = _np_array(a, dtype=dtype, order=order or "K", copy=True)
    _count("h2d", f"asarray {host.dtype} {host.shape}")
    return _wrap(host)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, blocking=False):
    """A new device array (always a copy)."""
    if isinstance(obj, ndarray):
        _check_reads([obj], "array")
        result = _np_array(obj.view(_np.ndarray), dtype=dtype, copy=True, order=order,
                           ndmin=ndmin)
        return _wrap(result)
    host = _np_array(obj, dtype=dtype, copy=True, order=order, ndmin=ndmin)
    _count("h2d", f"array {host.dtype} {host.shape}")
    return _wrap(host)


asanyarray = asarray


def ascontiguousarray(a, dtype=None):
    """A C-contiguous device array (no copy when `a` already is one)."""
    a = asarray(a, dtype=dtype)
    if a.flags.c_contiguous:
        return a
    return _call(_np_ascontiguousarray, "ascontiguousarray", (a,), {})


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """A NumPy copy of a device array (a device-to-host transfer); NumPy input as numpy.asarray."""
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return _np_asarray(a, order=order)


def get_array_module(*args):
    """cupy when any argument is a cupy.ndarray, else numpy."""
    import sys
    for a in args:
        if isinstance(a, ndarray):
            return sys.modules[__name__]
    return _np


@functools.lru_cache(maxsize=None)
def _device_function(name):
    target = getattr(_np, name)
    if not callable(target) or isinstance(target, type):
        return target

    @functools.wraps(target)
    def function(*args, **kwargs):
        return _call(target, name, args, kwargs)
    return function


def __getattr__(name):
    """Any other NumPy name: dtypes and constants as they are, functions on the device."""
    if name.startswith("__") or not hasattr(_np, name) or \
            isinstance(getattr(_np, name), type(_np)):
        raise AttributeError(f"module 'cupy' has no attribute {name!r}")
    return _device_function(name)


def get_default_memory_pool():
    return _MemoryPool()


def get_default_pinned_memory_pool():
    return _MemoryPool()


class _MemoryPool:
    def free_all_blocks(self):
        pass

    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def set_limit(self, size=None, fraction=None):
        pass


# ---------------------------------------------------------------------------------------------
# NumPy refuses device arrays (CuPy's __array__ raises; a NumPy subclass would pass silently)
# ---------------------------------------------------------------------------------------------

def _strict(converter):
    @functools.wraps(converter)
    def strict(a, *args, **kwargs):
        if isinstance(a, ndarray):
            a.__array__()  # raises TypeError as CuPy does
        return converter(a, *args, **kwargs)
    return strict


if os.environ.get("FAKECUPY_LENIENT_NUMPY", "0") == "0":
    _np.array, _np.asarray = _strict(_np_array), _strict(_np_asarray)
    _np.asanyarray = _strict(_np_asanyarray)
    _np.ascontiguousarray = _strict(_np_ascontiguousarray)
    _np.asfortranarray = _strict(_np_asfortranarray)

import importlib  # noqa: E402

random = importlib.import_module(__name__ + ".random")
_simulator = importlib.import_module(__name__ + "._simulator")
linalg = importlib.import_module(__name__ + ".linalg")
