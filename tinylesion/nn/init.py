"""Weight initialisation: Glorot (Xavier) uniform, He (Kaiming) normal, zeros."""
import math

from .. import backend


def _fans(tensor):
    """(fan_in, fan_out) of a Linear (out, in) or Conv2d (out, in, kh, kw) weight."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight with 2 or more dimensions, "
                         f"got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fill(tensor, values):
    tensor.data[...] = backend.to_device(values, tensor.device).astype(tensor.dtype)
    return tensor


def xavier_uniform_(tensor, gain=1.0):
    """U(−a, a) with a = gain·√(6 / (fan_in + fan_out)) (Keras' glorot_uniform), in place."""
    fan_in, fan_out = _fans(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, backend.generator().uniform(-a, a, tensor.shape))


def kaiming_normal_(tensor, mode="fan_in", gain=math.sqrt(2.0)):
    """N(0, std²) with std = gain / √fan (He et al. for ReLU), in place."""
    fan_in, fan_out = _fans(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', not {mode!r}")
    std = gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    return _fill(tensor, backend.generator().normal(0.0, std, tensor.shape))


def zeros_(tensor):
    """Fill with zeros, in place."""
    tensor.data[...] = 0
    return tensor


def ones_(tensor):
    """Fill with ones, in place."""
    tensor.data[...] = 1
    return tensor


glorot_uniform = xavier_uniform_
he_normal = kaiming_normal_
zeros = zeros_
