"""torchvision's augmentation classes: RandomAffine, RandomPerspective, ElasticTransform,
GaussianBlur, RandomErasing, the random tone operations, FiveCrop and TenCrop; parameters
drawn from tinylesion's generator."""
import math
import numbers
import warnings
from collections.abc import Sequence

import numpy as np

from ...tensor import Tensor
from . import functional as F
from .functional import InterpolationMode, interpolation_mode
from .transforms import SizedTransform, Transform, _rng


def _angle_range(value, name, sizes=(2,)):
    """(-v, v) for a number v >= 0, else the sequence (of one of `sizes` lengths) as floats."""
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"If {name} is a single number, it must be positive, got {value}")
        return [-float(value), float(value)]
    _check_sequence(value, name, sizes)
    return [float(v) for v in value]


def _check_sequence(value, name, sizes=(2,)):
    lengths = " or ".join(str(s) for s in sizes)
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(f"{name} should be a sequence of length {lengths}, got {value!r}")
    if len(value) not in sizes:
        raise ValueError(f"{name} should be a sequence of length {lengths}, got {value!r}")


def _check_fill(fill):
    if fill is None:
        return 0
    if not isinstance(fill, (Sequence, numbers.Number)) or isinstance(fill, str):
        raise TypeError(f"fill should be a number or a sequence, got {type(fill).__name__}")
    return fill


def _tensor_fill(img, fill):
    """On tensors a fill is a list of floats (one per channel), as torchvision passes it."""
    if not isinstance(img, Tensor) or fill is None:
        return fill
    if isinstance(fill, numbers.Number):
        return [float(fill)] * F.get_dimensions(img)[0]
    return [float(f) for f in fill]


def _check_probability(p, name="p"):
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} (the probability) should be between 0 and 1, got {p!r}")
    return float(p)


class RandomAffine(Transform):
    """A random rotation (degrees), translation (fractions of width and height), scale and
    shear (x range, or x and y ranges) about the centre; see functional.affine."""

    def __init__(self, degrees, translate=None, scale=None, shear=None,
                 interpolation=InterpolationMode.NEAREST, fill=0, center=None):
        self.degrees = _angle_range(degrees, "degrees")
        if translate is not None:
            _check_sequence(translate, "translate")
            if not all(0.0 <= t <= 1.0 for t in translate):
                raise ValueError(f"translate values should be between 0 and 1, got {translate}")
        if scale is not None:
            _check_sequence(scale, "scale")
            if not all(s > 0 for s in scale):
                raise ValueError(f"scale values should be positive, got {scale}")
        self.translate, self.scale = translate, scale
        self.shear = None if shear is None else _angle_range(shear, "shear", (2, 4))
        self.interpolation = interpolation_mode(interpolation)
        self.fill = _check_fill(fill)
        if center is not None:
            _check_sequence(center, "center")
        self.center = center

    @staticmethod
    def get_params(degrees, translate, scale_ranges, shears, img_size):
        """(angle, (tx, ty), scale, (shear_x, shear_y)) for an image of img_size (w, h)."""
        rng = _rng()
        angle = float(rng.uniform(degrees[0], degrees[1]))
        tx = ty = 0
        if translate is not None:
            max_dx, max_dy = translate[0] * img_size[0], translate[1] * img_size[1]
            tx = int(round(rng.uniform(-max_dx, max_dx)))
            ty = int(round(rng.uniform(-max_dy, max_dy)))
        scale = 1.0 if scale_ranges is None else float(rng.uniform(*scale_ranges))
        shear_x = shear_y = 0.0
        if shears is not None:
            shear_x = float(rng.uniform(shears[0], shears[1]))
            if len(shears) == 4:
                shear_y = float(rng.uniform(shears[2], shears[3]))
        return angle, (tx, ty), scale, (shear_x, shear_y)

    def forward(self, img):
        _, height, width = F.get_dimensions(img)
        angle, translate, scale, shear = self.get_params(self.degrees, self.translate,
                                                         self.scale, self.shear, [width, height])
        return F.affine(img, angle, list(translate), scale, list(shear), self.interpolation,
                        _tensor_fill(img, self.fill), self.center)

    def _repr_args(self):
        return {"degrees": self.degrees, "translate": self.translate, "scale": self.scale,
                "shear": self.shear}


class RandomPerspective(Transform):
    """With probability p, move each corner inwards by up to distortion_scale times half the
    image's size and warp accordingly; see functional.perspective."""

    def __init__(self, distortion_scale=0.5, p=0.5, interpolation=InterpolationMode.BILINEAR,
                 fill=0):
        if not 0.0 <= distortion_scale <= 1.0:
            raise ValueError(f"distortion_scale should be between 0 and 1, got "
                             f"{distortion_scale}")
        self.distortion_scale, self.p = float(distortion_scale), _check_probability(p)
        self.interpolation = interpolation_mode(interpolation)
        self.fill = _check_fill(fill)

    @staticmethod
    def get_params(width, height, distortion_scale):
        """(startpoints, endpoints): the image's corners and the random corners they go to,
        [top-left, top-right, bottom-right, bottom-left] as [x, y]."""
        rng = _rng()
        dx, dy = int(distortion_scale * (width // 2)), int(distortion_scale * (height // 2))

        def near_start(d):
            return int(rng.integers(0, d + 1))

        def near_end(size, d):
            return int(rng.integers(size - d - 1, size))

        # NOTE: drawn in this order (x then y, corner by corner), as torchvision draws them
        top_left = [near_start(dx), near_start(dy)]
        top_right = [near_end(width, dx), near_start(dy)]
        bottom_right = [near_end(width, dx), near_end(height, dy)]
        bottom_left = [near_start(dx), near_end(height, dy)]
        start = [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]]
        return start, [top_left, top_right, bottom_right, bottom_left]

    def forward(self, img):
        _, height, width = F.get_dimensions(img)
        if _rng().random() < self.p:
            start, end = self.get_params(width, height, self.distortion_scale)
            return F.perspective(img, start, end, self.interpolation,
                                 _tensor_fill(img, self.fill))
        return img

    def _repr_args(self):
        return {"distortion_scale": self.distortion_scale, "p": self.p}


class GaussianBlur(Transform):
    """Gaussian blur of kernel_size with sigma drawn uniformly from (min, max) (or fixed)."""

    def __init__(self, kernel_size, sigma=(0.1, 2.0)):
        sizes = [kernel_size] * 2 if isinstance(kernel_size, numbers.Number) else kernel_size
        _check_sequence(sizes, "kernel_size", (1, 2))
        sizes = [int(sizes[0])] * 2 if len(sizes) == 1 else [int(s) for s in sizes]
        if any(k <= 0 or k % 2 == 0 for k in sizes):
            raise ValueError(f"kernel_size values should be odd and positive, got {kernel_size}")
        self.kernel_size = tuple(sizes)
        if isinstance(sigma, numbers.Number):
            if sigma <= 0:
                raise ValueError(f"If sigma is a single number, it must be positive, got {sigma}")
            sigma = (float(sigma), float(sigma))
        elif isinstance(sigma, Sequence) and len(sigma) == 2:
            if not 0.0 < sigma[0] <= sigma[1]:
                raise ValueError(f"sigma should be positive and (min, max), got {sigma}")
        else:
            raise ValueError(f"sigma should be a number or a sequence of length 2, got {sigma!r}")
        self.sigma = tuple(float(s) for s in sigma)

    @staticmethod
    def get_params(sigma_min, sigma_max):
        """A sigma drawn uniformly from [sigma_min, sigma_max]."""
        return float(_rng().uniform(sigma_min, sigma_max))

    def forward(self, img):
        sigma = self.get_params(*self.sigma)
        return F.gaussian_blur(img, list(self.kernel_size), [sigma, sigma])

    def _repr_args(self):
        return {"kernel_size": self.kernel_size, "sigma": self.sigma}


def _pair_of_floats(value, name):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return [float(value)] * 2
    if isinstance(value, Sequence) and len(value) in (1, 2) and \
            all(isinstance(v, numbers.Real) for v in value):
        return [float(value[0])] * 2 if len(value) == 1 else [float(v) for v in value]
    raise TypeError(f"{name} should be a number or a sequence of 1 or 2 numbers, got {value!r}")


class ElasticTransform(Transform):
    """Displace every pixel by smooth random offsets: uniform noise in [-1, 1] blurred with
    sigma (kernel 8 sigma + 1, odd), scaled by alpha / size; see functional.elastic_transform."""

    def __init__(self, alpha=50.0, sigma=5.0, interpolation=InterpolationMode.BILINEAR,
                 fill=0):
        self.alpha = _pair_of_floats(alpha, "alpha")
        self.sigma = _pair_of_floats(sigma, "sigma")
        self.interpolation = interpolation_mode(interpolation)
        if isinstance(fill, bool) or not isinstance(fill, (numbers.Real, list, tuple)):
            raise TypeError(f"fill should be a number or a sequence of numbers, got {fill!r}")
        self.fill = [float(fill)] if isinstance(fill, numbers.Real) else [float(f) for f in fill]

    @staticmethod
    def get_params(alpha, sigma, size):
        """A (1, H, W, 2) float32 tensor of (dx, dy) displacements for size (H, W)."""
        rng = _rng()
        planes = []
        for axis in (0, 1):
            noise = rng.random((1, 1) + tuple(size), dtype=np.float32) * 2 - 1
            if sigma[axis] > 0.0:
                k = int(8 * sigma[axis] + 1)
                k += 1 - k % 2
                noise = F.gaussian_blur(Tensor._wrap(noise), [k, k], sigma).array
            # NOTE: dx is normalised by the width, dy by the height
            planes.append(noise * np.float32(alpha[axis] / size[1 - axis]))
        return Tensor._wrap(np.ascontiguousarray(
            np.concatenate(planes, axis=1).transpose(0, 2, 3, 1)))

    def forward(self, img):
        _, height, width = F.get_dimensions(img)
        displacement = self.get_params(self.alpha, self.sigma, [height, width])
        return F.elastic_transform(img, displacement, self.interpolation, self.fill)

    def _repr_args(self):
        return {"alpha": self.alpha, "sigma": self.sigma}


class RandomErasing(Transform):
    """With probability p, set a random rectangle of a tensor image (area fraction in scale,
    aspect ratio in ratio) to value: a number, one per channel, or 'random' (normal noise)."""

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False):
        if isinstance(value, bool) or not isinstance(value, (numbers.Number, str, tuple, list)):
            raise TypeError(f"value should be a number, 'random' or a sequence, got {value!r}")
        if isinstance(value, str) and value != "random":
            raise ValueError(f"value as a str should be 'random', got {value!r}")
        if not isinstance(scale, Sequence):
            raise TypeError(f"scale should be a sequence, got {type(scale).__name__}")
        if not isinstance(ratio, Sequence):
            raise TypeError(f"ratio should be a sequence, got {type(ratio).__name__}")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            warnings.warn("RandomErasing: scale and ratio should be (min, max)")
        if scale[0] < 0 or scale[1] > 1:
            raise ValueError(f"scale should be between 0 and 1, got {scale}")
        self.p = _check_probability(p)
        self.scale, self.ratio, self.value, self.inplace = scale, ratio, value, inplace

    @staticmethod
    def get_params(img, scale, ratio, value=None):
        """(i, j, h, w, v): ten tries at a rectangle smaller than the image; v is `value`
        as (C, 1, 1) or, for None, normal noise (C, h, w). No fit: the whole image, v=img."""
        channels, img_h, img_w = img.shape[-3], img.shape[-2], img.shape[-1]
        rng = _rng()
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            area = img_h * img_w * rng.uniform(scale[0], scale[1])
            aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
            h = int(round(math.sqrt(area * aspect)))
            w = int(round(math.sqrt(area / aspect)))
            if not (h < img_h and w < img_w):
                continue
            if value is None:
                v = rng.standard_normal((channels, h, w)).astype(np.float32)
            else:
                v = np.asarray(value, np.float32)[:, None, None]
            v = Tensor._wrap(v)
            i = int(rng.integers(0, img_h - h + 1))
            j = int(rng.integers(0, img_w - w + 1))
            return i, j, h, w, v
        return 0, 0, img_h, img_w, img

    def forward(self, img):
        if not isinstance(img, Tensor):
            raise TypeError(f"RandomErasing works on tensor images, got {type(img).__name__}; "
                            "put ToTensor() before it")
        if _rng().random() >= self.p:
            return img
        if isinstance(self.value, str):
            value = None
        elif isinstance(self.value, numbers.Number):
            value = [float(self.value)]
        else:
            value = [float(v) for v in self.value]
        channels = img.shape[-3]
        if value is not None and len(value) not in (1, channels):
            raise ValueError(f"value should have 1 or {channels} (the channels) entries, got "
                             f"{len(value)}")
        i, j, h, w, v = self.get_params(img, self.scale, self.ratio, value)
        if v is img:
            return img
        return F.erase(img, i, j, h, w, v, self.inplace)

    def _repr_args(self):
        return {"p": self.p, "scale": self.scale, "ratio": self.ratio, "value": self.value,
                "inplace": self.inplace}


class _RandomTone(Transform):
    """Apply self._apply(img) with probability p."""

    def __init__(self, p=0.5):
        self.p = _check_probability(p)

    def forward(self, img):
        return self._apply(img) if _rng().random() < self.p else img

    def _repr_args(self):
        return {"p": self.p}


class RandomInvert(_RandomTone):
    """functional.invert with probability p."""

    def _apply(self, img):
        return F.invert(img)


class RandomAutocontrast(_RandomTone):
    """functional.autocontrast with probability p."""

    def _apply(self, img):
        return F.autocontrast(img)


class RandomEqualize(_RandomTone):
    """functional.equalize with probability p."""

    def _apply(self, img):
        return F.equalize(img)


class RandomPosterize(_RandomTone):
    """functional.posterize(img, bits) with probability p."""

    def __init__(self, bits, p=0.5):
        super().__init__(p)
        if isinstance(bits, bool) or not isinstance(bits, numbers.Integral) or \
                not 0 <= bits <= 8:
            raise ValueError(f"bits should be an int between 0 and 8, got {bits!r}")
        self.bits = int(bits)

    def _apply(self, img):
        return F.posterize(img, self.bits)


class RandomSolarize(_RandomTone):
    """functional.solarize(img, threshold) with probability p."""

    def __init__(self, threshold, p=0.5):
        super().__init__(p)
        self.threshold = threshold

    def _apply(self, img):
        return F.solarize(img, self.threshold)


class RandomAdjustSharpness(_RandomTone):
    """functional.adjust_sharpness(img, sharpness_factor) with probability p."""

    def __init__(self, sharpness_factor, p=0.5):
        super().__init__(p)
        if sharpness_factor < 0:
            raise ValueError(f"sharpness_factor should be non-negative, got {sharpness_factor}")
        self.sharpness_factor = float(sharpness_factor)

    def _apply(self, img):
        return F.adjust_sharpness(img, self.sharpness_factor)


class FiveCrop(SizedTransform):
    """The four corner crops and the central crop of size: a tuple of five images."""

    def forward(self, img):
        return F.five_crop(img, self.size)


class TenCrop(FiveCrop):
    """FiveCrop of the image and of its mirror image: a tuple of ten images."""

    def __init__(self, size, vertical_flip=False):
        super().__init__(size)
        self.vertical_flip = bool(vertical_flip)

    def forward(self, img):
        return F.ten_crop(img, self.size, self.vertical_flip)

    def _repr_args(self):
        return {"size": self.size, "vertical_flip": self.vertical_flip}
