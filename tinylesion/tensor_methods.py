"""PyTorch's other Tensor methods (eq, view_as, add with alpha=, normal_, int, ...), mixed
into Tensor: each is written with the operators and functions tensor.py already defines."""
import numpy as np

from . import backend
from .compile import channels_last, check_memory_format
from .rng import numpy_generator


def _tensor():
    from .tensor import Tensor
    return Tensor


def _value(other):
    return other.array if isinstance(other, _tensor()) else other


class TensorMethods:
    """Methods of Tensor by torch's names (see tinylesion.tensor.Tensor for the rest)."""

    # ---- comparisons (boolean tensors, outside the graph) ---------------------------------
    def eq(self, other): return self == other
    def ne(self, other): return self != other
    def lt(self, other): return self < other
    def le(self, other): return self <= other
    def gt(self, other): return self > other
    def ge(self, other): return self >= other

    def isnan(self): return _tensor()._wrap(self.xp.isnan(self.array))
    def isinf(self): return _tensor()._wrap(self.xp.isinf(self.array))
    def isfinite(self): return _tensor()._wrap(self.xp.isfinite(self.array))
    def logical_not(self): return _tensor()._wrap(self.xp.logical_not(self.array))

    def all(self, dim=None, keepdim=False):
        """True where every element (along dim) is non-zero; a bool tensor."""
        return _tensor()._wrap(self.xp.asarray(self.array.astype(bool).all(axis=dim,
                                                                          keepdims=keepdim)))

    def any(self, dim=None, keepdim=False):
        """True where some element (along dim) is non-zero; a bool tensor."""
        return _tensor()._wrap(self.xp.asarray(self.array.astype(bool).any(axis=dim,
                                                                          keepdims=keepdim)))

    # ---- arithmetic by name (differentiable: the operators underneath are) ----------------
    def add(self, other, *, alpha=1):
        """self + alpha * other."""
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other, *, alpha=1):
        """self - alpha * other."""
        return self - (other if alpha == 1 else other * alpha)

    subtract = sub

    def mul(self, other): return self * other
    multiply = mul

    def div(self, other, *, rounding_mode=None):
        """self / other; rounding_mode 'floor' or 'trunc' rounds the quotient (as torch,
        'trunc' has no gradient)."""
        if rounding_mode is None:
            return self / other
        if rounding_mode == "floor":
            return self // other
        if rounding_mode == "trunc":
            xp = self.xp
            quotient = xp.trunc(xp.true_divide(self.array, _value(other)))
            dtype = backend.result_type(self.array, xp.asarray(_value(other))) \
                if isinstance(other, _tensor()) else backend.constant_result_type(self.dtype,
                                                                                   other)
            return _tensor()._wrap(quotient.astype(dtype))
        raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' "
                         f"but found {rounding_mode!r}")

    divide = true_divide = div

    def pow(self, exponent): return self ** exponent
    def neg(self): return -self
    negative = neg
    def square(self): return self * self
    def reciprocal(self): return 1.0 / self
    def rsqrt(self): return 1.0 / self.sqrt()

    def matmul(self, other): return self @ other
    mm = bmm = matmul

    def add_(self, other, *, alpha=1):
        """In place: self += alpha * other."""
        return self._in_place(lambda x: x.add(other, alpha=alpha))

    def sub_(self, other, *, alpha=1):
        """In place: self -= alpha * other."""
        return self._in_place(lambda x: x.sub(other, alpha=alpha))

    def mul_(self, other): return self._in_place(lambda x: x * other)
    def div_(self, other): return self._in_place(lambda x: x / other)
    def pow_(self, exponent): return self._in_place(lambda x: x ** exponent)

    def clamp_(self, min=None, max=None):
        """In place: clamp into [min, max]."""
        return self._in_place(lambda x: x.clamp(min, max))

    def masked_fill(self, mask, value):
        """A copy with `value` where mask is True (the gradient flows where it is False)."""
        from . import functions
        mask = _tensor()._wrap(self.xp.asarray(_value(mask)).astype(bool))
        fill = value if isinstance(value, _tensor()) else \
            _tensor()._wrap(self.xp.asarray(value, dtype=self.dtype))
        return functions.where(mask, fill, self)

    def masked_fill_(self, mask, value):
        """In place: `value` where mask is True."""
        return self._in_place(lambda x: x.masked_fill(mask, value))

    def copy_(self, src, non_blocking=False):
        """Copy src's values (broadcast, cast, moved to this device) into self; returns self."""
        data = backend.to_device(backend.to_numpy(_value(src)) if not backend.is_cupy_array(
            _value(src)) else _value(src), self.device)
        self._check_writable()
        self.array[...] = self.xp.asarray(data).astype(self.dtype, copy=False)
        return self

    # ---- random fills (from tinylesion's generator, or generator=) --------------------------
    def _generator(self, generator):
        return backend.generator() if generator is None else numpy_generator(generator)

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        """Fill in place with N(mean, std²) draws; returns self."""
        from .nn import init
        return init.normal_(self, mean, std, generator=self._generator(generator))

    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        """Fill in place with U(a, b) draws (torch's from, to); returns self."""
        from .nn import init
        return init.uniform_(self, a, b, generator=self._generator(generator))

    # ---- dtypes and devices -----------------------------------------------------------------
    def int(self): return self.astype(np.int32)
    def half(self): return self.astype(np.float16)
    def bool(self): return self.astype(np.bool_)
    def short(self): return self.astype(np.int16)
    def byte(self): return self.astype(np.uint8)

    is_cuda = property(lambda self: self.device.name == "gpu", doc="True on the GPU.")
    is_cpu = property(lambda self: self.device.name == "cpu", doc="True on the CPU.")

    def get_device(self):
        """-1 on the CPU, 0 on the GPU (as torch's)."""
        return -1 if self.device.name == "cpu" else 0

    def element_size(self):
        """Bytes per element."""
        return int(self.array.itemsize)

    def nelement(self):
        """The number of elements (numel)."""
        return int(self.array.size)

    # ---- shapes ---------------------------------------------------------------------------
    def view_as(self, other):
        """This tensor's elements in `other`'s shape."""
        return self.reshape(other.shape)

    def reshape_as(self, other):
        """As view_as."""
        return self.reshape(other.shape)

    def contiguous(self, memory_format=None):
        """self when its array is C-contiguous, else a contiguous copy (in the graph); a
        memory_format is accepted (arrays stay C-ordered (N, C, H, W))."""
        check_memory_format(memory_format, "contiguous")
        return self if self.array.flags.c_contiguous else self.clone()

    def is_contiguous(self, memory_format=None):
        """True when the array is C-contiguous (with memory_format=channels_last: when its
        (N, H, W, C) transpose is, as PyTorch answers)."""
        check_memory_format(memory_format, "is_contiguous")
        if memory_format is channels_last:
            return self.ndim == 4 and bool(self.array.transpose(0, 2, 3, 1).flags.c_contiguous)
        return bool(self.array.flags.c_contiguous)

    def unbind(self, dim=0):
        """The slices along dim, as a tuple of tensors."""
        dim = dim + self.ndim if dim < 0 else dim
        return tuple(self[(slice(None),) * dim + (i,)] for i in range(self.shape[dim]))

    def narrow(self, dim, start, length):
        """The `length` entries from `start` along dim."""
        dim = dim + self.ndim if dim < 0 else dim
        return self[(slice(None),) * dim + (slice(start, start + length),)]

    def flip(self, *dims):
        """The entries in reverse order along each of dims."""
        from .functions import _dim
        if not dims:
            raise TypeError("flip() needs the dims to reverse: flip(0), flip(0, 1) or "
                            "flip([0, 1]) (flip([]) reverses none)")
        dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (list, tuple)) else dims
        dims = [_dim(d, self.ndim, "flip") for d in dims]
        if len(set(dims)) != len(dims):   # a ValueError and PyTorch's RuntimeError
            from .errors import InputError
            raise InputError(f"flip(): dims {tuple(dims)} name a dimension more than once")
        index = [slice(None)] * self.ndim
        for d in dims[:self.ndim]:   # a 0-d tensor takes dim 0 or -1 (as in PyTorch): no-op
            index[d] = slice(None, None, -1)
        return self[tuple(index)]

    # ---- selection and sorting -------------------------------------------------------------
    def gather(self, dim, index):
        """The entries at `index` (an int tensor of self's rank) along dim; differentiable."""
        from .ops.gather import Gather
        index = self.xp.asarray(_value(index))
        from .functions import _dim
        if index.dtype.kind not in "iu":
            raise TypeError(f"gather(): index must be an integer tensor, not {index.dtype}")
        axis = _dim(dim, self.ndim, "gather")
        n = self.shape[axis] if self.ndim else 1
        # NOTE: checked on the CPU only: on the GPU the check would copy to the host on every
        # call, and the library's own gathers (sort, median, ...) pass indices in range
        if self.xp is np and index.size and (
                int(index.min()) < 0 or int(index.max()) >= n):
            bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
            raise IndexError(f"gather(): index {bad} is out of bounds for dimension {dim} "
                             f"with size {n}")
        return Gather.apply(self, index=index.astype(np.int64), axis=axis)

    def argsort(self, dim=-1, descending=False, *, stable=False):
        """The indices that sort along dim (int64)."""
        xp = self.xp
        data = self.array
        if descending and data.dtype.kind == "f" and data.ndim:
            # NOTE: NaN counts as larger than +inf (as in PyTorch), so it leads a descending
            # order: sort stably by the negated values (NaN set to 0), then stably move the
            # NaNs to the front.
            nan = xp.isnan(data)
            order = xp.argsort(xp.where(nan, 0, -data), axis=dim, kind="stable")
            nan_last = xp.take_along_axis(~nan, order, axis=dim)
            first = xp.argsort(nan_last, axis=dim, kind="stable")
            return _tensor()._wrap(xp.take_along_axis(order, first, axis=dim).astype(np.int64))
        if descending:
            data = -data if data.dtype.kind == "f" else -(data.astype(np.int64))
        order = xp.argsort(data, axis=dim, kind="stable" if stable else None)
        return _tensor()._wrap(order.astype(np.int64))

    def sort(self, dim=-1, descending=False, *, stable=False):
        """(values, indices) sorted along dim; the values carry the gradient."""
        from .torch_functions import sort_result
        indices = self.argsort(dim, descending, stable=stable)
        return sort_result(self.gather(dim, indices), indices)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """(values, indices) of the k largest (smallest) entries along dim, in order."""
        from .functions import _dim
        from .torch_functions import topk_result
        dim = _dim(dim, self.ndim, "topk")
        n = self.shape[dim] if self.ndim else 1
        if not 0 <= k <= n:
            raise RuntimeError(f"topk: k ({k}) is out of range for a dimension of size {n}")
        order = self.argsort(dim, descending=largest, stable=True).array
        index = [slice(None)] * self.ndim
        index[dim] = slice(0, k)
        indices = _tensor()._wrap(self.xp.ascontiguousarray(order[tuple(index)]))
        return topk_result(self.gather(dim, indices), indices)

    # ---- rounding (no gradient, as torch's are zero almost everywhere) ----------------------
    def round(self, decimals=0):
        """Rounded half to even (as torch.round)."""
        return _tensor()._wrap(self.xp.round(self.array, decimals))

    def floor(self): return _tensor()._wrap(self.xp.floor(self.array))
    def ceil(self): return _tensor()._wrap(self.xp.ceil(self.array))
    def sign(self):
        """-1, 0 or 1; 0 for NaN (as torch.sign)."""
        signs = self.xp.sign(self.array)
        return _tensor()._wrap(self.xp.where(self.xp.isnan(signs), 0, signs).astype(signs.dtype)
                               if signs.dtype.kind == "f" else signs)

    # ---- norms, running sums, indexing, counting (tinylesion/linalg.py, reduce_functions.py,
    # index_functions.py, counting.py) -------------------------------------------------------
    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """The p-norm over dim (all when None), as torch.norm."""
        from .linalg import torch_norm
        return torch_norm(self, p, dim, keepdim, dtype=dtype)

    def cumsum(self, dim, *, dtype=None):
        """The running sum along dim (int64 for integer input)."""
        from .reduce_functions import cumsum
        return cumsum(self, dim, dtype=dtype)

    def cumprod(self, dim, *, dtype=None):
        """The running product along dim (int64 for integer input)."""
        from .reduce_functions import cumprod
        return cumprod(self, dim, dtype=dtype)

    def prod(self, dim=None, keepdim=False, *, dtype=None):
        """The product of all entries or along dim (int64 for integer input)."""
        from .reduce_functions import prod
        return prod(self, dim, keepdim, dtype=dtype)

    def index_select(self, dim, index):
        """The slices at a 1-D index along dim (differentiable)."""
        from .index_functions import index_select
        return index_select(self, dim, index)

    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        """A copy with src (a tensor or number) written at index along dim."""
        from .index_functions import scatter
        return scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_(self, dim, index, src=None, *, value=None, reduce=None):
        """In place: src written at index along dim; returns self."""
        return self._in_place(lambda x: x.scatter(dim, index, src, value=value, reduce=reduce))

    def scatter_add(self, dim, index, src):
        """A copy with src added at index along dim (repeats accumulate)."""
        from .index_functions import scatter_add
        return scatter_add(self, dim, index, src)

    def scatter_add_(self, dim, index, src):
        """In place: src added at index along dim; returns self."""
        return self._in_place(lambda x: x.scatter_add(dim, index, src))

    def nonzero(self, *, as_tuple=False):
        """The indices of the non-zero entries ((N, ndim) int64, or a tuple)."""
        from .index_functions import nonzero
        return nonzero(self, as_tuple=as_tuple)

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        """The distinct values (with the inverse and counts if asked), as torch.unique."""
        from .counting import unique
        return unique(self, sorted, return_inverse, return_counts, dim)

    def bincount(self, weights=None, minlength=0):
        """How often each non-negative integer occurs (int64), as torch.bincount."""
        from .counting import bincount
        return bincount(self, weights, minlength)

    def logsumexp(self, dim, keepdim=False):
        """log Σ exp over dim, computed stably."""
        from .reduce_functions import logsumexp
        return logsumexp(self, dim, keepdim)

    def index_add(self, dim, index, source, *, alpha=1):
        """A copy with alpha · source added at a 1-D index along dim."""
        from .index_functions import index_add
        return index_add(self, dim, index, source, alpha=alpha)

    def index_add_(self, dim, index, source, *, alpha=1):
        """In place: alpha · source added at a 1-D index along dim; returns self."""
        return self._in_place(lambda x: x.index_add(dim, index, source, alpha=alpha))

    def diagonal(self, offset=0, dim1=0, dim2=1):
        """The entries (i, i + offset) of the matrices in dim1 and dim2 (a new last dim)."""
        from .matrix_functions import diagonal
        return diagonal(self, offset, dim1, dim2)

    def diag(self, diagonal=0):
        """torch.diag: a vector's diagonal matrix, or a matrix's diagonal."""
        from .matrix_functions import diag
        return diag(self, diagonal)

    def trace(self):
        """The sum of a matrix's diagonal."""
        from .matrix_functions import trace
        return trace(self)

    def tril(self, diagonal=0):
        """The lower triangle of the last two dimensions."""
        from .matrix_functions import tril
        return tril(self, diagonal)

    def triu(self, diagonal=0):
        """The upper triangle of the last two dimensions."""
        from .matrix_functions import triu
        return triu(self, diagonal)

    def outer(self, vec2):
        """The outer product with vec2."""
        from .matrix_functions import outer
        return outer(self, vec2)

    def roll(self, shifts, dims=None):
        """The entries shifted along dims, wrapping around."""
        from .rearrange_functions import roll
        return roll(self, shifts, dims)

    def repeat_interleave(self, repeats=None, dim=None, *, output_size=None):
        """Each entry (slice along dim) repeated `repeats` times."""
        from .rearrange_functions import repeat_interleave
        return repeat_interleave(self, repeats, dim, output_size=output_size)

    def masked_select(self, mask):
        """The entries where mask is True, as a 1-D tensor."""
        from .rearrange_functions import masked_select
        return masked_select(self, mask)

    def count_nonzero(self, dim=None):
        """The number of non-zero entries (int64)."""
        from .rearrange_functions import count_nonzero
        return count_nonzero(self, dim)

    def argwhere(self):
        """The indices of the non-zero entries, (N, ndim) int64."""
        from .rearrange_functions import argwhere
        return argwhere(self)
