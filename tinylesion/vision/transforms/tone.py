"""Tone-curve operations as torchvision's functional (and AutoAugment's ops): invert,
posterize, solarize, autocontrast and equalize, on PIL images (ImageOps) and tensor images."""
import numbers

import numpy as np
from PIL import ImageOps

from ... import backend
from .filtering import _check_channels
from .functional import _check_image, _wrap, is_pil


def _bound(x):
    return 1.0 if x.dtype.kind == "f" else np.iinfo(x.dtype).max


def invert(img):
    """bound - x: 255 - x for uint8, 1 - x for floats."""
    _check_image(img, "invert")
    if is_pil(img):
        return ImageOps.invert(img)
    x = img.data
    _check_channels(x, "invert")
    return _wrap((x.dtype.type(_bound(x)) - x).astype(x.dtype))


def posterize(img, bits):
    """Keep the `bits` highest bits of each uint8 value."""
    _check_image(img, "posterize")
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not 0 <= bits <= 8:
        raise ValueError(f"posterize: bits should be an int between 0 and 8, got {bits!r}")
    if is_pil(img):
        return ImageOps.posterize(img, int(bits))
    x = img.data
    _check_channels(x, "posterize")
    if x.dtype != np.uint8:
        raise TypeError(f"posterize: only uint8 image tensors are supported, got {x.dtype}")
    return _wrap(x & np.uint8((256 - 2 ** (8 - int(bits))) & 0xFF))


def solarize(img, threshold):
    """Invert the values at or above `threshold`."""
    _check_image(img, "solarize")
    if is_pil(img):
        return ImageOps.solarize(img, threshold)
    x = img.data
    _check_channels(x, "solarize")
    if threshold > _bound(x):
        raise TypeError(f"solarize: threshold {threshold} is above the image's largest value "
                        f"{_bound(x)}")
    xp = backend.get_array_module(x)
    return _wrap(xp.where(x >= threshold, (x.dtype.type(_bound(x)) - x).astype(x.dtype), x))


def autocontrast(img):
    """Stretch each channel linearly so that its minimum becomes 0 and its maximum the top
    value (a flat channel is left as it is)."""
    _check_image(img, "autocontrast")
    if is_pil(img):
        return ImageOps.autocontrast(img)
    x = img.data
    _check_channels(x, "autocontrast")
    xp = backend.get_array_module(x)
    work = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    bound = work.type(_bound(x))
    low = x.min(axis=(-2, -1), keepdims=True).astype(work)
    high = x.max(axis=(-2, -1), keepdims=True).astype(work)
    flat = high == low
    scale = bound / xp.where(flat, work.type(1), high - low)
    scale = xp.where(flat, work.type(1), scale)
    low = xp.where(flat, work.type(0), low)
    return _wrap(xp.clip((x.astype(work) - low) * scale, 0, bound).astype(x.dtype))


def _equalize_plane(plane):
    """A uint8 (H, W) NumPy plane through its histogram-equalising lookup table."""
    hist = np.bincount(plane.reshape(-1), minlength=256)
    used = hist[hist != 0]
    # NOTE: the step leaves out the last used level, so the brightest pixels map to 255 and
    # the lookup table starts at 0 (shifted by one entry); step 0 (one level) is no change.
    step = int(used[:-1].sum()) // 255
    if step == 0:
        return plane
    lut = (np.cumsum(hist) + step // 2) // step
    lut = np.clip(np.concatenate([[0], lut[:-1]]), 0, 255).astype(np.uint8)
    return lut[plane]


def equalize(img):
    """Histogram equalisation of each channel of a uint8 image."""
    _check_image(img, "equalize")
    if is_pil(img):
        return ImageOps.equalize(img)
    x = img.data
    _check_channels(x, "equalize")
    if x.dtype != np.uint8:
        raise TypeError(f"equalize: only uint8 image tensors are supported, got {x.dtype}")
    host = backend.to_numpy(x)
    planes = host.reshape((-1,) + host.shape[-2:])
    out = np.stack([_equalize_plane(p) for p in planes]).reshape(host.shape)
    return _wrap(backend.to_device(out, backend.device_of(x)))
