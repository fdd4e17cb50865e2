"""Gradient allreduce overlapped with backward: each bucket starts once its gradients are final.

DistributedOptimizer(..., overlap=True) hooks every parameter
(Tensor.register_post_accumulate_grad_hook). During backward() each final gradient is copied
into its bucket's flat buffer; buckets hold the parameters in reverse order (the order in which
backward makes them final) and start, strictly in bucket order so that every rank issues the
same sequence of collectives, on communicators of their own, as soon as all of their
gradients are there: MPI Iallreduce on NumPy buffers in place (each later hook call tests
the oldest pending request, which drives MPI's progress), NCCL on a side stream for CuPy
buffers. step() (synchronize) starts the
buckets still waiting (a parameter backward did not reach: its gradient or zeros), reduces
the presence counts and a "redo" flag in one float64 allreduce, waits, scales the buckets
in one pass and makes each .grad its view of them (nothing copied back). A gradient that
changed after its bucket started (a second backward() before step(), gradient accumulation)
sets the flag: every rank then reduces the gradients again as the blocking path does, so
the result never goes stale. NOTE: the copy into the bucket stays (it overlaps backward):
a bucket on its way cannot also be where a second backward() adds its gradients, as the
blocking path's buckets are (gradient_buckets.py).
"""
import weakref

import numpy as np

from . import backend, gradient_buckets

OVERLAP_ENV = "TINYLESION_OVERLAP"
# NOTE: the first bucket (the last layers) is cut small, so that its allreduce starts early
# in backward rather than waiting for a full bucket's worth of layers
FIRST_BUCKET_BYTES = 1 << 20


class _Done:
    """A request that completed when it was made (a reduction staged through the host)."""

    def test(self):
        return True

    def wait(self):
        pass


class MpiRequest:
    """A pending mpi4py Iallreduce."""

    def __init__(self, request):
        self.request = request

    def test(self):
        return bool(self.request.Test())

    def wait(self):
        self.request.Wait()


class StreamRequest:
    """An NCCL allreduce queued on a side stream: wait() makes the current stream wait for
    it (the host does not block)."""

    def __init__(self, done_event):
        self.event = done_event

    def test(self):
        return True   # NCCL progresses on the GPU by itself

    def wait(self):
        backend.cupy_module().cuda.get_current_stream().wait_event(self.event)


def open_channel(world):
    """Communicators of their own for the buckets (an MPI Dup, a second NCCL clique), so that
    collectives started during backward never interleave with the others (SyncBatchNorm's),
    whatever the order each rank reaches them in. Collective: every rank calls it at the same
    point (DistributedOptimizer's construction); once."""
    from .distributed import NcclCommunicator
    if world.size > 1 and getattr(world, "_grad_comm", None) is None:
        world._grad_comm = world.comm.Dup()
        world._grad_nccl = (None if world.nccl is None
                            else NcclCommunicator(world.nccl.lib, world.comm))


def start_allreduce(world, array):
    """Start summing `array` over the ranks in place; a request with test() and wait().
    NumPy arrays: MPI Iallreduce. CuPy arrays with NCCL: queued on a side stream after what
    the current stream has queued (wait() orders the current stream after it). A CuPy array
    without NCCL: through the host, at once."""
    from mpi4py import MPI
    if world.size == 1:
        return _Done()
    open_channel(world)
    if backend.is_cupy_array(array):
        if world._grad_nccl is None:
            host = np.ascontiguousarray(backend.to_numpy(array))
            world._grad_comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
            array[...] = backend.to_device(host, backend.device_of(array))
            return _Done()
        cuda = backend.cupy_module().cuda
        if getattr(world, "_side_stream", None) is None:
            world._side_stream = cuda.Stream(non_blocking=True)
        world._side_stream.wait_event(cuda.get_current_stream().record())
        with world._side_stream:
            world._grad_nccl.allreduce_(array)
            done = world._side_stream.record()
        return StreamRequest(done)
    if not array.flags.c_contiguous:
        raise ValueError("iallreduce_ needs a C-contiguous array")
    return MpiRequest(world._grad_comm.Iallreduce(MPI.IN_PLACE, array, op=MPI.SUM))


class _Bucket(gradient_buckets._Bucket):
    """Parameters whose gradients travel together in one flat buffer (`views`: each one's
    slice, shaped as it), and the request reducing it in this round."""

    def __init__(self, params):
        super().__init__(params, None, 0)
        self.sizes = [p.array.size for p in params]
        self.offsets = np.cumsum([0] + self.sizes)[:-1].tolist()
        self.filled = set()
        self.request = None   # set once started in this round


_hooked = {}   # id(parameter) -> weakref to the OverlappedAllreduce whose hook it carries


class OverlappedAllreduce:
    """The buckets, hooks and pending requests of one DistributedOptimizer (overlap=True)."""

    def __init__(self, params, world, bucket_bytes):
        from .distributed import _buckets
        self.world, self.bucket_bytes = world, int(bucket_bytes)
        if hasattr(world, "open_gradient_channel"):
            world.open_gradient_channel()
        self.params = list(params)
        self.buckets, self.where = [], {}
        for run in _buckets(reversed(self.params), self.bucket_bytes,
                            min(FIRST_BUCKET_BYTES, self.bucket_bytes)):
            for slot, p in enumerate(run):
                self.where[id(p)] = (len(self.buckets), slot)
            self.buckets.append(_Bucket(run))
        self.order = [p for b in self.buckets for p in b.params]  # the buckets' order
        self.layout = _layout(self.params)
        for p in self.params:   # (buckets of a DistributedOptimizer made before this one)
            if getattr(p, "_grad_view", None) is not None:
                p._grad_view = None
        self.handles = []
        self.add_hooks()
        self._new_round()

    def _new_round(self):
        for b in self.buckets:
            b.filled.clear()
            b.request = None
        self.next_bucket, self.pending, self.stale = 0, [], False

    def add_hooks(self):
        """Hook every parameter (again, after remove_hooks). An earlier OverlappedAllreduce
        hooked to any of them lets go (fit run twice with one optimizer wraps it twice):
        two would start their buckets for the same gradients, one of them never waited."""
        if not self.handles:
            for p in self.params:
                previous = _hooked.get(id(p))
                previous = previous() if previous is not None else None
                if previous is not None and previous is not self:
                    previous.remove_hooks()
                _hooked[id(p)] = weakref.ref(self)
            self.handles = [p.register_post_accumulate_grad_hook(self._gradient_ready)
                            for p in self.params]

    def remove_hooks(self):
        """Stop starting buckets during backward (synchronize then starts them all)."""
        for handle in self.handles:
            handle.remove()
        self.handles = []

    # -- during backward ------------------------------------------------------------------
    def _gradient_ready(self, p):
        b, slot = self.where[id(p)]
        bucket = self.buckets[b]
        if bucket.request is not None:   # its bucket is already on its way: stale
            self.stale = True
            return
        if (p.array.dtype != bucket.flat.dtype or p.array.size != bucket.sizes[slot]
                or backend.device_of(p.array) != backend.device_of(bucket.flat)):
            self.stale = True   # moved or cast since the buckets were made: redo, rebuild
            return
        self._copy_in(bucket, slot)
        bucket.filled.add(slot)
        while (self.next_bucket < len(self.buckets)
               and len(self.buckets[self.next_bucket].filled)
               == len(self.buckets[self.next_bucket].params)):
            self._start(self.buckets[self.next_bucket])
        self._progress()

    def _copy_in(self, bucket, slot):
        from .tensor import Tensor
        p, view = bucket.params[slot], bucket.views[slot]
        if p.grad is None:
            view[...] = 0
        elif gradient_buckets.grad_array(p.grad) is view:
            # NOTE: left from the last round (no backward reached it since): its own copy,
            # as the bucket is reduced in place again (a redo needs this rank's value)
            p.grad = Tensor._wrap(view.copy())
        else:
            view[...] = gradient_buckets.grad_array(p.grad).reshape(view.shape)

    def _start(self, bucket):
        bucket.request = self.world.iallreduce_(bucket.flat)
        self.pending.append(bucket.request)
        self.next_bucket += 1

    def _progress(self):
        """Test the oldest pending requests (MPI progresses nonblocking collectives only
        inside MPI calls); drop those done."""
        while self.pending and self.pending[0].test():
            self.pending.pop(0)

    # -- at step() ------------------------------------------------------------------------
    def synchronize(self, params, average=True, totals=None):
        """Finish the round: start what is left, wait, copy back. Returns bytes sent.
        `totals` (float64, the loss weight first): summed with the presence counts, in place;
        the gradients are then divided by its first entry instead of the world size."""
        from .distributed import allreduce_gradients
        current = [p for p in params if getattr(p, "requires_grad", True)]
        changed = _layout(current) != self.layout   # other parameters, or moved, or cast
        while self.next_bucket < len(self.buckets):   # every rank: the same collectives
            bucket = self.buckets[self.next_bucket]
            if changed or self.stale:   # reduced again below: only the count matters
                bucket.flat[...] = 0
            else:
                for slot in range(len(bucket.params)):   # the gradients as they are now,
                    self._copy_in(bucket, slot)           # as the blocking path takes them
            self._start(bucket)
        n = len(self.order)
        flags = np.zeros(n + 1 + (0 if totals is None else len(totals)), np.float64)
        flags[:n] = [p.grad is not None for p in self.order]
        flags[n] = self.stale or changed
        if totals is not None:
            flags[n + 1:] = totals
        self.world.allreduce_(flags)
        if totals is not None:
            totals[...] = flags[n + 1:]
        sent = flags.nbytes + sum(b.flat.nbytes for b in self.buckets)
        for request in self.pending:
            request.wait()
        redo = flags[n] > 0
        scale = None if totals is None else 1.0 / totals[0]
        if not redo:
            self._copy_out(flags[:n], average, scale)
        self._new_round()
        if changed:   # parameters frozen, added, moved or cast: new buckets for the next step
            self.remove_hooks()
            self.__init__(current, self.world, self.bucket_bytes)
        if redo and (scale is None or not average):
            sent += allreduce_gradients(current, self.world, self.bucket_bytes, average)
        elif redo:   # summed, then divided by the global batch's weight, as _copy_out does
            sent += allreduce_gradients(current, self.world, self.bucket_bytes, False)
            for p in current:
                if p.grad is not None:
                    p.grad.array *= p.grad.array.dtype.type(scale)
        return sent

    def _copy_out(self, present, average, scale=None):
        """Scale the reduced buckets (one pass) and make each .grad its view of them."""
        from .tensor import Tensor
        size = self.world.size
        index = 0
        for bucket in self.buckets:
            flat = bucket.flat
            if average:
                flat *= flat.dtype.type(1.0 / size if scale is None else scale)
            for p, view in zip(bucket.params, bucket.views):
                if present[index] > 0 and (p.grad is None or
                                           gradient_buckets.grad_array(p.grad) is not view):
                    p.grad = Tensor._wrap(view)
                index += 1


def _layout(params):
    """What the buckets were made for: each parameter, its device, dtype and size."""
    return [(id(p), backend.device_of(p.array).name, p.array.dtype.str, p.array.size)
            for p in params]


def default_overlap(env=None):
    """Overlap on or off when DistributedOptimizer is not told: TINYLESION_OVERLAP=1/0, else
    the measured default (distributed.OVERLAP)."""
    import os

    from . import distributed
    value = (os.environ if env is None else env).get(OVERLAP_ENV, "").strip()
    if value == "":
        return distributed.OVERLAP
    if value not in ("0", "1"):
        raise distributed.DistributedError(f"{OVERLAP_ENV}={value!r}: use 1 (overlap the "
                                           "gradient allreduce with backward) or 0")
    return value == "1"
