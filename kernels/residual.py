"""A residual block's end at inference: relu(out + shortcut) written into out, in one pass."""
import numpy as np
from numba import njit, prange

from . import threads

SERIAL_MAX = 1 << 14   # elements below which one thread does it (no parallel region)


@njit(cache=True)
def _serial(a, b):
    for i in range(a.size):
        v = a[i] + b[i]
        a[i] = v if not v <= 0 else 0   # NOTE: NaN <= 0 is false, so NaN passes (as relu)


@njit(parallel=True, cache=True, nogil=True)
def _parallel(a, b):
    for i in prange(a.size):
        v = a[i] + b[i]
        a[i] = v if not v <= 0 else 0


@threads.guarded
def add_relu_into(out, shortcut):
    """out = max(out + shortcut, 0) in place, for C-contiguous float NumPy arrays of one shape
    and dtype; returns out (the same numbers as the sum, then the ReLU)."""
    if out.shape != shortcut.shape or out.dtype != shortcut.dtype or out.dtype.kind != "f" \
            or not out.flags.c_contiguous:
        raise ValueError(f"add_relu_into: two float arrays of one shape and dtype, the first "
                         f"C-contiguous; got {out.dtype} {out.shape} and {shortcut.dtype} "
                         f"{shortcut.shape}")
    b = np.ascontiguousarray(shortcut)
    (_serial if out.size <= SERIAL_MAX else _parallel)(out.reshape(-1), b.reshape(-1))
    return out
