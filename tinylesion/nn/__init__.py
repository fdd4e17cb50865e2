"""Neural-network building blocks: Module, Parameter, the layers, init and functional."""
from . import functional, init
from .layers import (BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear,
                     MaxPool2d, ReLU, Sequential, Sigmoid, Softmax, Tanh, ZeroPad2d)
from .module import Module, Parameter
