"""Module and Parameter: the containers that hold a model's weights and buffers."""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend
from ..tensor import Tensor, to_arguments


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = "What load_state_dict(strict=False) skipped, as PyTorch returns it."


class StateDictError(RuntimeError, ValueError):
    """A state_dict that does not fit the model (a RuntimeError, as in PyTorch)."""


class Parameter(Tensor):
    """A tensor that is a module's weight: requires a gradient unless told otherwise."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models, with PyTorch's names and semantics.

    Attributes that are Parameters, Modules or registered buffers are tracked in order, so
    `parameters()` and `state_dict()` list them as PyTorch would.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call "
                                 "super().__init__() before assigning attributes")
        if name in self._parameters and isinstance(value, Tensor) and \
                not isinstance(value, Parameter):
            raise TypeError(f"cannot assign a {type(value).__name__} as parameter '{name}' of "
                            f"{type(self).__name__} (nn.Parameter expected: wrap it in one)")
        if isinstance(value, Parameter):
            kept = self._parameters
        elif isinstance(value, Module):
            kept = self._modules
        elif name in self.__dict__.get("_buffer_names", ()):
            kept = self._buffers
        else:
            kept = None
        for store in (self._parameters, self._buffers, self._modules):
            if store is not kept:
                store.pop(name, None)
        if kept is not None:
            kept[name] = value      # a replaced entry keeps its place, as in PyTorch
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        self.__dict__.get("_buffer_names", set()).discard(name)
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor):
        """Keep a non-trainable tensor (e.g. running statistics) in the state_dict."""
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        setattr(self, name, tensor if tensor is None or isinstance(tensor, Tensor)
                else Tensor(tensor))

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix=""):
        """(name, module) for this module and every descendant, depth first."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        """This module and every descendant."""
        return [m for _, m in self.named_modules()]

    def children(self):
        """The direct sub-modules."""
        return list(self._modules.values())

    def named_parameters(self, prefix=""):
        """(name, parameter) pairs in PyTorch's order, each parameter once."""
        seen = set()
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self):
        """The parameters, in PyTorch's order."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        """(name, buffer) pairs."""
        for mod_name, module in self.named_modules():
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def num_parameters(self):
        """The number of trainable values."""
        return sum(p.numel() for p in self.parameters())

    # ---- modes and devices --------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (batch statistics, dropout on); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        """Evaluation mode (running statistics, dropout off); returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Drop every parameter's gradient (or fill it with zeros when set_to_none=False)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    def _apply_to_arrays(self, fn):
        for _, module in self.named_modules():
            for store in (module._parameters, module._buffers):
                for t in store.values():
                    if t is not None:
                        t.data = fn(t.data)
                        if t.grad is not None:
                            t.grad.data = fn(t.grad.data)
        return self

    def to(self, *args, device=None, dtype=None):
        """Move every parameter and buffer to a device and/or convert the floating-point ones
        to a dtype, in place: `to("gpu")`, `to(tl.float64)`, `to("cpu", tl.float32)`, as in
        PyTorch (do this before making the optimizer). Returns self."""
        device, dtype = to_arguments(args, device, dtype)
        if dtype is not None:
            self.astype(dtype)
        if device is not None:
            device = backend.as_device(device)
            self._apply_to_arrays(lambda a: backend.to_device(a, device))
        return self

    def astype(self, dtype):
        """Convert floating-point parameters and buffers to `dtype`."""
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"{type(self).__name__}.to: {dtype!r} is neither a device ('cpu', "
                            "'gpu', 'auto') nor a dtype") from None
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}: parameters can only be converted to a "
                            f"floating-point dtype, not {dtype}")
        return self._apply_to_arrays(
            lambda a: a.astype(dtype) if a.dtype.kind == "f" else a)

    def double(self):
        """Convert to float64 (for gradient checks)."""
        return self.astype(np.float64)

    def float(self):
        """Convert to float32."""
        return self.astype(np.float32)

    # ---- state --------------------------------------------------------------------------
    def state_dict(self):
        """Name → array of every parameter and buffer (the arrays themselves, not copies)."""
        state = OrderedDict()
        for mod_name, module in self.named_modules():
            for store in (module._parameters, module._buffers):
                for name, t in store.items():
                    if t is not None:
                        state[f"{mod_name}.{name}" if mod_name else name] = t.data
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (NumPy, Tensors, or a PyTorch model's tensors) into the parameters and
        buffers in place, converted to their dtypes; returns (missing_keys, unexpected_keys).

        Raises one StateDictError (a RuntimeError as in PyTorch, and a ValueError) that names
        every missing key, unexpected key and shape mismatch (missing and unexpected keys are
        allowed when strict=False).
        """
        own = OrderedDict()
        for mod_name, module in self.named_modules():
            for store in (module._parameters, module._buffers):
                for name, t in store.items():
                    if t is not None:
                        own[f"{mod_name}.{name}" if mod_name else name] = t
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        shape = lambda v: tuple(v.shape) if hasattr(v, "shape") else np.shape(v)
        mismatched = [f"{k}: checkpoint {shape(state_dict[k])} vs model {own[k].shape}"
                      for k in own if k in state_dict and shape(state_dict[k]) != own[k].shape]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatch for " + "; ".join(mismatched))
        if problems:
            raise StateDictError(f"load_state_dict into {type(self).__name__}: "
                                 + " | ".join(problems))
        for k, t in own.items():
            if k in state_dict:
                value = state_dict[k]
                value = value.data if isinstance(value, Tensor) else value
                if hasattr(value, "detach") and hasattr(value, "cpu"):  # a PyTorch tensor
                    value = value.detach().cpu().numpy()
                t.data[...] = backend.to_device(value, t.device).astype(t.dtype, copy=False)
        return IncompatibleKeys(missing, unexpected)

    # ---- display ------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        return "\n".join(lines) + ("\n)" if self._modules else ")")
