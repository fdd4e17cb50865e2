"""Embedding: a lookup table of learned vectors, one row per index."""
import numpy as np

from .. import backend
from ..errors import InputError
from ..ops.embedding import Embedding as _Embedding
from ..linalg import vector_norm
from ..tensor import Tensor, no_grad
from . import init
from .module import Module, Parameter


def _padding_row(padding_idx, rows, name):
    """padding_idx as a row in 0..rows-1 (negative counts from the end), or None."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) \
            or not -rows <= padding_idx < rows:
        raise ValueError(f"{name}: padding_idx={padding_idx!r} must be an int within "
                         f"num_embeddings ({rows})")
    return int(padding_idx) % rows


def _renormalize_rows(weight, indices, max_norm, norm_type):
    """Scale in place the rows of weight that indices name and whose norm_type-norm exceeds
    max_norm to the norm max_norm (PyTorch's: by max_norm / (norm + 1e-7)), outside the
    graph."""
    weight._check_unused()   # an op that used the weight would see it change
    weight._check_writable()
    xp = weight.xp
    rows = xp.unique(indices)
    with no_grad():
        norms = vector_norm(Tensor._wrap(weight.array[rows]), norm_type, 1).array
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1).astype(weight.dtype)
    weight.array[rows] = weight.array[rows] * scale[:, None]


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """The rows of weight (num_embeddings, embedding_dim) at the integer indices input (any
    shape): output shape input.shape + (embedding_dim,), as torch.nn.functional.embedding.
    The row padding_idx gets no gradient; scale_grad_by_freq divides each row's gradient by
    its index's count in input; with max_norm, the rows looked up whose norm_type-norm is
    larger are first scaled down to max_norm in place, as PyTorch's. sparse=True raises
    NotImplementedError."""
    if sparse:
        raise NotImplementedError("embedding: sparse=True is not implemented (dense "
                                  "gradients only)")
    if weight.ndim != 2:
        raise InputError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), not "
                         f"shape {weight.shape}")
    rows = weight.shape[0]
    indices = input.array if isinstance(input, Tensor) else input
    indices = weight.xp.asarray(indices) if hasattr(indices, "dtype") else \
        weight.xp.asarray(np.asarray(indices))
    if isinstance(input, Tensor) and input.device != weight.device:
        raise InputError(f"embedding: indices on {input.device} but the weight on "
                         f"{weight.device}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers (int32 or int64), not "
                        f"{indices.dtype}")
    if not backend.is_cupy_array(indices) and indices.size and (
            int(indices.min()) < 0 or int(indices.max()) >= rows):
        bad = int(indices.min()) if int(indices.min()) < 0 else int(indices.max())
        raise IndexError(f"embedding: index {bad} is out of range for {rows} embeddings")
    indices = indices.astype(np.int64, copy=False)
    if max_norm is not None:
        _renormalize_rows(weight, indices, max_norm, norm_type)
    return _Embedding.apply(weight, indices=indices,
                            padding_idx=_padding_row(padding_idx, rows, "embedding"),
                            scale_grad_by_freq=bool(scale_grad_by_freq))


class Embedding(Module):
    """A table of num_embeddings vectors of embedding_dim, drawn from N(0, 1) (the row
    padding_idx zeros, and without gradient), as torch.nn.Embedding."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None):
        super().__init__()
        for name, n in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
                raise ValueError(f"Embedding: {name} must be a non-negative int, not {n!r}")
        if sparse:
            raise NotImplementedError("Embedding: sparse=True is not implemented (dense "
                                      "gradients only)")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = _padding_row(padding_idx, self.num_embeddings, "Embedding")
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        shape = (self.num_embeddings, self.embedding_dim)
        if _weight is None:
            xp = backend.as_device("cpu" if device is None else device).xp
            dtype = np.dtype(backend.DEFAULT_DTYPE if dtype is None else dtype)
            self.weight = Parameter(xp.zeros(shape, dtype), requires_grad=not _freeze)
            self.reset_parameters()
        else:   # the given table, on its device and in its dtype unless these are given
            data = _weight.array if isinstance(_weight, Tensor) else _weight
            if tuple(data.shape) != shape:
                raise ValueError(f"Embedding: _weight of shape {tuple(data.shape)} does not "
                                 f"match ({num_embeddings}, {embedding_dim})")
            data = data if device is None else backend.to_device(data, device)
            data = data if dtype is None else data.astype(dtype, copy=False)
            self.weight = Parameter(data, requires_grad=not _freeze)

    def reset_parameters(self):
        """Draw the weight from N(0, 1) again; the padding row zeros."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.array[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        """An Embedding holding the 2-D tensor embeddings (frozen unless freeze=False)."""
        if embeddings.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, not shape "
                             f"{tuple(embeddings.shape)}")
        rows, dim = embeddings.shape
        data = embeddings.array if isinstance(embeddings, Tensor) else embeddings
        return cls(rows, dim, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=data, _freeze=freeze)   # (Parameter copies it)

    def forward(self, input):
        return embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                         self.scale_grad_by_freq, self.sparse)

    def extra_repr(self):
        out = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            out += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            out += f", max_norm={self.max_norm}"
        if self.scale_grad_by_freq:
            out += ", scale_grad_by_freq=True"
        return out
