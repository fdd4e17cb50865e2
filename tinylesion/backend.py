"""Devices, array modules, random generators and dtypes: the only file that imports CuPy."""
import threading

import numpy as np

DEFAULT_DTYPE = np.float32

_cupy = None           # the cupy module once imported successfully
_cupy_error = None     # why it could not be imported


class DeviceError(RuntimeError):
    """Raised when a device is asked for that this machine cannot provide."""


def _import_cupy():
    """Import CuPy once; remember the reason if it fails."""
    global _cupy, _cupy_error
    if _cupy is None and _cupy_error is None:
        try:
            import cupy
            _cupy = cupy
        except Exception as exc:  # ImportError, or a CUDA library that fails to load
            _cupy_error = exc
    return _cupy


def cupy_module():
    """The cupy module, or a DeviceError saying how to get it or why no device works."""
    cp = _import_cupy()
    if cp is None:
        raise DeviceError(
            "device 'gpu' needs CuPy, which is not installed or failed to import "
            f"({type(_cupy_error).__name__}: {_cupy_error}); "
            "install it with: pip install 'tinylesion[gpu]'")
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:
        raise DeviceError(f"device 'gpu': CuPy is installed but no CUDA device works ({exc})")
    if count == 0:
        raise DeviceError("device 'gpu': CuPy is installed but no CUDA device was found")
    return cp


def gpu_available():
    """True when CuPy imports and at least one CUDA device works."""
    try:
        cupy_module()
        return True
    except DeviceError:
        return False


class Device:
    """A place where arrays live: 'cpu' (NumPy) or 'gpu' (CuPy)."""

    def __init__(self, name):
        self.name = name

    @property
    def xp(self):
        """The array module of this device."""
        return np if self.name == "cpu" else cupy_module()

    @property
    def type(self):
        """PyTorch's name of the device type: 'cpu' or 'cuda'."""
        return "cpu" if self.name == "cpu" else "cuda"

    @property
    def index(self):
        """The device index as PyTorch gives it: None on the CPU, 0 on the GPU."""
        return None if self.name == "cpu" else 0

    def __eq__(self, other):
        other = as_device(other) if isinstance(other, (str, Device)) else other
        return isinstance(other, Device) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"device({self.name!r})"

    def __str__(self):
        return self.name


CPU = Device("cpu")
_GPU = Device("gpu")


def as_device(device):
    """Turn 'cpu', 'gpu', 'cuda', 'auto' or a Device into a Device (checking the GPU works)."""
    if isinstance(device, Device):
        name = device.name
    elif isinstance(device, str):
        name = device.lower().split(":")[0]
    else:
        raise DeviceError(f"unknown device {device!r}: use 'cpu', 'gpu' or 'auto'")
    if name == "cuda":
        name = "gpu"
    if name == "auto":
        name = "gpu" if gpu_available() else "cpu"
    if name == "cpu":
        return CPU
    if name == "gpu":
        cupy_module()
        return _GPU
    raise DeviceError(f"unknown device {device!r}: use 'cpu', 'gpu' or 'auto'")


def device(type, index=None):
    """torch.device: 'cpu', 'cuda', 'cuda:0', 'gpu' (or a Device) as a Device, checked only
    when something is moved there; index 0 is the only GPU index."""
    if isinstance(type, Device):
        return type
    if not isinstance(type, str):
        raise TypeError(f"device(): expected a device name such as 'cpu' or 'cuda', "
                        f"got {type!r}")
    name, _, suffix = type.lower().partition(":")
    if suffix:
        if index is not None:
            raise ValueError(f"device(): index given both in {type!r} and as index={index}")
        if not suffix.isdigit():
            raise ValueError(f"device(): invalid device string {type!r}")
        index = int(suffix)
    if name == "cpu":
        return CPU
    if name in ("cuda", "gpu"):
        if index not in (None, 0):
            raise DeviceError(f"device {type!r}: tinylesion uses one GPU, index 0")
        return _GPU
    raise DeviceError(f"unknown device {type!r}: tinylesion runs on 'cpu' or 'cuda' (CuPy)")


def gpu_count():
    """The number of CUDA devices CuPy sees (0 without CuPy or a working device)."""
    return cupy_module().cuda.runtime.getDeviceCount() if gpu_available() else 0


def synchronize():
    """Wait for the GPU's queued work to finish (nothing to wait for without a GPU)."""
    if _cupy is not None and gpu_available():
        _cupy.cuda.Device().synchronize()


def release_cached_gpu_memory():
    """Hand the GPU memory CuPy's pools keep for reuse back to the driver."""
    if _cupy is not None and gpu_available():
        _cupy.get_default_memory_pool().free_all_blocks()
        _cupy.get_default_pinned_memory_pool().free_all_blocks()


def gpu_name():
    """The GPU's name (a DeviceError without one)."""
    props = cupy_module().cuda.runtime.getDeviceProperties(0)
    name = props.get("name", b"GPU")
    return name.decode() if isinstance(name, bytes) else str(name)


def erf(x):
    """The error function of a NumPy or CuPy array (SciPy's or CuPy's)."""
    if is_cupy_array(x):
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(x)
    from scipy import special
    return special.erf(x)


def special_function(name, x):
    """scipy.special's `name` (erfc, erfinv, ...) of a NumPy array, or cupyx.scipy.special's
    of a CuPy one."""
    if is_cupy_array(x):
        import cupyx.scipy.special
        return getattr(cupyx.scipy.special, name)(x)
    from scipy import special
    return getattr(special, name)(x)


def is_cupy_array(x):
    """True for a CuPy array, without importing CuPy when it is not already loaded."""
    return _cupy is not None and isinstance(x, _cupy.ndarray)


def get_array_module(*arrays):
    """NumPy, or CuPy when any argument is a CuPy array (DeZero's idiom)."""
    for a in arrays:
        if is_cupy_array(a):
            return _cupy
    return np


def device_of(array):
    """The Device an array lives on."""
    return _GPU if is_cupy_array(array) else CPU


def to_device(array, device):
    """Return `array` on `device`, copying only when it is elsewhere."""
    device = as_device(device)
    if device.name == "cpu":
        return _cupy.asnumpy(array) if is_cupy_array(array) else np.asarray(array)
    cp = cupy_module()
    return array if isinstance(array, cp.ndarray) else cp.asarray(array)


def is_cupy_error(exc):
    """True for an exception raised by CuPy or CUDA."""
    return type(exc).__module__.split(".")[0] in ("cupy", "cupy_backends", "cupyx")


def is_out_of_memory(exc):
    """True for host MemoryError and CuPy's OutOfMemoryError (and cuBLAS/cuDNN alloc failures)."""
    if isinstance(exc, MemoryError):
        return True
    return is_cupy_error(exc) and ("OutOfMemory" in type(exc).__name__
                                   or "ALLOC_FAILED" in str(exc))


def scatter_add(target, index, values):
    """target[index] += values with repeated indices accumulating (numpy.add.at)."""
    if is_cupy_array(target):
        import cupyx  # CuPy's add.at
        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)


def to_numpy(array):
    """A NumPy copy (or view) of any backend array."""
    return _cupy.asnumpy(array) if is_cupy_array(array) else np.asarray(array)


# ---------------------------------------------------------------------------------------------
# Type promotion: PyTorch's rules for bool, integer and floating-point operands.
def _category(dtype):
    """0 for bool, 1 for integers, 2 for floating point."""
    return 2 if dtype.kind == "f" else 0 if dtype.kind == "b" else 1


def promote_types(a, b):
    """torch.promote_types: an integer with a float gives the float (int64 + float32 is
    float32, where NumPy says float64); otherwise NumPy's rule."""
    a, b = np.dtype(a), np.dtype(b)
    if a == b:
        return a
    fa, fb = a.kind == "f", b.kind == "f"
    if fa != fb:
        return a if fa else b
    return np.promote_types(a, b)


def result_type(a, b):
    """The dtype of an element-wise op on arrays `a` and `b`, as PyTorch chooses it.

    NOTE: a 0-d operand (a one-number tensor) changes the dtype only when it is of a higher
    category (bool < integer < float) than the other: float32 × 0-d float64 stays float32.
    """
    if (a.ndim == 0) == (b.ndim == 0):
        return promote_types(a.dtype, b.dtype)
    high, low = (a.dtype, b.dtype) if a.ndim else (b.dtype, a.dtype)
    return promote_types(high, low) if _category(low) > _category(high) else high


def constant_result_type(dtype, value):
    """The dtype of an op between an array of `dtype` and a constant (a Python or NumPy number,
    or an array-like): the array's, unless the constant is of a higher category; a float
    constant then gives the default dtype, an integer one int64 (PyTorch's wrapped numbers)."""
    dtype = np.dtype(dtype)
    value_dtype = getattr(value, "dtype", None)
    value_dtype = np.dtype(value_dtype if value_dtype is not None else np.asarray(value).dtype)
    if value_dtype.kind not in "biuf":
        raise TypeError(f"cannot combine a tensor of {dtype} with a {type(value).__name__} "
                        f"(dtype {value_dtype}): use numbers or numeric arrays")
    kind = _category(value_dtype)
    if kind <= _category(dtype):
        return dtype
    return promote_types(dtype, DEFAULT_DTYPE if kind == 2 else np.int64)


# ---------------------------------------------------------------------------------------------
# Random generators: one per device, all seeded by manual_seed.
_seed = None
_generators = {}
# NOTE: a data-loading thread sets its own CPU generator while it loads one sample, drawn from
# (seed, pass, position), so random transforms inside a Dataset give the same batches whatever
# the number of threads (see tinylesion.utils.data).
_thread = threading.local()


def manual_seed(seed):
    """Seed every device's generator (as torch.manual_seed does)."""
    global _seed
    _seed = int(seed)
    _generators.clear()


def generator(device=CPU):
    """The random generator of a device (numpy.random.Generator or cupy.random.Generator).

    CuPy's generator states cannot be saved, so the GPU gets a generator seeded afresh from
    the CPU generator at each call: the CPU state alone (saved in checkpoints) then fixes
    every random draw on both devices, and a resumed run repeats an uninterrupted one.
    """
    device = as_device(device)
    local = getattr(_thread, "generator", None)
    if local is not None:
        return local if device.name == "cpu" else \
            cupy_module().random.default_rng(int(local.integers(2**63)))
    if "cpu" not in _generators:
        seed = _seed if _seed is not None else np.random.SeedSequence().entropy % (2**63)
        _generators["cpu"] = np.random.default_rng(seed)
    if device.name == "cpu":
        return _generators["cpu"]
    return cupy_module().random.default_rng(int(_generators["cpu"].integers(2**63)))


def get_rng_state():
    """The state of the CPU generator (for checkpoints), as a JSON-able dict."""
    return generator(CPU).bit_generator.state


def set_rng_state(state):
    """Restore the CPU generator's state saved by get_rng_state."""
    generator(CPU).bit_generator.state = state


class thread_generator:
    """Within this block, the calling thread's CPU draws come from numpy Generator `rng`."""

    def __init__(self, rng):
        self.rng = rng

    def __enter__(self):
        self.previous = getattr(_thread, "generator", None)
        _thread.generator = self.rng
        return self.rng

    def __exit__(self, *exc):
        _thread.generator = self.previous
