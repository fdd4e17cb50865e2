"""torch.cuda's everyday names: is_available, device_count, seeding and synchronisation."""
import numpy as np

from .. import backend


def is_available():
    """True when CuPy imports and a CUDA device works."""
    return backend.gpu_available()


def device_count():
    """How many CUDA devices CuPy sees (tinylesion computes on the first)."""
    return backend.gpu_count()


def current_device():
    """The index of the GPU in use (always 0); a DeviceError without one."""
    backend.cupy_module()
    return 0


def get_device_name(device=None):
    """The GPU's name; a DeviceError without one."""
    return backend.gpu_name()


def _check_seed(seed, name):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"tl.cuda.{name}: seed must be an int, not {seed!r}")


def manual_seed(seed):
    """Accepted for PyTorch scripts; changes nothing. GPU draws are seeded from the CPU
    generator, so tl.manual_seed alone fixes them (and this leaves the CPU draws as they are,
    as torch.cuda.manual_seed does)."""
    _check_seed(seed, "manual_seed")


def manual_seed_all(seed):
    """As manual_seed (one generator serves every device)."""
    _check_seed(seed, "manual_seed_all")


def synchronize(device=None):
    """Wait until the GPU has finished its queued work (returns at once without a GPU)."""
    backend.synchronize()


def empty_cache():
    """Give the GPU memory CuPy keeps for reuse back to the driver (nothing without a GPU)."""
    backend.release_cached_gpu_memory()


from . import amp  # noqa: E402  (torch.cuda.amp: autocast and GradScaler)
