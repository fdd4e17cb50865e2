"""Tensor, the Function base class, reverse-mode backward() and no_grad()."""
import threading

import numpy as np

from . import backend

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


def _as_array(data, device):
    """Turn `data` into a backend array with torch.tensor's dtype rules."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray) or backend.is_cupy_array(data):
        array = data
    elif isinstance(data, (bool, np.bool_)):
        array = np.asarray(data, dtype=np.bool_)
    elif isinstance(data, (int, np.integer)):
        array = np.asarray(data, dtype=np.int64)
    elif isinstance(data, (float, np.floating)):
        array = np.asarray(data, dtype=np.float64 if isinstance(data, np.float64)
                           else backend.DEFAULT_DTYPE)
    else:  # nested lists: floats become float32, integers int64, as torch.tensor does
        array = np.asarray(data)
        if array.dtype == np.float64:
            array = array.astype(backend.DEFAULT_DTYPE)
        elif array.dtype.kind not in "biuf":
            raise TypeError(f"cannot make a Tensor from {type(data).__name__} "
                            f"(array dtype {array.dtype})")
    if device is not None:
        array = backend.to_device(array, device)
    return array


class Tensor:
    """An n-dimensional array on a device that records the operations made on it."""

    __array_priority__ = 1000  # so that `ndarray + Tensor` calls Tensor.__radd__

    def __init__(self, data, requires_grad=False, device=None, dtype=None):
        array = _as_array(data, device)
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        if requires_grad and array.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"not {array.dtype}")
        self.data = array
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None          # the Function that produced this tensor, if recorded
        self._retain_grad = False

    # ---- properties -------------------------------------------------------------------
    shape = property(lambda self: tuple(self.data.shape), doc="The shape, as a tuple.")
    dtype = property(lambda self: self.data.dtype, doc="The array dtype.")
    ndim = property(lambda self: self.data.ndim, doc="The number of dimensions.")
    device = property(lambda self: backend.device_of(self.data), doc="Where the data lives.")
    is_leaf = property(lambda self: self._ctx is None, doc="True unless made by a recorded op.")

    @property
    def xp(self):
        """The array module of the data (numpy or cupy)."""
        return backend.get_array_module(self.data)

    @property
    def T(self):
        """The transpose of a 2-D tensor."""
        return self.transpose()

    def size(self, axis=None):
        """The shape, or its length along `axis`."""
        return self.shape if axis is None else self.shape[axis]

    def numel(self):
        """The number of elements."""
        return int(self.data.size)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = "" if self.device.name == "cpu" else f", device='{self.device}'"
        return f"Tensor({backend.to_numpy(self.data)!r}{dev}{grad})"

    # ---- conversion -------------------------------------------------------------------
    def numpy(self):
        """The data as a NumPy array (copied from the GPU if needed)."""
        return backend.to_numpy(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, not shape {self.shape}")
        return self.data.reshape(-1)[0].item()

    def tolist(self):
        """The data as nested Python lists."""
        return self.numpy().tolist()

    def detach(self):
        """A tensor sharing the data, cut from the graph."""
        return Tensor(self.data)

    def to(self, device):
        """This tensor on `device` (self when already there); the copy is a leaf."""
        device = backend.as_device(device)
        if device == self.device:
            return self
        out = Tensor(backend.to_device(self.data, device), requires_grad=self.requires_grad)
        return out

    def cpu(self):
        """This tensor on the CPU."""
        return self.to("cpu")

    def astype(self, dtype):
        """A copy with another dtype (differentiable for float dtypes)."""
        return _ops.Cast.apply(self, dtype=np.dtype(dtype))

    float = lambda self: self.astype(np.float32)
    double = lambda self: self.astype(np.float64)

    def retain_grad(self):
        """Keep .grad on this non-leaf tensor after backward()."""
        self._retain_grad = True

    def requires_grad_(self, flag=True):
        """Set requires_grad in place; returns self."""
        self.requires_grad = bool(flag)
        return self

    def zero_grad(self):
        """Drop the accumulated gradient."""
        self.grad = None

    # ---- autograd ---------------------------------------------------------------------
    def backward(self, gradient=None):
        """Accumulate d(self)/d(leaf) into every leaf's .grad, then free the graph."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(was it computed under no_grad(), or from no parameter?)")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a one-element "
                                   f"tensor, not shape {self.shape}")
            gy = self.xp.ones_like(self.data)
        else:
            gy = _as_array(gradient, self.device).astype(self.dtype, copy=False)
            if gy.shape != self.data.shape:
                raise ValueError(f"gradient shape {gy.shape} != tensor shape {self.shape}")
        _backward(self, gy)

    # ---- operators (one-line wrappers over the ops in tinylesion/ops) -----------------
    def _lift(self, other):
        """A constant operand as a tensor with this tensor's dtype and device."""
        if isinstance(other, Tensor):
            return other
        return Tensor(self.xp.asarray(other, dtype=self.dtype))

    def __add__(self, other): return _ops.Add.apply(self, self._lift(other))
    def __radd__(self, other): return _ops.Add.apply(self._lift(other), self)
    def __sub__(self, other): return _ops.Sub.apply(self, self._lift(other))
    def __rsub__(self, other): return _ops.Sub.apply(self._lift(other), self)
    def __mul__(self, other): return _ops.Mul.apply(self, self._lift(other))
    def __rmul__(self, other): return _ops.Mul.apply(self._lift(other), self)
    def __truediv__(self, other): return _ops.Div.apply(self, self._lift(other))
    def __rtruediv__(self, other): return _ops.Div.apply(self._lift(other), self)
    def __matmul__(self, other): return _ops.MatMul.apply(self, self._lift(other))
    def __rmatmul__(self, other): return _ops.MatMul.apply(self._lift(other), self)
    def __neg__(self): return _ops.Neg.apply(self)
    def __pos__(self): return self
    def __getitem__(self, index):
        unwrap = lambda i: i.data if isinstance(i, Tensor) else i
        index = tuple(map(unwrap, index)) if isinstance(index, tuple) else unwrap(index)
        return _ops.GetItem.apply(self, index=index)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return _ops.PowTensor.apply(self, exponent)
        return _ops.Pow.apply(self, exponent=exponent)

    def __rpow__(self, base): return _ops.PowTensor.apply(self._lift(base), self)

    # comparisons give boolean tensors outside the graph
    def _compare(self, other, name):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(getattr(self.data, name)(other))

    def __lt__(self, other): return self._compare(other, "__lt__")
    def __le__(self, other): return self._compare(other, "__le__")
    def __gt__(self, other): return self._compare(other, "__gt__")
    def __ge__(self, other): return self._compare(other, "__ge__")
    __hash__ = object.__hash__

    def exp(self): return _ops.Exp.apply(self)
    def log(self): return _ops.Log.apply(self)
    def sqrt(self): return _ops.Sqrt.apply(self)
    def abs(self): return _ops.Abs.apply(self)
    def relu(self): return _ops.ReLU.apply(self)
    def sigmoid(self): return _ops.Sigmoid.apply(self)
    def tanh(self): return _ops.Tanh.apply(self)

    def sum(self, axis=None, keepdims=False):
        """Sum over `axis` (int, tuple or None for all)."""
        return _ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        """Mean over `axis` (int, tuple or None for all)."""
        return _ops.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        """Maximum over `axis`; the gradient is shared equally by tied maxima."""
        return _ops.Max.apply(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None):
        """Indices of the maxima (int64, outside the graph)."""
        return Tensor(self.data.argmax(axis=axis).astype(np.int64))

    def reshape(self, *shape):
        """The same data in another shape (one dimension may be -1)."""
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return _ops.Reshape.apply(self, shape=tuple(shape))

    view = reshape

    def flatten(self, start_dim=0):
        """Collapse the dimensions from `start_dim` on into one."""
        return self.reshape(*self.shape[:start_dim], -1)

    def transpose(self, *axes):
        """Permute the axes (reverse them when none are given), as numpy.transpose."""
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return _ops.Transpose.apply(self, axes=tuple(axes) if axes else None)

    permute = transpose


class Function:
    """One differentiable operation: `forward` on arrays, `backward` from gy to the inputs.

    `apply` takes tensors (None for an absent optional input, such as a bias) and keyword
    constants; it records the graph only when grad mode is on and some input requires a
    gradient; `needs_input_grad[i]` tells `backward` which gradients anybody needs.
    """

    def forward(self, *arrays, **kwargs):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **kwargs):
        """Run the op on tensors and return the output tensor."""
        fn = cls()
        fn.needs_input_grad = tuple(t is not None and t.requires_grad for t in inputs)
        y = fn.forward(*(None if t is None else t.data for t in inputs), **kwargs)
        out = Tensor(y)
        if is_grad_enabled() and any(fn.needs_input_grad):
            out.requires_grad = True
            out._ctx = fn
            fn.inputs = inputs
        return out


class _Freed:
    """What a tensor's _ctx becomes once backward has used and freed its graph."""
    inputs = ()


def _topological_order(root):
    """Tensors of the graph under `root`, every tensor after all of its inputs.

    Iterative depth-first search: a 10,000-op chain does not reach the recursion limit.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node._ctx.inputs:
            if parent is not None and parent._ctx is not None and id(parent) not in visited:
                stack.append((parent, False))
    return order


def _accumulate_leaf(tensor, g, handed_out):
    """Add g to tensor.grad (gradients accumulate until zeroed, as in PyTorch)."""
    if tensor.grad is None:
        # NOTE: an op may return one array as the gradient of two inputs (x + y), or a
        # read-only broadcast view; the optimizer updates .grad in place, so each leaf
        # must own its writable array.
        flags = g.flags
        if (id(g) in handed_out or not flags.owndata or not flags.c_contiguous
                or not getattr(flags, "writeable", True)):
            g = g.copy()
        handed_out.add(id(g))
        tensor.grad = Tensor(g)
    else:
        tensor.grad.data = tensor.grad.data + g


def _backward(root, gy):
    if root._ctx is None:               # a leaf: its gradient is gy itself
        _accumulate_leaf(root, gy, {id(gy)})
        return
    if isinstance(root._ctx, _Freed):
        raise RuntimeError("backward() through a graph that was already freed: "
                           "run the forward pass again before a second backward()")
    grads = {id(root): gy}
    handed_out = {id(gy)}
    for node in reversed(_topological_order(root)):
        fn = node._ctx
        if isinstance(fn, _Freed):
            raise RuntimeError("backward() through a graph that was already freed: "
                               "run the forward pass again before a second backward()")
        g_out = grads.pop(id(node), None)
        if g_out is None:  # no path from the root carries a gradient here
            continue
        if node._retain_grad:
            _accumulate_leaf(node, g_out, handed_out)
        g_inputs = fn.backward(g_out)
        if not isinstance(g_inputs, tuple):
            g_inputs = (g_inputs,)
        for parent, needed, g in zip(fn.inputs, fn.needs_input_grad, g_inputs):
            if not needed or g is None:
                continue
            if g.dtype != parent.data.dtype:
                g = g.astype(parent.data.dtype)
            if parent._ctx is None:
                _accumulate_leaf(parent, g, handed_out)
            elif id(parent) in grads:
                grads[id(parent)] = grads[id(parent)] + g
            else:
                grads[id(parent)] = g
        node._ctx = _Freed()   # free the graph: saved arrays go with the Function


def tensor(data, requires_grad=False, device=None, dtype=None):
    """Make a Tensor (torch.tensor's spelling)."""
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype)


from . import ops as _ops  # noqa: E402  (ops subclass Function, defined above)
