"""Adaptive max pooling: the maximum over each of PyTorch's adaptive bins of the last two axes,
with the position of each maximum (flat within its plane, as torch's return_indices)."""
from ..autograd import Function
from ..backend import get_array_module, scatter_add
from .pooling import adaptive_bins


class AdaptiveMaxPool2d(Function):
    """y[..., i, j] = max of x over bin (i, j); the gradient goes to that maximum's position
    (the first one where values tie). The positions h·W + w are appended to `found`."""

    def forward(self, x, output_size=None, found=None):
        xp = get_array_module(x)
        self.x_shape = x.shape
        planes = x.reshape((-1,) + x.shape[-2:])
        P, (H, W), (OH, OW) = planes.shape[0], x.shape[-2:], output_size
        y = xp.empty((P, OH, OW), x.dtype)
        indices = xp.empty((P, OH, OW), xp.int64)
        for i, (h0, h1) in enumerate(adaptive_bins(H, OH)):
            for j, (w0, w1) in enumerate(adaptive_bins(W, OW)):
                window = planes[:, h0:h1, w0:w1].reshape(P, -1)
                best = xp.argmax(window, axis=1)    # (NaN wins, as in torch)
                y[:, i, j] = xp.take_along_axis(window, best[:, None], axis=1)[:, 0]
                indices[:, i, j] = (h0 + best // (w1 - w0)) * W + w0 + best % (w1 - w0)
        lead = x.shape[:-2]
        self.indices = indices.reshape(lead + (OH, OW))
        if found is not None:
            found.append(self.indices)
        return y.reshape(lead + (OH, OW))

    def backward(self, gy):
        xp = get_array_module(gy)
        P = gy.size // (gy.shape[-1] * gy.shape[-2]) if gy.ndim > 2 else 1
        gx = xp.zeros((P, self.x_shape[-2] * self.x_shape[-1]), gy.dtype)
        rows = xp.arange(P)[:, None]
        scatter_add(gx, (rows, self.indices.reshape(P, -1)), gy.reshape(P, -1))
        return gx.reshape(self.x_shape)
