"""Optimizers (SGD, Adam, AdamW, NAdam, RMSprop) and learning-rate schedules, with PyTorch's formulas."""
from .algorithms import SGD, Adam, AdamW, NAdam, RMSprop
from .lr_scheduler import CosineAnnealingLR, LRScheduler, ReduceLROnPlateau, StepLR
from .optimizer import Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "NAdam", "RMSprop", "LRScheduler", "StepLR",
           "CosineAnnealingLR", "ReduceLROnPlateau"]
