"""ONNX export: trace a model's forward pass, fold batch norm into convolutions, write the file.

The model is run on a small batch, and on another to tell the sizes that follow the batch
from the fixed ones, while every differentiable op (tinylesion.ops) and every batch-norm
module records what it did; each record becomes ONNX nodes by its type, so any network built
from the engine's ops exports, whatever Python its forward() holds (residual adds,
concatenations, branches); tinylesion.onnx_ops translates the transformers' ops (layer norm,
GELU, the class token's expansion, slicing). The graph has a dynamic batch axis "N", takes the normalised image (N, 3, H, W) as "input", and gives "logits" and
"probabilities" (softmax, or [1 − p, p] from the sigmoid of a binary model). Needs the `onnx`
package (pip install 'tinylesion[onnx]').
"""
import inspect
import os

import numpy as np

from . import backend, nn, ops, onnx_ops
from .autograd import Function
from .tensor import Tensor, no_grad

OPSET = 17


class ExportError(ValueError):
    """A model or op that cannot be written as ONNX; the message names it."""


class _Record:
    """One traced step: kind (an op class or "BatchNorm"), input tensors, arguments, output."""

    def __init__(self, kind, inputs, args, output, module=None):
        self.kind, self.inputs, self.args, self.output = kind, inputs, args, output
        self.module = module


class _Tracer:
    """Within the block, every Function.apply and every batch-norm module call is recorded."""

    def __init__(self, model):
        self.model, self.records, self.depth = model, [], 0

    def __enter__(self):
        tracer, original = self, Function.__dict__["apply"]
        self.original = original

        def apply(cls, *inputs, **kwargs):
            out = original.__func__(cls, *inputs, **kwargs)
            if tracer.depth == 0:
                try:
                    bound = inspect.signature(cls.forward).bind(None, *(
                        None if t is None else t for t in inputs), **kwargs)
                except TypeError:
                    bound = None
                args = {} if bound is None else {
                    k: v for k, v in list(bound.arguments.items())[1:]}
                if bound is not None:
                    for name, p in inspect.signature(cls.forward).parameters.items():
                        if name not in args and p.default is not inspect.Parameter.empty:
                            args[name] = p.default
                tracer.records.append(_Record(cls, inputs, args, out))
            return out

        Function.apply = classmethod(apply)
        self.patched = []
        for module in self.model.modules():
            if isinstance(module, nn.BatchNorm2d):
                self._wrap(module)
        return self

    def _wrap(self, module):
        inner, tracer = module.forward, self

        def forward(x):
            tracer.depth += 1
            try:
                out = inner(x)
            finally:
                tracer.depth -= 1
            if tracer.depth == 0:
                tracer.records.append(_Record("BatchNorm", (x,), {}, out, module))
            return out

        object.__setattr__(module, "forward", forward)
        self.patched.append(module)

    def __exit__(self, *exc):
        Function.apply = self.original
        for module in self.patched:
            vars(module).pop("forward", None)


def _host(value):
    return np.asarray(backend.to_numpy(value.array if isinstance(value, Tensor) else value))


def _fold_batch_norms(records):
    """Fold each batch norm whose input is only a convolution's output into that
    convolution's weight and bias; the folded records are dropped."""
    users = {}
    for r in records:
        for t in r.inputs:
            if t is not None:
                users[id(t)] = users.get(id(t), 0) + 1
    by_output = {id(r.output): r for r in records}
    kept, renamed = [], {}
    for r in records:
        conv = by_output.get(id(r.inputs[0])) if r.kind == "BatchNorm" else None
        if conv is not None and conv.kind is ops.Conv2d and users[id(r.inputs[0])] == 1 \
                and not conv.args.get("relu"):   # BN(relu(conv(x))) does not fold
            bn = r.module
            # NOTE: BN(conv(x)) = s·(W∗x + b − μ) + β with s = γ/√(σ² + ε) per output channel:
            # a convolution with weight s·W and bias s·(b − μ) + β
            var, mean = _host(bn.running_var).astype(np.float64), _host(bn.running_mean)
            gamma = _host(bn.weight) if bn.weight is not None else np.ones_like(var)
            beta = _host(bn.bias) if bn.bias is not None else np.zeros_like(var)
            s = gamma / np.sqrt(var + bn.eps)
            W = _host(conv.inputs[1])
            b = _host(conv.inputs[2]) if conv.inputs[2] is not None else np.zeros(len(s))
            conv.folded = ((W * s.reshape(-1, 1, 1, 1)).astype(np.float32),
                           ((b - mean) * s + beta).astype(np.float32))
            renamed[id(r.output)] = conv.output
            continue
        kept.append(r)
    return kept, renamed


class _Graph:
    """ONNX nodes, initializers and value names built from the records."""

    def __init__(self, helper, numpy_helper, batch, other_batch):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers, self.names, self.keep = [], [], {}, []
        self.count, self.batch_name, self.constants = 0, None, {}
        self.batch, self.other_batch = batch, other_batch   # the two traces' batch sizes

    def fresh(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def constant(self, array, base="const"):
        name = self.fresh(base)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def traced(self, tensor):
        """Whether `tensor` was computed from the input (else it is a constant)."""
        return isinstance(tensor, Tensor) and id(tensor) in self.names

    def value(self, tensor, dtype=np.float32):
        """The name of a traced tensor, or an initializer holding a constant one (one per
        constant tensor, however often it is used)."""
        if self.traced(tensor):
            return self.names[id(tensor)]
        key = (id(tensor), np.dtype(dtype))
        if isinstance(tensor, Tensor) and key in self.constants:
            return self.constants[key]
        array = _host(tensor)
        if array.dtype.kind == "f":
            array = array.astype(dtype)
        name = self.constant(array)
        if isinstance(tensor, Tensor):
            self.constants[key] = name
            self.keep.append(tensor)   # its id stays its own
        return name

    def node(self, op, inputs, output_tensor=None, **attrs):
        out = self.fresh(op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], **attrs))
        if output_tensor is not None:
            self.names[id(output_tensor)] = out
            self.keep.append(output_tensor)
        return out


def _bins(n, out):
    """(n, out) matrix averaging n entries into PyTorch's `out` adaptive bins."""
    m = np.zeros((n, out))
    for i in range(out):
        start, stop = (i * n) // out, -((-(i + 1) * n) // out)
        m[start:stop, i] = 1.0 / (stop - start)
    return m


def _pads(padding):
    PH, PW = padding
    return [PH, PW, PH, PW]


def _emit(g, r):
    """ONNX nodes for one record (ExportError for an op without a translation)."""
    a, kind, out = r.args, r.kind, r.output
    if kind not in (ops.Expand, ops.Repeat) and not any(g.traced(t) for t in r.inputs):
        # NOTE: nothing here depends on the image (e.g. slices of a weight): the result is a
        # constant, written as an initializer where it is used. Expand and Repeat may take
        # the batch size, so they stay nodes
        return
    x = g.value(r.inputs[0]) if r.inputs and r.inputs[0] is not None else None
    if kind is ops.Conv2d:
        W, b = getattr(r, "folded", (None, None))
        weight = g.constant(W) if W is not None else g.value(r.inputs[1])
        inputs = [x, weight]
        if b is not None:
            inputs.append(g.constant(b))
        elif r.inputs[2] is not None:
            inputs.append(g.value(r.inputs[2]))
        dilation = tuple(a.get("dilation", (1, 1)) or (1, 1))
        relu = bool(a.get("relu"))   # nn.Sequential's Conv2d then ReLU, run as one op
        conv = g.node("Conv", inputs, None if relu else out, strides=list(a["stride"]),
                      pads=_pads(a["padding"]), group=int(a.get("groups", 1) or 1),
                      dilations=list(dilation), kernel_shape=list(_host(r.inputs[1]).shape[2:]))
        if relu:
            g.node("Relu", [conv], out)
    elif kind is ops.Linear:
        weight = g.value(r.inputs[1])
        bias = [g.value(r.inputs[2])] if r.inputs[2] is not None else []
        if r.inputs[0].ndim == 2:
            g.node("Gemm", [x, weight] + bias, out, transB=1)
        else:
            wt = g.node("Transpose", [weight], perm=[1, 0])
            if bias:
                g.node("Add", [g.node("MatMul", [x, wt]), bias[0]], out)
            else:
                g.node("MatMul", [x, wt], out)
    elif kind in (ops.MaxPool2d, ops.ReluMaxPool):   # the latter: nn.Sequential's ReLU, pool
        x = g.node("Relu", [x]) if kind is ops.ReluMaxPool else x
        g.node("MaxPool", [x], out, kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
               pads=_pads(a.get("padding", (0, 0)) or (0, 0)),
               ceil_mode=int(bool(a.get("ceil_mode", False))))
    elif kind is ops.AvgPool2d:
        if a.get("divisor_override") is not None:
            raise ExportError("avg_pool2d with divisor_override has no ONNX AveragePool")
        g.node("AveragePool", [x], out, kernel_shape=list(a["kernel"]),
               strides=list(a["stride"]), pads=_pads(a.get("padding", (0, 0))),
               count_include_pad=int(bool(a.get("count_include_pad", True))),
               ceil_mode=int(bool(a.get("ceil_mode", False))))
    elif kind is ops.AdaptiveAvgPool2d:
        OH, OW = a["output_size"]
        if (OH, OW) == (1, 1):
            g.node("GlobalAveragePool", [x], out)
        else:
            # NOTE: the spatial size is fixed, so PyTorch's adaptive bins (bin i of n entries
            # covers ⌊i·n/out⌋ to ⌈(i+1)·n/out⌉) are one constant (H·W, OH·OW) averaging matrix
            H, W = r.inputs[0].shape[-2:]
            pool = np.kron(_bins(H, OH), _bins(W, OW)).astype(np.float32)
            flat = g.node("Reshape", [x, g.constant(np.array([0, 0, H * W], np.int64))])
            pooled = g.node("MatMul", [flat, g.constant(pool)])
            g.node("Reshape", [pooled, g.constant(np.array([0, 0, OH, OW], np.int64))], out)
    elif kind is ops.Pad2d:
        left, right, top, bottom = a["padding"]
        pads = g.constant(np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
        g.node("Pad", [x, pads], out)
    elif kind is ops.ConstantPad:
        rank = r.inputs[0].ndim
        widths = [(0, 0)] * (rank - len(a["widths"])) + [tuple(w) for w in a["widths"]]
        pads = g.constant(np.array([w[0] for w in widths] + [w[1] for w in widths], np.int64))
        value = g.constant(np.array(a.get("value", 0.0), np.float32))
        g.node("Pad", [x, pads, value], out)
    elif kind == "BatchNorm":
        bn = r.module
        var = _host(bn.running_var)
        scale = _host(bn.weight) if bn.weight is not None else np.ones_like(var)
        bias = _host(bn.bias) if bn.bias is not None else np.zeros_like(var)
        g.node("BatchNormalization", [x, g.constant(scale.astype(np.float32)),
                                      g.constant(bias.astype(np.float32)),
                                      g.constant(_host(bn.running_mean).astype(np.float32)),
                                      g.constant(var.astype(np.float32))], out,
               epsilon=float(bn.eps))
    elif kind in _UNARY:
        g.node(_UNARY[kind], [x], out)
    elif kind is ops.LeakyReLU:
        g.node("LeakyRelu", [x], out, alpha=float(a.get("negative_slope", 0.01)))
    elif kind in (ops.Softmax, ops.LogSoftmax):
        g.node(kind.__name__, [x], out, axis=int(a.get("axis", -1)))
    elif kind in _BINARY:
        relu = kind is ops.Add and bool(a.get("relu"))   # a residual block's end, one op
        added = g.node(_BINARY[kind], [x, g.value(r.inputs[1])], None if relu else out)
        if relu:
            g.node("Relu", [added], out)
    elif kind is ops.Clamp:
        low, high = a.get("low"), a.get("high")
        inputs = [x, "" if low is None else g.value(low), "" if high is None else g.value(high)]
        while inputs[-1] == "":
            inputs.pop()
        g.node("Clip", inputs, out)
    elif kind is ops.Cat:
        g.node("Concat", [g.value(t) for t in r.inputs], out, axis=int(a.get("axis", 0)))
    elif kind is ops.Reshape:
        other = getattr(r, "other", r)   # the same op in the trace at another batch size
        g.node("Reshape", [x, onnx_ops.batch_shape(g, a["shape"], other.args["shape"])], out)
    elif kind is ops.Transpose:
        axes = a.get("axes")
        g.node("Transpose", [x], out, **({} if axes is None else {"perm": list(axes)}))
    elif kind in (ops.Mean, ops.Sum):
        axis = a.get("axis")
        axes = list(range(r.inputs[0].ndim)) if axis is None else (
            [axis] if np.isscalar(axis) else list(axis))
        g.node("ReduceMean" if kind is ops.Mean else "ReduceSum",
               [x] if kind is ops.Mean else [x, g.constant(np.array(axes, np.int64))], out,
               keepdims=int(bool(a.get("keepdims", False))),
               **({"axes": axes} if kind is ops.Mean else {}))
    elif kind in (ops.Cast, ops.Clone, ops.ToDevice):
        g.node("Identity", [x], out)
    elif getattr(kind, "__name__", "") in _UNARY_BY_NAME:   # activations an engine may add
        g.node(_UNARY_BY_NAME[kind.__name__], [x], out)
    elif getattr(kind, "__name__", "").lower() in ("silu", "swish"):
        g.node("Mul", [x, g.node("Sigmoid", [x])], out)
    elif getattr(kind, "__name__", "").lower() == "hardsigmoid":
        g.node("HardSigmoid", [x], out, alpha=1 / 6, beta=0.5)
    elif getattr(kind, "__name__", "") == "Hardtanh":    # ReLU6 among them
        g.node("Clip", [x, g.constant(np.array(a.get("min_val", -1.0), np.float32)),
                        g.constant(np.array(a.get("max_val", 1.0), np.float32))], out)
    elif getattr(kind, "__name__", "").lower() == "relu6":
        g.node("Clip", [x, g.constant(np.array(0, np.float32)),
                        g.constant(np.array(6, np.float32))], out)
    elif not onnx_ops.emit(g, r, x):   # layer norm, GELU, Pow, Expand, Repeat, GetItem
        name = getattr(kind, "__name__", kind)
        raise ExportError(f"the op {name} has no ONNX translation in tinylesion.onnx; "
                          "write one in _emit")


_UNARY = {ops.ReLU: "Relu", ops.Sigmoid: "Sigmoid", ops.Tanh: "Tanh", ops.Exp: "Exp",
          ops.Log: "Log", ops.Sqrt: "Sqrt", ops.Abs: "Abs", ops.Neg: "Neg"}
# NOTE: ONNX's HardSwish is x·max(0, min(1, x/6 + 1/2)), PyTorch's hardswish
_UNARY_BY_NAME = {"Hardswish": "HardSwish", "HardSwish": "HardSwish", "Softplus": "Softplus"}
_BINARY = {ops.Add: "Add", ops.Sub: "Sub", ops.Mul: "Mul", ops.Div: "Div",
           ops.Maximum: "Max", ops.Minimum: "Min", ops.MatMul: "MatMul"}


def _output_dims(shape, other, batches):
    """The logits' ONNX dims: "N" for the batch axis, the size where it is fixed."""
    if shape[0] != batches[0] or other[0] != batches[1]:
        raise ExportError(f"the model's output has shape {tuple(shape)} for {batches[0]} images "
                          f"and {tuple(other)} for {batches[1]}: its first axis must be the "
                          "batch")
    return ["N"] + [a if a == b else f"logits_{i}"
                    for i, (a, b) in enumerate(zip(shape, other)) if i > 0]


def _checked_input_size(input_size):
    """(width, height) as two positive integers, or an ExportError naming input_size."""
    try:
        size = tuple(input_size)
    except TypeError:
        size = None
    if size is None or len(size) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
            for v in size):
        raise ExportError(f"input_size must be (width, height), two positive integers; "
                          f"got {input_size!r}")
    return int(size[0]), int(size[1])


def _trace(model, batch, H, W, device):
    """(input, logits, records) of one traced eval-mode forward pass at `batch` images."""
    x = Tensor(np.random.default_rng(0).standard_normal((batch, 3, H, W))
               .astype(np.float32)).to(device)
    was_training = model.training
    model.eval()
    try:
        with no_grad(), _Tracer(model) as tracer:
            logits = model(x)
    finally:
        model.train(was_training)
    return x, logits, tracer.records


def _pair(records, other, computed, batches):
    """Give each record its counterpart in the trace at the other batch size (`.other`),
    or an ExportError for a forward pass that differs there in anything but the sizes that
    follow the batch (other ops, a constant made from the batch size, a batch-sized slice)."""
    b1, b2 = batches
    if [r.kind for r in records] != [r.kind for r in other]:
        raise ExportError(f"the model runs other ops at batch {b2} than at batch {b1} (its "
                          "forward depends on the batch size): one ONNX graph cannot hold both")
    for r, o in zip(records, other):
        r.other = o
        name = getattr(r.kind, "__name__", r.kind)
        for t, u in zip(r.inputs, o.inputs):
            if (isinstance(t, Tensor) and id(t) not in computed and isinstance(u, Tensor)
                    and t.shape != u.shape):
                raise ExportError(f"the op {name} takes a constant of shape {t.shape} at batch "
                                  f"{b1} and {u.shape} at batch {b2}: a tensor made from the "
                                  "batch size outside the ops (e.g. tl.zeros(x.shape[0], ...)) "
                                  "has no ONNX translation")
        if r.kind is ops.GetItem and repr(r.args.get("index")) != repr(o.args.get("index")):
            raise ExportError(f"the index {r.args['index']!r} at batch {b1} is "
                              f"{o.args['index']!r} at batch {b2}: an index made from the "
                              "batch size has no ONNX translation")


def build(model, input_size, batch=2, other_batch=3):
    """The onnx.ModelProto of `model` (eval mode) for images of input_size (width, height).

    NOTE: the model is traced at two batch sizes: a size that differs between the two
    traces follows the batch (Shape(input)[0] times a whole number in the graph), one that
    does not is a constant, even where it equals the batch size (two classes, a reshape's 2)."""
    import onnx
    from onnx import helper, numpy_helper
    W, H = _checked_input_size(input_size)
    device = backend.device_of(next(iter(model.parameters())).array) \
        if list(model.parameters()) else backend.CPU
    x, logits, traced = _trace(model, batch, H, W, device)
    _, other_logits, other = _trace(model, other_batch, H, W, device)
    computed = {id(x)} | {id(r.output) for r in traced}
    _pair(traced, other, computed, (batch, other_batch))
    records, renamed = _fold_batch_norms(traced)
    records = onnx_ops.fuse_layer_norms(records, lambda t: id(t) in computed)
    g = _Graph(helper, numpy_helper, batch, other_batch)
    g.names[id(x)] = "input"
    for r in records:
        r.inputs = tuple(renamed.get(id(t), t) if t is not None else None for t in r.inputs)
        _emit(g, r)
    if id(logits) not in g.names:
        raise ExportError("the model's output was not computed by traced ops (does its "
                          "forward return its input?)")
    binary = bool(getattr(model, "binary", False))
    last = g.names[id(logits)]
    g.nodes.append(helper.make_node("Identity", [last], ["logits"]))
    if binary:
        flat = g.node("Reshape", ["logits", g.constant(np.array([-1, 1], np.int64))])
        p = g.node("Sigmoid", [flat])
        q = g.node("Sub", [g.constant(np.array(1.0, np.float32)), p])
        g.nodes.append(helper.make_node("Concat", [q, p], ["probabilities"], axis=1))
    else:
        g.nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1))
    classes = 2 if binary else int(logits.shape[1])
    graph = helper.make_graph(
        g.nodes, getattr(model, "name", type(model).__name__),
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", 3, H, W])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT,
                                       _output_dims(logits.shape, other_logits.shape,
                                                    (batch, other_batch))),
         helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT,
                                       ["N", classes])],
        initializer=g.initializers)
    proto = helper.make_model(graph, producer_name="tinylesion",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = min(proto.ir_version, 9)   # readable by older ONNX Runtimes too
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model, path, input_size, metadata=None):
    """Write `model` as an ONNX file at `path` for images of input_size (width, height);
    metadata (str → str, e.g. class names and normalisation) goes into the file's
    metadata_props. Returns the path."""
    import onnx
    target = os.fspath(path)
    if os.path.isdir(target):
        raise ExportError(f"{target} is a folder: give the ONNX file's path")
    parent = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(parent):
        raise ExportError(f"the folder of {target} does not exist")
    proto = build(model, input_size)
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    partial = target + ".partial"   # a reader never sees half a file
    try:
        onnx.save(proto, partial)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path
