"""Module hooks as PyTorch has them: forward pre-hooks and forward hooks around a module's
call, full backward hooks and backward pre-hooks on the gradients of its inputs and outputs."""
from collections import OrderedDict

from ..autograd import Function
from ..tensor import RemovableHandle, Tensor, is_grad_enabled

_keys = iter(range(1 << 62))   # one counter for all modules' hooks


class ModuleHooks:
    """The hooks registered on one module, each kind in registration order ({key: entry})."""

    def __init__(self):
        self.forward_pre = OrderedDict()   # key: (hook, with_kwargs)
        self.forward = OrderedDict()       # key: (hook, with_kwargs, always_call)
        self.backward = OrderedDict()      # key: hook(module, grad_input, grad_output)
        self.backward_pre = OrderedDict()  # key: hook(module, grad_output)

    def add(self, kind, entry, prepend):
        hooks = getattr(self, kind)
        key = next(_keys)
        hooks[key] = entry
        if prepend:
            hooks.move_to_end(key, last=False)
        return RemovableHandle(hooks, key)

    def __bool__(self):
        return bool(self.forward_pre or self.forward or self.backward or self.backward_pre)


def call_with_hooks(module, hooks, args, kwargs):
    """module.forward(*args, **kwargs) through the module's hooks, in PyTorch's order: forward
    pre-hooks (which may replace the arguments), the backward hooks' marks on the tensor
    arguments, forward, forward hooks (which may replace the output), the marks on the
    output. Forward hooks with always_call=True run (with output None) if forward raises."""
    for hook, with_kwargs in list(hooks.forward_pre.values()):
        if with_kwargs:
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError("a forward pre-hook registered with with_kwargs=True "
                                       "must return None or a tuple (args, kwargs), not "
                                       f"{type(result).__name__}")
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    backward = None
    if (hooks.backward or hooks.backward_pre) and is_grad_enabled():
        backward = _BackwardHooks(module, hooks)
        args = backward.mark_inputs(args)
    try:
        output = module._call(module.forward, *args, **kwargs)
    except BaseException:
        for hook, with_kwargs, always_call in list(hooks.forward.values()):
            if always_call:
                hook(module, args, kwargs, None) if with_kwargs else hook(module, args, None)
        raise
    for hook, with_kwargs, _ in list(hooks.forward.values()):
        result = hook(module, args, kwargs, output) if with_kwargs else \
            hook(module, args, output)
        if result is not None:
            output = result
    if backward is not None:
        output = backward.mark_outputs(output)
    return output


class _Mark(Function):
    """The identity, recorded: a node in the graph whose gradient the backward hooks see."""

    def forward(self, x):
        return x

    def backward(self, gy):
        return gy


def _replace(values, position, value):
    values = list(values)
    values[position] = value
    return tuple(values)


def _checked_gradient(result, what, index, like):
    """A hook's replacement for one gradient: None or a tensor of the gradient's shape."""
    if result is None:
        return None
    if not isinstance(result, Tensor):
        raise TypeError(f"a backward hook must return None or a tuple of tensors ({what}), "
                        f"not {type(result).__name__} at position {index}")
    if like is not None and result.shape != like.shape:
        raise RuntimeError(f"a backward hook returned {what}[{index}] of shape "
                           f"{result.shape}; the gradient has shape {like.shape}")
    return result


class _BackwardHooks:
    """One call's view of a module's gradients: its tensor arguments and outputs pass through
    recorded identities whose gradient hooks collect grad_output and grad_input.

    Backward pre-hooks run once the outputs' gradients are in (they may replace them); full
    backward hooks once the gradients of all the tensor arguments that require grad are in
    (or, when none does, right after the pre-hooks), with None for an argument that needs no
    gradient. A replacement for grad_input is taken for a module with one such argument;
    with several, the hooks may look but not replace (the others have flowed on already)."""

    def __init__(self, module, hooks):
        self.module, self.hooks = module, hooks
        self.grad_inputs, self.waiting_inputs = (), 0
        self.grad_outputs, self.waiting_outputs = (), 0

    def mark_inputs(self, args):
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.grad_inputs = (None,) * len(positions)
        args = list(args)
        for slot, i in enumerate(positions):
            if args[i].requires_grad:
                args[i] = _Mark.apply(args[i])
                args[i].register_hook(lambda g, slot=slot: self._input_gradient(slot, g))
                self.waiting_inputs += 1
        return tuple(args)

    def mark_outputs(self, output):
        single = isinstance(output, Tensor)
        items = [output] if single else list(output) if isinstance(output, (tuple, list))             else []
        positions = [i for i, t in enumerate(items) if isinstance(t, Tensor)]
        self.grad_outputs = (None,) * len(positions)
        for slot, i in enumerate(positions):
            if items[i].requires_grad:
                items[i] = _Mark.apply(items[i])
                items[i].register_hook(lambda g, slot=slot: self._output_gradient(slot, g))
                self.waiting_outputs += 1
        if single:
            return items[0]
        return type(output)(items) if isinstance(output, (tuple, list)) else output

    def _output_gradient(self, slot, g):
        self.grad_outputs = _replace(self.grad_outputs, slot, g)
        self.waiting_outputs -= 1
        if self.waiting_outputs:
            return None
        replaced = False
        for hook in list(self.hooks.backward_pre.values()):
            result = hook(self.module, self.grad_outputs)
            if result is not None:
                result = result if isinstance(result, tuple) else (result,)
                if len(result) != len(self.grad_outputs):
                    raise RuntimeError(f"a backward pre-hook returned {len(result)} gradients "
                                       f"for {len(self.grad_outputs)} outputs")
                self.grad_outputs = tuple(
                    _checked_gradient(r, "grad_output", k, old) if r is not None else old
                    for k, (r, old) in enumerate(zip(result, self.grad_outputs)))
                replaced = True
        if replaced and len(self.grad_outputs) > 1:
            raise RuntimeError(f"a backward pre-hook of {type(self.module).__name__} replaced "
                               "the gradients of a module with several outputs: tinylesion "
                               "takes a replacement only for a module with one output")
        if self.waiting_inputs == 0:   # no argument needs a gradient: the hooks run now
            self._run_full_hooks()
        return self.grad_outputs[slot] if replaced else None

    def _input_gradient(self, slot, g):
        self.grad_inputs = _replace(self.grad_inputs, slot, g)
        self.waiting_inputs -= 1
        if self.waiting_inputs:
            return None
        replacement = self._run_full_hooks()
        if replacement is None:
            return None
        if sum(x is not None for x in self.grad_inputs) > 1:
            raise RuntimeError(f"a full backward hook of {type(self.module).__name__} "
                               "replaced grad_input of a module with several tensor "
                               "arguments that require grad: tinylesion takes a replacement "
                               "only when one argument does")
        return replacement[slot]

    def _run_full_hooks(self):
        """Run the full backward hooks; the replaced grad_input, or None if none was."""
        replaced = None
        for hook in list(self.hooks.backward.values()):
            result = hook(self.module, self.grad_inputs, self.grad_outputs)
            if result is None:
                continue
            result = result if isinstance(result, tuple) else (result,)
            if len(result) != len(self.grad_inputs):
                raise RuntimeError(f"a full backward hook returned {len(result)} gradients "
                                   f"for {len(self.grad_inputs)} tensor arguments")
            self.grad_inputs = replaced = tuple(
                _checked_gradient(r, "grad_input", k, old)
                for k, (r, old) in enumerate(zip(result, self.grad_inputs)))
        return replaced
