"""Fused losses: cross-entropy, negative log-likelihood, binary cross-entropy (on logits and on
probabilities), mean squared and absolute error."""
import numpy as np

from ..backend import get_array_module
from ..autograd import Function
from ._util import sum_to
from .activation import log_softmax_array, sigmoid_array

REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """−w[t]·log softmax(x)[t] per sample; 'mean' divides by Σ w[t] as PyTorch does."""

    def forward(self, logits, target, weight=None, reduction="mean", label_smoothing=0.0,
                ignore_index=None):
        xp = get_array_module(logits)
        N, C = logits.shape
        self.weight, self.reduction = weight, reduction
        self.smoothing = label_smoothing
        # NOTE: targets equal to ignore_index (given only when some may be) count nowhere:
        # their loss and gradient are 0 and they leave the weighted mean's denominator.
        keep = None if ignore_index is None else target != ignore_index
        if keep is not None:
            target = xp.where(keep, target, 0)
        self.target = target
        self.log_p = log_softmax_array(logits, axis=1)
        rows = xp.arange(N)
        nll = -self.log_p[rows, target]
        if xp.__name__ != "numpy":  # no host-side range check on the device (nn.functional)
            nll = xp.where((target >= 0) & (target < C), nll, xp.nan).astype(nll.dtype)
        if label_smoothing:
            # NOTE: the smoothed target is (1-ε)·onehot + ε/C; with class weights each
            # class's term is weighted by w[c] (PyTorch's definition).
            w_all = weight if weight is not None else 1.0
            smooth = -(self.log_p * w_all).sum(axis=1) / C
            if keep is not None:
                smooth = smooth * keep
        self.sample_weight = weight[target] if weight is not None else None
        if keep is not None:
            self.sample_weight = (keep.astype(logits.dtype) if weight is None
                                  else self.sample_weight * keep)
        self.keep = keep
        if self.sample_weight is not None:
            nll = nll * self.sample_weight
        if label_smoothing:
            nll = (1 - label_smoothing) * nll + label_smoothing * smooth
        if reduction == "none":
            return nll
        if reduction == "sum":
            return nll.sum()
        self.denominator = (self.sample_weight.sum() if self.sample_weight is not None
                            else xp.asarray(N, dtype=logits.dtype))
        return nll.sum() / self.denominator

    def backward(self, gy):
        xp = get_array_module(gy)
        N, C = self.log_p.shape
        p = xp.exp(self.log_p)
        onehot = xp.zeros_like(p)
        onehot[xp.arange(N), self.target] = 1
        w = self.sample_weight[:, None] if self.sample_weight is not None else 1.0
        gx = (p - onehot) * w * (1 - self.smoothing)
        if self.smoothing:
            w_all = self.weight if self.weight is not None else 1.0
            w_sum = (w_all * xp.ones(C, dtype=p.dtype)).sum()
            g_smooth = self.smoothing / C * (p * w_sum - w_all)
            gx += g_smooth if self.keep is None else g_smooth * self.keep[:, None]
        if self.reduction == "none":
            return gx * gy[:, None]
        if self.reduction == "mean":
            gy = gy / self.denominator
        gx = gx * gy
        # NOTE: an ignored row's gradient is 0 even when every row is ignored (a 0/0 = NaN
        # mean, whose scale gy / 0 would make 0 · inf = NaN), as PyTorch's.
        return gx if self.keep is None else xp.where(self.keep[:, None], gx, 0).astype(gx.dtype)


class BinaryCrossEntropyWithLogits(Function):
    """−[pos_weight·y·log σ(x) + (1−y)·log(1−σ(x))], computed without overflow."""

    def forward(self, x, y, weight=None, pos_weight=None, reduction="mean"):
        xp = get_array_module(x)
        self.x, self.y, self.weight, self.reduction = x, y, weight, reduction
        self.pos_weight = pos_weight
        # NOTE: −log σ(x) = softplus(−x) = max(−x, 0) + log(1 + e^−|x|); −log(1−σ(x)) =
        # softplus(x) = softplus(−x) + x.
        softplus_neg = xp.maximum(-x, 0) + xp.log1p(xp.exp(-abs(x)))
        pw = 1.0 if pos_weight is None else pos_weight
        loss = pw * y * softplus_neg + (1 - y) * (softplus_neg + x)
        if weight is not None:
            loss = loss * weight
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        return loss.mean()

    def backward(self, gy):
        x, y = self.x, self.y
        s = sigmoid_array(x)
        pw = 1.0 if self.pos_weight is None else self.pos_weight
        # NOTE: d/dx = σ(x)·(pw·y + 1 − y) − pw·y.
        gx = s * (pw * y + 1 - y) - pw * y
        if self.weight is not None:
            gx = gx * self.weight
        if self.reduction == "mean":
            gy = gy / x.size
        gx = gx * gy
        return gx


def _reduce(loss, reduction, denominator=None):
    """'none': the losses; 'sum': their sum; 'mean': their sum over `denominator` (default:
    their number)."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (loss.size if denominator is None else denominator)


def _scale_gy(gy, reduction, denominator):
    """The upstream gradient of each loss element: gy itself, or gy / denominator for 'mean'."""
    return gy / denominator if reduction == "mean" else gy


class NLL(Function):
    """−w[t]·x[t] per row of log-probabilities x (N, C); 'mean' divides by Σ w[t], as PyTorch
    does; targets equal to ignore_index (given only when some may be) count nowhere."""

    def forward(self, x, target, weight=None, reduction="mean", ignore_index=None):
        xp = get_array_module(x)
        N, C = x.shape
        self.x_shape, self.reduction = x.shape, reduction
        w = xp.ones(N, dtype=x.dtype) if weight is None else None
        if ignore_index is not None:
            keep = target != ignore_index
            target = xp.where(keep, target, 0)
        inside = (target >= 0) & (target < C)
        self.target = xp.where(inside, target, 0)
        if w is None:
            w = weight[self.target]
        self.keep = keep if ignore_index is not None else None
        if ignore_index is not None:
            w = w * keep
        self.sample_weight = w
        loss = -x[xp.arange(N), self.target] * w
        if xp.__name__ != "numpy":  # no host-side range check on the device (nn.functional)
            loss = xp.where(inside, loss, xp.nan).astype(loss.dtype)
        self.denominator = w.sum()
        return _reduce(loss, reduction, self.denominator)

    def backward(self, gy):
        xp = get_array_module(gy)
        N = self.x_shape[0]
        gx = xp.zeros(self.x_shape, dtype=self.sample_weight.dtype)
        g_rows = -self.sample_weight * _scale_gy(gy, self.reduction, self.denominator)
        if self.keep is not None:  # ignored rows: 0 even when all are (a NaN mean), as PyTorch
            g_rows = xp.where(self.keep, g_rows, 0)
        gx[xp.arange(N), self.target] = g_rows
        return gx


# PyTorch's bounds: each log is at least -100, and the gradient's denominator p(1 - p) at
# least EPSILON, a float32 constant 1e-12 in every dtype (aten/src/ATen/native/Loss.cpp)
LOG_FLOOR = -100.0
EPSILON = float(np.float32(1e-12))


class BinaryCrossEntropy(Function):
    """−w·[y·log p + (1−y)·log(1−p)] for probabilities p, each log clamped at −100."""

    def forward(self, p, y, weight=None, reduction="mean"):
        xp = get_array_module(p)
        self.p, self.y, self.weight, self.reduction = p, y, weight, reduction
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped below
            log_p = xp.maximum(xp.log(p), LOG_FLOOR)
            log_q = xp.maximum(xp.log1p(-p), LOG_FLOOR)
        loss = (y - 1) * log_q - y * log_p
        if weight is not None:
            loss = loss * weight
        return _reduce(loss, reduction)

    def backward(self, gy):
        xp = get_array_module(gy)
        p, y = self.p, self.y
        # NOTE: d/dp = (p − y) / (p(1 − p)), the denominator kept from 0 as PyTorch does.
        gx = (p - y) / xp.maximum((1 - p) * p, EPSILON)
        if self.weight is not None:
            gx = gx * self.weight
        return gx * _scale_gy(gy, self.reduction, p.size)


class _Regression(Function):
    """Shared by MSE and L1: the element loss of d = x − y (broadcast), optionally weighted;
    'mean' divides by the weights' sum when weighted, as PyTorch does."""

    def forward(self, x, y, weight=None, reduction="mean"):
        self.x_shape, self.y_shape = x.shape, y.shape
        self.weight, self.reduction = weight, reduction
        self.d = x - y
        loss = self.element(self.d)
        if weight is not None:
            loss = loss * weight
        self.denominator = loss.size if weight is None else weight.sum()
        return _reduce(loss, reduction, self.denominator)

    def backward(self, gy):
        g = self.derivative(self.d) * _scale_gy(gy, self.reduction, self.denominator)
        if self.weight is not None:
            g = g * self.weight
        need = self.needs_input_grad
        return (sum_to(g, self.x_shape) if need[0] else None,
                sum_to(-g, self.y_shape) if need[1] else None)


class MSE(_Regression):
    """(x − y)²."""

    def element(self, d):
        return d * d

    def derivative(self, d):
        return 2 * d


class L1(_Regression):
    """|x − y| (its gradient at 0 is 0, as PyTorch's sign)."""

    def element(self, d):
        return abs(d)

    def derivative(self, d):
        return get_array_module(d).sign(d)
