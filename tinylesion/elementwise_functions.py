"""torch's element-wise special functions: erf, erfc, erfinv, logit, atan2, hypot, lerp and
isclose (each also a Tensor method)."""
from . import backend, ops
from .functions import clamp
from .tensor import Tensor, tensor


def _float(x, name):
    """x as a floating-point Tensor (integers and booleans become the default dtype)."""
    x = x if isinstance(x, Tensor) else tensor(x)
    if x.dtype.kind == "c":
        raise TypeError(f"{name}: complex tensors are not supported")
    return x if x.dtype.kind == "f" else x.astype(backend.DEFAULT_DTYPE)


def _pair(a, b, name):
    """a and b as Tensors of one floating dtype, by torch's promotion."""
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise TypeError(f"{name}: expected a Tensor, not {type(a).__name__}")
        b2, a2 = b._operands(a)
    else:
        a2, b2 = a._operands(b)
    return _float(a2, name), _float(b2, name)


def erf(input):
    """The error function 2/√π ∫₀ˣ e^(−t²) dt."""
    return ops.Erf.apply(_float(input, "erf"))


def erfc(input):
    """1 − erf(x), accurate for large x."""
    return ops.Erfc.apply(_float(input, "erfc"))


def erfinv(input):
    """The inverse error function (±inf at ±1, NaN outside [−1, 1])."""
    return ops.Erfinv.apply(_float(input, "erfinv"))


def logit(input, eps=None):
    """log(p / (1 − p)), p clamped to [eps, 1 − eps] first when eps is given (its gradient 0
    outside)."""
    p = _float(input, "logit")
    if eps is not None:
        p = clamp(p, float(eps), 1.0 - float(eps))
    return (p / (1.0 - p)).log()


def atan2(input, other):
    """The angle of the point (other, input) in (−π, π], element-wise, broadcast."""
    a, b = _pair(input, other, "atan2")
    return ops.Atan2.apply(a, b)


arctan2 = atan2


def hypot(input, other):
    """√(input² + other²) without overflow, element-wise, broadcast."""
    a, b = _pair(input, other, "hypot")
    return ops.Hypot.apply(a, b)


def lerp(input, end, weight):
    """input + weight·(end − input), weight a number or a tensor (broadcast); as torch, the
    formula end − (end − input)·(1 − weight) where |weight| >= 0.5."""
    if not isinstance(input, Tensor) or input.dtype.kind != "f":
        raise TypeError(f"lerp: input must be a floating-point Tensor, not "
                        f"{getattr(input, 'dtype', type(input).__name__)}")
    if isinstance(end, Tensor) and end.dtype != input.dtype:
        raise TypeError(f"lerp: expected end of dtype {input.dtype}, not {end.dtype}")
    if isinstance(weight, Tensor):
        if weight.dtype != input.dtype:
            raise TypeError(f"lerp: expected weight of dtype {input.dtype}, not {weight.dtype}")
        from .functions import where
        small = weight.detach().abs() < 0.5
        d = end - input
        return where(small, input + weight * d, end - d * (1 - weight))
    d = end - input
    return input + weight * d if abs(weight) < 0.5 else end - d * (1 - weight)


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input − other| <= atol + rtol·|other| element-wise (a bool tensor); NaNs equal with
    equal_nan."""
    a = input if isinstance(input, Tensor) else tensor(input)
    b = other if isinstance(other, Tensor) else tensor(other, device=a.device)
    if a.dtype != b.dtype:
        raise TypeError(f"isclose: {a.dtype} and {b.dtype} tensors must have the same dtype")
    if rtol < 0 or atol < 0:
        raise ValueError(f"isclose: rtol ({rtol}) and atol ({atol}) must not be negative")
    return Tensor._wrap(a.xp.isclose(a.array, b.array, rtol=rtol, atol=atol,
                                     equal_nan=equal_nan))
