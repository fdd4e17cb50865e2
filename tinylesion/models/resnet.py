"""ResNet-18/34/50/101/152 (He et al., 2016), ResNeXt (Xie et al., 2017) and Wide ResNet
(Zagoruyko & Komodakis, 2016), with torchvision's module names and layout."""
from .. import nn
from ..nn import init
from ..nn.inference_fusion import add_relu, conv_bn
from .backbone import Backbone, init_convs_and_norms, init_linear_default
from .registry import register_model


def _conv3x3(cin, cout, stride=1, groups=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, groups=groups, bias=False)


def _conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm, plus the input (projected when its shape
    changes); ResNet-18 and -34."""
    expansion = 1

    def __init__(self, cin, width, stride=1, downsample=None, groups=1, base_width=64):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock takes groups=1 and base_width=64 only")
        self.conv1, self.bn1 = _conv3x3(cin, width, stride), nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = _conv3x3(width, width), nn.BatchNorm2d(width)
        self.downsample = downsample

    def last_norm(self):
        return self.bn2

    def forward(self, x):
        out = conv_bn(self.conv1, self.bn1, x, self.relu)
        out = conv_bn(self.conv2, self.bn2, out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return add_relu(out, shortcut, self.relu)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (carrying the stride, "ResNet v1.5"), 1×1 expand to 4 × planes, with
    batch norm, plus the input (projected when its shape changes); ResNet-50/101/152.

    ResNeXt splits the 3×3 into `groups` groups of `base_width`/64 × planes channels each;
    Wide ResNet keeps one group and widens the inner layers (base_width 128: twice)."""
    expansion = 4

    def __init__(self, cin, planes, stride=1, downsample=None, groups=1, base_width=64):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1, self.bn1 = _conv1x1(cin, width), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = _conv3x3(width, width, stride, groups), nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def last_norm(self):
        return self.bn3

    def forward(self, x):
        # (conv_bn and add_relu: the layers' own calls, folded and in place under no_grad)
        out = conv_bn(self.conv1, self.bn1, x, self.relu)
        out = conv_bn(self.conv2, self.bn2, out, self.relu)
        out = conv_bn(self.conv3, self.bn3, out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return add_relu(out, shortcut, self.relu)


class ResNet(Backbone):
    """Stem (7×7/2 conv, max-pool 3×3/2), four stages of blocks at 64, 128, 256, 512 widths
    (the last three start with stride 2), global average pooling and one linear layer `fc`.
    zero_init_residual=True starts each block's last batch-norm scale at zero; `groups` and
    `base_width` shape the bottlenecks' 3×3 convolutions (ResNeXt, Wide ResNet)."""
    head_keys = ("fc.weight", "fc.bias")

    def __init__(self, name, block, depths, num_classes, image_size, zero_init_residual=False,
                 groups=1, base_width=64):
        super().__init__(name, num_classes, image_size,
                         dict(zero_init_residual=zero_init_residual))
        self.inplanes, self.groups, self.base_width = 64, groups, base_width
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._stage(block, 64, depths[0], 1)
        self.layer2 = self._stage(block, 128, depths[1], 2)
        self.layer3 = self._stage(block, 256, depths[2], 2)
        self.layer4 = self._stage(block, 512, depths[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, self.out_features)
        init_convs_and_norms(self, "fan_out")
        init_linear_default(self.fc)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, (BasicBlock, Bottleneck)):
                    init.zeros_(module.last_norm().weight)

    def _stage(self, block, width, depth, stride):
        downsample = None
        if stride != 1 or self.inplanes != width * block.expansion:
            downsample = nn.Sequential(_conv1x1(self.inplanes, width * block.expansion, stride),
                                       nn.BatchNorm2d(width * block.expansion))
        shape = dict(groups=self.groups, base_width=self.base_width)
        blocks = [block(self.inplanes, width, stride, downsample, **shape)]
        self.inplanes = width * block.expansion
        blocks += [block(self.inplanes, width, **shape) for _ in range(1, depth)]
        return nn.Sequential(*blocks)

    def forward(self, x):
        self.check_input(x)
        x = self.maxpool(conv_bn(self.conv1, self.bn1, x, self.relu))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def _resnet(name, block, depths, groups=1, base_width=64):
    def build(num_classes=1000, image_size=(224, 224), zero_init_residual=False):
        return ResNet(name, block, depths, num_classes, image_size, zero_init_residual,
                      groups, base_width)
    build.__name__ = name
    shape = "" if (groups, base_width) == (1, 64) else \
        f" ({groups} groups of width {base_width})" if groups > 1 else \
        f" (inner width {base_width // 64}x)"
    build.__doc__ = (f"{name}: {'basic' if block is BasicBlock else 'bottleneck'} blocks "
                     f"{'-'.join(map(str, depths))}{shape}, torchvision's layout.")
    return register_model(name, image_size=(224, 224), num_classes=1000)(build)


resnet18 = _resnet("resnet18", BasicBlock, (2, 2, 2, 2))
resnet34 = _resnet("resnet34", BasicBlock, (3, 4, 6, 3))
resnet50 = _resnet("resnet50", Bottleneck, (3, 4, 6, 3))
resnet101 = _resnet("resnet101", Bottleneck, (3, 4, 23, 3))
resnet152 = _resnet("resnet152", Bottleneck, (3, 8, 36, 3))
resnext50_32x4d = _resnet("resnext50_32x4d", Bottleneck, (3, 4, 6, 3), 32, 4)
resnext101_32x8d = _resnet("resnext101_32x8d", Bottleneck, (3, 4, 23, 3), 32, 8)
resnext101_64x4d = _resnet("resnext101_64x4d", Bottleneck, (3, 4, 23, 3), 64, 4)
wide_resnet50_2 = _resnet("wide_resnet50_2", Bottleneck, (3, 4, 6, 3), 1, 128)
wide_resnet101_2 = _resnet("wide_resnet101_2", Bottleneck, (3, 4, 23, 3), 1, 128)
