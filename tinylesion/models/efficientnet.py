"""EfficientNet-B0 to B7 (Tan & Le, 2019), with torchvision's module names and layout."""
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

# variant: (width multiplier, depth multiplier, dropout, batch norm eps, batch norm momentum),
# torchvision's (B5 to B7 were trained with TensorFlow's batch norm settings)
EFFICIENTNET_VARIANTS = {
    "efficientnet_b0": (1.0, 1.0, 0.2, 1e-5, 0.1), "efficientnet_b1": (1.0, 1.1, 0.2, 1e-5, 0.1),
    "efficientnet_b2": (1.1, 1.2, 0.3, 1e-5, 0.1), "efficientnet_b3": (1.2, 1.4, 0.3, 1e-5, 0.1),
    "efficientnet_b4": (1.4, 1.8, 0.4, 1e-5, 0.1),
    "efficientnet_b5": (1.6, 2.2, 0.4, 1e-3, 0.01),
    "efficientnet_b6": (1.8, 2.6, 0.5, 1e-3, 0.01),
    "efficientnet_b7": (2.0, 3.1, 0.5, 1e-3, 0.01)}


def scaled_stages(width, depth, stages=EFFICIENTNET_B0_STAGES):
    """B0's stages with the channels times `width` (to a multiple of 8, make_divisible) and
    the blocks per stage times `depth`, rounded up (compound scaling)."""
    return tuple((expand, kernel, stride, make_divisible(cin * width, 8),
                  make_divisible(cout * width, 8), int(math.ceil(blocks * depth)))
                 for expand, kernel, stride, cin, cout, blocks in stages)


class MBConv(nn.Module):
    """1×1 expansion (when expand > 1), k×k depthwise with the stride, squeeze-and-excitation
    (a quarter of the input width, SiLU, sigmoid gate), 1×1 linear projection; when the shapes
    agree the block's output, randomly dropped in training (stochastic depth), is added to
    the input."""

    def __init__(self, cin, cout, kernel, stride, expand, drop_prob, norm=None):
        super().__init__()
        norm = norm or {}
        self.use_res_connect = stride == 1 and cin == cout
        hidden = make_divisible(cin * expand, 8)
        layers = []
        if hidden != cin:
            layers.append(ConvNormActivation(cin, hidden, 1, activation=nn.SiLU, **norm))
        layers += [ConvNormActivation(hidden, hidden, kernel, stride, groups=hidden,
                                      activation=nn.SiLU, **norm),
                   SqueezeExcitation(hidden, max(1, cin // 4), nn.SiLU, nn.Sigmoid),
                   ConvNormActivation(hidden, cout, 1, activation=None, **norm)]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = nn.StochasticDepth(drop_prob, "row")
        self.out_channels = cout

    def forward(self, x):
        out = self.block(x)
        return self.stochastic_depth(out) + x if self.use_res_connect else out


class EfficientNet(Backbone):
    """`features` (3×3/2 stem with SiLU, seven stages of MBConv blocks, 1×1 to four times the
    last stage's width: 1280 for B0), global average pooling, `classifier` (dropout, linear).
    The stochastic-depth rate grows linearly from 0 to `stochastic_depth_prob` over the
    blocks; `norm_eps` and `norm_momentum` are every batch norm's."""
    head_keys = ("classifier.1.weight", "classifier.1.bias")

    def __init__(self, name, stages, num_classes, image_size, dropout=0.2,
                 stochastic_depth_prob=0.2, norm_eps=1e-5, norm_momentum=0.1):
        super().__init__(name, num_classes, image_size,
                         dict(dropout=dropout, stochastic_depth_prob=stochastic_depth_prob))
        norm = dict(norm_eps=norm_eps, norm_momentum=norm_momentum)
        layers = [ConvNormActivation(3, stages[0][3], 3, 2, activation=nn.SiLU, **norm)]
        total, index = sum(stage[5] for stage in stages), 0
        for expand, kernel, stride, cin, cout, blocks in stages:
            stage = []
            for i in range(blocks):
                drop = stochastic_depth_prob * index / total
                stage.append(MBConv(cin if i == 0 else cout, cout, kernel,
                                    stride if i == 0 else 1, expand, drop, norm))
                index += 1
            layers.append(nn.Sequential(*stage))
        last = 4 * stages[-1][4]
        layers.append(ConvNormActivation(stages[-1][4], last, 1, activation=nn.SiLU, **norm))
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


def _efficientnet(name, image_size):
    width, depth, dropout, eps, momentum = EFFICIENTNET_VARIANTS[name]

    def build(num_classes=1000, image_size=image_size, dropout=dropout,
              stochastic_depth_prob=0.2):
        return EfficientNet(name, scaled_stages(width, depth), num_classes, image_size,
                            dropout, stochastic_depth_prob, eps, momentum)
    build.__name__ = name
    build.__doc__ = (f"{name}: MBConv stages with squeeze-and-excitation, width {width} and "
                     f"depth {depth}, trained at {image_size[0]}x{image_size[1]}.")
    return register_model(name, image_size=image_size, num_classes=1000)(build)


# the resolution of each variant's published weights (torchvision's crop sizes)
efficientnet_b0 = _efficientnet("efficientnet_b0", (224, 224))
efficientnet_b1 = _efficientnet("efficientnet_b1", (240, 240))
efficientnet_b2 = _efficientnet("efficientnet_b2", (288, 288))
efficientnet_b3 = _efficientnet("efficientnet_b3", (300, 300))
efficientnet_b4 = _efficientnet("efficientnet_b4", (380, 380))
efficientnet_b5 = _efficientnet("efficientnet_b5", (456, 456))
efficientnet_b6 = _efficientnet("efficientnet_b6", (528, 528))
efficientnet_b7 = _efficientnet("efficientnet_b7", (600, 600))
