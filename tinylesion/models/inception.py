"""Inception v3 (Szegedy et al., 2016) at 299×299, with torchvision's module names and layout."""
from collections import namedtuple

from .. import functions as tlf
from .. import nn
from ..nn import functional as F
from ..nn import init
from .backbone import Backbone, init_batch_norm
from .registry import register_model

InceptionOutputs = namedtuple("InceptionOutputs", ["logits", "aux_logits"])

# the ImageNet statistics the published weights were trained with, and the [-1, 1] scaling
# they are turned into when transform_input=True
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001), ReLU."""

    def __init__(self, cin, cout, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding,
                              bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _pool_branch(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1)


class InceptionA(nn.Module):
    """35×35 module: 1×1; 1×1→5×5; 1×1→3×3→3×3; avg-pool→1×1 (pool_features)."""

    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        return tlf.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_pool_branch(x))], 1)


class InceptionB(nn.Module):
    """Grid reduction 35→17: 3×3/2; 1×1→3×3→3×3/2; max-pool 3×3/2."""

    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        return tlf.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """17×17 module with factorised 7×7 convolutions (1×7 and 7×1) of `c7` channels."""

    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d7 = x
        for i in range(1, 6):
            d7 = getattr(self, f"branch7x7dbl_{i}")(d7)
        return tlf.cat([self.branch1x1(x), b7, d7, self.branch_pool(_pool_branch(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17→8: 1×1→3×3/2; 1×1→1×7→7×1→3×3/2; max-pool 3×3/2."""

    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return tlf.cat([self.branch3x3_2(self.branch3x3_1(x)), b7,
                        F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8×8 module with the 3×3 convolutions split into parallel 1×3 and 3×1."""

    def __init__(self, cin):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = tlf.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d3 = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d3 = tlf.cat([self.branch3x3dbl_3a(d3), self.branch3x3dbl_3b(d3)], 1)
        return tlf.cat([self.branch1x1(x), b3, d3, self.branch_pool(_pool_branch(x))], 1)


class InceptionAux(nn.Module):
    """The auxiliary classifier on the 17×17 grid: avg-pool 5×5/3, 1×1 (128), 5×5 (768),
    global average pooling, linear `fc`."""

    def __init__(self, cin, out_features):
        super().__init__()
        self.conv0 = BasicConv2d(cin, 128, 1)
        self.conv1 = BasicConv2d(128, 768, 5)
        self.fc = nn.Linear(768, out_features)

    def forward(self, x):
        x = self.conv1(self.conv0(F.avg_pool2d(x, 5, stride=3)))
        return self.fc(F.adaptive_avg_pool2d(x, (1, 1)).flatten(1))


class Inception3(Backbone):
    """Inception v3. aux_logits=True adds the auxiliary classifier `AuxLogits`, whose logits
    come with the main ones (as InceptionOutputs) in training mode only; transform_input=True
    turns an input normalised with the ImageNet mean and std into the [-1, 1] scaling the
    published weights expect."""
    min_size = 75
    aux_min_size = 299  # the auxiliary head (pool 5×5/3, then a 5×5 conv) needs the 17×17 grid
    head_keys = ("fc.weight", "fc.bias", "AuxLogits.fc.weight", "AuxLogits.fc.bias")

    def __init__(self, num_classes, image_size, aux_logits=False, transform_input=False,
                 dropout=0.5):
        super().__init__("inception_v3", num_classes, image_size,
                         dict(aux_logits=aux_logits, transform_input=transform_input,
                              dropout=dropout))
        self.aux_logits, self.transform_input = bool(aux_logits), bool(transform_input)
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool1 = nn.MaxPool2d(3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.maxpool2 = nn.MaxPool2d(3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.AuxLogits = InceptionAux(768, self.out_features) if self.aux_logits else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(2048, self.out_features)
        self._init_weights()

    def _init_weights(self):
        # NOTE: weights of convolutions and linear layers are N(0, std²) truncated to [-2, 2]
        # (std 0.1; 0.01 for the auxiliary 5×5 and 0.001 for its fc); linear biases keep
        # PyTorch's default U(±1/√fan_in).
        special = {}
        if self.AuxLogits is not None:
            special = {id(self.AuxLogits.conv1.conv): 0.01, id(self.AuxLogits.fc): 0.001}
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                init.trunc_normal_(module.weight, 0.0, special.get(id(module), 0.1), -2.0, 2.0)
                if isinstance(module, nn.Linear):
                    bound = module.in_features ** -0.5
                    init.uniform_(module.bias, -bound, bound)
            elif isinstance(module, nn.BatchNorm2d):
                init_batch_norm(module)

    def _transform(self, x):
        channels = [x[:, c:c + 1] * (IMAGENET_STD[c] / 0.5) + (IMAGENET_MEAN[c] - 0.5) / 0.5
                    for c in range(3)]
        return tlf.cat(channels, 1)

    def forward(self, x):
        self.check_input(x)
        if self.AuxLogits is not None and self.training and min(x.shape[2:]) < self.aux_min_size:
            raise ValueError(f"inception_v3 with aux_logits takes input of at least "
                             f"{self.aux_min_size}x{self.aux_min_size} in training mode, got "
                             f"{tuple(x.shape)}")
        if self.transform_input:
            x = self._transform(x)
        x = self.maxpool1(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))))
        x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e"):
            x = getattr(self, f"Mixed_{name}")(x)
        aux = self.AuxLogits(x) if self.AuxLogits is not None and self.training else None
        for name in ("7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        x = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        return InceptionOutputs(x, aux) if aux is not None else x

    def adapt_state_dict(self, state):
        """A file with the auxiliary classifier loads into a model without one: its
        AuxLogits entries are set aside."""
        if self.AuxLogits is None:
            return {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
        return state


@register_model("inception_v3", image_size=(299, 299), num_classes=1000)
def inception_v3(num_classes=1000, image_size=(299, 299), aux_logits=False,
                 transform_input=False, dropout=0.5):
    """inception_v3: Inception v3 at 299×299 (at least 75×75), auxiliary head optional."""
    return Inception3(num_classes, image_size, aux_logits, transform_input, dropout)
