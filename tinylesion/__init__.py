"""tinylesion: a from-scratch deep-learning engine for skin-lesion classification."""
from . import backend
from .backend import Device, DeviceError, device, get_array_module, manual_seed
from .tensor import Tensor, is_grad_enabled, no_grad, tensor
from .creation import (arange, empty, empty_like, eye, from_numpy, full, full_like, linspace,
                       ones, ones_like, rand, randint, randn, zeros, zeros_like)
from .functions import (abs, allclose, amax, amin, argmax, argmin, cat, chunk, clamp, clip,
                        clone, concat, concatenate, equal, exp, flatten, is_tensor, log,
                        log_softmax, matmul, max, maximum, mean, min, minimum, numel, permute,
                        relu, reshape, sigmoid, softmax, split, sqrt, squeeze, stack, std, sum,
                        t, tanh, transpose, unsqueeze, var, where)
from . import nn, optim
from .io import load, save
from .rng import Generator
from .torch_functions import (add, all, any, argsort, as_tensor, bmm, ceil, div, eq, flip,
                              floor, gather, ge, get_default_dtype, gt, isfinite, isinf, isnan,
                              le, logical_not, lt, mm, mul, ne, neg, pow, randperm, round,
                              rsqrt, set_default_dtype, set_float32_matmul_precision, sign, sort,
                              square, sub, topk, use_deterministic_algorithms)
from .typed_tensors import (BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor,
                            HalfTensor, IntTensor, LongTensor, ShortTensor)
from .grad_mode import enable_grad, inference_mode, is_inference_mode_enabled, set_grad_enabled
from . import accelerator, amp, backends, cuda, utils
from .amp import autocast, bfloat16
from .compile import channels_last, channels_last_3d, compile, contiguous_format, preserve_format
from kernels import get_num_threads, set_num_threads

__version__ = "0.1.0"
import numpy as _np

# dtype names, as torch.float32 (torch.float, double, long, int and bool are aliases)
float32, float64, int64 = _np.float32, _np.float64, _np.int64
int32, int16, int8, uint8, bool = _np.int32, _np.int16, _np.int8, _np.uint8, _np.bool_
float16 = half = _np.float16
float, double, long, int = float32, float64, int64, int32

# torch's other functions: norms, running sums, indexing, matrices, rearranging, counting and
# einsum (each family in its own module)
from . import linalg
from .linalg import torch_norm as norm
from .reduce_functions import cumprod, cumsum, logsumexp, prod
from .index_functions import index_add, index_select, nonzero, scatter, scatter_add
from .matrix_functions import diag, diagonal, outer, trace, tril, triu
from .rearrange_functions import argwhere, count_nonzero, masked_select, repeat_interleave, roll
from .counting import bincount, unique
from .contraction import einsum

# order statistics, summaries, running and special functions, layout, scatter_reduce and the
# inverse and determinant (each family in its own module)
from .order_statistics import kthvalue, median, mode, nanmedian, nanquantile, quantile
from .summary_functions import (aminmax, bucketize, cdist, histc, searchsorted, std_mean,
                                var_mean)
from .running_functions import cummax, cummin, diff, logcumsumexp
from .elementwise_functions import arctan2, atan2, erf, erfc, erfinv, hypot, isclose, lerp, logit
from .layout_functions import (broadcast_to, kron, meshgrid, moveaxis, movedim, narrow, rot90,
                               swapaxes, swapdims, take_along_dim, tile)
from .scatter_reduce import scatter_reduce
from .linalg_solve import det, inverse
