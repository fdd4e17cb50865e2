"""Average pooling: fixed windows (avg_pool2d) and adaptive bins (adaptive_avg_pool2d)."""
import kernels

from ..backend import get_array_module
from ..autograd import Function


class AvgPool2d(Function):
    """The mean over kernel windows of the last two axes, as PyTorch's avg_pool2d: zero
    padding, ceil_mode, and the divisor of count_include_pad or divisor_override
    (kernels/avgpool.py)."""

    def forward(self, x, kernel, stride, padding=(0, 0), ceil_mode=False,
                count_include_pad=True, divisor_override=None):
        self.x_shape = x.shape
        self.args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
        x4 = x.reshape((-1, 1) + x.shape[-2:])  # every leading plane as one channel
        y = kernels.avgpool2d_forward(x4, *self.args)
        return y.reshape(x.shape[:-2] + y.shape[-2:])

    def backward(self, gy):
        gy4 = gy.reshape((-1, 1) + gy.shape[-2:])
        gx = kernels.avgpool2d_backward(gy4, (gy4.shape[0], 1) + tuple(self.x_shape[-2:]),
                                        *self.args)
        return gx.reshape(self.x_shape)


def adaptive_bins(size, out):
    """PyTorch's bins for adaptive pooling: bin i covers [⌊i·size/out⌋, ⌈(i+1)·size/out⌉)."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _averaging_matrix(xp, size, out, dtype):
    """A (out, size) matrix whose row i averages bin i of an axis of `size` entries."""
    A = xp.zeros((out, size), dtype=dtype)
    for i, (start, end) in enumerate(adaptive_bins(size, out)):
        A[i, start:end] = 1.0 / (end - start)
    return A


class AdaptiveAvgPool2d(Function):
    """The mean over PyTorch's adaptive bins of the last two axes, for any output size.

    NOTE: a bin is a rectangle of a row range and a column range, so its mean is separable:
    y = A_h · x · A_wᵀ with A's rows averaging each range; the gradient is A_hᵀ · gy · A_w.
    """

    def forward(self, x, output_size):
        xp = get_array_module(x)
        (H, W), (OH, OW) = x.shape[-2:], output_size
        self.A_h = _averaging_matrix(xp, H, OH, x.dtype)
        self.A_w = _averaging_matrix(xp, W, OW, x.dtype)
        return xp.matmul(xp.matmul(self.A_h, x), self.A_w.T)

    def backward(self, gy):
        xp = get_array_module(gy)
        return xp.matmul(xp.matmul(self.A_h.T, gy), self.A_w)

