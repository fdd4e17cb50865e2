"""What the ImageNet backbones share: the model attributes, the input check, their init."""
import math

from .. import nn
from ..nn import init
from .papers import parse_image_size
from .registry import head_units


def check_classes(name, num_classes):
    """num_classes as an int >= 2, or a ValueError naming the model."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"{name}: num_classes must be an integer >= 2 (2 for a binary task), "
                         f"not {num_classes!r}")
    return num_classes


class Backbone(nn.Module):
    """Base of the ImageNet networks: the attributes the training loop and the examples read.

    `name`, `num_classes`, `image_size` (width, height: the size it is trained at; any input
    at least `min_size` on each side is accepted, as the global pooling before the head
    makes the output size independent of it), `binary` (one logit for two classes),
    `weight_decay` (0: the optimizer's flag decides), `config` (the keyword arguments that
    rebuild it with get_model), and `head_keys` (the state_dict keys of the classifier that
    a weights file for other classes cannot fill).
    """
    min_size = 32
    head_keys = ()

    def __init__(self, name, num_classes, image_size, config):
        super().__init__()
        self.num_classes = check_classes(name, num_classes)
        W, H = self.image_size = parse_image_size(image_size)
        if W < self.min_size or H < self.min_size:
            raise ValueError(f"{name}: input {W}x{H} is too small: it needs at least "
                             f"{self.min_size}x{self.min_size}")
        for key in ("dropout", "attention_dropout", "drop_rate", "stochastic_depth_prob"):
            rate = config.get(key)
            if rate is not None and (isinstance(rate, bool) or not (
                    isinstance(rate, (int, float)) and 0 <= rate <= 1)):
                raise ValueError(f"{name}: {key} must be a probability in [0, 1], not {rate!r}")
        self.out_features = head_units(num_classes)
        self.name, self.binary, self.weight_decay = name, self.out_features == 1, 0.0
        self.config = dict(num_classes=num_classes, image_size=self.image_size, **config)

    def check_input(self, x):
        """A ValueError unless x is (N, 3, H, W) with H and W at least min_size."""
        if x.ndim != 4 or x.shape[1] != 3 or min(x.shape[2:]) < self.min_size:
            raise ValueError(f"{self.name} takes input (N, 3, H, W) with H, W >= "
                             f"{self.min_size}, got {tuple(x.shape)}")

    def adapt_state_dict(self, state):
        """The state_dict of a weights file in this model's key names (older key layouts
        renamed, parts the model does not have removed); the identity by default."""
        return state

    def extra_repr(self):
        return f"{self.name}, image_size={self.image_size[0]}x{self.image_size[1]}"


# ---- the initialisations the ImageNet networks were published with -------------------------
def init_linear_default(layer):
    """PyTorch's default Linear init: weight and bias uniform in ±1/√fan_in."""
    bound = 1.0 / math.sqrt(layer.in_features)
    init.uniform_(layer.weight, -bound, bound)
    if layer.bias is not None:
        init.uniform_(layer.bias, -bound, bound)


def init_batch_norm(layer):
    """Batch norm: scale 1, shift 0."""
    init.ones_(layer.weight)
    init.zeros_(layer.bias)


def init_convs_and_norms(model, conv_mode="fan_out"):
    """Convolutions He-normal (kaiming_normal_ for ReLU, fan_out or fan_in) with zero biases,
    batch norms 1 and 0; other layers are left to the caller."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode=conv_mode, nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            init_batch_norm(module)


def make_divisible(value, divisor=8, min_value=None):
    """The channel count nearest `value` that is a multiple of `divisor`, never below
    90 % of it (the MobileNet rule)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded
