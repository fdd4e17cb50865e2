"""The differentiable ops: one Function subclass per op, forward and backward side by side."""
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .arithmetic import (Abs, Add, Cast, Div, Exp, Log, MatMul, Mul, Neg, Pow, PowTensor, Sqrt, Sub,
                         ToDevice)
from .layers import BatchNormTrain, ConstantPad, Conv2d, Dropout, Linear, MaxPool2d
from .loss import (L1, MSE, NLL, BinaryCrossEntropy, BinaryCrossEntropyWithLogits,
                   CrossEntropy)
from .pooling import AdaptiveAvgPool2d, AvgPool2d
from .shape import GetItem, Max, Mean, Pad2d, Reshape, Sum, TakeAlong, Transpose
from ._util import sum_to
