"""Gradient sums through MPI-3 shared-memory windows between the ranks of one machine.

DistributedOptimizer's gradient buckets (gradient_buckets.py) are allocated in a shared-memory
window (MPI.Win.Allocate_shared over the ranks of each machine), so that every rank of the
machine can read and write every other rank's bucket with plain loads and stores. A bucket's
allreduce is then: a barrier (every bucket complete); rank r sums slice r of all the machine's
buckets, in rank order, and writes the sum into slice r of every bucket; a barrier. No copy
into MPI's buffers, one pass over the memory, and every element is summed once, by one rank,
so every rank ends with the same bits (on 2 ranks those of MPI's Allreduce: a + b = b + a).

The sharded step's buffers (sharded_optimizer.py) live in windows too: its reduce-scatter is
a barrier, rank r summing segment r of every rank's buffer into its own, and a barrier; its
allgather a barrier, each rank copying every other rank's segment from that rank's buffer,
and a barrier (on one machine; across machines those two stay MPI's).

A small bucket (GradientBuckets' single-synchronisation path, for sub-millisecond steps) is
summed with one synchronisation instead of two: each rank raises its own counter in a window
of signals and waits (spinning, then yielding the core) for every other rank's, then sums the
whole of every rank's bucket, in rank order, into a private array; its buckets alternate
between two windows from step to step, so that no rank writes a bucket another may still be
reading (one machine only).

Across machines (hierarchical): the slice sums go to the machine's leader (its rank 0) only,
the leaders allreduce their buckets over MPI, and each rank copies its slice of the leader's
result into every bucket of the machine. A run where no machine holds two ranks, where the
MPI library cannot allocate a shared window, or with TINYLESION_SHARED_WINDOW=0 keeps MPI's
Allreduce (the decision is taken by all ranks together, so they never take different paths).

NOTE: a window lives as long as the run (freeing one is collective and the bucket's arrays
may still be referenced): buckets made anew (parameters frozen or thawed) leave their old
window allocated.
"""
import os
import time

import numpy as np

SHARED_ENV = "TINYLESION_SHARED_WINDOW"
SHARED = True   # the default (TINYLESION_SHARED_WINDOW=1/0 overrides): README
ALIGN = 64      # slice boundaries on cache lines, so that no two ranks write one line
SPINS = 200     # checks of the other ranks' signals before yielding the core between checks
NAP_AFTER_S = 0.002   # after this long waiting, short sleeps between checks (a long wait)


def default_shared(env=None):
    """Shared-memory windows for the gradient buckets, or not: TINYLESION_SHARED_WINDOW=1/0,
    else SHARED."""
    from .distributed import switch_setting
    return switch_setting(env, SHARED_ENV, SHARED, "gradient sums through shared-memory "
                          "windows between the ranks of a machine", "MPI's Allreduce")


def quiet_open_mpi():
    """Before mpi4py starts MPI: keep Open MPI's UCX one-sided component, which prints an
    error line when asked for a window it does not serve, out of the choice (unless the user
    chose the components: OMPI_MCA_osc set). No effect on other MPI libraries."""
    os.environ.setdefault("OMPI_MCA_osc", "^ucx")


class _Window:
    """One window: this rank's segment and every machine rank's, as arrays."""

    def __init__(self, win, arrays, rank):
        self.win, self.arrays = win, arrays
        self.mine = arrays[rank]
        self.start = self.mine.ctypes.data
        self.end = self.start + self.mine.nbytes


def room_for(nbytes, env=None):
    """True when the file system that backs shared windows (Open MPI's
    OMPI_MCA_osc_sm_backing_directory, else /dev/shm, as MPICH's) has `nbytes` free, or
    cannot be asked. NOTE: a window larger than what is free there allocates, then ends the
    process with SIGBUS when its pages are touched (containers' 64 MB /dev/shm)."""
    path = (os.environ if env is None else env).get("OMPI_MCA_osc_sm_backing_directory",
                                                    "/dev/shm")
    try:
        stat = os.statvfs(path)
    except (OSError, AttributeError):
        return True
    return stat.f_bavail * stat.f_frsize >= nbytes


def allocate_window(mpi, nbytes, itemsize, node):
    """A new shared window of `nbytes` on this rank (MPI.Win.Allocate_shared over `node`),
    each rank's segment on its own pages."""
    info = mpi.Info.Create()
    info.Set("alloc_shared_noncontig", "true")
    try:
        return mpi.Win.Allocate_shared(nbytes, itemsize, info, node)
    finally:
        info.Free()


def slice_bounds(count, size, itemsize):
    """[lo, hi) of each of `size` ranks' slices of `count` elements: equal runs cut on
    ALIGN-byte boundaries (the last ranks' may be empty)."""
    step = max(1, ALIGN // itemsize)
    per = -(-(-(-count // size)) // step) * step
    return [(min(r * per, count), min((r + 1) * per, count)) for r in range(size)]


class SharedReducer:
    """The ranks of this machine (a shared-memory communicator), a communicator of one leader
    per machine when the run spans several, and the windows allocated for gradient buckets.

    open() builds one collectively, or returns None when shared memory does not pay or is not
    there. `node` (tests): a communicator to use as the machine's ranks.
    """

    def __init__(self, comm, node, leaders, mpi):
        self.comm, self.node, self.leaders, self.MPI = comm, node, leaders, mpi
        self.rank, self.size = node.Get_rank(), node.Get_size()
        self.hierarchical = node.Get_size() < comm.Get_size()
        self.windows = []
        self.usable = True   # False once an allocation failed on some rank
        self.signals = None  # every rank's counter (sum_into_), once allocated
        self.epoch = 0       # the number of sum_into_ calls so far (the same on every rank)
        self.waited_s = 0.0  # time sum_into_ spent waiting for the other ranks' signals

    @classmethod
    def open(cls, comm, node=None):
        """Collective over `comm`: the reducer, or None when no machine holds two ranks."""
        from mpi4py import MPI
        if node is None:
            node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
        largest = comm.allreduce(node.Get_size(), op=MPI.MAX)
        if largest < 2:
            return None
        leaders = comm.Split(0 if node.Get_rank() == 0 else MPI.UNDEFINED, key=comm.Get_rank())
        return cls(comm, node, leaders, MPI)

    # -- allocation ----------------------------------------------------------------------------
    def zeros(self, count, dtype):
        """A zeroed array of `count` elements of `dtype` in this rank's segment of a new window;
        None when some rank could not allocate one or lacks the room for it in shared memory
        (then never again: MPI's collectives).
        Collective over the whole run: every rank asks for the same count and dtype."""
        MPI = self.MPI
        if not self.usable:
            return None
        dtype = np.dtype(dtype)
        nbytes = max(count, 1) * dtype.itemsize
        # every rank of the machine asks for as much: room for all of it, with a margin
        if not self.comm.allreduce(room_for(self.size * nbytes * 5 // 4 + (1 << 20)),
                                   op=MPI.LAND):
            self.usable = False
            return None
        win, arrays = None, None
        try:
            win = allocate_window(MPI, nbytes, dtype.itemsize, self.node)
            arrays = []
            for r in range(self.size):
                memory, _ = win.Shared_query(r)
                arrays.append(np.frombuffer(memory, dtype, max(count, 1))[:count])
        except (MPI.Exception, ValueError, TypeError):
            arrays = None
        if not self.comm.allreduce(arrays is not None, op=MPI.LAND):
            # NOTE: not freed (collective, and a rank whose part failed may hold no window)
            self.usable = False
            return None
        win.Lock_all(MPI.MODE_NOCHECK)   # NOTE: a passive epoch for ever, so that Sync works
        window = _Window(win, arrays, self.rank)
        window.mine[...] = 0
        self.windows.append(window)
        return window.mine

    def window_of(self, array):
        """The window whose segment on this rank holds `array` (C-contiguous), or None."""
        if not self.windows or not isinstance(array, np.ndarray) or array.size == 0:
            return None
        start = array.ctypes.data
        for window in self.windows:
            if window.start <= start and start + array.nbytes <= window.end:
                return window
        return None

    # -- the reduction -------------------------------------------------------------------------
    def _sync(self, window):
        # NOTE: Win.Sync orders this rank's loads and stores against the barrier (the
        # separate and unified memory models both), so that the others see them after it
        window.win.Sync()
        self.node.Barrier()
        window.win.Sync()

    def allreduce_(self, window, array):
        """Sum `array` (in this rank's segment of `window`) over all ranks, in place."""
        count = array.size
        peers = self._peers(window, array)
        lo, hi = slice_bounds(count, self.size, array.itemsize)[self.rank]
        self._sync(window)
        if hi > lo:
            total = peers[0][lo:hi]
            for peer in peers[1:]:   # rank order: the same bits whoever sums
                np.add(total, peer[lo:hi], out=total)
            if not self.hierarchical:
                for peer in peers[1:]:
                    peer[lo:hi] = total
        if self.hierarchical:
            self._sync(window)   # the machine's sum is in the leader's bucket
            if self.rank == 0:
                self.leaders.Allreduce(self.MPI.IN_PLACE, peers[0], op=self.MPI.SUM)
            self._sync(window)
            if hi > lo:
                for peer in peers[1:]:
                    peer[lo:hi] = peers[0][lo:hi]
        self._sync(window)   # every slice written before any rank reads or writes again
        return array

    def open_signals(self):
        """Allocate the window of signals sum_into_ waits on (collective; True when there)."""
        if self.signals is None:
            mine = self.zeros(ALIGN // 8, np.int64)   # a cache line per rank
            if mine is not None:
                self.signals = self.window_of(mine)
        return self.signals is not None

    def _arrive_and_wait(self, window):
        """One synchronisation: this rank's stores to `window` made visible, its counter
        raised, then every other rank's counter awaited (so their stores are visible)."""
        self.epoch += 1
        epoch, signals = self.epoch, self.signals
        window.win.Sync()            # NOTE: this rank's gradients stored before its signal
        signals.mine[0] = epoch
        signals.win.Sync()
        start = time.perf_counter()
        for r, peer in enumerate(signals.arrays):
            if r == self.rank:
                continue
            checks, since = 0, None
            while peer[0] < epoch:
                checks += 1
                if checks < SPINS:
                    continue
                # NOTE: spinning suits sub-millisecond steps on idle cores; past that, the
                # core goes to whatever else runs (the other rank itself, on a loaded machine)
                if since is None:
                    since = time.perf_counter()
                if time.perf_counter() - since < NAP_AFTER_S:
                    os.sched_yield()
                else:
                    time.sleep(50e-6)
        self.waited_s += time.perf_counter() - start
        signals.win.Sync()
        window.win.Sync()            # the others' stores before this rank's loads

    def sum_into_(self, window, array, out):
        """`out` ← `array` (in this rank's segment of `window`) summed over the ranks in rank
        order, with one synchronisation; every rank sums the whole. `array` must not be
        written again until after the next sum_into_ (the other ranks may still read it: the
        caller alternates two windows). One machine only, after open_signals()."""
        peers = self._peers(window, array)
        self._arrive_and_wait(window)
        np.add(peers[0], peers[1], out=out)
        for peer in peers[2:]:   # rank order: the same bits on every rank
            np.add(out, peer, out=out)
        return out

    def _peers(self, window, array):
        offset = (array.ctypes.data - window.start) // array.itemsize
        return [a[offset:offset + array.size] for a in window.arrays]

    def reduce_scatter_(self, window, array, out):
        """`out` ← segment `rank` of `array` (N equal segments, in this rank's segment of
        `window`) summed over the ranks in rank order. One machine only (not hierarchical)."""
        peers = self._peers(window, array)
        k = array.size // self.size
        lo, hi = self.rank * k, self.rank * k + k
        self._sync(window)
        out[...] = peers[0][lo:hi]
        for peer in peers[1:]:
            np.add(out, peer[lo:hi], out=out)
        self._sync(window)   # every rank has read before any writes its buffer again
        return out

    def allgather_(self, window, array):
        """Every rank's segment of `array` (N equal segments, rank r's the r-th, in this
        rank's segment of `window`) copied from that rank's buffer. One machine only."""
        peers = self._peers(window, array)
        k = array.size // self.size
        self._sync(window)
        for r, peer in enumerate(peers):
            if r != self.rank:
                array[r * k:r * k + k] = peer[r * k:r * k + k]
        self._sync(window)
        return array
