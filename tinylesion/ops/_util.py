"""Helpers shared by the ops: summing broadcast gradients back, axis normalisation."""
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


def normalize_axis(axis, ndim):
    """`axis` (None, int or sequence, negatives allowed) as a sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor of {ndim} dimensions")
        out.append(a % ndim if ndim else 0)
    return tuple(sorted(set(out)))


def expand_reduced(g, x_shape, axes, keepdims):
    """Reshape a reduction's gradient so that it broadcasts against the input."""
    if not keepdims:
        shape = list(x_shape)
        for a in axes:
            shape[a] = 1
        g = g.reshape(shape)
    return g


__all__ = ["sum_to", "normalize_axis", "expand_reduced", "get_array_module"]
