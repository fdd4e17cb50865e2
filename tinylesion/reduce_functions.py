"""torch's running sum and product reductions: cumsum and prod (functions and methods)."""
import numpy as np

from .functions import _check_tensor, _dim
from .ops.scan import CumSum, Prod


def _accumulator(x, dtype):
    """The dtype a sum or product of x is computed in: dtype if given, else int64 for integer
    and boolean tensors (as PyTorch's), else x's."""
    if dtype is not None:
        return np.dtype(dtype)
    return np.dtype(np.int64) if x.dtype.kind in "biu" else x.dtype


def cumsum(input, dim, *, dtype=None):
    """The running sum along dim (int64 for integer and boolean input); differentiable."""
    x = _check_tensor(input, "cumsum")
    axis = _dim(dim, x.ndim, "cumsum")
    x = x if x.dtype == _accumulator(x, dtype) else x.to(_accumulator(x, dtype))
    if x.ndim == 0:
        return CumSum.apply(x.reshape(1), axis=0).reshape(())
    return CumSum.apply(x, axis=axis)


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
