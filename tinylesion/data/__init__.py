"""Data: datasets, splits, class imbalance, transforms and the streaming loader."""
from .imageio import ImageReadError, read_rgb
from .datasets import HAM10000, ImageDataset, ImageFolder, Subset
from .splits import split_by_lesion
from .imbalance import OversampleSampler, class_weights
from .synthetic import default_synthetic_root, make_synthetic
from .transforms import Augment, channel_stats, normalize
from .cache import CachedDataset
from .loader import DeviceLoader, Loader, LoaderError

__all__ = [
    "ImageReadError", "read_rgb", "HAM10000", "ImageDataset", "ImageFolder", "Subset",
    "split_by_lesion", "OversampleSampler", "class_weights", "default_synthetic_root",
    "make_synthetic", "Augment", "channel_stats", "normalize", "CachedDataset", "DeviceLoader",
    "Loader", "LoaderError",
]
