"""PNG pictures of a run: training curves, confusion matrix, ROC curves, logistic weights."""
import math
import pathlib

import numpy as np

from tinylesion import metrics

__all__ = ["plot_history", "plot_confusion_matrix", "plot_roc", "plot_weights_image"]

_HISTORY_KEYS = ("loss", "val_loss", "accuracy", "val_accuracy", "val_macro_f1", "lr")


def _pyplot():
    """matplotlib.pyplot on the file-only Agg backend, imported on first use."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png_path(path):
    """Check that `path` names a .png file and create its folder."""
    path = pathlib.Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plots are written as PNG: the path must end in .png, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _save(plt, fig, path):
    """Write the figure as PNG and close it (also when saving fails)."""
    try:
        fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _as_numpy(x):
    """A NumPy array from a NumPy array, list, tinylesion Tensor or CuPy array."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "numpy"):          # tinylesion.Tensor
        return np.asarray(x.numpy())
    if hasattr(x, "get"):            # cupy.ndarray
        return np.asarray(x.get())
    return np.asarray(x)


# ---------------------------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------------------------

def _series(history):
    """The known history series as float arrays of one common length (None becomes NaN)."""
    if not isinstance(history, dict):
        raise ValueError(f"history must be a dict of lists, got {type(history).__name__}")
    series = {}
    for key in _HISTORY_KEYS:
        if key not in history or history[key] is None:
            continue
        values = [np.nan if v is None else v for v in list(history[key])]
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"history[{key!r}] must be a list of numbers") from None
        if arr.ndim != 1:
            raise ValueError(f"history[{key!r}] must be a flat list of numbers, got shape "
                             f"{arr.shape}")
        if arr.size:
            series[key] = arr
    if not series:
        raise ValueError("history holds none of " + ", ".join(_HISTORY_KEYS)
                         + " (or they are all empty): nothing to plot")
    lengths = {k: v.size for k, v in series.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("history lists differ in length (one value per epoch expected): "
                         + ", ".join(f"{k}={n}" for k, n in lengths.items()))
    return series


def plot_history(history, path):
    """Loss and accuracy per epoch, train vs. validation, with the learning rate below.

    `history` is a dict of per-epoch lists; any of loss, accuracy, val_loss, val_accuracy,
    val_macro_f1, lr may be missing, other keys are ignored. The epoch of the lowest
    validation loss is marked.
    """
    path = _png_path(path)
    series = _series(history)
    n = next(iter(series.values())).size
    epochs = np.arange(1, n + 1)
    style = {"marker": "o", "markersize": 3} if n <= 40 else {}
    panels = [p for p in (("loss", "val_loss"), ("accuracy", "val_accuracy", "val_macro_f1"))
              if any(k in series for k in p)]
    has_lr = "lr" in series
    ratios = ([3] if panels else []) + ([1] if has_lr else [])
    plt = _pyplot()
    fig = plt.figure(figsize=(5.0 * max(len(panels), 1) + 0.5, 1.2 * sum(ratios) + 1.0))
    grid = fig.add_gridspec(len(ratios), max(len(panels), 1), height_ratios=ratios,
                            hspace=0.45, wspace=0.25)
    best = None
    if "val_loss" in series and np.any(np.isfinite(series["val_loss"])):
        best = int(np.nanargmin(series["val_loss"])) + 1
    labels = {"loss": "train", "val_loss": "validation", "accuracy": "train accuracy",
              "val_accuracy": "val accuracy", "val_macro_f1": "val macro-F1"}
    colours = {"loss": "C0", "val_loss": "C1", "accuracy": "C0", "val_accuracy": "C1",
               "val_macro_f1": "C2"}
    for i, keys in enumerate(panels):
        ax = fig.add_subplot(grid[0, i])
        for k in keys:
            if k in series:
                ax.plot(epochs, series[k], color=colours[k], label=labels[k], **style)
        if best is not None:
            ax.axvline(best, color="0.5", linestyle=":", linewidth=1,
                       label=f"best val loss (epoch {best})")
        is_loss = keys[0] == "loss"
        ax.set_title("Loss" if is_loss else "Accuracy and macro-F1")
        ax.set_ylabel("loss" if is_loss else "score")
        if not is_loss:
            ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if has_lr:
        ax = fig.add_subplot(grid[-1, :])
        lr = series["lr"]
        ax.plot(epochs, lr, color="C3", **style)
        finite = lr[np.isfinite(lr)]
        if finite.size and np.all(finite > 0) and finite.max() > 2 * finite.min():
            ax.set_yscale("log")
        ax.set_ylabel("learning rate")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _save(plt, fig, path)


# ---------------------------------------------------------------------------------------------
# Confusion matrix
# ---------------------------------------------------------------------------------------------

def plot_confusion_matrix(cm, class_names, path, normalize=True):
    """The confusion matrix (rows true, columns predicted) as a heat map with counts written in.

    With `normalize=True` the colours (and the first number in each cell) are row fractions,
    i.e. each class's recall on the diagonal, and the count follows in brackets.
    """
    path = _png_path(path)
    cm = _as_numpy(cm).astype(np.float64)
    class_names = [str(c) for c in class_names]
    K = len(class_names)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square (K, K), got shape {cm.shape}")
    if cm.shape[0] != K:
        raise ValueError(f"confusion matrix is {cm.shape[0]}x{cm.shape[1]} but class_names "
                         f"has {K} names")
    if not np.all(np.isfinite(cm)) or np.any(cm < 0):
        raise ValueError("confusion matrix must hold finite, non-negative counts")
    integral = np.all(cm == np.round(cm))
    rows = cm.sum(axis=1, keepdims=True)
    shown = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0) if normalize else cm

    plt = _pyplot()
    size = max(4.0, 0.75 * K + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    vmax = 1.0 if normalize else max(shown.max(), 1.0)
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04,
                 label="fraction of the true class" if normalize else "count")
    fontsize = 9 if K <= 8 else 7
    for i in range(K):
        for j in range(K):
            count = f"{int(cm[i, j])}" if integral else f"{cm[i, j]:.3g}"
            text = f"{shown[i, j]:.2f}\n({count})" if normalize else count
            dark = shown[i, j] > 0.55 * vmax
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if dark else "black")
    ax.set_xticks(range(K), class_names, rotation=45, ha="right")
    ax.set_yticks(range(K), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix" + (" (row-normalised)" if normalize else ""))
    return _save(plt, fig, path)


# ---------------------------------------------------------------------------------------------
# ROC curves
# ---------------------------------------------------------------------------------------------

def plot_roc(y_true, y_score, class_names, path):
    """ROC curve(s) with each area under the curve in the legend.

    Binary (two class names, `y_score` (N,) or (N, 2)): one curve for the second class.
    Several classes (`y_score` (N, K)): one-vs-rest curves for each class present in y_true
    and their macro-average AUC in the title (absent classes are listed as such).
    """
    path = _png_path(path)
    class_names = [str(c) for c in class_names]
    K = len(class_names)
    y = _as_numpy(y_true)
    score = np.asarray(_as_numpy(y_score), dtype=np.float64)
    if y.ndim != 1 or score.ndim not in (1, 2) or y.shape[0] != score.shape[0]:
        raise ValueError(f"y_true (shape {y.shape}) and y_score (shape {score.shape}) must "
                         "have one row per sample, the same number of rows")
    if K < 2:
        raise ValueError(f"class_names must name at least two classes, got {class_names}")
    if score.ndim == 1 and K != 2:
        raise ValueError(f"a (N,) y_score is for binary tasks but class_names has {K} names")
    if score.ndim == 2 and score.shape[1] != K:
        raise ValueError(f"y_score has {score.shape[1]} columns but class_names has {K} names")
    y = metrics._labels(y, "y_true", K)
    if np.unique(y).size < 2:
        raise ValueError("ROC curves need at least two classes in y_true; got only class "
                         f"{class_names[int(y[0])]!r}")
    if K == 2:
        curves = [(class_names[1], (y == 1).astype(np.int64),
                   score if score.ndim == 1 else score[:, 1])]
        title = "ROC curve"
    else:
        curves = [(class_names[k], (y == k).astype(np.int64), score[:, k])
                  for k in np.unique(y)]
        title = f"ROC curves, one vs. rest (macro AUC {metrics.roc_auc(y, score):.3f})"
    absent = [class_names[k] for k in range(K) if K > 2 and not np.any(y == k)]

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="chance (AUC 0.5)")
    for i, (name, positive, s) in enumerate(curves):
        fpr, tpr, _ = metrics.roc_curve(positive, s)
        auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))
        ax.plot(fpr, tpr, color=f"C{i % 10}", linewidth=1.6, label=f"{name} (AUC {auc:.3f})")
    if absent:
        ax.plot([], [], " ", label="absent: " + ", ".join(absent))
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(plt, fig, path)


# ---------------------------------------------------------------------------------------------
# Logistic-regression weights
# ---------------------------------------------------------------------------------------------

def _weight_images(w, H, W):
    """(K, 3*H*W) weights of a (3, H, W) input as (K, H, W, 3) RGB images scaled to [0, 1]."""
    images = w.reshape(w.shape[0], 3, H, W).transpose(0, 2, 3, 1)
    lo = images.min(axis=(1, 2, 3), keepdims=True)
    span = images.max(axis=(1, 2, 3), keepdims=True) - lo
    # NOTE: a constant weight image has no contrast to show; draw it mid-grey.
    return np.where(span > 0, (images - lo) / np.where(span > 0, span, 1.0), 0.5)


def plot_weights_image(weight, image_shape_hw, path, class_names=None):
    """A logistic regression's weights drawn as RGB images, one per output unit.

    `weight` is (D,) or (K, D) (a Linear layer's (out, in) weight) acting on a flattened
    (3, H, W) input, so D = 3 * H * W. Each image is min-max scaled on its own: bright pixels
    push towards the class, dark ones away from it.
    """
    path = _png_path(path)
    try:
        H, W = (int(v) for v in image_shape_hw)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape_hw must be (H, W), got {image_shape_hw!r}") from None
    if H < 1 or W < 1:
        raise ValueError(f"image_shape_hw must be positive, got {(H, W)}")
    w = np.asarray(_as_numpy(weight), dtype=np.float64)
    if w.ndim == 1:
        w = w[None, :]
    D = 3 * H * W
    if w.ndim != 2 or w.shape[1] != D:
        raise ValueError(f"weight has shape {w.shape}, but a (3, {H}, {W}) input needs "
                         f"{D} = 3*{H}*{W} weights per output: expected ({D},) or (K, {D})")
    if not np.all(np.isfinite(w)):
        raise ValueError("weight holds NaN or infinite values")
    K = w.shape[0]
    if class_names is None:
        class_names = [f"output {k}" for k in range(K)] if K > 1 else ["weights"]
    class_names = [str(c) for c in class_names]
    if len(class_names) != K:
        raise ValueError(f"weight has {K} output rows but class_names has "
                         f"{len(class_names)} names")

    images = _weight_images(w, H, W)
    cols = min(K, 4)
    rows = math.ceil(K / cols)
    panel = 3.0 * max(W / H, 0.5), 3.0 * max(H / W, 0.5)
    plt = _pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(panel[0] * cols, panel[1] * rows + 0.3),
                             squeeze=False, layout="constrained")
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < K:
            ax.imshow(images[k], interpolation="nearest")
            ax.set_title(class_names[k], fontsize=10)
    fig.suptitle("Logistic-regression weights as RGB images (min-max scaled)", fontsize=10)
    return _save(plt, fig, path)
