"""torchvision.transforms.v2's photometric extras: GaussianNoise, RandomChannelPermutation and
RandomPhotometricDistort, with functional.gaussian_noise and permute_channels."""
import numpy as np
from PIL import Image

from .... import backend
from ....tensor import Tensor
from .. import functional as F
from .. import transforms as _v1
from ..functional import _wrap


def permute_channels(inpt, permutation):
    """The image with its channels reordered: output channel k is input channel
    permutation[k] (PIL images through their uint8 tensor)."""
    if isinstance(inpt, Image.Image):
        out = permute_channels(F.pil_to_tensor(inpt), permutation)
        return F.to_pil_image(out, mode=inpt.mode)
    F._check_image(inpt, "permute_channels")
    x = inpt.array
    order = [int(k) for k in (backend.to_numpy(permutation.array)
                              if isinstance(permutation, Tensor) else permutation)]
    if x.ndim < 3 or sorted(order) != list(range(x.shape[-3])):
        raise ValueError(f"permute_channels: permutation should reorder the image's "
                         f"{x.shape[-3] if x.ndim > 2 else 1} channels, got {order}")
    xp = backend.get_array_module(x)
    return _wrap(xp.ascontiguousarray(x[..., order, :, :]))


def gaussian_noise(inpt, mean=0.0, sigma=0.1, clip=True):
    """Add normal noise (mean, sigma; for uint8 in units of 1/255, truncated to integers),
    clipped to the image range with clip; draws from tinylesion's generator."""
    if not isinstance(inpt, Tensor):
        raise TypeError(f"gaussian_noise works on tensor images, got {type(inpt).__name__}")
    if sigma < 0:
        raise ValueError(f"gaussian_noise: sigma should be non-negative, got {sigma}")
    x = inpt.array
    xp = backend.get_array_module(x)
    noise = _v1._rng().standard_normal(x.shape, dtype=np.float32)
    if x.dtype.kind == "f":
        out = x + xp.asarray((mean + noise * sigma).astype(x.dtype))
        return _wrap(xp.clip(out, 0, 1) if clip else out)
    if x.dtype != np.uint8:
        raise TypeError(f"gaussian_noise: images should be float or uint8, got {x.dtype}")
    # NOTE: the noise goes to int16 by truncation toward zero, as torchvision's .to(int16)
    shift = xp.asarray((mean * 255 + noise * (sigma * 255)).astype(np.int16))
    out = x.astype(np.int16) + shift
    return _wrap((xp.clip(out, 0, 255) if clip else out).astype(np.uint8))


class GaussianNoise(_v1.Transform):
    """Add normal noise to a tensor image (see gaussian_noise)."""

    def __init__(self, mean=0.0, sigma=0.1, clip=True):
        if sigma < 0:
            raise ValueError(f"sigma should be non-negative, got {sigma}")
        self.mean, self.sigma, self.clip = float(mean), float(sigma), bool(clip)

    def forward(self, img):
        return gaussian_noise(img, self.mean, self.sigma, self.clip)

    def _repr_args(self):
        return {"mean": self.mean, "sigma": self.sigma, "clip": self.clip}


class RandomChannelPermutation(_v1.Transform):
    """Reorder the channels at random."""

    def forward(self, img):
        channels = F.get_dimensions(img)[0]
        return permute_channels(img, _v1._rng().permutation(channels).tolist())


class RandomPhotometricDistort(_v1.Transform):
    """Each with probability p: brightness, contrast (before or after the rest, at random),
    saturation and hue factors drawn from their ranges, and a channel permutation."""

    def __init__(self, brightness=(0.875, 1.125), contrast=(0.5, 1.5),
                 saturation=(0.5, 1.5), hue=(-0.05, 0.05), p=0.5):
        jitter = _v1.ColorJitter(brightness, contrast, saturation, hue)   # checks the ranges
        self.brightness, self.contrast = jitter.brightness, jitter.contrast
        self.saturation, self.hue = jitter.saturation, jitter.hue
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p (the probability) should be between 0 and 1, got {p!r}")
        self.p = p

    def make_params(self, channels):
        """{factor name: value or None, 'contrast_before', 'channel_permutation'}."""
        rng = _v1._rng()
        params = {}
        for name, bounds in (("brightness", self.brightness), ("contrast", self.contrast),
                             ("saturation", self.saturation), ("hue", self.hue)):
            drawn = rng.random() < self.p
            params[name] = float(rng.uniform(*bounds)) if drawn and bounds else None
        params["contrast_before"] = bool(rng.random() < 0.5)
        params["channel_permutation"] = \
            rng.permutation(channels).tolist() if rng.random() < self.p else None
        return params

    def forward(self, img):
        params = self.make_params(F.get_dimensions(img)[0])
        contrast = params["contrast"]
        if params["brightness"] is not None:
            img = F.adjust_brightness(img, params["brightness"])
        if contrast is not None and params["contrast_before"]:
            img = F.adjust_contrast(img, contrast)
        if params["saturation"] is not None:
            img = F.adjust_saturation(img, params["saturation"])
        if params["hue"] is not None:
            img = F.adjust_hue(img, params["hue"])
        if contrast is not None and not params["contrast_before"]:
            img = F.adjust_contrast(img, contrast)
        if params["channel_permutation"] is not None:
            img = permute_channels(img, params["channel_permutation"])
        return img
