"""DistributedOptimizer: the gradients averaged over the ranks before each step (allreduce after
or during backward, or the optimizer sharded), and what fit does before its first epoch."""
import numpy as np

from . import backend, distributed
from .row_parallel import cut_optimizer_state_dict, gather_optimizer_states, is_split


class DistributedOptimizer:
    """Wrap an optimizer so that step() first averages the gradients over the ranks.

    Everything else (param_groups, zero_grad, schedulers) is the wrapped optimizer's, so a
    hand-written loop and a learning-rate scheduler stay as they are. With per-rank losses
    that are means over the rank's batch of equal size, the averaged gradient is the gradient
    of the mean over the global batch; for a weighted or uneven mean use global_mean() for the
    loss. `bytes_sent` counts what this rank handed to MPI/NCCL.

    overlap=True starts each bucket's allreduce during backward(), as soon as its gradients
    are final (gradient_overlap.py); step() then waits for the rest. None: TINYLESION_OVERLAP
    =1/0, else OVERLAP. `wait_s` adds up the time synchronize() spent (waiting, with overlap).

    shard=True shards the optimizer (sharded_optimizer.py, ZeRO stage 1): the gradients are
    reduce-scattered, each rank updates 1/N of the weights with 1/N of the optimizer state,
    and the weights are allgathered; the weights are those of the unsharded step. The
    gradients left in .grad are then this rank's own, not the average; state_dict() is
    collective (every rank calls it) and gives the whole state. Not with overlap=True.

    To change the averaged gradients before the update (clipping): synchronize(), then
    clip_grad_norm_() (or, unsharded, anything on .grad), then step(), which does not reduce
    again until the next zero_grad() or step().

    The weights of Linear layers split over the ranks (row_parallel.py) stay out of the
    reductions: their gradients are already summed over the ranks, and are only scaled as the
    others are averaged; each rank steps its own columns. state_dict() is then collective
    and gathers their state whole; load_state_dict() takes a whole one.

    shared_memory=True allocates the buffers of the allreduce after backward and of the
    sharded step in shared-memory windows between the ranks of each machine, summed and
    copied there without MPI's buffers (shared_window.py; MPI's collectives where the MPI
    library cannot); None: TINYLESION_SHARED_WINDOW=1/0, else shared_window.SHARED.
    """

    def __init__(self, optimizer, world=None, bucket_bytes=None, overlap=None,
                 shard=False, shared_memory=None):
        from .gradient_overlap import OverlappedAllreduce, default_overlap
        from .sharded_optimizer import ShardedStep, elementwise
        if shard and overlap:
            raise ValueError("DistributedOptimizer: shard=True and overlap=True together are "
                             "not supported (the sharded step reduces after backward)")
        self.__dict__["optimizer"] = optimizer
        self.__dict__["world"] = world
        if bucket_bytes is None:
            bucket_bytes = distributed.BUCKET_BYTES
        self.__dict__["bucket_bytes"] = int(bucket_bytes)
        self.__dict__["bytes_sent"] = 0
        self.__dict__["wait_s"] = 0.0
        self.__dict__["synchronized"] = False
        self.__dict__["split_scaled"] = False   # scale_split_gradients() since synchronize()
        if shared_memory is None:
            from .shared_window import default_shared
            shared_memory = default_shared()
        self.__dict__["shared_memory"] = bool(shared_memory)
        overlap = False if shard else default_overlap() if overlap is None else bool(overlap)
        w = distributed._world if world is None else world
        reducer = sharded = None
        if shard and w is not None and w.size > 1:
            if not elementwise(optimizer):
                raise ValueError(f"DistributedOptimizer(shard=True): {type(optimizer).__name__}"
                                 " is not one of tinylesion.optim's element-by-element "
                                 "optimizers; use shard=False")
            sharded = ShardedStep(optimizer, w, bucket_bytes, shared=self.shared_memory)
        if overlap and w is not None and w.size > 1:
            params = [p for p in self._replicated() if getattr(p, "requires_grad", True)]
            reducer = OverlappedAllreduce(params, w, bucket_bytes) if params else None
        self.__dict__["overlap"] = reducer
        self.__dict__["sharded"] = sharded
        self.__dict__["buckets"] = None
        if reducer is None and sharded is None and w is not None and w.size > 1:
            self._gradient_buckets()   # so that the first backward() writes into them

    def _params(self):
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def _replicated(self):
        """The parameters every rank holds whole (all but the split Linear weights)."""
        return [p for p in self._params() if not is_split(p)]

    def _split(self):
        return [p for p in self._params() if is_split(p) and p.grad is not None
                and getattr(p, "requires_grad", True)]

    def _gradient_buckets(self):
        """The buckets the replicated trainable parameters' gradients live in (None: no
        such parameter), made anew when those parameters changed (frozen, unfrozen, moved,
        cast)."""
        from .gradient_buckets import GradientBuckets, layout
        params = [p for p in self._replicated() if getattr(p, "requires_grad", True)]
        current = self.buckets
        if current is None or current.layout != layout(params):
            if current is not None:
                current.release()
            self.__dict__["buckets"] = (
                GradientBuckets(params, self.bucket_bytes, world=self._world(),
                                shared=self.shared_memory) if params else None)
        return self.buckets

    @property
    def collective_state_dict(self):
        """True when state_dict() needs every rank (sharded, or split weights): fit calls it
        on every rank then."""
        return self.sharded is not None or any(is_split(p) for p in self._params())

    def scale_split_gradients(self, weight):
        """After zero_grad() and before backward() of this rank's summed loss of total weight
        `weight`, when synchronize(loss=(weight, ...)) follows: with Linear layers split over
        the ranks, the global batch's weight is summed over the ranks now (one float64
        allreduce), and their backward divides their output gradient by it, so that
        synchronize() skips the pass over the split weights' gradients (dense_nn's first
        layer: 308 MB per rank of 2); a zero_grad() before backward undoes it (the pass
        again). Without split layers, nothing (no reduction). Returns the global weight, or
        None."""
        from .row_parallel import GRAD_SCALE
        split = [p for p in self._params() if is_split(p) and getattr(p, "requires_grad", True)]
        if not split:
            return None
        total = self._world().sum(float(weight))[0]
        for p in split:
            setattr(p, GRAD_SCALE, 1.0 / total)
        self.__dict__["split_scaled"] = True
        return total

    def synchronize(self, loss=None):
        """Average the gradients now (step() does it first, unless this was called since the
        last zero_grad() or step()).

        loss=(weight, value, count): backward() was called on this rank's summed (weighted)
        loss, of total weight `weight` (the batch size for an unweighted mean), value `value`
        and `count` samples. These travel in the gradients' own message, the gradients are
        divided by the global batch's weight, and the global batch's (mean loss, count) is
        returned: the step of distributed.global_loss with one reduction instead of two.
        """
        import time
        t0 = time.perf_counter()
        world = distributed._world if self.world is None else self.world
        totals = None
        if loss is not None:
            totals = np.array([float(v) for v in loss], np.float64)
            if world is None or world.size == 1:   # one rank: its numbers are the global ones
                for p in self._params():
                    if p.grad is not None and getattr(p, "requires_grad", True):
                        p.grad.array *= p.grad.array.dtype.type(1.0 / totals[0])
        if self.sharded is not None:
            sent = self.sharded.synchronize(totals)
        elif self.overlap is not None:
            sent = self.overlap.synchronize(self._replicated(), totals=totals)
        elif world is not None and world.size > 1:
            buckets = self._gradient_buckets()
            sent = 0 if buckets is None else buckets.allreduce(world, totals=totals)
        else:
            sent = 0
        split = self._split()
        prescaled, self.__dict__["split_scaled"] = self.split_scaled, False
        if prescaled:
            self._clear_split_scale()
            if totals is None:
                raise ValueError("DistributedOptimizer: scale_split_gradients() before "
                                 "backward needs synchronize(loss=(weight, value, count)) "
                                 "after it")
        if split:
            if totals is not None and sent == 0 and self.sharded is None:
                world.allreduce_(totals)   # no replicated gradient carried them
            if not prescaled:
                # NOTE: the sum over the ranks already: scaled as the others are averaged
                scale = 1.0 / (world.size if totals is None else totals[0])
                for p in split:
                    p.grad.array *= p.grad.array.dtype.type(scale)
        self.__dict__["bytes_sent"] += sent
        self.__dict__["wait_s"] += time.perf_counter() - t0
        self.__dict__["synchronized"] = True
        if totals is not None:
            return totals[1] / totals[0], int(round(totals[2]))
        return None

    def _clear_split_scale(self):
        from .row_parallel import GRAD_SCALE
        for p in self._params():
            if getattr(p, GRAD_SCALE, None) is not None:
                setattr(p, GRAD_SCALE, None)

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        if not self.synchronized:
            self.synchronize()
        self.__dict__["synchronized"] = False
        if self.sharded is not None:
            self.__dict__["bytes_sent"] += self.sharded.step()
            for p in self._split():   # each rank its own columns, with their own state
                group = next(g for g in self.optimizer.param_groups
                             if any(q is p for q in g["params"]))
                state = self.optimizer.state.setdefault(p, {})
                self.optimizer._update(p, p.grad.array, state, group)
        else:
            self.optimizer.step()
        return loss

    def zero_grad(self, set_to_none=True):
        self.__dict__["synchronized"] = False
        if self.split_scaled:   # (called before zero_grad: the pass after the reduction)
            self.__dict__["split_scaled"] = False
            self._clear_split_scale()
        if self.sharded is not None:
            self.sharded.synchronized = False
        result = self.optimizer.zero_grad(set_to_none)
        if not set_to_none and self.buckets is not None:
            self.buckets.zeroed()   # (the single-synchronisation path: gradient_buckets.py)
        return result

    def clip_grad_norm_(self, max_norm, norm_type=2.0):
        """Scale the averaged gradients so that their total norm is at most max_norm, as
        nn.utils.clip_grad_norm_ over all parameters (synchronizes first when needed);
        returns the total norm before clipping (a float)."""
        if not self.synchronized:
            self.synchronize()
        split = self._split()
        if self.sharded is not None:
            return self.sharded.clip_grad_norm_(max_norm, norm_type, split)
        from .nn.utils import clip_grad_norm_
        if split:
            from .sharded_optimizer import clip_with_split
            return clip_with_split([p for p in self._replicated() if p.grad is not None],
                                   split, max_norm, norm_type, self._world())
        return float(clip_grad_norm_([p for p in self._params() if p.grad is not None],
                                     max_norm, norm_type).item())

    def _world(self):
        return distributed._world if self.world is None else self.world

    def state_dict(self):
        """The wrapped optimizer's state_dict (sharded or with split weights: gathered from
        every rank, collective)."""
        saved = self.optimizer.state
        if any(is_split(p) for p in self._params()):
            self.optimizer.state = {**saved, **gather_optimizer_states(self.optimizer,
                                                                       self._world())}
        try:
            if self.sharded is not None:
                return self.sharded.state_dict()
            return self.optimizer.state_dict()
        finally:
            self.optimizer.state = saved

    def load_state_dict(self, state_dict):
        """Load a whole state_dict (written sharded or not, split or not, by any number of
        ranks)."""
        if isinstance(state_dict, dict) and any(is_split(p) for p in self._params()):
            state_dict = cut_optimizer_state_dict(self.optimizer, state_dict)
        if self.sharded is not None:
            return self.sharded.load_state_dict(state_dict)
        return self.optimizer.load_state_dict(state_dict)

    def __getattr__(self, name):
        return getattr(self.__dict__["optimizer"], name)

    def __setattr__(self, name, value):
        if name in self.__dict__:
            self.__dict__[name] = value
        else:
            setattr(self.optimizer, name, value)

    def __repr__(self):
        return f"DistributedOptimizer({self.optimizer!r})"


def prepare_fit(model, optimizer, train_loader, val_loader=None, world=None, overlap=None,
                shard=None, split=None):
    """What fit does on several ranks before its first epoch: rank 0's weights and buffers
    everywhere, each loader serving this rank's shard, different dropout draws per rank,
    large Linear layers split over the ranks (row_parallel.py; split None: as
    TINYLESION_SPLIT_LINEAR says, else by the size of each weight and the bytes moved at the
    loader's batch size; only for an element-by-element optimizer); returns the optimizer
    wrapped in DistributedOptimizer (unless it already is; overlap: as DistributedOptimizer's;
    shard None: as TINYLESION_SHARD_OPTIMIZER says, else by the size of the trainable
    parameters left: sharded_optimizer.choose)."""
    from .gradient_overlap import default_overlap
    from .row_parallel import default_split, split_linear_layers
    from .sharded_optimizer import choose, default_shard, elementwise
    world = distributed._world if world is None else world
    distributed.broadcast_parameters(model.state_dict())
    inner = getattr(optimizer, "optimizer", optimizer)
    if not isinstance(optimizer, DistributedOptimizer) and elementwise(inner):
        split_linear_layers(model, world, inner, default_split() if split is None else split,
                            batch=getattr(train_loader, "batch_size", None))
    distributed.shard_loader(train_loader, world, train=True)
    if val_loader is not None:
        distributed.shard_loader(val_loader, world, train=False)
    if world.rank > 0:  # NOTE: mixed from rank 0's state, so a resumed run draws the same
        state = np.random.SeedSequence([backend.generator(backend.CPU).integers(2 ** 62),
                                        world.rank])
        backend.manual_seed(int(state.generate_state(1, np.uint64)[0] >> 1))
    if isinstance(optimizer, DistributedOptimizer):
        return optimizer
    if overlap is None:
        overlap = default_overlap()
    shard = choose(optimizer, default_shard() if shard is None else shard, overlap)
    return DistributedOptimizer(optimizer, world, overlap=overlap, shard=shard)


def describe_step(optimizer):
    """How a DistributedOptimizer's step reduces, in words for the log."""
    world = distributed._world if optimizer.world is None else optimizer.world
    split = [p for p in optimizer._params() if is_split(p)]
    if split:
        return (f"{describe_reduction(optimizer, world)}; {len(split)} Linear weight(s) split "
                f"over the ranks by input features (each rank its 1/{world.size} of the "
                f"columns, activations exchanged instead of their gradients)")
    return describe_reduction(optimizer, world)


def describe_reduction(optimizer, world):
    """How the replicated gradients are reduced, in words."""
    if getattr(optimizer, "sharded", None) is not None:
        where = (" in shared-memory windows between the ranks of each machine"
                 if optimizer.sharded.shared else "")
        return (f"optimizer sharded over the ranks (gradients reduce-scattered after backward, "
                f"each rank updates 1/{world.size} of the weights, which are allgathered"
                f"{where})")
    if getattr(optimizer, "overlap", None) is not None:
        return "gradient allreduce overlapped with backward"
    buckets = getattr(optimizer, "buckets", None)
    if buckets is not None and buckets.shared:
        return ("gradient allreduce after backward, summed in shared-memory windows between "
                "the ranks of each machine")
    return "gradient allreduce after backward"
