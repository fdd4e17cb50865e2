"""tinylesion: a from-scratch deep-learning engine for skin-lesion classification."""
from . import backend
from .backend import Device, DeviceError, get_array_module, manual_seed
from .tensor import Tensor, is_grad_enabled, no_grad, tensor
from . import nn, optim
from .io import load, save

__version__ = "0.1.0"
import numpy as _np

float32, float64, int64 = _np.float32, _np.float64, _np.int64  # dtype names, as torch.float32
