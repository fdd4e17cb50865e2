"""Reading the `parameters` argument that nn.utils' functions take, as PyTorch reads it."""
from ...tensor import Tensor


def as_tensor_list(parameters, where):
    """A list of Tensors from one Tensor or an iterable of them (a generator is read once)."""
    if isinstance(parameters, Tensor):
        return [parameters]
    try:
        parameters = list(parameters)
    except TypeError:
        raise TypeError(f"{where}: parameters must be a Tensor or an iterable of Tensors, not "
                        f"{type(parameters).__name__}") from None
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"{where}: parameter {i} is a {type(p).__name__}, not a Tensor "
                            "(pass model.parameters())")
    return parameters
