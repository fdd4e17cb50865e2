"""The seed papers' scratch models, built from tinylesion.nn layers."""
from .. import nn
from ..nn.default_init import keras_initialization
from .registry import head_units, register_model

# NOTE: the builders make their layers under keras_initialization(): Glorot-uniform weights and
# zero biases, the Keras defaults the papers trained with (plain nn layers take PyTorch's).

# Every model returns logits: the loss applies the softmax (cross_entropy) or the sigmoid
# (binary_cross_entropy_with_logits); `model.binary` says which.


class Classifier(nn.Sequential):
    """A Sequential image classifier that knows its input size and its kind of output.

    Attributes: `name`, `num_classes`, `image_size` (width, height), `binary` (True when the
    output is a single logit for the positive class), `weight_decay` (the suggested L2 factor
    for the optimizer), `config` (the keyword arguments that rebuild it with `get_model`).
    """

    def __init__(self, name, layers, num_classes, image_size, binary, config, weight_decay=0.0):
        super().__init__(*layers)
        self.name, self.num_classes, self.image_size = name, num_classes, image_size
        self.binary, self.config, self.weight_decay = binary, config, weight_decay

    @property
    def head_keys(self):
        """The state_dict keys of the last linear layer: what a weights file for another
        number of classes cannot fill (finetune and load_weights drop them)."""
        last = [name for name, m in self.named_modules() if isinstance(m, nn.Linear)][-1:]
        return tuple(f"{name}.{k}" for name in last for k in ("weight", "bias"))

    def forward(self, x):
        W, H = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, H, W):
            raise ValueError(f"{self.name} was built for input (N, 3, {H}, {W}) (image size "
                             f"{W}x{H}), got {tuple(x.shape)}")
        return super().forward(x)

    def extra_repr(self):
        return f"{self.name}, image_size={self.image_size[0]}x{self.image_size[1]}"


# ---- arithmetic shape propagation ----------------------------------------------------------
def _layer_label(layer):
    """'Conv2d 3x3 stride 3', 'MaxPool2d 3x3', ... for error messages."""
    kind = type(layer).__name__
    if isinstance(layer, nn.Conv2d):
        (KH, KW), stride = layer.kernel_size, layer.stride
        return f"{kind} {KH}x{KW}" + (f" stride {stride[0]}" if stride != (1, 1) else "")
    if isinstance(layer, nn.MaxPool2d):
        (KH, KW) = nn.functional._pair(layer.kernel_size, "kernel_size")
        stride = nn.functional._pair(layer.stride, "stride")
        return f"{kind} {KH}x{KW}" + (f" stride {stride[0]}" if stride != (KH, KW) else "")
    return kind


def _output_shape(layer, shape):
    """(C, H, W) after `layer`, or None when the input is smaller than its window."""
    C, H, W = shape
    if isinstance(layer, nn.ZeroPad2d):
        p = layer.padding
        left, right, top, bottom = (p,) * 4 if isinstance(p, int) else p
        return C, H + top + bottom, W + left + right
    if isinstance(layer, nn.Conv2d):
        if layer.in_channels != C:
            raise ValueError(f"{_layer_label(layer)} expects {layer.in_channels} channels, "
                             f"gets {C}")
        (KH, KW), (SH, SW) = layer.kernel_size, layer.stride
        if layer.padding == "same":
            return layer.out_channels, H, W
        PH, PW = (0, 0) if layer.padding == "valid" else layer.padding
        if H + 2 * PH < KH or W + 2 * PW < KW:
            return None
        return layer.out_channels, (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    if isinstance(layer, nn.MaxPool2d):
        KH, KW = nn.functional._pair(layer.kernel_size, "kernel_size")
        SH, SW = nn.functional._pair(layer.stride, "stride")
        if H < KH or W < KW:
            return None
        return C, (H - KH) // SH + 1, (W - KW) // SW + 1
    return shape  # BatchNorm2d, ReLU, Dropout, ...: the shape is unchanged


def feature_shape(name, layers, image_size, channels=3):
    """(C, H, W) after the convolutional `layers` for an input of image_size (width, height);
    a ValueError names the first layer (index and kind) whose input is smaller than its window.
    """
    W, H = image_size
    shape = (channels, H, W)
    for index, layer in enumerate(layers):
        out = _output_shape(layer, shape)
        if out is None:
            raise ValueError(f"{name}: input {W}x{H} is too small: layer {index} "
                             f"({_layer_label(layer)}) gets {shape[2]}x{shape[1]}")
        shape = out
    return shape


# ---- argument checks -----------------------------------------------------------------------
def parse_image_size(value):
    """(width, height) from a pair of positive ints or a 'WxH' string such as '100x75'."""
    if isinstance(value, str):
        parts = value.lower().split("x")
        try:
            value = tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"image size must look like WIDTHxHEIGHT (e.g. 100x75), "
                             f"not {value!r}") from None
    try:
        W, H = value
        ok = all(int(v) == v and v >= 1 for v in (W, H))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"image size must be (width, height) with positive integers, "
                         f"not {value!r}")
    return int(W), int(H)


def _check_classes(name, num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"{name}: num_classes must be an integer >= 2 (2 for a binary task), "
                         f"not {num_classes!r}")
    return num_classes


def _classifier(name, features, head, num_classes, image_size, binary, config,
                weight_decay=0.0):
    """Propagate the shape through `features`, then attach Flatten and `head(flat_size)`."""
    C, H, W = feature_shape(name, features, image_size)
    layers = list(features) + [nn.Flatten()] + list(head(C * H * W))
    return Classifier(name, layers, num_classes, image_size, binary, config, weight_decay)


# ---- the models ----------------------------------------------------------------------------
@keras_initialization()
def logistic_regression(num_classes=2, image_size=(224, 224)):
    """Flatten → Linear(3·H·W, 1 if binary else num_classes): logistic/softmax regression."""
    num_classes = _check_classes("logistic_regression", num_classes)
    image_size = parse_image_size(image_size)
    out = head_units(num_classes)
    return _classifier("logistic_regression", [], lambda n: [nn.Linear(n, out)], num_classes,
                       image_size, out == 1,
                       dict(num_classes=num_classes, image_size=image_size))


DENSE_NN_WEIGHT_DECAY = 1e-3


@keras_initialization()
def dense_nn(num_classes=2, image_size=(224, 224), weight_decay=DENSE_NN_WEIGHT_DECAY):
    """Flatten → 1024 → 256 → 64 → 16 → 4 → out, ReLU between, Glorot-uniform weights.

    The output is one logit for a binary task, else num_classes. L2 regularisation is the
    optimizer's `weight_decay`: `model.weight_decay` (default 1e-3, PyTorch's convention: it
    adds 1e-3·W to the gradient, i.e. Keras' l2(5e-4)) is the suggested value.
    At 224×224×3 with a binary output it has 154,421,657 parameters.
    """
    num_classes = _check_classes("dense_nn", num_classes)
    image_size = parse_image_size(image_size)
    out = head_units(num_classes)

    def head(n):
        layers, widths = [], [n, 1024, 256, 64, 16, 4]
        for fan_in, fan_out in zip(widths, widths[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        return layers + [nn.Linear(4, out)]

    return _classifier("dense_nn", [], head, num_classes, image_size, out == 1,
                       dict(num_classes=num_classes, image_size=image_size,
                            weight_decay=weight_decay), weight_decay)


@keras_initialization()
def melanoma_cnn(num_classes=2, image_size=(224, 224)):
    """Four conv stages (7×7×32, 5×5×64, 3×3×128, 3×3×128 stride 3; each BN, ReLU, max-pool),
    then FC 512, FC 32 (ReLU) and one logit (binary) or num_classes logits."""
    num_classes = _check_classes("melanoma_cnn", num_classes)
    image_size = parse_image_size(image_size)
    out = head_units(num_classes)
    features = [
        nn.ZeroPad2d(3), nn.Conv2d(3, 32, 7), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.ZeroPad2d(2), nn.Conv2d(32, 64, 5), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.ZeroPad2d(1), nn.Conv2d(64, 128, 3), nn.BatchNorm2d(128), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(128, 128, 3, stride=3), nn.BatchNorm2d(128), nn.ReLU(), nn.MaxPool2d(3, 3),
    ]

    def head(n):
        return [nn.Linear(n, 512), nn.ReLU(), nn.Linear(512, 32), nn.ReLU(),
                nn.Linear(32, out)]

    return _classifier("melanoma_cnn", features, head, num_classes, image_size, out == 1,
                       dict(num_classes=num_classes, image_size=image_size))


@keras_initialization()
def baseline_cnn(num_classes=7, image_size=(128, 128)):
    """Conv 3×3 ×16, ×32, ×64 (same padding, ReLU), each followed by max-pool 2; dense 512
    (ReLU); dropout 0.5; dense num_classes (a softmax head even for two classes)."""
    num_classes = _check_classes("baseline_cnn", num_classes)
    image_size = parse_image_size(image_size)
    features, channels = [], 3
    for width in (16, 32, 64):
        features += [nn.Conv2d(channels, width, 3, padding="same"), nn.ReLU(),
                     nn.MaxPool2d(2)]
        channels = width

    def head(n):
        return [nn.Linear(n, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, num_classes)]

    return _classifier("baseline_cnn", features, head, num_classes, image_size, False,
                       dict(num_classes=num_classes, image_size=image_size))


PADUA_CHANNELS = (32, 64, 128, 256, 512)


@keras_initialization()
def padua_cnn(blocks=4, num_classes=7, image_size=(100, 75), block_dropout=False):
    """`blocks` (1..5) blocks of two 3×3 same-padding convs (ReLU) and a max-pool 2, with
    32, 64, 128, 256, 512 channels; FC 64·2^(blocks−1) (ReLU); dropout 0.5; dense num_classes.

    block_dropout=True adds Dropout after block k (1-based) with the rising rate 0.1·k
    (0.1, 0.2, ..., 0.5). The head is a softmax head even for two classes.
    """
    if isinstance(blocks, bool) or not isinstance(blocks, int) or not 1 <= blocks <= 5:
        raise ValueError(f"padua_cnn: blocks must be an integer from 1 to 5, not {blocks!r}")
    name = f"padua{blocks}"
    num_classes = _check_classes(name, num_classes)
    image_size = parse_image_size(image_size)
    features, channels = [], 3
    for k, width in enumerate(PADUA_CHANNELS[:blocks], start=1):
        features += [nn.Conv2d(channels, width, 3, padding="same"), nn.ReLU(),
                     nn.Conv2d(width, width, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2)]
        if block_dropout:
            features.append(nn.Dropout(round(0.1 * k, 1)))
        channels = width
    hidden = 64 * 2 ** (blocks - 1)

    def head(n):
        return [nn.Linear(n, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, num_classes)]

    return _classifier(name, features, head, num_classes, image_size, False,
                       dict(num_classes=num_classes, image_size=image_size,
                            block_dropout=block_dropout))


# ---- their registration --------------------------------------------------------------------
register_model("logistic_regression", "flatten → one linear layer", num_classes=2,
               image_size=(224, 224))(logistic_regression)
register_model("dense_nn", "flatten → 1024 → 256 → 64 → 16 → 4 → out, L2", num_classes=2,
               image_size=(224, 224))(dense_nn)
register_model("melanoma_cnn", "4 conv stages with batch norm, FC 512, FC 32", num_classes=2,
               image_size=(224, 224))(melanoma_cnn)
register_model("baseline_cnn", "conv 16, 32, 64; dense 512; dropout 0.5", num_classes=7,
               image_size=(128, 128))(baseline_cnn)
for _blocks in range(1, 6):
    register_model(f"padua{_blocks}", f"{_blocks} block(s) of two 3x3 convs and a max-pool; "
                   f"FC {64 * 2 ** (_blocks - 1)}; dropout 0.5", fixed=dict(blocks=_blocks),
                   num_classes=7, image_size=(100, 75))(padua_cnn)
