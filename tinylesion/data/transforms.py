"""Augmentation (Keras ImageDataGenerator semantics), normalisation and channel statistics."""
import math
import numbers

import numpy as np
from numba import njit

_FILL_MODES = {"nearest": 0, "constant": 1}


# ---------------------------------------------------------------------------------------------
# The warp: one affine map, bilinear, written straight into a (3, H, W) slot of a batch.

@njit(nogil=True, cache=True)
def _warp_affine_chw(src, A, mode, cval, out):
    """out[k, r, c] = bilinear src at A @ (r, c, 1); src (H, W, C) uint8, out (C, OH, OW) uint8."""
    H, W, C = src.shape
    OH, OW = out.shape[1], out.shape[2]
    hmax, wmax = H - 1.0, W - 1.0
    for r in range(OH):
        for c in range(OW):
            y = A[0, 0] * r + A[0, 1] * c + A[0, 2]
            x = A[1, 0] * r + A[1, 1] * c + A[1, 2]
            if mode == 1:
                # NOTE: scipy.ndimage's "constant": a sample outside [0, n-1] is cval, no
                # blending with the edge (Keras' fill_mode="constant" uses exactly that).
                if y < 0.0 or y > hmax or x < 0.0 or x > wmax:
                    for k in range(C):
                        out[k, r, c] = cval
                    continue
            else:
                # NOTE: "nearest" replicates the edge pixel; clamping the coordinate into
                # [0, n-1] before interpolating gives exactly that.
                y = min(max(y, 0.0), hmax)
                x = min(max(x, 0.0), wmax)
            y0 = int(y)          # y, x >= 0 here, so truncation is the floor
            x0 = int(x)
            wy = y - y0
            wx = x - x0
            y1 = min(y0 + 1, H - 1)
            x1 = min(x0 + 1, W - 1)
            for k in range(C):
                top = (1.0 - wx) * src[y0, x0, k] + wx * src[y0, x1, k]
                bottom = (1.0 - wx) * src[y1, x0, k] + wx * src[y1, x1, k]
                # a blend of values in [0, 255], plus 0.5, truncated: rounded, within uint8
                out[k, r, c] = np.uint8(int((1.0 - wy) * top + wy * bottom + 0.5))


def warp_affine_reference(image, A, fill_mode="nearest", cval=0):
    """The same warp with scipy.ndimage (order 1), channel by channel: the tests' reference."""
    from scipy import ndimage
    out = np.empty_like(image)
    for k in range(image.shape[2]):
        ndimage.affine_transform(image[:, :, k], A[:, :2], offset=A[:, 2], output=out[:, :, k],
                                 order=1, mode=fill_mode, cval=cval)
    return out


def _check_range(name, value):
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0
            or not math.isfinite(value)):
        raise ValueError(f"Augment: {name} must be a finite number >= 0, got {value!r}")


class Augment:
    """Random geometric augmentation with Keras ImageDataGenerator's meaning of each parameter.

    rotation_range: degrees, angle uniform in [-r, r]. zoom_range: float z gives scales uniform in
    [1-z, 1+z], or a pair (lo, hi); as in Keras the scale multiplies the *input* coordinates, so
    a scale below 1 zooms in, and rows and columns get independent scales.
    width_shift_range / height_shift_range: a float < 1 is a fraction of the width / height, a
    float >= 1 is pixels, an int n gives whole pixels in (-n, n). Flips each with probability 1/2.
    fill_mode "nearest" replicates the edge pixel, "constant" fills with cval.
    All of it is one affine warp (bilinear), applied with a Numba kernel that releases the GIL.
    """

    def __init__(self, rotation_range=0, zoom_range=0.0, width_shift_range=0.0,
                 height_shift_range=0.0, horizontal_flip=False, vertical_flip=False,
                 fill_mode="nearest", cval=0):
        _check_range("rotation_range", rotation_range)
        _check_range("width_shift_range", width_shift_range)
        _check_range("height_shift_range", height_shift_range)
        if isinstance(zoom_range, numbers.Real) and not isinstance(zoom_range, bool):
            _check_range("zoom_range", zoom_range)
            zoom = (1.0 - zoom_range, 1.0 + zoom_range)
        else:
            try:
                zoom = () if isinstance(zoom_range, str) else tuple(float(z) for z in zoom_range)
            except (TypeError, ValueError):
                zoom = ()
            if len(zoom) != 2:
                raise ValueError(f"Augment: zoom_range must be a float or a pair (lo, hi), "
                                 f"got {zoom_range!r}")
        if not 0 < zoom[0] <= zoom[1] < math.inf:
            raise ValueError(f"Augment: zoom_range gives scales {zoom}; they must satisfy "
                             "0 < lo <= hi")
        if fill_mode not in _FILL_MODES:
            raise ValueError(f"Augment: fill_mode {fill_mode!r} is not supported; use one of "
                             f"{sorted(_FILL_MODES)}")
        if isinstance(cval, bool) or not isinstance(cval, numbers.Real) or not 0 <= cval <= 255:
            raise ValueError(f"Augment: cval must be in [0, 255], got {cval!r}")
        self.rotation_range = rotation_range
        self.zoom_range = zoom
        self.width_shift_range = width_shift_range
        self.height_shift_range = height_shift_range
        for name, flag in (("horizontal_flip", horizontal_flip), ("vertical_flip", vertical_flip)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"Augment: {name} must be True or False, got {flag!r}")
        self.horizontal_flip = bool(horizontal_flip)
        self.vertical_flip = bool(vertical_flip)
        self.fill_mode = fill_mode
        self.cval = int(cval)

    def __repr__(self):
        return (f"Augment(rotation_range={self.rotation_range}, zoom_range={self.zoom_range}, "
                f"width_shift_range={self.width_shift_range}, "
                f"height_shift_range={self.height_shift_range}, "
                f"horizontal_flip={self.horizontal_flip}, vertical_flip={self.vertical_flip}, "
                f"fill_mode={self.fill_mode!r})")

    @staticmethod
    def _shift(rng, r, size):
        if isinstance(r, numbers.Integral) and r >= 1:
            return float(rng.integers(-r + 1, r))          # whole pixels in (-r, r), as Keras
        t = rng.uniform(-r, r)
        return t * size if r < 1 else t

    def draw(self, rng, height, width):
        """Draw one transform's parameters from `rng` (a numpy Generator), in Keras' order."""
        theta = rng.uniform(-self.rotation_range, self.rotation_range) \
            if self.rotation_range else 0.0
        tx = self._shift(rng, self.height_shift_range, height) if self.height_shift_range else 0.0
        ty = self._shift(rng, self.width_shift_range, width) if self.width_shift_range else 0.0
        if self.zoom_range == (1.0, 1.0):
            zx = zy = 1.0
        else:
            zx, zy = rng.uniform(self.zoom_range[0], self.zoom_range[1], 2)
        flip_h = bool(rng.random() < 0.5) if self.horizontal_flip else False
        flip_v = bool(rng.random() < 0.5) if self.vertical_flip else False
        return dict(theta=float(theta), tx=float(tx), ty=float(ty), zx=float(zx), zy=float(zy),
                    flip_h=flip_h, flip_v=flip_v)

    @staticmethod
    def matrix(params, height, width):
        """The 2x3 map from output (row, col) to input (row, col) for drawn `params`."""
        # NOTE: Keras composes rotation @ shift @ zoom about the image centre; it takes the
        # centre at (h/2 + 0.5, w/2 + 0.5), half a pixel past the true centre ((h-1)/2, (w-1)/2)
        # that is used here, so that a zero transform is the identity and flips are exact.
        # In closed form (plain floats: a few µs instead of NumPy's ~12 µs of small products,
        # all of it holding the GIL): with R the rotation and Z = diag(zx, zy),
        # A = [R Z | R (t - Z c) + c] for the centre c and the shift t.
        t = math.radians(params["theta"])
        cos, sin = math.cos(t), math.sin(t)
        zx, zy, tx, ty = params["zx"], params["zy"], params["tx"], params["ty"]
        cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
        a00, a01 = cos * zx, -sin * zy
        a10, a11 = sin * zx, cos * zy
        u, v = tx - zx * cy, ty - zy * cx
        a02 = cos * u - sin * v + cy
        a12 = sin * u + cos * v + cx
        # Keras flips after the warp: out'(r, c) = out(r, W-1-c) composes as A @ flip.
        if params["flip_h"]:
            a02, a12 = a02 + a01 * (width - 1.0), a12 + a11 * (width - 1.0)
            a01, a11 = -a01, -a11
        if params["flip_v"]:
            a02, a12 = a02 + a00 * (height - 1.0), a12 + a10 * (height - 1.0)
            a00, a10 = -a00, -a10
        return np.array([[a00, a01, a02], [a10, a11, a12]])

    def apply_into(self, image, params, out):
        """Warp HWC uint8 `image` with `params` into the CHW uint8 array `out` (a batch slot)."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3:
            raise ValueError(f"Augment: expected a uint8 (H, W, C) image, got "
                             f"{image.dtype} {image.shape}")
        H, W = image.shape[:2]
        A = self.matrix(params, H, W)
        _warp_affine_chw(image, A, _FILL_MODES[self.fill_mode], self.cval, out)
        return out

    def warp_into(self, image, rng, out):
        """Draw a transform from `rng` and warp HWC `image` into CHW `out` (used by Loader)."""
        params = self.draw(rng, image.shape[0], image.shape[1])
        return self.apply_into(image, params, out)

    def apply(self, image, params):
        """Warp HWC uint8 `image` with explicit `params` (from draw); returns HWC uint8."""
        out = np.empty((image.shape[2], image.shape[0], image.shape[1]), np.uint8)
        return np.ascontiguousarray(self.apply_into(image, params, out).transpose(1, 2, 0))

    def __call__(self, image, rng):
        """augment(image_uint8_HWC, rng) -> image_uint8_HWC, drawing from numpy Generator rng."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or 0 in image.shape:
            raise ValueError(f"Augment: expected a uint8 (H, W, C) image, got "
                             f"{image.dtype} {image.shape}")
        return self.apply(image, self.draw(rng, image.shape[0], image.shape[1]))


# ---------------------------------------------------------------------------------------------
# Normalisation and statistics.

# the per-channel mean and std, in [0, 1] scale, that ImageNet-pretrained weights (torchvision's,
# timm's *.tv_in1k) expect their input normalised with: normalize(batch, IMAGENET_MEAN,
# IMAGENET_STD) after reading the images with preprocess="imagenet_crop"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_mean_std(mean, std, where):
    """Raise a ValueError naming them unless mean is finite and std finite and > 0."""
    if not np.all(np.isfinite(mean)):
        raise ValueError(f"{where}: mean must be finite, got {np.asarray(mean).tolist()}")
    if not np.all(np.isfinite(std)) or np.any(np.asarray(std) <= 0):
        raise ValueError(f"{where}: std must be finite and > 0, got {np.asarray(std).tolist()}")


def normalize(batch, mean, std, xp=np, dtype=np.float32):
    """((batch / 255) - mean) / std per channel, for a uint8 (B, 3, H, W) batch on any xp."""
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    C = batch.shape[1]
    if mean.shape != (C,) or std.shape != (C,):
        raise ValueError(f"normalize: mean and std need {C} values (one per channel), got "
                         f"{mean.shape[0]} and {std.shape[0]}")
    check_mean_std(mean, std, "normalize")
    # NOTE: ((x/255) - m)/s = x * (1/(255 s)) + (-m/s): one multiply-add per element.
    scale = xp.asarray((1.0 / (255.0 * std)).reshape(1, C, 1, 1), dtype=dtype)
    shift = xp.asarray((-mean / std).reshape(1, C, 1, 1), dtype=dtype)
    return (batch * scale + shift).astype(dtype, copy=False)


def channel_stats(data, num_workers=2, batch_size=64):
    """Per-channel (mean, std) in [0, 1] scale of a dataset or Loader, streamed in float64.

    Returns two float64 arrays of shape (3,). The std is the population one (ddof=0).
    """
    from .loader import Loader
    loader = data if isinstance(data, Loader) else \
        Loader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    s1 = s2 = None
    n = 0
    for images, _ in loader:
        x = images.astype(np.float64)
        # NOTE: x holds integers 0..255, so these float64 sums are exact up to 2^53 / 255^2
        # (~1.4e11 pixels per channel), and the variance E[x^2] - E[x]^2 loses nothing.
        part1 = x.sum(axis=(0, 2, 3))
        part2 = np.einsum("bchw,bchw->c", x, x)
        s1 = part1 if s1 is None else s1 + part1
        s2 = part2 if s2 is None else s2 + part2
        n += x.shape[0] * x.shape[2] * x.shape[3]
    if n == 0:
        raise ValueError("channel_stats: the dataset is empty")
    mean = s1 / n
    var = np.maximum(s2 / n - mean * mean, 0.0)
    return mean / 255.0, np.sqrt(var) / 255.0
