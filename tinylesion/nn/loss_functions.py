"""The loss functions of the functional interface (torch.nn.functional's names and
arguments): cross-entropy, negative log-likelihood, binary cross-entropy (of probabilities or
logits), mean squared and absolute error."""
import warnings

import numpy as np

from .. import backend, ops
from ..tensor import Tensor


def _constant(value, like, name):
    """An array constant (class weights, targets) on `like`'s device, or None."""
    if value is None:
        return None
    array = value.array if isinstance(value, Tensor) else value
    return backend.to_device(array, like.device)


def _reduction(size_average, reduce, reduction):
    """The reduction, from PyTorch's deprecated size_average and reduce when either is given
    (with PyTorch's warning); checked against 'mean', 'sum', 'none'."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else "mean" if size_average else "sum"
        warnings.warn("size_average and reduce args will be deprecated, please use "
                      f"reduction='{reduction}' instead.", UserWarning, stacklevel=3)
    if reduction not in ops.loss.REDUCTIONS:
        raise ValueError(f"reduction must be one of {ops.loss.REDUCTIONS}, not {reduction!r}")
    return reduction


def _class_weight(weight, x, C, function):
    """Class weights (C,) as an array of x's dtype on x's device, or None."""
    w = _constant(weight, x, "weight")
    if w is not None:
        if w.shape != (C,):
            raise ValueError(f"{function}: weight has shape {w.shape}, expected ({C},)")
        w = w.astype(x.dtype, copy=False)
    return w


def _class_rows(x):
    """(N, C, d1, ...) or (C,) scores as (predictions, C): classes last, one row each."""
    C = x.shape[1] if x.ndim > 1 else x.shape[0]
    axes = (0,) + tuple(range(2, x.ndim)) + (1,)
    return (x.permute(*axes) if x.ndim > 2 else x).reshape(-1, C)


def _check_classes(t, C, ignore_index, function):
    """Raise if a target is outside 0..C-1 and not ignore_index; the ignore_index to give the
    op (None when no target equals it, so that the op can skip the masking)."""
    if backend.is_cupy_array(t):
        # NOTE: on the GPU this check would wait for the device at every step; there an
        # out-of-range class makes that sample's loss NaN instead (in the op).
        return ignore_index
    ignored = t == ignore_index
    bad = ((t < 0) | (t >= C)) & ~ignored
    if bad.any():
        raise ValueError(f"{function}: target holds class {int(t[bad][0])}, outside "
                         f"0..{C - 1} for input of {C} classes")
    return ignore_index if ignored.any() else None


def _classes(x, weight, target, function):
    """(C, the class weights, the target array, the shape class indices must have) for input
    of shape (N, C), (C,) or (N, C, d1, ...)."""
    if x.ndim < 1:
        raise ValueError(f"{function} expects input of shape (N, C), got {x.shape}")
    C = x.shape[1] if x.ndim > 1 else x.shape[0]
    batch = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
    return C, _class_weight(weight, x, C, function), _constant(target, x, "target"), batch


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits against class indices, as torch.nn.functional.cross_entropy.

    Shapes: logits (N, C) with target (N,); (C,) with a 0-d target; (N, C, d1, ...) with
    (N, d1, ...). Class indices are integers; a float target of the logits' shape holds class
    probabilities instead. `weight` (C,) weights each class: the weighted mean divides by the
    sum of the targets' weights, as PyTorch does. Targets equal to `ignore_index` count nowhere.
    """
    reduction = _reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], not "
                         f"{label_smoothing}")
    logits = input
    C, w, t, batch = _classes(logits, weight, target, "cross_entropy")
    if t.dtype.kind == "f" and t.shape == logits.shape:
        if ignore_index >= 0:  # a negative one can match no class: PyTorch takes it
            raise ValueError(f"cross_entropy: ignore_index={ignore_index} is not supported for "
                             "class probabilities (a float target)")
        return _soft_cross_entropy(logits, target, w, reduction, label_smoothing)
    if t.shape != batch or t.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy: logits of shape {logits.shape} need integer class "
                         f"indices of shape {batch} (or class probabilities of shape "
                         f"{logits.shape}), got {t.dtype} {t.shape}")
    if logits.ndim != 2:
        loss = cross_entropy(_class_rows(logits), t.reshape(-1), w, ignore_index=ignore_index,
                             reduction=reduction, label_smoothing=label_smoothing)
        return loss.reshape(batch) if reduction == "none" else loss
    ignore = _check_classes(t, C, ignore_index, "cross_entropy")
    return ops.CrossEntropy.apply(logits, target=t, weight=w, reduction=reduction,
                                  label_smoothing=float(label_smoothing), ignore_index=ignore)


def _soft_cross_entropy(logits, target, weight, reduction, label_smoothing):
    """−Σ_c w_c·p_c·log softmax(x)_c over the class axis 1, for class probabilities p; the
    mean is over the predictions (not the weights), as PyTorch does."""
    C = logits.shape[1] if logits.ndim > 1 else logits.shape[0]
    p = target if isinstance(target, Tensor) else Tensor._wrap(
        _constant(target, logits, "target").astype(logits.dtype, copy=False))
    if label_smoothing:
        p = p * (1 - label_smoothing) + label_smoothing / C
    axis = 1 if logits.ndim > 1 else 0
    if weight is not None:
        shape = (C,) + (1,) * (logits.ndim - axis - 1)
        p = p * Tensor._wrap(weight.reshape(shape))
    loss = -(ops.LogSoftmax.apply(logits, axis=axis) * p).sum(axis)
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


def _binary_target(target, x, function):
    """The target of a binary cross-entropy: x's shape, as an array of x's dtype on x's device."""
    y = _constant(target, x, "target")
    if y.shape != x.shape:
        raise ValueError(f"{function}: target shape {y.shape} differs from the input's "
                         f"{x.shape}")
    return y.astype(x.dtype, copy=False)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy on logits, with pos_weight scaling the positive term."""
    reduction = _reduction(size_average, reduce, reduction)
    logits = input
    y = _binary_target(target, logits, "binary_cross_entropy_with_logits")
    w = _constant(weight, logits, "weight")
    pw = _constant(pos_weight, logits, "pos_weight")
    cast = lambda a: None if a is None else a.astype(logits.dtype, copy=False)
    return ops.BinaryCrossEntropyWithLogits.apply(logits, y=y, weight=cast(w),
                                                  pos_weight=cast(pw), reduction=reduction)


# ---- more losses -----------------------------------------------------------------------------
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of log-probabilities against class indices, as
    torch.nn.functional.nll_loss: input (N, C) with target (N,), (C,) with a 0-d target, or
    (N, C, d1, ...) with (N, d1, ...). The weighted mean divides by the sum of the targets'
    weights; targets equal to `ignore_index` count nowhere."""
    reduction = _reduction(size_average, reduce, reduction)
    x = input
    C, w, t, batch = _classes(x, weight, target, "nll_loss")
    if t.shape != batch or t.dtype.kind not in "iu":
        raise ValueError(f"nll_loss: input of shape {x.shape} needs integer class indices of "
                         f"shape {batch}, got {t.dtype} {t.shape}")
    if x.ndim != 2:
        loss = nll_loss(_class_rows(x), t.reshape(-1), w, ignore_index=ignore_index,
                        reduction=reduction)
        return loss.reshape(batch) if reduction == "none" else loss
    ignore = _check_classes(t, C, ignore_index, "nll_loss")
    return ops.NLL.apply(x, target=t, weight=w, reduction=reduction, ignore_index=ignore)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """Binary cross-entropy of probabilities in [0, 1], each log clamped at −100 as PyTorch
    does; `weight` broadcasts to the target's shape. The target is a constant (no gradient)."""
    reduction = _reduction(size_average, reduce, reduction)
    p = input
    y = _binary_target(target, p, "binary_cross_entropy")
    if not backend.is_cupy_array(p.array):  # on the GPU: no host-side check at each step
        outside = ~((p.array >= 0) & (p.array <= 1))
        if outside.any():
            raise ValueError(f"binary_cross_entropy: all elements of input should be between "
                             f"0 and 1 (probabilities), got {p.array[outside].flat[0]}")
    w = _constant(weight, p, "weight")
    if w is not None:
        try:
            w = p.xp.broadcast_to(w.astype(p.dtype, copy=False), p.shape)
        except ValueError:
            raise ValueError(f"binary_cross_entropy: weight of shape {w.shape} does not "
                             f"broadcast to the input's {p.shape}") from None
    return ops.BinaryCrossEntropy.apply(p, y=y, weight=w,
                                        reduction=reduction)


def _regression(op, name, input, target, size_average, reduce, reduction, weight):
    """mse_loss and l1_loss: input and target broadcast (with PyTorch's warning when their
    shapes differ); a Tensor target gets its gradient too."""
    reduction = _reduction(size_average, reduce, reduction)
    x = input
    if isinstance(target, Tensor):
        y = target
    else:
        y = Tensor._wrap(_constant(target, x, "target").astype(x.dtype, copy=False))
    if y.shape != x.shape:
        try:
            np.broadcast_shapes(x.shape, y.shape)
        except ValueError:
            raise ValueError(f"{name}: input of shape {x.shape} and target of shape {y.shape} "
                             "do not broadcast") from None
        warnings.warn(f"Using a target size ({y.shape}) that is different to the input size "
                      f"({x.shape}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", UserWarning,
                      stacklevel=3)
    w = _constant(weight, x, "weight")
    if w is not None and w.shape != x.shape:
        raise ValueError(f"{name}: weight of shape {w.shape} must have the input's shape "
                         f"{x.shape}")
    w = None if w is None else w.astype(x.dtype, copy=False)
    return op.apply(x, y, weight=w, reduction=reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error (x − y)²; with `weight` (the input's shape) the mean divides by the
    weights' sum, as PyTorch does."""
    return _regression(ops.MSE, "mse_loss", input, target, size_average, reduce, reduction,
                       weight)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error |x − y|; with `weight` (the input's shape) the mean divides by the
    weights' sum, as PyTorch does."""
    return _regression(ops.L1, "l1_loss", input, target, size_average, reduce, reduction,
                       weight)


# ---- more activations and layers -------------------------------------------------------------
