"""Where a classifier looked: Grad-CAM and saliency maps, and their overlays on the image."""
import numpy as np

from . import backend, nn
from .tensor import Tensor


def last_convolution(model, x):
    """The last Conv2d that the model's forward pass on x runs, or None."""
    from .tensor import no_grad
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    with no_grad(), _Capture(layers) as capture:
        model(x)
    return None if capture.last is None else capture.last[0]


def _resolve_layer(model, layer):
    """The module that `layer` names (a Module or a dotted name)."""
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer)
        except (AttributeError, KeyError, ValueError) as exc:
            raise ValueError(f"grad_cam: model {getattr(model, 'name', '')} has no layer "
                             f"{layer!r} ({exc})") from None
    if not isinstance(layer, nn.Module) or not any(m is layer for m in model.modules()):
        raise ValueError("grad_cam: layer must be a module of the model or its dotted name")
    return layer


class _Frozen:
    """Within the block: parameters need no gradient (restored on exit), so explaining a model
    never touches its parameters' .grad."""

    def __init__(self, model):
        self.params = list(model.parameters())

    def __enter__(self):
        self.flags = [p.requires_grad for p in self.params]
        for p in self.params:
            p.requires_grad = False

    def __exit__(self, *exc):
        for p, flag in zip(self.params, self.flags):
            p.requires_grad = flag


class _Capture:
    """Within the block: each of the layers' outputs is cut from the graph and made a leaf
    that needs a gradient; `.last` is the (layer, leaf) called last in the forward pass."""

    def __init__(self, layers):
        self.layers, self.last = list(layers), None

    def __enter__(self):
        for layer in self.layers:
            self._wrap(layer)
        return self

    def _wrap(self, layer):
        inner = layer.forward

        def forward(*args, **kwargs):
            out = inner(*args, **kwargs).detach().requires_grad_()
            self.last = (layer, out)
            return out

        object.__setattr__(layer, "forward", forward)  # an instance attribute shadows

    def __exit__(self, *exc):
        for layer in self.layers:
            vars(layer).pop("forward", None)


def _targets(logits, target, binary):
    """(N,) class indices: the predicted class when target is None, else `target` (an int or
    one per image), checked against the number of classes."""
    n = logits.shape[0]
    classes = 2 if binary else logits.shape[1]
    if target is None:
        z = backend.to_numpy(logits.array).reshape(n, -1)
        return (z[:, 0] > 0).astype(np.int64) if binary else z.argmax(axis=1)
    given = backend.to_numpy(target.array) if hasattr(target, "array") else np.asarray(target)
    if given.dtype.kind not in "iu" or given.ndim > 1 or given.size not in (1, n):
        raise ValueError(f"target must be a class index or one per image ({n}), got "
                         f"{given.dtype} of shape {given.shape}")
    target = np.broadcast_to(given.reshape(-1), (n,)).astype(np.int64)
    if target.min() < 0 or target.max() >= classes:
        raise ValueError(f"target class {target.tolist()} is out of range for {classes} "
                         "classes")
    return target


def _class_score(logits, target, binary):
    """Σₙ (score of image n's target class): its logit, or ±the single logit when binary."""
    xp = backend.get_array_module(logits.array)
    n = logits.shape[0]
    if binary:
        sign = xp.asarray(np.where(target == 1, 1.0, -1.0).reshape(n, 1), dtype=logits.dtype)
        return (logits.reshape(n, 1) * Tensor(sign)).sum()
    onehot = np.zeros(logits.shape, dtype=logits.dtype)
    onehot[np.arange(n), target] = 1
    return (logits * Tensor(xp.asarray(onehot))).sum()


def bilinear_matrix(size_out, size_in, xp=np):
    """(size_out, size_in) matrix of bilinear interpolation weights along one axis.

    NOTE: half-pixel centres (align_corners=False): output pixel i reads the input at
    (i + 0.5)·in/out − 0.5, clamped at 0, from its two neighbours.
    """
    src = np.maximum((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
    i1 = np.minimum(i0 + 1, size_in - 1)
    frac = src - i0
    m = np.zeros((size_out, size_in))
    np.add.at(m, (np.arange(size_out), i0), 1 - frac)
    np.add.at(m, (np.arange(size_out), i1), frac)
    return xp.asarray(m)


def upsample(maps, size):
    """Bilinearly resize (N, h, w) maps to size (width, height), on the maps' device."""
    xp = backend.get_array_module(maps)
    W, H = size
    rows = bilinear_matrix(H, maps.shape[1], xp).astype(maps.dtype)
    cols = bilinear_matrix(W, maps.shape[2], xp).astype(maps.dtype)
    return xp.einsum("ih,nhw,jw->nij", rows, maps, cols)


def _check_input(model, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"explain: x must be a tinylesion Tensor (N, 3, H, W), not "
                        f"{type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"explain: x must be a batch (N, 3, H, W), got shape {tuple(x.shape)}")


def grad_cam(model, x, target=None, layer=None):
    """Grad-CAM maps (N, H, W) of the batch x (N, 3, H, W) as a NumPy array.

    The channel weights are the spatial mean of the target class score's gradient with respect
    to the layer's activations A; the map is ReLU(Σₖ wₖ Aₖ), bilinearly upsampled to the input.
    target: None (each image's predicted class), a class index, or one index per image.
    layer: a module of the model or its dotted name; by default the last Conv2d that the
    forward pass runs (the input itself for a model without convolutions). The model is run in its current mode (call
    .eval() first); its parameters' gradients are left untouched.
    """
    _check_input(model, x)
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d)] if layer is None \
        else [_resolve_layer(model, layer)]
    binary = bool(getattr(model, "binary", False))
    with _Frozen(model):
        with _Capture(layers) as capture:
            if layer is None and not layers:     # no convolution: explain at the input
                capture.last = (None, x.detach().requires_grad_())
                logits = model(capture.last[1])
            else:
                logits = model(x)
        if capture.last is None:
            raise ValueError(f"grad_cam: layer {type(layers[0]).__name__} was not used by the "
                             "forward pass")
        activations = capture.last[1]
        target = _targets(logits, target, binary)
        _class_score(logits, target, binary).backward()
    A, G = activations.array, activations.grad.array
    if A.ndim != 4:
        raise ValueError(f"grad_cam: the layer's output has shape {tuple(A.shape)}; Grad-CAM "
                         "needs feature maps (N, C, h, w)")
    xp = backend.get_array_module(A)
    weights = G.mean(axis=(2, 3), keepdims=True)
    cam = xp.maximum((weights * A).sum(axis=1), 0)
    return backend.to_numpy(upsample(cam, (x.shape[3], x.shape[2])))


def saliency(model, x, target=None):
    """Saliency maps (N, H, W): the largest absolute gradient of the target class score with
    respect to the input pixel, over its three channels (a NumPy array)."""
    _check_input(model, x)
    binary = bool(getattr(model, "binary", False))
    with _Frozen(model):
        leaf = x.detach().requires_grad_()
        logits = model(leaf)
        target = _targets(logits, target, binary)
        _class_score(logits, target, binary).backward()
    xp = backend.get_array_module(leaf.grad.array)
    return backend.to_numpy(xp.abs(leaf.grad.array).max(axis=1))


# ---- overlays ------------------------------------------------------------------------------
def colormap(values):
    """(H, W) values in [0, 1] as (H, W, 3) uint8 colours from dark blue through green and
    yellow to red (a jet-like ramp made of straight pieces)."""
    v = np.clip(values, 0, 1)[..., None]
    stops = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    colours = np.array([[0, 0, 0.5], [0, 0.4, 1], [0.1, 0.9, 0.3], [1, 0.85, 0], [0.85, 0, 0]])
    rgb = np.stack([np.interp(v[..., 0], stops, colours[:, c]) for c in range(3)], axis=-1)
    return (rgb * 255 + 0.5).astype(np.uint8)


def overlay(image, heatmap, alpha=0.45):
    """The uint8 RGB image (H, W, 3) with the heatmap (H', W'), scaled to [0, 1] by its
    maximum and resized to the image, blended over it (a uint8 RGB array)."""
    from PIL import Image
    heat = np.asarray(heatmap, dtype=np.float64)
    peak = heat.max()
    heat = heat / peak if peak > 0 else np.zeros_like(heat)
    H, W = image.shape[:2]
    if heat.shape != (H, W):
        heat = upsample(heat[None], (W, H))[0]
    colour = colormap(heat).astype(np.float64)
    # NOTE: the blend weight grows with the heat, so cold regions keep the image visible
    a = alpha * (0.35 + 0.65 * heat[..., None])
    out = image.astype(np.float64) * (1 - a) + colour * a
    return np.asarray(Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB"))


def png_bytes(rgb):
    """A uint8 RGB array encoded as PNG bytes (in memory)."""
    import io
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def display_image(data, run, name="<bytes>", min_width=320):
    """The image bytes decoded as the model sees them (same preprocessing), enlarged by a whole
    factor to at least min_width pixels wide: the picture a heatmap is drawn over."""
    from .data.imageio import decode_rgb
    W, H = run["image_size"]
    k = max(1, -(-min_width // W))
    return decode_rgb(data, (W * k, H * k), run.get("preprocess", "resize"), name=name)


def explain_image(model, run, data, device="cpu", target=None, name="<bytes>"):
    """(Grad-CAM overlay as a uint8 RGB array, class index explained) for one image's bytes."""
    from .data.imageio import decode_rgb
    from .train import prepare_batch
    size = tuple(run["image_size"])
    pixels = decode_rgb(data, size, run.get("preprocess", "resize"), name=name)
    x = prepare_batch(pixels.transpose(2, 0, 1)[None], device, run["mean"], run["std"])
    if target is None:
        from .tensor import no_grad
        with no_grad():
            logits = model(x)
        target = int(_targets(logits, None, bool(getattr(model, "binary", False)))[0])
    cam = grad_cam(model, x, target=target)[0]
    return overlay(display_image(data, run, name), cam), target


def write_overlays(model, run, paths, out_dir, device="cpu"):
    """Write OUT_DIR/<image name>.gradcam.png (the predicted class's Grad-CAM over each image);
    returns the paths written. Images with the same name get a numbered suffix."""
    from pathlib import Path
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, used = [], set()
    for path in paths:
        stem, n = Path(path).stem, 1
        name = f"{stem}.gradcam.png"
        while name in used:
            n += 1
            name = f"{stem}-{n}.gradcam.png"
        used.add(name)
        image, _ = explain_image(model, run, Path(path).read_bytes(), device, name=str(path))
        (out_dir / name).write_bytes(png_bytes(image))
        written.append(out_dir / name)
    return written
