"""EfficientNet-B0 (Tan & Le, 2019), with torchvision's module names and layout."""
import math

from .. import nn
from ..nn import init
from .backbone import Backbone, init_convs_and_norms, make_divisible
from .blocks import ConvNormActivation, SqueezeExcitation
from .registry import register_model

# (expansion, kernel, first stride, input channels, output channels, blocks) per stage
EFFICIENTNET_B0_STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
                          (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
                          (6, 3, 1, 192, 320, 1))


class MBConv(nn.Module):
    """1×1 expansion (when expand > 1), k×k depthwise with the stride, squeeze-and-excitation
    (a quarter of the input width, SiLU, sigmoid gate), 1×1 linear projection; when the shapes
    agree the block's output, randomly dropped in training (stochastic depth), is added to
    the input."""

    def __init__(self, cin, cout, kernel, stride, expand, drop_prob):
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        hidden = make_divisible(cin * expand, 8)
        layers = []
        if hidden != cin:
            layers.append(ConvNormActivation(cin, hidden, 1, activation=nn.SiLU))
        layers += [ConvNormActivation(hidden, hidden, kernel, stride, groups=hidden,
                                      activation=nn.SiLU),
                   SqueezeExcitation(hidden, max(1, cin // 4), nn.SiLU, nn.Sigmoid),
                   ConvNormActivation(hidden, cout, 1, activation=None)]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = nn.StochasticDepth(drop_prob, "row")
        self.out_channels = cout

    def forward(self, x):
        out = self.block(x)
        return self.stochastic_depth(out) + x if self.use_res_connect else out


class EfficientNet(Backbone):
    """`features` (3×3/2 stem of 32 with SiLU, seven stages of MBConv blocks, 1×1 to 1280),
    global average pooling, `classifier` (dropout, linear). The stochastic-depth rate grows
    linearly from 0 to `stochastic_depth_prob` over the blocks."""
    head_keys = ("classifier.1.weight", "classifier.1.bias")

    def __init__(self, name, stages, num_classes, image_size, dropout=0.2,
                 stochastic_depth_prob=0.2):
        super().__init__(name, num_classes, image_size,
                         dict(dropout=dropout, stochastic_depth_prob=stochastic_depth_prob))
        layers = [ConvNormActivation(3, stages[0][3], 3, 2, activation=nn.SiLU)]
        total, index = sum(stage[5] for stage in stages), 0
        for expand, kernel, stride, cin, cout, blocks in stages:
            stage = []
            for i in range(blocks):
                drop = stochastic_depth_prob * index / total
                stage.append(MBConv(cin if i == 0 else cout, cout, kernel,
                                    stride if i == 0 else 1, expand, drop))
                index += 1
            layers.append(nn.Sequential(*stage))
        last = 4 * stages[-1][4]
        layers.append(ConvNormActivation(stages[-1][4], last, 1, activation=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True),
                                        nn.Linear(last, self.out_features))
        init_convs_and_norms(self, "fan_out")
        for module in self.modules():
            if isinstance(module, nn.Linear):  # NOTE: U(±1/√fan_out), as the paper's code
                bound = 1.0 / math.sqrt(module.out_features)
                init.uniform_(module.weight, -bound, bound)
                init.zeros_(module.bias)

    def forward(self, x):
        self.check_input(x)
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


@register_model("efficientnet_b0", image_size=(224, 224), num_classes=1000)
def efficientnet_b0(num_classes=1000, image_size=(224, 224), dropout=0.2,
                    stochastic_depth_prob=0.2):
    """efficientnet_b0: MBConv stages with squeeze-and-excitation, width and depth 1.0."""
    return EfficientNet("efficientnet_b0", EFFICIENTNET_B0_STAGES, num_classes, image_size,
                        dropout, stochastic_depth_prob)
