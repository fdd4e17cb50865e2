"""MobileNetV2 (Sandler et al., 2018) and MobileNetV3 large and small (Howard et al., 2019),
with torchvision's module names and layout."""
from .. import nn
from ..nn import init
from .backbone import Backbone, init_convs_and_norms, make_divisible
from .blocks import ConvNormActivation, SqueezeExcitation
from .registry import register_model


def _init_mobilenet(model):
    """Convolutions He-normal (fan_out), zero biases; batch norm 1, 0; linear N(0, 0.01²), 0."""
    init_convs_and_norms(model, "fan_out")
    for module in model.modules():
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, 0.0, 0.01)
            init.zeros_(module.bias)


# ---- MobileNetV2 ---------------------------------------------------------------------------
class InvertedResidual(nn.Module):
    """1×1 expansion by `expand` (none when 1), 3×3 depthwise with the stride, 1×1 linear
    projection, each with batch norm (ReLU6 after the first two); the input is added when the
    shapes agree."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res_connect = stride == 1 and cin == cout
        layers = [ConvNormActivation(cin, hidden, 1, activation=nn.ReLU6)] if expand != 1 else []
        layers += [ConvNormActivation(hidden, hidden, 3, stride, groups=hidden,
                                      activation=nn.ReLU6),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = cout

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


# (expansion t, channels c, repeats n, first stride s)
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV2(Backbone):
    """`features` (3×3/2 stem of 32, inverted residual stages, 1×1 to 1280), global average
    pooling, `classifier` (dropout, linear)."""
    head_keys = ("classifier.1.weight", "classifier.1.bias")

    def __init__(self, num_classes, image_size, dropout=0.2):
        super().__init__("mobilenet_v2", num_classes, image_size, dict(dropout=dropout))
        channels, last = 32, 1280
        layers = [ConvNormActivation(3, channels, 3, 2, activation=nn.ReLU6)]
        for t, c, n, s in MOBILENET_V2_STAGES:
            out = make_divisible(c, 8)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        layers.append(ConvNormActivation(channels, last, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(last, self.out_features))
        _init_mobilenet(self)

    def forward(self, x):
        self.check_input(x)
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(x.flatten(1))


@register_model("mobilenet_v2", image_size=(224, 224), num_classes=1000)
def mobilenet_v2(num_classes=1000, image_size=(224, 224), dropout=0.2):
    """mobilenet_v2: inverted residuals with linear bottlenecks, width 1.0."""
    return MobileNetV2(num_classes, image_size, dropout)


# ---- MobileNetV3 ---------------------------------------------------------------------------
class BlockConfig:
    """One MobileNetV3 block: input, kernel, expanded and output channels, squeeze-and-
    excitation or not, "RE" (ReLU) or "HS" (hard swish), stride."""

    def __init__(self, cin, kernel, expanded, cout, use_se, activation, stride):
        self.cin, self.kernel, self.stride = make_divisible(cin), kernel, stride
        self.expanded, self.cout = make_divisible(expanded), make_divisible(cout)
        self.use_se, self.use_hs = use_se, activation == "HS"


class InvertedResidualV3(nn.Module):
    """1×1 expansion (when it widens), k×k depthwise with the stride, optional squeeze-and-
    excitation (hard-sigmoid gate), 1×1 linear projection; the input is added when the shapes
    agree. Batch norm eps 0.001, momentum 0.01."""

    def __init__(self, cfg):
        super().__init__()
        act = nn.Hardswish if cfg.use_hs else nn.ReLU
        norm = dict(norm_eps=0.001, norm_momentum=0.01)
        self.use_res_connect = cfg.stride == 1 and cfg.cin == cfg.cout
        layers = []
        if cfg.expanded != cfg.cin:
            layers.append(ConvNormActivation(cfg.cin, cfg.expanded, 1, activation=act, **norm))
        layers.append(ConvNormActivation(cfg.expanded, cfg.expanded, cfg.kernel, cfg.stride,
                                         groups=cfg.expanded, activation=act, **norm))
        if cfg.use_se:
            layers.append(SqueezeExcitation(cfg.expanded, make_divisible(cfg.expanded // 4, 8),
                                            nn.ReLU, nn.Hardsigmoid))
        layers.append(ConvNormActivation(cfg.expanded, cfg.cout, 1, activation=None, **norm))
        self.block = nn.Sequential(*layers)
        self.out_channels = cfg.cout

    def forward(self, x):
        return x + self.block(x) if self.use_res_connect else self.block(x)


MOBILENET_V3_LARGE = (
    (16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2),
    (24, 3, 72, 24, False, "RE", 1), (24, 5, 72, 40, True, "RE", 2),
    (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1))
MOBILENET_V3_SMALL = (
    (16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2),
    (24, 3, 88, 24, False, "RE", 1), (24, 5, 96, 40, True, "HS", 2),
    (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1),
    (48, 5, 288, 96, True, "HS", 2), (96, 5, 576, 96, True, "HS", 1),
    (96, 5, 576, 96, True, "HS", 1))


class MobileNetV3(Backbone):
    """`features` (3×3/2 stem of 16 with hard swish, the blocks, 1×1 to six times the last
    block's width), global average pooling, `classifier` (linear to `last`, hard swish,
    dropout, linear)."""
    head_keys = ("classifier.3.weight", "classifier.3.bias")

    def __init__(self, name, table, last, num_classes, image_size, dropout=0.2):
        super().__init__(name, num_classes, image_size, dict(dropout=dropout))
        norm = dict(norm_eps=0.001, norm_momentum=0.01)
        configs = [BlockConfig(*row) for row in table]
        layers = [ConvNormActivation(3, configs[0].cin, 3, 2, activation=nn.Hardswish, **norm)]
        layers += [InvertedResidualV3(cfg) for cfg in configs]
        width = 6 * configs[-1].cout
        layers.append(ConvNormActivation(configs[-1].cout, width, 1, activation=nn.Hardswish,
                                         **norm))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(width, last), nn.Hardswish(inplace=True),
                                        nn.Dropout(p=dropout, inplace=True),
                                        nn.Linear(last, self.out_features))
        _init_mobilenet(self)

    def forward(self, x):
        self.check_input(x)
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


@register_model("mobilenet_v3_large", image_size=(224, 224), num_classes=1000)
def mobilenet_v3_large(num_classes=1000, image_size=(224, 224), dropout=0.2):
    """mobilenet_v3_large: 15 blocks, head 1280."""
    return MobileNetV3("mobilenet_v3_large", MOBILENET_V3_LARGE, 1280, num_classes, image_size,
                       dropout)


@register_model("mobilenet_v3_small", image_size=(224, 224), num_classes=1000)
def mobilenet_v3_small(num_classes=1000, image_size=(224, 224), dropout=0.2):
    """mobilenet_v3_small: 11 blocks, head 1024."""
    return MobileNetV3("mobilenet_v3_small", MOBILENET_V3_SMALL, 1024, num_classes, image_size,
                       dropout)
