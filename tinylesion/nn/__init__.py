"""Neural-network building blocks: Module, Parameter, the layers, containers, init, functional."""
from . import functional, init
from .containers import ModuleDict, ModuleList, Sequential
from .layers import (BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear,
                     MaxPool2d, ReLU, Sigmoid, Softmax, Tanh, ZeroPad2d)
from .module import Module, Parameter
