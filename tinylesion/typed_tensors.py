"""torch's legacy typed constructors: FloatTensor([1, 2]), LongTensor(3, 4), ...; each gives a
Tensor of its dtype from data, or a zero-filled one of the given sizes."""
import numpy as np

from . import creation
from .tensor import Tensor, tensor


def _typed(name, dtype):
    def make(*args, device=None):
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
            data = args[0]
            return tensor(data.array if isinstance(data, Tensor) else data, dtype=dtype,
                          device=device)
        return creation.zeros(*(args or (0,)), dtype=dtype, device=device)
    make.__name__ = make.__qualname__ = name
    make.__doc__ = (f"torch.{name}: a {np.dtype(dtype).name} Tensor from data "
                    f"({name}([1, 2])), or zeros of the sizes given ({name}(2, 3)).")
    return make


FloatTensor = _typed("FloatTensor", np.float32)
DoubleTensor = _typed("DoubleTensor", np.float64)
HalfTensor = _typed("HalfTensor", np.float16)
LongTensor = _typed("LongTensor", np.int64)
IntTensor = _typed("IntTensor", np.int32)
ShortTensor = _typed("ShortTensor", np.int16)
ByteTensor = _typed("ByteTensor", np.uint8)
CharTensor = _typed("CharTensor", np.int8)
BoolTensor = _typed("BoolTensor", np.bool_)
