"""Classification metrics in plain NumPy, checked against scikit-learn's definitions."""
import math

import numpy as np

__all__ = [
    "accuracy", "balanced_accuracy", "confusion_matrix", "precision_recall_f1", "macro_f1",
    "weighted_f1", "roc_curve", "roc_auc", "sensitivity_specificity", "majority_baseline",
    "evaluate", "classification_report",
]


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------

def _labels(y, name, num_classes=None):
    """Return `y` as a 1-D int64 array of class labels, or raise a ValueError naming `name`."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {y.shape}")
    if y.size == 0:
        raise ValueError(f"{name} is empty: metrics need at least one sample")
    if y.dtype == bool:
        y = y.astype(np.int64)
    elif not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.isfinite(y)) \
                or not np.all(y == np.round(y)):
            raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype} "
                             f"with non-integer values")
        y = y.astype(np.int64)
    y = y.astype(np.int64, copy=False)
    if y.min() < 0:
        raise ValueError(f"{name} holds a negative class label ({int(y.min())})")
    if num_classes is not None and y.max() >= num_classes:
        raise ValueError(f"{name} holds class label {int(y.max())} but num_classes is "
                         f"{num_classes} (labels must be 0..{num_classes - 1})")
    return y


def _pair(y_true, y_pred, num_classes=None):
    """Check a pair of label arrays of equal length."""
    y_true = _labels(y_true, "y_true", num_classes)
    y_pred = _labels(y_pred, "y_pred", num_classes)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.shape[0]} vs "
                         f"{y_pred.shape[0]}")
    return y_true, y_pred


def _num_classes(num_classes, *ys):
    """`num_classes` if given (checked), else one more than the largest label seen."""
    if num_classes is None:
        return int(max(y.max() for y in ys)) + 1
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def _divide(num, den):
    """Elementwise num / den, 0 where den is 0 (scikit-learn's zero_division default)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


# ---------------------------------------------------------------------------------------------
# Label metrics
# ---------------------------------------------------------------------------------------------

def accuracy(y_true, y_pred):
    """Fraction of samples whose predicted label equals the true label."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def confusion_matrix(y_true, y_pred, num_classes=None, normalize=None):
    """(K, K) matrix: row = true class, column = predicted class.

    `normalize=None` gives counts (int64); `normalize="true"` divides each row by its sum, so
    the diagonal holds each class's recall (a row with no samples stays 0, as in scikit-learn).
    """
    if normalize not in (None, "true"):
        raise ValueError(f"normalize must be None or 'true', got {normalize!r}")
    y_true, y_pred = _pair(y_true, y_pred, num_classes)
    K = _num_classes(num_classes, y_true, y_pred)
    cm = np.bincount(y_true * K + y_pred, minlength=K * K).reshape(K, K)
    if normalize == "true":
        return _divide(cm, cm.sum(axis=1, keepdims=True))
    return cm


def balanced_accuracy(y_true, y_pred):
    """Mean recall over the classes present in y_true (ISIC 2018's official metric).

    Classes that occur only in y_pred have no recall and are left out, as scikit-learn's
    `balanced_accuracy_score` does.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    cm = confusion_matrix(y_true, y_pred)
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def _prf(y_true, y_pred, num_classes=None):
    """Per-class precision, recall, F1, support, predicted count (arrays of length K)."""
    y_true, y_pred = _pair(y_true, y_pred, num_classes)
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _divide(tp, predicted)
    recall = _divide(tp, support)
    # NOTE: F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (support + predicted), the harmonic mean of
    # precision and recall written so that it is 0 (not undefined) whenever tp = 0 but the
    # class occurs somewhere, exactly as scikit-learn computes it.
    f1 = _divide(2.0 * tp, support + predicted)
    return precision, recall, f1, support, predicted


def precision_recall_f1(y_true, y_pred, num_classes=None):
    """Per-class scores: {class: {"precision", "recall", "f1", "support"}} for 0..K-1.

    A score whose denominator is zero (a class never predicted, or never present) is 0, as
    scikit-learn's default `zero_division` gives.
    """
    precision, recall, f1, support, _ = _prf(y_true, y_pred, num_classes)
    return {k: {"precision": float(precision[k]), "recall": float(recall[k]),
                "f1": float(f1[k]), "support": int(support[k])}
            for k in range(len(support))}


def macro_f1(y_true, y_pred, num_classes=None):
    """Unweighted mean F1 over the classes that occur in y_true or y_pred.

    As scikit-learn's `f1_score(average="macro")` with its default labels: a class that occurs
    in neither has no F1 and is left out; `num_classes` only checks the label range.
    """
    _, _, f1, support, predicted = _prf(y_true, y_pred, num_classes)
    seen = (support + predicted) > 0
    return float(np.mean(f1[seen]))


def weighted_f1(y_true, y_pred, num_classes=None):
    """Mean F1 over classes weighted by their support in y_true."""
    _, _, f1, support, _ = _prf(y_true, y_pred, num_classes)
    return float(np.sum(f1 * support) / np.sum(support))


def sensitivity_specificity(y_true, y_pred, positive=1):
    """(sensitivity, specificity) with `positive` against every other label.

    Sensitivity = TP / (TP + FN) (the positive class's recall), specificity = TN / (TN + FP)
    (the negatives' recall); either is 0 when its denominator is 0.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    t, p = y_true == positive, y_pred == positive
    tp, fn = np.sum(t & p), np.sum(t & ~p)
    tn, fp = np.sum(~t & ~p), np.sum(~t & p)
    return float(_divide(tp, tp + fn)), float(_divide(tn, tn + fp))


def majority_baseline(y_true_train, y_true_eval):
    """Accuracy on y_true_eval of always predicting the most frequent training class.

    Ties between equally frequent training classes go to the smallest label.
    """
    y_train = _labels(y_true_train, "y_true_train")
    y_eval = _labels(y_true_eval, "y_true_eval")
    majority = int(np.argmax(np.bincount(y_train)))
    return float(np.mean(y_eval == majority))


# ---------------------------------------------------------------------------------------------
# Score metrics
# ---------------------------------------------------------------------------------------------

def _scores(score, name, n):
    """Check a score array of n rows: finite floats."""
    score = np.asarray(score, dtype=np.float64)
    if score.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (N,) or (N, K), got {score.shape}")
    if score.shape[0] != n:
        raise ValueError(f"y_true and {name} differ in length: {n} vs {score.shape[0]}")
    if not np.all(np.isfinite(score)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return score


def roc_curve(y_true_binary, score, drop_intermediate=False):
    """ROC curve of a binary task: (fpr, tpr, thresholds), as scikit-learn's `roc_curve`.

    Thresholds are the distinct scores in decreasing order, preceded by +inf so that the curve
    starts at (0, 0); a sample is called positive when its score >= threshold. By default
    every distinct threshold is kept (scikit-learn's `drop_intermediate=False`);
    `drop_intermediate=True` drops the collinear points just as scikit-learn does. A curve
    needs both classes: with no negatives (or no positives) a ValueError is raised.
    """
    y = _labels(y_true_binary, "y_true_binary")
    if y.max() > 1:
        raise ValueError(f"y_true_binary must hold 0/1 labels, got label {int(y.max())}")
    score = _scores(score, "score", y.shape[0])
    if score.ndim != 1:
        raise ValueError(f"score must have shape (N,) for a ROC curve, got {score.shape}")
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.shape[0]:
        raise ValueError("a ROC curve needs both positive and negative samples in "
                         f"y_true_binary; got only label {int(y[0])}")
    # NOTE: sort by decreasing score (stable, as scikit-learn); the last index of each run of
    # tied scores is one threshold, and the cumulative counts there give the points.
    order = np.argsort(-score, kind="stable")
    score, y = score[order], y[order]
    last = np.r_[np.nonzero(np.diff(score))[0], y.shape[0] - 1]
    tps = np.cumsum(y, dtype=np.float64)[last]
    fps = 1.0 + last - tps
    thresholds = score[last]
    if drop_intermediate and fps.shape[0] > 2:
        keep = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        tps, fps, thresholds = tps[keep], fps[keep], thresholds[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    thresholds = np.r_[np.inf, thresholds]
    return fps / fps[-1], tps / tps[-1], thresholds


def _binary_auc(y, score):
    """Area under the ROC curve by the trapezoid rule (tied scores count one half)."""
    fpr, tpr, _ = roc_curve(y, score)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def roc_auc(y_true, y_score):
    """Area under the ROC curve.

    Binary: `y_score` (N,) is the positive class's score, or (N, 2) whose column 1 is used.
    K > 2 classes, `y_score` (N, K): one-vs-rest macro average, as scikit-learn's
    `roc_auc_score(multi_class="ovr", average="macro")`, except that classes absent from
    y_true (whose AUC is undefined) are skipped rather than making the result NaN; the scores
    need not sum to 1. Raises ValueError when fewer than two classes occur in y_true.
    """
    y = _labels(y_true, "y_true")
    score = _scores(y_score, "y_score", y.shape[0])
    if score.ndim == 1 or score.shape[1] == 2:
        if y.max() > 1:
            raise ValueError(f"a binary y_score needs 0/1 labels in y_true, got label "
                             f"{int(y.max())}")
        if score.ndim == 2:
            score = score[:, 1]
        if np.unique(y).size < 2:
            raise ValueError("ROC AUC is undefined: y_true holds only one class")
        return _binary_auc(y, score)
    K = score.shape[1]
    if y.max() >= K:
        raise ValueError(f"y_true holds class label {int(y.max())} but y_score has only {K} "
                         f"columns")
    present = np.unique(y)
    if present.size < 2:
        raise ValueError("ROC AUC is undefined: y_true holds only one class")
    return float(np.mean([_binary_auc((y == k).astype(np.int64), score[:, k])
                          for k in present]))


# ---------------------------------------------------------------------------------------------
# Everything at once
# ---------------------------------------------------------------------------------------------

def evaluate(y_true, y_score, class_names, y_true_train=None):
    """All metrics of a classifier's scores on one set, as a JSON-serialisable dict.

    `y_score` is (N, K) class probabilities (the prediction is their argmax) or, for a binary
    task, (N,) positive-class probabilities (predicted positive when >= 0.5). Keys:
    accuracy, balanced_accuracy, macro_f1, weighted_f1, roc_auc (None when undefined, i.e.
    one class in y_true), per_class {name: {precision, recall, f1, support}},
    confusion_matrix, confusion_matrix_normalized, class_names; for binary tasks also
    sensitivity and specificity (class 1 positive); with `y_true_train`, majority_baseline.
    """
    class_names = [str(c) for c in class_names]
    K = len(class_names)
    if K < 2:
        raise ValueError(f"class_names must name at least two classes, got {class_names}")
    if len(set(class_names)) != K:
        raise ValueError(f"class_names holds duplicates: {class_names}")
    y = _labels(y_true, "y_true", K)
    score = _scores(y_score, "y_score", y.shape[0])
    if score.ndim == 1:
        if K != 2:
            raise ValueError(f"a (N,) y_score is for binary tasks but class_names has {K} "
                             f"names; pass (N, {K}) scores")
        y_pred = (score >= 0.5).astype(np.int64)
    else:
        if score.shape[1] != K:
            raise ValueError(f"y_score has {score.shape[1]} columns but class_names has {K} "
                             f"names")
        y_pred = np.argmax(score, axis=1)
    precision, recall, f1, support, predicted = _prf(y, y_pred, K)
    try:
        auc = roc_auc(y, score)
    except ValueError:
        auc = None
    out = {
        "accuracy": accuracy(y, y_pred),
        "balanced_accuracy": balanced_accuracy(y, y_pred),
        "macro_f1": macro_f1(y, y_pred, K),
        "weighted_f1": weighted_f1(y, y_pred, K),
        "roc_auc": auc,
        "per_class": {name: {"precision": float(precision[k]), "recall": float(recall[k]),
                             "f1": float(f1[k]), "support": int(support[k])}
                      for k, name in enumerate(class_names)},
        "confusion_matrix": confusion_matrix(y, y_pred, K).tolist(),
        "confusion_matrix_normalized": confusion_matrix(y, y_pred, K, "true").tolist(),
        "class_names": class_names,
    }
    if K == 2:
        out["sensitivity"], out["specificity"] = sensitivity_specificity(y, y_pred, 1)
    if y_true_train is not None:
        out["majority_baseline"] = majority_baseline(y_true_train, y)
    return out


def classification_report(metrics, digits=2):
    """A readable table of an `evaluate` dict, laid out like scikit-learn's report."""
    missing = [k for k in ("per_class", "class_names", "accuracy", "macro_f1", "weighted_f1")
               if k not in metrics]
    if missing:
        raise ValueError(f"metrics dict lacks {', '.join(missing)}: pass the dict that "
                         "evaluate() returns (or metrics.json loaded)")
    names = list(metrics["class_names"])
    rows = [metrics["per_class"][n] for n in names]
    support = np.array([r["support"] for r in rows])
    total = int(support.sum())
    # Averages of precision and recall over the classes seen (as the macro F1 is).
    seen = support > 0
    if "confusion_matrix" in metrics:
        seen = seen | (np.asarray(metrics["confusion_matrix"]).sum(axis=0) > 0)
    avg = {}
    for key in ("precision", "recall"):
        v = np.array([r[key] for r in rows])
        avg[key] = (float(np.mean(v[seen])), float(np.sum(v * support) / max(total, 1)))

    width = max(max(len(n) for n in names), len("weighted avg"), digits)
    head = "{:>{w}s} " + " {:>9}" * 4
    row = "{:>{w}s} " + " {:>9.{d}f}" * 3 + " {:>9}\n"
    lines = head.format("", "precision", "recall", "f1-score", "support", w=width) + "\n\n"
    for n, r in zip(names, rows):
        lines += row.format(n, r["precision"], r["recall"], r["f1"], r["support"],
                            w=width, d=digits)
    lines += "\n"
    lines += ("{:>{w}s} " + " {:>9}" * 2 + " {:>9.{d}f} {:>9}\n").format(
        "accuracy", "", "", metrics["accuracy"], total, w=width, d=digits)
    lines += row.format("macro avg", avg["precision"][0], avg["recall"][0],
                        metrics["macro_f1"], total, w=width, d=digits)
    lines += row.format("weighted avg", avg["precision"][1], avg["recall"][1],
                        metrics["weighted_f1"], total, w=width, d=digits)
    extra = [("balanced accuracy", "balanced_accuracy"), ("ROC AUC", "roc_auc"),
             ("sensitivity", "sensitivity"), ("specificity", "specificity"),
             ("majority baseline", "majority_baseline")]
    extra = [(label, metrics[key]) for label, key in extra if key in metrics]
    if extra:
        lines += "\n"
        for label, v in extra:
            undefined = v is None or (isinstance(v, float) and math.isnan(v))
            value = "undefined" if undefined else f"{v:.{digits + 2}f}"
            lines += f"{label:>{width + 8}s}  {value}\n"
    return lines
