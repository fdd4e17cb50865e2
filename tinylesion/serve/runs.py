"""The served models: a run folder loaded once, its images decoded and checked, its batches run."""
import io
import json
import logging
import threading
from pathlib import Path

import numpy as np
from PIL import Image

MAX_PIXELS = 50_000_000    # larger images are refused before decoding (decompression bombs)
# NOTE: a JPEG up to this size is decoded (at a reduced scale, Pillow's draft mode) and resized in
# under half a millisecond: less than handing it to a worker thread and back costs. The service
# decodes such images where the request is handled, and larger or slower ones (PNG, TIFF) in its
# thread pool, so that no request holds up the others for long.
QUICK_JPEG_PIXELS = 500_000
SIGNATURES = ((b"\xff\xd8", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF8", "GIF"),
              (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"))


class BadRequest(ValueError):
    """A request that cannot be answered (an unusable image, an unknown class): a 400 whose
    message says why."""


def check_image(data, max_pixels=MAX_PIXELS):
    """Refuse empty bytes, bytes that are no image, and images of absurd dimensions, from the
    header alone (nothing is decoded yet); (format, width, height) of an image that passes."""
    if not data:
        raise BadRequest("empty body: send the bytes of an image file (JPEG, PNG, ...)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height, kind = im.width, im.height, im.format
    except Image.DecompressionBombError as exc:
        raise BadRequest(f"image refused as a decompression bomb ({exc})") from None
    except Exception:   # Pillow's UnidentifiedImageError and its parsers' errors
        kind = next((k for magic, k in SIGNATURES if data.startswith(magic)), None)
        if kind is not None:
            raise BadRequest(f"truncated or damaged {kind} file ({len(data)} bytes): its "
                             "header cannot be read") from None
        raise BadRequest(f"not an image: the {len(data)} bytes sent are no image format "
                       "Pillow reads (JPEG, PNG, TIFF, BMP, ...)") from None
    if width * height > max_pixels:
        raise BadRequest(f"image of {width}x{height} pixels is over the limit of {max_pixels:,} "
                       "pixels (a decompression bomb?)")
    return kind, width, height


def quick_to_decode(header):
    """True for the (format, width, height) of an image cheaper to decode than to hand to a
    worker thread: a JPEG of at most QUICK_JPEG_PIXELS."""
    kind, width, height = header
    return kind == "JPEG" and width * height <= QUICK_JPEG_PIXELS


def _test_metrics(run_dir):
    """The run's scalar test metrics from metrics.json ({} when it has none)."""
    path = Path(run_dir) / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        metrics = None
    if not isinstance(metrics, dict):   # untrusted: a damaged file is as none
        if path.exists():
            logging.getLogger("tinylesion.serve").warning(
                "%s is not a JSON object of metrics: the model is served without them", path)
        return {}
    return {k: v for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class ServedModel:
    """One run folder's model, loaded once, with a lock that its forward passes share."""

    def __init__(self, name, run_dir, device="cpu"):
        from ..predict import load_run
        self.name, self.run_dir, self.device = name, Path(run_dir), device
        self.model, self.run = load_run(run_dir, device)
        self.class_names = list(self.run["class_names"])
        self.image_size = tuple(self.run["image_size"])
        self.preprocess = self.run.get("preprocess", "resize")
        self.metrics = _test_metrics(run_dir)
        self.lock = threading.Lock()

    def info(self):
        """What GET /models says about this model."""
        return {"name": self.name, "model": self.run["model"], "classes": self.class_names,
                "input_size": list(self.image_size), "preprocess": self.preprocess,
                "binary": bool(self.model.binary), "test_metrics": self.metrics}

    def pixels(self, data, checked=False):
        """The image bytes as the model's uint8 (3, H, W) input; BadRequest when unusable.
        checked=True skips check_image, for bytes that have just passed it."""
        from ..data.imageio import ImageReadError, decode_rgb
        if not checked:
            check_image(data)
        try:
            return decode_rgb(data, self.image_size, self.preprocess,
                              name="the uploaded image").transpose(2, 0, 1)
        except ImageReadError as exc:
            raise BadRequest(f"truncated or damaged image: {exc}") from None

    def probabilities(self, batch):
        """(N, K) float64 class probabilities of a list of uint8 (3, H, W) images: one pass."""
        from ..tensor import no_grad
        from ..train import prepare_batch, probabilities
        with self.lock, no_grad():
            x = prepare_batch(np.stack(batch), self.device, self.run["mean"], self.run["std"])
            p = probabilities(self.model(x), self.model.binary).numpy().astype(np.float64)
        return np.stack([1 - p, p], axis=1) if self.model.binary else p

    def explain_png(self, data, class_name=None):
        """(PNG bytes of the Grad-CAM overlay, class name explained) for one image's bytes."""
        from ..explain import explain_image, png_bytes
        target = None
        if class_name is not None:
            if class_name not in self.class_names:
                raise BadRequest(f"unknown class {class_name!r} in ?class=; {self.name} has "
                               f"{', '.join(self.class_names)}")
            target = self.class_names.index(class_name)
        self.pixels(data)   # the same checks as /predict
        with self.lock:
            image, k = explain_image(self.model, self.run, data, self.device, target,
                                     name="the uploaded image")
        return png_bytes(image), self.class_names[k]


def load_models(run_dirs, device="cpu"):
    """{name: ServedModel} for the run folders, named by their folder names (which must differ).
    """
    from ..predict import PredictError
    names = [Path(d).resolve().name or str(d) for d in run_dirs]
    for name in names:
        if names.count(name) > 1:
            raise PredictError(f"--weights: two run folders are named {name!r}; the service "
                               "names each model by its folder: rename one")
    return {name: ServedModel(name, d, device) for name, d in zip(names, run_dirs)}
