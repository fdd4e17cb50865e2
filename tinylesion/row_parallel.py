"""Large Linear layers split over the ranks by input features (model parallelism inside a
data-parallel run): each rank keeps and updates only its columns of the weight.

A data-parallel step sends every weight's gradient between the ranks; for dense_nn's first
layer (150,528 → 1024, 617 MB of float32) that costs more than the step's arithmetic. Split
by input features (a "row-parallel" layer), rank r holds W[:, K_r] (K_r: its contiguous run of
the in_features, in rank order) and its optimizer state, and a step moves activations instead
of weights. Forward on this rank's B rows x: an all-to-all hands every rank the columns K_r of
every rank's rows (X_r, the global batch's rows in rank order), X_r W[:, K_r]ᵀ is the partial
output of all rows, and a reduce-scatter by rows gives each rank the sum over the ranks of its
own rows (+ the bias, replicated and averaged as any weight). Backward: dY of the global batch
(allgathered), dW[:, K_r] = dYᵀ X_r, already the sum of every rank's gradient (the optimizer
scales it as it averages the others: DistributedOptimizer), and the input's gradient, when
needed, by the all-to-all back. Every forward is collective: the ranks make the same number
of calls (the train sampler gives each rank every step; evaluation pads with batches of one
zero image).

split_linear_layers() (fit: prepare_fit, TINYLESION_SPLIT_LINEAR) splits a model's large
Linear layers in place, keeping their names and Parameter objects; whole_state_dict() and
unsplit_linear_layers() gather the whole weights back (collective). On GPUs the products run
on the device and the activations travel through NCCL (allgather and reduce-scatter of padded
segments), or through the host without NCCL; gathering whole weights goes through the host.
"""

import numpy as np

from . import backend
from .autograd import Function
from .nn.layers import Linear
from .tensor import Tensor

SPLIT_ENV = "TINYLESION_SPLIT_LINEAR"
# fit's default on several ranks (TINYLESION_SPLIT_LINEAR=1/0 overrides; README): a Linear
# layer is split when its weight has SPLIT_MIN_BYTES or more and splitting moves fewer bytes
# than its gradient's allreduce would at the run's batch size (split_pays)
SPLIT = None
SPLIT_MIN_BYTES = 16 << 20
# the attribute of a split weight's Parameter that, when set, is the factor its gradient takes
# in backward (1 / the global batch's loss weight: DistributedOptimizer.scale_split_gradients)
GRAD_SCALE = "row_parallel_grad_scale"


def _mpi():
    from mpi4py import MPI
    return MPI


def column_bounds(features, size):
    """The first column of each rank's run of `features` input features, and the end."""
    return [features * r // size for r in range(size)] + [features]


def _host(array):
    """A C-contiguous NumPy array of `array` (a copy when it is on a GPU)."""
    return np.ascontiguousarray(backend.to_numpy(array))


def _rows(world, count):
    """Every rank's number of rows (one Allgather of an int64)."""
    rows = np.zeros(world.size, np.int64)
    world.comm.Allgather(np.array([count], np.int64), rows)
    return rows


def _exchange_columns(world, x, bounds):
    """All-to-all: this rank's rows x (B, in) cut by columns; returns (the global batch's rows
    in rank order of this rank's columns, (ΣB, width), every rank's row count)."""
    rank = world.rank
    rows = _rows(world, x.shape[0])
    widths = np.diff(bounds)
    send = np.concatenate([x[:, bounds[s]:bounds[s + 1]].reshape(-1)
                           for s in range(world.size)])
    recv = np.empty(int(rows.sum()) * int(widths[rank]), x.dtype)
    world.comm.Alltoallv([send, (x.shape[0] * widths).tolist()],
                         [recv, (rows * widths[rank]).tolist()])
    return recv.reshape(int(rows.sum()), int(widths[rank])), rows


def _return_columns(world, gx_all, rows, bounds, features):
    """The all-to-all back: each rank's rows of gx_all (ΣB, width) to that rank; returns this
    rank's rows of the whole input gradient (B, features)."""
    rank = world.rank
    widths = np.diff(bounds)
    recv = np.empty(int(rows[rank]) * features, gx_all.dtype)
    world.comm.Alltoallv([np.ascontiguousarray(gx_all).reshape(-1),
                          (rows * widths[rank]).tolist()],
                         [recv, (rows[rank] * widths).tolist()])
    gx = np.empty((int(rows[rank]), features), gx_all.dtype)
    offset = 0
    for s in range(world.size):
        n = int(rows[rank] * widths[s])
        gx[:, bounds[s]:bounds[s + 1]] = recv[offset:offset + n].reshape(int(rows[rank]),
                                                                          int(widths[s]))
        offset += n
    return gx


# NOTE: NCCL has no all-to-all with counts; on the GPU the exchanges use its allgather and
# reduce-scatter on N equal segments of max(rows) rows each (the padding rows are zeros):
# the forward receives every rank's rows whole, N times the all-to-all's bytes, on the device

def _segments(xp, rows, width, dtype):
    return xp.zeros((len(rows), int(rows.max()), width), dtype)


def _nccl_rows(world, a, rows):
    """Every rank's rows of `a` (B_r, width), in rank order, on the device (NCCL allgather)."""
    xp = backend.get_array_module(a)
    buf = _segments(xp, rows, a.shape[1], a.dtype)
    buf[world.rank, :a.shape[0]] = a
    world.allgather_(buf)
    return xp.concatenate([buf[s, :int(rows[s])] for s in range(world.size)])


def _nccl_columns(world, x, rows, bounds):
    """The global batch's rows of this rank's columns (ΣB, width), through the allgather."""
    lo, hi = bounds[world.rank], bounds[world.rank + 1]
    return backend.get_array_module(x).ascontiguousarray(_nccl_rows(world, x, rows)[:, lo:hi])


def _nccl_own_rows(world, partial, rows):
    """This rank's rows of `partial` (ΣB, width) summed over the ranks (NCCL reduce-scatter)."""
    xp = backend.get_array_module(partial)
    buf = _segments(xp, rows, partial.shape[1], partial.dtype)
    starts = np.concatenate([[0], np.cumsum(rows)])
    for s in range(world.size):
        buf[s, :int(rows[s])] = partial[int(starts[s]):int(starts[s + 1])]
    own = xp.empty(buf.shape[1:], partial.dtype)
    world.reduce_scatter_(buf, own)
    return own[:int(rows[world.rank])]


def _nccl_return_columns(world, gx_all, rows, bounds, features):
    """This rank's rows of the whole input gradient: each rank's columns placed in a zero
    (ΣB, features) array, reduce-scattered by rows."""
    xp = backend.get_array_module(gx_all)
    lo, hi = bounds[world.rank], bounds[world.rank + 1]
    whole = xp.zeros((gx_all.shape[0], features), gx_all.dtype)
    whole[:, lo:hi] = gx_all
    return _nccl_own_rows(world, whole, rows)


class RowParallelLinearFunction(Function):
    """y = x Wᵀ + b with W split by columns over the ranks (see the module's docstring): x is
    this rank's rows, W this rank's columns, b the whole bias. The products run where the
    arrays are; the activations travel through MPI (host) or NCCL (CuPy arrays)."""

    def forward(self, x, W, b, world=None, bounds=None, param=None):
        from .ops.layers import _matmul
        self.world, self.bounds, self.has_bias = world, bounds, b is not None
        self.param = param   # the weight's Parameter: its GRAD_SCALE, read in backward
        self.shape, self.device = x.shape, backend.device_of(x)
        self.nccl = world.nccl is not None and backend.is_cupy_array(x)
        xp = backend.get_array_module(W)
        features, out = x.shape[-1], W.shape[0]
        if self.nccl:
            x2 = x.reshape(-1, features)
            self.rows = _rows(world, x2.shape[0])
            self.x_all = _nccl_columns(world, x2, self.rows, bounds)
        else:
            x2 = _host(x).reshape(-1, features)
            x_all, self.rows = _exchange_columns(world, x2, bounds)
            self.x_all = backend.to_device(x_all, self.device)
        partial = _matmul(self.x_all, W, trans_b=True) if self.x_all.size else \
            xp.zeros((self.x_all.shape[0], out), W.dtype)
        if self.nccl:
            y = _nccl_own_rows(world, partial, self.rows)
        else:
            y = np.empty((x2.shape[0], out), partial.dtype)
            world.comm.Reduce_scatter(_host(partial).reshape(-1), y.reshape(-1),
                                      (self.rows * out).tolist(), op=_mpi().SUM)
        y = backend.to_device(y.reshape(x.shape[:-1] + (out,)), self.device)
        if b is not None:
            y += b
        self.W = W
        return y

    def backward(self, gy):
        from .ops.layers import _matmul
        world, rows = self.world, self.rows
        xp = backend.get_array_module(self.W)
        out = gy.shape[-1]
        if self.nccl:
            g_all = _nccl_rows(world, gy.reshape(-1, out), rows)
        else:
            g2 = _host(gy).reshape(-1, out)
            g_all = np.empty((int(rows.sum()), out), g2.dtype)
            world.comm.Allgatherv(g2.reshape(-1), [g_all.reshape(-1), (rows * out).tolist()])
            g_all = backend.to_device(g_all, self.device)
        gW = gx = gb = None
        if self.needs_input_grad[1]:
            # NOTE: every rank's rows: the sum over the ranks of their gradients of W[:, K_r]
            # NOTE: with the global loss weight known before backward
            # (DistributedOptimizer.scale_split_gradients), dW is divided by it here through
            # dY (ΣB x out elements), not by a pass over dW (out x in/N) after backward
            scale = getattr(self.param, GRAD_SCALE, None)
            g_w = g_all if scale is None else g_all * g_all.dtype.type(scale)
            gW = _matmul(g_w, self.x_all, trans_a=True) if len(g_all) else \
                xp.zeros(self.W.shape, self.W.dtype)
        if self.needs_input_grad[0]:
            gx_all = _matmul(g_all, self.W) if len(g_all) else \
                xp.zeros((0, self.W.shape[1]), self.W.dtype)
            if self.nccl:
                gx = _nccl_return_columns(world, gx_all, rows, self.bounds, self.shape[-1])
            else:
                gx = _return_columns(world, _host(gx_all), rows, self.bounds, self.shape[-1])
            gx = backend.to_device(gx.reshape(self.shape), self.device)
        if self.has_bias and self.needs_input_grad[2]:
            gb = gy.reshape(-1, out).sum(axis=0)
        self.x_all = None
        return gx, gW, gb


class RowParallelLinear(Linear):
    """A Linear layer whose weight holds this rank's columns (split_linear_layers makes one
    in place from a Linear); `columns` is (first, end) of them, `world` the run's World."""

    def forward(self, x):
        if x.shape[-1] != self.in_features:
            from .errors import InputError
            raise InputError(f"linear: input has {x.shape[-1]} features but the weight expects "
                             f"{self.in_features} (split over {self.world.size} ranks)")
        return RowParallelLinearFunction.apply(x, self.weight, self.bias, world=self.world,
                                               bounds=self.bounds, param=self.weight)

    def extra_repr(self):
        return (super().extra_repr() + f", columns={self.columns[0]}:{self.columns[1]} of "
                f"{self.in_features} on rank {self.world.rank} of {self.world.size}")


def is_split(param):
    """True for the weight of a RowParallelLinear (its gradient is already the global one)."""
    return getattr(param, "row_parallel", None) is not None


def default_split(env=None):
    """Splitting on, off, or None (by size) when fit is not told: TINYLESION_SPLIT_LINEAR=1/0,
    else SPLIT."""
    from .distributed import switch_setting
    return switch_setting(env, SPLIT_ENV, SPLIT, "large Linear layers split over the ranks by "
                          "input features", "every layer data-parallel")


def split_pays(in_features, out_features, batch, ranks, nccl=False):
    """True when the layer split over `ranks` ranks, at `batch` rows per rank, moves fewer
    bytes per rank and step than the allreduce of its whole weight's gradient would.

    NOTE: per rank and step a ring allreduce of the (out, in) gradient sends 2(N−1)/N·out·in
    floats. Split, the all-to-all of the activations and the one of their gradient back send
    (N−1)/N·B·in each (counted even where the input needs no gradient), the reduce-scatter of
    the outputs and the allgather of dY (N−1)·B·out each: fewer when B·in + G·out < out·in,
    G = N·B the global batch (for in_features far above G: about out_features > B). NCCL has
    no all-to-all: its allgather and reduce-scatter move every rank's rows whole, (N−1)·B·in
    each way, so there G·(in + out) < out·in (about out_features > G)."""
    rows = ranks * batch if nccl else batch
    return rows * in_features + ranks * batch * out_features < in_features * out_features


def candidates(model, world, setting=None, min_bytes=None, batch=None):
    """The (name, Linear) pairs split_linear_layers would split: trainable weights of
    `min_bytes` (SPLIT_MIN_BYTES) or more, with at least one input feature per rank, and,
    given the per-rank `batch`, for which splitting moves fewer bytes than the gradient's
    allreduce (split_pays); setting False: none, True: every such layer whatever its size
    and traffic (min_bytes=0, batch ignored)."""
    if world is None or world.size < 2 or setting is False:
        return []
    limit = 0 if setting is True else SPLIT_MIN_BYTES if min_bytes is None else min_bytes
    nccl = getattr(world, "nccl", None) is not None
    found = []
    for name, module in model.named_modules():
        if type(module) is Linear and module.weight.requires_grad and \
                module.in_features >= world.size and module.weight.array.nbytes >= limit and \
                (setting is True or batch is None or split_pays(
                    module.in_features, module.out_features, batch, world.size, nccl)):
            found.append((name, module))
    return found


def split_linear_layers(model, world, optimizer=None, setting=None, min_bytes=None,
                        batch=None):
    """Split the model's large Linear layers over the ranks in place (candidates(); `batch`:
    the per-rank batch size, for the traffic rule): each keeps its Parameter objects, the
    weight cut to this rank's columns, as is any state the optimizer holds for it (a resumed
    run). The weights must already be the same on every rank (broadcast_parameters).
    Returns the names of the layers split."""
    names = []
    for name, module in candidates(model, world, setting, min_bytes, batch):
        bounds = column_bounds(module.in_features, world.size)
        lo, hi = bounds[world.rank], bounds[world.rank + 1]
        p = module.weight
        whole_shape = tuple(p.array.shape)
        xp = backend.get_array_module(p.array)
        if optimizer is not None:
            for key, value in list(optimizer.state.get(p, {}).items()):
                if _is_array(value) and tuple(value.shape) == whole_shape:
                    optimizer.state[p][key] = xp.ascontiguousarray(value[:, lo:hi])
        p.array = xp.ascontiguousarray(p.array[:, lo:hi])
        p.grad = None
        p.row_parallel = (lo, hi, module.in_features)
        module.__class__ = RowParallelLinear
        module.world, module.bounds, module.columns = world, bounds, (lo, hi)
        names.append(name)
    return names


def split_layers(model):
    """The (name, RowParallelLinear) pairs of a model, in its order (the same on every rank)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, RowParallelLinear)]


def gather_columns(world, array, bounds):
    """The whole (out, in) array from every rank's columns (out, width_r), on every rank, on
    the device of `array` (one Allgatherv)."""
    part = _host(array)
    widths = np.diff(bounds)
    counts = (part.shape[0] * widths).tolist()
    flat = np.empty(part.shape[0] * bounds[-1], part.dtype)
    world.comm.Allgatherv(part.reshape(-1), [flat, counts])
    whole = np.empty((part.shape[0], bounds[-1]), part.dtype)
    offset = 0
    for s in range(world.size):
        whole[:, bounds[s]:bounds[s + 1]] = flat[offset:offset + counts[s]].reshape(
            part.shape[0], int(widths[s]))
        offset += counts[s]
    return backend.to_device(whole, backend.device_of(array))


def whole_state_dict(model):
    """model.state_dict() with each split weight gathered whole (collective: every rank calls
    it); the arrays of the layers not split are the model's own, as state_dict gives them."""
    state = model.state_dict()
    for name, module in split_layers(model):
        key = f"{name}.weight" if name else "weight"
        state[key] = gather_columns(module.world, module.weight.array, module.bounds)
    return state


def forward_calls(world, count):
    """(the largest, the smallest) `count` of any rank (one int64 allreduce): each rank makes
    the largest number of forward calls in an evaluation over its shard, so that every split
    layer's collectives pair up; the smallest says whether some rank's shard is empty."""
    buf = np.array([count, -count], np.int64)
    world.comm.Allreduce(_mpi().IN_PLACE, buf, op=_mpi().MAX)
    return int(buf[0]), int(-buf[1])


class EvaluationPadding:
    """A split model's evaluation over this rank's shard of `count` batches: every rank makes
    the largest count of any rank's forward calls (forward_calls()); `before(images)` before
    each forward call on a batch, `finish()` after the last. When some rank's shard is empty,
    the ranks tell each other their first batch's shape (one allgather, before each rank's
    first forward call, so that it pairs with the others' and no split layer's collective)."""

    def __init__(self, model, world, count, device):
        self.model, self.world, self.device = model, world, device
        self.most, fewest = forward_calls(world, count)
        self.share = fewest == 0 and self.most > 0
        self.made, self.template = 0, None

    def _exchange(self, images):
        shapes = self.world.comm.allgather(None if images is None else (
            tuple(images.shape[1:]), np.dtype(images.dtype).str))
        shape, dtype = next(s for s in shapes if s is not None)
        self.template = (shape, dtype, backend.as_device(self.device).xp)

    def before(self, images):
        """Before the forward call on this rank's next batch."""
        if self.made == 0 and self.share:
            self._exchange(images)
        self.template = (tuple(images.shape[1:]), images.dtype,
                         backend.get_array_module(images))
        self.made += 1

    def finish(self):
        """The missing forward calls on a batch of one zero image shaped as this rank's
        batches (or, with none, the first rank's that had one), their outputs dropped;
        returns the last one's output (None when none was missing), whose shape an empty
        shard's results take. NOTE: one row, not none: a layer before the split one may not
        take an empty batch (Flatten's reshape of 0 elements)."""
        if self.made == 0 and self.share:
            self._exchange(None)
        out = None
        for _ in range(self.most - self.made):
            shape, dtype, xp = self.template
            out = self.model(Tensor(xp.zeros((1,) + shape, dtype)))
        self.made = self.most
        return out


def _is_array(value):
    return isinstance(value, np.ndarray) or backend.is_cupy_array(value)


def gather_optimizer_states(optimizer, world):
    """{parameter: its whole optimizer state} for the split weights among the optimizer's
    parameters, gathered from every rank's columns (collective)."""
    full = {}
    for p in split_parameters(optimizer):
        lo, hi, features = p.row_parallel
        bounds = column_bounds(features, world.size)
        entry = {}
        state = optimizer.state.get(p, {})
        # NOTE: every rank holds the same names (one update per step on every rank)
        for name in sorted(state):
            value = state[name]
            if _is_array(value) and value.ndim == 2 and value.shape == p.array.shape:
                entry[name] = gather_columns(world, value, bounds)
            else:
                entry[name] = value
        if entry:
            full[p] = entry
    return full


def split_parameters(optimizer):
    """The split weights among an optimizer's parameters, in its order."""
    return [p for g in optimizer.param_groups for p in g["params"] if is_split(p)]


def cut_optimizer_state_dict(optimizer, state_dict):
    """A whole optimizer state_dict with the split weights' arrays cut to this rank's columns
    (for Optimizer.load_state_dict, which checks shapes)."""
    params = [p for g in optimizer.param_groups for p in g["params"]]
    state = {}
    for k, entry in state_dict.get("state", {}).items():
        p = params[int(k)] if isinstance(k, (int, np.integer)) and 0 <= int(k) < len(params) \
            else None
        if p is not None and is_split(p) and isinstance(entry, dict):
            lo, hi, features = p.row_parallel
            entry = {name: value[:, lo:hi] if _is_array(value) and value.ndim == 2 and
                     value.shape[1] == features else value for name, value in entry.items()}
        state[k] = entry
    return {**state_dict, "state": state}


def unsplit_linear_layers(model, optimizer=None):
    """Make every split layer of the model a whole Linear again (collective), its weight and
    the optimizer's state for it (the wrapped one, under a DistributedOptimizer) gathered."""
    inner = getattr(optimizer, "optimizer", optimizer)
    for _, module in split_layers(model):
        p, world, bounds = module.weight, module.world, module.bounds
        if inner is not None:
            state = inner.state.get(p, {})
            for name in sorted(state):
                value = state[name]
                if _is_array(value) and value.ndim == 2 and value.shape == p.array.shape:
                    state[name] = gather_columns(world, value, bounds)
        p.array = gather_columns(world, p.array, bounds)
        p.grad = None
        p.row_parallel = None
        module.__class__ = Linear
        for attr in ("world", "bounds", "columns"):
            module.__dict__.pop(attr, None)
    return model
