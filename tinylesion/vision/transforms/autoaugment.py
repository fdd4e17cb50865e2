"""AutoAugment, RandAugment, TrivialAugmentWide and AugMix as torchvision's: the published
policies and magnitude ranges, the ops applied through functional; draws from tinylesion's
generator."""
import enum
import math
import numbers

import numpy as np

from ... import backend
from ...tensor import Tensor
from . import functional as F
from .augment import _tensor_fill
from .functional import InterpolationMode, interpolation_mode
from .transforms import Transform, _rng


def apply_op(img, op_name, magnitude, interpolation=InterpolationMode.NEAREST, fill=None):
    """One augmentation op by its policy name at `magnitude` (shears are slopes, translations
    pixels, rotations degrees, colour ops factors - 1, posterize bits, solarize a threshold)."""
    if op_name in ("ShearX", "ShearY"):
        degrees = math.degrees(math.atan(magnitude))
        shear = [degrees, 0.0] if op_name == "ShearX" else [0.0, degrees]
        # NOTE: shears are about the top-left corner, as in the AutoAugment paper's code
        return F.affine(img, 0.0, [0, 0], 1.0, shear, interpolation, fill, center=[0, 0])
    if op_name in ("TranslateX", "TranslateY"):
        shift = [int(magnitude), 0] if op_name == "TranslateX" else [0, int(magnitude)]
        return F.affine(img, 0.0, shift, 1.0, [0.0, 0.0], interpolation, fill)
    if op_name == "Rotate":
        return F.rotate(img, magnitude, interpolation, fill=fill)
    factor_ops = {"Brightness": F.adjust_brightness, "Color": F.adjust_saturation,
                  "Contrast": F.adjust_contrast, "Sharpness": F.adjust_sharpness}
    if op_name in factor_ops:
        return factor_ops[op_name](img, 1.0 + magnitude)
    if op_name == "Posterize":
        return F.posterize(img, int(magnitude))
    if op_name == "Solarize":
        return F.solarize(img, magnitude)
    plain_ops = {"AutoContrast": F.autocontrast, "Equalize": F.equalize, "Invert": F.invert,
                 "Identity": lambda im: im}
    if op_name in plain_ops:
        return plain_ops[op_name](img)
    raise ValueError(f"unknown augmentation op {op_name!r}")


class AutoAugmentPolicy(enum.Enum):
    """The policies learned in the AutoAugment paper, by data set."""

    IMAGENET = "imagenet"
    CIFAR10 = "cifar10"
    SVHN = "svhn"


# (op, probability, magnitude bin of 10 or None) pairs, from the AutoAugment paper.
_POLICIES = {
    AutoAugmentPolicy.IMAGENET: """
        Posterize 0.4 8 Rotate 0.6 9 | Solarize 0.6 5 AutoContrast 0.6 - |
        Equalize 0.8 - Equalize 0.6 - | Posterize 0.6 7 Posterize 0.6 6 |
        Equalize 0.4 - Solarize 0.2 4 | Equalize 0.4 - Rotate 0.8 8 |
        Solarize 0.6 3 Equalize 0.6 - | Posterize 0.8 5 Equalize 1.0 - |
        Rotate 0.2 3 Solarize 0.6 8 | Equalize 0.6 - Posterize 0.4 6 |
        Rotate 0.8 8 Color 0.4 0 | Rotate 0.4 9 Equalize 0.6 - |
        Equalize 0.0 - Equalize 0.8 - | Invert 0.6 - Equalize 1.0 - |
        Color 0.6 4 Contrast 1.0 8 | Rotate 0.8 8 Color 1.0 2 | Color 0.8 8 Solarize 0.8 7 |
        Sharpness 0.4 7 Invert 0.6 - | ShearX 0.6 5 Equalize 1.0 - |
        Color 0.4 0 Equalize 0.6 - | Equalize 0.4 - Solarize 0.2 4 |
        Solarize 0.6 5 AutoContrast 0.6 - | Invert 0.6 - Equalize 1.0 - |
        Color 0.6 4 Contrast 1.0 8 | Equalize 0.8 - Equalize 0.6 -""",
    AutoAugmentPolicy.CIFAR10: """
        Invert 0.1 - Contrast 0.2 6 | Rotate 0.7 2 TranslateX 0.3 9 |
        Sharpness 0.8 1 Sharpness 0.9 3 | ShearY 0.5 8 TranslateY 0.7 9 |
        AutoContrast 0.5 - Equalize 0.9 - | ShearY 0.2 7 Posterize 0.3 7 |
        Color 0.4 3 Brightness 0.6 7 | Sharpness 0.3 9 Brightness 0.7 9 |
        Equalize 0.6 - Equalize 0.5 - | Contrast 0.6 7 Sharpness 0.6 5 |
        Color 0.7 7 TranslateX 0.5 8 | Equalize 0.3 - AutoContrast 0.4 - |
        TranslateY 0.4 3 Sharpness 0.2 6 | Brightness 0.9 6 Color 0.2 8 |
        Solarize 0.5 2 Invert 0.0 - | Equalize 0.2 - AutoContrast 0.6 - |
        Equalize 0.2 - Equalize 0.6 - | Color 0.9 9 Equalize 0.6 - |
        AutoContrast 0.8 - Solarize 0.2 8 | Brightness 0.1 3 Color 0.7 0 |
        Solarize 0.4 5 AutoContrast 0.9 - | TranslateY 0.9 9 TranslateY 0.7 9 |
        AutoContrast 0.9 - Solarize 0.8 3 | Equalize 0.8 - Invert 0.1 - |
        TranslateY 0.7 9 AutoContrast 0.9 -""",
    AutoAugmentPolicy.SVHN: """
        ShearX 0.9 4 Invert 0.2 - | ShearY 0.9 8 Invert 0.7 - |
        Equalize 0.6 - Solarize 0.6 6 | Invert 0.9 - Equalize 0.6 - |
        Equalize 0.6 - Rotate 0.9 3 | ShearX 0.9 4 AutoContrast 0.8 - |
        ShearY 0.9 8 Invert 0.4 - | ShearY 0.9 5 Solarize 0.2 6 |
        Invert 0.9 - AutoContrast 0.8 - | Equalize 0.6 - Rotate 0.9 3 |
        ShearX 0.9 4 Solarize 0.3 3 | ShearY 0.8 8 Invert 0.7 - |
        Equalize 0.9 - TranslateY 0.6 6 | Invert 0.9 - Equalize 0.6 - |
        Contrast 0.3 3 Rotate 0.8 4 | Invert 0.8 - TranslateY 0.0 2 |
        ShearY 0.7 6 Solarize 0.4 8 | Invert 0.6 - Rotate 0.8 4 |
        ShearY 0.3 7 TranslateX 0.9 3 | ShearX 0.1 6 Invert 0.6 - |
        Solarize 0.7 2 TranslateY 0.6 7 | ShearY 0.8 4 Invert 0.8 - |
        ShearX 0.7 9 TranslateY 0.8 3 | ShearY 0.8 5 AutoContrast 0.7 - |
        ShearX 0.7 2 Invert 0.1 -""",
}


def policy_table(policy):
    """The policy's sub-policies: [((op, probability, magnitude bin or None), (...)), ...]."""
    policy = AutoAugmentPolicy(policy.value if isinstance(policy, AutoAugmentPolicy) else policy)
    table = []
    for sub in _POLICIES[policy].split("|"):
        words = sub.split()
        table.append(tuple((words[k], float(words[k + 1]),
                            None if words[k + 2] == "-" else int(words[k + 2]))
                           for k in (0, 3)))
    return table


def _linspace(stop, bins, start=0.0):
    return np.linspace(start, stop, bins).astype(np.float32)


def augmentation_space(kind, num_bins, image_size=None):
    """{op: (magnitudes by bin, or None for an op without magnitude, signed)} in
    torchvision's order: kind 'autoaugment' or 'randaugment' (ranges of the RandAugment
    paper, translations 150/331 of the image size (h, w)) or 'trivialaugmentwide'."""
    wide = kind == "trivialaugmentwide"
    top = 0.99 if wide else 0.9
    space = {} if kind == "autoaugment" else {"Identity": (None, False)}
    shift_h, shift_w = (32.0, 32.0) if wide else (150.0 / 331.0 * image_size[0],
                                                  150.0 / 331.0 * image_size[1])
    space.update({
        "ShearX": (_linspace(0.99 if wide else 0.3, num_bins), True),
        "ShearY": (_linspace(0.99 if wide else 0.3, num_bins), True),
        "TranslateX": (_linspace(shift_w, num_bins), True),
        "TranslateY": (_linspace(shift_h, num_bins), True),
        "Rotate": (_linspace(135.0 if wide else 30.0, num_bins), True),
        "Brightness": (_linspace(top, num_bins), True),
        "Color": (_linspace(top, num_bins), True),
        "Contrast": (_linspace(top, num_bins), True),
        "Sharpness": (_linspace(top, num_bins), True),
        # NOTE: 8 bits down to 4 (2 for the wide space) in equal steps, rounded half to even
        "Posterize": (8 - np.round(np.arange(num_bins, dtype=np.float32)
                                   / np.float32((num_bins - 1) / (6 if wide else 4))
                                   ).astype(np.int32), False),
        "Solarize": (_linspace(0.0, num_bins, start=255.0), False),
        "AutoContrast": (None, False),
        "Equalize": (None, False),
    })
    if kind == "autoaugment":
        space["Invert"] = (None, False)
    return space


def augmix_space(num_bins, image_size, all_ops=True):
    """AugMix's {op: (magnitudes by bin or None, signed)}: translations up to a third of the
    image size (h, w), posterize 4 bits down to 0; the colour ops only with all_ops."""
    space = {
        "ShearX": (_linspace(0.3, num_bins), True),
        "ShearY": (_linspace(0.3, num_bins), True),
        "TranslateX": (_linspace(image_size[1] / 3.0, num_bins), True),
        "TranslateY": (_linspace(image_size[0] / 3.0, num_bins), True),
        "Rotate": (_linspace(30.0, num_bins), True),
        "Posterize": (4 - np.round(np.arange(num_bins, dtype=np.float32)
                                   / np.float32((num_bins - 1) / 4)).astype(np.int32), False),
        "Solarize": (_linspace(0.0, num_bins, start=255.0), False),
        "AutoContrast": (None, False),
        "Equalize": (None, False),
    }
    if all_ops:
        for name in ("Brightness", "Color", "Contrast", "Sharpness"):
            space[name] = (_linspace(0.9, num_bins), True)
    return space


class _Augment(Transform):
    def _setup(self, interpolation, fill):
        self.interpolation = interpolation_mode(interpolation)
        if fill is not None and (isinstance(fill, str) or
                                 not isinstance(fill, (numbers.Number, list, tuple))):
            raise TypeError(f"fill should be None, a number or a sequence, got {fill!r}")
        self.fill = fill

    def _apply(self, img, name, magnitude):
        return apply_op(img, name, magnitude, self.interpolation, _tensor_fill(img, self.fill))


def _signed(magnitude, signed, rng):
    return -magnitude if signed and int(rng.integers(0, 2)) else magnitude


class AutoAugment(_Augment):
    """Apply a random sub-policy (two ops, each with its probability) of an AutoAugment
    policy. Tensors must be uint8 (..., 1 or 3, H, W); PIL images L or RGB."""

    def __init__(self, policy=AutoAugmentPolicy.IMAGENET,
                 interpolation=InterpolationMode.NEAREST, fill=None):
        if not isinstance(policy, AutoAugmentPolicy):
            raise ValueError(f"policy should be an AutoAugmentPolicy, got {policy!r}")
        self.policy = policy
        self.policies = policy_table(policy)
        self._setup(interpolation, fill)

    @staticmethod
    def get_params(transform_num):
        """(sub-policy index, two probabilities in [0, 1), two signs in {0, 1})."""
        rng = _rng()
        return (int(rng.integers(0, transform_num)), rng.random(2),
                rng.integers(0, 2, size=2))

    def forward(self, img):
        _, height, width = F.get_dimensions(img)
        index, probs, signs = self.get_params(len(self.policies))
        space = augmentation_space("autoaugment", 10, (height, width))
        for k, (name, p, bin_) in enumerate(self.policies[index]):
            if probs[k] <= p:
                magnitudes, signed = space[name]
                magnitude = 0.0 if bin_ is None else float(magnitudes[bin_])
                if signed and signs[k] == 0:
                    magnitude = -magnitude
                img = self._apply(img, name, magnitude)
        return img

    def _repr_args(self):
        return {"policy": self.policy, "fill": self.fill}


class RandAugment(_Augment):
    """Apply num_ops ops picked uniformly, each at bin `magnitude` of num_magnitude_bins,
    with a random sign."""

    def __init__(self, num_ops=2, magnitude=9, num_magnitude_bins=31,
                 interpolation=InterpolationMode.NEAREST, fill=None):
        for name, value in (("num_ops", num_ops), ("magnitude", magnitude),
                            ("num_magnitude_bins", num_magnitude_bins)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"{name} should be a non-negative int, got {value!r}")
        if not 0 <= magnitude < num_magnitude_bins:
            raise ValueError(f"magnitude should be below num_magnitude_bins "
                             f"({num_magnitude_bins}), got {magnitude}")
        self.num_ops, self.magnitude = num_ops, magnitude
        self.num_magnitude_bins = num_magnitude_bins
        self._setup(interpolation, fill)

    def forward(self, img):
        _, height, width = F.get_dimensions(img)
        space = augmentation_space("randaugment", self.num_magnitude_bins, (height, width))
        names = list(space)
        rng = _rng()
        for _ in range(self.num_ops):
            name = names[int(rng.integers(0, len(names)))]
            magnitudes, signed = space[name]
            magnitude = 0.0 if magnitudes is None else float(magnitudes[self.magnitude])
            img = self._apply(img, name, _signed(magnitude, signed, rng))
        return img

    def _repr_args(self):
        return {"num_ops": self.num_ops, "magnitude": self.magnitude,
                "num_magnitude_bins": self.num_magnitude_bins, "fill": self.fill}


class TrivialAugmentWide(_Augment):
    """Apply one op picked uniformly at a magnitude bin picked uniformly, random sign."""

    def __init__(self, num_magnitude_bins=31, interpolation=InterpolationMode.NEAREST,
                 fill=None):
        if isinstance(num_magnitude_bins, bool) or \
                not isinstance(num_magnitude_bins, numbers.Integral) or num_magnitude_bins < 2:
            raise ValueError(f"num_magnitude_bins should be an int of at least 2, got "
                             f"{num_magnitude_bins!r}")
        self.num_magnitude_bins = num_magnitude_bins
        self._setup(interpolation, fill)

    def forward(self, img):
        space = augmentation_space("trivialaugmentwide", self.num_magnitude_bins)
        names = list(space)
        rng = _rng()
        name = names[int(rng.integers(0, len(names)))]
        magnitudes, signed = space[name]
        magnitude = 0.0 if magnitudes is None else \
            float(magnitudes[int(rng.integers(0, len(magnitudes)))])
        return self._apply(img, name, _signed(magnitude, signed, rng))

    def _repr_args(self):
        return {"num_magnitude_bins": self.num_magnitude_bins, "fill": self.fill}


class AugMix(_Augment):
    """Mix the image with mixture_width chains of chain_depth (1 to 3 at random for -1) ops
    at magnitude bins below severity: weights Dirichlet(alpha) over the chains, and a
    Beta(alpha, alpha) share for the original. PIL images are mixed as uint8 tensors."""

    _BINS = 10

    def __init__(self, severity=3, mixture_width=3, chain_depth=-1, alpha=1.0, all_ops=True,
                 interpolation=InterpolationMode.BILINEAR, fill=None):
        if isinstance(severity, bool) or not isinstance(severity, numbers.Integral) or \
                not 1 <= severity <= self._BINS:
            raise ValueError(f"severity should be an int between 1 and {self._BINS}, got "
                             f"{severity!r}")
        if isinstance(mixture_width, bool) or not isinstance(mixture_width, numbers.Integral) \
                or mixture_width < 1:
            raise ValueError(f"mixture_width should be a positive int, got {mixture_width!r}")
        if not isinstance(chain_depth, numbers.Integral) or chain_depth == 0:
            raise ValueError(f"chain_depth should be a positive int or -1, got {chain_depth!r}")
        if not isinstance(alpha, numbers.Real) or alpha <= 0:
            raise ValueError(f"alpha should be positive, got {alpha!r}")
        self.severity, self.mixture_width = int(severity), int(mixture_width)
        self.chain_depth, self.alpha, self.all_ops = int(chain_depth), float(alpha), all_ops
        self._setup(interpolation, fill)

    def forward(self, img):
        _, height, width = F.get_dimensions(img)
        tensor = img if isinstance(img, Tensor) else F.pil_to_tensor(img)
        space = augmix_space(self._BINS, (height, width), self.all_ops)
        names = list(space)
        x = tensor.array
        xp = backend.get_array_module(x)
        shape = x.shape
        batch = x.reshape((1,) * max(4 - x.ndim, 0) + shape)
        n = batch.shape[0]
        rng = _rng()
        share = rng.dirichlet([self.alpha] * 2, size=n).astype(np.float32)
        weights = rng.dirichlet([self.alpha] * self.mixture_width, size=n).astype(np.float32)
        weights *= share[:, 1:]
        per_image = (n,) + (1,) * (batch.ndim - 1)
        mix = xp.asarray(share[:, 0].reshape(per_image)) * batch
        fill = _tensor_fill(img, self.fill)
        for k in range(self.mixture_width):
            chain = Tensor._wrap(batch)
            depth = self.chain_depth if self.chain_depth > 0 else int(rng.integers(1, 4))
            for _ in range(depth):
                name = names[int(rng.integers(0, len(names)))]
                magnitudes, signed = space[name]
                magnitude = 0.0 if magnitudes is None else \
                    float(magnitudes[int(rng.integers(0, self.severity))])
                if signed and int(rng.integers(0, 2)):
                    magnitude = -magnitude
                chain = apply_op(chain, name, magnitude, self.interpolation, fill)
            mix = mix + xp.asarray(weights[:, k].reshape(per_image)) * chain.array
        # NOTE: cast back as torchvision does: truncated toward zero for integer images
        out = Tensor._wrap(mix.reshape(shape).astype(x.dtype))
        return out if isinstance(img, Tensor) else F.to_pil_image(out)

    def _repr_args(self):
        return {"severity": self.severity, "mixture_width": self.mixture_width,
                "chain_depth": self.chain_depth, "alpha": self.alpha, "all_ops": self.all_ops}
