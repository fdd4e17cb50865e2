"""Neighbourhood and region operations as torchvision's functional: gaussian_blur,
adjust_sharpness and erase, on PIL images and tensor images (..., C, H, W)."""
import numbers

import numpy as np
from PIL import ImageEnhance

from ... import backend
from ...tensor import Tensor
from .color import _blend
from .functional import _check_image, _wrap, is_pil, pil_to_tensor, to_pil_image


def _correlate(x, kernel, xp):
    """The 'valid' 2-D correlation of each plane of x (..., H, W) with a small kernel."""
    kh, kw = kernel.shape
    h, w = x.shape[-2] - kh + 1, x.shape[-1] - kw + 1
    out = xp.zeros(x.shape[:-2] + (h, w), x.dtype)
    for a in range(kh):
        for b in range(kw):
            out += kernel[a, b] * x[..., a:a + h, b:b + w]
    return out


def _back_to_dtype(out, dtype, xp):
    """Float results back to an image dtype: integers are rounded first."""
    if dtype.kind == "f":
        return out.astype(dtype)
    info = np.iinfo(dtype)
    return xp.clip(xp.round(out), info.min, info.max).astype(dtype)


def gaussian_kernel1d(size, sigma, dtype=np.float32):
    """The normalised Gaussian weights at size points spaced 1 apart around 0."""
    half = (size - 1) * 0.5
    pdf = np.exp(-0.5 * (np.linspace(-half, half, size, dtype=dtype) / dtype(sigma)) ** 2)
    return pdf / pdf.sum()


def _blur_arguments(kernel_size, sigma):
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, (int, list, tuple)):
        raise TypeError(f"gaussian_blur: kernel_size should be an int or a sequence of ints, "
                        f"got {type(kernel_size).__name__}")
    sizes = [kernel_size] * 2 if isinstance(kernel_size, int) else list(kernel_size)
    if len(sizes) != 2:
        raise ValueError(f"gaussian_blur: kernel_size should have length 2, got {kernel_size}")
    if any(not isinstance(k, numbers.Integral) or k % 2 == 0 or k < 0 for k in sizes):
        raise ValueError(f"gaussian_blur: kernel_size should be odd positive integers, got "
                         f"{kernel_size}")
    if sigma is None:
        sigma = [k * 0.15 + 0.35 for k in sizes]
    if isinstance(sigma, numbers.Real) and not isinstance(sigma, bool):
        sigma = [float(sigma)] * 2
    elif isinstance(sigma, (list, tuple)) and len(sigma) in (1, 2):
        sigma = [float(sigma[0])] * 2 if len(sigma) == 1 else [float(s) for s in sigma]
    else:
        raise TypeError(f"gaussian_blur: sigma should be a float or a sequence of 1 or 2 "
                        f"floats, got {sigma!r}")
    if min(sigma) <= 0:
        raise ValueError(f"gaussian_blur: sigma should be positive, got {sigma}")
    return [int(k) for k in sizes], sigma


def gaussian_blur(img, kernel_size, sigma=None):
    """Blur with a Gaussian of kernel_size (kx, ky), odd, and sigma (sx, sy); default sigma
    0.15 * size + 0.35. Borders are reflected; PIL images are blurred as uint8 tensors."""
    _check_image(img, "gaussian_blur")
    (kx, ky), (sx, sy) = _blur_arguments(kernel_size, sigma)
    if is_pil(img):
        return to_pil_image(gaussian_blur(pil_to_tensor(img), [kx, ky], [sx, sy]),
                            mode=img.mode)
    x = img.array
    xp = backend.get_array_module(x)
    work = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    kernel = np.outer(gaussian_kernel1d(ky, sy, work.type), gaussian_kernel1d(kx, sx, work.type))
    widths = [(0, 0)] * (x.ndim - 2) + [(ky // 2, ky // 2), (kx // 2, kx // 2)]
    padded = xp.pad(x.astype(work), widths, mode="reflect")
    return _wrap(_back_to_dtype(_correlate(padded, kernel, xp), x.dtype, xp))


def _check_channels(x, name, allowed=(1, 3)):
    if x.ndim < 3:
        raise TypeError(f"{name}: a tensor image needs at least 3 dimensions (..., C, H, W), "
                        f"got {x.ndim}")
    if x.shape[-3] not in allowed:
        raise TypeError(f"{name}: expected {' or '.join(map(str, allowed))} channels, got "
                        f"{x.shape[-3]}")


def adjust_sharpness(img, sharpness_factor):
    """Blend with a smoothed copy (3x3 kernel 1/13 [1 1 1; 1 5 1; 1 1 1], borders kept):
    0 gives the smoothed image, 1 the image, 2 a sharper one."""
    _check_image(img, "adjust_sharpness")
    if sharpness_factor < 0:
        raise ValueError(f"sharpness_factor ({sharpness_factor}) is not non-negative")
    if is_pil(img):
        return ImageEnhance.Sharpness(img).enhance(sharpness_factor)
    x = img.array
    _check_channels(x, "adjust_sharpness")
    if x.shape[-1] <= 2 or x.shape[-2] <= 2:
        return img
    xp = backend.get_array_module(x)
    work = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    kernel = np.ones((3, 3), work)
    kernel[1, 1] = 5
    kernel /= kernel.sum()
    smooth = x.copy()
    smooth[..., 1:-1, 1:-1] = _back_to_dtype(_correlate(x.astype(work), kernel, xp), x.dtype, xp)
    return _wrap(_blend(x, smooth, sharpness_factor))


def erase(img, i, j, h, w, v, inplace=False):
    """The tensor image with rows i..i+h, columns j..j+w set to v (a number, or a tensor
    broadcasting to (C, h, w))."""
    if not isinstance(img, Tensor):
        raise TypeError(f"erase: img should be a Tensor image, got {type(img).__name__}; put "
                        "ToTensor() before RandomErasing")
    _check_image(img, "erase")
    x = img.array
    xp = backend.get_array_module(x)
    value = backend.to_numpy(v.array) if isinstance(v, Tensor) else np.asarray(v)
    out = x if inplace else x.copy()
    out[..., i:i + h, j:j + w] = xp.asarray(value.astype(x.dtype, copy=False))
    return img if inplace else _wrap(out)
