"""Affine, perspective, rotation and elastic warps as torchvision's functional: Pillow's
transform on PIL images (elastic: through their uint8 tensor), a NumPy/CuPy grid sampler
(nearest or bilinear, zeros outside, torchvision's pixel-centre conventions) on tensors."""
import math
import numbers

import numpy as np
from PIL import Image

from ... import backend
from ...tensor import Tensor
from .functional import (InterpolationMode, _PIL_FILTERS, _check_image, _pair, _wrap, center_crop,
                         crop, get_dimensions, hflip, interpolation_mode, is_pil, pil_to_tensor,
                         to_pil_image, vflip)

_GRID_MODES = (InterpolationMode.NEAREST, InterpolationMode.BILINEAR)


def inverse_affine_matrix(center, angle, translate, scale, shear):
    """The 6 numbers (a, b, c, d, e, f) mapping an output pixel (x, y) to the input pixel
    (a x + b y + c, d x + e y + f) of the warp M = T C R S Sh C^-1 (rotation by `angle`
    degrees clockwise, scale, shears in degrees; C the centre, T the translation)."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    # NOTE: R(a) Sh_y(sy) Sh_x(sx) = [[p, q], [r, s]] with determinant 1, so its inverse is
    # [[s, -q], [-r, p]]; dividing by the scale inverts S.
    p = math.cos(rot - sy) / math.cos(sy)
    q = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    r = math.sin(rot - sy) / math.cos(sy)
    s = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    m = [s / scale, -q / scale, 0.0, -r / scale, p / scale, 0.0]
    m[2] = m[0] * (-cx - tx) + m[1] * (-cy - ty) + cx
    m[5] = m[3] * (-cx - tx) + m[4] * (-cy - ty) + cy
    return m


def _pil_fill(fill, img):
    """A fill colour Pillow accepts for img: one number per band, ints unless mode 'F'."""
    bands = len(img.getbands())
    fill = 0 if fill is None else fill
    if isinstance(fill, (list, tuple)):
        if len(fill) == 1:
            fill = list(fill) * bands
        elif len(fill) != bands:
            raise ValueError(f"fill has {len(fill)} values but the image has {bands} channels")
        fill = tuple(fill)
    elif bands > 1:
        fill = (fill,) * bands
    if img.mode != "F":
        fill = tuple(int(v) for v in fill) if isinstance(fill, tuple) else int(fill)
    return fill


def _grid_mode(interpolation, name):
    mode = interpolation_mode(interpolation)
    if mode not in _GRID_MODES:
        raise ValueError(f"{name}: tensor images support nearest and bilinear interpolation, "
                         f"got {mode.value}")
    return mode


def _sample(x, ix, iy, mode, xp):
    """x (N, C, H, W) floats read at pixel positions (ix, iy) of shape (Ho, Wo); zeros
    outside the image."""
    h, w = x.shape[-2:]

    def gather(rows, cols):
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        values = x[..., xp.clip(rows, 0, h - 1), xp.clip(cols, 0, w - 1)]
        return values * inside.astype(x.dtype)

    if mode is InterpolationMode.NEAREST:
        # NOTE: rint rounds halves to even, as grid_sample's nearest mode does.
        return gather(xp.rint(iy).astype(np.int64), xp.rint(ix).astype(np.int64))
    x0, y0 = xp.floor(ix), xp.floor(iy)
    fx, fy = (ix - x0).astype(x.dtype), (iy - y0).astype(x.dtype)
    c0, r0 = x0.astype(np.int64), y0.astype(np.int64)
    return (gather(r0, c0) * ((1 - fx) * (1 - fy)) + gather(r0, c0 + 1) * (fx * (1 - fy))
            + gather(r0 + 1, c0) * ((1 - fx) * fy) + gather(r0 + 1, c0 + 1) * (fx * fy))


def _warp_tensor(img, grid_x, grid_y, mode, fill):
    """Sample a tensor image at normalised grid positions in [-1, 1] (pixel centres at
    (2k + 1) / size - 1; the output has the grid's size); with a fill, outside pixels take
    it (blended at the border for bilinear), as torchvision does."""
    x = img.array
    xp = backend.get_array_module(x)
    work = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    h, w = x.shape[-2:]
    channels = x.shape[-3] if x.ndim > 2 else 1
    planes = x.reshape((-1, channels, h, w)).astype(work)
    ix = ((grid_x + 1) * w - 1) / 2
    iy = ((grid_y + 1) * h - 1) / 2
    out = _sample(planes, ix, iy, mode, xp)
    if fill is not None:
        mask = _sample(xp.ones((1, 1, h, w), work), ix, iy, mode, xp)
        values = fill if isinstance(fill, (list, tuple)) else [fill]
        if len(values) not in (1, channels):
            raise ValueError(f"fill has {len(values)} values but the image has {channels} "
                             "channels")
        colour = xp.asarray(np.asarray(values, dtype=work).reshape(1, -1, 1, 1))
        if mode is InterpolationMode.NEAREST:
            out = xp.where(mask < 0.5, colour, out)
        else:
            out = out * mask + (1 - mask) * colour
    if x.dtype.kind != "f":
        out = xp.round(out)
        if x.dtype.kind in "iu":
            info = np.iinfo(x.dtype)
            out = xp.clip(out, info.min, info.max)
    out = out.astype(x.dtype).reshape(x.shape[:-2] + out.shape[-2:])
    return _wrap(xp.ascontiguousarray(out))


def _affine_grid(matrix, h, w, dtype, xp, oh=None, ow=None):
    """torchvision's grid for an inverse affine matrix given about the image centre, for an
    output of (oh, ow) pixels (default: the input's) sharing that centre."""
    t = np.asarray(matrix, dtype=dtype).reshape(2, 3)
    oh, ow = oh or h, ow or w
    bx = xp.asarray(np.linspace(-ow * 0.5 + 0.5, ow * 0.5 - 0.5, ow, dtype=dtype))[None, :]
    by = xp.asarray(np.linspace(-oh * 0.5 + 0.5, oh * 0.5 - 0.5, oh, dtype=dtype))[:, None]
    half_w, half_h = dtype.type(0.5 * w), dtype.type(0.5 * h)
    gx = bx * (t[0, 0] / half_w) + by * (t[0, 1] / half_w) + t[0, 2] / half_w
    gy = bx * (t[1, 0] / half_h) + by * (t[1, 1] / half_h) + t[1, 2] / half_h
    return gx, gy


def _shear_pair(shear):
    if isinstance(shear, numbers.Number):
        return [float(shear), 0.0]
    if not isinstance(shear, (list, tuple)):
        raise TypeError(f"affine: shear should be a number or a sequence of two values, got "
                        f"{type(shear).__name__}")
    if len(shear) == 1:
        return [float(shear[0])] * 2
    if len(shear) != 2:
        raise ValueError(f"affine: shear should be a sequence of two values, got {shear!r}")
    return [float(v) for v in shear]


def affine(img, angle, translate, scale, shear, interpolation=InterpolationMode.NEAREST,
           fill=None, center=None):
    """Rotate by `angle` degrees (clockwise), scale, shear (degrees, x then y) about `center`
    (default: the image's centre), then translate by (dx, dy) pixels; size unchanged."""
    _check_image(img, "affine")
    mode = interpolation_mode(interpolation)
    if isinstance(angle, bool) or not isinstance(angle, numbers.Real):
        raise TypeError(f"affine: angle should be int or float, got {type(angle).__name__}")
    if not isinstance(translate, (list, tuple)):
        raise TypeError(f"affine: translate should be a sequence, got "
                        f"{type(translate).__name__}")
    if len(translate) != 2:
        raise ValueError(f"affine: translate should be a sequence of length 2, got {translate!r}")
    if scale <= 0.0:
        raise ValueError(f"affine: scale should be positive, got {scale}")
    shear = _shear_pair(shear)
    if center is not None and not isinstance(center, (list, tuple)):
        raise TypeError(f"affine: center should be a sequence, got {type(center).__name__}")
    _, height, width = get_dimensions(img)
    if is_pil(img):
        center = [width * 0.5, height * 0.5] if center is None else center
        matrix = inverse_affine_matrix(center, float(angle), translate, scale, shear)
        return img.transform(img.size, Image.Transform.AFFINE, matrix, _PIL_FILTERS[mode],
                             fillcolor=_pil_fill(fill, img))
    mode = _grid_mode(mode, "affine")
    offset = [0.0, 0.0] if center is None else [c - s * 0.5 for c, s in
                                                 zip(center, (width, height))]
    matrix = inverse_affine_matrix(offset, float(angle), [float(t) for t in translate],
                                   scale, shear)
    x = img.array
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    gx, gy = _affine_grid(matrix, height, width, dtype, backend.get_array_module(x))
    return _warp_tensor(img, gx, gy, mode, fill)


def _expanded_size(matrix, w, h):
    """(ow, oh) holding the whole image after the inverse affine `matrix` (about the centre):
    the bounding box of the mapped corners, ceil/floor after truncating to 1e-4."""
    corners = np.array([[-0.5 * w, -0.5 * h, 1.0], [-0.5 * w, 0.5 * h, 1.0],
                        [0.5 * w, 0.5 * h, 1.0], [0.5 * w, -0.5 * h, 1.0]], np.float32)
    mapped = corners @ np.asarray(matrix, np.float32).reshape(2, 3).T
    shift = np.array([w * 0.5, h * 0.5], np.float32)
    low, high = mapped.min(axis=0) + shift, mapped.max(axis=0) + shift
    tol = np.float32(1e-4)
    size = np.ceil(np.trunc(high / tol) * tol) - np.floor(np.trunc(low / tol) * tol)
    return int(size[0]), int(size[1])


def rotate_tensor(img, angle, mode, expand=False, center=None, fill=None):
    """A tensor image rotated by `angle` degrees counter-clockwise (nearest or bilinear), as
    torchvision's tensor rotate: about `center` (default the image's), optionally enlarged
    to hold the whole rotated image."""
    mode = _grid_mode(mode, "rotate")
    _, h, w = get_dimensions(img)
    offset = [0.0, 0.0] if center is None else [c - s * 0.5 for c, s in zip(center, (w, h))]
    matrix = inverse_affine_matrix(offset, -float(angle), [0.0, 0.0], 1.0, [0.0, 0.0])
    ow, oh = _expanded_size(matrix, w, h) if expand else (w, h)
    x = img.array
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    gx, gy = _affine_grid(matrix, h, w, dtype, backend.get_array_module(x), oh, ow)
    return _warp_tensor(img, gx, gy, mode, fill)


def perspective_coefficients(startpoints, endpoints):
    """The 8 numbers (a..h) with which each output pixel (x, y) reads the input at
    ((a x + b y + c) / (g x + h y + 1), (d x + e y + f) / (g x + h y + 1)), mapping the
    four `endpoints` onto the four `startpoints` (rounded to float32 as torchvision)."""
    if len(startpoints) != 4 or len(endpoints) != 4:
        raise ValueError(f"perspective: give exactly four corners, got {len(startpoints)} "
                         f"startpoints and {len(endpoints)} endpoints")
    rows, rhs = [], []
    for (x, y), (u, v) in zip(endpoints, startpoints):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    a, b = np.asarray(rows, np.float64), np.asarray(rhs, np.float64)
    solution = np.linalg.lstsq(a, b, rcond=None)[0]
    return [float(c) for c in solution.astype(np.float32)]


def perspective(img, startpoints, endpoints, interpolation=InterpolationMode.BILINEAR,
                fill=None):
    """Warp so that the four `startpoints` ([top-left, top-right, bottom-right, bottom-left],
    (x, y) pixels) land on the four `endpoints`; size unchanged."""
    _check_image(img, "perspective")
    coeffs = perspective_coefficients(startpoints, endpoints)
    mode = interpolation_mode(interpolation)
    if is_pil(img):
        return img.transform(img.size, Image.Transform.PERSPECTIVE, coeffs, _PIL_FILTERS[mode],
                             fillcolor=_pil_fill(fill, img))
    mode = _grid_mode(mode, "perspective")
    x = img.array
    xp = backend.get_array_module(x)
    _, h, w = get_dimensions(img)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    c = [dtype.type(v) for v in coeffs]
    bx = xp.asarray(np.linspace(0.5, w - 0.5, w, dtype=dtype))[None, :]
    by = xp.asarray(np.linspace(0.5, h - 0.5, h, dtype=dtype))[:, None]
    denom = bx * c[6] + by * c[7] + dtype.type(1)
    gx = (bx * (c[0] / dtype.type(0.5 * w)) + by * (c[1] / dtype.type(0.5 * w))
          + c[2] / dtype.type(0.5 * w)) / denom - 1
    gy = (bx * (c[3] / dtype.type(0.5 * h)) + by * (c[4] / dtype.type(0.5 * h))
          + c[5] / dtype.type(0.5 * h)) / denom - 1
    return _warp_tensor(img, gx, gy, mode, fill)


def elastic_transform(img, displacement, interpolation=InterpolationMode.BILINEAR, fill=None):
    """Each output pixel reads the input at its own position plus `displacement`, a
    (1, H, W, 2) tensor or array of (dx, dy) in normalised units (2 spans the image)."""
    _check_image(img, "elastic_transform")
    if is_pil(img):
        out = elastic_transform(pil_to_tensor(img), displacement, interpolation, fill)
        return to_pil_image(out, mode=img.mode)
    mode = _grid_mode(interpolation, "elastic_transform")
    _, h, w = get_dimensions(img)
    if not isinstance(displacement, (Tensor, np.ndarray)):
        raise TypeError(f"elastic_transform: displacement should be a tensor, got "
                        f"{type(displacement).__name__}")
    if tuple(displacement.shape) != (1, h, w, 2):
        raise ValueError(f"elastic_transform: displacement should have shape {(1, h, w, 2)}, "
                         f"got {tuple(displacement.shape)}")
    x = img.array
    xp = backend.get_array_module(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    shift = displacement.array if isinstance(displacement, Tensor) else displacement
    shift = xp.asarray(shift).astype(dtype)
    gx = xp.asarray(np.linspace((1 - w) / w, (w - 1) / w, w, dtype=dtype))[None, :]
    gy = xp.asarray(np.linspace((1 - h) / h, (h - 1) / h, h, dtype=dtype))[:, None]
    return _warp_tensor(img, gx + shift[0, :, :, 0], gy + shift[0, :, :, 1], mode, fill)


def five_crop(img, size):
    """The four corner crops and the central crop of size (h, w) (an int for a square):
    (top-left, top-right, bottom-left, bottom-right, centre)."""
    th, tw = _pair(size, "five_crop")
    _, h, w = get_dimensions(img)
    if th > h or tw > w:
        raise ValueError(f"five_crop: crop size {(th, tw)} is bigger than the image "
                         f"{(h, w)}")
    return (crop(img, 0, 0, th, tw), crop(img, 0, w - tw, th, tw), crop(img, h - th, 0, th, tw),
            crop(img, h - th, w - tw, th, tw), center_crop(img, [th, tw]))


def ten_crop(img, size, vertical_flip=False):
    """five_crop of the image, then five_crop of its mirror (left-right, or top-bottom with
    vertical_flip)."""
    return five_crop(img, size) + five_crop(vflip(img) if vertical_flip else hflip(img), size)
