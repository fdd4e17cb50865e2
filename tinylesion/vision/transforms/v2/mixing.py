"""torchvision.transforms.v2's MixUp and CutMix: batch transforms mixing each image (and its
label, one-hot) with the previous one in the batch (rolled by one), as
`images, labels = mix(images, labels)` after the DataLoader or in its collate_fn."""
import math
import numbers

import numpy as np

from .... import backend
from ....tensor import Tensor
from .. import transforms as _v1
from ..functional import _wrap


def _checked(images, labels, num_classes, name):
    """The arrays of a batch: images (N, C, H, W), labels (N,) indices or (N, K) scores."""
    if not isinstance(images, Tensor) or not isinstance(labels, Tensor):
        raise TypeError(f"{name}: expected tensors (images, labels), got "
                        f"({type(images).__name__}, {type(labels).__name__})")
    x, y = images.array, labels.array
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a batch of images (N, C, H, W), got shape "
                         f"{tuple(x.shape)}")
    if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: labels should have shape ({x.shape[0]},) or "
                         f"({x.shape[0]}, num_classes), got {tuple(y.shape)}")
    if y.ndim == 1 and num_classes is None:
        raise ValueError(f"{name}: num_classes must be given for index labels (N,)")
    if y.ndim == 2 and num_classes is not None and y.shape[1] != num_classes:
        raise ValueError(f"{name}: labels have {y.shape[1]} scores but num_classes is "
                         f"{num_classes}")
    return x, y


def _mixed_labels(y, num_classes, lam):
    xp = backend.get_array_module(y)
    if y.ndim == 1:
        y = (y[:, None] == xp.arange(num_classes)[None, :]).astype(np.float32)
    elif y.dtype.kind != "f":
        y = y.astype(np.float32)
    return xp.roll(y, 1, axis=0) * y.dtype.type(1.0 - lam) + y * y.dtype.type(lam)


def mixup(images, labels, lam, num_classes=None):
    """lam * batch + (1 - lam) * batch rolled by one, for float images and one-hot labels."""
    x, y = _checked(images, labels, num_classes, "mixup")
    if x.dtype.kind != "f":
        raise TypeError(f"mixup: images should be floats, got {x.dtype}; put "
                        "ToDtype(tl.float32, scale=True) before MixUp")
    xp = backend.get_array_module(x)
    mixed = xp.roll(x, 1, axis=0) * x.dtype.type(1.0 - lam) + x * x.dtype.type(lam)
    return _wrap(mixed), _wrap(_mixed_labels(y, num_classes, lam))


def cutmix(images, labels, box, num_classes=None):
    """Paste the box (x1, y1, x2, y2) of the batch rolled by one into each image; labels
    mixed by the area kept."""
    x, y = _checked(images, labels, num_classes, "cutmix")
    x1, y1, x2, y2 = box
    h, w = x.shape[-2:]
    xp = backend.get_array_module(x)
    out = x.copy()
    out[..., y1:y2, x1:x2] = xp.roll(x, 1, axis=0)[..., y1:y2, x1:x2]
    kept = 1.0 - (x2 - x1) * (y2 - y1) / (w * h)
    return _wrap(out), _wrap(_mixed_labels(y, num_classes, kept))


class _Mix:
    def __init__(self, *, alpha=1.0, num_classes=None, labels_getter="default"):
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or alpha <= 0:
            raise ValueError(f"alpha should be a positive number, got {alpha!r}")
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(
                num_classes, numbers.Integral) or num_classes < 1):
            raise ValueError(f"num_classes should be a positive int or None, got "
                             f"{num_classes!r}")
        if labels_getter != "default":
            raise ValueError("labels_getter: only 'default' (the call's second item, as in "
                             "mix(images, labels)) is supported")
        self.alpha, self.num_classes = float(alpha), num_classes

    def __call__(self, *inputs):
        batch = inputs if len(inputs) > 1 else inputs[0]
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError(f"{type(self).__name__} is called as mix(images, labels) on a "
                             "batch")
        return self._mix(*batch)

    def __repr__(self):
        return f"{type(self).__name__}(alpha={self.alpha}, num_classes={self.num_classes})"


class MixUp(_Mix):
    """Blend the batch with itself rolled by one, weight lam ~ Beta(alpha, alpha)."""

    def _mix(self, images, labels):
        lam = float(_v1._rng().beta(self.alpha, self.alpha))
        return mixup(images, labels, lam, self.num_classes)


class CutMix(_Mix):
    """Paste a box of the batch rolled by one: a centre drawn uniformly, sides sqrt(1 - lam)
    times the image's (clipped at the borders), lam ~ Beta(alpha, alpha)."""

    @staticmethod
    def get_params(height, width, lam):
        """The box (x1, y1, x2, y2) for a mixing weight lam."""
        rng = _v1._rng()
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        half = 0.5 * math.sqrt(1.0 - lam)
        half_w, half_h = int(half * width), int(half * height)
        return (max(cx - half_w, 0), max(cy - half_h, 0), min(cx + half_w, width),
                min(cy + half_h, height))

    def _mix(self, images, labels):
        if not isinstance(images, Tensor) or images.ndim != 4:
            return cutmix(images, labels, (0, 0, 0, 0), self.num_classes)   # its error
        lam = float(_v1._rng().beta(self.alpha, self.alpha))
        box = self.get_params(images.shape[-2], images.shape[-1], lam)
        return cutmix(images, labels, box, self.num_classes)
