"""torch.utils.data as tinylesion: Dataset, DataLoader, samplers, random_split, collation."""
from .dataset import (ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset,
                      random_split)
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                      SubsetRandomSampler, WeightedRandomSampler)
from .collate import default_collate, default_convert
from .dataloader import DataLoader, WorkerInfo, get_worker_info

__all__ = [
    "ConcatDataset", "Dataset", "IterableDataset", "Subset", "TensorDataset", "random_split",
    "BatchSampler", "RandomSampler", "Sampler", "SequentialSampler", "SubsetRandomSampler",
    "WeightedRandomSampler", "default_collate", "default_convert", "DataLoader", "WorkerInfo",
    "get_worker_info",
]
