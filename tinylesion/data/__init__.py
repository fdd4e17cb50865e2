"""Data: datasets, splits, class imbalance, transforms and the streaming loader."""
from .imageio import ImageReadError, read_rgb
from .datasets import HAM10000, ImageDataset, ImageFolder, Subset
from .splits import split_by_lesion
from .imbalance import OversampleSampler, class_weights
from .synthetic import default_synthetic_root, make_synthetic


def _optional(module, names):
    """Import names from a sibling module that may not be written yet."""
    try:
        mod = __import__(f"{__name__}.{module}", fromlist=names)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{module}":
            raise
        return
    globals().update({name: getattr(mod, name) for name in names if hasattr(mod, name)})


_optional("loader", ["Loader"])
_optional("transforms", ["Augment", "channel_stats", "normalize"])
_optional("cache", ["CachedDataset"])
