"""The torch namespace's other everyday functions (eq, add, randperm, topk, gather, ...), each
the Tensor method of the same name, plus the global switches scripts set."""
import collections

import numpy as np

from . import backend
from .errors import InputError
from .creation import _generator, _make
from .tensor import Tensor, tensor

topk_result = collections.namedtuple("topk", ["values", "indices"])
sort_result = collections.namedtuple("sort", ["values", "indices"])


def _as_tensor(x):
    return x if isinstance(x, Tensor) else tensor(x)


def eq(input, other): return _as_tensor(input).eq(other)
def ne(input, other): return _as_tensor(input).ne(other)
def gt(input, other): return _as_tensor(input).gt(other)
def lt(input, other): return _as_tensor(input).lt(other)
def ge(input, other): return _as_tensor(input).ge(other)
def le(input, other): return _as_tensor(input).le(other)
def add(input, other, *, alpha=1): return _as_tensor(input).add(other, alpha=alpha)
def sub(input, other, *, alpha=1): return _as_tensor(input).sub(other, alpha=alpha)
def mul(input, other): return _as_tensor(input).mul(other)
def pow(input, exponent): return _as_tensor(input) ** exponent
def neg(input): return -_as_tensor(input)
def square(input): return _as_tensor(input).square()
def rsqrt(input): return _as_tensor(input).rsqrt()
def isnan(input): return _as_tensor(input).isnan()
def isinf(input): return _as_tensor(input).isinf()
def isfinite(input): return _as_tensor(input).isfinite()
def logical_not(input): return _as_tensor(input).logical_not()
def _matrices(name, ndim, *operands):
    for t in operands:
        if len(t.shape) != ndim:
            raise InputError(f"{name}(): expects {ndim}-D tensors, got shapes "
                             f"{tuple(o.shape for o in operands)}")


def mm(input, mat2):
    """The matrix product of two 2-D tensors."""
    _matrices("mm", 2, input, mat2)
    return input @ mat2


def bmm(input, mat2):
    """The matrix products of two batches of matrices (3-D tensors)."""
    _matrices("bmm", 3, input, mat2)
    if input.shape[0] != mat2.shape[0]:
        raise InputError(f"bmm(): batch sizes differ: {input.shape} and {mat2.shape}")
    return input @ mat2
def flip(input, dims): return input.flip(dims)
def gather(input, dim, index): return input.gather(dim, index)
def round(input): return input.round()
def floor(input): return input.floor()
def ceil(input): return input.ceil()
def sign(input): return input.sign()


def div(input, other, *, rounding_mode=None):
    """input / other, rounding_mode None, 'floor' or 'trunc'."""
    return _as_tensor(input).div(other, rounding_mode=rounding_mode)


def all(input, dim=None, keepdim=False):
    """True where every element (along dim) is non-zero."""
    return _as_tensor(input).all(dim, keepdim)


def any(input, dim=None, keepdim=False):
    """True where some element (along dim) is non-zero."""
    return _as_tensor(input).any(dim, keepdim)


def topk(input, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the k largest (smallest) entries along dim."""
    return input.topk(k, dim, largest, sorted)


def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along dim."""
    return input.sort(dim, descending, stable=stable)


def argsort(input, dim=-1, descending=False, stable=False):
    """The indices that sort input along dim."""
    return input.argsort(dim, descending, stable=stable)


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False):
    """A random permutation of 0..n-1 (int64), from the generator tl.manual_seed seeds."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"randperm: n must be a non-negative int, not {n!r}")
    draws = _generator(device, generator).permutation(int(n))
    return _make(draws.astype(np.dtype(np.int64 if dtype is None else dtype)), requires_grad)


def as_tensor(data, dtype=None, device=None):
    """A Tensor sharing the memory of a NumPy array (or a CuPy one) when dtype and device allow,
    else a new one, as torch.as_tensor."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype)
    if isinstance(data, np.ndarray) or backend.is_cupy_array(data):
        same = (dtype is None or np.dtype(dtype) == data.dtype) and (
            device is None or backend.as_device(device) == backend.device_of(data))
        if same and data.dtype.kind in "biuf":
            return Tensor._wrap(data)
    return tensor(data, dtype=dtype, device=device)


def get_default_dtype():
    """float32: tinylesion's floating-point default (set_default_dtype cannot change it)."""
    return backend.DEFAULT_DTYPE


def set_default_dtype(d):
    """Accepted for float32 only: tinylesion computes in float32 by default."""
    if np.dtype(d) != np.dtype(backend.DEFAULT_DTYPE):
        raise NotImplementedError(f"set_default_dtype({np.dtype(d)}): tinylesion's default "
                                  "dtype is float32; ask for float64 with dtype= or .double()")


def use_deterministic_algorithms(mode, *, warn_only=False):
    """Accepted: tinylesion's kernels give the same results run after run."""


def set_float32_matmul_precision(precision):
    """Accepted ("highest", "high", "medium"): matrix products are full float32."""
    if precision not in ("highest", "high", "medium"):
        raise ValueError(f"set_float32_matmul_precision: unknown precision {precision!r}")
