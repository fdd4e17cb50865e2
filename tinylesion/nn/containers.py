"""Containers of modules: Sequential, ModuleList and ModuleDict, with PyTorch's behaviour."""
import operator
from collections import OrderedDict, abc
from itertools import chain

from . import functional as F
from .inference_fusion import _symmetric_pad, fused_conv_run
from .module import Module


class _Container(Module):
    """What the containers share: adding and removing children by name.

    A child lives both in `_modules` (which parameters() and state_dict() walk) and as an
    attribute, as for any Module; these helpers keep the two in step.
    """

    def _check_module(self, module, where=""):
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: {type(module).__name__} is not a Module "
                            f"subclass{where}")

    def _add(self, name, module, where=""):
        """Register `module` under `name` with add_module (its name rules, with this container
        named in the message); a name already taken keeps its place in the order."""
        self._check_module(module, where)
        try:
            self.add_module(name, module)
        except (TypeError, KeyError) as exc:
            raise type(exc)(f"{type(self).__name__}: {exc.args[0]}") from None

    def _remove(self, name):
        if name not in self._modules:
            raise KeyError(name)
        delattr(self, name)

    def _renumber(self, modules):
        """Make `modules` the children, named "0", "1", ... in order."""
        modules = list(modules)
        for name in list(self._modules):
            self._remove(name)
        for i, module in enumerate(modules):
            self._add(str(i), module)


class _ModuleSequence(_Container):
    """The list-like part shared by Sequential and ModuleList: integer and slice indexing
    (negative counts from the end), assignment, deletion (which renumbers the rest "0",
    "1", ... as PyTorch does), len, iteration, append, extend, insert, pop. `in` compares by
    iteration, as PyTorch (which defines no __contains__ here)."""

    def _position(self, index, kinds="integers or slices"):
        """The position 0..n-1 of an integer index."""
        kind = type(self).__name__
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"{kind} indices must be {kinds}, not "
                            f"{type(index).__name__}") from None
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"{kind} index {index} is out of range (length {n})")
        return index % n

    def _slice(self, index):
        raise NotImplementedError

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._slice(index)
        return list(self._modules.values())[self._position(index)]

    def __setitem__(self, index, module):
        """Replace the module at an integer position (its name stays)."""
        name = list(self._modules)[self._position(index, kinds="integers")]
        self._add(name, module)

    def __delitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            del modules[index]
        else:
            del modules[self._position(index)]
        self._renumber(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Add a module at the end (named by the new length); returns self."""
        self._add(str(len(self)), module)
        return self

    def extend(self, modules):
        """Append every module of an iterable; returns self."""
        if not isinstance(modules, abc.Iterable):
            raise TypeError(f"{type(self).__name__}.extend should be called with an iterable "
                            f"of Modules, but got {type(modules).__name__}")
        for i, module in enumerate(list(modules)):
            self._add(str(len(self)), module, where=f" (item {i} of extend)")
        return self

    def _insert(self, index, module):
        """Insert before position `index` (-len <= index <= len, as list.insert for those);
        every module is then renamed by its position."""
        self._check_module(module)
        n = len(self)
        index = operator.index(index)
        if not -n <= index <= n:
            raise IndexError(f"{type(self).__name__}.insert: index {index} is out of range "
                             f"(length {n})")
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber(modules)

    def pop(self, index):
        """Remove the module (or the slice of modules) at `index` and return it."""
        module = self[index]
        del self[index]
        return module


def _fuses_with_relu(layer, following):
    """True for an nn.Conv2d followed by an nn.ReLU, neither's forward replaced (Grad-CAM
    wraps a layer's forward to see its output) nor hooked."""
    from .layers import Conv2d, ReLU
    return type(layer) is Conv2d and type(following) is ReLU \
        and layer._runs_plain() and following._runs_plain()


def _fuses_with_relu_and_pool(layers, i):
    """True for layers[i:i+3] an nn.Conv2d (groups 1), nn.ReLU and nn.MaxPool2d, no forward
    replaced, while a graph may be recorded: then one op whose backward is one pass through
    the pooling, the mask and the bias gradient (tinylesion.ops.Conv2dReluMaxPool)."""
    from ..tensor import is_grad_enabled
    from .layers import MaxPool2d
    return i + 2 < len(layers) and _fuses_with_relu(layers[i], layers[i + 1]) \
        and layers[i].groups == 1 and type(layers[i + 2]) is MaxPool2d \
        and layers[i + 2]._runs_plain() and is_grad_enabled()


def _relu_then_pool(layers, i):
    """True for layers[i:i+2] an nn.ReLU and an nn.MaxPool2d, no forward replaced, the ReLU
    not one that writes into its input (inplace=True under no_grad): then one op, the ReLU on
    the pooled output (tinylesion.ops.ReluMaxPool)."""
    from ..tensor import is_grad_enabled
    from .layers import MaxPool2d, ReLU
    return i + 1 < len(layers) and type(layers[i]) is ReLU \
        and (not layers[i].inplace or is_grad_enabled()) \
        and type(layers[i + 1]) is MaxPool2d and layers[i]._runs_plain() \
        and layers[i + 1]._runs_plain()


def _conv_then_batch_norm(layers, i):
    """True for layers[i:i+2] an nn.Conv2d with a bias (groups 1) and an nn.BatchNorm2d in
    training mode over its channels, no forward replaced, while a graph may be recorded: then
    one op whose backward sums the bias gradient in the batch norm's input-gradient pass
    (tinylesion.ops.Conv2dBatchNorm)."""
    from ..tensor import is_grad_enabled
    from .layers import BatchNorm2d, Conv2d
    if i + 1 >= len(layers):
        return False
    conv, bn = layers[i], layers[i + 1]
    return type(conv) is Conv2d and type(bn) is BatchNorm2d and conv.bias is not None \
        and conv.groups == 1 and bn.training and bn.num_features == conv.weight.shape[0] \
        and conv._runs_plain() and bn._runs_plain() and is_grad_enabled()


def _pad_before_conv(layers, i):
    """(top, left) when layers[i:i+2] are an nn.ZeroPad2d that pads opposite sides alike and an
    nn.Conv2d with numeric padding, neither's forward replaced nor hooked; else None."""
    from .layers import Conv2d, ZeroPad2d
    if i + 1 >= len(layers) or type(layers[i]) is not ZeroPad2d \
            or type(layers[i + 1]) is not Conv2d or not layers[i]._runs_plain() \
            or not layers[i + 1]._runs_plain() or isinstance(layers[i + 1].padding, str):
        return None
    return _symmetric_pad(layers[i].padding)


def _padded_conv(layers, j, x, pad):
    """(output, layers used): the nn.Conv2d layers[j] on x with `pad` added to its padding,
    joined with the layers after it as Sequential.forward joins them."""
    # NOTE: a zero pad before a convolution is the convolution's own padding: the kernels pad
    # the blocks they work on as they copy them, so no padded copy of the activation is made,
    # nor a strided slice of its gradient (which the next kernel would copy again)
    conv = layers[j]
    padding = (conv.padding[0] + pad[0], conv.padding[1] + pad[1])
    args = (x, conv.weight, conv.bias, conv.stride, padding, conv.groups)
    if _fuses_with_relu_and_pool(layers, j):
        pool = layers[j + 2]
        pooling = (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode)
        return conv._call(F._conv2d, *args, relu=True, pool=pooling), 3
    if j + 1 < len(layers) and _fuses_with_relu(conv, layers[j + 1]):
        return conv._call(F._conv2d, *args, relu=True), 2
    if _conv_then_batch_norm(layers, j):
        bn = layers[j + 1]
        y = conv._call(F._conv2d, *args, relu=False, batch_norm=bn._arguments(uncounted=True))
        bn._count_batch()
        return y, 2
    return conv._call(F.conv2d, *args[:5], groups=conv.groups), 1


class Sequential(_ModuleSequence):
    """Layers applied in order; they are named "0", "1", ... as in PyTorch, or by the keys of
    a single OrderedDict (or dict) of layers.

    A slice is a Sequential of the same class that keeps the layers' names (a subclass whose
    __init__ takes other arguments, such as models.Classifier, gives a plain Sequential);
    `+` and `*` make a new Sequential numbered from "0"; `+=` and `*=` take Sequentials only.
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], dict):
            for name, layer in layers[0].items():
                self._add(name, layer, where=f" (at key {name!r})")
            return
        for i, layer in enumerate(layers):
            self._add(str(i), layer, where=f" (argument {i})")

    def forward(self, x):
        layers = list(self._modules.values())
        i = 0
        while i < len(layers):
            fused = fused_conv_run(layers, i, x)   # None when recording, or nothing to join
            pad = None if fused is not None else _pad_before_conv(layers, i)
            if fused is not None:
                x, used = fused
                i += used
            elif pad is not None:   # a ZeroPad2d before a Conv2d: the convolution's padding
                x, used = _padded_conv(layers, i + 1, x, pad)
                i += 1 + used
            elif _fuses_with_relu_and_pool(layers, i):
                x = layers[i]._call(layers[i]._forward_relu_pool, x, layers[i + 2])
                i += 3
            elif i + 1 < len(layers) and _fuses_with_relu(layers[i], layers[i + 1]):
                # NOTE: Conv2d then ReLU in one pass over the output: the same numbers and
                # gradients, one full read and write of the activation fewer.
                x = layers[i]._call(layers[i]._forward_relu, x)
                i += 2
            elif _conv_then_batch_norm(layers, i):
                # NOTE: the bias gradient of a convolution before a batch norm is the sum per
                # channel of the batch norm's input gradient: summed as that gradient is written
                x = layers[i]._call(layers[i]._forward_batch_norm, x, layers[i + 1])
                i += 2
            elif _relu_then_pool(layers, i):
                # NOTE: max(relu(z)) = relu(max(z)): the ReLU on the pooled output alone
                pool = layers[i + 1]
                x = pool._call(F._relu_max_pool2d, x, pool.kernel_size, pool.stride,
                               pool.padding, pool.ceil_mode)
                i += 2
            else:
                x = layers[i](x)
                i += 1
        return x

    def _slice(self, index):
        # NOTE: PyTorch builds type(self)(OrderedDict(...)); a subclass with its own
        # constructor arguments cannot be built that way, so it gives a plain Sequential.
        kind = type(self) if type(self).__init__ is Sequential.__init__ else Sequential
        return kind(OrderedDict(list(self._modules.items())[index]))

    def insert(self, index, module):
        """Insert a layer before position `index`; returns self."""
        self._insert(index, module)
        return self

    def _check_sequential(self, other, op):
        if not isinstance(other, Sequential):
            raise ValueError(f"Sequential {op} takes another Sequential, not "
                             f"{type(other).__name__}")

    def __add__(self, other):
        self._check_sequential(other, "+")
        return Sequential(*self, *other)

    def __iadd__(self, other):
        self._check_sequential(other, "+=")
        return self.extend(other)

    def _check_factor(self, factor):
        if not isinstance(factor, int):
            raise TypeError(f"Sequential can only be repeated an int number of times, not "
                            f"{type(factor).__name__}")
        if factor <= 0:
            raise ValueError(f"Sequential repeated {factor} times: the factor must be positive")

    def __mul__(self, factor):
        """The layers repeated `factor` times (the same modules, so shared weights)."""
        self._check_factor(factor)
        return Sequential(*(list(self) * factor))

    __rmul__ = __mul__

    def __imul__(self, factor):
        self._check_factor(factor)
        return self.extend(list(self) * (factor - 1))


class ModuleList(_ModuleSequence):
    """Modules held in a list, registered as children "0", "1", ... so that parameters(),
    state_dict(), train()/eval() and to() see them, as PyTorch's ModuleList.

    It has no forward (calling it raises NotImplementedError): a model's forward walks it.
    insert accepts -len <= index <= len and renames the modules by position.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _slice(self, index):
        return type(self)(list(self._modules.values())[index])

    def insert(self, index, module):
        """Insert a module before position `index`."""
        self._insert(index, module)

    def __add__(self, other):
        return ModuleList(chain(self, other))

    def __iadd__(self, modules):
        return self.extend(modules)

    def __repr__(self):
        """As PyTorch: runs of modules with the same repr are shown once, "(0-2): 3 x ..."."""
        if not self._modules:
            return f"{type(self).__name__}()"
        runs = []  # [first index, last index, repr]
        for i, module in enumerate(self):
            text = repr(module)
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = []
        for first, last, text in runs:
            label = f"({first}): " if first == last else f"({first}-{last}): {last - first + 1} x "
            lines.append("  " + (label + text).replace("\n", "\n  "))
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class ModuleDict(_Container):
    """Modules held in an ordered dict, registered as children under their keys, as PyTorch's
    ModuleDict: `[]`, `[]=`, `del`, len, iteration over the keys, `in`, keys, values, items,
    update (from a mapping or from (key, module) pairs), pop, clear. Keys are strings without
    dots that are not the name of another attribute (`update`, `training`, ...).

    It has no forward (calling it raises NotImplementedError).
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self._add(key, module, where=f" (at key {key!r})")

    def __delitem__(self, key):
        self._remove(key)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key):
        """Remove `key` and return its module."""
        module = self[key]
        del self[key]
        return module

    def clear(self):
        """Remove every module."""
        for key in list(self._modules):
            self._remove(key)

    def update(self, modules):
        """Add or replace modules from a mapping or an iterable of (key, module) pairs, in
        their order (an existing key keeps its place)."""
        kind = type(self).__name__
        if isinstance(modules, (abc.Mapping, ModuleDict)):
            pairs = list(modules.items())
        elif isinstance(modules, abc.Iterable):
            pairs = [self._pair(j, item) for j, item in enumerate(modules)]
        else:
            raise TypeError(f"{kind}.update should be called with a mapping or an iterable of "
                            f"(key, module) pairs, but got {type(modules).__name__}")
        for key, module in pairs:
            self[key] = module

    def _pair(self, j, item):
        kind = type(self).__name__
        if not isinstance(item, abc.Iterable):
            raise TypeError(f"{kind}.update: element #{j} should be a (key, module) pair, "
                            f"not {type(item).__name__}")
        item = list(item)
        if len(item) != 2:
            raise ValueError(f"{kind}.update: element #{j} has length {len(item)}; 2 is "
                             "required (key, module)")
        return item
