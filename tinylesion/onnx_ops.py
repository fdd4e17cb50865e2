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


def _dynamic_shape(g, shape, x_shape):
    """The target of an Expand or Tile: constant, except that a leading size equal to the
    traced batch, where x has one entry (or no axis) there, is the input's batch size."""
    shape = [int(s) for s in shape]
    lead = len(shape) - len(x_shape)
    x_first = x_shape[0] if lead == 0 and len(x_shape) else 1
    if shape and shape[0] == g.batch and x_first == 1 and g.batch != 1:
        # NOTE: the batch size the model read from its input (x.shape[0]) is the trace's;
        # it becomes Shape(input)[0], so one file serves every batch size
        rest = g.constant(np.array(shape[1:], np.int64))
        return g.node("Concat", [_batch(g), rest], axis=0)
    return g.constant(np.array(shape, np.int64))


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
        x_shape = tuple(r.inputs[0].shape)
        shape = list(a["shape"])
        lead = len(shape) - len(x_shape)
        for axis, size in enumerate(x_shape):   # NOTE: Expand's 1 keeps x's own size there
            if shape[lead + axis] in (size, -1):
                shape[lead + axis] = 1
        g.node("Expand", [x, _dynamic_shape(g, shape, x_shape)], out)
    elif kind is ops.Repeat:
        reps = [int(n) for n in a["reps"]]
        x_shape = tuple(r.inputs[0].shape)
        if len(reps) > len(x_shape):   # numpy.tile puts ones before x's shape
            x = g.node("Reshape", [x, g.constant(np.array(
                (1,) * (len(reps) - len(x_shape)) + x_shape, np.int64))])
            x_shape = (1,) * (len(reps) - len(x_shape)) + x_shape
        elif len(reps) < len(x_shape):
            reps = [1] * (len(x_shape) - len(reps)) + reps
        g.node("Tile", [x, _dynamic_shape(g, reps, x_shape)], out)
    elif kind is ops.GetItem:
        _emit_getitem(g, r, x)
    else:
        return False
    return True


def _scalar(g, value):
    return g.constant(np.array(value, np.float32))
