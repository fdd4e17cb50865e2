"""torch's running sums and products: cumsum, cumprod and prod (functions and methods)."""
import numpy as np

from .functions import _check_tensor, _dim
from .ops.scan import CumProd, CumSum, Prod
from .tensor import Tensor


def _accumulator(x, dtype):
    """The dtype a sum or product of x is computed in: dtype if given, else int64 for integer
    and boolean tensors (as PyTorch's), else x's."""
    if dtype is not None:
        return np.dtype(dtype)
    return np.dtype(np.int64) if x.dtype.kind in "biu" else x.dtype


def _running(op, name, input, dim, dtype):
    x = _check_tensor(input, name)
    axis = _dim(dim, x.ndim, name)
    x = x if x.dtype == _accumulator(x, dtype) else x.to(_accumulator(x, dtype))
    if x.ndim == 0:
        return op.apply(x.reshape(1), axis=0).reshape(())
    return op.apply(x, axis=axis)


def cumsum(input, dim, *, dtype=None):
    """The running sum along dim (int64 for integer and boolean input); differentiable."""
    return _running(CumSum, "cumsum", input, dim, dtype)


def cumprod(input, dim, *, dtype=None):
    """The running product along dim (int64 for integer and boolean input); differentiable,
    also where entries are 0."""
    return _running(CumProd, "cumprod", input, dim, dtype)


def prod(input, dim=None, keepdim=False, *, dtype=None):
    """The product of all entries, or along dim (with keepdim); int64 for integer and boolean
    input. Differentiable, also where entries are 0."""
    x = _check_tensor(input, "prod")
    x = x if x.dtype == _accumulator(x, dtype) else x.to(_accumulator(x, dtype))
    if dim is None:
        if keepdim:
            raise TypeError("prod(): keepdim needs a dim")
        return Prod.apply(x, axis=None)
    axis = _dim(dim, x.ndim, "prod")
    if x.ndim == 0:
        return Prod.apply(x.reshape(1), axis=0, keepdims=keepdim).reshape(())
    return Prod.apply(x, axis=axis, keepdims=bool(keepdim))


def logsumexp(input, dim, keepdim=False):
    """log Σ exp(input) over dim (an int or a tuple), computed stably (the maximum taken out
    first); a float result for integer input. Differentiable: the gradient is the softmax."""
    from .functions import _dims
    from .ops._util import floating
    x = _check_tensor(input, "logsumexp")
    if x.dtype.kind != "f":
        x = x.to(floating(x.array).dtype)
    axes = _dims(dim, x.ndim, "logsumexp")
    if x.ndim == 0 or not axes:
        return x.clone()
    if any(x.shape[a] == 0 for a in axes):   # log of an empty sum: −inf
        out = x.sum(axes, keepdim=True) - float("inf")
        return out if keepdim else out.squeeze(axes)
    # NOTE: the shift m is a constant (its gradient cancels); where the maximum is ±inf it is
    # taken as 0, so that all −inf gives −inf and +inf gives +inf, not NaN.
    peak = x.detach().amax(axes, keepdim=True)
    peak = Tensor._wrap(x.xp.where(x.xp.isinf(peak.array), 0, peak.array).astype(x.dtype))
    out = (x - peak).exp().sum(axes, keepdim=True).log() + peak
    return out if keepdim else out.squeeze(axes)
