"""torchvision.transforms.v2 as tinylesion.vision.transforms.v2: the v1 transforms under the
same names, called on one image or on a sample ((image, label), a dict, ...) in which the
image is transformed and everything else passed through; plus ToImage, ToDtype,
ToPureTensor, Identity, RandomOrder, GaussianNoise, RandomChannelPermutation,
RandomPhotometricDistort, and the batch transforms MixUp and CutMix.

The image of a sample is its first PIL image, else its first tensor (as v2 treats the first
plain tensor); NumPy arrays are images for ToImage only. A sample holding several images
(segmentation masks, boxes) is not supported: only the first would be transformed.
"""
import numpy as np
from PIL import Image

from ....tensor import Tensor
from .. import augment as _augment
from .. import autoaugment as _autoaugment
from .. import transforms as _v1
from ..autoaugment import AutoAugmentPolicy
from . import functional
from .functional import InterpolationMode
from . import photometric as _photometric
from .mixing import CutMix, MixUp


def _leaves(sample, path=()):
    if isinstance(sample, (tuple, list)):
        for k, item in enumerate(sample):
            yield from _leaves(item, path + (k,))
    elif isinstance(sample, dict):
        for k, item in sample.items():
            yield from _leaves(item, path + (k,))
    else:
        yield path, sample


def _replaced(sample, path, value):
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(sample, dict):
        out = dict(sample)
        out[head] = _replaced(sample[head], rest, value)
        return out
    items = list(sample)
    items[head] = _replaced(sample[head], rest, value)
    return tuple(items) if isinstance(sample, tuple) else items


def image_path(sample, takes_arrays=False):
    """Where the image sits in a sample (a tuple of keys), or None."""
    leaves = list(_leaves(sample))
    kinds = (Image.Image,), (Tensor,) + ((np.ndarray,) if takes_arrays else ())
    for kind in kinds:
        for path, leaf in leaves:
            if isinstance(leaf, kind):
                return path
    return None


class _SampleCall:
    """transform(*inputs) applies forward to the sample's image, the rest passed through."""

    _takes_arrays = False

    def __call__(self, *inputs):
        sample = inputs if len(inputs) > 1 else inputs[0]
        path = image_path(sample, self._takes_arrays)
        if path is None:
            return sample
        image = sample
        for key in path:
            image = image[key]
        return _replaced(sample, path, self.forward(image))


class Transform(_SampleCall, _v1.Transform):
    """Base class of the v2 transforms: subclasses write forward(img), or transform(img,
    params) with make_params(flat_inputs)."""

    def forward(self, img):
        return self.transform(img, self.make_params([img]))

    def make_params(self, flat_inputs):
        """The random parameters of one call (none by default)."""
        return {}

    def transform(self, inpt, params):
        raise NotImplementedError(f"{type(self).__name__} defines neither forward nor transform")


class Compose(_v1.Compose):
    """Apply transforms one after the other to the whole sample."""

    def __call__(self, *inputs):
        sample = inputs if len(inputs) > 1 else inputs[0]
        for t in self.transforms:
            sample = t(sample)
        return sample


class RandomApply(Compose):
    """Apply the list of transforms with probability p."""

    def __init__(self, transforms, p=0.5):
        super().__init__(transforms)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p (the probability) should be between 0 and 1, got {p!r}")
        self.p = p

    def __call__(self, *inputs):
        if _v1._rng().random() >= self.p:
            return inputs if len(inputs) > 1 else inputs[0]
        return super().__call__(*inputs)


class RandomChoice(Compose):
    """Apply one transform picked at random (weights p)."""

    def __init__(self, transforms, p=None):
        super().__init__(transforms)
        if p is not None and len(p) != len(self.transforms):
            raise ValueError(f"p should have one weight per transform ({len(self.transforms)}),"
                             f" got {len(p)}")
        self.p = p

    def __call__(self, *inputs):
        p = None if self.p is None else np.asarray(self.p, float) / np.sum(self.p)
        return self.transforms[int(_v1._rng().choice(len(self.transforms), p=p))](*inputs)


class RandomOrder(Compose):
    """Apply the transforms in a random order."""

    def __call__(self, *inputs):
        sample = inputs if len(inputs) > 1 else inputs[0]
        for k in _v1._rng().permutation(len(self.transforms)):
            sample = self.transforms[int(k)](sample)
        return sample


class ToImage(Transform):
    """PIL image, (H, W, C) array or tensor -> (C, H, W) tensor image, values unchanged."""

    _takes_arrays = True

    def forward(self, img):
        return functional.to_image(img)


class ToDtype(Transform):
    """Tensor image -> dtype; scale=True rescales values (uint8 0..255 <-> float 0..1)."""

    def __init__(self, dtype, scale=False):
        if isinstance(dtype, dict):
            raise TypeError("ToDtype: per-type dtypes (a dict) are not supported; give one "
                            "dtype, applied to the image")
        self.dtype, self.scale = functional._dtype(dtype), bool(scale)

    def forward(self, img):
        return functional.to_dtype(img, self.dtype, self.scale)

    def _repr_args(self):
        return {"dtype": self.dtype, "scale": self.scale}


class ConvertImageDtype(ToDtype):
    """ToDtype(dtype, scale=True)."""

    def __init__(self, dtype):
        super().__init__(dtype, scale=True)


class Identity(Transform):
    """The sample unchanged."""

    def forward(self, img):
        return img


class ToPureTensor(Identity):
    """The sample unchanged (tinylesion has no tensor subclasses to strip)."""


class RandomErasing(_SampleCall, _augment.RandomErasing):
    """RandomErasing, also on PIL images (erased through their uint8 tensor, as v2)."""

    def forward(self, img):
        if not isinstance(img, Image.Image):
            return _augment.RandomErasing.forward(self, img)
        erased = _augment.RandomErasing.forward(self, functional.pil_to_tensor(img))
        return functional.to_pil_image(erased, mode=img.mode)


def _v2(base, takes_arrays=False):
    """The v2 form of a v1 transform class: same arguments, called on samples."""
    return type(base.__name__, (_SampleCall, base), {"__doc__": base.__doc__,
                                                   "__module__": __name__,
                                                   "_takes_arrays": takes_arrays})


CenterCrop = _v2(_v1.CenterCrop)
ColorJitter = _v2(_v1.ColorJitter)
Grayscale = _v2(_v1.Grayscale)
Lambda = _v2(_v1.Lambda)
Normalize = _v2(_v1.Normalize)
Pad = _v2(_v1.Pad)
PILToTensor = _v2(_v1.PILToTensor)
RandomCrop = _v2(_v1.RandomCrop)
RandomGrayscale = _v2(_v1.RandomGrayscale)
RandomHorizontalFlip = _v2(_v1.RandomHorizontalFlip)
RandomResizedCrop = _v2(_v1.RandomResizedCrop)
RandomRotation = _v2(_v1.RandomRotation)
RandomVerticalFlip = _v2(_v1.RandomVerticalFlip)
Resize = _v2(_v1.Resize)
ToPILImage = _v2(_v1.ToPILImage, takes_arrays=True)
ToTensor = _v2(_v1.ToTensor, takes_arrays=True)
ElasticTransform = _v2(_augment.ElasticTransform)
FiveCrop = _v2(_augment.FiveCrop)
GaussianBlur = _v2(_augment.GaussianBlur)
TenCrop = _v2(_augment.TenCrop)
GaussianNoise = _v2(_photometric.GaussianNoise)
RandomChannelPermutation = _v2(_photometric.RandomChannelPermutation)
RandomPhotometricDistort = _v2(_photometric.RandomPhotometricDistort)
RandomAdjustSharpness = _v2(_augment.RandomAdjustSharpness)
RandomAffine = _v2(_augment.RandomAffine)
RandomAutocontrast = _v2(_augment.RandomAutocontrast)
RandomEqualize = _v2(_augment.RandomEqualize)
RandomInvert = _v2(_augment.RandomInvert)
RandomPerspective = _v2(_augment.RandomPerspective)
RandomPosterize = _v2(_augment.RandomPosterize)
RandomSolarize = _v2(_augment.RandomSolarize)
AugMix = _v2(_autoaugment.AugMix)
AutoAugment = _v2(_autoaugment.AutoAugment)
RandAugment = _v2(_autoaugment.RandAugment)
TrivialAugmentWide = _v2(_autoaugment.TrivialAugmentWide)

__all__ = [
    "functional", "GaussianNoise", "RandomChannelPermutation", "RandomPhotometricDistort",
    "FiveCrop", "TenCrop", "AugMix", "MixUp", "CutMix", "InterpolationMode",
    "AutoAugmentPolicy", "Transform", "Compose", "RandomApply", "RandomChoice", "RandomOrder",
    "ToImage", "ToDtype", "ConvertImageDtype", "Identity", "ToPureTensor", "RandomErasing",
    "CenterCrop", "ColorJitter", "Grayscale", "Lambda", "Normalize", "Pad", "PILToTensor",
    "RandomCrop", "RandomGrayscale", "RandomHorizontalFlip", "RandomResizedCrop",
    "RandomRotation", "RandomVerticalFlip", "Resize", "ToPILImage", "ToTensor",
    "ElasticTransform", "GaussianBlur", "RandomAdjustSharpness", "RandomAffine",
    "RandomAutocontrast", "RandomEqualize", "RandomInvert", "RandomPerspective",
    "RandomPosterize", "RandomSolarize", "AutoAugment", "RandAugment", "TrivialAugmentWide",
]
