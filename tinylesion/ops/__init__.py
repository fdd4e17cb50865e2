"""The differentiable ops: one Function subclass per op, forward and backward side by side."""
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .arithmetic import (Abs, Add, Cast, Clone, Div, Exp, FloorDiv, Log, MatMul, Mul, Neg, Pow,
                         PowTensor, Remainder, Sqrt, Sub, ToDevice)
from .join import Cat, Stack
from .layers import BatchNormTrain, ConstantPad, Conv2d, Dropout, Linear, MaxPool2d
from .loss import (L1, MSE, NLL, BinaryCrossEntropy, BinaryCrossEntropyWithLogits,
                   CrossEntropy)
from .pooling import AdaptiveAvgPool2d, AvgPool2d
from .select import Clamp, Maximum, Minimum, Where
from .shape import (Expand, GetItem, Max, Mean, Min, Pad2d, Repeat, Reshape, SetItem, Std, Sum,
                    TakeAlong, Transpose, Var)
from ._util import sum_to
