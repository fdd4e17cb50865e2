"""Data parallelism over MPI processes (mpi4py), NCCL between GPUs: ranks, broadcast, averaging.

Launch with the MPI launcher (`mpirun -n N python script.py`), then in every process:

    world = distributed.init(device)          # rank, size, local rank; GPU = local rank
    distributed.broadcast_parameters(model.state_dict())   # rank 0's initial weights
    optimizer = distributed.DistributedOptimizer(optimizer)  # step() averages the gradients
    loader = Loader(ds, batch_size=B, sampler=distributed.shard(...))  # see data.sharding

and the hand-written loop stays the same loop. Gradients travel as flat, bucketed buffers
reduced in place: NumPy buffers through MPI (never pickled), CuPy buffers through NCCL on the
device; after backward, or overlapped with it (overlap=True, TINYLESION_OVERLAP=1:
gradient_overlap.py), or reduce-scattered to an optimizer sharded over the ranks (shard=True,
TINYLESION_SHARD_OPTIMIZER=1: sharded_optimizer.py). A rank that raises ends the whole job
(MPI_Abort) with its message, never a hang.
"""
import contextlib
import importlib
import sys
import traceback

import numpy as np

from . import backend, inference_cache
from .data.sharding import ShardSampler, launch_world
from .nn import sync_batchnorm

MPI_HINT = "pip install 'tinylesion[mpi]' (mpi4py and an Open MPI runtime from wheels)"
BUCKET_BYTES = 16 << 20   # gradient bytes per allreduce message (Horovod fuses 64 MB)
OVERLAP = False   # DistributedOptimizer's default (TINYLESION_OVERLAP=1/0 overrides): README


class DistributedError(RuntimeError):
    """A launch problem (no mpi4py, no MPI runtime, a mismatched run), said in one line."""


class World:
    """The processes of one run: rank, size, local rank, and the communicators.

    `comm` is the mpi4py communicator (host arrays); `nccl` an NCCL communicator between the
    ranks' GPUs when the run is on "gpu" and NCCL is there, else None.
    """

    def __init__(self, comm, local_rank, nccl=None):
        self.comm, self.nccl = comm, nccl
        self.rank, self.size, self.local_rank = comm.Get_rank(), comm.Get_size(), local_rank
        self._shared = False   # the SharedReducer once asked for (None: not used)

    @property
    def is_main(self):
        return self.rank == 0

    # -- reductions: in place, on whatever device the array lives --------------------------
    def allreduce_(self, array):
        """Sum `array` over the ranks, in place (NCCL for CuPy arrays when there, else MPI;
        a CuPy array without NCCL is staged through the host). Returns the array."""
        if self.size == 1:
            return array
        if backend.is_cupy_array(array):
            if self.nccl is not None:
                self.nccl.allreduce_(array)
                return array
            host = np.ascontiguousarray(backend.to_numpy(array))
            self.comm.Allreduce(_mpi().IN_PLACE, host, op=_mpi().SUM)
            array[...] = backend.to_device(host, backend.device_of(array))
            return array
        if not array.flags.c_contiguous:
            raise ValueError("allreduce_ needs a C-contiguous array")
        window = self._shared.window_of(array) if self._shared else None
        if window is not None:   # a gradient bucket in a shared-memory window
            self._shared.allreduce_(window, array.reshape(-1))
            return array
        self.comm.Allreduce(_mpi().IN_PLACE, array, op=_mpi().SUM)
        return array

    def shared_zeros(self, count, dtype, node=None):
        """A zeroed NumPy array of `count` elements in a shared-memory window between the
        ranks of this machine, which allreduce_ then sums without MPI's buffers
        (shared_window.py); None when not distributed, when no machine holds two ranks, or
        when the MPI library cannot share memory. Collective: every rank calls it with the
        same count and dtype. `node` (tests): the communicator that stands for a machine."""
        if self.size == 1:
            return None
        if self._shared is False:
            from .shared_window import SharedReducer
            self._shared = SharedReducer.open(self.comm, node)
        return None if self._shared is None else self._shared.zeros(count, dtype)

    def can_sum_into(self, array):
        """Whether sum_into_ serves `array`: a NumPy array in a shared-memory window, every
        rank on this machine (the same answer on every rank). Collective: the first call
        allocates the window of signals sum_into_ waits on."""
        return self._one_machine_window(array) is not None and self._shared.open_signals()

    def sum_into_(self, array, out):
        """`out` ← `array` summed over the ranks, with one synchronisation (after
        can_sum_into(array)): every rank sums every rank's `array` into its own `out`, so
        `array` must not be written again before the next sum_into_ of this world (the
        caller alternates two buffers: gradient_buckets.py). Returns out."""
        return self._shared.sum_into_(self._one_machine_window(array), array.reshape(-1),
                                      out.reshape(-1))

    def reduce_scatter_(self, array, out):
        """`out` ← this rank's segment of `array` summed over the ranks (`array` holds N equal
        segments, rank r receives the r-th; NCCL for CuPy arrays when there, else MPI)."""
        if self.size == 1:
            out[...] = array.reshape(-1)[:out.size]
            return out
        if backend.is_cupy_array(array):
            if self.nccl is not None:
                self.nccl.reduce_scatter_(array, out)
                return out
            host = np.ascontiguousarray(backend.to_numpy(array))
            part = np.empty(out.size, host.dtype)
            self.comm.Reduce_scatter_block(host, part, op=_mpi().SUM)
            out[...] = backend.to_device(part, backend.device_of(out))
            return out
        if not (array.flags.c_contiguous and out.flags.c_contiguous):
            raise ValueError("reduce_scatter_ needs C-contiguous arrays")
        window = self._one_machine_window(array)
        if window is not None:   # the sharded step's buffer in a shared-memory window
            self._shared.reduce_scatter_(window, array.reshape(-1), out.reshape(-1))
            return out
        self.comm.Reduce_scatter_block(array, out, op=_mpi().SUM)
        return out

    def _one_machine_window(self, array):
        """The shared window holding `array` when every rank is on this machine, else None."""
        if not self._shared or self._shared.hierarchical:
            return None
        return self._shared.window_of(array)

    def allgather_(self, array):
        """Every rank's segment of `array` (N equal segments, rank r's the r-th) from that
        rank, in place (any device)."""
        if self.size == 1:
            return array
        inference_cache.weights_changed()   # (the sharded step's updated weights)
        if backend.is_cupy_array(array):
            if self.nccl is not None:
                self.nccl.allgather_(array, self.rank, self.size)
                return array
            host = np.ascontiguousarray(backend.to_numpy(array))
            self.comm.Allgather(_mpi().IN_PLACE, host)
            array[...] = backend.to_device(host, backend.device_of(array))
            return array
        if not array.flags.c_contiguous:
            raise ValueError("allgather_ needs a C-contiguous array")
        window = self._one_machine_window(array)
        if window is not None:
            self._shared.allgather_(window, array.reshape(-1))
            return array
        self.comm.Allgather(_mpi().IN_PLACE, array)
        return array

    def open_gradient_channel(self):
        """Communicators of the gradient buckets' own (gradient_overlap.open_channel)."""
        from .gradient_overlap import open_channel
        open_channel(self)

    def iallreduce_(self, array):
        """Start summing `array` over the ranks in place on the gradient channel; returns a
        request with test() and wait() (gradient_overlap.start_allreduce)."""
        from .gradient_overlap import start_allreduce
        return start_allreduce(self, array)

    def broadcast_(self, array, root=0):
        """Overwrite `array` in place with rank `root`'s (any device)."""
        if self.size == 1:
            return array
        inference_cache.weights_changed()   # (a weight written in place: folds computed from it)
        if backend.is_cupy_array(array):
            if self.nccl is not None:
                self.nccl.broadcast_(array, root)
                return array
            host = np.ascontiguousarray(backend.to_numpy(array))
            self.comm.Bcast(host, root=root)
            array[...] = backend.to_device(host, backend.device_of(array))
            return array
        buf = array if array.flags.c_contiguous else np.ascontiguousarray(array)
        self.comm.Bcast(buf, root=root)
        if buf is not array:
            array[...] = buf
        return array

    def sum(self, *values):
        """Python numbers summed over the ranks (one float64 allreduce), as floats."""
        buf = np.asarray(values, dtype=np.float64)
        return [float(v) for v in self.allreduce_(buf)]

    def gather_shards(self, array):
        """Rows held by each rank's ShardSampler shard (rank r: positions r, r+N, ...) put
        back into the order of the whole, on every rank (host arrays; one Allgatherv)."""
        array = np.ascontiguousarray(array)
        if self.size == 1:
            return array
        counts = np.zeros(self.size, np.int64)
        counts[self.rank] = len(array)
        self.allreduce_(counts)
        row = int(np.prod(array.shape[1:], dtype=np.int64))
        out = np.empty((int(counts.sum()) * row,), array.dtype)
        self.comm.Allgatherv(array.reshape(-1), [out, (counts * row).tolist()])
        parts = np.split(out.reshape((-1,) + array.shape[1:]), np.cumsum(counts)[:-1])
        whole = np.empty((int(counts.sum()),) + array.shape[1:], array.dtype)
        for r, part in enumerate(parts):
            whole[r::self.size] = part
        return whole

    def barrier(self):
        self.comm.Barrier()

    def abort(self, code=1):
        """End every rank of the job now (MPI_Abort), after flushing this rank's output."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        self.comm.Abort(int(code) if isinstance(code, int) and code else 1)


class NcclCommunicator:
    """Sum and broadcast CuPy arrays between the ranks' GPUs (cupy.cuda.nccl), on the current
    stream. The unique id goes from rank 0 to the others through MPI."""

    _types = {"float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64", "int64": "NCCL_INT64",
              "float16": "NCCL_FLOAT16", "int32": "NCCL_INT32"}

    def __init__(self, nccl, comm):
        self.lib = nccl
        uid = nccl.get_unique_id() if comm.Get_rank() == 0 else None
        uid = comm.bcast(uid, root=0)  # 128 bytes of id, the only pickled message
        self.comm = nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())

    def _args(self, array):
        if not array.flags.c_contiguous:
            raise ValueError("NCCL needs a C-contiguous array")
        name = self._types.get(array.dtype.name)
        if name is None:
            raise TypeError(f"NCCL: no reduction for dtype {array.dtype}")
        stream = backend.cupy_module().cuda.get_current_stream()
        return array.data.ptr, array.size, getattr(self.lib, name), stream.ptr

    def allreduce_(self, array):
        ptr, count, dtype, stream = self._args(array)
        self.comm.allReduce(ptr, ptr, count, dtype, self.lib.NCCL_SUM, stream)

    def reduce_scatter_(self, array, out):
        ptr, count, dtype, stream = self._args(array)
        out_ptr, out_count, _, _ = self._args(out)
        self.comm.reduceScatter(ptr, out_ptr, out_count, dtype, self.lib.NCCL_SUM, stream)

    def allgather_(self, array, rank, size):
        # NOTE: in place: this rank's segment is the send buffer (NCCL's in-place rule)
        ptr, count, dtype, stream = self._args(array)
        segment = count // size
        self.comm.allGather(ptr + rank * segment * array.dtype.itemsize, ptr, segment, dtype,
                            stream)

    def broadcast_(self, array, root=0):
        ptr, count, dtype, stream = self._args(array)
        self.comm.bcast(ptr, count, dtype, root, stream)


_world = None


def switch_setting(env, name, default, meaning_on, meaning_off):
    """A 1/0 environment switch: True / False, or `default` when unset; anything else is a
    DistributedError naming the variable and both meanings (env: a mapping, os.environ when
    None)."""
    import os
    value = (os.environ if env is None else env).get(name, "").strip()
    if value == "":
        return default
    if value not in ("0", "1"):
        raise DistributedError(f"{name}={value!r}: use 1 ({meaning_on}) or 0 ({meaning_off})")
    return value == "1"


def _mpi():
    from mpi4py import MPI
    return MPI


def launched_size():
    """The number of processes the MPI launcher started (1 without a launcher); no MPI call."""
    return launch_world()[0]


def init(device="cpu"):
    """Join the run the MPI launcher started; returns (and remembers) the World.

    Reads rank and size from MPI_COMM_WORLD and the local rank from the ranks sharing this
    machine; on "gpu" selects GPU = local rank (modulo the GPUs present) and opens NCCL
    between the ranks. Installs the abort on failure (sys.excepthook → MPI_Abort). Raises
    DistributedError in one line when mpi4py or the MPI library is missing.
    """
    global _world
    if _world is not None:
        return _world
    from .shared_window import quiet_open_mpi
    quiet_open_mpi()
    try:
        MPI = _mpi()
    except ImportError as exc:
        raise DistributedError(f"--distributed needs mpi4py and an MPI library ({exc}); "
                               f"{MPI_HINT}") from None
    except RuntimeError as exc:  # mpi4py there, its MPI library not loadable
        raise DistributedError(f"--distributed: mpi4py cannot load an MPI library ({exc}); "
                               f"{MPI_HINT}") from None
    comm = MPI.COMM_WORLD
    local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    local_rank = local.Get_rank()
    local.Free()
    nccl = None
    if backend.as_device(device).name == "gpu" and comm.Get_size() > 1:
        cp = backend.cupy_module()
        cp.cuda.Device(local_rank % cp.cuda.runtime.getDeviceCount()).use()
        try:
            lib = importlib.import_module(cp.__name__ + ".cuda.nccl")
        except ImportError:
            lib = None  # CuPy without NCCL: device gradients are staged through the host
        if lib is not None:
            nccl = NcclCommunicator(lib, comm)
    _world = World(comm, local_rank, nccl)
    _install_abort(_world)
    sync_batchnorm.set_default_group(_world)
    return _world


def world():
    """The World of init(), or None when not distributed."""
    return _world


def is_initialized():
    return _world is not None


def rank():
    """This process's rank (0 when not distributed)."""
    return 0 if _world is None else _world.rank


def world_size():
    """The number of ranks (1 when not distributed)."""
    return 1 if _world is None else _world.size


def local_rank():
    """This process's rank among those on its machine (its GPU)."""
    return 0 if _world is None else _world.local_rank


def is_main():
    """True on rank 0, the one that writes files and shows progress (and when not distributed)."""
    return rank() == 0


# ---------------------------------------------------------------------------------------------
# Failure: one rank's exception ends the job
# ---------------------------------------------------------------------------------------------

def _install_abort(world):
    previous = sys.excepthook

    def abort_hook(kind, value, tb):
        previous(kind, value, tb)
        if world.size > 1:
            print(f"[rank {world.rank}] failed: aborting all {world.size} ranks",
                  file=sys.stderr)
            world.abort(1)

    sys.excepthook = abort_hook


@contextlib.contextmanager
def abort_on_failure():
    """Turn any failure inside the block (an exception, or SystemExit with a non-zero status,
    as the CLI's one-line errors are) into an abort of every rank, with the same status.

    NOTE: without it a rank that exits while the others wait in an allreduce leaves them
    waiting forever (MPI_Finalize waits too); MPI_Abort makes the launcher end them all."""
    try:
        yield
    except SystemExit as exc:
        if _world is not None and _world.size > 1 and exc.code not in (None, 0):
            _world.abort(exc.code if isinstance(exc.code, int) else 1)
        raise
    except BaseException:
        if _world is not None and _world.size > 1:
            traceback.print_exc()
            print(f"[rank {_world.rank}] failed: aborting all {_world.size} ranks",
                  file=sys.stderr)
            _world.abort(1)
        raise


# ---------------------------------------------------------------------------------------------
# Parameters, gradients, losses
# ---------------------------------------------------------------------------------------------

def broadcast_parameters(state_dict, root=0):
    """Overwrite every array of a state_dict (the model's own arrays: Module.state_dict returns
    them, not copies) in place with rank `root`'s, in key order."""
    if _world is None or _world.size == 1:
        return
    for key in sorted(state_dict):
        value = state_dict[key]
        value = getattr(value, "array", value) if not isinstance(value, np.ndarray) else value
        _world.broadcast_(value, root)


def _buckets(params, limit, first_limit=None):
    """Parameters grouped by (device, dtype), each group cut into runs of ~limit bytes (the
    first run of each group at ~first_limit bytes, when given)."""
    groups = {}
    for p in params:
        groups.setdefault((backend.device_of(p.array).name, p.array.dtype.str), []).append(p)
    for members in groups.values():
        run, size, cut = [], 0, limit if first_limit is None else first_limit
        for p in members:
            run.append(p)
            size += p.array.nbytes
            if size >= cut:
                yield run
                run, size, cut = [], 0, limit
        if run:
            yield run


def split_totals(totals, dtype):
    """float64 numbers as 2k numbers of `dtype` (high parts, then the rests), so that they
    travel in a gradient bucket and their sums come back (join_totals) to float64 precision."""
    totals = np.asarray(totals, np.float64)
    high = totals.astype(dtype)
    return np.concatenate([high, (totals - high.astype(np.float64)).astype(dtype)])


def join_totals(parts):
    """The float64 numbers of split_totals' (summed) parts."""
    parts = np.asarray(parts, np.float64)
    return parts[:len(parts) // 2] + parts[len(parts) // 2:]


def allreduce_gradients(params, world=None, bucket_bytes=BUCKET_BYTES, average=True,
                        totals=None):
    """Average (or sum) the parameters' gradients over the ranks, once (DistributedOptimizer
    keeps its buckets from step to step instead: gradient_buckets.py).

    Every gradient is copied into a flat buffer per bucket (one per device and dtype, cut at
    ~bucket_bytes), the buffer reduced in place and divided by the world size, and each .grad
    becomes its view of the buffer. A parameter with no gradient on some rank counts as
    zeros there; one with no gradient on every rank keeps None: a count of the ranks holding
    each rides at the end of the first bucket, so that a step takes one reduction per bucket
    and no other. `totals`, a float64 array (this rank's loss weight, then any numbers), is
    summed over the ranks in that message too, in place, and the gradients are divided by
    its first entry (the weight of the global batch) instead of the world size.
    Returns the bytes this rank handed to the allreduce.
    """
    from .gradient_buckets import GradientBuckets
    world = _world if world is None else world
    params = [p for p in params if getattr(p, "requires_grad", True)]
    if world is None or world.size == 1 or not params:
        return 0
    return GradientBuckets(params, bucket_bytes, views=False).allreduce(world, average, totals)


def global_mean(local_sum, local_weight, world=None):
    """The loss to call backward() on for a (weighted) mean over the global batch.

    `local_sum` is this rank's summed loss (a Tensor, e.g. cross_entropy(..., weight=w,
    reduction="sum")), `local_weight` its total weight (a number: w[target].sum(), or the batch
    size for an unweighted mean). Returns local_sum · N / Σ_ranks local_weight: after
    DistributedOptimizer divides the summed gradients by N, the gradient is that of
    Σ_all loss / Σ_all weight, the weighted mean one process takes over the whole batch,
    not a mean of per-rank weighted means. The value of the global loss is world.sum(...)
    of local_sum.item() divided by that total weight.
    """
    world = _world if world is None else world
    size = 1 if world is None else world.size
    total = float(local_weight) if size == 1 else world.sum(float(local_weight))[0]
    return local_sum * (size / total)


def global_loss(local_sum, local_weight, count, world=None):
    """(loss to call backward() on, its value over the global batch, the global batch size).

    As global_mean, and in the same single allreduce the summed loss values and counts, so
    that every rank sees the global batch's loss value (the one a single process computes for
    the whole batch) and can stop on a NaN together with the others."""
    world = _world if world is None else world
    value = float(local_sum.item())
    if world is None or world.size == 1:
        return local_sum * (1.0 / float(local_weight)), value / float(local_weight), int(count)
    weight, total, n = world.sum(float(local_weight), value, count)
    return local_sum * (world.size / weight), total / weight, int(n)


def shard_loader(loader, world=None, train=True):
    """Make a Loader serve this rank's shard of what it served (its sampler's order, its
    shuffle, or dataset order), in place; returns it. With train, a last global batch with
    fewer samples than ranks is left out (each rank must take every step). Idempotent."""
    world = _world if world is None else world
    if world is None or world.size == 1 or isinstance(loader.sampler, ShardSampler):
        return loader
    base = loader.sampler if loader.sampler is not None else len(loader.dataset)
    loader.sampler = ShardSampler(base, world.size, world.rank, shuffle=loader.shuffle,
                                  seed=loader.seed,
                                  batch_size=loader.batch_size if train else None)
    loader.shuffle = False
    return loader


def shard(base, shuffle=True, seed=0, batch_size=None, world=None):
    """This rank's ShardSampler over `base` (a sampler with indices(epoch), or a dataset
    length): the same global order for any number of ranks."""
    world = _world if world is None else world
    size, own = (1, 0) if world is None else (world.size, world.rank)
    return ShardSampler(base, size, own, shuffle=shuffle, seed=seed, batch_size=batch_size)


def environment_note():
    """A short description of the run ('2 ranks (Open MPI v5.0...)') for the log."""
    if _world is None:
        return "not distributed"
    version = _mpi().Get_library_version().splitlines()[0].split(",")[0].strip()
    return (f"{_world.size} ranks ({version}"
            f"{', NCCL between GPUs' if _world.nccl is not None else ''})")


# NOTE: at the end, as the wrapper's module imports this one
from .distributed_optimizer import (DistributedOptimizer, describe_step,  # noqa: E402,F401
                                    prepare_fit)
