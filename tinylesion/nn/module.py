"""Module and Parameter: the containers that hold a model's weights and buffers."""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend, inference_cache
from ..errors import as_input_error, foreign_tensor_error, is_foreign_tensor
from ..compile import check_memory_format
from ..tensor import Tensor, to_arguments
from .hooks import ModuleHooks, call_with_hooks


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = "What load_state_dict(strict=False) skipped, as PyTorch returns it."


# Module.type's names for PyTorch's CPU tensor types
_TORCH_TYPE_NAMES = {"torch.FloatTensor": np.float32, "torch.DoubleTensor": np.float64,
                     "torch.LongTensor": np.int64}


class StateDictError(RuntimeError, ValueError):
    """A state_dict that does not fit the model (a RuntimeError, as in PyTorch)."""


class Parameter(Tensor):
    """A tensor that is a module's weight: requires a gradient unless told otherwise."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class _Members(list):
    """What parameters(), buffers(), children() and modules() return: a list (len, indexing,
    iterating again) that is also an iterator over itself, as PyTorch's generators are, so
    that `next(model.parameters())` gives the first parameter."""

    def __next__(self):
        cursor = self.__dict__.get("cursor", 0)
        if cursor >= len(self):
            raise StopIteration
        self.__dict__["cursor"] = cursor + 1
        return self[cursor]


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
        # As in PyTorch: a registered name keeps its kind (None keeps an empty slot), and a
        # replaced entry keeps its place in parameters() and state_dict().
        if isinstance(value, Parameter):
            kept = self._parameters
        elif name in self._parameters:
            kept = self._parameters
            self._expect(name, value, Parameter, "parameter", "nn.Parameter expected, or None")
        elif isinstance(value, Module):
            kept = self._modules
        elif name in self._modules:
            kept = self._modules
            self._expect(name, value, Module, "child module", "nn.Module expected, or None")
        elif name in self._buffers:
            kept = self._buffers
            if value is not None and not isinstance(value, Tensor):
                value = Tensor(value)   # an array: a buffer holds it as a Tensor
        else:
            kept = None
        for store in (self._parameters, self._buffers, self._modules):
            if store is not kept:
                store.pop(name, None)
        if kept is not None:
            kept[name] = value
        object.__setattr__(self, name, value)

    def _expect(self, name, value, kind, what, expected):
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"cannot assign a {type(value).__name__} as {what} '{name}' of "
                            f"{type(self).__name__} ({expected})")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor):
        """Keep a non-trainable tensor (e.g. running statistics) in the state_dict."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_member_name(name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = Tensor(tensor)
        self._buffers[name] = tensor
        object.__setattr__(self, name, tensor)

    def _check_member_name(self, name, kind, store):
        """PyTorch's checks on a new parameter's or child's name."""
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
        if "." in name:
            raise KeyError(f"{kind} name can't contain \".\", got: {name}")
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if hasattr(self, name) and name not in store:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name, param):
        """Add a Parameter (or None: an empty slot that parameters() and state_dict() skip)
        under `name`, as PyTorch does."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_member_name(name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (nn.Parameter or None required)")
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def add_module(self, name, module):
        """Add a child module (or None: an empty slot) under `name`, as PyTorch does."""
        if "_modules" not in self.__dict__:
            raise AttributeError("cannot assign module before Module.__init__() call")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_member_name(name, "module", self._modules)
        self._modules[name] = module
        object.__setattr__(self, name, module)

    register_module = add_module

    def _get_name(self):
        return type(self).__name__

    def get_submodule(self, target):
        """The module at a dotted path such as "features.0" ("" is this module)."""
        if target == "":
            return self
        module = self
        for item in target.split("."):
            if not hasattr(module, item):
                raise AttributeError(f"{module._get_name()} has no attribute `{item}`")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError(f"`{item}` is not an nn.Module")
        return module

    def _get_member(self, target, what, check):
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(f"{module._get_name()} has no attribute `{name}`")
        if not check(module, name):
            raise AttributeError(f"`{name}` is not {what}")
        return getattr(module, name)

    def get_parameter(self, target):
        """The parameter at a dotted path such as "features.0.weight"."""
        return self._get_member(target, "an nn.Parameter",
                                lambda m, name: isinstance(getattr(m, name), Parameter))

    def get_buffer(self, target):
        """The buffer at a dotted path such as "features.1.running_mean"."""
        return self._get_member(target, "a buffer", lambda m, name: name in m._buffers)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    _module_hooks = None   # a hooks.ModuleHooks once a hook is registered on this module

    def __call__(self, *args, **kwargs):
        if self._module_hooks:
            return call_with_hooks(self, self._module_hooks, args, kwargs)
        return self._call(self.forward, *args, **kwargs)

    def _runs_plain(self):
        """True when calling this module runs its class's forward alone: no forward replaced
        on the instance (Grad-CAM wraps a layer's), no hook. Only such layers are joined
        into one op with their neighbours (nn.Sequential's fusions)."""
        return "forward" not in self.__dict__ and not self._module_hooks

    # ---- hooks (tinylesion/nn/hooks.py runs them) ------------------------------------------
    def _hooks(self):
        if self._module_hooks is None:
            object.__setattr__(self, "_module_hooks", ModuleHooks())
        return self._module_hooks

    @staticmethod
    def _check_hook(hook):
        if not callable(hook):
            raise TypeError(f"the hook must be callable, not {type(hook).__name__}")

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """Call hook(module, args) before each forward (hook(module, args, kwargs) with
        with_kwargs=True); what it returns (not None) replaces the arguments. Returns a
        handle whose remove() unregisters it."""
        self._check_hook(hook)
        return self._hooks().add("forward_pre", (hook, bool(with_kwargs)), prepend)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False,
                              always_call=False):
        """Call hook(module, args, output) after each forward (hook(module, args, kwargs,
        output) with with_kwargs=True); what it returns (not None) replaces the output.
        always_call=True calls it (output None) when forward raises too."""
        self._check_hook(hook)
        return self._hooks().add("forward", (hook, bool(with_kwargs), bool(always_call)),
                                 prepend)

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """Call hook(module, grad_output) once the gradients of the module's outputs are
        computed; a tuple it returns replaces grad_output."""
        self._check_hook(hook)
        return self._hooks().add("backward_pre", hook, prepend)

    def register_full_backward_hook(self, hook, prepend=False):
        """Call hook(module, grad_input, grad_output) once the gradients of the module's
        tensor arguments are computed (one entry per tensor argument, None where it needs no
        gradient); a tuple it returns replaces grad_input."""
        self._check_hook(hook)
        return self._hooks().add("backward", hook, prepend)

    def _call(self, method, *args, **kwargs):
        """method(*args, **kwargs) with __call__'s checks of the arguments and errors."""
        for arg in args:
            if is_foreign_tensor(arg):
                raise foreign_tensor_error(type(self).__name__)
        try:
            return method(*args, **kwargs)
        except ValueError as exc:   # shape mismatches: RuntimeError too, as PyTorch's
            raise as_input_error(exc) from None

    # ---- traversal ----------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(name, module) for this module and every descendant, depth first; a module reached
        twice is listed once unless remove_duplicate=False."""
        memo = set() if memo is None else memo
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                               remove_duplicate)

    def modules(self):
        """This module and every descendant, each once."""
        return _Members(m for _, m in self.named_modules())

    def named_children(self):
        """(name, module) for each direct sub-module, each once."""
        seen = set()
        for name, child in self._modules.items():
            if child is not None and child not in seen:
                seen.add(child)
                yield name, child

    def children(self):
        """The direct sub-modules."""
        return _Members(m for _, m in self.named_children())

    def apply(self, fn):
        """Call fn on every sub-module (children first, depth first), then on self; returns
        self (e.g. `model.apply(init_weights)`)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def _named_members(self, store, prefix, recurse, remove_duplicate):
        modules = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
                   if recurse else [(prefix, self)])
        seen = set()
        for mod_name, module in modules:
            for name, t in getattr(module, store).items():
                if t is None or id(t) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(t))
                yield (f"{mod_name}.{name}" if mod_name else name), t

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(name, parameter) pairs in PyTorch's order, each parameter once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        """The parameters, in PyTorch's order."""
        return _Members(p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        """(name, buffer) pairs in PyTorch's order, each buffer once."""
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        """The buffers (e.g. batch norm's running statistics), in PyTorch's order."""
        return _Members(b for _, b in self.named_buffers(recurse=recurse))

    def num_parameters(self):
        """The number of trainable values."""
        return sum(p.numel() for p in self.parameters())

    # ---- modes and devices --------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (batch statistics, dropout on); returns self. A module frozen by
        tinylesion.finetune.freeze (its `keep_eval` flag set) stays in evaluation mode."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode) and not getattr(m, "keep_eval", False))
        inference_cache.weights_changed()   # (a fresh start for what inference derives)
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
                p.grad.array[...] = 0

    def _apply_to_arrays(self, fn):
        for _, module in self.named_modules():
            for store in (module._parameters, module._buffers):
                for t in store.values():
                    if t is not None:
                        t.array = fn(t.array)
                        if t.grad is not None:
                            t.grad.array = fn(t.grad.array)
        return self

    def to(self, *args, device=None, dtype=None, non_blocking=False, memory_format=None):
        """Move every parameter and buffer to a device and/or convert the floating-point ones
        to a dtype, in place: `to("gpu")`, `to(tl.float64)`, `to("cpu", tl.float32)`, as in
        PyTorch (do this before making the optimizer). Returns self. non_blocking and
        memory_format are accepted and change nothing."""
        check_memory_format(memory_format, "Module.to")
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
        """Convert floating-point parameters and buffers to float64; returns self."""
        return self.astype(np.float64)

    def float(self):
        """Convert floating-point parameters and buffers to float32; returns self."""
        return self.astype(np.float32)

    def half(self):
        """Not supported: tinylesion's kernels run float32 and float64 only."""
        raise NotImplementedError(f"{type(self).__name__}.half(): float16 is not supported "
                                  "(tinylesion's kernels run float32 and float64); use "
                                  ".float() or .double()")

    def type(self, dst_type):
        """Convert every parameter and buffer (integer ones too) to `dst_type`, as PyTorch's
        Module.type: a dtype, its name, or "torch.FloatTensor" / "torch.DoubleTensor"."""
        dst_type = _TORCH_TYPE_NAMES.get(dst_type, dst_type)
        try:
            dtype = np.dtype(dst_type)
        except TypeError:
            raise TypeError(f"{type(self).__name__}.type: {dst_type!r} is not a dtype") from None
        if dtype.kind != "f" and any(p.requires_grad for p in self.parameters()):
            raise RuntimeError(f"{type(self).__name__}.type({dtype}): parameters that require "
                               "gradients must be floating point")
        return self._apply_to_arrays(lambda a: a.astype(dtype, copy=False))

    def cpu(self):
        """Move every parameter and buffer to the CPU; returns self."""
        return self.to("cpu")

    def cuda(self, device=None):
        """Move every parameter and buffer to the GPU (as .to("gpu"): a DeviceError when
        there is none); returns self."""
        if device not in (None, 0) and backend.as_device(device).name != "gpu":
            raise ValueError(f"cuda(): {device!r} is not a GPU device")
        return self.to("gpu")

    def requires_grad_(self, requires_grad=True):
        """Set requires_grad on every parameter (False freezes them); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # ---- state --------------------------------------------------------------------------
    def state_dict(self):
        """Name → array of every parameter and buffer (the arrays themselves, not copies)."""
        state = OrderedDict()
        for mod_name, module in self.named_modules(remove_duplicate=False):
            for store in (module._parameters, module._buffers):
                for name, t in store.items():
                    if t is not None:
                        state[f"{mod_name}.{name}" if mod_name else name] = t.array
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (NumPy, Tensors, or a PyTorch model's tensors) into the parameters and
        buffers in place, converted to their dtypes; returns (missing_keys, unexpected_keys).

        Raises one StateDictError (a RuntimeError as in PyTorch, and a ValueError) that names
        every missing key, unexpected key, shape mismatch and value that is not a numeric
        array (missing and unexpected keys are allowed when strict=False). Every value is
        checked and converted before any is copied: a call that fails changes nothing.
        """
        where = f"load_state_dict into {type(self).__name__}"
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise StateDictError(f"{where}: expected a dict of arrays (a state_dict), got a "
                                 f"{type(state_dict).__name__}")
        own = OrderedDict()
        for mod_name, module in self.named_modules(remove_duplicate=False):
            for store in (module._parameters, module._buffers):
                for name, t in store.items():
                    if t is not None:
                        own[f"{mod_name}.{name}" if mod_name else name] = t
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        arrays, wrong, mismatched = {}, [], []
        for k, t in own.items():
            if k not in state_dict:
                continue
            value = state_dict[k]
            value = value.array if isinstance(value, Tensor) else value
            if hasattr(value, "detach") and hasattr(value, "cpu"):  # a PyTorch tensor
                value = value.detach().cpu().numpy()
            if not (isinstance(value, np.ndarray) or backend.is_cupy_array(value)):
                try:
                    value = np.asarray(value)
                except (TypeError, ValueError) as exc:
                    wrong.append(f"{k}: {type(value).__name__} is not an array ({exc})")
                    continue
            if value.dtype.kind not in "biuf":
                wrong.append(f"{k}: a {value.dtype} array, not numbers")
            elif tuple(value.shape) != tuple(t.shape):
                mismatched.append(f"{k}: checkpoint {tuple(value.shape)} vs model "
                                  f"{tuple(t.shape)}")
            else:
                arrays[k] = value
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(map(str, unexpected)))
        if mismatched:
            problems.append("shape mismatch for " + "; ".join(mismatched))
        if wrong:
            problems.append("wrong values for " + "; ".join(wrong))
        if problems:
            raise StateDictError(f"{where}: " + " | ".join(problems))
        converted = {k: backend.to_device(v, own[k].device).astype(own[k].dtype, copy=False)
                     for k, v in arrays.items()}
        for k, value in converted.items():
            own[k].array[...] = value
        inference_cache.weights_changed()
        return IncompatibleKeys(missing, unexpected)

    # ---- display ------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        # NOTE: PyTorch's layout: one line when there is no child and a one-line extra_repr,
        # else the extra_repr's lines and then "(name): child", each indented by two.
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + repr(child).replace("\n", "\n  ")
                       for name, child in self._modules.items()]
        lines = extra_lines + child_lines
        if not lines:
            return f"{self._get_name()}()"
        if len(extra_lines) == 1 and not child_lines:
            return f"{self._get_name()}({extra_lines[0]})"
        return f"{self._get_name()}(\n  " + "\n  ".join(lines) + "\n)"
