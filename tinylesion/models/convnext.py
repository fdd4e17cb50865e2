"""ConvNeXt tiny, small, base and large (Liu et al., 2022), with torchvision's module names and
layout."""
import numpy as np

from .. import backend, nn
from ..nn import init
from ..nn.functional import layer_norm
from .backbone import Backbone
from .registry import register_model


class LayerNorm2d(nn.LayerNorm):
    """Layer normalisation of an (N, C, H, W) input over its channels, at each pixel: the
    LayerNorm of its (N, H, W, C) permutation, permuted back."""

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.normalized_shape[0]:
            raise ValueError(f"LayerNorm2d({self.normalized_shape[0]}) takes (N, "
                             f"{self.normalized_shape[0]}, H, W), got {tuple(x.shape)}")
        out = layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                         self.eps)
        return out.permute(0, 3, 1, 2)


class Permute(nn.Module):
    """x.permute(*dims) as a layer (ConvNeXt's blocks move the channels last and back)."""

    def __init__(self, dims):
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x):
        return x.permute(*self.dims)

    def extra_repr(self):
        return f"dims={list(self.dims)}"


class CNBlock(nn.Module):
    """7×7 depthwise convolution, then at each pixel LayerNorm, a linear layer to four times
    the width, GELU and a linear layer back (channels last, `block`); scaled per channel by
    `layer_scale`, randomly dropped in training (stochastic depth), added to the input."""

    def __init__(self, dim, layer_scale, drop_prob):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim, bias=True), Permute((0, 2, 3, 1)),
            nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim), nn.GELU(),
            nn.Linear(4 * dim, dim), Permute((0, 3, 1, 2)))
        self.layer_scale = nn.Parameter(np.full((dim, 1, 1), layer_scale,
                                                backend.DEFAULT_DTYPE))
        self.stochastic_depth = nn.StochasticDepth(drop_prob, "row")

    def forward(self, x):
        return self.stochastic_depth(self.layer_scale * self.block(x)) + x


# variant: (widths of the four stages, blocks per stage, default stochastic-depth rate)
CONVNEXT_VARIANTS = {
    "convnext_tiny": ((96, 192, 384, 768), (3, 3, 9, 3), 0.1),
    "convnext_small": ((96, 192, 384, 768), (3, 3, 27, 3), 0.4),
    "convnext_base": ((128, 256, 512, 1024), (3, 3, 27, 3), 0.5),
    "convnext_large": ((192, 384, 768, 1536), (3, 3, 27, 3), 0.5)}


class ConvNeXt(Backbone):
    """`features`: a 4×4/4 convolution stem with LayerNorm2d, then four stages of CNBlocks,
    each after the first preceded by LayerNorm2d and a 2×2/2 convolution doubling the width;
    global average pooling; `classifier` (LayerNorm2d, flatten, linear). The stochastic-depth
    rate grows linearly from 0 at the first block to `stochastic_depth_prob` at the last;
    `layer_scale` is the blocks' initial per-channel scale."""
    head_keys = ("classifier.2.weight", "classifier.2.bias")

    def __init__(self, name, widths, depths, num_classes, image_size, stochastic_depth_prob,
                 layer_scale=1e-6):
        super().__init__(name, num_classes, image_size,
                         dict(stochastic_depth_prob=stochastic_depth_prob,
                              layer_scale=layer_scale))
        layers = [nn.Sequential(nn.Conv2d(3, widths[0], 4, stride=4, bias=True),
                                LayerNorm2d(widths[0], eps=1e-6))]
        total, index = sum(depths), 0
        for stage, (width, depth) in enumerate(zip(widths, depths)):
            blocks = []
            for _ in range(depth):
                # NOTE: index / (total − 1): the last block gets the full rate (EfficientNet
                # divides by the total instead)
                drop = stochastic_depth_prob * index / (total - 1.0)
                blocks.append(CNBlock(width, layer_scale, drop))
                index += 1
            layers.append(nn.Sequential(*blocks))
            if stage + 1 < len(widths):
                layers.append(nn.Sequential(LayerNorm2d(width, eps=1e-6),
                                            nn.Conv2d(width, widths[stage + 1], 2, stride=2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(LayerNorm2d(widths[-1], eps=1e-6), nn.Flatten(1),
                                        nn.Linear(widths[-1], self.out_features))
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    init.zeros_(module.bias)

    def forward(self, x):
        self.check_input(x)
        return self.classifier(self.avgpool(self.features(x)))


def _convnext(name):
    widths, depths, rate = CONVNEXT_VARIANTS[name]

    def build(num_classes=1000, image_size=(224, 224), stochastic_depth_prob=rate,
              layer_scale=1e-6):
        return ConvNeXt(name, widths, depths, num_classes, image_size, stochastic_depth_prob,
                        layer_scale)
    build.__name__ = name
    build.__doc__ = (f"{name}: widths {'-'.join(map(str, widths))}, blocks "
                     f"{'-'.join(map(str, depths))}, torchvision's layout.")
    return register_model(name, image_size=(224, 224), num_classes=1000)(build)


convnext_tiny = _convnext("convnext_tiny")
convnext_small = _convnext("convnext_small")
convnext_base = _convnext("convnext_base")
convnext_large = _convnext("convnext_large")
