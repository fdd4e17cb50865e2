"""torchvision.transforms as tinylesion.vision.transforms (PIL images and Tensors)."""
from . import functional
from .augment import (GaussianBlur, RandomAdjustSharpness, RandomAffine, RandomAutocontrast,
                      RandomEqualize, RandomErasing, RandomInvert, RandomPerspective,
                      RandomPosterize, RandomSolarize)
from .autoaugment import AutoAugment, AutoAugmentPolicy, RandAugment, TrivialAugmentWide
from .functional import InterpolationMode
from .transforms import (CenterCrop, ColorJitter, Compose, ConvertImageDtype, Grayscale,
                         Lambda, Normalize, Pad, PILToTensor, RandomApply, RandomChoice,
                         RandomCrop, RandomGrayscale, RandomHorizontalFlip, RandomResizedCrop,
                         RandomRotation, RandomVerticalFlip, Resize, ToPILImage, ToTensor,
                         Transform)

__all__ = [
    "functional", "InterpolationMode", "CenterCrop", "ColorJitter", "Compose",
    "ConvertImageDtype", "Grayscale", "Lambda", "Normalize", "Pad", "PILToTensor",
    "RandomApply", "RandomChoice", "RandomCrop", "RandomGrayscale", "RandomHorizontalFlip",
    "RandomResizedCrop", "RandomRotation", "RandomVerticalFlip", "Resize", "ToPILImage",
    "ToTensor", "Transform", "GaussianBlur", "RandomAdjustSharpness", "RandomAffine",
    "RandomAutocontrast", "RandomEqualize", "RandomErasing", "RandomInvert",
    "RandomPerspective", "RandomPosterize", "RandomSolarize", "AutoAugment",
    "AutoAugmentPolicy", "RandAugment", "TrivialAugmentWide",
]
