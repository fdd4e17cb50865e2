"""One thread count for Numba and the BLAS (TINYLESION_NUM_THREADS), thread-safe kernels, and
the malloc policy the engine applies by itself (TINYLESION_KEEP_FREED_MEMORY)."""
import os
import threading

import numba
import numpy as np
from numba.core import config

ENV = "TINYLESION_NUM_THREADS"

# NOTE: Numba's threading layers: 'omp' and 'tbb' may be entered from several Python threads at
# once; 'workqueue' aborts the whole process when two threads run parallel kernels together.
# So we ask for a thread-safe layer when one loads, and otherwise serialise the kernels with a
# process-wide lock (see `guarded`). GNU OpenMP's workers spin while idle by default, which
# costs far more than it saves on a busy machine (a 1e6-float Adam step took 8-12 ms instead
# of 0.35 ms on 2 cores shared with other processes): they are asked to sleep instead
# (OMP_WAIT_POLICY=PASSIVE, unless the user set it). GNU OpenMP is not fork-safe: a child
# forked after a parallel kernel ran must not run one (Numba stops it with a message); use
# the 'spawn' start method, or NUMBA_THREADING_LAYER=workqueue, with multiprocessing.
# NOTE: a worker spins SPIN_COUNT times (about 0.1 ms) before it sleeps, where the default
# spins about 3 ms and PASSIVE alone not at all: a batch-1 forward pass of resnet50 is ~200
# short parallel regions, and waking a sleeping thread for each took it from 44 to 52 ms on 2
# threads; 0.1 ms is too short to matter to other processes. Neither is set when the user set
# OMP_WAIT_POLICY or GOMP_SPINCOUNT.
SPIN_ENV, SPIN_COUNT = "GOMP_SPINCOUNT", 10_000

_lock = None          # an RLock when the layer is not thread-safe
_num_threads = None   # the setting, as given
_version = 0          # bumped by set_num_threads, so that other threads pick it up
_blas_limiter = None  # threadpoolctl's limiter, kept alive
_kept_bytes = 0       # keep_freed_memory's setting so far
_kept_lock = threading.Lock()
KEEP_ENV = "TINYLESION_KEEP_FREED_MEMORY"
# NOTE: the engine applies keep_freed_memory() by itself the first time a convolution or linear
# op on the CPU has an input or output of AUTO_MIN_BYTES or more (`reuse_memory_for`). Those
# ops are where every model's large arrays begin, in training and inference alike (a backward
# or an optimizer step would leave predict and the server out), and the check costs one global
# read per call. Below 4 MB (a tiny model, the tests' 24x16 images) glibc's own defaults stay:
# such a process gains nothing and keeps no more memory than before; one batch of a seed model
# at its datasets' sizes passes the threshold at its first layer. The policy keeps at most the
# process's peak: malloc reuses freed blocks before it asks the system for more (a hand-written
# padua4 loop: RSS flat over 60 steps, at the peak a process without the policy reaches).
# Inference gains where arrays pass glibc's 32 MB ceiling for its own adaptive threshold: 96
# images through melanoma_cnn in python -m tinylesion.predict fault in half the pages (34,000
# instead of 68,000); padua4's batches of 16 stay below it and change little either way.
AUTO_MIN_BYTES = 4 << 20
_auto_pending = True  # False once the first large array was seen (applied, or opted out)


class _PerThread(threading.local):
    version = -1


_local = _PerThread()


def _available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _parse(value, name):
    """A positive int from an int or a string; ValueError naming `name` otherwise."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name} must be a positive integer (a number of threads), "
                         f"got {value!r}")
    return int(text)


def _layer_loads(name):
    """True when Numba's `name` threading layer ('omp' or 'tbb') can be loaded."""
    try:
        if name == "tbb":
            from numba.np.ufunc.parallel import _check_tbb_version_compatible
            _check_tbb_version_compatible()
            from numba.np.ufunc import tbbpool  # noqa: F401
        else:
            from numba.np.ufunc import omppool  # noqa: F401
        return True
    except Exception:  # ImportError, or a library that fails to load
        return False


def _start_numba_threads():
    """Choose the threading layer (unless the user did) and start Numba's threads."""
    global _lock
    from numba.np.ufunc import parallel
    if not parallel._is_initialized:
        policy_was_set = "OMP_WAIT_POLICY" in os.environ or SPIN_ENV in os.environ
        if not policy_was_set:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read once, when libgomp loads
            os.environ[SPIN_ENV] = str(SPIN_COUNT)
        try:
            if str(config.THREADING_LAYER).lower() == "default" and (
                    _layer_loads("tbb") or _layer_loads("omp")):
                config.THREADING_LAYER = "threadsafe"
            parallel._launch_threads()
        finally:
            if not policy_was_set:
                del os.environ["OMP_WAIT_POLICY"], os.environ[SPIN_ENV]
    if numba.threading_layer() == "workqueue" and _lock is None:
        _lock = threading.RLock()


def threading_layer():
    """The Numba threading layer in use ('omp', 'tbb' or 'workqueue')."""
    return numba.threading_layer()


def set_num_threads(n):
    """Use n threads in Numba's kernels and in the BLAS (threadpoolctl).

    Numba cannot use more threads than its pool (NUMBA_NUM_THREADS, all cores by default):
    it gets min(n, pool) while the BLAS gets n.
    """
    global _num_threads, _version, _blas_limiter
    n = _parse(n, "number of threads")
    from threadpoolctl import threadpool_limits
    if _blas_limiter is not None:
        _blas_limiter.restore_original_limits()
    _blas_limiter = threadpool_limits(limits=n, user_api="blas")
    _num_threads = n
    _version += 1
    _apply_here()


def get_num_threads():
    """The thread count set by TINYLESION_NUM_THREADS or set_num_threads."""
    return _num_threads


def _apply_here():
    """Apply the setting to the calling thread (Numba's thread count is per thread)."""
    if _local.version != _version:
        numba.set_num_threads(min(_num_threads, config.NUMBA_NUM_THREADS))
        _local.version = _version


def guarded(fn):
    """Wrap a function that runs parallel Numba kernels: it honours the thread setting from
    any Python thread, and runs under a process-wide lock when the layer is not thread-safe."""
    def run(*args, **kwargs):
        if _local.version != _version:
            _apply_here()
        if _lock is None:
            return fn(*args, **kwargs)
        with _lock:
            return fn(*args, **kwargs)

    run.__name__, run.__qualname__ = fn.__name__, fn.__qualname__
    run.__doc__, run.__wrapped__ = fn.__doc__, fn
    return run


def keep_freed_memory(max_bytes=1 << 30):
    """Ask glibc's malloc to keep freed memory for reuse: arrays up to max_bytes come from its
    heap instead of fresh mmap'ed pages, and free() no longer hands the pages back.

    Every array over 32 MB is otherwise new memory whose pages fault in on first touch, and
    glibc hands freed heap memory back to the system whenever 128 kB or more lie free at the
    top, so even small arrays often land on fresh pages. On a 2-core virtual machine, for
    33 MB arrays: NumPy's x + x 5.6 -> 2.2 ms, PyTorch's relu 18.4 -> 3.1 ms, batch-norm
    forward 8.0 -> 5.4 ms; the loader's threads, 5.4 page faults per image -> 0. The price:
    the process keeps up to its peak memory (1 GB for the engine's ops and fit(), 32 MB for
    the Loader). Only ever raises the setting: a smaller max_bytes than an earlier call's
    changes nothing. Returns False where the C library is not glibc (nothing changed).
    Not applied on import. The engine calls it by itself (`apply_memory_policy`) unless
    TINYLESION_KEEP_FREED_MEMORY=0; a call of your own always applies it.
    """
    global _kept_bytes
    import ctypes
    n = int(min(max_bytes, (1 << 30)))
    with _kept_lock:
        if n <= _kept_bytes:
            return True
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError, TypeError):   # not glibc (Windows: no CDLL(None))
            return False
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        ok = bool(mallopt(M_MMAP_THRESHOLD, n)) and bool(mallopt(M_TRIM_THRESHOLD, n))
        if ok:
            _kept_bytes = n
        return ok


def kept_freed_bytes():
    """The largest block malloc is asked to keep (keep_freed_memory's setting); 0 when glibc's
    defaults are in place."""
    return _kept_bytes


def memory_policy_enabled():
    """False when TINYLESION_KEEP_FREED_MEMORY=0: the engine then leaves malloc's settings as
    they are (read at each call, so a process may set it before it trains)."""
    return os.environ.get(KEEP_ENV, "1").strip() != "0"


def apply_memory_policy(max_bytes=1 << 30):
    """keep_freed_memory(max_bytes) unless TINYLESION_KEEP_FREED_MEMORY=0: what fit(), the
    Loader and the first large op call. True when applied."""
    return memory_policy_enabled() and keep_freed_memory(max_bytes)


def reuse_memory_for(*arrays):
    """The engine's trigger: the first time one of `arrays` is a NumPy array of AUTO_MIN_BYTES
    or more, apply the memory policy (once per process). Called by the CPU's large ops."""
    if _auto_pending:
        _first_large_array(arrays)


def _first_large_array(arrays):
    global _auto_pending
    if any(isinstance(a, np.ndarray) and a.nbytes >= AUTO_MIN_BYTES for a in arrays):
        _auto_pending = False
        apply_memory_policy()


def _init():
    _start_numba_threads()
    value = os.environ.get(ENV, "").strip()
    set_num_threads(_available_cores() if value == "" else _parse(value, ENV))


_init()
