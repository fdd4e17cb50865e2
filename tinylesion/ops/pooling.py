"""Average pooling: fixed windows (avg_pool2d) and adaptive bins (adaptive_avg_pool2d)."""
from ..backend import get_array_module
from ..autograd import Function


def _window_slices(kernel, stride, out_size):
    """For each offset (kh, kw) inside the window, the slices of the last two axes that take
    that offset of every window (OH × OW strided views)."""
    (KH, KW), (SH, SW), (OH, OW) = kernel, stride, out_size
    return [(Ellipsis, slice(kh, kh + SH * (OH - 1) + 1, SH), slice(kw, kw + SW * (OW - 1) + 1, SW))
            for kh in range(KH) for kw in range(KW)]


def _counts(size, kernel, stride, padding, out):
    """How many of each window's positions along one axis fall inside the input (not in the
    padding), as a list of `out` ints."""
    starts = [i * stride - padding for i in range(out)]
    return [min(s + kernel, size) - max(s, 0) for s in starts]


class AvgPool2d(Function):
    """The mean over kernel windows of the last two axes (floor mode), after zero padding.

    The divisor is the window's size (count_include_pad), the number of its positions inside
    the input (count_include_pad=False), or `divisor_override`, as in PyTorch.
    """

    def forward(self, x, kernel, stride, padding=(0, 0), count_include_pad=True,
                divisor_override=None):
        xp = get_array_module(x)
        (H, W), (PH, PW) = x.shape[-2:], padding
        OH = (H + 2 * PH - kernel[0]) // stride[0] + 1
        OW = (W + 2 * PW - kernel[1]) // stride[1] + 1
        self.x_shape, self.padding = x.shape, padding
        self.tiled = tuple(kernel) == tuple(stride) and not (PH or PW)
        if self.tiled:
            # NOTE: windows that tile the image (global pooling among them): one reshape and
            # one mean, instead of KH*KW strided slices
            self.kernel, self.out = kernel, (OH, OW)
            tiles = x[..., :OH * kernel[0], :OW * kernel[1]].reshape(
                x.shape[:-2] + (OH, kernel[0], OW, kernel[1]))
            self.divisor = kernel[0] * kernel[1] if divisor_override is None else divisor_override
            return (tiles.sum(axis=(-3, -1)) / self.divisor).astype(x.dtype, copy=False)
        self.slices = _window_slices(kernel, stride, (OH, OW))
        widths = [(0, 0)] * (x.ndim - 2) + [(PH, PH), (PW, PW)]
        x_pad = xp.pad(x, widths) if PH or PW else x
        y = sum(x_pad[s] for s in self.slices)
        if divisor_override is not None:
            divisor = divisor_override
        elif count_include_pad or not (PH or PW):
            divisor = kernel[0] * kernel[1]
        else:
            # NOTE: the count inside the input is separable: rows inside × columns inside.
            rows = _counts(H, kernel[0], stride[0], PH, OH)
            cols = _counts(W, kernel[1], stride[1], PW, OW)
            divisor = xp.asarray([[r * c for c in cols] for r in rows], dtype=x.dtype)
        self.divisor = divisor
        return (y / divisor).astype(x.dtype, copy=False)

    def backward(self, gy):
        xp = get_array_module(gy)
        (H, W), (PH, PW) = self.x_shape[-2:], self.padding
        g = gy / self.divisor
        if self.tiled:
            (KH, KW), (OH, OW) = self.kernel, self.out
            gx = xp.zeros(self.x_shape, dtype=gy.dtype)
            gx[..., :OH * KH, :OW * KW] = xp.broadcast_to(
                g[..., :, None, :, None], g.shape[:-2] + (OH, KH, OW, KW)).reshape(
                g.shape[:-2] + (OH * KH, OW * KW))
            return gx
        gx = xp.zeros(self.x_shape[:-2] + (H + 2 * PH, W + 2 * PW), dtype=gy.dtype)
        for s in self.slices:  # overlapping windows add up
            gx[s] += g
        return gx[..., PH:PH + H, PW:PW + W]


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

