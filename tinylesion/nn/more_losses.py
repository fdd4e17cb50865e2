"""Losses ported scripts reach for beyond the classification ones: smooth L1 and Huber
(regression), KL divergence (distillation), and the margin losses of metric learning
(margin ranking, triplet, cosine embedding); functions and modules with torch's arguments,
each built from differentiable tensor operations."""
import warnings

from ..functions import where
from ..tensor import Tensor
from .distance import pairwise_distance
from .loss import _Loss
from .loss_functions import _reduction

_KL_REDUCTIONS = ("none", "mean", "sum", "batchmean")


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _same_shape(input, target, name):
    if input.shape != target.shape:
        warnings.warn(f"{name}: using a target size ({target.shape}) that is different from "
                      f"the input size ({input.shape}): they will be broadcast",
                      UserWarning, stacklevel=3)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5·d²/beta where |d| < beta, |d| − 0.5·beta elsewhere (d = input − target); beta=0
    is the L1 loss."""
    reduction = _reduction(size_average, reduce, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must not be negative, not {beta}")
    _same_shape(input, target, "smooth_l1_loss")
    d = (input - target).abs()
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(where(d.detach() < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    """0.5·d² where |d| <= delta, delta·(|d| − 0.5·delta) elsewhere (d = input − target)."""
    reduction = _reduction(None, None, reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, not {delta}")
    _same_shape(input, target, "huber_loss")
    d = (input - target).abs()
    return _reduce(where(d.detach() <= delta, d * d * 0.5, (d - 0.5 * delta) * delta),
                   reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Σ target·(log target − input), input log-probabilities (target probabilities, or
    log-probabilities with log_target); terms with target 0 are 0. reduction 'batchmean'
    divides the sum by the batch size (the KL divergence); 'mean' by the element count, with
    PyTorch's warning."""
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    if reduction not in _KL_REDUCTIONS:
        raise ValueError(f"kl_div: reduction must be one of {_KL_REDUCTIONS}, not "
                         f"{reduction!r}")
    if reduction == "mean":
        warnings.warn("kl_div: reduction='mean' divides the total loss by both the batch size "
                      "and the support size; 'batchmean' divides only by the batch size, as "
                      "the KL divergence's definition", UserWarning, stacklevel=2)
    if log_target:
        loss = target.exp() * (target - input)
    else:   # NOTE: t·log t is taken as 0 at t = 0 (its limit), and so is its gradient
        positive = target.detach() > 0
        safe = where(positive, target, 1.0)
        loss = where(positive, target * (safe.log() - input), 0.0)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                        reduction="mean"):
    """max(0, −target·(input1 − input2) + margin), target ±1."""
    reduction = _reduction(size_average, reduce, reduction)
    return _reduce((-target * (input1 - input2) + margin).clamp_min(0), reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """max(d(anchor, positive) − d(anchor, negative) + margin, 0) with the p-norm distance
    (pairwise_distance); swap uses the smaller of d(anchor, negative) and
    d(positive, negative)."""
    reduction = _reduction(size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"triplet_margin_loss: margin must be positive, not {margin}")
    d_positive = pairwise_distance(anchor, positive, p, eps)
    d_negative = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_negative = d_negative.minimum(pairwise_distance(positive, negative, p, eps))
    return _reduce((d_positive - d_negative + margin).clamp_min(0), reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    """1 − cos(input1, input2) where target is 1, max(0, cos − margin) where it is −1 (cos
    along the last dimension, PyTorch's: x1·x2 / √((|x1|² + 1e-12)(|x2|² + 1e-12)))."""
    reduction = _reduction(size_average, reduce, reduction)
    dim = input1.ndim - 1
    cos = (input1 * input2).sum(dim) / (((input1 * input1).sum(dim) + 1e-12)
                                        * ((input2 * input2).sum(dim) + 1e-12)).sqrt()
    target = target.array if isinstance(target, Tensor) else cos.xp.asarray(target)
    loss = where(target == 1, 1 - cos, 0.0) + where(target == -1, (cos - margin).clamp_min(0),
                                                    0.0)
    return _reduce(loss, reduction)


class SmoothL1Loss(_Loss):
    """F.smooth_l1_loss as a module."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """F.huber_loss as a module."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class KLDivLoss(_Loss):
    """F.kl_div as a module."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        if reduction not in _KL_REDUCTIONS:
            raise ValueError(f"KLDivLoss: reduction must be one of {_KL_REDUCTIONS}, not "
                             f"{reduction!r}")
        # ('batchmean' is kl_div's own: the base class checks the others)
        super().__init__(size_average, reduce, "sum" if reduction == "batchmean" else
                         reduction)
        self.reduction, self.log_target = reduction, log_target

    def forward(self, input, target):
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class _PairMarginLoss(_Loss):
    """A loss of (input1, input2, target) with a margin: _function(..., margin, reduction)."""
    _function = None

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return self._function(input1, input2, target, self.margin, reduction=self.reduction)


class MarginRankingLoss(_PairMarginLoss):
    """F.margin_ranking_loss as a module."""
    _function = staticmethod(margin_ranking_loss)


class TripletMarginLoss(_Loss):
    """F.triplet_margin_loss as a module."""

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None,
                 reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor, positive, negative):
        return triplet_margin_loss(anchor, positive, negative, self.margin, self.p, self.eps,
                                   self.swap, reduction=self.reduction)


class CosineEmbeddingLoss(_PairMarginLoss):
    """F.cosine_embedding_loss as a module."""
    _function = staticmethod(cosine_embedding_loss)
