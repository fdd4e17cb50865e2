"""Tensor and no_grad(); the Function base class and backward() are in autograd.py."""
import threading
import weakref

import numpy as np

from . import backend
from .compile import check_memory_format
from . import inference_cache as _inference_cache
from .errors import foreign_tensor_error, is_foreign_tensor
from .tensor_methods import TensorMethods
from .tensor_methods_more import MoreTensorMethods

_grad_mode = threading.local()


def is_grad_enabled():
    """False inside a `no_grad()` block of the current thread."""
    return getattr(_grad_mode, "enabled", True)


class no_grad:
    """Context manager (and decorator) in which operations record no graph."""

    def __enter__(self):
        self._previous = is_grad_enabled()
        _grad_mode.enabled = False

    def __exit__(self, *exc):
        _grad_mode.enabled = self._previous

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


def _holds_float64(data):
    """True when a nested list holds a NumPy float64 number or array (torch.tensor keeps
    float64 then, where Python floats alone give the default dtype)."""
    if isinstance(data, (list, tuple)):
        return any(_holds_float64(item) for item in data)
    return getattr(data, "dtype", None) == np.float64


def _as_array(data, device, dtype=None):
    """Turn `data` into a backend array with torch.tensor's dtype rules (not copied); Python
    floats are read at full precision when a dtype is asked for (it casts them after)."""
    if isinstance(data, Tensor):
        data = data.array
    if isinstance(data, np.ndarray) or backend.is_cupy_array(data):
        array = data
    elif isinstance(data, np.generic):   # NumPy numbers keep their dtype
        array = np.asarray(data)
    elif isinstance(data, bool):
        array = np.asarray(data, dtype=np.bool_)
    elif isinstance(data, int):
        array = np.asarray(data, dtype=np.int64)
    elif isinstance(data, float):
        array = np.asarray(data, dtype=backend.DEFAULT_DTYPE if dtype is None else np.float64)
    elif not isinstance(data, (list, tuple)) and hasattr(data, "__array__"):
        array = np.asarray(data)         # other array objects keep their dtype
    else:  # nested lists: Python floats become float32, integers int64, as torch.tensor does
        array = np.asarray(data)
        if array.dtype == np.float64 and dtype is None and not _holds_float64(data):
            array = array.astype(backend.DEFAULT_DTYPE)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"cannot make a Tensor from {type(data).__name__} "
                        f"(array dtype {array.dtype})")
    if device is not None:
        array = backend.to_device(array, device)
    return array


def _dims(dim, axis, keepdim, keepdims, name):
    """PyTorch's dim/keepdim or NumPy's axis/keepdims (not both) as (axis, keepdims)."""
    if dim is not None and axis is not None:
        raise TypeError(f"{name}() got both dim={dim!r} and axis={axis!r}: give one")
    return (dim if axis is None else axis), bool(keepdim if keepdims is None else keepdims)


class RemovableHandle:
    """What register_hook and the other hook registrations return: remove() takes the hook
    away."""

    def __init__(self, hooks, key):
        self._hooks, self._key = hooks, key

    def remove(self):
        """Unregister the hook (again: nothing happens)."""
        self._hooks.pop(self._key, None)



def _add_hook(holder, kind, hook):
    """Add hook to holder's {key: hook} dict named `kind` (made on first use); its handle."""
    if not callable(hook):
        raise TypeError(f"the hook must be callable, not {type(hook).__name__}")
    hooks = getattr(holder, kind)
    if hooks is None:
        hooks = {}
        setattr(holder, kind, hooks)
    Tensor._hooks_registered = True
    key = next(Tensor._hook_keys)
    hooks[key] = hook
    return RemovableHandle(hooks, key)


def _check_grad(tensor, grad):
    """Refuse, in one line, a gradient that cannot be `tensor`'s (PyTorch's checks of t.grad =)."""
    if not isinstance(grad, Tensor):
        raise TypeError(f"t.grad = value takes a Tensor or None, not {type(grad).__name__}"
                        + (" (wrap an array in a Tensor)" if hasattr(grad, "shape") else ""))
    if grad is tensor:
        raise RuntimeError("t.grad = t: a tensor cannot be its own gradient")
    for what, mine, its in (("dtype", tensor.dtype, grad.dtype),
                            ("device", tensor.device.name, grad.device.name),
                            ("shape", tensor.shape, grad.shape)):
        if mine != its:
            raise RuntimeError(f"t.grad = value: the gradient's {what} is {its}, the "
                               f"tensor's {mine} (they must be the same)")


class _GraphNode:
    """A recorded op's output as the graph sees it: the Function that made it, its dtype, and
    the tensor itself only weakly.

    NOTE: the ops that use a tensor point at its node, not at it, so the graph does not keep
    the tensor's array alive: an activation lives only as long as the user holds it or an op
    saved it for its backward (a batch norm's or a residual sum's output is freed once the
    next op has run, as in PyTorch). Leaves (parameters, inputs) are in the graph themselves.
    """
    __slots__ = ("_ctx", "_tensor", "dtype", "_grad_hooks", "__weakref__")
    _post_accumulate_hooks = None   # only leaves have them

    def __init__(self, tensor, fn):
        self._ctx, self._tensor, self.dtype = fn, weakref.ref(tensor), tensor.array.dtype
        self._grad_hooks = None   # {key: hook} of Tensor.register_hook, kept with the graph

    def tensor(self):
        """The tensor, or None once nobody holds it."""
        return self._tensor()

    @property
    def _used(self):
        t = self._tensor()
        return t is not None and t._used

    @_used.setter
    def _used(self, value):
        t = self._tensor()
        if t is not None:
            t._used = value

class Tensor(TensorMethods, MoreTensorMethods):
    """An n-dimensional array on a device that records the operations made on it (PyTorch's
    less central methods come from TensorMethods, in tensor_methods.py)."""

    __array_priority__ = 1000  # so that `ndarray + Tensor` calls Tensor.__radd__
    _post_accumulate_hooks = None  # {key: hook} once a hook is registered on this leaf
    _grad_hooks = None  # {key: hook} of register_hook on this leaf (an op output's: its node)
    _hook_keys = iter(range(1 << 62))  # one counter shared by all tensors
    _hooks_registered = False  # True once any tensor got one: backward() then looks for them

    def __init__(self, data, requires_grad=False, device=None, dtype=None):
        array = _as_array(data, device, dtype)
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        source = data.array if isinstance(data, Tensor) else data
        if array is source:  # NOTE: a copy, as torch.tensor makes: updating this tensor in
            array = array.copy()  # place (an optimizer step) leaves the caller's array alone
        if requires_grad and array.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"not {array.dtype}")
        self.array = array
        self._grad = None
        self.requires_grad = bool(requires_grad)
        self._node = None         # its place in the graph, if a recorded op produced it
        self._retain_grad = False
        self._used = False        # an input of a recorded op (see _in_place)

    @classmethod
    def _wrap(cls, array, requires_grad=False):
        """A Tensor around a backend array, neither copied nor converted (for the ops)."""
        if not isinstance(array, np.ndarray) and not backend.is_cupy_array(array):
            array = np.asarray(array)  # a NumPy scalar from a full reduction
        t = object.__new__(Tensor)
        t.array, t._grad, t.requires_grad = array, None, requires_grad
        t._node, t._retain_grad, t._used = None, False, False
        return t

    # ---- its place in the graph -----------------------------------------------------------
    @property
    def _ctx(self):
        """The Function that produced this tensor (None for a leaf)."""
        return None if self._node is None else self._node._ctx

    @_ctx.setter
    def _ctx(self, fn):
        if fn is None:
            self._node = None
        elif self._node is None:
            self._node = _GraphNode(self, fn)
        else:
            self._node._ctx = fn

    # ---- its array: .array (the engine's), .data (PyTorch's) --------------------------------
    # NOTE: `array` is the tensor's NumPy/CuPy array, an instance attribute the ops read
    # directly. `data` is PyTorch's: another Tensor around the same array (no copy), with no
    # history and no gradient, so that in-place changes made through it (`p.data.mul_(2)`,
    # `p.data -= lr * p.grad.data`) change this tensor and are not recorded nor refused by the
    # graph; they count as writes for the inference cache as any tensor method's do.
    @property
    def data(self):
        """A Tensor sharing this tensor's array, outside the graph (PyTorch's `.data`); the
        array itself is `.array`."""
        return Tensor._wrap(self.array)

    @data.setter
    def data(self, value):
        """`t.data = other`: t now holds other's array (a Tensor's, or a NumPy/CuPy array),
        shape, dtype and device included, as in PyTorch."""
        if isinstance(value, Tensor):
            value = value.array
        elif not (isinstance(value, np.ndarray) or backend.is_cupy_array(value)):
            raise TypeError(f"t.data = value takes a Tensor or a NumPy/CuPy array, not "
                            f"{type(value).__name__}")
        if self.requires_grad and value.dtype.kind != "f":
            raise TypeError(f"t.data = value: a tensor that requires grad must stay "
                            f"floating-point, not {value.dtype}")
        if value is not self.array:
            self.array = value
            _inference_cache.weights_changed()

    # ---- its gradient ---------------------------------------------------------------------
    @property
    def grad(self):
        """The gradient backward() accumulated (a Tensor of this tensor's shape, dtype and
        device), or None."""
        return self._grad

    @grad.setter
    def grad(self, value):
        """`t.grad = g`: None, or a Tensor of t's shape, dtype and device, as in PyTorch."""
        if value is not None:
            _check_grad(self, value)
        self._grad = value

    @grad.deleter
    def grad(self):
        self._grad = None

    # ---- properties -------------------------------------------------------------------
    shape = property(lambda self: tuple(self.array.shape), doc="The shape, as a tuple.")
    dtype = property(lambda self: self.array.dtype, doc="The array dtype.")
    ndim = property(lambda self: self.array.ndim, doc="The number of dimensions.")
    device = property(lambda self: backend.device_of(self.array), doc="Where the data lives.")
    is_leaf = property(lambda self: self._ctx is None, doc="True unless made by a recorded op.")

    @property
    def xp(self):
        """The array module of the data (numpy or cupy)."""
        return backend.get_array_module(self.array)

    @property
    def T(self):
        """The transpose of a 2-D tensor."""
        return self.transpose()

    def size(self, axis=None):
        """The shape, or its length along `axis`."""
        if axis is None:
            return self.shape
        from .functions import _dim
        return self.shape[_dim(axis, self.ndim, "size")] if self.ndim else 1

    def numel(self):
        """The number of elements."""
        return int(self.array.size)

    def dim(self):
        """The number of dimensions."""
        return self.ndim

    ndimension = dim

    def __len__(self):
        if not self.ndim:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = "" if self.device.name == "cpu" else f", device='{self.device}'"
        return f"Tensor({backend.to_numpy(self.array)!r}{dev}{grad})"

    # ---- conversion -------------------------------------------------------------------
    def numpy(self):
        """The data as a NumPy array (copied from the GPU if needed)."""
        return backend.to_numpy(self.array)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.array.size != 1:
            raise ValueError(f"item() needs a tensor with one element, not shape {self.shape}")
        return self.array.reshape(-1)[0].item()

    def __array__(self, dtype=None, copy=None):
        """np.asarray(tensor): the data as a NumPy array."""
        array = self.numpy()
        return array if dtype is None else array.astype(dtype, copy=False)

    def __float__(self): return float(self.item())
    def __int__(self): return int(self.item())

    def __index__(self):
        """A one-element integer tensor as an index (`range(t)`, `items[t]`), as in PyTorch."""
        if self.array.size != 1 or self.dtype.kind not in "iub":
            raise TypeError("only integer tensors of a single element can be converted to an "
                            f"index, not a {self.dtype} tensor of shape {self.shape}")
        return int(self.item())

    def __format__(self, spec):
        """f"{loss:.4f}": a 0-dim tensor formats as its value, as in PyTorch."""
        if self.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def __bool__(self):
        if self.array.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is "
                               "ambiguous: use .any() or .all() on .numpy()")
        return bool(self.item())

    def tolist(self):
        """The data as nested Python lists."""
        return self.numpy().tolist()

    def detach(self):
        """A tensor sharing the data, cut from the graph."""
        return Tensor._wrap(self.array)

    def to(self, *args, device=None, dtype=None, non_blocking=False, copy=False,
           memory_format=None):
        """This tensor on another device and/or with another dtype: `to("cpu")`,
        `to(tl.float64)`, `to("gpu", tl.float32)`; self when nothing changes (a copy with
        copy=True). Differentiable, as in PyTorch: the gradient flows back to this tensor.
        non_blocking and memory_format are accepted (copies are ordered on CuPy's stream)."""
        check_memory_format(memory_format, "Tensor.to")
        device, dtype = to_arguments(args, device, dtype)
        out = self.clone() if copy else self
        if dtype is not None and np.dtype(dtype) != self.dtype:
            out = out.astype(dtype)
        if device is not None and backend.as_device(device) != out.device:
            out = _ops.ToDevice.apply(out, device=backend.as_device(device))
        return out

    def cpu(self):
        """This tensor on the CPU."""
        return self.to("cpu")

    def cuda(self, device=None, non_blocking=False):
        """This tensor on the GPU (as .to("gpu"): a DeviceError when there is none)."""
        if device not in (None, 0) and backend.as_device(device).name != "gpu":
            raise ValueError(f"cuda(): {device!r} is not a GPU device")
        return self.to("gpu")

    def type_as(self, other):
        """This tensor with the dtype (and device) of `other`, as torch's type_as."""
        return self.to(other)

    def astype(self, dtype):
        """A copy with another dtype (differentiable for float dtypes)."""
        return _ops.Cast.apply(self, dtype=np.dtype(dtype))

    float = lambda self: self.astype(np.float32)
    double = lambda self: self.astype(np.float64)
    long = lambda self: self.astype(np.int64)

    def retain_grad(self):
        """Keep .grad on this non-leaf tensor after backward()."""
        self._retain_grad = True

    def requires_grad_(self, flag=True):
        """Set requires_grad in place; returns self."""
        if flag and self.array.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"not {self.array.dtype}")
        self.requires_grad = bool(flag)
        return self

    def zero_grad(self):
        """Drop the accumulated gradient."""
        self.grad = None

    # ---- autograd ---------------------------------------------------------------------
    def register_post_accumulate_grad_hook(self, hook):
        """Call hook(self) in every backward() that reaches this leaf, once its .grad holds
        all of that backward's contributions (after the last recorded use of it has run its
        backward), under no_grad. A leaf that backward() does not reach gets no call. Returns
        a handle whose remove() unregisters the hook; hooks run in registration order."""
        if self._ctx is not None:
            raise RuntimeError("register_post_accumulate_grad_hook() on a tensor made by an "
                               "operation: only leaves (parameters, inputs) accumulate .grad")
        if not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook() on a tensor that does "
                               "not require grad: it never gets a gradient")
        return _add_hook(self, "_post_accumulate_hooks", hook)

    def register_hook(self, hook):
        """Call hook(grad) each time backward() computes this tensor's gradient, under
        no_grad; a tensor it returns replaces the gradient (what flows on to the inputs, and
        for a leaf what .grad accumulates). A leaf's hooks see the sum of all its uses' parts,
        once. Returns a handle whose remove() unregisters the hook; hooks run in order."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require "
                               "grad")
        return _add_hook(self if self._node is None else self._node, "_grad_hooks", hook)

    def backward(self, gradient=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad, then free the graph (unless
        retain_graph: then a second backward() through it accumulates again)."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(was it computed under no_grad(), or from no parameter?)")
        if gradient is None:
            if self.array.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a one-element "
                                   f"tensor, not shape {self.shape}")
            gy = self.xp.ones_like(self.array)
        else:
            gy = _as_array(gradient, self.device).astype(self.dtype, copy=False)
            if gy.shape != self.array.shape:
                raise ValueError(f"gradient shape {gy.shape} != tensor shape {self.shape}")
        _backward(self, gy, retain_graph=bool(retain_graph))

    # ---- operators (one-line wrappers over the ops in tinylesion/ops) -----------------
    def _cast(self, dtype):
        return self if self.array.dtype == dtype else _ops.Cast.apply(self, dtype=dtype)

    def _operands(self, other):
        """(self, other) as tensors of one dtype, chosen by PyTorch's type promotion.

        A constant (Python or NumPy number, array, list) takes this tensor's dtype unless it
        is of a higher category (a float with an integer tensor gives float32).
        """
        if isinstance(other, Tensor):
            if other.array.dtype == self.array.dtype:
                return self, other
            dtype = backend.result_type(self.array, other.array)
            return self._cast(dtype), other._cast(dtype)
        if is_foreign_tensor(other):
            raise foreign_tensor_error("a tinylesion operator")
        dtype = backend.constant_result_type(self.array.dtype, other)
        return self._cast(dtype), Tensor._wrap(self.xp.asarray(other, dtype=dtype))

    def _divide(self, other, reverse=False):
        x, y = self._operands(other)
        if x.array.dtype.kind != "f":  # true division of integers gives the default float
            x, y = x._cast(backend.DEFAULT_DTYPE), y._cast(backend.DEFAULT_DTYPE)
        return _ops.Div.apply(y, x) if reverse else _ops.Div.apply(x, y)

    def __add__(self, other): return _ops.Add.apply(*self._operands(other))
    def __radd__(self, other): return _ops.Add.apply(*self._operands(other)[::-1])
    def _subtract(self, other, reverse=False):
        if self.array.dtype == np.bool_ or isinstance(other, (bool, np.bool_)) or \
                getattr(other, "dtype", None) == np.bool_:
            raise TypeError("subtraction (-) with a bool tensor is not supported (as in "
                            "PyTorch): use ~ or the ^ operator to invert a mask")
        x, y = self._operands(other)
        return _ops.Sub.apply(y, x) if reverse else _ops.Sub.apply(x, y)

    def __sub__(self, other): return self._subtract(other)
    def __rsub__(self, other): return self._subtract(other, reverse=True)
    def __mul__(self, other): return _ops.Mul.apply(*self._operands(other))
    def __rmul__(self, other): return _ops.Mul.apply(*self._operands(other)[::-1])
    def __truediv__(self, other): return self._divide(other)
    def __rtruediv__(self, other): return self._divide(other, reverse=True)
    def _matmul_operands(self, other):
        """(self, other) for @: two tensors must have one dtype (PyTorch does not promote
        here); a constant takes this tensor's dtype, as in the other operators."""
        if isinstance(other, Tensor) and other.array.dtype != self.array.dtype:
            raise RuntimeError(f"@ (matmul) needs operands of one dtype, not {self.dtype} and "
                               f"{other.dtype} (as in PyTorch): convert one, e.g. x.float()")
        return self._operands(other)

    def __matmul__(self, other): return _ops.MatMul.apply(*self._matmul_operands(other))
    def __rmatmul__(self, other): return _ops.MatMul.apply(*self._matmul_operands(other)[::-1])
    def __floordiv__(self, other): return _ops.FloorDiv.apply(*self._operands(other))
    def __rfloordiv__(self, other): return _ops.FloorDiv.apply(*self._operands(other)[::-1])
    def __mod__(self, other): return _ops.Remainder.apply(*self._operands(other))
    def __rmod__(self, other): return _ops.Remainder.apply(*self._operands(other)[::-1])
    def __neg__(self): return _ops.Neg.apply(self)
    def __pos__(self): return self
    def __getitem__(self, index):
        unwrap = lambda i: i.array if isinstance(i, Tensor) else i
        index = tuple(map(unwrap, index)) if isinstance(index, tuple) else unwrap(index)
        out = self
        for step in _ops.shape.torch_index_steps(index):  # ints before arrays, as in torch
            out = _ops.GetItem.apply(out, index=step)
        return out

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return _ops.PowTensor.apply(*self._operands(exponent))
        if isinstance(exponent, np.generic):
            exponent = exponent.item()  # a Python number: NumPy keeps the array's dtype
        if not isinstance(exponent, (int, float)):
            return _ops.PowTensor.apply(*self._operands(exponent))
        x = self._cast(backend.constant_result_type(self.array.dtype, exponent))
        return _ops.Pow.apply(x, exponent=exponent)

    def __rpow__(self, base): return _ops.PowTensor.apply(*self._operands(base)[::-1])

    # ---- in place: x += y, x[index] = v ---------------------------------------------------
    def _in_place(self, op, *args):
        """self = op(self, *args) in place, as PyTorch's in-place operators.

        Outside the graph the result is written into .array (aliases and views see it: the
        update `p -= lr * p.grad` under no_grad() changes the model's parameter). In the graph
        self becomes the op's output (its .array a new array).
        """
        recording = is_grad_enabled()
        if recording and self.requires_grad and self._ctx is None:
            raise RuntimeError("a leaf tensor that requires grad is used in an in-place "
                               "operation (as in PyTorch): update it under tl.no_grad()")
        self._check_unused()
        old = Tensor._wrap(self.array, self.requires_grad)
        old._ctx = self._ctx
        out = op(old, *args)
        if out.shape != self.shape:
            raise RuntimeError(f"in-place operation: the result of shape {out.shape} does not "
                               f"fit the tensor of shape {self.shape}")
        if out.dtype != self.dtype and not np.can_cast(out.dtype, self.dtype, "same_kind"):
            raise RuntimeError(f"in-place operation: the result type {out.dtype} can't be cast "
                               f"to the tensor's type {self.dtype}")
        if out._ctx is None:
            self._check_writable()
            self.array[...] = out.array
        else:
            out = out._cast(self.dtype)
            self.array, self._ctx, self.requires_grad = out.array, out._ctx, True
        return self

    def _check_unused(self):
        """Refuse to change a tensor that a recorded op used, until its backward has run.

        NOTE: an op may keep its inputs' arrays for its backward (x * w keeps x for w's
        gradient), and in the graph the ops that used self point at this object. PyTorch's
        version counters allow some of these cases; here they are refused.
        """
        if is_grad_enabled() and self._used:
            raise RuntimeError("in-place operation on a tensor that an earlier operation in "
                               "the graph used (its backward needs it): write y = y + x "
                               "(out of place), or change it after backward()")

    def _check_writable(self):
        """Refuse to write into a broadcast view (an expand()): its elements share memory.
        Called right before every in-place write: it also counts the write (arrays derived
        from weights for inference, tinylesion.inference_cache, are then recomputed).

        NOTE: CuPy arrays have no writeable flag, so a zero stride along a dimension of more
        than one element is what tells, on either device.
        """
        a = self.array
        if not getattr(a.flags, "writeable", True) or any(
                st == 0 and n > 1 for n, st in zip(a.shape, a.strides)):
            raise RuntimeError("in-place operation on a read-only view (an expand()): "
                               "clone() it first")
        _inference_cache.weights_changed()

    def __iadd__(self, other): return self._in_place(Tensor.__add__, other)
    def __isub__(self, other): return self._in_place(Tensor.__sub__, other)
    def __imul__(self, other): return self._in_place(Tensor.__mul__, other)
    def __itruediv__(self, other): return self._in_place(Tensor.__truediv__, other)
    def __ifloordiv__(self, other): return self._in_place(Tensor.__floordiv__, other)
    def __imod__(self, other): return self._in_place(Tensor.__mod__, other)
    def __ipow__(self, other): return self._in_place(Tensor.__pow__, other)
    def __imatmul__(self, other): return self._in_place(Tensor.__matmul__, other)
    def __iand__(self, other): return self._in_place(Tensor.__and__, other)
    def __ior__(self, other): return self._in_place(Tensor.__or__, other)
    def __ixor__(self, other): return self._in_place(Tensor.__xor__, other)

    def __setitem__(self, index, value):
        """x[index] = value (a number, array or tensor, cast to x's dtype), in place; in the
        graph the gradient flows to value and to the entries of x that were not replaced."""
        unwrap = lambda i: i.array if isinstance(i, Tensor) else i
        index = tuple(map(unwrap, index)) if isinstance(index, tuple) else unwrap(index)
        if not isinstance(value, Tensor):
            value = Tensor._wrap(self.xp.asarray(value, dtype=self.dtype))
        if not (is_grad_enabled() and (self.requires_grad or value.requires_grad)):
            self._check_unused()
            self._check_writable()
            self.array[index] = value.array   # nothing to record: write straight in
            return
        self._in_place(lambda x: _ops.SetItem.apply(x, value._cast(self.dtype), index=index))

    # comparisons give boolean tensors outside the graph
    def _compare(self, other, name):
        other = other.array if isinstance(other, Tensor) else other
        result = getattr(self.array, name)(other)
        return result if result is NotImplemented else Tensor._wrap(result)

    def __lt__(self, other): return self._compare(other, "__lt__")
    def __le__(self, other): return self._compare(other, "__le__")
    def __gt__(self, other): return self._compare(other, "__gt__")
    def __ge__(self, other): return self._compare(other, "__ge__")
    # NOTE: elementwise, as in PyTorch (`(pred == y).sum()` counts the hits); tensors hash by
    # identity, so dicts keyed by parameters (the optimizer's state) are unaffected.
    def __eq__(self, other): return self._compare(other, "__eq__")
    def __ne__(self, other): return self._compare(other, "__ne__")
    __hash__ = object.__hash__

    # bitwise (logical, for booleans) operators on integer and boolean tensors, outside the graph
    def _bitwise(self, other, name, reverse=False):
        x, y = self._operands(other)
        if x.array.dtype.kind not in "biu":
            raise TypeError(f"{name} is only implemented for integer and boolean tensors, "
                            f"not {x.dtype}")
        x, y = (y, x) if reverse else (x, y)
        return Tensor._wrap(getattr(self.xp, name)(x.array, y.array))

    def __and__(self, other): return self._bitwise(other, "bitwise_and")
    def __rand__(self, other): return self._bitwise(other, "bitwise_and", reverse=True)
    def __or__(self, other): return self._bitwise(other, "bitwise_or")
    def __ror__(self, other): return self._bitwise(other, "bitwise_or", reverse=True)
    def __xor__(self, other): return self._bitwise(other, "bitwise_xor")
    def __rxor__(self, other): return self._bitwise(other, "bitwise_xor", reverse=True)

    def __invert__(self):
        if self.array.dtype.kind not in "biu":
            raise TypeError(f"~ is only implemented for integer and boolean tensors, "
                            f"not {self.dtype}")
        return Tensor._wrap(self.xp.invert(self.array))

    def exp(self): return _ops.Exp.apply(self)
    def log(self): return _ops.Log.apply(self)
    def sqrt(self): return _ops.Sqrt.apply(self)
    def abs(self): return _ops.Abs.apply(self)
    def relu(self): return _ops.ReLU.apply(self)
    def sigmoid(self): return _ops.Sigmoid.apply(self)
    def tanh(self): return _ops.Tanh.apply(self)

    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Sum over `dim` (int, tuple or None for all); NumPy's axis=/keepdims= also work."""
        axis, keepdims = _dims(dim, axis, keepdim, keepdims, "sum")
        return _ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Mean over `dim` (int, tuple or None for all) of a floating-point tensor."""
        axis, keepdims = _dims(dim, axis, keepdim, keepdims, "mean")
        if self.array.dtype.kind != "f":
            raise RuntimeError(f"mean() needs a floating-point tensor, not {self.dtype} "
                               "(as in PyTorch): convert it first, e.g. x.float().mean()")
        return _ops.Mean.apply(self, axis=axis, keepdims=keepdims)

    def _extreme(self, pick, dim, keepdim, axis, keepdims):
        """max/min: NumPy's axis=/keepdims= give the values only (amax/amin); the rest is
        torch's three forms (functions.max)."""
        if axis is not None or (dim is None and keepdims is not None):
            axis, keepdims = _dims(dim, axis, keepdim, keepdims, pick)
            return getattr(_fn, "a" + pick)(self, axis, keepdims)
        if isinstance(dim, (tuple, list)):
            raise TypeError(f"{pick}(dim) takes one int dimension, not {dim!r}: use "
                            f"a{pick}(dim) for several")
        return getattr(_fn, pick)(self, dim, bool(keepdim if keepdims is None else keepdims))

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """PyTorch's max: with no `dim` the largest entry (a 0-d tensor, the gradient shared
        equally by tied maxima); with an int `dim`, the named tuple (values, indices) of
        torch.max(dim), the gradient going to the index (the first of tied maxima); with a
        tensor, the element-wise maximum.

        NumPy's axis= (an int or tuple) and keepdims= give the values only (torch.amax).
        """
        return self._extreme("max", dim, keepdim, axis, keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """PyTorch's min, in max's three forms."""
        return self._extreme("min", dim, keepdim, axis, keepdims)

    def amax(self, dim=None, keepdim=False):
        """Maximum over `dim` (int, tuple or None for all); ties share the gradient."""
        return _fn.amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        """Minimum over `dim` (int, tuple or None for all); ties share the gradient."""
        return _fn.amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False, *, axis=None):
        """Indices of the maxima (int64, outside the graph); the first of ties."""
        return _fn.argmax(self, dim if axis is None else axis, keepdim)

    def argmin(self, dim=None, keepdim=False, *, axis=None):
        """Indices of the minima (int64, outside the graph); the first of ties."""
        return _fn.argmin(self, dim if axis is None else axis, keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        """Variance over `dim`, correction=1 (unbiased) by default as in torch 2."""
        return _fn.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        """Standard deviation over `dim`, correction=1 (unbiased) by default as in torch 2."""
        return _fn.std(self, dim, unbiased, keepdim, correction=correction)

    def softmax(self, dim): return _fn.softmax(self, dim)
    def log_softmax(self, dim): return _fn.log_softmax(self, dim)
    def clamp(self, min=None, max=None): return _fn.clamp(self, min, max)
    clip = clamp
    def clamp_min(self, min): return _fn.clamp(self, min=min)
    def clamp_max(self, max): return _fn.clamp(self, max=max)
    def maximum(self, other): return _fn.maximum(self, other)
    def minimum(self, other): return _fn.minimum(self, other)
    def where(self, condition, other): return _fn.where(condition, self, other)
    def clone(self): return _fn.clone(self)

    def reshape(self, *shape):
        """The same data in another shape (one dimension may be -1)."""
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return _ops.Reshape.apply(self, shape=tuple(shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        """Collapse the dimensions from `start_dim` to `end_dim` (inclusive) into one."""
        n = max(self.ndim, 1)
        for d in (start_dim, end_dim):
            if not -n <= d < n:
                raise _ops._util.DimensionError(
                    f"flatten: dimension {d} is out of range for a tensor of shape "
                    f"{self.shape} (expected {-n}..{n - 1})")
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                             f"for a tensor of shape {self.shape}")
        return self.reshape(*self.shape[:start], -1, *self.shape[end + 1:])

    def transpose(self, *dims):
        """PyTorch's transpose(dim0, dim1): swap two dimensions. With no argument the axes
        are reversed, and a tuple (or three or more ints) is a whole permutation, as
        numpy.transpose."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if len(dims) == 2:
            n = max(self.ndim, 1)
            for d in dims:
                if not -n <= d < n:
                    raise _ops._util.DimensionError(
                        f"transpose: dimension {d} is out of range for a tensor of shape "
                        f"{self.shape}")
            axes = list(range(self.ndim))
            d0, d1 = dims[0] % n, dims[1] % n
            if self.ndim:
                axes[d0], axes[d1] = axes[d1], axes[d0]
            return _ops.Transpose.apply(self, axes=tuple(axes))
        return _ops.Transpose.apply(self, axes=tuple(dims) if dims else None)

    def permute(self, *dims):
        """Reorder the dimensions: permute(2, 0, 1) or permute((2, 0, 1))."""
        dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return _ops.Transpose.apply(self, axes=tuple(dims))

    def t(self): return _fn.t(self)
    def unsqueeze(self, dim): return _fn.unsqueeze(self, dim)
    def squeeze(self, dim=None): return _fn.squeeze(self, dim)
    def expand(self, *sizes): return _fn.expand(self, *sizes)
    def expand_as(self, other): return _fn.expand(self, other.shape)
    def repeat(self, *sizes): return _fn.repeat(self, *sizes)
    def chunk(self, chunks, dim=0): return _fn.chunk(self, chunks, dim)
    def split(self, split_size, dim=0): return _fn.split(self, split_size, dim)

    # ---- in place, outside the graph ----------------------------------------------------
    # NOTE: zero_ and fill_ write into .array and record nothing, as torch does under no_grad()
    # (torch refuses them on a leaf that requires grad outside no_grad). Writing into a tensor
    # whose values an op kept for its backward pass changes that op's gradient.
    def zero_(self):
        """Set every element to 0 in place; returns self."""
        return self.fill_(0)

    def fill_(self, value):
        """Set every element to `value` (a number or a one-element tensor) in place, cast to
        this tensor's dtype; returns self."""
        if isinstance(value, Tensor):
            if value.array.size != 1:
                raise ValueError(f"fill_ takes a number or a one-element tensor, not shape "
                                 f"{value.shape}")
            value = backend.to_device(value.array.reshape(()), self.device)
        self._check_writable()
        self.array[...] = value
        return self

    # ---- new tensors like this one (its dtype and device unless given) --------------------
    def _new(self, maker, *args, dtype=None, device=None, requires_grad=False):
        return maker(*args, dtype=self.dtype if dtype is None else dtype,
                     device=self.device if device is None else device,
                     requires_grad=requires_grad)

    def new_zeros(self, *size, **kw): return self._new(_creation.zeros, *size, **kw)
    def new_ones(self, *size, **kw): return self._new(_creation.ones, *size, **kw)
    def new_empty(self, *size, **kw): return self._new(_creation.empty, *size, **kw)
    def new_full(self, size, fill_value, **kw):
        return self._new(_creation.full, size, fill_value, **kw)
    def new_tensor(self, data, **kw): return self._new(tensor, data, **kw)

def tensor(data, requires_grad=False, device=None, dtype=None):
    """Make a Tensor (torch.tensor's spelling)."""
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype)


from .autograd import Function, _backward  # noqa: E402,F401  (autograd wraps arrays in Tensors)
from . import ops as _ops  # noqa: E402  (ops subclass Function)
from . import creation as _creation, functions as _fn  # noqa: E402  (they use Tensor)


def to_arguments(args, device=None, dtype=None):
    """(device, dtype) from the positional arguments of `.to(...)`, as PyTorch reads them:
    a device name or Device, a dtype, or a tensor whose device and dtype to take."""
    for arg in args:
        if isinstance(arg, (str, backend.Device)):
            device = arg
        elif isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        else:
            dtype = arg
    return device, dtype
