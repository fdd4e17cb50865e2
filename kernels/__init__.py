"""Array kernels (array in, array out): convolution, pooling, batch norm, ReLU, Adam, threads."""
from .cache_stamp import install as _install_cache_stamp

_install_cache_stamp()   # before any kernel is decorated: see kernels/cache_stamp.py
# NOTE: blas loads SciPy's BLAS (the one the conv kernels call from Numba); it comes first so
# that the thread setting, applied when .threads is first imported, covers that library too.
from . import blas  # noqa: F401  (isort: skip)
from ._xp import cuda_simulator_enabled, get_array_module, is_gpu_array, pair
from .adam import adam_step
from .avgpool import avgpool2d_backward, avgpool2d_forward
from .batchnorm import batchnorm_backward, batchnorm_backward_channel_sums, batchnorm_forward
from .conv import conv2d_backward, conv2d_backward_relu_input, conv2d_forward
from .depthwise import depthwise_conv2d_backward, depthwise_conv2d_forward
from .im2col import col2im, im2col
from .threaded_matmul import matmul
from .pool import maxpool2d_backward, maxpool2d_forward
from .pool_relu import maxpool2d_relu_backward, relu_in_place_mask, relu_mask
from .relu import relu_backward, relu_backward_channel_sums, relu_forward
from .threads import get_num_threads, set_num_threads
