"""torchvision.transforms.v2.functional: the v1 functional operations plus to_image,
to_dtype, gaussian_noise and permute_channels (PIL images, NumPy arrays, tensor images)."""
import numpy as np
from PIL import Image

from .... import backend
from ....tensor import Tensor
from ..functional import (InterpolationMode, _wrap, adjust_brightness,  # noqa: F401
                          adjust_contrast, adjust_gamma, adjust_hue, adjust_saturation,
                          adjust_sharpness, affine, center_crop, convert_image_dtype, crop,
                          elastic_transform, equalize, five_crop, gaussian_blur, get_dimensions,
                          get_image_size, hflip, invert, normalize, pad, perspective,
                          pil_to_tensor, posterize, resize, resized_crop, rgb_to_grayscale,
                          rotate, solarize, ten_crop, to_pil_image, to_tensor, vflip)
from ..functional import erase as _erase_tensor
from ..filtering import _check_channels
from ..tone import autocontrast as _autocontrast_v1
from .photometric import gaussian_noise, permute_channels  # noqa: F401


def to_image(inpt):
    """A (C, H, W) tensor image from a PIL image, an (H, W[, C]) NumPy array or a tensor;
    values and dtype unchanged."""
    if isinstance(inpt, Image.Image):
        return pil_to_tensor(inpt)
    if isinstance(inpt, np.ndarray):
        array = inpt[:, :, None] if inpt.ndim == 2 else inpt
        if array.ndim != 3:
            raise ValueError(f"to_image: an array should be (H, W) or (H, W, C), got shape "
                             f"{inpt.shape}")
        return _wrap(np.ascontiguousarray(array.transpose(2, 0, 1)))
    if isinstance(inpt, Tensor):
        return inpt
    raise TypeError(f"to_image: expected a PIL image, a NumPy array or a tensor, got "
                    f"{type(inpt).__name__}")


def _dtype(dtype):
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype should be a tinylesion/NumPy dtype such as tl.float32, got "
                        f"{dtype!r}") from None


def to_dtype(inpt, dtype=np.float32, scale=False):
    """A tensor image in another dtype; with scale, values are rescaled between the dtypes'
    ranges (integers 0..max <-> floats 0..1), as torchvision v2."""
    if not isinstance(inpt, Tensor):
        raise TypeError(f"to_dtype expects a tensor, got {type(inpt).__name__}; put ToImage() "
                        "before ToDtype")
    dtype = _dtype(dtype)
    x = inpt.array
    if x.dtype == dtype:
        return inpt
    if not scale:
        return _wrap(x.astype(dtype))
    if x.dtype.kind in "iu" and dtype.kind == "f":
        # NOTE: v2 multiplies by 1 / max (v1's convert_image_dtype divides by max); the two
        # can differ in the last bit.
        return _wrap(x.astype(dtype) * dtype.type(1.0 / np.iinfo(x.dtype).max))
    return convert_image_dtype(inpt, dtype)


def erase(inpt, i, j, h, w, v, inplace=False):
    """erase on tensors, and on PIL images through their uint8 tensor (v2 accepts both)."""
    if isinstance(inpt, Image.Image):
        value = backend.to_numpy(v.array) if isinstance(v, Tensor) else np.asarray(v)
        erased = _erase_tensor(pil_to_tensor(inpt), i, j, h, w, value.astype(np.uint8))
        return to_pil_image(erased, mode=inpt.mode)
    return _erase_tensor(inpt, i, j, h, w, v, inplace)



def autocontrast(img):
    """autocontrast, with v2's arithmetic on tensors: (x - min) / ((max - min) / bound),
    which can differ from v1's (x - min) * (bound / (max - min)) by one level in uint8."""
    if not isinstance(img, Tensor):
        return _autocontrast_v1(img)
    x = img.array
    _check_channels(x, "autocontrast")
    xp = backend.get_array_module(x)
    work = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    bound = 1.0 if x.dtype.kind == "f" else float(np.iinfo(x.dtype).max)
    values = x.astype(work)
    low = values.min(axis=(-2, -1), keepdims=True)
    high = values.max(axis=(-2, -1), keepdims=True)
    flat = high == low
    inv_scale = xp.where(flat, work.type(1), (high - low) * work.type(1.0 / bound))
    low = xp.where(flat, work.type(0), low)
    return _wrap(xp.clip((values - low) / inv_scale, 0, bound).astype(x.dtype))
