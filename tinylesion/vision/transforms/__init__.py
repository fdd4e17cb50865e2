"""torchvision.transforms as tinylesion.vision.transforms (PIL images and Tensors)."""
from . import functional
from .augment import (ElasticTransform, FiveCrop, GaussianBlur, RandomAdjustSharpness,
                      RandomAffine, RandomAutocontrast, RandomEqualize, RandomErasing,
                      RandomInvert, RandomPerspective, RandomPosterize, RandomSolarize, TenCrop)
from .autoaugment import (AugMix, AutoAugment, AutoAugmentPolicy, RandAugment,
                          TrivialAugmentWide)
from .functional import InterpolationMode
from .transforms import (CenterCrop, ColorJitter, Compose, ConvertImageDtype, Grayscale,
                         Lambda, Normalize, Pad, PILToTensor, RandomApply, RandomChoice,
                         RandomCrop, RandomGrayscale, RandomHorizontalFlip, RandomResizedCrop,
                         RandomRotation, RandomVerticalFlip, Resize, ToPILImage, ToTensor,
                         Transform)
from . import autoaugment, v2  # noqa: E402  (after the classes v2 wraps)

__all__ = [
    "functional", "autoaugment", "v2", "InterpolationMode", "CenterCrop", "ColorJitter", "Compose",
    "ConvertImageDtype", "Grayscale", "Lambda", "Normalize", "Pad", "PILToTensor",
    "RandomApply", "RandomChoice", "RandomCrop", "RandomGrayscale", "RandomHorizontalFlip",
    "RandomResizedCrop", "RandomRotation", "RandomVerticalFlip", "Resize", "ToPILImage",
    "ToTensor", "Transform", "GaussianBlur", "RandomAdjustSharpness", "RandomAffine",
    "RandomAutocontrast", "RandomEqualize", "RandomErasing", "RandomInvert",
    "RandomPerspective", "RandomPosterize", "RandomSolarize", "AutoAugment",
    "AutoAugmentPolicy", "RandAugment", "TrivialAugmentWide", "ElasticTransform",
    "AugMix", "FiveCrop", "TenCrop",
]
