"""cupy.linalg of the stand-in: NumPy's linalg functions (svd, inv, det, solve) on device
arrays only."""
import numpy as _np

import cupy


def svd(a, full_matrices=True, compute_uv=True):
    """The (batched) singular value decomposition, as cupy.linalg.svd."""
    return cupy._call(_np.linalg.svd, "linalg.svd", (a,),
                      dict(full_matrices=full_matrices, compute_uv=compute_uv))


def inv(a):
    """The (batched) matrix inverse, as cupy.linalg.inv."""
    return cupy._call(_np.linalg.inv, "linalg.inv", (a,), {})


def det(a):
    """The (batched) determinant, as cupy.linalg.det."""
    return cupy._call(_np.linalg.det, "linalg.det", (a,), {})


def solve(a, b):
    """The solution of a x = b (batched), as cupy.linalg.solve."""
    return cupy._call(_np.linalg.solve, "linalg.solve", (a, b), {})
