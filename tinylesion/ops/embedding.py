"""Embedding: the rows of a weight matrix at integer indices; the gradient adds into them."""
from .. import backend
from ..autograd import Function


class Embedding(Function):
    """weight[indices] (indices of any shape, int64); the rows' gradient is the sum of the
    output's gradient over each index's occurrences, divided by the number of occurrences
    with scale_grad_by_freq, and nothing for padding_idx."""

    def forward(self, weight, indices=None, padding_idx=None, scale_grad_by_freq=False):
        xp = backend.get_array_module(weight)
        self.indices, self.rows = indices.reshape(-1), weight.shape[0]
        self.padding_idx, self.scale = padding_idx, scale_grad_by_freq
        return xp.take(weight, indices, axis=0)

    def backward(self, gy):
        xp = backend.get_array_module(gy)
        gy = gy.reshape(self.indices.size, -1)
        if self.scale:
            counts = xp.bincount(self.indices, minlength=self.rows)
            gy = gy / counts[self.indices].astype(gy.dtype)[:, None]
        gw = xp.zeros((self.rows, gy.shape[1]), gy.dtype)
        backend.scatter_add(gw, self.indices, gy)
        if self.padding_idx is not None:
            gw[self.padding_idx] = 0
        return gw
