"""Gradient buckets: each parameter's .grad a view of a flat buffer reduced in place over the ranks.

DistributedOptimizer (the allreduce after backward) keeps one GradientBuckets for the
parameters every rank holds whole. Each parameter's `_grad_view` is its slice of a bucket,
shaped as the parameter; backward() writes the first gradient of a step there and adds later
ones in place (autograd._accumulate_leaf), so that after backward the buckets already hold
the gradients: the allreduce runs on them in place, one pass divides them by the world size
(or the global batch's weight), and nothing is copied in or out. A .grad that is not its
view (assigned by the user, made before the buckets, on another device or of another dtype)
is copied into the bucket at the reduction, and .grad becomes the view: never lost. A
parameter without a gradient counts as zeros; one without a gradient on every rank keeps
None (a count of the ranks holding each rides after the first bucket's gradients).

Small gradients (SINGLE_SYNC_BYTES or less, one bucket, in a shared-memory window with every
rank on one machine) take one synchronisation per step instead of two (shared_window.py):
every rank sums every rank's bucket straight into a private flat buffer, scales it there, and
each .grad becomes its view of that buffer, which is what the optimizer reads; the bucket
backward writes alternates between two windows from step to step, so that the next backward
never writes where another rank may still be reading. The bits are those of the two-barrier
sum (the same additions in the same rank order).

NOTE: as with PyTorch DDP's gradient_as_bucket_view, a .grad kept from an earlier step is
overwritten by the next backward() (it is the bucket's memory); copy it to keep it.
"""
import numpy as np

from . import backend

SINGLE_SYNC_BYTES = 2 << 20   # gradients up to this size: one synchronisation per step (README)


def grad_array(grad):
    """The array of a .grad (a Tensor, or an array assigned as it is)."""
    return getattr(grad, "array", grad)


def layout(params):
    """What buckets are made for: each parameter, its device, dtype and shape."""
    return [(id(p), backend.device_of(p.array).name, p.array.dtype.str, p.array.shape)
            for p in params]


class _Bucket:
    """One flat buffer: the gradients of `params` (`views`, shaped as them, at `index` in the
    parameter list), then `extra` slots. `shared_zeros(count, dtype)` (World.shared_zeros):
    where a NumPy buffer is allocated, when it gives one (else an ordinary array)."""

    def __init__(self, params, index, extra, shared_zeros=None):
        xp = backend.get_array_module(params[0].array)
        size = sum(p.array.size for p in params)
        dtype = params[0].array.dtype
        self.flat = None
        if shared_zeros is not None and xp is np:
            self.flat = shared_zeros(size + extra, dtype)
        self.in_window = self.flat is not None
        if self.flat is None:
            self.flat = xp.zeros(size + extra, dtype=dtype)
        self.grads = self.flat[:size]
        self.params, self.index, self.views = params, index, []
        offset = 0
        for p in params:
            self.views.append(self.flat[offset:offset + p.array.size].reshape(p.array.shape))
            offset += p.array.size


class GradientBuckets:
    """The flat gradient buffers of `params` (one run per device and dtype, cut at
    ~bucket_bytes). views=True: every parameter's `_grad_view` is set to its slice, so that
    backward accumulates there (views=False: the buffers are a one-off, filled by copying).
    `world` with shared=True (and views=True): the NumPy buffers are allocated in
    shared-memory windows between the ranks of each machine when the world can
    (World.shared_zeros: collective, so every rank must make its buckets at the same point),
    and its allreduce_ then sums them there (shared_window.py)."""

    def __init__(self, params, bucket_bytes, views=True, world=None, shared=False):
        from .distributed import _buckets
        self.params = list(params)
        self.layout = layout(self.params)
        self.uses_views = views
        self.shared_zeros = (getattr(world, "shared_zeros", None)
                             if views and shared and world is not None else None)
        where = {id(p): i for i, p in enumerate(self.params)}
        self.buckets = []
        for run in _buckets(self.params, bucket_bytes):
            # room after the first bucket's gradients for the presence counts and 3 totals
            extra = 0 if self.buckets else len(self.params) + 2 * 3
            self.buckets.append(_Bucket(run, [where[id(p)] for p in run], extra,
                                        self.shared_zeros))
        self.world = world
        self.spare = self.out = None   # the single-synchronisation path's other bucket, sum
        first = self.buckets[0] if len(self.buckets) == 1 else None
        if (first is not None and first.in_window and first.flat.nbytes <= SINGLE_SYNC_BYTES
                and world.can_sum_into(first.flat)):   # NOTE: the same on every rank
            self._single(first.flat.size - first.grads.size)
        self.attach()

    def _single(self, extra):
        """Make the second window and the private sum of the single-synchronisation path
        (collective); without the second window, the two-barrier path."""
        first = self.buckets[0]
        spare = _Bucket(first.params, first.index, extra, self.shared_zeros)
        if spare.in_window:
            self.spare, self.out = spare, _Bucket(first.params, first.index, extra)
        else:
            self.spare = self.out = None

    @property
    def single_sync(self):
        """True when the gradients take one synchronisation per step (module docstring)."""
        return self.out is not None

    @property
    def shared(self):
        """True when the buffers live in shared-memory windows."""
        return any(b.in_window for b in self.buckets)

    def attach(self):
        """Make backward write the parameters' gradients into these buffers (views=True;
        again after release(), or after another wrapper of the same parameters took them)."""
        if self.uses_views:
            for bucket in self.buckets:
                for p, view in zip(bucket.params, bucket.views):
                    p._grad_view = view

    def _room(self, extra):
        """A first bucket with room for `extra` numbers after its gradients (made anew when
        more come: its gradients are then copied in once, as any that are not views)."""
        first = self.buckets[0]
        if first.flat.size - first.grads.size < extra:
            self.release()
            self.buckets[0] = _Bucket(first.params, first.index, extra, self.shared_zeros)
            if self.out is not None:
                self._single(extra)
            self.attach()

    def zeroed(self):
        """After zero_grad(set_to_none=False): on the single-synchronisation path each .grad
        (a view of the sum) becomes its view of the bucket backward writes next, zeroed, so
        that backward adds there as on the other path."""
        from .tensor import Tensor
        if self.out is None:
            return
        bucket = self.buckets[0]
        for p, view in zip(bucket.params, bucket.views):
            if p.grad is not None and grad_array(p.grad) is not view:
                view[...] = 0
                p.grad = Tensor._wrap(view)

    def release(self):
        """Stop backward from writing into these buffers (the parameters changed, or another
        wrapper of them takes its steps)."""
        for bucket in self.buckets + [self.spare] * (self.spare is not None):
            for p, view in zip(bucket.params, bucket.views):
                if getattr(p, "_grad_view", None) is view:
                    p._grad_view = None

    def _fill(self, bucket):
        """Make the bucket hold the gradients as they are now: a gradient that is not its
        view is copied in (and .grad becomes the view after the reduction), no gradient is
        zeros."""
        for p, view in zip(bucket.params, bucket.views):
            grad = p.grad
            if grad is None:
                view[...] = 0
            else:
                g = grad_array(grad)
                if g is not view:
                    if backend.get_array_module(g) is not backend.get_array_module(view):
                        g = backend.to_device(g, backend.device_of(view))
                    view[...] = g.reshape(view.shape)

    def allreduce(self, world, average=True, totals=None):
        """Sum (average) the gradients over the ranks in place in the buckets; every
        parameter with a gradient on some rank ends with .grad the view of its averaged
        gradient. `totals`, a float64 array (this rank's loss weight, then any numbers), is
        summed in the first bucket's message too, in place, and the gradients are divided by
        its first entry (the weight of the global batch) instead of the world size. Returns
        the bytes this rank handed to the allreduce."""
        from .distributed import join_totals, split_totals
        from .tensor import Tensor
        extra = np.array([p.grad is not None for p in self.params], np.float64)
        if totals is not None:
            extra = np.concatenate([extra, split_totals(totals, self.buckets[0].flat.dtype)])
        self._room(len(extra))
        if self.out is not None:
            return self._allreduce_single(world, average, totals, extra)
        counts = None
        sent = 0
        for bucket in self.buckets:
            self._fill(bucket)
            dtype = bucket.flat.dtype
            size = bucket.grads.size
            message = bucket.grads
            if counts is None:   # NOTE: counts up to N are exact in any float type
                message = bucket.flat[:size + len(extra)]
                message[size:] = backend.get_array_module(message).asarray(extra.astype(dtype))
            world.allreduce_(message)
            sent += message.nbytes
            if counts is None:
                extra = backend.to_numpy(message[size:])
                counts = extra[:len(self.params)]
                if totals is not None:
                    totals[...] = join_totals(extra[len(self.params):])
            if average:
                bucket.grads *= dtype.type(1.0 / (world.size if totals is None else totals[0]))
            for p, i, view in zip(bucket.params, bucket.index, bucket.views):
                if counts[i] > 0 and (p.grad is None or grad_array(p.grad) is not view):
                    p.grad = Tensor._wrap(view)
        return sent

    def _allreduce_single(self, world, average, totals, extra):
        """allreduce() with one synchronisation (module docstring): the sum lands in the
        private buffer the .grad views, and backward writes the other window next."""
        from .distributed import join_totals
        from .tensor import Tensor
        bucket, out = self.buckets[0], self.out
        self._fill(bucket)
        size, dtype = bucket.grads.size, bucket.flat.dtype
        end = size + len(extra)
        bucket.flat[size:end] = extra
        world.sum_into_(bucket.flat[:end], out.flat[:end])
        extra = out.flat[size:end].astype(np.float64)
        counts = extra[:len(self.params)]
        if totals is not None:
            totals[...] = join_totals(extra[len(self.params):])
        if average:
            out.grads *= dtype.type(1.0 / (world.size if totals is None else totals[0]))
        for p, i, view in zip(out.params, out.index, out.views):
            if counts[i] > 0:
                p.grad = Tensor._wrap(view)
        # NOTE: the other ranks may still be reading this bucket: the next backward writes
        # the other one (written again only after the next sum, which they join when done)
        self.buckets[0], self.spare = self.spare, bucket
        self.attach()
        return end * dtype.itemsize
