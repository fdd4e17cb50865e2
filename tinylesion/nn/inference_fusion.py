"""nn.Sequential at inference: a Conv2d run as one op with a ZeroPad2d before it and an
eval-mode BatchNorm2d and a ReLU after it (padding, folded weights, ReLU in the output pass)."""
import numpy as np

from ..backend import get_array_module
from .. import inference_cache
from ..tensor import Tensor, is_grad_enabled

# NOTE: with nothing recorded, conv(pad(x), W) + b followed by the batch norm's per-channel
# affine map s*y + t, s = γ/√(var + ε), t = β − mean·s, and a ReLU is one convolution:
#     relu(conv(x, s·W, padding + pad) + (s·(b − mean) + β)),
# the same numbers up to float32 rounding (the scale multiplies the weights instead of the
# sums). One output array instead of three (the padded copy, the convolution's output, the
# normalised one) and two passes over the activation fewer. Only layers whose forward was
# not replaced on the instance are joined (Grad-CAM wraps a layer's forward to see its output),
# and that have no hooks.

ENABLED = True   # False runs the layers one by one (to compare)


def _plain(layer, kind):
    return type(layer) is kind and layer._runs_plain()


def _symmetric_pad(padding):
    """(top, left) of a ZeroPad2d's padding that pads opposite sides alike, else None."""
    if isinstance(padding, (int, np.integer)):
        return int(padding), int(padding)
    padding = tuple(int(p) for p in padding)
    if len(padding) == 2:
        padding += (0, 0)
    if len(padding) != 4 or min(padding) < 0:
        return None
    left, right, top, bottom = padding
    return (top, left) if (left, top) == (right, bottom) else None


def fused_conv_run(layers, i, x):
    """(output, number of layers used) when layers[i:] begin with [ZeroPad2d] Conv2d
    [BatchNorm2d in eval mode] [ReLU], with a pad or a batch norm among them, and nothing is
    recorded; else None (the layers then run one by one)."""
    from .layers import BatchNorm2d, Conv2d, ReLU, ZeroPad2d
    if is_grad_enabled() or not ENABLED:
        return None
    j, n, pad = i, len(layers), (0, 0)
    if _plain(layers[j], ZeroPad2d) and j + 1 < n and _plain(layers[j + 1], Conv2d):
        pad = _symmetric_pad(layers[j].padding)
        if pad is None:
            return None
        j += 1
    conv = layers[j]
    if not _plain(conv, Conv2d) or isinstance(conv.padding, str):
        return None
    j += 1
    bn = None
    if j < n and _plain(layers[j], BatchNorm2d) and not layers[j].training \
            and layers[j].running_mean is not None:
        bn = layers[j]
        j += 1
    relu = j < n and _plain(layers[j], ReLU)
    if relu:
        j += 1
    if bn is None and pad == (0, 0):
        return None   # nothing to join but a ReLU: Sequential's own fusion does that
    return _folded(conv, bn, pad, relu, x), j - i


def _folded(conv, bn, pad, relu, x):
    """The convolution with `pad` added to its padding, `bn` (or None) folded in, then ReLU.

    NOTE: the folded weights, and on the CPU's Winograd path their filter transform, are kept
    for the next call (tinylesion.inference_cache: until tinylesion writes into any tensor);
    making them anew each time took 4 + 3 ms of a 45 ms batch-1 resnet50 forward on 2 threads.
    Where the weights outweigh the activation (resnet50's last layers at batch 1: 4,608
    weights per filter, 49 pixels) and no transform is kept, the batch norm's pass over the
    output costs less than a folded copy of the weights would hold in memory: the pass then
    runs on its own (into the convolution's new array), the ReLU in place."""
    from .functional import _conv2d
    padding = (conv.padding[0] + pad[0], conv.padding[1] + pad[1])
    W, b = conv.weight, conv.bias   # the parameters themselves, unless folded
    KH, KW = W.shape[2:]
    pixels = x.shape[0] * ((x.shape[2] + 2 * padding[0] - KH) // conv.stride[0] + 1) \
        * ((x.shape[3] + 2 * padding[1] - KW) // conv.stride[1] + 1)
    winograd = _on_winograd_path(conv, x, padding)
    fold = bn is not None and (2 * pixels >= W.array[0].size or winograd)
    if fold:
        W, b = inference_cache.cached(conv, _sources(conv, bn), lambda: tuple(map(
            Tensor._wrap, _fold(W.array, None if b is None else b.array, bn))), "fold")
    filters = None
    if winograd:
        def filters(m, W=W.array):
            from kernels.winograd import filter_transform
            return inference_cache.cached(conv, (W, m), lambda: filter_transform(W, m),
                                          "winograd")

    def run(x):   # through Module._call: its checks of the input, its errors
        return _conv2d(x, W, b, conv.stride, padding, conv.groups,
                       relu=relu and (bn is None or fold), winograd_filters=filters)

    y = conv._call(run, x)
    if bn is None or fold:
        return y
    # the batch norm (and ReLU) in one pass over the convolution's own new array
    scale, shift = inference_cache.cached(bn, _sources(None, bn) + (y.dtype,),
                                          lambda: _fold(None, None, bn, y.dtype), "affine")
    from kernels.channel_affine import channel_affine
    channel_affine(y.array, scale, shift, relu=relu, out=y.array)
    return y


def conv_bn(conv, bn, x, relu=None):
    """relu(bn(conv(x))) (no ReLU when relu is None), for models that call their layers one by
    one (ResNet's blocks): under no_grad with `bn` in eval mode, one convolution with the batch
    norm folded in (and a plain nn.ReLU in its output pass); else the modules' own calls."""
    from .layers import BatchNorm2d, Conv2d, ReLU
    if ENABLED and not is_grad_enabled() and _plain(conv, Conv2d) \
            and not isinstance(conv.padding, str) and _plain(bn, BatchNorm2d) \
            and not bn.training and bn.running_mean is not None \
            and (relu is None or _plain(relu, ReLU)):
        return _folded(conv, bn, (0, 0), relu is not None, x)
    y = bn(conv(x))
    return y if relu is None else relu(y)


def add_relu(out, shortcut, relu):
    """relu(out + shortcut) for a residual block that owns `out` (made in its forward, held by
    no one else): under no_grad the sum is written into out's array (no third
    activation-sized array), recorded as an Add all the same (ONNX export traces it); with a
    plain nn.ReLU(inplace=True), the sum and the ReLU in one pass (an Add with relu=True)."""
    from .. import ops
    from .layers import ReLU
    a = out.array
    if not is_grad_enabled() and a.dtype.kind == "f" and a.flags.c_contiguous \
            and getattr(a.flags, "writeable", True) and shortcut.shape == out.shape \
            and shortcut.dtype == out.dtype:
        if ENABLED and _plain(relu, ReLU) and relu.inplace:
            return ops.Add.apply(out, shortcut, inplace=True, relu=True)
        return relu(ops.Add.apply(out, shortcut, inplace=True))
    return relu(out + shortcut)


def _on_winograd_path(conv, x, padding):
    """True when the CPU kernels will run this layer (a plain Conv2d) on their Winograd path."""
    if conv.groups != 1 or not isinstance(x.array, np.ndarray) or \
            not isinstance(conv.weight.array, np.ndarray) or x.ndim != 4 or \
            x.shape[1] != conv.weight.shape[1]:
        return False
    from kernels import conv_cpu
    return conv_cpu.forward_path(x.shape, conv.weight.shape, conv.stride, padding) == "winograd"


def _sources(conv, bn):
    """The arrays a fold reads (None for those absent), and the batch norm's eps."""
    data = lambda t: None if t is None else t.array
    own = () if conv is None else (data(conv.weight), data(conv.bias))
    return own + (data(bn.weight), data(bn.bias), data(bn.running_mean),
                  data(bn.running_var), bn.eps)


def _fold(W, b, bn, dtype=None):
    """(s·W, s·(b − mean) + β) of a convolution's weight and bias and an eval batch norm;
    with W None, (s, β − s·mean) in `dtype`."""
    xp = get_array_module(bn.running_var.array)
    var = xp.asarray(bn.running_var.array, dtype=np.float64)
    mean = xp.asarray(bn.running_mean.array, dtype=np.float64)
    scale = 1.0 / xp.sqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * xp.asarray(bn.weight.array, dtype=np.float64)
    shift = -mean * scale
    if b is not None:
        shift = shift + xp.asarray(b, dtype=np.float64) * scale
    if bn.bias is not None:
        shift = shift + xp.asarray(bn.bias.array, dtype=np.float64)
    if W is None:
        return scale.astype(dtype), shift.astype(dtype)
    # (each folded weight rounded once; _folded folds only where the output outweighs them)
    return (W * scale.reshape(-1, 1, 1, 1)).astype(W.dtype), shift.astype(W.dtype)
