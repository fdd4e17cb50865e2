"""ParameterList and ParameterDict: parameters held in a list or a dict, registered on the
module (parameters(), state_dict() and optimizers see them), as torch's."""
from ..tensor import Tensor
from .module import Module, Parameter


def _as_parameter(value, owner):
    """A Parameter as given; a plain Tensor becomes one requiring a gradient (as torch wraps
    it)."""
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value.array)
    raise TypeError(f"{owner}: expected a Parameter or a Tensor, not {type(value).__name__}")


class ParameterList(Module):
    """Parameters in a list, registered as "0", "1", ...: indexing (negative counts from the
    end), assignment, len, iteration, append, extend. It has no forward."""

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def _name(self, index):
        if not isinstance(index, int):
            raise TypeError(f"ParameterList indices must be integers, not "
                            f"{type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for a ParameterList of {n}")
        return str(index % n)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ParameterList(list(self)[index])
        return self._parameters[self._name(index)]

    def __setitem__(self, index, value):
        self.register_parameter(self._name(index), _as_parameter(value, "ParameterList"))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def append(self, value):
        """Add a parameter at the end; returns self."""
        self.register_parameter(str(len(self)), _as_parameter(value, "ParameterList"))
        return self

    def extend(self, values):
        """Add each parameter of an iterable at the end; returns self."""
        if isinstance(values, Tensor):
            raise TypeError("ParameterList.extend should be called with an iterable of "
                            "parameters, not a Tensor")
        for value in values:
            self.append(value)
        return self

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterList has no forward: iterate over it")

    def extra_repr(self):
        return "\n".join(f"({i}): Parameter containing: [{p.dtype} of size {tuple(p.shape)}]"
                         for i, p in enumerate(self))


class ParameterDict(Module):
    """Parameters in an ordered dict under string keys: `[]`, `[]=`, `del`, len, iteration
    over the keys, `in`, keys, values, items, update, pop, get, clear. It has no forward."""

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key):
        return self._parameters[key]

    def __setitem__(self, key, value):
        self.register_parameter(key, _as_parameter(value, "ParameterDict"))

    def __delitem__(self, key):
        if key not in self._parameters:
            raise KeyError(key)
        del self._parameters[key]
        object.__delattr__(self, key)

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def __contains__(self, key):
        return key in self._parameters

    def keys(self):
        return self._parameters.keys()

    def values(self):
        return self._parameters.values()

    def items(self):
        return self._parameters.items()

    def get(self, key, default=None):
        return self._parameters.get(key, default)

    def pop(self, key):
        """Remove the parameter under key and return it."""
        value = self[key]
        del self[key]
        return value

    def clear(self):
        for key in list(self._parameters):
            del self[key]

    def update(self, parameters):
        """Add (or replace) from a mapping or from (key, parameter) pairs."""
        pairs = parameters.items() if hasattr(parameters, "items") else parameters
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"ParameterDict.update: expected (key, parameter) pairs, not "
                                f"{pair!r}")
            self[pair[0]] = pair[1]

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterDict has no forward: index it by key")

    def extra_repr(self):
        return "\n".join(f"({k}): Parameter containing: [{p.dtype} of size {tuple(p.shape)}]"
                         for k, p in self.items())
