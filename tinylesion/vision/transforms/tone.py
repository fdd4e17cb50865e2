"""Tone-curve operations as torchvision's functional (and AutoAugment's ops): invert,
posterize, solarize, autocontrast, equalize and adjust_gamma, on PIL images (ImageOps, point
tables) and tensor images."""
import functools
import inspect
import numbers

import numpy as np
from PIL import ImageOps

from ... import backend
from .filtering import _check_channels
from .functional import _check_image, _wrap, convert_image_dtype, is_pil


def _bound(x):
    return 1.0 if x.dtype.kind == "f" else np.iinfo(x.dtype).max


def _tone_op(pil_op, uint8_only=False):
    """Make op(img, *args) from an array function: PIL images go to pil_op(img, *args),
    tensor images (1 or 3 channels; uint8 if uint8_only) to the function, on their data."""
    def decorate(array_op):
        name = array_op.__name__

        @functools.wraps(array_op)
        def op(img, *args, **kwargs):
            _check_image(img, name)
            if is_pil(img):
                return pil_op(img, *args, **kwargs)
            x = img.array
            _check_channels(x, name)
            if uint8_only and x.dtype != np.uint8:
                raise TypeError(f"{name}: only uint8 image tensors are supported, got {x.dtype}")
            return _wrap(array_op(x, *args, **kwargs))

        # the signature shown is torchvision's: img, then the op's own arguments
        signature = inspect.signature(array_op)
        first = inspect.Parameter("img", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        op.__signature__ = signature.replace(
            parameters=[first] + list(signature.parameters.values())[1:])
        return op
    return decorate


@_tone_op(ImageOps.invert)
def invert(x):
    """bound - x: 255 - x for uint8, 1 - x for floats."""
    return (x.dtype.type(_bound(x)) - x).astype(x.dtype)


def _check_bits(bits):
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or not 0 <= bits <= 8:
        raise ValueError(f"posterize: bits should be an int between 0 and 8, got {bits!r}")
    return int(bits)


@_tone_op(lambda img, bits: ImageOps.posterize(img, _check_bits(bits)), uint8_only=True)
def posterize(x, bits):
    """Keep the `bits` highest bits of each uint8 value."""
    return x & np.uint8((256 - 2 ** (8 - _check_bits(bits))) & 0xFF)


@_tone_op(ImageOps.solarize)
def solarize(x, threshold):
    """Invert the values at or above `threshold`."""
    if threshold > _bound(x):
        raise TypeError(f"solarize: threshold {threshold} is above the image's largest value "
                        f"{_bound(x)}")
    xp = backend.get_array_module(x)
    return xp.where(x >= threshold, (x.dtype.type(_bound(x)) - x).astype(x.dtype), x)


@_tone_op(ImageOps.autocontrast)
def autocontrast(x):
    """Stretch each channel linearly so that its minimum becomes 0 and its maximum the top
    value (a flat channel is left as it is)."""
    xp = backend.get_array_module(x)
    work = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    bound = work.type(_bound(x))
    low = x.min(axis=(-2, -1), keepdims=True).astype(work)
    high = x.max(axis=(-2, -1), keepdims=True).astype(work)
    flat = high == low
    scale = bound / xp.where(flat, work.type(1), high - low)
    scale = xp.where(flat, work.type(1), scale)
    low = xp.where(flat, work.type(0), low)
    return xp.clip((x.astype(work) - low) * scale, 0, bound).astype(x.dtype)


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


@_tone_op(ImageOps.equalize, uint8_only=True)
def equalize(x):
    """Histogram equalisation of each channel of a uint8 image."""
    host = backend.to_numpy(x)
    planes = host.reshape((-1,) + host.shape[-2:])
    out = np.stack([_equalize_plane(p) for p in planes]).reshape(host.shape)
    return backend.to_device(out, backend.device_of(x))


def _check_gamma(gamma):
    if gamma < 0:
        raise ValueError(f"adjust_gamma: gamma should be non-negative, got {gamma}")
    return gamma


def _pil_gamma(img, gamma, gain=1.0):
    """Pillow's point table of gain * (v / 255) ** gamma, on the image as RGB."""
    _check_gamma(gamma)
    table = [int((256 - 1e-3) * gain * (v / 255.0) ** gamma) for v in range(256)] * 3
    return img.convert("RGB").point(table).convert(img.mode)


@_tone_op(_pil_gamma)
def adjust_gamma(x, gamma, gain=1.0):
    """gain * x ** gamma on values in [0, 1], clipped (integer images converted there and
    back)."""
    _check_gamma(gamma)
    xp = backend.get_array_module(x)
    floats = x if x.dtype.kind == "f" else convert_image_dtype(_wrap(x), np.float32).array
    out = xp.clip(floats.dtype.type(gain) * floats ** floats.dtype.type(gamma), 0, 1)
    return out if x.dtype.kind == "f" else convert_image_dtype(_wrap(out), x.dtype).array
