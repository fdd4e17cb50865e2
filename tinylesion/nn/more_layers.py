"""Small layers ported scripts use: Softmax2d, Softmin, GLU, Threshold, Dropout1d, Dropout3d
and Bilinear, with their nn.functional functions (softmin, glu, threshold, dropout1d,
dropout3d, bilinear), each built from differentiable tensor operations."""
import math

import numpy as np

from .. import backend, ops
from ..contraction import einsum
from ..errors import InputError
from ..functions import where
from . import functional as F
from . import init
from .layers import _AlongDim, Dropout
from .module import Module, Parameter


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(−x) along dim."""
    from .layers import implicit_softmax_dim
    x = input if dtype is None else input.astype(dtype)
    dim = implicit_softmax_dim(x.ndim, "softmin") if dim is None else dim
    return F.softmax(-x, dim=dim)


def glu(input, dim=-1):
    """The gated linear unit: a · σ(b) for the halves a, b of input along dim."""
    x = input
    if x.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    n = x.shape[dim]
    if n % 2:
        raise RuntimeError(f"glu: halving dimension must be even, but dimension {dim} is size "
                           f"{n}")
    a, b = x.split(n // 2, dim)
    return a * F.sigmoid(b)


def threshold(input, threshold, value, inplace=False):
    """x where x > threshold, else value (inplace is accepted; the result is a new tensor)."""
    return where(input.detach() > threshold, input, value)


def _channel_dropout(x, p, training, dims, function):
    """Zero whole channels x[n, c] of an input with `dims` positions axes (or unbatched)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{function}: dropout probability must be in [0, 1], not {p}")
    if x.ndim not in (dims + 1, dims + 2):
        raise RuntimeError(f"{function}: Expected {dims + 1}D or {dims + 2}D input, but "
                           f"received a {x.ndim}D input")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    unbatched = x.ndim == dims + 1
    lead = x.shape[:1] if unbatched else x.shape[:2]
    mask_shape = lead + (1,) * (x.ndim - len(lead))
    return ops.Dropout.apply(x, p=p, rng=backend.generator(x.device), shape=mask_shape)


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Channel dropout of (N, C, L) or (C, L): whole channels zeroed with probability p, the
    others scaled by 1/(1−p)."""
    return _channel_dropout(input, p, training, 1, "dropout1d")


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Channel dropout of (N, C, D, H, W) or (C, D, H, W)."""
    return _channel_dropout(input, p, training, 3, "dropout3d")


def bilinear(input1, input2, weight, bias=None):
    """y[..., o] = Σᵢⱼ x1[..., i] · weight[o, i, j] · x2[..., j] + bias[o]."""
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] or \
            input2.shape[-1] != weight.shape[2] or input1.shape[:-1] != input2.shape[:-1]:
        raise InputError(f"bilinear: inputs of shapes {input1.shape} and {input2.shape} do not "
                         f"fit the weight of shape {weight.shape} (out, in1, in2)")
    y = einsum("...i,oij,...j->...o", input1, weight, input2)
    return y if bias is None else y + bias


class Softmax2d(Module):
    """Softmax over the channels of (N, C, H, W) or (C, H, W) at each position."""

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise InputError(f"Softmax2d: expected input of 3 or 4 dimensions, not "
                             f"{input.shape}")
        return F.softmax(input, dim=-3)


class Softmin(_AlongDim):
    """softmax(−x) along `dim`."""
    _function = "softmin"


class GLU(Module):
    """The gated linear unit along `dim`."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return glu(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Threshold(Module):
    """x where x > threshold, else value."""

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):
        return threshold(input, self.threshold, self.value)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}"


class Dropout1d(Dropout):
    """Channel dropout of (N, C, L) in training, the identity in evaluation."""

    def forward(self, input):
        return dropout1d(input, self.p, self.training)


class Dropout3d(Dropout):
    """Channel dropout of (N, C, D, H, W) in training, the identity in evaluation."""

    def forward(self, input):
        return dropout3d(input, self.p, self.training)


class Bilinear(Module):
    """y = x1ᵀ A x2 + b; weight (out_features, in1_features, in2_features) and bias drawn from
    U(−1/√in1_features, 1/√in1_features), as torch's."""

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None,
                 dtype=None):
        super().__init__()
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        xp = backend.as_device("cpu" if device is None else device).xp
        dtype = np.dtype(backend.DEFAULT_DTYPE if dtype is None else dtype)
        self.weight = Parameter(xp.zeros((out_features, in1_features, in2_features), dtype))
        self.bias = Parameter(xp.zeros(out_features, dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        """Draw the weight and bias again from U(−1/√in1_features, 1/√in1_features)."""
        bound = 1.0 / math.sqrt(self.in1_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
