"""torch's functions that rearrange or broadcast entries: movedim, swapaxes, narrow, tile,
rot90, kron, broadcast_to, take_along_dim and meshgrid (all differentiable: reshapes,
permutations, flips, expansions and gathers)."""
import warnings

import numpy as np

from .functions import _check_tensor, _dim, expand
from .tensor import Tensor


def _dims_list(value, ndim, name, what):
    dims = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    out = [_dim(d, ndim, name) for d in dims]
    if len(set(out)) != len(out):
        raise RuntimeError(f"{name}: repeated dim in {what} {tuple(dims)}")
    return out


def movedim(input, source, destination):
    """input with its dimensions `source` moved to the positions `destination` (ints or
    sequences of one length), the others kept in order."""
    x = _check_tensor(input, "movedim")
    src = _dims_list(source, x.ndim, "movedim", "source")
    dst = _dims_list(destination, x.ndim, "movedim", "destination")
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({source}) "
                           f"and destination ({destination}) must have the same length")
    order = [None] * x.ndim
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(i for i in range(x.ndim) if i not in src)
    order = [next(rest) if o is None else o for o in order]
    return x.permute(*order) if x.ndim else x * 1


moveaxis = movedim


def swapaxes(input, axis0, axis1):
    """input with dimensions axis0 and axis1 swapped (torch.transpose)."""
    x = _check_tensor(input, "swapaxes")
    return x.transpose(_dim(axis0, x.ndim, "swapaxes"), _dim(axis1, x.ndim, "swapaxes"))


swapdims = swapaxes


def narrow(input, dim, start, length):
    """The `length` entries from `start` (negative counts from the end) along dim."""
    x = _check_tensor(input, "narrow")
    d = _dim(dim, x.ndim, "narrow")
    n = x.shape[d]
    start = int(start.item() if isinstance(start, Tensor) else start)
    start = start + n if start < 0 else start
    if not 0 <= start <= n or length < 0 or start + length > n:
        raise IndexError(f"narrow(): start ({start}) + length ({length}) exceeds dimension "
                         f"{dim} of size {n}")
    return x[(slice(None),) * d + (slice(start, start + length),)]


def tile(input, dims):
    """input repeated dims[i] times along each dimension (dims shorter than the tensor's
    rank are padded with 1s in front; longer ones add leading dimensions)."""
    x = _check_tensor(input, "tile")
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    if any(int(d) < 0 for d in dims):
        raise RuntimeError(f"tile: the repeats {dims} must not be negative")
    dims = (1,) * (x.ndim - len(dims)) + dims
    return x.repeat(*dims)


def rot90(input, k=1, dims=(0, 1)):
    """input rotated by 90° k times in the plane of dims, from the first towards the
    second."""
    x = _check_tensor(input, "rot90")
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"rot90: expected total rotation dims == 2, but got dims = "
                           f"{len(dims)}")
    if x.ndim < 2:
        raise RuntimeError(f"rot90: expected total dims >= 2, but got total dims = {x.ndim}")
    a, b = (_dim(d, x.ndim, "rot90") for d in dims)
    if a == b:
        raise RuntimeError(f"rot90: expected rotation dims to be different, but got {dims}")
    k = int(k) % 4
    if k == 0:
        return x * 1
    if k == 2:
        return x.flip(a, b)
    if k == 1:
        return x.flip(b).transpose(a, b)
    return x.transpose(a, b).flip(b)


def kron(input, other):
    """The Kronecker product: blocks input[i, j, ...] · other, for tensors of any ranks (the
    smaller padded with leading 1s)."""
    a, b = _check_tensor(input, "kron"), _check_tensor(other, "kron")
    n = max(a.ndim, b.ndim)
    a = a.reshape((1,) * (n - a.ndim) + a.shape)
    b = b.reshape((1,) * (n - b.ndim) + b.shape)
    a2 = a.reshape(tuple(s for d in a.shape for s in (d, 1)))
    b2 = b.reshape(tuple(s for d in b.shape for s in (1, d)))
    return (a2 * b2).reshape(tuple(p * q for p, q in zip(a.shape, b.shape)))


def broadcast_to(input, size):
    """input expanded to `size` (-1 keeps a dimension), sharing its entries."""
    x = _check_tensor(input, "broadcast_to")
    return expand(x, *tuple(size))


def take_along_dim(input, indices, dim=None):
    """The entries of input at `indices` along dim, the other dimensions broadcast; with dim
    None, both are flattened first."""
    x = _check_tensor(input, "take_along_dim")
    index = indices.array if isinstance(indices, Tensor) else x.xp.asarray(indices)
    if index.dtype.kind not in "iu":
        raise TypeError(f"take_along_dim(): indices must be an integer tensor, not "
                        f"{index.dtype}")
    if dim is None:
        return x.reshape(-1).gather(0, Tensor._wrap(index.reshape(-1)))
    d = _dim(dim, x.ndim, "take_along_dim")
    if index.ndim != x.ndim:
        raise RuntimeError(f"take_along_dim(): input and indices should have the same number "
                           f"of dimensions, but got {x.ndim} and {index.ndim}")
    try:
        shape = np.broadcast_shapes(x.shape[:d] + (1,) + x.shape[d + 1:],
                                    index.shape[:d] + (1,) + index.shape[d + 1:])
    except ValueError:
        raise RuntimeError(f"take_along_dim(): the shapes {x.shape} and {index.shape} do not "
                           f"broadcast outside dimension {dim}") from None
    x = expand(x, *(shape[:d] + (x.shape[d],) + shape[d + 1:]))
    index = x.xp.broadcast_to(index, shape[:d] + (index.shape[d],) + shape[d + 1:])
    n = x.shape[d]
    if index.size and (int(index.min()) < -n or int(index.max()) >= n):
        raise IndexError(f"take_along_dim(): index out of range for dimension {dim} of size "
                         f"{n}")
    return x.gather(d, Tensor._wrap(x.xp.ascontiguousarray(index % max(n, 1))))


def meshgrid(*tensors, indexing=None):
    """Coordinate grids of 0-D or 1-D tensors: 'ij' indexing (the default, with torch's
    warning when not given) or 'xy' (the first two dimensions swapped)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if not tensors:
        raise RuntimeError("meshgrid expects a non-empty list of tensors")
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the "
                      "indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', not {indexing!r}")
    vectors = []
    for i, t in enumerate(tensors):
        t = _check_tensor(t, "meshgrid")
        if t.ndim > 1:
            raise RuntimeError(f"meshgrid: expected 0D or 1D tensor in the tensor list, but "
                               f"got tensor {i} of shape {t.shape}")
        if t.dtype != tensors[0].dtype or t.device != tensors[0].device:
            raise RuntimeError("meshgrid: expects all tensors to have the same dtype and "
                               "device")
        vectors.append(t.reshape(-1))
    swap = indexing == "xy" and len(vectors) >= 2
    if swap:
        vectors[0], vectors[1] = vectors[1], vectors[0]
    shape = tuple(v.shape[0] for v in vectors)
    grids = []
    for i, v in enumerate(vectors):
        view = (1,) * i + (shape[i],) + (1,) * (len(shape) - i - 1)
        grids.append(expand(v.reshape(view), *shape))
    if swap:
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)
