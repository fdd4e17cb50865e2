"""The seed models written again in PyTorch, layer for layer, so that state_dict names match."""

# models whose two-class version has one output (a logit for binary cross-entropy)
BINARY_HEADED = {"logistic_regression", "dense_nn", "melanoma_cnn"}


def torch_model(name, num_classes, size, block_dropout=False):
    """PyTorch's twin of `tinylesion.models.get_model(name, num_classes=..., image_size=size)`.

    `size` is (width, height); `block_dropout` is the padua models' option. Written from the
    papers' description, independently of tinylesion's code. Needs PyTorch.
    """
    import torch
    tnn = torch.nn
    W, H = size
    out = 1 if num_classes == 2 and name in BINARY_HEADED else num_classes
    if name == "logistic_regression":
        return tnn.Sequential(tnn.Flatten(), tnn.Linear(3 * H * W, out))
    if name == "dense_nn":
        widths = [3 * H * W, 1024, 256, 64, 16, 4]
        layers = [tnn.Flatten()]
        for a, b in zip(widths, widths[1:]):
            layers += [tnn.Linear(a, b), tnn.ReLU()]
        return tnn.Sequential(*layers, tnn.Linear(4, out))
    if name == "melanoma_cnn":
        h, w = H, W
        for pad, k in ((3, 7), (2, 5), (1, 3)):
            h, w = (h + 2 * pad - k + 1) // 2, (w + 2 * pad - k + 1) // 2
        h, w = ((h - 3) // 3 + 1) // 3, ((w - 3) // 3 + 1) // 3
        return tnn.Sequential(
            tnn.ZeroPad2d(3), tnn.Conv2d(3, 32, 7), tnn.BatchNorm2d(32), tnn.ReLU(),
            tnn.MaxPool2d(2),
            tnn.ZeroPad2d(2), tnn.Conv2d(32, 64, 5), tnn.BatchNorm2d(64), tnn.ReLU(),
            tnn.MaxPool2d(2),
            tnn.ZeroPad2d(1), tnn.Conv2d(64, 128, 3), tnn.BatchNorm2d(128), tnn.ReLU(),
            tnn.MaxPool2d(2),
            tnn.Conv2d(128, 128, 3, stride=3), tnn.BatchNorm2d(128), tnn.ReLU(),
            tnn.MaxPool2d(3, 3), tnn.Flatten(),
            tnn.Linear(128 * h * w, 512), tnn.ReLU(), tnn.Linear(512, 32), tnn.ReLU(),
            tnn.Linear(32, out))
    if name == "baseline_cnn":
        layers, c = [], 3
        for width in (16, 32, 64):
            layers += [tnn.Conv2d(c, width, 3, padding="same"), tnn.ReLU(), tnn.MaxPool2d(2)]
            c = width
        return tnn.Sequential(*layers, tnn.Flatten(), tnn.Linear(64 * (H // 8) * (W // 8), 512),
                              tnn.ReLU(), tnn.Dropout(0.5), tnn.Linear(512, num_classes))
    if name in ("padua1", "padua2", "padua3", "padua4", "padua5"):
        blocks = int(name[-1])
        layers, c, h, w = [], 3, H, W
        for k, width in enumerate((32, 64, 128, 256, 512)[:blocks], start=1):
            layers += [tnn.Conv2d(c, width, 3, padding="same"), tnn.ReLU(),
                       tnn.Conv2d(width, width, 3, padding="same"), tnn.ReLU(),
                       tnn.MaxPool2d(2)]
            if block_dropout:
                layers.append(tnn.Dropout(0.1 * k))
            c, h, w = width, h // 2, w // 2
        hidden = 64 * 2 ** (blocks - 1)
        return tnn.Sequential(*layers, tnn.Flatten(), tnn.Linear(c * h * w, hidden), tnn.ReLU(),
                              tnn.Dropout(0.5), tnn.Linear(hidden, num_classes))
    raise ValueError(f"no PyTorch version of {name!r}")
