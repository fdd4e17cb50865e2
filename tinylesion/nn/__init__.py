"""Neural-network building blocks: Module, Parameter, the layers, losses, containers, init,
functional, utils."""
from . import functional, init, utils
from .activation import Hardsigmoid, Hardswish, Hardtanh, ReLU6, SiLU
from .containers import ModuleDict, ModuleList, Sequential
from .layers import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout,
                     Dropout2d, Flatten, Identity, LeakyReLU, Linear, LogSoftmax, MaxPool2d, ReLU,
                     Sigmoid, Softmax, Tanh, ZeroPad2d)
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss)
from .module import Module, Parameter
from .gelu import GELU
from .normalization import LayerNorm
from .attention import MultiheadAttention
from .stochastic_depth import StochasticDepth
from .sync_batchnorm import SyncBatchNorm
from .upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d
from .distance import CosineSimilarity, PairwiseDistance
from .elu import CELU, ELU, SELU
from .embedding import Embedding
from .group_norm import GroupNorm
from .prelu import PReLU
from .softplus import LogSigmoid, Mish, Softplus, Softsign
from .more_losses import (CosineEmbeddingLoss, HuberLoss, KLDivLoss, MarginRankingLoss,
                          SmoothL1Loss, TripletMarginLoss)
from .conv_transpose import ConvTranspose1d, ConvTranspose2d
from .layers1d import AvgPool1d, Conv1d, MaxPool1d
from .instance_norm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from .padding import (CircularPad1d, CircularPad2d, ConstantPad1d, ConstantPad2d, ConstantPad3d,
                      ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d,
                      ReplicationPad2d, ReplicationPad3d)
from .pixel_shuffle import PixelShuffle, PixelUnshuffle, Unflatten
from .fold import Fold, Unfold
from .adaptive_max_pool import AdaptiveMaxPool1d, AdaptiveMaxPool2d
from .more_layers import GLU, Bilinear, Dropout1d, Dropout3d, Softmax2d, Softmin, Threshold
from .parameter_containers import ParameterDict, ParameterList
from .likelihood_losses import (GaussianNLLLoss, HingeEmbeddingLoss, MultiLabelSoftMarginLoss,
                                MultiMarginLoss, PoissonNLLLoss, SoftMarginLoss)
