"""torch's functions on the diagonals and triangles of matrices: diagonal, diag, trace, tril,
triu and outer (differentiable, built on indexing, where and broadcasting)."""
import numpy as np

from .errors import InputError
from .functions import _check_tensor, _dim, where
from .ops.shape import GetItem


def _offset(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}(): the diagonal offset must be an int, not {value!r}")
    return int(value)


def _diagonal_index(rows, cols, offset, xp):
    """(row indices, column indices) of the entries (i, i + offset) inside a rows × cols
    matrix."""
    start_row, start_col = max(-offset, 0), max(offset, 0)
    n = max(min(rows - start_row, cols - start_col), 0)
    steps = xp.arange(n)
    return steps + start_row, steps + start_col


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The entries (i, i + offset) of the matrices in dimensions dim1 and dim2, as a new last
    dimension (the others keep their order), as torch.diagonal; differentiable."""
    x = _check_tensor(input, "diagonal")
    offset = _offset(offset, "diagonal")
    d1, d2 = _dim(dim1, x.ndim, "diagonal"), _dim(dim2, x.ndim, "diagonal")
    if x.ndim < 2 or d1 == d2:
        raise InputError(f"diagonal(): dim1 and dim2 must name two different dimensions of a "
                         f"tensor of at least 2 (shape {x.shape}), not {dim1} and {dim2}")
    rest = [d for d in range(x.ndim) if d not in (d1, d2)]
    moved = x if rest + [d1, d2] == list(range(x.ndim)) else x.permute(rest + [d1, d2])
    rows, cols = _diagonal_index(x.shape[d1], x.shape[d2], offset, x.xp)
    return GetItem.apply(moved, index=(Ellipsis, rows, cols))


_diagonal = diagonal   # (diag's argument `diagonal` hides the function)


def trace(input):
    """The sum of a matrix's diagonal."""
    x = _check_tensor(input, "trace")
    if x.ndim != 2:
        raise InputError(f"trace(): expected a matrix, not shape {x.shape}")
    return diagonal(x).sum()


def diag(input, diagonal=0):
    """A vector's square matrix with the vector on diagonal `diagonal` (zeros elsewhere), or a
    matrix's diagonal `diagonal` as a vector, as torch.diag; differentiable."""
    x = _check_tensor(input, "diag")
    offset = _offset(diagonal, "diag")
    if x.ndim == 2:
        return _diagonal(x, offset)
    if x.ndim != 1:
        raise InputError(f"diag(): expected a vector or a matrix, not shape {x.shape}")
    xp, n = x.xp, x.shape[0]
    size = n + abs(offset)
    rows, cols = _diagonal_index(size, size, offset, xp)
    position = xp.zeros((size, size), dtype=np.int64)   # which entry of x goes where
    position[rows, cols] = xp.arange(n)
    on_diagonal = xp.zeros((size, size), dtype=bool)
    on_diagonal[rows, cols] = True
    return where(on_diagonal, GetItem.apply(x, index=position), 0)


def _triangle(x, offset, name, keep):
    x = _check_tensor(x, name)
    offset = _offset(offset, name)
    if x.ndim < 2:
        raise InputError(f"{name}(): expected a tensor of at least 2 dimensions, not shape "
                         f"{x.shape}")
    xp = x.xp
    rows, cols = x.shape[-2:]
    above = xp.arange(cols)[None, :] - xp.arange(rows)[:, None]   # j − i
    return where(keep(above, offset), x, 0)


def tril(input, diagonal=0):
    """The lower triangle of the matrices in the last two dimensions (entries with
    j − i <= diagonal), zeros above; differentiable."""
    return _triangle(input, diagonal, "tril", lambda above, k: above <= k)


def triu(input, diagonal=0):
    """The upper triangle (entries with j − i >= diagonal), zeros below; differentiable."""
    return _triangle(input, diagonal, "triu", lambda above, k: above >= k)


def outer(input, vec2):
    """The outer product of two vectors, out[i, j] = input[i] · vec2[j]."""
    a, b = _check_tensor(input, "outer"), _check_tensor(vec2, "outer")
    if a.ndim != 1 or b.ndim != 1:
        raise InputError(f"outer(): expected two vectors, not shapes {a.shape} and {b.shape}")
    return a.reshape(-1, 1) * b.reshape(1, -1)

