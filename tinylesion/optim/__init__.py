"""Optimizers (SGD, Adam, AdamW, NAdam, RMSprop, Adadelta, Adagrad) and learning-rate
schedules, with PyTorch's formulas."""
from .algorithms import SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, RMSprop
from .lr_scheduler import (ConstantLR, CosineAnnealingLR, CosineAnnealingWarmRestarts,
                           ExponentialLR, LambdaLR, LinearLR, LRScheduler, MultiplicativeLR,
                           MultiStepLR, OneCycleLR, ReduceLROnPlateau, SequentialLR, StepLR)
from .optimizer import Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "NAdam", "RMSprop", "Adadelta", "Adagrad", "LRScheduler", "StepLR",
           "MultiStepLR", "ExponentialLR", "LambdaLR", "MultiplicativeLR", "ConstantLR",
           "LinearLR", "SequentialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
           "OneCycleLR", "ReduceLROnPlateau"]
