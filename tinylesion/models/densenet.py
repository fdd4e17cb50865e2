"""DenseNet-121/169/201 (Huang et al., 2017), with torchvision's module names and layout."""
import re

from .. import functions as tlf
from .. import nn
from ..nn import functional as F
from ..nn import init
from .backbone import Backbone, init_convs_and_norms, init_linear_default
from .registry import register_model

# NOTE: the published weights files name a dense layer's parts "norm.1", "conv.2", ...
# (an older layout); they are read as "norm1", "conv2", ...
_OLD_LAYER_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(\w+)$")


class DenseLayer(nn.Module):
    """BN, ReLU, 1×1 conv to bn_size·growth channels, BN, ReLU, 3×3 conv to `growth`
    channels, applied to the concatenation of every earlier output of its block."""

    def __init__(self, cin, growth, bn_size, drop_rate):
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(bn_size * growth), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, inputs):
        x = tlf.cat(inputs, 1) if len(inputs) > 1 else inputs[0]
        x = self.conv1(self.relu1(self.norm1(x)))
        x = self.conv2(self.relu2(self.norm2(x)))
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x


class DenseBlock(nn.ModuleDict):
    """`depth` dense layers ("denselayer1", ...); the output concatenates the input and
    every layer's output."""

    def __init__(self, depth, cin, bn_size, growth, drop_rate):
        super().__init__()
        for i in range(depth):
            self[f"denselayer{i + 1}"] = DenseLayer(cin + i * growth, growth, bn_size, drop_rate)

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return tlf.cat(features, 1)


class Transition(nn.Sequential):
    """BN, ReLU, 1×1 conv halving the channels, 2×2 average pooling."""

    def __init__(self, cin, cout):
        super().__init__()
        self.norm, self.relu = nn.BatchNorm2d(cin), nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


class DenseNet(Backbone):
    """`features`: stem (7×7/2 conv, BN, ReLU, max-pool 3×3/2), dense blocks joined by
    transitions, a last BN; then ReLU, global average pooling and the linear `classifier`."""
    head_keys = ("classifier.weight", "classifier.bias")

    def __init__(self, name, depths, num_classes, image_size, growth=32, init_features=64,
                 bn_size=4, drop_rate=0.0):
        super().__init__(name, num_classes, image_size, dict(drop_rate=drop_rate))
        stem = [("conv0", nn.Conv2d(3, init_features, 7, stride=2, padding=3, bias=False)),
                ("norm0", nn.BatchNorm2d(init_features)), ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(3, stride=2, padding=1))]
        self.features = nn.Sequential(dict(stem))
        channels = init_features
        for i, depth in enumerate(depths):
            self.features.add_module(f"denseblock{i + 1}",
                                     DenseBlock(depth, channels, bn_size, growth, drop_rate))
            channels += depth * growth
            if i != len(depths) - 1:
                self.features.add_module(f"transition{i + 1}",
                                         Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, self.out_features)
        init_convs_and_norms(self, "fan_in")
        init_linear_default(self.classifier)
        init.zeros_(self.classifier.bias)

    def forward(self, x):
        self.check_input(x)
        x = F.relu(self.features(x))
        return self.classifier(F.adaptive_avg_pool2d(x, (1, 1)).flatten(1))

    def adapt_state_dict(self, state):
        return {_OLD_LAYER_KEY.sub(r"\1\2.\3", key): value for key, value in state.items()}


def _densenet(name, depths):
    def build(num_classes=1000, image_size=(224, 224), drop_rate=0.0):
        return DenseNet(name, depths, num_classes, image_size, drop_rate=drop_rate)
    build.__name__ = name
    build.__doc__ = f"{name}: dense blocks of {', '.join(map(str, depths))} layers, growth 32."
    return register_model(name, image_size=(224, 224), num_classes=1000)(build)


densenet121 = _densenet("densenet121", (6, 12, 24, 16))
densenet169 = _densenet("densenet169", (6, 12, 32, 32))
densenet201 = _densenet("densenet201", (6, 12, 48, 32))
