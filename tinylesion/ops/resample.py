"""Resampling along the last axes by interpolation matrices (nearest and linear), the op under
F.interpolate: y = A_h · x · A_wᵀ, and the gradient Aᵀ applied the other way."""
import math

import numpy as np

from .. import backend
from ..autograd import Function


def source_positions(n_in, n_out, scale, align_corners):
    """Where each output index samples the input, as PyTorch computes it for one axis.

    `scale` is input/output size (or 1/scale_factor when one was given); with align_corners
    the corners of both grids meet: (n_in − 1)/(n_out − 1).
    """
    out = np.arange(n_out, dtype=np.float64)
    if align_corners:
        step = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        return out * step
    return (out + 0.5) * scale - 0.5


def interpolation_matrix(n_in, n_out, scale, mode, align_corners):
    """The (n_out, n_in) float64 matrix of one axis: one 1 per row for nearest, two weights
    summing to 1 for linear."""
    A = np.zeros((n_out, n_in), np.float64)
    rows = np.arange(n_out)
    if mode in ("nearest", "nearest-exact"):
        # NOTE: in single precision, as PyTorch's kernels compute these indices; "nearest" is
        # its legacy rule floor(i·scale), "nearest-exact" samples pixel centres.
        offset = np.float32(0.5 if mode == "nearest-exact" else 0.0)
        src = np.floor((rows.astype(np.float32) + offset) * np.float32(scale))
        A[rows, np.minimum(src.astype(np.int64), n_in - 1)] = 1.0
        return A
    src = np.maximum(source_positions(n_in, n_out, scale, align_corners), 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    np.add.at(A, (rows, i0), 1.0 - frac)
    np.add.at(A, (rows, i1), frac)
    return A


class Resample(Function):
    """Apply one interpolation matrix per trailing axis (the last len(matrices) axes)."""

    def forward(self, x, matrices=()):
        xp = backend.get_array_module(x)
        self.mats = [xp.asarray(A.astype(x.dtype)) for A in matrices]
        y = x
        for k, A in enumerate(self.mats):
            axis = x.ndim - len(self.mats) + k
            y = xp.moveaxis(xp.tensordot(y, A, axes=([axis], [1])), -1, axis)
        return xp.ascontiguousarray(y)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        g = gy
        for k, A in enumerate(self.mats):
            axis = gy.ndim - len(self.mats) + k
            g = xp.moveaxis(xp.tensordot(g, A, axes=([axis], [0])), -1, axis)
        return xp.ascontiguousarray(g)


def output_size(in_sizes, size, scale_factor):
    """The output sizes from size= or scale_factor= (floor(in · factor)), per trailing axis."""
    n = len(in_sizes)
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        sizes = (size,) * n if isinstance(size, (int, np.integer)) else tuple(size)
        if len(sizes) != n:
            raise ValueError(f"Input and output must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of "
                             f"{list(in_sizes)} and output size of {list(sizes)}")
        return tuple(int(s) for s in sizes), None
    factors = (scale_factor,) * n if isinstance(scale_factor, (int, float)) else \
        tuple(scale_factor)
    if len(factors) != n:
        raise ValueError(f"Input and scale_factor must have the same number of spatial "
                         f"dimensions, but got input with spatial dimensions of "
                         f"{list(in_sizes)} and scale_factor of shape {list(factors)}")
    for f in factors:
        if not (isinstance(f, (int, float, np.integer, np.floating)) and math.isfinite(f)
                and f > 0):
            raise ValueError(f"scale_factor must hold positive finite numbers, got "
                             f"{scale_factor!r}")
    return tuple(int(math.floor(s * float(f))) for s, f in zip(in_sizes, factors)), factors
