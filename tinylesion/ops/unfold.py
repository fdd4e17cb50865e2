"""Sliding blocks: unfold (im2col: every kernel-sized block of an image as a column) and its
adjoint fold (col2im: the columns summed back into an image), each the other's gradient."""
from ..autograd import Function
from ..backend import get_array_module


def _blocks(size, kernel, dilation, padding, stride):
    """The number of blocks along each spatial axis."""
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                 for n, k, d, p, s in zip(size, kernel, dilation, padding, stride))


def unfold_array(x, kernel, dilation, padding, stride):
    """x (N, C, H, W) -> (N, C·KH·KW, L), L the blocks in row-major order."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    (KH, KW), (DH, DW), (PH, PW), (SH, SW) = kernel, dilation, padding, stride
    OH, OW = _blocks((H, W), kernel, dilation, padding, stride)
    padded = xp.zeros((N, C, H + 2 * PH, W + 2 * PW), x.dtype)
    padded[:, :, PH:PH + H, PW:PW + W] = x
    cols = xp.empty((N, C, KH, KW, OH, OW), x.dtype)
    for i in range(KH):
        for j in range(KW):
            cols[:, :, i, j] = padded[:, :, i * DH:i * DH + SH * (OH - 1) + 1:SH,
                                      j * DW:j * DW + SW * (OW - 1) + 1:SW]
    return cols.reshape(N, C * KH * KW, OH * OW)


def fold_array(cols, size, kernel, dilation, padding, stride):
    """cols (N, C·KH·KW, L) -> (N, C, H, W): each column added back where unfold took it."""
    xp = get_array_module(cols)
    (H, W), (KH, KW), (DH, DW), (PH, PW), (SH, SW) = size, kernel, dilation, padding, stride
    OH, OW = _blocks(size, kernel, dilation, padding, stride)
    N, C = cols.shape[0], cols.shape[1] // (KH * KW)
    cols = cols.reshape(N, C, KH, KW, OH, OW)
    padded = xp.zeros((N, C, H + 2 * PH, W + 2 * PW), cols.dtype)
    for i in range(KH):
        for j in range(KW):
            padded[:, :, i * DH:i * DH + SH * (OH - 1) + 1:SH,
                   j * DW:j * DW + SW * (OW - 1) + 1:SW] += cols[:, :, i, j]
    return xp.ascontiguousarray(padded[:, :, PH:PH + H, PW:PW + W])


class Unfold(Function):
    """unfold_array as an op (its gradient is fold_array)."""

    def forward(self, x, blocks=None):
        self.size, self.blocks = x.shape[2:], blocks
        return unfold_array(x, *blocks)

    def backward(self, gy):
        return fold_array(gy, self.size, *self.blocks)


class Fold(Function):
    """fold_array as an op (its gradient is unfold_array)."""

    def forward(self, cols, size=None, blocks=None):
        self.blocks = blocks
        return fold_array(cols, size, *blocks)

    def backward(self, gy):
        return unfold_array(gy, *self.blocks)
