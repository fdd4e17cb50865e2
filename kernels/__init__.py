"""Array kernels (array in, array out): convolution, pooling, batch norm, Adam, threads."""
from ._xp import cuda_simulator_enabled, get_array_module, is_gpu_array, pair
from .conv import conv2d_backward, conv2d_forward
from .im2col import col2im, im2col

# NOTE: the sibling families below are being written alongside; a missing one must not break
# `import kernels` for the others.
try:
    from .pool import maxpool2d_backward, maxpool2d_forward
except ImportError:
    pass
try:
    from .batchnorm import batchnorm_backward, batchnorm_forward
except ImportError:
    pass
try:
    from .adam import adam_step
except ImportError:
    pass
try:
    from .threads import get_num_threads, set_num_threads
except ImportError:
    pass
