"""PyTorch's torch.utils names: tinylesion.utils.data (Dataset, DataLoader, samplers)."""
from . import data

__all__ = ["data"]
