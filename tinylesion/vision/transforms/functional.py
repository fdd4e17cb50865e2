"""torchvision.transforms.functional's operations on PIL images and tinylesion Tensors.

A tensor image is a Tensor of shape (..., C, H, W); float images hold values in [0, 1],
uint8 ones 0..255. Geometry on tensors (crop, flip, pad, nearest resize) is array indexing
on the tensor's device; rotation, affine and perspective warps sample a grid there
(geometry.py); bilinear/bicubic resize (and bicubic rotation) go through Pillow, channel by
channel ('F' images for floats, 'L' for uint8), on the CPU, and come back to the device.
"""
import enum
import numbers

import numpy as np
from PIL import Image, ImageOps

from ... import backend
from ...tensor import Tensor


class InterpolationMode(enum.Enum):
    """The resampling filters, by torchvision's names."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL_FILTERS = {
    InterpolationMode.NEAREST: Image.Resampling.NEAREST,
    InterpolationMode.NEAREST_EXACT: Image.Resampling.NEAREST,
    InterpolationMode.BILINEAR: Image.Resampling.BILINEAR,
    InterpolationMode.BICUBIC: Image.Resampling.BICUBIC,
    InterpolationMode.BOX: Image.Resampling.BOX,
    InterpolationMode.HAMMING: Image.Resampling.HAMMING,
    InterpolationMode.LANCZOS: Image.Resampling.LANCZOS,
}


def interpolation_mode(value):
    """An InterpolationMode from itself, its name ('bilinear') or a Pillow filter number."""
    if isinstance(value, InterpolationMode):
        return value
    if isinstance(value, str):
        try:
            return InterpolationMode(value.lower())
        except ValueError:
            pass
    for mode, pil in _PIL_FILTERS.items():
        if not isinstance(value, (bool, str)) and value == int(pil):
            return mode
    names = ", ".join(m.value for m in InterpolationMode)
    raise ValueError(f"unknown interpolation {value!r}: use InterpolationMode or one of {names}")


def is_pil(img):
    return isinstance(img, Image.Image)


def _check_image(img, name):
    if is_pil(img):
        return
    if not isinstance(img, Tensor):
        got = "a torch.Tensor; use tl.from_numpy(t.numpy())" \
            if type(img).__module__.startswith("torch") else type(img).__name__
        raise TypeError(f"{name}: expected a PIL image or a tinylesion Tensor, got {got}")
    if img.ndim < 2:
        raise ValueError(f"{name}: a tensor image needs at least 2 dimensions (..., H, W), "
                         f"got shape {tuple(img.shape)}")


def get_dimensions(img):
    """[channels, height, width] of a PIL image or tensor image."""
    _check_image(img, "get_dimensions")
    if is_pil(img):
        return [len(img.getbands()), img.height, img.width]
    shape = img.shape
    return [shape[-3] if len(shape) > 2 else 1, shape[-2], shape[-1]]


def get_image_size(img):
    """[width, height]."""
    _, h, w = get_dimensions(img)
    return [w, h]


def _wrap(array):
    return Tensor._wrap(array)


# ---------------------------------------------------------------------------------------------
# Conversions
def to_tensor(pic):
    """A PIL image or an (H, W[, C]) NumPy array as a (C, H, W) Tensor: uint8 data becomes
    float32 divided by 255; other dtypes keep their values ('I', 'F' images, float arrays)."""
    if is_pil(pic):
        if pic.mode == "1":
            array = np.asarray(pic, dtype=np.uint8) * np.uint8(255)
        else:
            array = np.array(pic, copy=True)
    elif isinstance(pic, np.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(f"to_tensor: pic should be 2 or 3 dimensional, got {pic.ndim} "
                             "dimensions")
        array = pic
    else:
        raise TypeError(f"to_tensor: pic should be a PIL image or a numpy.ndarray, got "
                        f"{type(pic).__name__}")
    if array.ndim == 2:
        array = array[:, :, None]
    chw = np.ascontiguousarray(array.transpose(2, 0, 1))
    if chw.dtype == np.uint8:
        return _wrap(chw.astype(np.float32) / np.float32(255))
    if chw.dtype == np.bool_:
        return _wrap(chw.astype(np.float32))
    return _wrap(chw)


def pil_to_tensor(pic):
    """A PIL image as a (C, H, W) Tensor of its own dtype (uint8 for 'L', 'RGB', ...)."""
    if not is_pil(pic):
        raise TypeError(f"pil_to_tensor: pic should be a PIL image, got {type(pic).__name__}")
    array = np.array(pic, copy=True)
    if array.ndim == 2:
        array = array[:, :, None]
    return _wrap(np.ascontiguousarray(array.transpose(2, 0, 1)))


def to_pil_image(pic, mode=None):
    """A (C, H, W) tensor (floats in [0, 1] are scaled by 255) or an (H, W, C) array as a PIL
    image of 1, 2, 3 or 4 channels."""
    if isinstance(pic, Tensor):
        array = backend.to_numpy(pic.array)
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3:
            raise ValueError(f"to_pil_image: pic should be 2 or 3 dimensional, got shape "
                             f"{array.shape}")
        if array.dtype.kind == "f" and mode != "F":
            array = (array * 255).astype(np.uint8)
        array = array.transpose(1, 2, 0)
    elif isinstance(pic, np.ndarray):
        array = pic[:, :, None] if pic.ndim == 2 else pic
        if array.ndim != 3:
            raise ValueError(f"to_pil_image: pic should be 2 or 3 dimensional, got shape "
                             f"{pic.shape}")
    else:
        raise TypeError(f"to_pil_image: pic should be a Tensor or ndarray, got "
                        f"{type(pic).__name__}")
    channels = array.shape[2]
    if channels == 1:
        array = array[:, :, 0]
        if mode is None and array.dtype != np.uint8:
            mode = {np.dtype(np.int16): "I;16", np.dtype(np.int32): "I",
                    np.dtype(np.float32): "F"}.get(array.dtype)
        return Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    if array.dtype != np.uint8:
        raise TypeError(f"to_pil_image: {channels}-channel images must be uint8, got "
                        f"{array.dtype}")
    default = {2: "LA", 3: "RGB", 4: "RGBA"}.get(channels)
    if default is None:
        raise ValueError(f"to_pil_image: pic should not have > 4 channels, got {channels}")
    image = Image.fromarray(np.ascontiguousarray(array), default)
    return image if mode is None or mode == default else image.convert(mode)


def convert_image_dtype(image, dtype=np.float32):
    """An image tensor in another dtype, values rescaled: uint8 0..255 <-> float 0..1."""
    _check_image(image, "convert_image_dtype")
    if is_pil(image):
        raise TypeError("convert_image_dtype expects a Tensor; use ToTensor() for PIL images")
    x, dtype = image.array, np.dtype(dtype)
    xp = backend.get_array_module(x)
    if x.dtype == dtype:
        return image
    if x.dtype.kind == "f":
        if dtype.kind == "f":
            return _wrap(x.astype(dtype))
        # NOTE: scaled by (max + 1 - eps) then truncated, so that 1.0 maps to max and every
        # integer value gets an equal share of [0, 1].
        top = np.iinfo(dtype).max
        return _wrap((x * (top + 1.0 - 1e-3)).astype(dtype))
    top_in = np.iinfo(x.dtype).max
    if dtype.kind == "f":
        return _wrap(x.astype(dtype) / dtype.type(top_in))
    top_out = np.iinfo(dtype).max
    if top_out >= top_in:
        factor = (top_out + 1) // (top_in + 1)
        return _wrap(x.astype(dtype) * dtype.type(factor))
    return _wrap(xp.floor_divide(x, (top_in + 1) // (top_out + 1)).astype(dtype))


def normalize(tensor, mean, std, inplace=False):
    """(tensor - mean) / std channel by channel, on a float (..., C, H, W) tensor."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"normalize expects a Tensor, got {type(tensor).__name__}; put "
                        "transforms.ToTensor() before Normalize")
    if tensor.dtype.kind != "f":
        raise TypeError(f"normalize: input tensor should be a float tensor, got {tensor.dtype};"
                        " convert it with ConvertImageDtype(tl.float32) or ToTensor()")
    if tensor.ndim < 3:
        raise ValueError(f"normalize: expected a tensor image of size (..., C, H, W), got "
                         f"shape {tuple(tensor.shape)}")
    x = tensor.array
    xp = backend.get_array_module(x)
    mean, std = (backend.to_numpy(getattr(v, "array", v)) for v in (mean, std))
    mean = np.asarray(mean, dtype=x.dtype).reshape(-1, 1, 1)
    std = np.asarray(std, dtype=x.dtype).reshape(-1, 1, 1)
    if (std == 0).any():   # checked on the host: no wait for the device
        raise ValueError(f"std evaluated to zero after conversion to {x.dtype}, leading to "
                         "division by zero")
    mean, std = xp.asarray(mean), xp.asarray(std)
    if inplace:
        x -= mean
        x /= std
        return tensor
    return _wrap((x - mean) / std)


# ---------------------------------------------------------------------------------------------
# Geometry
def resize_output_size(height, width, size, max_size=None):
    """(new_height, new_width): size (h, w) as given, or an int for the shorter side, the
    longer one keeping the aspect ratio (truncated) and at most max_size."""
    if isinstance(size, (list, tuple)):
        if len(size) not in (1, 2):
            raise ValueError(f"resize: size must be an int or a sequence of 1 or 2 ints, got "
                             f"{size}")
        if len(size) == 2:
            if max_size is not None:
                raise ValueError("max_size is only allowed when size is a single int")
            return int(size[0]), int(size[1])
        size = size[0]
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size <= 0:
        raise ValueError(f"resize: size must be a positive int or a sequence, got {size!r}")
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = int(size), int(size * long / short)
    if max_size is not None:
        if max_size <= size:
            raise ValueError(f"max_size = {max_size} must be strictly greater than the "
                             f"requested size for the smaller edge size = {size}")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if width <= height else (new_short, new_long)


def _channels_through_pil(x, op):
    """Apply `op` (PIL image -> PIL image) to each (H, W) plane of the CPU array x (..., H, W):
    uint8 planes as 'L' images, others as float32 'F' images."""
    lead = x.shape[:-2]
    planes = x.reshape((-1,) + x.shape[-2:])
    as_bytes = x.dtype == np.uint8
    out = []
    for plane in planes:
        image = Image.fromarray(plane if as_bytes else plane.astype(np.float32),
                                "L" if as_bytes else "F")
        out.append(np.asarray(op(image)))
    out = np.stack(out) if out else np.zeros((0, 1, 1), x.dtype)
    return out.reshape(lead + out.shape[-2:]).astype(x.dtype, copy=False)


def _through_pil(img, op):
    """A tensor image transformed plane by plane by Pillow, back on its device."""
    x = img.array
    out = _channels_through_pil(backend.to_numpy(x), op)
    return _wrap(backend.to_device(out, backend.device_of(x)))


def _nearest_indices(n_in, n_out, exact, xp):
    scale = n_in / n_out
    pos = (xp.arange(n_out) + (0.5 if exact else 0.0)) * scale
    return xp.minimum(xp.floor(pos).astype(np.int64), n_in - 1)


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """Resize to `size` ((h, w), or an int for the shorter side)."""
    _check_image(img, "resize")
    mode = interpolation_mode(interpolation)
    _, h, w = get_dimensions(img)
    oh, ow = resize_output_size(h, w, size, max_size)
    if (oh, ow) == (h, w):
        return img
    if is_pil(img):
        return img.resize((ow, oh), _PIL_FILTERS[mode])
    if mode in (InterpolationMode.NEAREST, InterpolationMode.NEAREST_EXACT):
        x = img.array
        xp = backend.get_array_module(x)
        exact = mode is InterpolationMode.NEAREST_EXACT
        rows, cols = _nearest_indices(h, oh, exact, xp), _nearest_indices(w, ow, exact, xp)
        return _wrap(xp.ascontiguousarray(x[..., rows[:, None], cols[None, :]]))
    if not antialias:
        return _resize_without_antialias(img, oh, ow, mode)
    return _through_pil(img, lambda im: im.resize((ow, oh), _PIL_FILTERS[mode]))


def _resize_without_antialias(img, oh, ow, mode):
    """Bilinear resizing of a tensor image by plain interpolation (no low-pass filter when
    shrinking), as torchvision's antialias=False; integer images are rounded back."""
    if mode is not InterpolationMode.BILINEAR:
        raise NotImplementedError(f"resize: antialias=False is implemented for bilinear "
                                  f"tensor resizing only, not {mode.value}")
    from ...nn.upsampling import interpolate  # imports nn, which imports this package
    x = img.array
    xp = backend.get_array_module(x)
    planes = x.reshape((-1, 1) + x.shape[-2:])
    floats = planes if x.dtype.kind == "f" else planes.astype(np.float32)
    out = interpolate(_wrap(floats), size=(oh, ow), mode="bilinear", align_corners=False).array
    if x.dtype.kind != "f":
        info = np.iinfo(x.dtype) if x.dtype.kind in "iu" else None
        out = xp.round(out)
        if info is not None:
            out = xp.clip(out, info.min, info.max)
        out = out.astype(x.dtype)
    return _wrap(xp.ascontiguousarray(out.reshape(x.shape[:-2] + (oh, ow))))


def _padding_ltrb(padding):
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        return [int(padding)] * 4
    if isinstance(padding, (list, tuple)) and len(padding) in (1, 2, 4):
        p = [int(v) for v in padding]
        return p * 4 if len(p) == 1 else [p[0], p[1], p[0], p[1]] if len(p) == 2 else p
    raise ValueError(f"pad: padding must be an int or a sequence of 1, 2 or 4 ints, got "
                     f"{padding!r}")


_NP_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect",
                 "symmetric": "symmetric"}


def pad(img, padding, fill=0, padding_mode="constant"):
    """Pad the borders: padding is all sides, (left/right, top/bottom) or (l, t, r, b)."""
    _check_image(img, "pad")
    if padding_mode not in _NP_PAD_MODES:
        raise ValueError(f"pad: padding_mode must be constant, edge, reflect or symmetric, "
                         f"got {padding_mode!r}")
    left, top, right, bottom = _padding_ltrb(padding)
    if min(left, top, right, bottom) < 0:
        raise ValueError(f"pad: negative padding {padding!r}")
    if is_pil(img):
        if isinstance(fill, numbers.Number) and len(img.getbands()) > 1:
            fill = (fill,) * len(img.getbands())  # every band, as torchvision (Pillow: the first)
        if padding_mode == "constant" and img.mode not in ("P",):
            return ImageOps.expand(img, (left, top, right, bottom), fill=fill)
        array = np.asarray(img)
        widths = [(top, bottom), (left, right)] + [(0, 0)] * (array.ndim - 2)
        kwargs = {"constant_values": fill} if padding_mode == "constant" else {}
        out = Image.fromarray(np.pad(array, widths, _NP_PAD_MODES[padding_mode], **kwargs))
        if img.mode == "P":
            out.putpalette(img.getpalette())
        return out
    x = img.array
    xp = backend.get_array_module(x)
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    kwargs = {"constant_values": fill} if padding_mode == "constant" else {}
    return _wrap(xp.pad(x, widths, _NP_PAD_MODES[padding_mode], **kwargs))


def crop(img, top, left, height, width):
    """The region of `height` x `width` at (top, left); outside the image is zero."""
    _check_image(img, "crop")
    if is_pil(img):
        return img.crop((left, top, left + width, top + height))
    _, h, w = get_dimensions(img)
    right, bottom = left + width, top + height
    if left < 0 or top < 0 or right > w or bottom > h:
        padded = pad(img, [max(-left, 0), max(-top, 0), max(right - w, 0), max(bottom - h, 0)])
        return crop(padded, max(top, 0), max(left, 0), height, width)
    x = img.array
    xp = backend.get_array_module(x)
    return _wrap(xp.ascontiguousarray(x[..., top:bottom, left:right]))


def _pair(size, name):
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        return int(size), int(size)
    if isinstance(size, (list, tuple)) and len(size) in (1, 2):
        return (int(size[0]), int(size[0])) if len(size) == 1 else (int(size[0]), int(size[1]))
    raise ValueError(f"{name}: size must be an int or a sequence of 1 or 2 ints, got {size!r}")


def center_crop(img, output_size):
    """The central region of output_size (an int for a square); padded with zeros when the
    image is smaller."""
    th, tw = _pair(output_size, "center_crop")
    _, h, w = get_dimensions(img)
    if tw > w or th > h:
        img = pad(img, [(tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0,
                        (tw - w + 1) // 2 if tw > w else 0, (th - h + 1) // 2 if th > h else 0])
        _, h, w = get_dimensions(img)
        if (h, w) == (th, tw):
            return img
    return crop(img, int(round((h - th) / 2.0)), int(round((w - tw) / 2.0)), th, tw)


def resized_crop(img, top, left, height, width, size, interpolation=InterpolationMode.BILINEAR,
                 antialias=True):
    """crop, then resize to `size`."""
    return resize(crop(img, top, left, height, width), size, interpolation)


def hflip(img):
    """Mirror left to right."""
    _check_image(img, "hflip")
    if is_pil(img):
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return _wrap(img.array[..., ::-1].copy())


def vflip(img):
    """Mirror top to bottom."""
    _check_image(img, "vflip")
    if is_pil(img):
        return img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    return _wrap(img.array[..., ::-1, :].copy())


def rotate(img, angle, interpolation=InterpolationMode.NEAREST, expand=False, center=None,
           fill=None):
    """Rotate by `angle` degrees counter-clockwise about `center` (default: the image's).
    Tensors are resampled as torchvision's (nearest or bilinear), or by Pillow (bicubic)."""
    _check_image(img, "rotate")
    mode = interpolation_mode(interpolation)
    if mode not in (InterpolationMode.NEAREST, InterpolationMode.BILINEAR,
                    InterpolationMode.BICUBIC):
        raise ValueError(f"rotate: interpolation must be nearest, bilinear or bicubic, "
                         f"got {mode.value}")
    resample = _PIL_FILTERS[mode]
    if is_pil(img):
        if isinstance(fill, (list, tuple)) and len(fill) == 1:
            fill = fill[0]
        fill = tuple(fill) if isinstance(fill, list) else fill
        return img.rotate(angle, resample, expand=expand, center=center, fillcolor=fill)
    if mode is not InterpolationMode.BICUBIC:
        return _rotate_tensor(img, angle, mode, expand, center, fill)
    value = 0 if fill is None else fill
    if isinstance(value, (list, tuple)):
        if len(set(value)) > 1:
            raise ValueError("rotate: a per-channel fill is supported on PIL images only")
        value = value[0]
    return _through_pil(img, lambda im: im.rotate(angle, resample, expand=expand,
                                                  center=center, fillcolor=value))


# Colour: in their own module, re-exported under torchvision's functional names
from .color import (adjust_brightness, adjust_contrast, adjust_hue,  # noqa: E402,F401
                    adjust_saturation, rgb_to_grayscale)
from .filtering import adjust_sharpness, erase, gaussian_blur  # noqa: E402,F401
from .geometry import (affine, elastic_transform, five_crop, perspective,  # noqa: E402,F401
                       rotate_tensor as _rotate_tensor, ten_crop)
from .tone import (adjust_gamma, autocontrast, equalize, invert, posterize,  # noqa: E402,F401
                   solarize)
