"""Blocks the MobileNets and EfficientNet share: convolution + batch norm + activation, and
squeeze-and-excitation, with torchvision's module names."""
from .. import nn
from ..nn import functional as F


class ConvNormActivation(nn.Sequential):
    """Conv2d (no bias; "same" padding for odd kernels), BatchNorm2d, then the activation
    (none when `activation` is None): entries "0", "1", "2" as in torchvision."""

    def __init__(self, cin, cout, kernel_size=3, stride=1, groups=1, activation=None,
                 norm_eps=1e-5, norm_momentum=0.1):
        layers = [nn.Conv2d(cin, cout, kernel_size, stride=stride,
                            padding=(kernel_size - 1) // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout, eps=norm_eps, momentum=norm_momentum)]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)
        self.out_channels = cout


class SqueezeExcitation(nn.Module):
    """x times a per-channel gate: global average pooling, 1×1 conv `fc1` to `squeeze`
    channels, `activation`, 1×1 conv `fc2` back, `scale_activation` (Hu et al., 2018)."""

    def __init__(self, channels, squeeze, activation, scale_activation):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation, self.scale_activation = activation(), scale_activation()

    def forward(self, x):
        scale = self.fc2(self.activation(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        return x * self.scale_activation(scale)
