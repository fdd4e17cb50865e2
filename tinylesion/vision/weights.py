"""torchvision's weight enums (ResNet50_Weights.IMAGENET1K_V2, ...DEFAULT) for the registry's
ImageNet backbones: each names torchvision's published file and its preprocessing preset.

tinylesion downloads nothing. A model built with such a weight reads the file from where
torchvision keeps its downloads (`$TORCH_HOME/hub/checkpoints/`, by default
`~/.cache/torch/hub/checkpoints/`), so a machine that ran the PyTorch script once, or a user
who copied the file there, needs nothing else; otherwise the error names the file, its URL
and that folder."""
import enum
import os

import numpy as np

from .transforms import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageClassification:
    """The preset of `weights.transforms()`: resize the shorter side to resize_size, cut the
    crop_size centre, scale to [0, 1] floats and normalise with ImageNet's mean and std; on a
    PIL image or a (..., C, H, W) tensor, as torchvision's preset."""

    def __init__(self, *, crop_size, resize_size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 interpolation=F.InterpolationMode.BILINEAR, antialias=True):
        self.crop_size, self.resize_size = [crop_size], [resize_size]
        self.mean, self.std = list(mean), list(std)
        self.interpolation, self.antialias = interpolation, antialias

    def __call__(self, img):
        img = F.resize(img, self.resize_size, interpolation=self.interpolation,
                       antialias=self.antialias)
        img = F.center_crop(img, self.crop_size)
        img = F.pil_to_tensor(img) if F.is_pil(img) else img
        img = F.convert_image_dtype(img, np.float32)
        return F.normalize(img, mean=self.mean, std=self.std)

    def __repr__(self):
        return (f"ImageClassification(crop_size={self.crop_size}, resize_size="
                f"{self.resize_size}, mean={self.mean}, std={self.std}, "
                f"interpolation={self.interpolation})")


class Weights:
    """One published weights file: its URL, its preprocessing and its facts (meta)."""

    def __init__(self, url, crop_size, resize_size, num_params, acc1, bicubic=False,
                 min_size=None):
        self.url = url
        self.file_name = url.rsplit("/", 1)[1]
        self._preset = dict(crop_size=crop_size, resize_size=resize_size,
                            interpolation=F.InterpolationMode.BICUBIC if bicubic
                            else F.InterpolationMode.BILINEAR)
        if min_size is None:
            min_size = (1, 1) if crop_size != 299 else (75, 75)
        self.meta = {"num_params": num_params, "min_size": min_size,
                     "num_classes": 1000, "file_name": self.file_name,
                     "_metrics": {"ImageNet-1K": {"acc@1": acc1}}}

    def transforms(self):
        """The preprocessing the weights were trained with (an ImageClassification)."""
        return ImageClassification(**self._preset)


class WeightsEnum(enum.Enum):
    """Base of the XXX_Weights enums: members are Weights; DEFAULT names the best."""

    @property
    def url(self):
        return self.value.url

    @property
    def meta(self):
        return self.value.meta

    def transforms(self):
        return self.value.transforms()

    def __repr__(self):
        return f"{type(self).__name__}.{self.name}"

    def local_file(self):
        """The path of this file in torchvision's download folder; a one-line
        FileNotFoundError naming the file, its URL and the folder when it is not there."""
        folder = checkpoint_dir()
        path = os.path.join(folder, self.value.file_name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{self!r}: tinylesion downloads nothing; put {self.value.file_name} (from "
                f"{self.value.url}) in {folder} or pass weights= the path of a weights file")
        return path


def checkpoint_dir():
    """Where torchvision keeps downloaded weights: $TORCH_HOME/hub/checkpoints, TORCH_HOME
    defaulting to $XDG_CACHE_HOME/torch (~/.cache/torch)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "torch")
    return os.path.join(os.path.expanduser(home), "hub", "checkpoints")


_BASE = "https://download.pytorch.org/models/"

# model: (enum name, [(member, file, crop, resize, parameters, ImageNet top-1, bicubic
# [, minimum input size when not (1, 1)])], the DEFAULT member), from torchvision's model
# documentation
_TABLE = {
    "resnet18": ("ResNet18_Weights", [("IMAGENET1K_V1", "resnet18-f37072fd.pth", 224, 256,
                                       11689512, 69.758, False)], "IMAGENET1K_V1"),
    "resnet34": ("ResNet34_Weights", [("IMAGENET1K_V1", "resnet34-b627a593.pth", 224, 256,
                                       21797672, 73.314, False)], "IMAGENET1K_V1"),
    "resnet50": ("ResNet50_Weights", [
        ("IMAGENET1K_V1", "resnet50-0676ba61.pth", 224, 256, 25557032, 76.13, False),
        ("IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 224, 232, 25557032, 80.858, False)],
        "IMAGENET1K_V2"),
    "resnet101": ("ResNet101_Weights", [
        ("IMAGENET1K_V1", "resnet101-63fe2227.pth", 224, 256, 44549160, 77.374, False),
        ("IMAGENET1K_V2", "resnet101-cd907fc2.pth", 224, 232, 44549160, 81.886, False)],
        "IMAGENET1K_V2"),
    "resnet152": ("ResNet152_Weights", [
        ("IMAGENET1K_V1", "resnet152-394f9c45.pth", 224, 256, 60192808, 78.312, False),
        ("IMAGENET1K_V2", "resnet152-f82ba261.pth", 224, 232, 60192808, 82.284, False)],
        "IMAGENET1K_V2"),
    "resnext50_32x4d": ("ResNeXt50_32X4D_Weights", [
        ("IMAGENET1K_V1", "resnext50_32x4d-7cdf4587.pth", 224, 256, 25028904, 77.618, False),
        ("IMAGENET1K_V2", "resnext50_32x4d-1a0047aa.pth", 224, 232, 25028904, 81.198, False)],
        "IMAGENET1K_V2"),
    "resnext101_32x8d": ("ResNeXt101_32X8D_Weights", [
        ("IMAGENET1K_V1", "resnext101_32x8d-8ba56ff5.pth", 224, 256, 88791336, 79.312, False),
        ("IMAGENET1K_V2", "resnext101_32x8d-110c445d.pth", 224, 232, 88791336, 82.834, False)],
        "IMAGENET1K_V2"),
    "resnext101_64x4d": ("ResNeXt101_64X4D_Weights", [
        ("IMAGENET1K_V1", "resnext101_64x4d-173b62eb.pth", 224, 232, 83455272, 83.246, False)],
        "IMAGENET1K_V1"),
    "wide_resnet50_2": ("Wide_ResNet50_2_Weights", [
        ("IMAGENET1K_V1", "wide_resnet50_2-95faca4d.pth", 224, 256, 68883240, 78.468, False),
        ("IMAGENET1K_V2", "wide_resnet50_2-9ba9bcbe.pth", 224, 232, 68883240, 81.602, False)],
        "IMAGENET1K_V2"),
    "wide_resnet101_2": ("Wide_ResNet101_2_Weights", [
        ("IMAGENET1K_V1", "wide_resnet101_2-32ee1156.pth", 224, 256, 126886696, 78.848,
         False),
        ("IMAGENET1K_V2", "wide_resnet101_2-d733dc28.pth", 224, 232, 126886696, 82.51, False)],
        "IMAGENET1K_V2"),
    "vgg16": ("VGG16_Weights", [("IMAGENET1K_V1", "vgg16-397923af.pth", 224, 256, 138357544,
                                 71.592, False)], "IMAGENET1K_V1"),
    "vgg16_bn": ("VGG16_BN_Weights", [("IMAGENET1K_V1", "vgg16_bn-6c64b313.pth", 224, 256,
                                       138365992, 73.36, False)], "IMAGENET1K_V1"),
    "vgg19": ("VGG19_Weights", [("IMAGENET1K_V1", "vgg19-dcbb9e9d.pth", 224, 256, 143667240,
                                 72.376, False)], "IMAGENET1K_V1"),
    "densenet121": ("DenseNet121_Weights", [("IMAGENET1K_V1", "densenet121-a639ec97.pth", 224,
                                             256, 7978856, 74.434, False)], "IMAGENET1K_V1"),
    "densenet169": ("DenseNet169_Weights", [("IMAGENET1K_V1", "densenet169-b2777c0a.pth", 224,
                                             256, 14149480, 75.6, False)], "IMAGENET1K_V1"),
    "densenet201": ("DenseNet201_Weights", [("IMAGENET1K_V1", "densenet201-c1103571.pth", 224,
                                             256, 20013928, 76.896, False)], "IMAGENET1K_V1"),
    "inception_v3": ("Inception_V3_Weights", [("IMAGENET1K_V1",
                                               "inception_v3_google-0cc3c7bd.pth", 299, 342,
                                               27161264, 77.294, False)], "IMAGENET1K_V1"),
    "mobilenet_v2": ("MobileNet_V2_Weights", [
        ("IMAGENET1K_V1", "mobilenet_v2-b0353104.pth", 224, 256, 3504872, 71.878, False),
        ("IMAGENET1K_V2", "mobilenet_v2-7ebf99e0.pth", 224, 232, 3504872, 72.154, False)],
        "IMAGENET1K_V2"),
    "mobilenet_v3_large": ("MobileNet_V3_Large_Weights", [
        ("IMAGENET1K_V1", "mobilenet_v3_large-8738ca79.pth", 224, 256, 5483032, 74.042, False),
        ("IMAGENET1K_V2", "mobilenet_v3_large-5c1a4163.pth", 224, 232, 5483032, 75.274,
         False)], "IMAGENET1K_V2"),
    "mobilenet_v3_small": ("MobileNet_V3_Small_Weights", [
        ("IMAGENET1K_V1", "mobilenet_v3_small-047dcff4.pth", 224, 256, 2542856, 67.668,
         False)], "IMAGENET1K_V1"),
    "efficientnet_b0": ("EfficientNet_B0_Weights", [
        ("IMAGENET1K_V1", "efficientnet_b0_rwightman-7f5810bc.pth", 224, 256, 5288548, 77.692,
         True)], "IMAGENET1K_V1"),
    "efficientnet_b1": ("EfficientNet_B1_Weights", [
        ("IMAGENET1K_V1", "efficientnet_b1_rwightman-bac287d4.pth", 240, 256, 7794184, 78.642,
         True),
        ("IMAGENET1K_V2", "efficientnet_b1-c27df63c.pth", 240, 255, 7794184, 79.838, False)],
        "IMAGENET1K_V2"),
    "efficientnet_b2": ("EfficientNet_B2_Weights", [
        ("IMAGENET1K_V1", "efficientnet_b2_rwightman-c35c1473.pth", 288, 288, 9109994, 80.608,
         True)], "IMAGENET1K_V1"),
    "efficientnet_b3": ("EfficientNet_B3_Weights", [
        ("IMAGENET1K_V1", "efficientnet_b3_rwightman-b3899882.pth", 300, 320, 12233232,
         82.008, True)], "IMAGENET1K_V1"),
    "efficientnet_b4": ("EfficientNet_B4_Weights", [
        ("IMAGENET1K_V1", "efficientnet_b4_rwightman-23ab8bcd.pth", 380, 384, 19341616,
         83.384, True)], "IMAGENET1K_V1"),
    "efficientnet_b5": ("EfficientNet_B5_Weights", [
        ("IMAGENET1K_V1", "efficientnet_b5_lukemelas-1a07897c.pth", 456, 456, 30389784,
         83.444, True)], "IMAGENET1K_V1"),
    "efficientnet_b6": ("EfficientNet_B6_Weights", [
        ("IMAGENET1K_V1", "efficientnet_b6_lukemelas-24a108a5.pth", 528, 528, 43040704,
         84.008, True)], "IMAGENET1K_V1"),
    "efficientnet_b7": ("EfficientNet_B7_Weights", [
        ("IMAGENET1K_V1", "efficientnet_b7_lukemelas-c5b4e57e.pth", 600, 600, 66347960,
         84.122, True)], "IMAGENET1K_V1"),
    "convnext_tiny": ("ConvNeXt_Tiny_Weights", [
        ("IMAGENET1K_V1", "convnext_tiny-983f1562.pth", 224, 236, 28589128, 82.52, False,
         (32, 32))], "IMAGENET1K_V1"),
    "convnext_small": ("ConvNeXt_Small_Weights", [
        ("IMAGENET1K_V1", "convnext_small-0c510722.pth", 224, 230, 50223688, 83.616, False,
         (32, 32))], "IMAGENET1K_V1"),
    "convnext_base": ("ConvNeXt_Base_Weights", [
        ("IMAGENET1K_V1", "convnext_base-6075fbad.pth", 224, 232, 88591464, 84.062, False,
         (32, 32))], "IMAGENET1K_V1"),
    "convnext_large": ("ConvNeXt_Large_Weights", [
        ("IMAGENET1K_V1", "convnext_large-ea097f82.pth", 224, 232, 197767336, 84.414, False,
         (32, 32))], "IMAGENET1K_V1"),
    "vit_b_16": ("ViT_B_16_Weights", [
        ("IMAGENET1K_V1", "vit_b_16-c867db91.pth", 224, 256, 86567656, 81.072, False,
         (224, 224)),
        ("IMAGENET1K_SWAG_E2E_V1", "vit_b_16_swag-9ac1b537.pth", 384, 384, 86859496, 85.304,
         True, (384, 384)),
        ("IMAGENET1K_SWAG_LINEAR_V1", "vit_b_16_lc_swag-4e70ced5.pth", 224, 224, 86567656,
         81.886, True, (224, 224))], "IMAGENET1K_V1"),
    "vit_b_32": ("ViT_B_32_Weights", [
        ("IMAGENET1K_V1", "vit_b_32-d86f8d99.pth", 224, 256, 88224232, 75.912, False,
         (224, 224))], "IMAGENET1K_V1"),
    "vit_l_16": ("ViT_L_16_Weights", [
        ("IMAGENET1K_V1", "vit_l_16-852ce7e3.pth", 224, 242, 304326632, 79.662, False,
         (224, 224)),
        ("IMAGENET1K_SWAG_E2E_V1", "vit_l_16_swag-4f3808c9.pth", 512, 512, 305174504, 88.064,
         True, (512, 512)),
        ("IMAGENET1K_SWAG_LINEAR_V1", "vit_l_16_lc_swag-4d563306.pth", 224, 224, 304326632,
         85.146, True, (224, 224))], "IMAGENET1K_V1"),
}


def _make_enum(enum_name, members, default):
    values = {name: Weights(_BASE + file, *facts) for name, file, *facts in members}
    values["DEFAULT"] = values[default]     # the same value: an alias, as torchvision's
    return WeightsEnum(enum_name, values, module=__name__)


ENUMS = {model: _make_enum(*entry) for model, entry in _TABLE.items()}
globals().update({e.__name__: e for e in ENUMS.values()})


def get_model_weights(name):
    """The weights enum of model `name` (a name or a builder), as torchvision's."""
    name = getattr(name, "__name__", name)
    if name not in ENUMS:
        raise ValueError(f"no published weights are known for model {name!r}; models with "
                         f"them: {', '.join(ENUMS)}")
    return ENUMS[name]


def get_weight(name):
    """A weight by its full name, e.g. get_weight("ResNet50_Weights.IMAGENET1K_V2")."""
    enum_name, _, member = str(name).partition(".")
    for e in ENUMS.values():
        if e.__name__ == enum_name and member in e.__members__:
            return e[member]
    raise ValueError(f"unknown weight {name!r} (e.g. 'ResNet50_Weights.IMAGENET1K_V2')")


def resolve(model_name, weights):
    """weights as given to a torchvision builder → an enum member of this model, or the
    weights unchanged (None or a file path). A member's own name ("DEFAULT",
    "IMAGENET1K_V1") names one of this model's members unless it is an existing file."""
    if isinstance(weights, str) and model_name in ENUMS and \
            weights in ENUMS[model_name].__members__ and not os.path.exists(weights):
        weights = ENUMS[model_name][weights]
    if isinstance(weights, WeightsEnum):
        if model_name not in ENUMS or type(weights) is not ENUMS[model_name]:
            raise ValueError(f"{weights!r} are not weights of {model_name}"
                             + (f"; its weights are {ENUMS[model_name].__name__}"
                                if model_name in ENUMS else ""))
    return weights
