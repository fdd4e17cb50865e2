"""cupyx of the stand-in: scatter_add (CuPy's unbuffered target[index] += values)."""
import numpy as _np

import cupy


def scatter_add(a, slices, value):
    """a[slices] += value with repeated indices accumulating, on device arrays only."""
    if not isinstance(a, cupy.ndarray):
        raise TypeError(f"cupyx.scatter_add: a must be a cupy.ndarray, not {type(a).__name__}")
    cupy._call(_np.add.at, "scatter_add", (a, slices, value), {})
    cupy._mark_written([a])
