"""PReLU: x for x > 0 and a learned slope times x below (one slope, or one per channel)."""
import numpy as np

from .. import backend
from ..errors import InputError
from ..ops.elu import PReLU as _PReLU
from .module import Module, Parameter


def prelu(input, weight):
    """x where x > 0, weight·x elsewhere, as torch.nn.functional.prelu: a weight of one
    element is one slope; otherwise it holds one slope per channel (dimension 1)."""
    n = int(weight.array.size)
    if weight.ndim > 1:
        raise InputError(f"prelu: weight must be a vector (or one number), not shape "
                         f"{weight.shape}")
    if n == 1:
        return _PReLU.apply(input, weight.reshape(()))
    channels = input.shape[1] if input.ndim >= 2 else 1
    if n != channels:
        raise InputError(f"prelu: {n} slopes in the weight for an input of {channels} "
                         f"channels (shape {input.shape}): give 1 or {channels}")
    return _PReLU.apply(input, weight.reshape((n,) + (1,) * (input.ndim - 2)))


class PReLU(Module):
    """PReLU as a layer: num_parameters slopes (1, or the number of channels), each starting
    at init."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, (int, np.integer)) \
                or num_parameters < 1:
            raise ValueError(f"PReLU: num_parameters must be a positive int, not "
                             f"{num_parameters!r}")
        self.num_parameters, self.init = int(num_parameters), init
        xp = backend.as_device("cpu" if device is None else device).xp
        dtype = np.dtype(backend.DEFAULT_DTYPE if dtype is None else dtype)
        self.weight = Parameter(xp.full((self.num_parameters,), init, dtype=dtype))

    def reset_parameters(self):
        """Every slope back to init."""
        self.weight.fill_(self.init)

    def forward(self, input):
        return prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"
