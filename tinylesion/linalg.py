"""torch.linalg's norms (vector_norm, matrix_norm, norm) and svdvals, and torch.norm
(Tensor.norm)."""
import math
import numbers

import numpy as np

from .errors import InputError
from .ops._util import check_dtype, normalize_axis
from .ops.norm import VectorNorm
from .ops.svd import Svdvals
from .tensor import Tensor

_MATRIX_ORDS = ("fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2)


def _float_input(x, name, dtype):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}() expects a Tensor, not {type(x).__name__}")
    if dtype is not None:
        x = x.to(dtype)
    check_dtype(x.array, "f", name)
    return x


def _axes(dim, ndim, name):
    """dim (None, an int or a sequence) as a tuple of axes; None is every axis."""
    if dim is not None and not isinstance(dim, (int, np.integer)):
        dim = tuple(dim)
        if len(set(d % max(ndim, 1) for d in dim)) != len(dim):
            raise InputError(f"{name}: dim {dim} names a dimension twice")
    return normalize_axis(dim, ndim)


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """(Σ|x|^ord)^(1/ord) over dim (every dimension when None): ord 2 by default, inf (the
    largest |x|), -inf (the smallest), 0 (the count of non-zero entries) or any real number.
    The gradient at a zero norm is 0, as PyTorch's."""
    x = _float_input(x, "vector_norm", dtype)
    if isinstance(ord, bool) or not isinstance(ord, numbers.Real):
        raise TypeError(f"vector_norm: ord must be a number, not {ord!r}")
    if math.isinf(ord) and x.numel() == 0:
        raise InputError(f"vector_norm cannot compute the {ord} norm on an empty tensor "
                         "because the operation does not have an identity")
    axes = _axes(dim, x.ndim, "vector_norm")
    return VectorNorm.apply(x, ord=float(ord), axes=axes, keepdims=bool(keepdim))


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """The norm of the matrices over the two dimensions dim: 'fro' (the square root of the
    sum of squares), 1 / -1 (the largest / smallest column sum of |A|), inf / -inf (row
    sums), 'nuc' (the sum of the singular values) or 2 / -2 (the largest / smallest)."""
    A = _float_input(A, "matrix_norm", dtype)
    if ord not in _MATRIX_ORDS or isinstance(ord, bool):
        raise ValueError(f"matrix_norm: ord must be one of {_MATRIX_ORDS}, not {ord!r}")
    if A.ndim < 2:
        raise InputError(f"matrix_norm: the input must have at least 2 dimensions, not "
                         f"shape {A.shape}")
    dim = tuple(dim) if not isinstance(dim, (int, np.integer)) else (dim,)
    if len(dim) != 2:
        raise ValueError(f"matrix_norm: dim must be a pair of dimensions, not {dim!r}")
    _axes(dim, A.ndim, "matrix_norm")   # in range, not repeated
    rows, cols = dim[0] % A.ndim, dim[1] % A.ndim
    if ord == "fro":
        return vector_norm(A, 2, (rows, cols), keepdim)
    if ord in ("nuc", 2, -2):
        s = svdvals(A.permute([d for d in range(A.ndim) if d not in (rows, cols)]
                              + [rows, cols]))
        out = s.sum(-1) if ord == "nuc" else s.amax(-1) if ord == 2 else s.amin(-1)
        for d in sorted((rows, cols)) if keepdim else ():
            out = out.unsqueeze(d)
        return out
    # NOTE: ord 1 sums |A| down each column (over rows) and takes the extreme over columns;
    # ord inf sums along each row (over cols) and takes the extreme over rows.
    summed, extreme = (rows, cols) if ord in (1, -1) else (cols, rows)
    sums = A.abs().sum(summed, keepdim=True)
    out = sums.amax(extreme, keepdim=True) if ord > 0 else sums.amin(extreme, keepdim=True)
    return out if keepdim else out.squeeze((rows, cols))


def svdvals(A):
    """The singular values of the matrices in the last two dimensions, descending;
    differentiable (where they are distinct)."""
    A = _float_input(A, "svdvals", None)
    if A.ndim < 2:
        raise InputError(f"svdvals: the input must have at least 2 dimensions, not shape "
                         f"{A.shape}")
    return Svdvals.apply(A)


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.norm: with ord None the 2-norm of the flattened input (dim None), of the
    vectors (an int dim) or the Frobenius norm of the matrices (a pair); with an ord, a vector
    norm for 1-D input or an int dim, a matrix norm for 2-D input or a pair of dims."""
    if dim is not None and not isinstance(dim, (int, np.integer)):
        dim = tuple(dim)
    if not isinstance(A, Tensor):
        raise TypeError(f"norm() expects a Tensor, not {type(A).__name__}")
    if ord is None:
        if isinstance(dim, tuple) and len(dim) == 2:
            return matrix_norm(A, "fro", dim, keepdim, dtype=dtype)
        return vector_norm(A, 2, dim, keepdim, dtype=dtype)
    if dim is None:
        if A.ndim not in (1, 2):
            raise InputError(f"linalg.norm: If dim is not specified but ord is, the input "
                             f"must be 1D or 2D. Got {A.ndim}D.")
        dim = 0 if A.ndim == 1 else (0, 1)
    if isinstance(dim, tuple) and len(dim) == 2:
        return matrix_norm(A, ord, dim, keepdim, dtype=dtype)
    if isinstance(ord, str):
        raise ValueError(f"linalg.norm: ord={ord!r} is a matrix norm: give two dims")
    return vector_norm(A, ord, dim, keepdim, dtype=dtype)


def torch_norm(input, p="fro", dim=None, keepdim=False, out=None, dtype=None):
    """torch.norm (and Tensor.norm): the vector p-norm over dim (every dimension when None)
    for a number p (inf too); 'fro' is the 2-norm over dim; 'nuc' is a matrix norm."""
    if out is not None:
        raise NotImplementedError("norm: out= is not implemented")
    if p == "nuc":
        if dim is None and input.ndim != 2:
            raise InputError(f"norm: p='nuc' needs a 2-D input or a pair of dims, not shape "
                             f"{input.shape}")
        return matrix_norm(input, "nuc", (0, 1) if dim is None else dim, keepdim,
                           dtype=dtype)
    if p is None or p == "fro":
        p = 2
    elif isinstance(p, str):
        raise ValueError(f"norm: p must be a number, 'fro' or 'nuc', not {p!r}")
    return vector_norm(input, p, dim, keepdim, dtype=dtype)


from .linalg_solve import det, inv, solve  # noqa: E402,F401  (torch.linalg's names)
