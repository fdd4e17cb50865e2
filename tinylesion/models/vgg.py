"""VGG-16, VGG-16 with batch norm and VGG-19 (Simonyan & Zisserman, 2015), torchvision's layout."""
from .. import nn
from ..nn import init
from .backbone import Backbone, init_convs_and_norms
from .registry import register_model

# the 3×3 convolutions' widths, "M" a 2×2 max-pool: configurations D (16) and E (19)
LAYOUTS = {
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
         512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"),
}


def _features(layout, batch_norm):
    layers, channels = [], 3
    for width in layout:
        if width == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
            continue
        layers.append(nn.Conv2d(channels, width, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        channels = width
    return nn.Sequential(*layers)


class VGG(Backbone):
    """`features` (3×3 convolutions and five max-pools), average pooling to 7×7, and the
    classifier FC 4096, ReLU, dropout, FC 4096, ReLU, dropout, FC out."""
    head_keys = ("classifier.6.weight", "classifier.6.bias")

    def __init__(self, name, depth, batch_norm, num_classes, image_size, dropout=0.5):
        super().__init__(name, num_classes, image_size, dict(dropout=dropout))
        self.features = _features(LAYOUTS[depth], batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, self.out_features))
        init_convs_and_norms(self, "fan_out")
        for module in self.classifier:
            if isinstance(module, nn.Linear):
                init.normal_(module.weight, 0.0, 0.01)
                init.zeros_(module.bias)

    def forward(self, x):
        self.check_input(x)
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def _vgg(name, depth, batch_norm):
    def build(num_classes=1000, image_size=(224, 224), dropout=0.5):
        return VGG(name, depth, batch_norm, num_classes, image_size, dropout)
    build.__name__ = name
    build.__doc__ = f"{name}: VGG {depth}{' with batch norm' if batch_norm else ''}."
    return register_model(name, image_size=(224, 224), num_classes=1000)(build)


vgg16 = _vgg("vgg16", 16, False)
vgg16_bn = _vgg("vgg16_bn", 16, True)
vgg19 = _vgg("vgg19", 19, False)
