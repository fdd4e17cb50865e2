"""More of torch's losses: the Poisson and Gaussian negative log-likelihoods (counts,
regression with a predicted variance) and the margin losses soft margin, multi-label soft
margin, hinge embedding and multi-class margin; functions and modules with torch's arguments,
each built from differentiable tensor operations."""
import math

import numpy as np

from ..errors import InputError
from ..functions import where
from ..tensor import Tensor
from .loss import _Loss, _WeightedLoss
from .loss_functions import _reduction
from .more_losses import _reduce, _same_shape
from .softplus import logsigmoid, softplus


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """exp(input) − target·input (log_input), else input − target·log(input + eps); full adds
    Stirling's approximation of log(target!) where target > 1."""
    reduction = _reduction(size_average, reduce, reduction)
    loss = input.exp() - target * input if log_input else input - target * (input + eps).log()
    if full:
        t = target.detach()
        safe = where(t > 1, target, 1.0)
        stirling = safe * safe.log() - safe + 0.5 * (safe * (2 * math.pi)).log()
        loss = loss + where(t > 1, stirling, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """0.5·(log max(var, eps) + (input − target)² / max(var, eps)) (+ 0.5·log 2π with full);
    var has input's shape, or one dimension fewer or a last dimension of 1 (one variance per
    sample). As torch, the clamp to eps passes the gradient through unchanged."""
    reduction = _reduction(None, None, reduction)
    if not isinstance(var, Tensor):
        var = Tensor(input.xp.full(input.shape, float(var), dtype=input.dtype))
    if var.shape != input.shape:
        if input.shape[:-1] == var.shape:
            var = var.unsqueeze(-1)
        elif not (input.shape[:-1] == var.shape[:-1] and var.shape[-1:] == (1,)):
            raise ValueError(f"gaussian_nll_loss: var of shape {var.shape} is of incorrect size "
                             f"for input of shape {input.shape}")
    if bool((var.array < 0).any()):
        raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    # NOTE: torch clamps a copy of var under no_grad: the values are clamped, the gradient is
    # that of the identity
    var = var + (var.detach().clamp_min(eps) - var.detach())
    d = input - target
    loss = 0.5 * (var.log() + d * d / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + exp(−target·input)), targets ±1."""
    reduction = _reduction(size_average, reduce, reduction)
    _same_shape(input, target, "soft_margin_loss")
    return _reduce(softplus(-(target * input)), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    """−mean over classes of target·log σ(x) + (1 − target)·log σ(−x) (times weight per
    class), one value per sample; targets 0 or 1 per class."""
    reduction = _reduction(size_average, reduce, reduction)
    if input.shape != target.shape:
        raise ValueError(f"multilabel_soft_margin_loss: target of shape {target.shape} for "
                         f"input of shape {input.shape}")
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    C = input.shape[-1] if input.ndim else 1
    return _reduce(loss.sum(-1) / C if input.ndim else loss, reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    """input where target is 1, max(0, margin − input) where it is −1 (as torch: targets
    other than ±1 get both terms)."""
    reduction = _reduction(size_average, reduce, reduction)
    t = target.array if isinstance(target, Tensor) else np.asarray(target)
    hinge = (margin - input).clamp_min(0.0)
    loss = where(t != 1, hinge, 0.0) + where(t != -1, input, 0.0)
    return _reduce(loss, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean"):
    """Σ over classes i ≠ y of max(0, margin − x[y] + x[i])^p (times weight[y]), divided by
    the number of classes, per sample: input (N, C) or (C,), target (N,) or () class
    indices; p is 1 or 2."""
    reduction = _reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 are supported, not {p!r}")
    x = input
    if x.ndim not in (1, 2) or x.shape[-1] < 1:
        raise InputError(f"multi_margin_loss: expected input of shape (N, C) or (C,), not "
                         f"{x.shape}")
    y = target.array if isinstance(target, Tensor) else np.asarray(target)
    if y.dtype.kind not in "iu" or y.shape != x.shape[:-1]:
        raise InputError(f"multi_margin_loss: target must hold one class index (integers) per "
                         f"sample, shape {x.shape[:-1]}, not {y.dtype} of shape {y.shape}")
    C = x.shape[-1]
    if y.size and (int(y.min()) < 0 or int(y.max()) >= C):
        bad = int(y.max()) if int(y.max()) >= C else int(y.min())
        raise IndexError(f"multi_margin_loss: target {bad} is out of bounds for {C} classes")
    x2 = x.reshape(-1, C)
    y2 = x.xp.asarray(y).reshape(-1, 1).astype(np.int64)
    z = (margin - x2.gather(1, Tensor._wrap(y2)) + x2).clamp_min(0.0)
    z = z * z if p == 2 else z
    if weight is not None:
        w = weight.array if isinstance(weight, Tensor) else weight
        z = z * Tensor._wrap(x.xp.asarray(w, dtype=x.dtype)[y2])
    others = Tensor._wrap(y2 != x.xp.arange(C))
    loss = where(others, z, 0.0).sum(1) / C
    return _reduce(loss.reshape(x.shape[:-1]), reduction)


class PoissonNLLLoss(_Loss):
    """F.poisson_nll_loss as a module: forward(log_input, target)."""

    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input, target):
        return poisson_nll_loss(log_input, target, self.log_input, self.full, eps=self.eps,
                                reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """F.gaussian_nll_loss as a module: forward(input, target, var)."""

    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(None, None, reduction)
        self.full, self.eps = full, eps

    def forward(self, input, target, var):
        return gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)


class SoftMarginLoss(_Loss):
    """F.soft_margin_loss as a module."""

    def forward(self, input, target):
        return soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """F.multilabel_soft_margin_loss as a module (weight: per class)."""

    def forward(self, input, target):
        return multilabel_soft_margin_loss(input, target, self.weight,
                                           reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    """F.hinge_embedding_loss as a module."""

    def __init__(self, margin=1.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input, target):
        return hinge_embedding_loss(input, target, self.margin, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    """F.multi_margin_loss as a module."""

    def __init__(self, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                 reduction="mean"):
        if p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: only p == 1 and p == 2 are supported, not {p!r}")
        super().__init__(weight, size_average, reduce, reduction)
        self.p, self.margin = p, margin

    def forward(self, input, target):
        return multi_margin_loss(input, target, self.p, self.margin, self.weight,
                                 reduction=self.reduction)
