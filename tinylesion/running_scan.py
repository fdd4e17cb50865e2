"""Running (inclusive) scans with a binary ufunc along an axis, on NumPy (its ufunc's
accumulate) or CuPy (a doubling scan of whole-array steps, as CuPy's ufuncs lack accumulate)."""
import numpy as np

from .backend import get_array_module


def scan(name, a, axis):
    """The running `name` ('maximum', 'minimum', 'logaddexp') of a along axis."""
    xp = get_array_module(a)
    if xp is np:
        return getattr(np, name).accumulate(a, axis=axis)
    # NOTE: after the step of width w, out[i] combines a[i−2w+1..i]; log₂ n steps cover all
    op = getattr(xp, name)
    out = xp.moveaxis(a, axis, -1).copy()
    n, width = out.shape[-1], 1
    while width < n:
        out[..., width:] = op(out[..., width:].copy(), out[..., :-width])
        width *= 2
    return xp.ascontiguousarray(xp.moveaxis(out, -1, axis))
