"""Helpers shared by the ops: summing broadcast gradients back, axis normalisation."""
from .. import backend
from ..backend import get_array_module


def sum_to(gx, shape):
    """Sum `gx` over the axes that broadcasting added or stretched, to get back `shape`."""
    if gx.shape == tuple(shape):
        return gx
    lead = gx.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and gx.shape[i + lead] != 1)
    gx = gx.sum(axis=axes, keepdims=True)
    return gx.reshape(shape) if lead else gx


def floating(x):
    """x as it enters a floating-point function (exp, log, sigmoid, ...): integer and boolean
    arrays become the default dtype, as PyTorch's results do (NumPy would give float64, or
    float16 for booleans)."""
    return x if x.dtype.kind == "f" else x.astype(backend.DEFAULT_DTYPE)


def check_dtype(x, kinds, name):
    """Raise TypeError unless x's dtype is of one of `kinds` ("f", "i", "b"), as PyTorch's
    kernels that are not implemented for other dtypes."""
    if x.dtype.kind not in kinds:
        raise TypeError(f"{name} is not implemented for {x.dtype} tensors")


class DimensionError(IndexError, ValueError):
    """A dimension out of range: an IndexError, as PyTorch raises (and a ValueError, as
    tinylesion raised before)."""


def normalize_axis(axis, ndim):
    """`axis` (None, int or sequence, negatives allowed) as a sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    n = max(ndim, 1)  # NOTE: a 0-d tensor takes dim 0 or -1, as in PyTorch: nothing to reduce
    out = []
    for a in axes:
        if not -n <= a < n:
            raise DimensionError(f"axis {a} is out of range for a tensor of {ndim} dimensions")
        out.append(a % n)
    return tuple(sorted(set(out))) if ndim else ()


def expand_reduced(g, x_shape, axes, keepdims):
    """Reshape a reduction's gradient so that it broadcasts against the input."""
    if not keepdims:
        shape = list(x_shape)
        for a in axes:
            shape[a] = 1
        g = g.reshape(shape)
    return g


__all__ = ["sum_to", "floating", "check_dtype", "normalize_axis", "expand_reduced", "get_array_module"]
