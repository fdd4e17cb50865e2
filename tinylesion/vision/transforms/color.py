"""torchvision's colour adjustments on PIL images (Pillow's ImageEnhance, as torchvision) and
tensor images (ITU-R 601 grey; blends clamped to the dtype's range; hue through HSV)."""
import numpy as np
from PIL import Image, ImageEnhance

from ... import backend
from .functional import _check_image, _wrap, convert_image_dtype, is_pil

def _bound(x):
    return 1.0 if x.dtype.kind == "f" else float(np.iinfo(x.dtype).max)


def _blend(x, other, ratio):
    xp = backend.get_array_module(x)
    work = x.dtype if x.dtype.kind == "f" else np.float32
    out = ratio * x.astype(work) + (1.0 - ratio) * xp.asarray(other, dtype=work)
    return xp.clip(out, 0, _bound(x)).astype(x.dtype)


def _grey(x):
    """The (..., 1, H, W) float luma of an RGB (..., 3, H, W) array."""
    if x.shape[-3] != 3:
        raise TypeError(f"expected a 3-channel (RGB) image, got {x.shape[-3]} channels")
    work = x.dtype if x.dtype.kind == "f" else np.float32
    r, g, b = (x[..., k:k + 1, :, :].astype(work) for k in range(3))
    return 0.2989 * r + 0.587 * g + 0.114 * b


def rgb_to_grayscale(img, num_output_channels=1):
    """Grey levels (L = 0.2989 R + 0.587 G + 0.114 B), as 1 or 3 equal channels."""
    _check_image(img, "rgb_to_grayscale")
    if num_output_channels not in (1, 3):
        raise ValueError(f"num_output_channels should be either 1 or 3, got "
                         f"{num_output_channels}")
    if is_pil(img):
        grey = img.convert("L")
        return Image.merge("RGB", [grey] * 3) if num_output_channels == 3 else grey
    x = img.array
    if x.ndim >= 3 and x.shape[-3] == 1:
        grey = x
    else:
        grey = _grey(x).astype(x.dtype)
    if num_output_channels == 3:
        xp = backend.get_array_module(x)
        grey = xp.concatenate([grey] * 3, axis=-3)
    return _wrap(grey)


def _pil_enhance(img, enhancer, factor):
    if img.mode not in ("L", "RGB", "RGBA", "LA"):
        raise TypeError(f"colour adjustment needs an L or RGB image, got mode {img.mode}")
    return enhancer(img).enhance(factor)


def adjust_brightness(img, brightness_factor):
    """Scale the intensities (0 gives black, 1 the image)."""
    _check_image(img, "adjust_brightness")
    if brightness_factor < 0:
        raise ValueError(f"brightness_factor ({brightness_factor}) is not non-negative")
    if is_pil(img):
        return _pil_enhance(img, ImageEnhance.Brightness, brightness_factor)
    return _wrap(_blend(img.array, 0.0, brightness_factor))


def adjust_contrast(img, contrast_factor):
    """Blend with the image's mean grey level (0 gives a flat grey image)."""
    _check_image(img, "adjust_contrast")
    if contrast_factor < 0:
        raise ValueError(f"contrast_factor ({contrast_factor}) is not non-negative")
    if is_pil(img):
        return _pil_enhance(img, ImageEnhance.Contrast, contrast_factor)
    x = img.array
    work = x.dtype if x.dtype.kind == "f" else np.float32
    grey = _grey(x).astype(x.dtype).astype(work) if x.shape[-3] == 3 else x.astype(work)
    mean = grey.mean(axis=(-3, -2, -1), keepdims=True)
    return _wrap(_blend(x, mean, contrast_factor))


def adjust_saturation(img, saturation_factor):
    """Blend with the grey image (0 gives grey, 1 the image, 2 doubles the saturation)."""
    _check_image(img, "adjust_saturation")
    if saturation_factor < 0:
        raise ValueError(f"saturation_factor ({saturation_factor}) is not non-negative")
    if is_pil(img):
        return _pil_enhance(img, ImageEnhance.Color, saturation_factor)
    x = img.array
    if x.shape[-3] == 1:
        return img
    return _wrap(_blend(x, _grey(x).astype(x.dtype), saturation_factor))


def _rgb_to_hsv(rgb, xp):
    r, g, b = rgb[..., 0, :, :], rgb[..., 1, :, :], rgb[..., 2, :, :]
    maxc, minc = rgb.max(axis=-3), rgb.min(axis=-3)
    delta = maxc - minc
    equal = maxc == minc
    s = delta / xp.where(equal, xp.ones_like(maxc), maxc)
    safe = xp.where(equal, xp.ones_like(delta), delta)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = xp.where(maxc == r, bc - gc, xp.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = xp.where(equal, 0.0, h)
    h = xp.mod(h / 6.0 + 1.0, 1.0)
    return h, s, maxc


def _hsv_to_rgb(h, s, v, xp):
    i = xp.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.astype(np.int64) % 6
    p = xp.clip(v * (1.0 - s), 0.0, 1.0)
    q = xp.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = xp.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    channels = []
    for c in range(3):
        out = xp.zeros_like(v)
        for k, row in enumerate(table):
            out = xp.where(i == k, row[c], out)
        channels.append(out)
    return xp.stack(channels, axis=-3)


def adjust_hue(img, hue_factor):
    """Shift the hue by hue_factor turns, hue_factor in [-0.5, 0.5]."""
    _check_image(img, "adjust_hue")
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5]")
    if is_pil(img):
        if img.mode in ("L", "1", "I", "F"):
            return img
        h, s, v = img.convert("HSV").split()
        shifted = (np.asarray(h, dtype=np.int64) + int(hue_factor * 255)) % 256
        h = Image.fromarray(shifted.astype(np.uint8), "L")
        return Image.merge("HSV", (h, s, v)).convert(img.mode)
    x = img.array
    if x.shape[-3] == 1:
        return img
    xp = backend.get_array_module(x)
    rgb = x.astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)
    h, s, v = _rgb_to_hsv(rgb, xp)
    out = _hsv_to_rgb(xp.mod(h + hue_factor, 1.0), s, v, xp)
    if x.dtype == np.uint8:
        return convert_image_dtype(_wrap(out.astype(np.float32)), np.uint8)
    return _wrap(out.astype(x.dtype))
