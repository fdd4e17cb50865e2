"""Neural-network building blocks: Module, Parameter, the layers, losses, containers, init,
functional, utils."""
from . import functional, init, utils
from .containers import ModuleDict, ModuleList, Sequential
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout,
                     Dropout2d, Flatten, Identity, LeakyReLU, Linear, LogSoftmax, MaxPool2d, ReLU,
                     Sigmoid, Softmax, Tanh, ZeroPad2d)
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss)
from .module import Module, Parameter
from .sync_batchnorm import SyncBatchNorm
