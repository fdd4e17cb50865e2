"""Instance normalisation (each sample's channel normalised over its own positions, as style
and segmentation networks use it): F.instance_norm and nn.InstanceNorm1d/2d/3d."""
import numpy as np

from .. import backend, inference_cache
from ..errors import InputError
from ..tensor import Tensor, no_grad
from .module import Module, Parameter


def _raw(t):
    return t.array if isinstance(t, Tensor) else t


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """(x − mean) / √(var + eps) per sample and channel over the positions of x (N, C, *)
    (biased variance), times weight plus bias per channel. use_input_stats=False normalises
    with running_mean/var instead; otherwise given running statistics move towards the
    batch's mean of the instance means and unbiased variances, in place, as torch's."""
    x = input
    if x.ndim < 3:
        raise InputError(f"instance_norm: expected input of shape (N, C, *) with positions, "
                         f"not {x.shape}")
    C = x.shape[1]
    for name, p in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if p is not None and tuple(p.shape) != (C,):
            raise InputError(f"instance_norm: {name} of shape {tuple(p.shape)} for an input "
                             f"of {C} channels")
    per_channel = (1, C) + (1,) * (x.ndim - 2)
    if use_input_stats:
        axes = tuple(range(2, x.ndim))
        positions = int(np.prod(x.shape[2:]))
        if positions < 2:
            raise ValueError(f"instance_norm: expected more than 1 spatial element when "
                             f"training, got input of shape {x.shape}")
        mean = x.mean(axes, keepdim=True)
        centred = x - mean
        var = (centred * centred).mean(axes, keepdim=True)
        out = centred * (var + eps) ** -0.5
        with no_grad():
            for running, stat in ((running_mean, mean),
                                  (running_var, var * (positions / (positions - 1)))):
                if running is not None:
                    r = _raw(running)
                    r *= 1 - momentum
                    r += momentum * stat.array.reshape(x.shape[:2]).mean(0).astype(r.dtype)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: use_input_stats=False needs running_mean and "
                             "running_var")
        mean = Tensor(x.xp.asarray(_raw(running_mean)).reshape(per_channel))
        var = Tensor(x.xp.asarray(_raw(running_var)).reshape(per_channel))
        out = (x - mean) * (var + eps) ** -0.5
    if weight is not None:
        out = out * weight.reshape(per_channel)
    if bias is not None:
        out = out + bias.reshape(per_channel)
    return out


class _InstanceNorm(Module):
    """Shared by InstanceNorm1d/2d/3d: torch's arguments; an unbatched input (no N) is taken
    too."""
    _dims = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None):
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) \
                or num_features < 1:
            raise ValueError(f"{type(self).__name__}: num_features must be a positive int, "
                             f"not {num_features!r}")
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        xp = backend.as_device("cpu" if device is None else device).xp
        dtype = np.dtype(backend.DEFAULT_DTYPE if dtype is None else dtype)
        if affine:
            self.weight = Parameter(xp.ones(self.num_features, dtype))
            self.bias = Parameter(xp.zeros(self.num_features, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", xp.zeros(self.num_features, dtype))
            self.register_buffer("running_var", xp.ones(self.num_features, dtype))
            self.register_buffer("num_batches_tracked", xp.zeros((), np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_parameters(self):
        """Weight back to ones, bias to zeros."""
        if self.affine:
            self.weight.fill_(1.0)
            self.bias.fill_(0.0)

    def forward(self, input):
        name = type(self).__name__
        if input.ndim not in (self._dims + 1, self._dims + 2):
            raise InputError(f"{name}: expected a {self._dims + 2}-D input (or "
                             f"{self._dims + 1}-D unbatched), not shape {input.shape}")
        unbatched = input.ndim == self._dims + 1
        x = input.unsqueeze(0) if unbatched else input
        if x.shape[1] != self.num_features and (self.affine or self.track_running_stats):
            raise InputError(f"{name}({self.num_features}) got an input of {x.shape[1]} "
                             f"channels (shape {input.shape})")
        use_input_stats = self.training or not self.track_running_stats
        if self.training and self.track_running_stats:
            inference_cache.weights_changed()   # the running statistics move
            self.num_batches_tracked.array += 1
        # NOTE: momentum=None keeps the running statistics where they are, as torch's
        # InstanceNorm (it has no cumulative average, unlike BatchNorm)
        y = instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          use_input_stats, 0.0 if self.momentum is None else self.momentum,
                          self.eps)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L)."""
    _dims = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W)."""
    _dims = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W)."""
    _dims = 3
