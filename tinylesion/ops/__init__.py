"""The differentiable ops: one Function subclass per op, forward and backward side by side."""
from .activation import (Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSoftmax, ReLU, Sigmoid,
                         SiLU, Softmax, Tanh)
from .arithmetic import (Abs, Add, Cast, Clone, Div, Exp, FloorDiv, Log, MatMul, Mul, Neg, Pow,
                         PowTensor, Remainder, Sqrt, Sub, ToDevice)
from .join import Cat, Stack
from .layers import (BatchNormTrain, ConstantPad, Conv2d, Conv2dBatchNorm, Conv2dReluMaxPool,
                     Dropout, Linear, MaxPool2d, ReluMaxPool)
from .loss import (L1, MSE, NLL, BinaryCrossEntropy, BinaryCrossEntropyWithLogits,
                   CrossEntropy)
from .pooling import AdaptiveAvgPool2d, AvgPool2d
from .select import Clamp, Maximum, Minimum, Where
from .shape import (Expand, GetItem, Max, Mean, Min, Pad2d, Repeat, Reshape, SetItem, Std, Sum,
                    TakeAlong, Transpose, Var)
from .stochastic_depth import stochastic_depth
from ._util import sum_to
from .einsum import Einsum
from .elu import ELU, PReLU
from .embedding import Embedding
from .norm import VectorNorm
from .scan import CumProd, CumSum, Prod
from .softplus import LogSigmoid, Softplus
from .scatter import IndexAdd, IndexSelect, Scatter, ScatterAdd
from .conv_transpose import ConvTranspose2d


def __getattr__(name):
    # NOTE: the StochasticDepth module lives in tinylesion.nn (a Module), which imports these
    # ops; it is offered here too, as torchvision.ops offers it, imported on first use.
    if name == "StochasticDepth":
        from ..nn.stochastic_depth import StochasticDepth
        return StochasticDepth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
from .unfold import Fold, Unfold
from .adaptive_max_pool import AdaptiveMaxPool2d
from .special import Atan2, Erf, Erfc, Erfinv, Hypot
from .linalg_ops import Det, Inverse, Solve
