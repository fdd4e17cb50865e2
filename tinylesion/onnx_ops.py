"""ONNX translations of the transformer ops for tinylesion.onnx: layer norm, GELU, powers,
broadcasts with a dynamic batch, indexing."""
import math

import numpy as np

from . import backend, ops
from .ops.gelu import GELU

INT64_MAX, INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def _axes(axis, ndim):
    axis = (axis,) if np.isscalar(axis) else tuple(axis)
    return tuple(sorted(a % ndim for a in axis))


def fuse_layer_norms(records, traced):
    """Replace each traced layer norm, the sequence tinylesion's layer_norm records
    (mean, centre, square, mean, + eps, ^−½, scale, then × weight and + bias when given), by
    one "LayerNorm" record; traced(t) tells a computed tensor from a constant. The
    intermediate results must have no other use."""
    users = {}
    for r in records:
        for t in r.inputs:
            if t is not None:
                users[id(t)] = users.get(id(t), 0) + 1
    out, i = [], 0
    while i < len(records):
        fused = _match_layer_norm(records, i, users, traced)
        if fused is None:
            out.append(records[i])
            i += 1
        else:
            record, used = fused
            out.append(record)
            i += used
    return out


def _match_layer_norm(records, i, users, traced):
    """(one LayerNorm record, how many records it replaces), or None."""
    steps = records[i:i + 7]
    kinds = (ops.Mean, ops.Sub, ops.Mul, ops.Mean, ops.Add, ops.Pow, ops.Mul)
    if len(steps) < 7 or any(r.kind is not k for r, k in zip(steps, kinds)):
        return None
    mean, sub, square, var, add, power, scale = steps
    x = mean.inputs[0]
    dims = _axes(mean.args.get("axis"), x.ndim) if mean.args.get("axis") is not None else ()
    k = len(dims)
    same = [t for t in (mean, var) if t.args.get("keepdims")
            and t.args.get("axis") is not None and _axes(t.args["axis"], x.ndim) == dims]
    eps = add.inputs[1]
    if (k == 0 or dims != tuple(range(x.ndim - k, x.ndim)) or len(same) != 2
            or _ids(sub.inputs) != _ids((x, mean.output))
            or _ids(square.inputs) != _ids((sub.output, sub.output))
            or _ids(var.inputs) != _ids((square.output,))
            or _ids(add.inputs) != _ids((var.output, eps)) or traced(eps)
            or np.size(_host(eps)) != 1 or add.args.get("relu")
            or _ids(power.inputs) != _ids((add.output,)) or power.args.get("exponent") != -0.5
            or sorted(_ids(scale.inputs)) != sorted(_ids((sub.output, power.output)))):
        return None
    if [users.get(id(t.output)) for t in (mean, sub, square, var, add, power)] != \
            [1, 3, 1, 1, 1, 1]:
        return None
    normalized = tuple(x.shape[-k:])
    last, used, weight, bias = scale, 7, None, None
    for kind, name in ((ops.Mul, "weight"), (ops.Add, "bias")):
        nxt = records[i + used] if i + used < len(records) else None
        if nxt is None or nxt.kind is not kind or users.get(id(last.output)) != 1 \
                or (kind is ops.Add and nxt.args.get("relu")):
            break
        others = [t for t in nxt.inputs if t is not last.output]
        if len(others) != 1 or len(nxt.inputs) != 2 or traced(others[0]) \
                or tuple(others[0].shape) != normalized:
            break
        if name == "weight":
            weight = others[0]
        else:
            bias = others[0]
        last, used = nxt, used + 1
    record = type(mean)("LayerNorm", (x,), dict(axis=x.ndim - k, eps=float(_host(eps)),
                                                weight=weight, bias=bias), last.output)
    return record, used


def _ids(tensors):
    return tuple(map(id, tensors))


def _host(value):
    return np.asarray(backend.to_numpy(getattr(value, "array", value)))


def _batch(g):
    """The name of a 1-element int64 tensor holding the input's batch size (made once)."""
    if getattr(g, "batch_name", None) is None:
        g.batch_name = g.node("Shape", ["input"], start=0, end=1)
    return g.batch_name


def batch_shape(g, traced, other):
    """The name of an int64 shape for a Reshape, Expand or Tile: `traced` is the shape of the
    trace at batch g.batch, `other` the same op's at batch g.other_batch. A size that is the
    same in both is a constant; one that differs is the batch size times k (k·g.batch in the
    trace): Shape(input)[0]·k, so that one file serves every batch size."""
    from .onnx import ExportError
    traced, other = [int(s) for s in traced], [int(s) for s in other]
    if len(traced) != len(other):
        raise ExportError(f"a shape of {len(traced)} sizes at batch {g.batch} has "
                          f"{len(other)} at batch {g.other_batch}: no ONNX translation")
    parts, run = [], []
    for a, b in zip(traced, other):
        if a == b:
            run.append(a)
            continue
        k = a // g.batch
        if k * g.batch != a or k * g.other_batch != b:
            raise ExportError(f"the shape {tuple(traced)} at batch {g.batch} is {tuple(other)} "
                              f"at batch {g.other_batch}: a size that is not the batch size "
                              "times a whole number has no ONNX translation")
        if run:
            parts.append(g.constant(np.array(run, np.int64)))
            run = []
        parts.append(_batch(g) if k == 1 else
                     g.node("Mul", [_batch(g), g.constant(np.array([k], np.int64))]))
    if not parts:
        return g.constant(np.array(run, np.int64))
    if run:
        parts.append(g.constant(np.array(run, np.int64)))
    return parts[0] if len(parts) == 1 else g.node("Concat", parts, axis=0)


def _expand_target(r):
    """An Expand record's target shape, 1 where it keeps x's own size (-1, or x's size)."""
    x_shape = tuple(r.inputs[0].shape)
    shape = list(r.args["shape"])
    lead = len(shape) - len(x_shape)
    for axis, size in enumerate(x_shape):   # NOTE: Expand's 1 keeps x's own size there
        if shape[lead + axis] in (size, -1):
            shape[lead + axis] = 1
    return shape


def _tile_reps(r):
    """A Repeat record's (x's shape with leading ones, Tile's repeats of the same length)."""
    reps = [int(n) for n in r.args["reps"]]
    x_shape = tuple(r.inputs[0].shape)
    if len(reps) > len(x_shape):   # numpy.tile puts ones before x's shape
        x_shape = (1,) * (len(reps) - len(x_shape)) + x_shape
    elif len(reps) < len(x_shape):
        reps = [1] * (len(x_shape) - len(reps)) + reps
    return x_shape, reps


def _emit_getitem(g, r, x):
    from .onnx import ExportError
    index = r.args["index"]
    index = index if isinstance(index, tuple) else (index,)
    ndim = r.inputs[0].ndim
    if sum(i is Ellipsis for i in index) > 1 or not all(
            i is Ellipsis or isinstance(i, (slice, int, np.integer)) and not isinstance(i, bool)
            for i in index):
        raise ExportError(f"the op GetItem with index {r.args['index']!r} has no ONNX "
                          "translation in tinylesion.onnx (only slices and integers)")
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (ndim - len(index) + 1) + index[at + 1:]
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    for axis, i in enumerate(index):
        if isinstance(i, slice):
            if i == slice(None):
                continue
            step = 1 if i.step is None else int(i.step)
            start = i.start if i.start is not None else (0 if step > 0 else INT64_MAX)
            stop = i.stop if i.stop is not None else (INT64_MAX if step > 0 else INT64_MIN)
        else:
            i, step = int(i), 1
            start, stop = i, (i + 1 if i != -1 else INT64_MAX)
            squeeze.append(axis)
        starts.append(int(start)), ends.append(int(stop))
        axes.append(axis), steps.append(step)
    if not axes:
        g.node("Identity", [x], r.output)
        return
    const = lambda v: g.constant(np.array(v, np.int64))  # noqa: E731
    sliced = g.node("Slice", [x, const(starts), const(ends), const(axes), const(steps)],
                    None if squeeze else r.output)
    if squeeze:
        g.node("Squeeze", [sliced, const(squeeze)], r.output)


def emit(g, r, x):
    """ONNX nodes for one record of the ops this module translates; False for another op."""
    kind, a, out = r.kind, r.args, r.output
    if kind == "LayerNorm":
        shape = tuple(r.inputs[0].shape[a["axis"]:])
        scale = g.value(a["weight"]) if a["weight"] is not None else \
            g.constant(np.ones(shape, np.float32))
        bias = [g.value(a["bias"])] if a["bias"] is not None else []
        g.node("LayerNormalization", [x, scale] + bias, out, axis=int(a["axis"]),
               epsilon=float(a["eps"]))
    elif kind is GELU:
        if a.get("approximate", "none") == "tanh":
            # NOTE: ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
            cube = g.node("Mul", [x, g.node("Mul", [x, x])])
            inner = g.node("Add", [x, g.node("Mul", [cube, _scalar(g, 0.044715)])])
            t = g.node("Tanh", [g.node("Mul", [inner, _scalar(g, math.sqrt(2 / math.pi))])])
        else:
            # NOTE: exact GELU: x·Φ(x) = ½x(1 + erf(x/√2))
            t = g.node("Erf", [g.node("Mul", [x, _scalar(g, 1 / math.sqrt(2))])])
        half = g.node("Mul", [x, _scalar(g, 0.5)])
        g.node("Mul", [half, g.node("Add", [t, _scalar(g, 1.0)])], out)
    elif kind is ops.Pow:
        g.node("Pow", [x, _scalar(g, float(a["exponent"]))], out)
    elif kind is ops.Expand:
        other = getattr(r, "other", r)   # the same op in the trace at another batch size
        g.node("Expand", [x, batch_shape(g, _expand_target(r), _expand_target(other))], out)
    elif kind is ops.Repeat:
        (x_shape, reps), (other_x, other_reps) = _tile_reps(r), _tile_reps(getattr(r, "other", r))
        if len(x_shape) > r.inputs[0].ndim:
            x = g.node("Reshape", [x, batch_shape(g, x_shape, other_x)])
        g.node("Tile", [x, batch_shape(g, reps, other_reps)], out)
    elif kind is ops.GetItem:
        _emit_getitem(g, r, x)
    else:
        return False
    return True


def _scalar(g, value):
    return g.constant(np.array(value, np.float32))
