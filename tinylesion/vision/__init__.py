"""torchvision as tinylesion.vision: transforms, folder datasets and model builders."""
from . import datasets, models, transforms

__all__ = ["datasets", "models", "transforms"]
