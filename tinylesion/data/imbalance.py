"""Class imbalance: loss weights per class, and a sampler that oversamples minority classes."""
import numpy as np


def _labels(labels, name):
    """labels (an array, a list, or a dataset with .targets) as a 1-d int64 array, checked."""
    labels = getattr(labels, "targets", labels)
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"{name}: labels must be a non-empty 1-d sequence, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y))):
            raise ValueError(f"{name}: labels must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ValueError(f"{name}: labels must be >= 0, found {y.min()}")
    return y


def class_weights(labels, mode="balanced", const=0.0, num_classes=None):
    """Loss weight of each class as float32: w_c = N / (K * n_c) - const ("balanced").

    N samples, K classes (num_classes, else max label + 1), n_c samples of class c: the seeds'
    formula (scikit-learn's "balanced", less a constant). mode "none" gives ones.
    """
    y = _labels(labels, "class_weights")
    k = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if k <= y.max():
        raise ValueError(f"class_weights: label {y.max()} is >= num_classes={k}")
    if mode == "none":
        return np.ones(k, np.float32)
    if mode != "balanced":
        raise ValueError(f"class_weights: mode must be 'balanced' or 'none', got {mode!r}")
    n_c = np.bincount(y, minlength=k)
    if np.any(n_c == 0):
        empty = np.flatnonzero(n_c == 0).tolist()
        raise ValueError(f"class_weights: class(es) {empty} have no samples; their weight "
                         "N / (K * n_c) is undefined")
    w = len(y) / (k * n_c.astype(np.float64)) - float(const)
    return w.astype(np.float32)


class OversampleSampler:
    """Draw every class up to the majority class's count, without copying any file.

    `indices(epoch)` holds each original index once, plus, for each smaller class, extra indices
    of that class (whole extra rounds of the class, then a random part of one) up to the
    majority count; all shuffled as a function of (seed, epoch). The loader augments every
    draw afresh, so repeated indices give different images.
    """

    def __init__(self, targets, seed=0):
        self.targets = _labels(targets, "OversampleSampler")
        self.seed = int(seed)
        self.classes = np.unique(self.targets)
        self.by_class = [np.flatnonzero(self.targets == c) for c in self.classes]
        self.per_class = max(len(m) for m in self.by_class)

    def __len__(self):
        return self.per_class * len(self.classes)

    def indices(self, epoch):
        """The dataset indices of one epoch, as int64; len(self) of them."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        parts = []
        for members in self.by_class:
            extra = self.per_class - len(members)
            rounds, rest = divmod(extra, len(members))
            parts.append(np.tile(members, 1 + rounds))
            parts.append(rng.choice(members, size=rest, replace=False))
        out = np.concatenate(parts).astype(np.int64)
        return out[rng.permutation(len(out))]

    def counts(self, epoch=0):
        """How many draws of each class index 0..max label an epoch makes."""
        return np.bincount(self.targets[self.indices(epoch)])
