"""Writing and reading along one axis at an index: index_select, scatter and scatter_add."""
from .. import backend
from ..autograd import Function
from .gather import _full_index


def _leading(shape):
    """The slices selecting the block of `shape` at the start of a larger array."""
    return tuple(slice(0, n) for n in shape)


class IndexSelect(Function):
    """The slices of x at a 1-D index along `axis`; the gradient adds back where an index
    repeats."""

    def forward(self, x, index=None, axis=0):
        self.x_shape, self.index, self.axis = x.shape, index, axis
        return backend.get_array_module(x).take(x, index, axis=axis)

    def backward(self, gy):
        gx = backend.get_array_module(gy).zeros(self.x_shape, gy.dtype)
        backend.scatter_add(gx, (slice(None),) * self.axis + (self.index,), gy)
        return gx


class Scatter(Function):
    """x with out[..., index[i], ...] = src[i] along `axis` for every position i of index
    (src None: the number `value` instead); where an index repeats, one of the writes wins."""

    def forward(self, x, src=None, index=None, axis=0, value=None):
        self.index, self.axis = index, axis
        self.src_shape = None if src is None else src.shape
        self.where = _full_index(index, axis, backend.get_array_module(x))
        out = x.copy()
        out[self.where] = value if src is None else src[_leading(index.shape)]
        return out

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gx = None
        if self.needs_input_grad[0]:
            gx = gy.copy()
            gx[self.where] = 0   # the entries the scatter replaced got no say in the output
        return gx, _source_grad(gy, self.where, self.index.shape, self.src_shape, xp)


class ScatterAdd(Function):
    """x with src[i] added at out[..., index[i], ...] along `axis` (repeats accumulate)."""

    def forward(self, x, src=None, index=None, axis=0):
        self.index, self.src_shape = index, src.shape
        self.where = _full_index(index, axis, backend.get_array_module(x))
        out = x.copy()
        backend.scatter_add(out, self.where, src[_leading(index.shape)])
        return out

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        return gy, _source_grad(gy, self.where, self.index.shape, self.src_shape, xp)


def _source_grad(gy, where, index_shape, src_shape, xp):
    """src's gradient: gy gathered at the written positions, zero for the entries of src
    beyond index's shape (not used)."""
    if src_shape is None:
        return None
    gsrc = xp.zeros(src_shape, gy.dtype)
    gsrc[_leading(index_shape)] = gy[where]
    return gsrc


class IndexAdd(Function):
    """x with alpha · src's slices added at a 1-D index along `axis` (repeats accumulate)."""

    def forward(self, x, src=None, index=None, axis=0, alpha=1):
        xp = backend.get_array_module(x)
        self.where, self.index, self.axis, self.alpha = \
            (slice(None),) * axis + (index,), index, axis, alpha
        out = x.copy()
        backend.scatter_add(out, self.where, src if alpha == 1 else src * xp.asarray(
            alpha, dtype=src.dtype))
        return out

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gsrc = None
        if self.needs_input_grad[1]:
            gsrc = xp.take(gy, self.index, axis=self.axis)
            gsrc = gsrc if self.alpha == 1 else gsrc * xp.asarray(self.alpha, dtype=gy.dtype)
        return gy, gsrc
