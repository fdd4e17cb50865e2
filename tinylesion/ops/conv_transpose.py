"""The transposed 2-D convolution (the gradient of a convolution with respect to its input),
computed with the convolution kernels' own backward and forward passes."""
from kernels import conv2d_backward, conv2d_forward
from kernels.im2col import conv_output_size

from ..autograd import Function
from ..backend import get_array_module


def dilate_kernel(W, dilation):
    """W (.., KH, KW) with dilation − 1 zeros between its taps: a convolution with it is the
    dilated convolution with W."""
    if dilation == (1, 1):
        return W
    DH, DW = dilation
    KH, KW = W.shape[2:]
    out = get_array_module(W).zeros(W.shape[:2] + ((KH - 1) * DH + 1, (KW - 1) * DW + 1),
                                    W.dtype)
    out[:, :, ::DH, ::DW] = W
    return out


class ConvTranspose2d(Function):
    """y = conv_transpose2d(x, W) + b for x (N, C_in, H, W) and W (C_in, C_out/groups, KH, KW):
    the input gradient of conv2d(y, W, stride, padding, groups) at output gradient x, into an
    output of `size` (output_padding decides it; rows no window reaches get only the bias)."""

    def forward(self, x, W, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
                size=None):
        xp = get_array_module(x)
        self.W, self.stride, self.padding, self.groups = dilate_kernel(W, dilation), stride, \
            padding, groups
        self.dilation, self.x_shape, self.has_bias = dilation, x.shape, b is not None
        y_shape = (x.shape[0], W.shape[1] * groups) + tuple(size)
        # NOTE: with output_padding >= stride (allowed below the dilation) the convolution of
        # y has more windows than x has positions; x is padded with zeros to their number
        OH, OW = conv_output_size(y_shape, self.W.shape[2:], stride, padding)
        if (OH, OW) != x.shape[2:]:
            grown = xp.zeros(x.shape[:2] + (OH, OW), x.dtype)
            grown[:, :, :x.shape[2], :x.shape[3]] = x
            x = grown
        self.x = x
        y, _, _ = conv2d_backward(x, xp.zeros(y_shape, x.dtype), self.W, stride, padding,
                                  need_gx=True, need_gW=False, need_gb=False, groups=groups)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy):
        need = self.needs_input_grad
        gx = gW = gb = None
        if need[0]:
            gx = conv2d_forward(gy, self.W, None, self.stride, self.padding, groups=self.groups)
            gx = gx[:, :, :self.x_shape[2], :self.x_shape[3]]
        if need[1]:
            _, gW, _ = conv2d_backward(self.x, gy, self.W, self.stride, self.padding,
                                       need_gx=False, need_gW=True, need_gb=False,
                                       groups=self.groups)
            gW = gW[:, :, ::self.dilation[0], ::self.dilation[1]]
        if self.has_bias and need[2]:
            gb = gy.sum(axis=(0, 2, 3))
        return gx, gW, gb
