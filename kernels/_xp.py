"""Array-module helpers for kernels/: NumPy or CuPy by array type, argument pairs, the simulator."""
import os

import numpy as np


def is_gpu_array(a):
    """True when `a` is a CuPy array (checked by type, without importing CuPy)."""
    return type(a).__module__.startswith("cupy")


def get_array_module(*arrays):
    """numpy, or cupy when any argument is a CuPy array (CuPy is imported only then)."""
    for a in arrays:
        if is_gpu_array(a):
            import cupy
            return cupy
    return np


IMPLS = ("reference", "cpu", "gpu")


def pick_impl(impl, *arrays):
    """The implementation to run: `impl` if given, else "gpu" for CuPy arrays, else "cpu"."""
    if impl is None:
        return "gpu" if any(is_gpu_array(a) for a in arrays) else "cpu"
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    return impl


def launch(cuda, kernel, blocks, threads, xp, *args):
    """Launch a numba.cuda kernel: NumPy arrays under the simulator; CuPy arrays on CuPy's
    current stream, so that the kernel is ordered with the CuPy work around it.

    NOTE: handed a CuPy array, numba synchronises the stream the array names before every
    launch (its CUDA-array-interface sync), and the host would wait for the GPU at each kernel.
    The arrays are made on this same stream, so the order holds without it: they are wrapped
    with sync=False.
    """
    if xp is np:
        kernel[blocks, threads](*args)
        return
    stream = cuda.external_stream(xp.cuda.get_current_stream().ptr)
    args = [cuda.as_cuda_array(a, sync=False) if hasattr(a, "__cuda_array_interface__") else a
            for a in args]
    kernel[blocks, threads, stream](*args)


def pair(v, name="argument"):
    """Turn an int or a pair into a tuple (h, w) of ints; ValueError naming `name` otherwise."""
    items = (v, v) if not isinstance(v, (tuple, list)) else tuple(v)
    if len(items) != 2 or not all(
            isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in items):
        raise ValueError(f"{name} must be an int or a pair of ints (h, w), got {v!r}")
    return (int(items[0]), int(items[1]))


def cuda_simulator_enabled():
    """True when NUMBA_ENABLE_CUDASIM asks for Numba's CUDA simulator."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")
