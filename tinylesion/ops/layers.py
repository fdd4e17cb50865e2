"""Layer ops: linear, convolution, max-pooling, batch norm, dropout and constant padding, and the
fused runs of layers nn.Sequential records as one op."""
import numpy as np

import kernels
from kernels.threads import reuse_memory_for

from ..backend import get_array_module
from ..autograd import Function


def _matmul(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D arrays: kernels.matmul for NumPy floats of one dtype (on Numba
    threads, the BLAS's own threads left asleep), else the array library's product."""
    if get_array_module(a, b) is np and a.dtype == b.dtype and \
            a.dtype in (np.float32, np.float64):
        return kernels.matmul(a, b, trans_a, trans_b)
    return (a.T if trans_a else a) @ (b.T if trans_b else b)


class Linear(Function):
    """y = x Wᵀ + b for x of shape (..., in_features)."""

    def forward(self, x, W, b=None):
        self.x, self.W = x, W
        self.has_bias = b is not None
        y = _matmul(x.reshape(-1, x.shape[-1]), W, trans_b=True)
        y = y.reshape(x.shape[:-1] + (W.shape[0],))
        if b is not None:
            y += b
        reuse_memory_for(x, y)  # the malloc policy, the first time the arrays are large
        return y

    def backward(self, gy):
        x2 = self.x.reshape(-1, self.x.shape[-1])
        g2 = gy.reshape(-1, gy.shape[-1])
        gx = _matmul(g2, self.W).reshape(self.x.shape) if self.needs_input_grad[0] else None
        gW = _matmul(g2, x2, trans_a=True) if self.needs_input_grad[1] else None
        gb = g2.sum(axis=0) if self.has_bias and self.needs_input_grad[2] else None
        return gx, gW, gb


# NOTE: in Conv2d(relu=True) -> Conv2d (padua4's blocks), the second convolution's input is
# the first's ReLU output z, and its input gradient goes only through that ReLU's backward
# (masked where z <= 0, then summed per channel for the first's bias). The second one's
# backward then asks for that gradient already masked, with its sums
# (kernels.conv2d_backward_relu_input: on the CPU's Winograd path, in the pass that writes
# it) and hands both to the first, which skips its own pass when the gradient it gets is that
# very array (not when other gradients were added to it). The same bits either way.
# FOLD_RELU_MASK = False keeps the passes apart (to compare).
FOLD_RELU_MASK = True


def _relu_conv_before(fn):
    """The Conv2d(relu=True, groups=1) whose output is the recorded op fn's input x, when it
    may take fn's input gradient masked and summed (None otherwise)."""
    node = fn.inputs[0] if FOLD_RELU_MASK and fn.needs_input_grad[0] else None
    before = getattr(node, "_ctx", None)
    if not isinstance(before, Conv2d) or before.y is not fn.x or before.groups != 1:
        return None
    kept = node.tensor()
    if kept is not None and kept._retain_grad:   # it must see the gradient unmasked
        return None
    return before


def _conv_backward(fn, gy, need_gb):
    """(gx, gW, gb) of the convolution of the op fn (fn.x, fn.W, ...), the gradient of x
    masked for the Conv2d(relu=True) before it (see the note above) where it may be."""
    need = fn.needs_input_grad
    before = _relu_conv_before(fn) if fn.groups == 1 else None
    if before is None:
        return kernels.conv2d_backward(gy, fn.x, fn.W, fn.stride, fn.padding, need_gx=need[0],
                                       need_gW=need[1], need_gb=need_gb, groups=fn.groups)
    gx, gW, gb, sums = kernels.conv2d_backward_relu_input(
        gy, fn.x, fn.W, fn.stride, fn.padding, need_gW=need[1], need_gb=need_gb)
    before.masked = (gx, sums)
    return gx, gW, gb


class Conv2d(Function):
    """2-D cross-correlation (PyTorch's conv2d): im2col and one matrix product; groups > 1 by
    the depthwise kernels or a batched product per group. relu=True: max(y, 0) applied in the
    convolution's own output pass (nn.Sequential's Conv2d then ReLU), its output kept for the
    gradient as ReLU keeps it. winograd_filters: see kernels.conv2d_forward (inference)."""
    masked = None   # (gradient, its channel sums) from the op after it (see _conv_backward)

    def forward(self, x, W, b=None, stride=(1, 1), padding=(0, 0), groups=1, relu=False,
                winograd_filters=None):
        self.x, self.W, self.stride, self.padding = x, W, stride, padding
        self.has_bias, self.groups = b is not None, groups
        y = kernels.conv2d_forward(x, W, b, stride, padding, relu=relu, groups=groups,
                                   winograd_filters=winograd_filters)
        reuse_memory_for(x, y)  # the malloc policy, the first time the arrays are large
        self.y = y if relu else None
        return y

    def backward(self, gy):
        need = self.needs_input_grad
        need_gb, gb = self.has_bias and need[2], None
        masked, self.masked = self.masked, None
        if masked is not None and masked[0] is gy:   # the ReLU's backward done (the note)
            gb = masked[1].astype(self.x.dtype, copy=False) if need_gb else None
        elif self.y is not None and need_gb and self.groups == 1:
            # NOTE: the ReLU's mask and the bias gradient's sums (the convolution's own,
            # kernels.channel_sums on the CPU: the same bits) in one pass over gy
            gy, gb = kernels.relu_backward_channel_sums(gy.reshape(self.y.shape), self.y)
            gb = gb.astype(self.x.dtype, copy=False)
        elif self.y is not None:
            gy = kernels.relu_backward(gy, self.y).reshape(gy.shape)
        gx, gW, gb_conv = _conv_backward(self, gy, need_gb and gb is None)
        return gx, gW, gb if gb is not None else gb_conv


class Conv2dReluMaxPool(Function):
    """max_pool2d(relu(conv2d(x))) as one op (nn.Sequential's fusion of Conv2d, ReLU and
    MaxPool2d): it keeps the pooling's argmax and the ReLU's mask at the pooled positions, not
    the convolution's output, and its backward scatters the pooled gradient through the mask
    and sums the bias gradient in one pass (kernels.maxpool2d_relu_backward), where the layers
    apart write the full-size gradient, then read it again to mask and sum it."""

    def forward(self, x, W, b=None, stride=(1, 1), padding=(0, 0), groups=1, kernel=(2, 2),
                pool_stride=(2, 2), pool_padding=(0, 0), ceil_mode=False):
        self.x, self.W, self.stride, self.padding = x, W, stride, padding
        self.has_bias, self.groups = b is not None, groups
        self.pool = (kernel, pool_stride, pool_padding, ceil_mode)
        z = kernels.conv2d_forward(x, W, b, stride, padding, relu=True, groups=groups)
        reuse_memory_for(x, z)  # the malloc policy, the first time the arrays are large
        y, self.argmax = kernels.maxpool2d_forward(z, kernel, pool_stride, pool_padding,
                                                   ceil_mode)
        self.z_shape, self.keep = z.shape, kernels.relu_mask(y)
        return y

    def backward(self, gy):
        need = self.needs_input_grad
        gz, gb = kernels.maxpool2d_relu_backward(gy, self.argmax, self.keep, self.z_shape,
                                                 *self.pool)
        gx, gW, _ = _conv_backward(self, gz, False)
        gb = gb.astype(self.x.dtype, copy=False) if self.has_bias and need[2] else None
        return gx, gW, gb


class ReluMaxPool(Function):
    """max_pool2d(relu(z)) as one op (nn.Sequential's fusion of ReLU and MaxPool2d): computed
    as relu(max_pool2d(z)) (the same values: ReLU is monotone), so the ReLU runs on the pooled
    output only, and neither ReLU output nor a full-size gradient is written but the one
    returned: the backward scatters the pooled gradient through the ReLU's mask in one pass."""

    def forward(self, z, kernel, stride, padding=(0, 0), ceil_mode=False):
        y, self.argmax = kernels.maxpool2d_forward(z, kernel, stride, padding, ceil_mode)
        self.z_shape, self.keep = z.shape, kernels.relu_in_place_mask(y)
        self.pool = (kernel, stride, padding, ceil_mode)
        return y

    def backward(self, gy):
        gz, _ = kernels.maxpool2d_relu_backward(gy, self.argmax, self.keep, self.z_shape,
                                                *self.pool, sums=False)
        return gz


class MaxPool2d(Function):
    """Max pooling with PyTorch's padding (never the maximum) and ceil_mode."""

    def forward(self, x, kernel, stride, padding=(0, 0), ceil_mode=False):
        y, self.argmax = kernels.maxpool2d_forward(x, kernel, stride, padding, ceil_mode)
        self.x_shape, self.kernel, self.stride = x.shape, kernel, stride
        self.padding, self.ceil_mode = padding, ceil_mode
        return y

    def backward(self, gy):
        return kernels.maxpool2d_backward(gy, self.argmax, self.x_shape, self.kernel,
                                          self.stride, self.padding, self.ceil_mode)


def _update_running(mean, var, n, momentum, running_mean, running_var):
    """Move the running statistics (arrays or None) towards a batch's mean and biased variance
    over n values per channel, in place."""
    if running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean
    if running_var is not None:
        # NOTE: the running variance is unbiased (n / (n − 1)), the normalisation not.
        running_var *= 1 - momentum
        running_var += (momentum * n / (n - 1)) * var


class BatchNormTrain(Function):
    """Batch norm with the batch's statistics; updates the running statistics in place."""

    def forward(self, x, gamma, beta, eps, momentum=0.1, running_mean=None, running_var=None):
        self.x, self.gamma, self.eps = x, gamma, eps
        y, self.mean, self.var = kernels.batchnorm_forward(x, gamma, beta, eps)
        _update_running(self.mean, self.var, x.size // x.shape[1], momentum, running_mean,
                        running_var)
        return y

    def backward(self, gy):
        gx, ggamma, gbeta = kernels.batchnorm_backward(gy, self.x, self.gamma, self.mean,
                                                       self.var, self.eps)
        need = self.needs_input_grad
        return (gx if need[0] else None, ggamma if need[1] else None,
                gbeta if need[2] else None)


class Dropout(Function):
    """Inverted dropout: keep each element with probability 1−p and scale it by 1/(1−p)."""

    def forward(self, x, p, rng=None, mask=None, shape=None):
        xp = get_array_module(x)
        if mask is None:  # drawn at `shape` (default x's), broadcast over x (channel dropout)
            keep = rng.random(x.shape if shape is None else shape, dtype=x.dtype) >= p
            mask = keep.astype(x.dtype) * xp.asarray(1.0 / (1.0 - p), dtype=x.dtype)
        self.mask = mask
        return x * mask

    def backward(self, gy):
        return gy * self.mask


class ConstantPad(Function):
    """Pad the last axes with a constant: `widths` holds (before, after) per axis from the
    first padded axis on; a negative width crops, as in torch.nn.functional.pad."""

    def forward(self, x, widths, value=0.0):
        xp = get_array_module(x)
        lead = x.ndim - len(widths)
        self.x_shape = x.shape
        # crop for the negative widths first, then pad by the positive ones
        self.crop = (Ellipsis,) + tuple(slice(max(-b, 0), n - max(-a, 0))
                                        for (b, a), n in zip(widths, x.shape[lead:]))
        cropped = x[self.crop]
        self.keep = (Ellipsis,) + tuple(slice(max(b, 0), max(b, 0) + n)
                                        for (b, _), n in zip(widths, cropped.shape[lead:]))
        pads = [(0, 0)] * lead + [(max(b, 0), max(a, 0)) for b, a in widths]
        return xp.pad(cropped, pads, constant_values=value)

    def backward(self, gy):
        gx = get_array_module(gy).zeros(self.x_shape, dtype=gy.dtype)
        gx[self.crop] = gy[self.keep]
        return gx


class Conv2dBatchNorm(Function):
    """batch_norm(conv2d(x, W, b)) with the batch's statistics as one op (nn.Sequential's
    fusion of a Conv2d with a bias and a training BatchNorm2d). The same arrays are computed
    and kept as by the two ops apart; the backward sums the bias gradient, Σ of the batch
    norm's input gradient per channel, in the pass that writes that gradient
    (kernels.batchnorm_backward_channel_sums: the same bits), where the convolution's backward
    would read the full-size gradient once more for it."""

    def forward(self, x, W, b, gamma, beta, stride=(1, 1), padding=(0, 0), eps=1e-5,
                momentum=0.1, running_mean=None, running_var=None):
        self.x, self.W, self.stride, self.padding = x, W, stride, padding
        self.gamma, self.eps = gamma, eps
        z = kernels.conv2d_forward(x, W, b, stride, padding)
        reuse_memory_for(x, z)  # the malloc policy, the first time the arrays are large
        y, self.mean, self.var = kernels.batchnorm_forward(z, gamma, beta, eps)
        _update_running(self.mean, self.var, z.size // z.shape[1], momentum, running_mean,
                        running_var)
        self.z = z
        return y

    def backward(self, gy):
        need = self.needs_input_grad   # x, W, b, gamma, beta
        gz, ggamma, gbeta, gb = kernels.batchnorm_backward_channel_sums(
            gy, self.z, self.gamma, self.mean, self.var, self.eps)
        gx = gW = None
        if need[0] or need[1]:
            gx, gW, _ = kernels.conv2d_backward(
                gz, self.x, self.W, self.stride, self.padding, need_gx=need[0],
                need_gW=need[1], need_gb=False)
        gb = gb.astype(self.x.dtype, copy=False) if need[2] else None
        return gx, gW, gb, ggamma if need[3] else None, gbeta if need[4] else None
