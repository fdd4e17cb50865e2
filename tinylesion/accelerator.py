"""torch.accelerator: whether a GPU is there, and its device."""
from . import backend


def is_available():
    """True when a CUDA device works through CuPy."""
    return backend.gpu_available()


def current_accelerator(check_available=False):
    """The GPU Device ('cuda' type), or None when there is none (as torch's)."""
    return backend.device("cuda") if backend.gpu_available() else None


def device_count():
    """How many accelerators CuPy sees."""
    return backend.gpu_count()


def synchronize(device=None):
    """Wait until the GPU has finished its queued work."""
    backend.synchronize()
