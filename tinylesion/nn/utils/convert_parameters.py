"""Parameters as one flat vector and back, as torch.nn.utils."""
from ...functions import cat
from ...tensor import Tensor
from ._params import as_tensor_list


def _one_device(parameters, where):
    devices = {p.device for p in parameters}
    if len(devices) > 1:
        raise TypeError(f"{where}: found parameters on different devices "
                        f"({', '.join(sorted(map(str, devices)))}); move the model to one")


def parameters_to_vector(parameters):
    """The parameters flattened and joined into one 1-D Tensor, in order (a copy, and
    differentiable, as in PyTorch)."""
    parameters = as_tensor_list(parameters, "parameters_to_vector")
    if not parameters:
        raise ValueError("parameters_to_vector: no parameters given")
    _one_device(parameters, "parameters_to_vector")
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Make the parameters' data consecutive slices of the 1-D Tensor `vec`, reshaped, as
    PyTorch does (the parameters then share vec's memory; entries past the last are unused)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected Tensor, but got: {type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: vec must be 1-D, not shape {vec.shape}")
    parameters = as_tensor_list(parameters, "vector_to_parameters")
    _one_device(parameters, "vector_to_parameters")
    needed = sum(p.numel() for p in parameters)
    if vec.shape[0] < needed:
        raise ValueError(f"vector_to_parameters: vec has {vec.shape[0]} elements but the "
                         f"parameters need {needed}")
    start = 0
    for p in parameters:
        n = p.numel()
        p.array = vec.array[start:start + n].reshape(p.shape)
        start += n
