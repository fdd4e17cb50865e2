"""Data: datasets, splits, class imbalance, transforms and the streaming loader."""
from .imageio import ImageReadError, read_rgb
from .datasets import HAM10000, ImageDataset, ImageFolder, Subset
from .splits import split_by_lesion
from .imbalance import OversampleSampler, class_weights
from .transforms import IMAGENET_MEAN, IMAGENET_STD, Augment, channel_stats, normalize
from .cache import CachedDataset
from .loader import DeviceLoader, Loader, LoaderError

__all__ = [
    "ImageReadError", "read_rgb", "HAM10000", "ImageDataset", "ImageFolder", "Subset",
    "split_by_lesion", "OversampleSampler", "class_weights", "default_synthetic_root",
    "make_synthetic", "Augment", "channel_stats", "normalize", "IMAGENET_MEAN", "IMAGENET_STD",
    "CachedDataset", "DeviceLoader", "Loader", "LoaderError",
]


def __getattr__(name):
    # NOTE: the synthetic module is imported on first use, not here, so that
    # `python -m tinylesion.data.synthetic` runs it once as __main__ (importing it with the
    # package first makes runpy warn that it is already in sys.modules).
    if name in ("make_synthetic", "default_synthetic_root"):
        from . import synthetic
        return getattr(synthetic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
