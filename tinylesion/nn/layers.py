"""The layers: thin Modules over tinylesion.nn.functional."""
import warnings

import numpy as np

from .. import backend, inference_cache
from . import functional as F
from . import default_init, init
from .module import Module, Parameter


def _empty(*shape):
    return np.zeros(shape, dtype=backend.DEFAULT_DTYPE)


class Linear(Module):
    """y = x Wᵀ + b; weight (out_features, in_features) and bias initialised as PyTorch's
    (see default_init; Keras' inside default_init.keras_initialization())."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(_empty(out_features, in_features))
        self.bias = Parameter(_empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """Draw the weight and bias again (PyTorch's default initialisation)."""
        default_init.reset_parameters(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Conv2d(Module):
    """2-D convolution; weight (out, in/groups, kh, kw) and bias initialised as PyTorch's
    (see default_init; Keras' inside default_init.keras_initialization()).

    The arguments are PyTorch's, in its order; groups splits the channels into groups
    (groups=in_channels: depthwise); dilation and padding_mode other than their defaults are
    not implemented (a NotImplementedError names them)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros"):
        super().__init__()
        F._only_default("Conv2d", dilation=dilation, padding_mode=padding_mode)
        if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
            raise ValueError(f"Conv2d: groups must be a positive integer, not {groups!r}")
        if in_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) must be divisible by "
                             f"groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"Conv2d: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        self.kernel_size = F._pair(kernel_size, "kernel_size")
        self.stride = F._pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else F._pair(padding, "padding")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, int(groups)
        self.weight = Parameter(_empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = Parameter(_empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """Draw the weight and bias again (PyTorch's default initialisation)."""
        default_init.reset_parameters(self.weight, self.bias)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding,
                        groups=self.groups)

    def _forward_relu(self, x):
        """relu(self.forward(x)), the ReLU in the convolution's output pass."""
        return F._conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups,
                         relu=True)

    def _forward_relu_pool(self, x, pool):
        """pool(relu(self.forward(x))) for an nn.MaxPool2d `pool`, as one op."""
        return F._conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups,
                         relu=True, pool=(pool.kernel_size, pool.stride, pool.padding,
                                          pool.ceil_mode))

    def _forward_batch_norm(self, x, bn):
        """bn(self.forward(x)) for a training nn.BatchNorm2d `bn`, as one op whose backward sums
        the bias gradient in the pass that writes the batch norm's input gradient."""
        y = F._conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups,
                      relu=False, batch_norm=bn._arguments(uncounted=True))
        bn._count_batch()
        return y

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):  # PyTorch names these only where they are not the default
            text += f", padding={self.padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text if self.bias is not None else text + ", bias=False"


class MaxPool2d(Module):
    """Max-pooling (stride defaults to the kernel size), with PyTorch's padding and ceil_mode.

    The arguments are PyTorch's, in its order; dilation and return_indices other than their
    defaults are not implemented."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        F._only_default("MaxPool2d", dilation=dilation, return_indices=return_indices)
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode
        self.return_indices = return_indices

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding,
                            ceil_mode=self.ceil_mode)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class _BatchNorm(Module):
    """Shared by BatchNorm1d/2d: momentum=None keeps a cumulative average, as in PyTorch."""
    _input_dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, *, bias=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, backend.DEFAULT_DTYPE)) if affine else None
        self.bias = Parameter(_empty(num_features)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", _empty(num_features))
            self.register_buffer("running_var", np.ones(num_features, backend.DEFAULT_DTYPE))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, x):
        if x.ndim not in self._input_dims or x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) expects input with "
                             f"{self._input_dims} dimensions and {self.num_features} channels, "
                             f"got shape {x.shape}")
        self._count_batch()
        return F.batch_norm(x, training=self.training or self.running_mean is None,
                            **self._arguments())

    def _count_batch(self):
        if self.training and self.num_batches_tracked is not None:
            inference_cache.weights_changed()   # the running statistics move
            self.num_batches_tracked.array += 1

    def _arguments(self, uncounted=False):
        """F.batch_norm's arguments but input and training; uncounted: for a batch that
        _count_batch will count once it has been normalised."""
        momentum = self.momentum
        if self.training and self.num_batches_tracked is not None and momentum is None:
            # NOTE: a cumulative average: the n-th batch weighs 1/n
            momentum = 1.0 / float(self.num_batches_tracked.array + uncounted)
        return dict(running_mean=self.running_mean, running_var=self.running_var,
                    weight=self.weight, bias=self.bias,
                    momentum=0.0 if momentum is None else momentum, eps=self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) per channel."""
    _input_dims = (4,)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) per feature."""
    _input_dims = (2, 3)


class AvgPool2d(Module):
    """Average pooling (stride defaults to the kernel size), with PyTorch's arguments in its
    order: padding, ceil_mode, count_include_pad and divisor_override."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size (an int, or a pair whose None entries keep the
    input's size); AdaptiveAvgPool2d(1) is global average pooling."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Dropout(Module):
    """Inverted dropout in training, the identity in evaluation (inplace is accepted for
    PyTorch's sake; the result is always a new tensor)."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], not {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """Channel dropout in training (whole channels zeroed with probability p, the others
    scaled by 1/(1−p)), the identity in evaluation."""

    def forward(self, x):
        return F.dropout2d(x, self.p, self.training)


class ReLU(Module):
    """max(x, 0); with inplace=True, written into x under no_grad (else a new tensor)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x, inplace=self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """x where x > 0, negative_slope·x elsewhere (inplace is accepted for PyTorch's sake)."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(Module):
    """1 / (1 + e^−x)."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """The hyperbolic tangent."""

    def forward(self, x):
        return F.tanh(x)


def implicit_softmax_dim(ndim, function):
    """PyTorch's (deprecated) choice when no dim is given: 0 for 0-, 1- and 3-D input, else 1."""
    warnings.warn(f"Implicit dimension choice for {function} has been deprecated. Change the "
                  "call to include dim=X as an argument.", UserWarning, stacklevel=4)
    return 0 if ndim in (0, 1, 3) else 1


class _AlongDim(Module):
    """A normalisation along `dim` (None: PyTorch's implicit choice, with its warning)."""
    _function = None   # the nn.functional function, by name

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        dim = implicit_softmax_dim(x.ndim, self._function) if self.dim is None else self.dim
        return getattr(F, self._function)(x, dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_AlongDim):
    """Softmax along `dim` (None: PyTorch's implicit choice, with its warning)."""
    _function = "softmax"


class LogSoftmax(_AlongDim):
    """log softmax along `dim` (None: PyTorch's implicit choice, with its warning)."""
    _function = "log_softmax"


class Identity(Module):
    """Returns its input; any arguments are accepted and ignored, as PyTorch's."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Collapse the dimensions from `start_dim` (default 1) to `end_dim` (default -1)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class ZeroPad2d(Module):
    """Zero padding: an int, or (left, right, top, bottom) as in PyTorch ((left, right) pads
    the width only, as PyTorch reads two numbers)."""

    def __init__(self, padding):
        super().__init__()
        self.padding = padding

    def forward(self, x):
        return F.pad2d(x, self.padding)

    def extra_repr(self):
        padding = self.padding  # PyTorch shows an int as four sides, a sequence as a tuple
        return f"{(padding,) * 4 if isinstance(padding, int) else tuple(padding)}"

