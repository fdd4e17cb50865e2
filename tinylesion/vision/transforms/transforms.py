"""torchvision.transforms' classes on PIL images and Tensors; random ones draw from
tinylesion's generator (tl.manual_seed; per sample inside a DataLoader's threads)."""
import math
import numbers

import numpy as np

from ... import backend
from . import functional as F
from .functional import InterpolationMode, interpolation_mode


def _rng():
    return backend.generator()


class Transform:
    """Base class: transform(img) calls forward(img)."""

    def __call__(self, img):
        return self.forward(img)

    def forward(self, img):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args().items())
        return f"{type(self).__name__}({args})"

    def _repr_args(self):
        return {}


class Compose(Transform):
    """Apply transforms one after the other."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable")

    def forward(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        inner = "".join(f"\n    {t}" for t in self.transforms)
        return f"Compose({inner}\n)"


class Lambda(Transform):
    """Apply a user function."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def forward(self, img):
        return self.lambd(img)


class ToTensor(Transform):
    """PIL image or (H, W, C) uint8 array -> float32 (C, H, W) Tensor in [0, 1]."""

    def forward(self, pic):
        return F.to_tensor(pic)


class PILToTensor(Transform):
    """PIL image -> (C, H, W) Tensor of its dtype (uint8), values unchanged."""

    def forward(self, pic):
        return F.pil_to_tensor(pic)


class ToPILImage(Transform):
    """(C, H, W) Tensor or (H, W, C) array -> PIL image."""

    def __init__(self, mode=None):
        self.mode = mode

    def forward(self, pic):
        return F.to_pil_image(pic, self.mode)


class ConvertImageDtype(Transform):
    """Tensor image -> another dtype, values rescaled (uint8 0..255 <-> float 0..1)."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, image):
        return F.convert_image_dtype(image, self.dtype)


class Normalize(Transform):
    """(x - mean) / std per channel of a float tensor image."""

    def __init__(self, mean, std, inplace=False):
        self.mean, self.std, self.inplace = mean, std, inplace

    def forward(self, tensor):
        return F.normalize(tensor, self.mean, self.std, self.inplace)

    def _repr_args(self):
        return {"mean": self.mean, "std": self.std}


class Resize(Transform):
    """Resize to size (h, w), or the shorter side to an int size keeping the aspect ratio."""

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None,
                 antialias=True):
        F.resize_output_size(100, 100, size, None if max_size is None else max_size)
        self.size, self.max_size, self.antialias = size, max_size, antialias
        self.interpolation = interpolation_mode(interpolation)

    def forward(self, img):
        return F.resize(img, self.size, self.interpolation, self.max_size, self.antialias)

    def _repr_args(self):
        return {"size": self.size, "interpolation": self.interpolation.value}


class SizedTransform(Transform):
    """Base of the transforms taking a size: an int for a square, or (h, w)."""

    def __init__(self, size):
        self.size = F._pair(size, type(self).__name__)

    def _repr_args(self):
        return {"size": self.size}


class CenterCrop(SizedTransform):
    """The central size x size (or (h, w)) region."""

    def forward(self, img):
        return F.center_crop(img, self.size)


class Pad(Transform):
    """Pad the borders (see functional.pad)."""

    def __init__(self, padding, fill=0, padding_mode="constant"):
        F._padding_ltrb(padding)
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def forward(self, img):
        return F.pad(img, self.padding, self.fill, self.padding_mode)


class RandomCrop(Transform):
    """A size region at a uniformly drawn position (after optional padding)."""

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = F._pair(size, "RandomCrop")
        self.padding, self.pad_if_needed = padding, pad_if_needed
        self.fill, self.padding_mode = fill, padding_mode

    @staticmethod
    def get_params(img, output_size):
        """(top, left, height, width) of a random crop of output_size."""
        _, h, w = F.get_dimensions(img)
        th, tw = output_size
        if h < th or w < tw:
            raise ValueError(f"Required crop size {(th, tw)} is larger than input image size "
                             f"{(h, w)}")
        if (h, w) == (th, tw):
            return 0, 0, h, w
        rng = _rng()
        return int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1)), th, tw

    def forward(self, img):
        if self.padding is not None:
            img = F.pad(img, self.padding, self.fill, self.padding_mode)
        _, h, w = F.get_dimensions(img)
        th, tw = self.size
        if self.pad_if_needed and w < tw:
            img = F.pad(img, [tw - w, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and h < th:
            img = F.pad(img, [0, th - h], self.fill, self.padding_mode)
        return F.crop(img, *self.get_params(img, self.size))

    def _repr_args(self):
        return {"size": self.size, "padding": self.padding}


def _range(value, name):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{name} should be a sequence of length 2, got {value!r}")
    return float(value[0]), float(value[1])


class RandomResizedCrop(Transform):
    """A random region (area fraction in `scale`, aspect ratio in `ratio`) resized to size."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation=InterpolationMode.BILINEAR, antialias=True):
        self.size = F._pair(size, "RandomResizedCrop")
        self.scale, self.ratio = _range(scale, "scale"), _range(ratio, "ratio")
        self.interpolation = interpolation_mode(interpolation)
        self.antialias = antialias

    @staticmethod
    def get_params(img, scale, ratio):
        """(top, left, height, width): ten tries at a random area and log-uniform aspect
        ratio that fit; else the largest central crop with the ratio clamped to `ratio`."""
        _, height, width = F.get_dimensions(img)
        area = height * width
        rng = _rng()
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = area * rng.uniform(scale[0], scale[1])
            aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def forward(self, img):
        top, left, h, w = self.get_params(img, self.scale, self.ratio)
        return F.resized_crop(img, top, left, h, w, self.size, self.interpolation)

    def _repr_args(self):
        return {"size": self.size, "scale": self.scale, "ratio": self.ratio}


class _RandomFlip(Transform):
    def __init__(self, p=0.5):
        self.p = p

    def forward(self, img):
        return self._flip(img) if _rng().random() < self.p else img

    def _repr_args(self):
        return {"p": self.p}


class RandomHorizontalFlip(_RandomFlip):
    """Mirror left to right with probability p."""
    _flip = staticmethod(F.hflip)


class RandomVerticalFlip(_RandomFlip):
    """Mirror top to bottom with probability p."""
    _flip = staticmethod(F.vflip)


class RandomRotation(Transform):
    """Rotate by an angle drawn uniformly from degrees ((-d, d) for a number d)."""

    def __init__(self, degrees, interpolation=InterpolationMode.NEAREST, expand=False,
                 center=None, fill=0):
        if isinstance(degrees, numbers.Number):
            if degrees < 0:
                raise ValueError("If degrees is a single number, it must be positive.")
            degrees = (-float(degrees), float(degrees))
        self.degrees = _range(degrees, "degrees")
        self.interpolation = interpolation_mode(interpolation)
        self.expand, self.center, self.fill = expand, center, fill

    @staticmethod
    def get_params(degrees):
        """An angle drawn uniformly from [degrees[0], degrees[1]]."""
        return float(_rng().uniform(degrees[0], degrees[1]))

    def forward(self, img):
        angle = self.get_params(self.degrees)
        fill = self.fill
        if F.is_pil(img) and isinstance(fill, numbers.Number):
            fill = tuple([fill] * len(img.getbands())) if len(img.getbands()) > 1 else fill
        return F.rotate(img, angle, self.interpolation, self.expand, self.center, fill)

    def _repr_args(self):
        return {"degrees": self.degrees}


def _jitter_range(value, name, center=1.0, bound=(0, float("inf")), clip_first=True):
    if value is None:
        return None
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"If {name} is a single number, it must be non negative.")
        value = [center - float(value), center + float(value)]
        if clip_first:
            value[0] = max(value[0], 0.0)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        value = [float(value[0]), float(value[1])]
    else:
        raise TypeError(f"{name} should be a single number or a list/tuple with length 2.")
    if not bound[0] <= value[0] <= value[1] <= bound[1]:
        raise ValueError(f"{name} values should be between {bound}, but got {value}.")
    return None if value[0] == value[1] == center else tuple(value)


class ColorJitter(Transform):
    """Random brightness, contrast, saturation and hue changes, applied in a random order."""

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = _jitter_range(brightness, "brightness")
        self.contrast = _jitter_range(contrast, "contrast")
        self.saturation = _jitter_range(saturation, "saturation")
        self.hue = _jitter_range(hue, "hue", center=0.0, bound=(-0.5, 0.5), clip_first=False)

    @staticmethod
    def get_params(brightness, contrast, saturation, hue):
        """(order of the four adjustments, then each factor or None)."""
        rng = _rng()
        order = rng.permutation(4).tolist()
        factors = [None if r is None else float(rng.uniform(r[0], r[1]))
                   for r in (brightness, contrast, saturation, hue)]
        return (order, *factors)

    def forward(self, img):
        order, *factors = self.get_params(self.brightness, self.contrast, self.saturation,
                                          self.hue)
        adjust = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)
        for k in order:
            if factors[k] is not None:
                img = adjust[k](img, factors[k])
        return img

    def _repr_args(self):
        return {"brightness": self.brightness, "contrast": self.contrast,
                "saturation": self.saturation, "hue": self.hue}


class Grayscale(Transform):
    """Grey levels, as 1 or 3 channels."""

    def __init__(self, num_output_channels=1):
        if num_output_channels not in (1, 3):
            raise ValueError("num_output_channels should be either 1 or 3")
        self.num_output_channels = num_output_channels

    def forward(self, img):
        return F.rgb_to_grayscale(img, self.num_output_channels)


class RandomGrayscale(Transform):
    """Grey levels (as many channels as the input) with probability p."""

    def __init__(self, p=0.1):
        self.p = p

    def forward(self, img):
        channels = F.get_dimensions(img)[0]
        return F.rgb_to_grayscale(img, channels) if _rng().random() < self.p else img


class RandomApply(Transform):
    """Apply a list of transforms with probability p."""

    def __init__(self, transforms, p=0.5):
        self.transforms, self.p = list(transforms), p

    def forward(self, img):
        if _rng().random() >= self.p:
            return img
        for t in self.transforms:
            img = t(img)
        return img


class RandomChoice(Transform):
    """Apply one transform picked at random (weights p)."""

    def __init__(self, transforms, p=None):
        self.transforms = list(transforms)
        if p is not None and len(p) != len(self.transforms):
            raise ValueError("RandomChoice: p must have one weight per transform")
        self.p = p

    def forward(self, img):
        p = None if self.p is None else np.asarray(self.p, float) / np.sum(self.p)
        return self.transforms[int(_rng().choice(len(self.transforms), p=p))](img)
