"""Weight initialisation with torch.nn.init's names, arguments and formulas, in place."""
import math
import numbers
import warnings

import numpy as np

from .. import backend, inference_cache

# NOTE: every function writes the tensor's .array in place, which records nothing in the
# graph (PyTorch's no_grad semantics), and returns the tensor. Random values are drawn in
# float64 from tinylesion's CPU generator (tl.manual_seed), cast to the tensor's dtype and
# moved to its device, so one seed gives the same weights on the CPU and the GPU.

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "sigmoid")
_NONLINEARITIES = _LINEAR + ("tanh", "relu", "leaky_relu", "selu")


def _check_tensor(tensor):
    data = getattr(tensor, "array", None)
    if not (isinstance(data, np.ndarray) or backend.is_cupy_array(data)):
        raise TypeError(f"nn.init works on a Tensor or Parameter, not a {type(tensor).__name__}")


def _check_float(tensor, name):
    _check_tensor(tensor)
    if not np.issubdtype(tensor.dtype, np.floating):
        raise TypeError(f"{name} needs a floating-point tensor, got dtype {tensor.dtype}")


def _fill(tensor, values):
    """Write float64 CPU `values` into the tensor, in its dtype and on its device."""
    tensor.array[...] = backend.to_device(values.astype(tensor.dtype), tensor.device)
    inference_cache.weights_changed()
    return tensor


def _rng(generator):
    return backend.generator() if generator is None else generator


def _fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a Linear (out, in) or Conv (out, in, *kernel) weight."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 "
                         f"dimensions (got shape {tuple(shape)})")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _correct_fan(tensor, mode):
    mode = mode.lower() if isinstance(mode, str) else mode
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode!r} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = _fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (param: leaky_relu's negative slope)."""
    if nonlinearity in _LINEAR:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param!r} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity!r} (use one of "
                     f"{list(_NONLINEARITIES)})")


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with U(a, b)."""
    _check_float(tensor, "uniform_")
    if not a <= b:
        raise ValueError(f"uniform_ expects a <= b, but got a={a!r}, b={b!r}")
    return _fill(tensor, _rng(generator).uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with N(mean, std²)."""
    _check_float(tensor, "normal_")
    if not std >= 0:
        raise ValueError(f"normal_ expects std >= 0.0, but got std={std!r}")
    return _fill(tensor, _rng(generator).normal(mean, std, tensor.shape))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill with N(mean, std²) truncated to [a, b] (values outside are drawn again)."""
    _check_float(tensor, "trunc_normal_")
    if not (std > 0 and a < b):
        raise ValueError(f"trunc_normal_ expects std > 0 and a < b, got std={std!r}, "
                         f"a={a!r}, b={b!r}")
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    rng, n = _rng(generator), math.prod(tensor.shape)
    mass = _norm_cdf((b - mean) / std) - _norm_cdf((a - mean) / std)
    values = (_redraw_normal(rng, n, mean, std, a, b) if mass > 0.3
              else _accept_uniform(rng, n, mean, std, a, b))
    return _fill(tensor, values.reshape(tensor.shape))


def _norm_cdf(x):
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def _redraw_normal(rng, n, mean, std, a, b):
    """Normal draws, those outside [a, b] drawn again (fast when [a, b] holds most mass)."""
    values = rng.normal(mean, std, n)
    bad = (values < a) | (values > b)
    while bad.any():
        values[bad] = rng.normal(mean, std, int(bad.sum()))
        bad = (values < a) | (values > b)
    return values


def _accept_uniform(rng, n, mean, std, a, b):
    """Rejection from U(a, b) with acceptance pdf(x)/pdf(mode) (for narrow or far [a, b])."""
    mode = max(a, min(mean, b))
    log_peak = -0.5 * ((mode - mean) / std) ** 2
    values, pending = np.empty(n), np.ones(n, bool)
    while pending.any():
        k = int(pending.sum())
        x = rng.uniform(a, b, k)
        accept = np.log(rng.uniform(size=k)) <= -0.5 * ((x - mean) / std) ** 2 - log_peak
        index = np.flatnonzero(pending)[accept]
        values[index], pending[index] = x[accept], False
    return values


def constant_(tensor, val):
    """Fill with the value `val`."""
    _check_tensor(tensor)
    tensor.array[...] = val
    inference_cache.weights_changed()
    return tensor


def ones_(tensor):
    """Fill with ones."""
    return constant_(tensor, 1)


def zeros_(tensor):
    """Fill with zeros."""
    return constant_(tensor, 0)


def eye_(tensor):
    """Fill a 2-D tensor with the identity (ones on the diagonal of a rectangle too)."""
    _check_tensor(tensor)
    if len(tensor.shape) != 2:
        raise ValueError(f"Only tensors with 2 dimensions are supported (got shape "
                         f"{tuple(tensor.shape)})")
    xp = backend.get_array_module(tensor.array)
    tensor.array[...] = xp.eye(*tensor.shape, dtype=tensor.dtype)
    inference_cache.weights_changed()
    return tensor


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """U(−a, a) with a = gain·√(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = _fan_in_and_fan_out(tensor)
    if fan_in + fan_out == 0:
        return tensor
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std²) with std = gain·√(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fan_in_and_fan_out(tensor)
    if fan_in + fan_out == 0:
        return tensor
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    """gain / √fan (He et al., 2015), or None for a tensor with no entries."""
    fan = _correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    return gain / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(−bound, bound) with bound = √3 · gain / √fan; `a` is leaky_relu's negative slope."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return uniform_(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std²) with std = gain / √fan; `a` is leaky_relu's negative slope."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor, gain=1, generator=None):
    """A (semi-)orthogonal matrix over the tensor flattened to (rows, rest), times gain."""
    _check_float(tensor, "orthogonal_")
    if len(tensor.shape) < 2:
        raise ValueError(f"Only tensors with 2 or more dimensions are supported (got shape "
                         f"{tuple(tensor.shape)})")
    rows = tensor.shape[0]
    if math.prod(tensor.shape) == 0:
        return tensor
    cols = math.prod(tensor.shape) // rows
    flat = _rng(generator).normal(0.0, 1.0, (rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    # NOTE: scaling Q's columns by the signs of R's diagonal makes Q Haar-distributed
    # (Mezzadri, arXiv:math-ph/0609050).
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


glorot_uniform = xavier_uniform_
he_normal = kaiming_normal_
zeros = zeros_
