"""The optimizer sharded over the ranks (ZeRO stage 1): each rank updates 1/N of the weights.

DistributedOptimizer(..., shard=True) (fit's default from 16 MB of trainable weights) replaces
"allreduce the gradients, every rank updates every weight" with: the gradients of each ~16 MB
bucket reduce-scattered (rank r receives the averaged gradient of the r-th of N equal segments
of the bucket), each rank runs the optimizer's own update on its segments only, with the
optimizer state of those segments only, and the updated weights allgathered. A ring allreduce
is a reduce-scatter followed by an allgather, so the link carries the same bytes; the update's
memory traffic and the optimizer state per rank are 1/N.

The update is the wrapped optimizer's `_update` on views of the parameters: every optimizer of
tinylesion.optim is element by element, so a segment's weights come out as the unsharded step
makes them, bit for bit. The presence of each parameter's gradient (a count of the ranks that
have one) rides in the first bucket's message, after each rank's segment. state_dict()
gathers the segments into the optimizer's ordinary state_dict (collective: every rank calls
it); load_state_dict() and a wrapped optimizer that already holds state (a resumed run) are
cut into this rank's segments, so a checkpoint moves freely between sharded and unsharded
runs and world sizes. Parameters frozen, unfrozen, moved or cast between steps: the state is
gathered and cut again for the new layout. The gradients live in the buckets' buffers, as
the allreduce's do (gradient_buckets.py): backward writes each one there, in place, unless
the first bucket's count slots or a bucket's end cut it (then it is copied in); the
allgather of the weights goes through a buffer of its own.
"""
import math
import os
import types

import numpy as np

from . import backend
from .gradient_buckets import grad_array

SHARD_ENV = "TINYLESION_SHARD_OPTIMIZER"
TOTALS = 3   # numbers that may ride with the presence counts (loss weight, value, count)
# fit's default on several ranks (TINYLESION_SHARD_OPTIMIZER=1/0 overrides; README): sharded
# when the trainable parameters fill more than one gradient bucket (None: decide by size)
SHARD = None
SHARD_MIN_BYTES = 16 << 20


def elementwise(optimizer):
    """True when the optimizer's update treats every element on its own (all of tinylesion's:
    SGD, Adam, AdamW, NAdam, RMSprop, Adadelta, Adagrad), so that it may run on segments."""
    from .optim import SGD, Adadelta, Adagrad, Adam, NAdam, RMSprop
    own = {cls._update for cls in (SGD, Adam, NAdam, RMSprop, Adadelta, Adagrad)}
    return getattr(type(optimizer), "_update", None) in own


def choose(optimizer, setting=None, overlap=False):
    """Whether fit shards this optimizer: `setting` (True/False; None: SHARD_MIN_BYTES of
    trainable parameters or more), never with the overlapped allreduce, and only for an
    element-by-element optimizer."""
    if overlap or not elementwise(optimizer):
        return False
    if setting is not None:
        return bool(setting)
    # NOTE: below a bucket the update costs less than the second collective of a step
    # (reduce-scatter, then allgather) takes to line the ranks up: logistic_regression
    from .row_parallel import is_split
    size = sum(p.array.nbytes for g in optimizer.param_groups for p in g["params"]
               if getattr(p, "requires_grad", True) and not is_split(p))
    return size >= SHARD_MIN_BYTES


def default_shard(env=None):
    """Sharding on, off, or None (by size: choose) when fit is not told:
    TINYLESION_SHARD_OPTIMIZER=1/0, else SHARD. Asked for together with TINYLESION_OVERLAP=1
    (which it cannot honour: the sharded step reduces after backward), a DistributedError."""
    from .distributed import DistributedError, switch_setting
    from .gradient_overlap import OVERLAP_ENV
    setting = switch_setting(env, SHARD_ENV, SHARD, "each rank updates 1/N of the weights",
                             "every rank updates all of them")
    if setting and (os.environ if env is None else env).get(OVERLAP_ENV, "").strip() == "1":
        raise DistributedError(f"{SHARD_ENV}=1 and {OVERLAP_ENV}=1 together: the sharded "
                               "optimizer reduces the gradients after backward, it cannot "
                               "overlap them; set one of the two to 0")
    return setting


class _Chunk:
    """One bucket: a run of the flat concatenation of a (device, dtype) group's parameters,
    cut into N segments of k elements (the last padded with zeros), each followed by `flags`
    slots for the presence counts (the first bucket only)."""

    def __init__(self, start, end, size, flags, xp, dtype, shared_zeros=None):
        self.start, self.end = start, end
        self.k = -(-(end - start) // size)
        self.flags = flags
        self.width = self.k + flags
        self.pieces = []   # (param index, a, b, rank, offset): param[a:b] <-> row rank[offset:]
        self.xp, self.dtype = xp, dtype
        self.recv = xp.zeros(self.width, dtype)   # this rank's averaged segment
        self.grads = _zeros(xp, size * self.width, dtype, shared_zeros).reshape(size, self.width)


def _zeros(xp, count, dtype, shared_zeros=None):
    """A flat zeroed buffer: in a shared-memory window (shared_zeros: World.shared_zeros,
    collective) when given and on the CPU and the world gives one, else an ordinary array."""
    flat = shared_zeros(count, dtype) if shared_zeros is not None and xp is np else None
    return xp.zeros(count, dtype) if flat is None else flat


def _in_window(world, array):
    shared = getattr(world, "_shared", None)
    return bool(shared) and shared.window_of(array) is not None


class _Piece:
    """This rank's share of one parameter in one chunk (or an empty share, for its scalars)."""

    __slots__ = ("index", "a", "b", "chunk", "offset", "state")

    def __init__(self, index, a, b, chunk, offset):
        self.index, self.a, self.b, self.chunk, self.offset = index, a, b, chunk, offset
        self.state = {}


class ShardedStep:
    """The layout, buffers and per-segment optimizer state of one sharded optimizer."""

    def __init__(self, optimizer, world, bucket_bytes, shared=False):
        self.optimizer, self.world, self.bucket_bytes = optimizer, world, int(bucket_bytes)
        # NOTE: the reduce-scatter's and allgather's buffers in shared-memory windows
        # (shared_window.py: summed and copied there on one machine)
        self.shared_zeros = getattr(world, "shared_zeros", None) if shared else None
        self.scratch = {}
        self.synchronized = False
        self.views = {}
        self._build(self._trainable())
        self._adopt()

    # -- layout ----------------------------------------------------------------------------
    @property
    def shared(self):
        """True when the reduce-scatter's buffers live in shared-memory windows."""
        return any(_in_window(self.world, chunk.grads) for chunk in self.chunks)

    def _trainable(self):
        from .row_parallel import is_split
        return [p for g in self.optimizer.param_groups for p in g["params"]
                if getattr(p, "requires_grad", True) and not is_split(p)]

    @staticmethod
    def _key(params):
        return [(id(p), backend.device_of(p.array).name, p.array.dtype.str, p.array.shape)
                for p in params]

    def _build(self, params):
        size, rank = self.world.size, self.world.rank
        for p in params:   # NOTE: the segments are views of p.array: it must be one block
            if not p.array.flags.c_contiguous:
                p.array = backend.get_array_module(p.array).ascontiguousarray(p.array)
        self.params, self.layout = params, self._key(params)
        self.group_of = {id(p): g for g in self.optimizer.param_groups for p in g["params"]}
        groups = {}
        for j, p in enumerate(params):
            groups.setdefault((backend.device_of(p.array).name, p.array.dtype.str), []).append(j)
        self.chunks, own = [], {j: [] for j in range(len(params))}
        for members in groups.values():
            first = params[members[0]].array
            xp, dtype = backend.get_array_module(first), first.dtype
            starts = np.cumsum([0] + [params[j].array.size for j in members])
            total = int(starts[-1])
            limit = max(size, self.bucket_bytes // dtype.itemsize)
            for start in range(0, total, limit):
                chunk = _Chunk(start, min(start + limit, total), size,
                               len(params) + 2 * TOTALS if not self.chunks else 0, xp, dtype,
                               self.shared_zeros)
                self.chunks.append(chunk)
                for s in range(size):
                    lo = chunk.start + s * chunk.k
                    hi = min(lo + chunk.k, chunk.end)
                    if hi <= lo:
                        continue
                    m = int(np.searchsorted(starts, lo, side="right")) - 1
                    while m < len(members) and starts[m] < hi:
                        a, b = max(lo, starts[m]), min(hi, starts[m + 1])
                        if b > a:
                            piece = (members[m], int(a - starts[m]), int(b - starts[m]), s,
                                     int(a - lo))
                            chunk.pieces.append(piece)
                            if s == rank:
                                own[members[m]].append(_Piece(*piece[:3], chunk, piece[4]))
                        m += 1
        for j, pieces in own.items():
            if not pieces:   # NOTE: an empty share keeps the scalar state (Adam's step count)
                pieces.append(_Piece(j, 0, 0, None, 0))   # in step on every rank
        self.own = [piece for j in range(len(params)) for piece in own[j]]
        self.first_own = {piece.index: piece for piece in reversed(self.own)}
        self._make_views()

    def _make_views(self):
        """Each parameter whose pieces lie end to end in one chunk's buffer (all but those
        cut by the first chunk's count slots or by the end of a chunk) gets its gradient
        there: its `_grad_view`, written by backward (gradient_buckets.py), so that the
        reduce-scatter reads it with no copy."""
        self.release()
        spans = {}
        for chunk in self.chunks:
            for j, a, b, s, o in chunk.pieces:
                spans.setdefault(j, []).append((chunk, a, b, s * chunk.width + o))
        self.views = {}
        for j, parts in spans.items():
            p = self.params[j]
            chunk, _, _, start = parts[0]
            if all(c is chunk and at == start + a for c, a, _, at in parts):
                flat = chunk.grads.reshape(-1)
                self.views[j] = flat[start:start + p.array.size].reshape(p.array.shape)
        self.attach()

    def attach(self):
        """Make backward write the gradients into the buffers (again after release())."""
        self.attached = [(self.params[j], view) for j, view in self.views.items()]
        for p, view in self.attached:
            p._grad_view = view

    def release(self):
        """Stop backward from writing into the buffers."""
        for p, view in getattr(self, "attached", ()):
            if getattr(p, "_grad_view", None) is view:
                p._grad_view = None

    def _adopt(self):
        """Cut the wrapped optimizer's full state of the sharded parameters into this rank's
        segments (a resumed run, load_state_dict, a new layout); it keeps the others'."""
        state = self.optimizer.state
        for piece in self.own:
            p = self.params[piece.index]
            full = state.get(p)
            piece.state = {}
            for name, value in (full or {}).items():
                if _is_array(value) and value.size == p.array.size:
                    flat = backend.to_device(value, backend.device_of(p.array))
                    flat = flat.astype(p.array.dtype, copy=False).reshape(-1)
                    piece.state[name] = flat[piece.a:piece.b].copy()
                else:
                    piece.state[name] = value
        for p in self.params:
            state.pop(p, None)

    def _rebuild_if_changed(self):
        params = self._trainable()
        if self._key(params) != self.layout:   # frozen, unfrozen, added, moved or cast
            self.release()
            self.optimizer.state.update(self.full_states())
            self._build(params)
            self._adopt()
            self.synchronized = False

    # -- collectives -------------------------------------------------------------------------
    def _buffer(self, chunk):
        """The (N, width) staging buffer of the chunk's group, shared by its chunks (for the
        allgathers: the gradients stay in chunk.grads)."""
        key = (chunk.xp.__name__, chunk.dtype.str)
        rows = self.world.size
        buf = self.scratch.get(key)
        if buf is None or buf.size < rows * chunk.width:
            buf = self.scratch[key] = _zeros(chunk.xp, rows * chunk.width, chunk.dtype,
                                             self.shared_zeros)
        return buf[:rows * chunk.width].reshape(rows, chunk.width)

    def synchronize(self, totals=None):
        """Reduce-scatter every bucket: this rank's segments of the averaged gradients (and
        every parameter's presence count). `totals` (float64: the loss weight, then up to
        two numbers) are summed in the first bucket too, in place, and the gradients divided
        by the first instead of the world size. Returns the bytes handed to the reductions."""
        from .distributed import join_totals, split_totals
        from .tensor import Tensor
        self._rebuild_if_changed()
        present = np.array([p.grad is not None for p in self.params], np.float64)
        extra = np.zeros(TOTALS)
        if totals is not None:
            extra[:len(totals)] = totals
        sent = 0
        for chunk in self.chunks:
            buf = chunk.grads
            for s in range(self.world.size):   # the padding after the bucket's last element
                buf[s, max(0, min(chunk.k, chunk.end - chunk.start - s * chunk.k)):chunk.k] = 0
            for j, a, b, s, o in chunk.pieces:
                grad = self.params[j].grad
                if grad is None:
                    buf[s, o:o + b - a] = 0
                elif grad_array(grad) is not self.views.get(j):   # (not written there)
                    buf[s, o:o + b - a] = grad_array(grad).reshape(-1)[a:b]
            if chunk.flags:
                flags = np.concatenate([present, split_totals(extra, chunk.dtype)])
                buf[:, chunk.k:] = chunk.xp.asarray(flags.astype(chunk.dtype))
            self.world.reduce_scatter_(buf, chunk.recv)
            sent += buf.nbytes
            if chunk.flags:
                flags = backend.to_numpy(chunk.recv[chunk.k:])
                self.present = flags[:len(self.params)] > 0
                if totals is not None:
                    totals[...] = join_totals(flags[len(self.params):])[:len(totals)]
            scale = 1.0 / (self.world.size if totals is None else totals[0])
            chunk.recv[:chunk.k] *= chunk.dtype.type(scale)
        for j, view in self.views.items():   # copied in: the next backward adds there
            grad = self.params[j].grad
            if grad is not None and grad_array(grad) is not view:
                self.params[j].grad = Tensor._wrap(view)
        if not self.chunks:
            self.present = np.zeros(0, bool)
            if totals is not None:   # nothing to train here: the numbers alone
                self.world.allreduce_(totals)
        self.synchronized = True
        return sent

    def step(self):
        """The update of this rank's segments, then every rank's weights allgathered.
        Returns the bytes handed to the allgather (this rank's segments)."""
        sent = 0 if self.synchronized else self.synchronize()
        view = types.SimpleNamespace(data=None)
        for piece in self.own:
            if not self.present[piece.index]:
                continue   # no gradient on any rank: not stepped, as Optimizer.step
            p = self.params[piece.index]
            view.array = p.array.reshape(-1)[piece.a:piece.b]
            if piece.chunk is None:
                g = view.array
            else:
                g = piece.chunk.recv[piece.offset:piece.offset + piece.b - piece.a]
            self.optimizer._update(view, g, piece.state, self.group_of[id(p)])
        rank = self.world.rank
        for chunk in self.chunks:
            buf = self._buffer(chunk)
            for j, a, b, s, o in chunk.pieces:
                if s == rank:
                    buf[s, o:o + b - a] = self.params[j].array.reshape(-1)[a:b]
            self.world.allgather_(buf)
            sent += buf[rank].nbytes
            for j, a, b, s, o in chunk.pieces:
                if s != rank:
                    self.params[j].array.reshape(-1)[a:b] = buf[s, o:o + b - a]
        self.synchronized = False
        return sent

    def clip_grad_norm_(self, max_norm, norm_type=2.0, split=()):
        """Scale the averaged gradient segments so that the whole gradient's norm is at most
        max_norm (one float64 reduction); the total norm before clipping (a float). `split`:
        the gradients of this rank's columns of split Linear weights, counted and scaled too."""
        from mpi4py import MPI
        norm_type = float(norm_type)
        if not (norm_type == math.inf or norm_type > 0):
            raise ValueError(f"clip_grad_norm_ on a sharded optimizer: norm_type={norm_type} "
                             "(use a positive number or inf)")
        if not self.synchronized:
            self.synchronize()
        local = 0.0
        for chunk in self.chunks:
            a = chunk.xp.abs(chunk.recv[:chunk.k].astype(np.float64))
            if a.size:
                part = a.max() if norm_type == math.inf else (a ** norm_type).sum()
                local = max(local, float(part)) if norm_type == math.inf \
                    else local + float(part)
        local = _norm_part(local, split, norm_type)
        buf = np.array([local])
        self.world.comm.Allreduce(MPI.IN_PLACE, buf,
                                  op=MPI.MAX if norm_type == math.inf else MPI.SUM)
        total = float(buf[0]) if norm_type == math.inf else float(buf[0]) ** (1 / norm_type)
        coef = min(float(max_norm) / (total + 1e-6), 1.0)
        if coef < 1.0:
            for chunk in self.chunks:
                chunk.recv[:chunk.k] *= chunk.dtype.type(coef)
            for p in split:
                p.grad.array *= p.grad.array.dtype.type(coef)
        return total

    # -- checkpoints -------------------------------------------------------------------------
    def full_states(self):
        """{parameter: its whole optimizer state} for the sharded parameters, gathered from
        every rank's segments (collective: every rank calls it, in the same order)."""
        full = {}
        for j, p in enumerate(self.params):
            piece = self.first_own[j]
            full[p] = {name: value for name, value in piece.state.items()
                       if not _is_array(value)}
        names = {j: sorted(n for n, v in self.first_own[j].state.items() if _is_array(v))
                 for j in range(len(self.params))}
        shapes = dict(enumerate(s for _, _, _, s in self.layout))
        rank = self.world.rank
        for chunk in self.chunks:
            buf = self._buffer(chunk)
            mine = {(pc.index, pc.a): pc for pc in self.own if pc.chunk is chunk}
            for name in sorted({n for j, *_ in chunk.pieces for n in names[j]}):
                buf[...] = 0
                for j, a, b, s, o in chunk.pieces:
                    if s == rank and name in names[j]:
                        buf[s, o:o + b - a] = mine[(j, a)].state[name]
                self.world.allgather_(buf)
                for j, a, b, s, o in chunk.pieces:
                    if name in names[j]:
                        p = self.params[j]
                        whole = full[p].get(name)
                        if whole is None:
                            whole = full[p][name] = chunk.xp.zeros(shapes[j], chunk.dtype)
                        whole.reshape(-1)[a:b] = buf[s, o:o + b - a]
        for j, p in enumerate(self.params):   # a parameter of no element (never reached)
            for name in names[j]:
                if name not in full[p]:
                    full[p][name] = self.first_own[j].state[name].reshape(shapes[j])
        return {p: state for p, state in full.items() if state}

    def state_dict(self):
        """The wrapped optimizer's state_dict, with the sharded state gathered (collective)."""
        saved = self.optimizer.state
        self.optimizer.state = {**saved, **self.full_states()}
        try:
            return self.optimizer.state_dict()
        finally:
            self.optimizer.state = saved

    def load_state_dict(self, state_dict):
        """Check and load a whole state_dict (any world size, sharded or not), then keep this
        rank's segments of it."""
        self.optimizer.load_state_dict(state_dict)
        params = self._trainable()
        if self._key(params) != self.layout:
            self._build(params)
        self._adopt()
        self.synchronized = False


def _norm_part(local, params, norm_type):
    """`local` (a max or a sum of |g|^p) with the gradients of `params` counted in."""
    for p in params:
        a = backend.get_array_module(p.grad.array).abs(p.grad.array.astype(np.float64))
        if a.size:
            part = float(a.max() if norm_type == math.inf else (a ** norm_type).sum())
            local = max(local, part) if norm_type == math.inf else local + part
    return local


def clip_with_split(replicated, split, max_norm, norm_type, world):
    """clip_grad_norm_ over whole gradients (the same on every rank) and the columns of
    split weights (each rank its own; one float64 reduction): the total norm, a float."""
    from mpi4py import MPI
    norm_type = float(norm_type)
    if not (norm_type == math.inf or norm_type > 0):
        raise ValueError(f"clip_grad_norm_ with split Linear layers: norm_type={norm_type} "
                         "(use a positive number or inf)")
    buf = np.array([_norm_part(0.0, split, norm_type)])
    world.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.MAX if norm_type == math.inf else MPI.SUM)
    local = _norm_part(0.0, replicated, norm_type)
    total = max(local, float(buf[0])) if norm_type == math.inf else \
        (local + float(buf[0])) ** (1 / norm_type)
    coef = min(float(max_norm) / (total + 1e-6), 1.0)
    if coef < 1.0:
        for p in list(replicated) + list(split):
            p.grad.array *= p.grad.array.dtype.type(coef)
    return total


def _is_array(value):
    return isinstance(value, np.ndarray) or backend.is_cupy_array(value)
