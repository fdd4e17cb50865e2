"""Gather: x's entries at an index array along one axis (torch.gather, and the values of
topk and sort); the gradient is scattered back, adding where an entry was taken twice."""
from .. import backend
from ..autograd import Function


def _full_index(index, axis, xp):
    """The fancy index selecting x[..., index[...], ...] along `axis`, entry for entry."""
    grids = []
    for d, n in enumerate(index.shape):
        shape = [1] * index.ndim
        shape[d] = n
        grids.append(xp.arange(n).reshape(shape))
    grids[axis] = index
    return tuple(grids)


class Gather(Function):
    def forward(self, x, index=None, axis=0):
        xp = backend.get_array_module(x)
        self.x_shape, self.index, self.axis = x.shape, index, axis
        return xp.take_along_axis(x, index, axis)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gx = xp.zeros(self.x_shape, gy.dtype)
        backend.scatter_add(gx, _full_index(self.index, self.axis, xp), gy)
        return gx
