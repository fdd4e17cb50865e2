"""nn.SyncBatchNorm: batch norm whose statistics are taken over the batches of every rank."""
from ..autograd import Function
from ..backend import get_array_module
from .layers import _BatchNorm

_default_group = None


def set_default_group(group):
    """The group SyncBatchNorm reduces over when given none (tinylesion.distributed.init sets
    the run's World). A group has `size` and `allreduce_(array)` (an in-place sum)."""
    global _default_group
    _default_group = group


class _SyncBatchNormTrain(Function):
    """Training-mode batch norm with the statistics of all ranks' batches together.

    Forward: one float64 allreduce of (Σx, Σx², count) per channel. Backward: one of
    (Σ gy, Σ gy·x̂); each rank's input gradient is then that of the sum of all ranks' losses,
    and gamma's and beta's gradients are this rank's share (the optimizer averages them).
    """

    def forward(self, x, gamma, beta, eps, momentum, running_mean, running_var, group):
        xp = get_array_module(x)
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        C = x.shape[1]
        shape = (1, C) + (1,) * (x.ndim - 2)
        x64 = x.astype(xp.float64)
        stats = xp.concatenate([x64.sum(axis=axes), (x64 * x64).sum(axis=axes),
                                xp.full((1,), x.size // C, dtype=xp.float64)])
        group.allreduce_(stats)
        count = stats[2 * C:]
        # NOTE: Σx² − n·mean² in float64 loses nothing that float32 data holds.
        mean = stats[:C] / count
        var = xp.maximum(stats[C:2 * C] / count - mean * mean, 0.0)
        n = int(count.item()) if hasattr(count, "item") else int(count[0])
        if n < 2:
            raise ValueError(f"SyncBatchNorm in training needs more than one value per "
                             f"channel over all ranks, got {n}")
        invstd = 1.0 / xp.sqrt(var + eps)
        xhat = (x64 - mean.reshape(shape)) * invstd.reshape(shape)
        self.xhat, self.invstd, self.n, self.group = xhat, invstd, n, group
        self.gamma, self.dtype, self.axes, self.shape = gamma, x.dtype, axes, shape
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += (momentum * mean).astype(running_mean.dtype)
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += (momentum * n / (n - 1) * var).astype(running_var.dtype)
        y = xhat
        if gamma is not None:
            y = y * gamma.astype(xp.float64).reshape(shape)
        if beta is not None:
            y = y + beta.astype(xp.float64).reshape(shape)
        return y.astype(x.dtype)

    def backward(self, gy):
        xp = get_array_module(gy)
        C, shape, axes = self.invstd.shape[0], self.shape, self.axes
        g64 = gy.astype(xp.float64)
        local = xp.concatenate([g64.sum(axis=axes), (g64 * self.xhat).sum(axis=axes)])
        need = self.needs_input_grad
        gx = None
        if need[0]:
            total = local.copy()
            self.group.allreduce_(total)
            scale = self.invstd if self.gamma is None else \
                self.invstd * self.gamma.astype(xp.float64)
            gx = (g64 - (total[:C] / self.n).reshape(shape)
                  - self.xhat * (total[C:] / self.n).reshape(shape)) * scale.reshape(shape)
            gx = gx.astype(self.dtype)
        dt = self.dtype
        return (gx, local[C:].astype(dt) if need[1] else None,
                local[:C].astype(dt) if need[2] else None)


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, ...) with the statistics of the whole global batch, as PyTorch's
    SyncBatchNorm(num_features, eps, momentum, affine, track_running_stats, process_group).

    In training on several ranks, mean and variance are those of the batches of all ranks
    together, so N ranks with batch B normalise as one process with batch N·B (the running
    statistics too). On one process, in evaluation, or without a group it is plain batch norm.
    `process_group` is any object with `size` and an in-place `allreduce_(array)` (default: the
    World of tinylesion.distributed.init()).
    """
    _input_dims = (2, 3, 4)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, process_group=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def forward(self, x):
        group = self.process_group if self.process_group is not None else _default_group
        if not self.training or group is None or group.size == 1:
            return super().forward(x)
        if x.ndim not in self._input_dims or x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm({self.num_features}) expects input with "
                             f"{self._input_dims} dimensions and {self.num_features} channels, "
                             f"got shape {x.shape}")
        momentum = self.momentum
        if self.num_batches_tracked is not None:
            self.num_batches_tracked.array += 1
            if momentum is None:  # a cumulative average, as _BatchNorm
                momentum = 1.0 / float(self.num_batches_tracked.array)
        x4 = x if x.ndim != 3 else x.reshape(x.shape[0], x.shape[1], x.shape[2], 1)
        y = _SyncBatchNormTrain.apply(
            x4, self.weight, self.bias, eps=self.eps, momentum=momentum,
            running_mean=None if self.running_mean is None else self.running_mean.array,
            running_var=None if self.running_var is None else self.running_var.array,
            group=group)
        return y if x.ndim != 3 else y.reshape(x.shape)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """`module` with every BatchNorm1d/2d inside replaced by a SyncBatchNorm holding the
        same parameters and running statistics (the module itself when it is one)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine,
                       module.track_running_stats, process_group)
            if module.affine:
                sync.weight = module.weight
                sync.bias = module.bias
            if module.track_running_stats:
                sync.running_mean = module.running_mean
                sync.running_var = module.running_var
                sync.num_batches_tracked = module.num_batches_tracked
            sync.train(module.training)
            return sync
        for name, child in list(module._modules.items()):
            if child is not None:
                converted = cls.convert_sync_batchnorm(child, process_group)
                if converted is not child:
                    setattr(module, name, converted)
        return module
