"""PyTorch's results, stored by bench/torch_fixtures.py, for the parity tests (no PyTorch needed).

The file tests/fixtures/pytorch_reference.npz holds, under keys like "conv/case3/gx", the inputs
of each case and what PyTorch computed from them. Inputs too large to store (a model's weights)
are made by the recipes below, which both sides share, and the file keeps a fingerprint of them.
Outputs too large to store whole are kept as a sample of entries and projections (`summary`).
"""
import os

import numpy as np

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                    "pytorch_reference.npz")
SCRIPT = "bench/torch_fixtures.py"
SAMPLE_SIZE = 2048   # entries kept of a summarized array
PROJECTIONS = 8      # random directions it is projected on

_data = None


class MissingReference(AssertionError):
    """The fixture file or one of its keys is not there."""


def _read():
    global _data
    if _data is None:
        if not os.path.exists(PATH):
            raise MissingReference(f"{PATH} is missing: run `python {SCRIPT}` (needs PyTorch) "
                                   "to write it")
        with np.load(PATH, allow_pickle=False) as f:
            _data = {k: f[k] for k in f.files}
    return _data


def load(key):
    """The stored array under `key`; a clear error if the file or the key is missing."""
    data = _read()
    if key not in data:
        version = data.get("meta/torch_version", "an unknown version")
        raise MissingReference(f"{key!r} is not in {PATH} (written with PyTorch {version}): "
                               f"run `python {SCRIPT}` (needs PyTorch) to write it again")
    return data[key]


def has(key):
    return key in _read()


def cases(prefix):
    """The case names stored under `prefix/` ("case0", "case1", ...), for parametrize.

    Without the file this is ["missing"], so that collection goes on and the test fails with
    `load`'s message.
    """
    try:
        data = _read()
    except MissingReference:
        return ["missing"]
    names = {k.split("/")[1] for k in data if k.startswith(prefix + "/")}
    return sorted(names, key=lambda n: (len(n), n)) or ["missing"]


def config_key(**kwargs):
    """A readable key for a set of keyword arguments: "betas=(0.5, 0.9),lr=0.01"."""
    return ",".join(f"{k}={v!r}" for k, v in sorted(kwargs.items())) or "defaults"


def model_key(name, num_classes, size, **options):
    """The key prefix of a model case: "models/padua2-7-13x10-block_dropout=True"."""
    W, H = size
    return f"models/{name}-{num_classes}-{W}x{H}" + (f"-{config_key(**options)}" if options
                                                     else "")


# ---- large arrays: a sample of entries and projections ---------------------------------------
def sample_index(n):
    """The flat indices kept of an array of `n` entries (fixed for each n)."""
    return np.sort(np.random.default_rng(n).choice(n, SAMPLE_SIZE, replace=False))


def directions(n):
    """PROJECTIONS random directions in R^n, as a (PROJECTIONS, n) array (fixed for each n)."""
    return np.random.default_rng(n + 1).standard_normal((PROJECTIONS, n))


def summary(a):
    """{name: array} that stands for `a` when it is too large to store whole.

    NOTE: |r·(x - a)| <= sum_i |r_i| (atol + rtol |a_i|) whenever x and a agree entry by entry
    to (rtol, atol); so the projections are checked to that bound, which "scale" keeps.
    """
    flat = np.asarray(a, np.float64).ravel()
    r = directions(flat.size)
    return {"sample": flat[sample_index(flat.size)], "projection": r @ flat,
            "scale": np.abs(r) @ np.abs(flat), "shape": np.array(np.shape(a))}


def assert_matches(actual, key, rtol, atol=0.0, err_msg=""):
    """assert_allclose(actual, stored[key]) where the array is stored whole; for a summarized
    array the same tolerance on the sampled entries and its bound on the projections."""
    actual = np.asarray(actual)
    err_msg = err_msg or key
    if has(key) or not has(key + "/sample"):
        np.testing.assert_allclose(actual, load(key), rtol=rtol, atol=atol, err_msg=err_msg)
        return
    assert actual.shape == tuple(load(key + "/shape")), (err_msg, actual.shape)
    flat = actual.astype(np.float64).ravel()
    np.testing.assert_allclose(flat[sample_index(flat.size)], load(key + "/sample"), rtol=rtol,
                               atol=atol, err_msg=err_msg + " (sampled entries)")
    r = directions(flat.size)
    bound = rtol * load(key + "/scale") + atol * np.abs(r).sum(axis=1)
    diff = np.abs(r @ flat - load(key + "/projection"))
    assert np.all(diff <= bound), f"{err_msg}: projections differ by {diff}, allowed {bound}"


# ---- recipes for inputs too large to store ---------------------------------------------------
# The seed models compared in eval (name, num_classes, (width, height), options), and the
# seeds of their weights and batch: bench/torch_fixtures.py and tests/test_models.py share them.
MODEL_CASES = [
    ("logistic_regression", 2, (9, 7), {}),
    ("logistic_regression", 5, (9, 7), {}),
    ("dense_nn", 2, (12, 10), {}),
    ("melanoma_cnn", 2, (80, 75), {}),
    ("melanoma_cnn", 4, (72, 100), {}),
    ("baseline_cnn", 7, (24, 17), {}),
    ("padua1", 3, (9, 6), {}),
    ("padua2", 7, (13, 10), {"block_dropout": True}),
    ("padua4", 7, (25, 19), {}),
    ("padua5", 2, (32, 33), {}),
]
MODEL_SEEDS = dict(weights=3, x=0, N=3)


# ---- optimizer and schedule cases beyond the basic ones (bench/torch_fixtures.py writes them,
# tests/test_optim.py checks them)
OPTIM_MORE_CASES = [  # PyTorch's options beyond the basic optimizer cases
    ("SGD", dict(lr=0.1, momentum=0.5, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.95))),
    ("AdamW", dict(lr=0.01, amsgrad=True, maximize=True)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, maximize=True)),
]
LR_CHANGE_CASES = [  # param_groups[0]["lr"] halved and every weight_decay set after 3 steps
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("Adam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, momentum_decay=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True)),
]
LR_CHANGE = dict(at=3, factor=0.5, weight_decay=0.05)
PLATEAU_MORE_CASES = [
    dict(mode="min", factor=0.5, patience=1, threshold=0.01, threshold_mode="abs", cooldown=2,
         min_lr=0.01, eps=1e-3),
    dict(mode="max", factor=0.9, patience=3, threshold=0.05, cooldown=1, min_lr=[1e-3, 0.05]),
    dict(factor=0.1, patience=0, eps=0.05),
]


def model_weights(named_shapes, seed):
    """float64 weights for a model's state_dict, from its (name, shape) pairs in order.

    Weights Glorot-uniform, biases uniform in ±0.1; batch norm: running_mean, weight and bias
    uniform in ±0.5, running_var uniform in [0.5, 2], num_batches_tracked 0.
    """
    named_shapes = [(k, tuple(shape)) for k, shape in named_shapes]
    norms = {k.rsplit(".", 1)[0] for k, _ in named_shapes if k.endswith("running_mean")}
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in named_shapes:
        layer, kind = key.rsplit(".", 1)
        if kind == "num_batches_tracked":
            out[key] = np.zeros(shape, np.int64)
        elif kind == "running_var":
            out[key] = rng.uniform(0.5, 2.0, shape)
        elif layer in norms:
            out[key] = rng.uniform(-0.5, 0.5, shape)
        elif len(shape) >= 2:
            receptive = int(np.prod(shape[2:]))
            limit = np.sqrt(6.0 / ((shape[0] + shape[1]) * receptive))
            out[key] = rng.uniform(-limit, limit, shape)
        else:
            out[key] = rng.uniform(-0.1, 0.1, shape)
    return out


def model_input(size, N, seed):
    """A float64 batch (N, 3, H, W) of standard normal values for an image size (W, H)."""
    W, H = size
    return np.random.default_rng(seed).standard_normal((N, 3, H, W))


def fingerprint(arrays):
    """Sums that change when any of `arrays` does: to check a recipe gives what it gave."""
    return np.array([[np.sum(a, dtype=np.float64), np.abs(a).sum(dtype=np.float64),
                      (np.asarray(a, np.float64).ravel() * np.linspace(1, 2, np.size(a))).sum()]
                     for a in arrays])


def state_layout(state):
    """["name (shape)", ...] of a state_dict, in order: the architecture as PyTorch saw it."""
    return [f"{k} {tuple(v.shape)}" for k, v in state.items()]


# ---- losses and layers (bench/torch_fixtures.py writes them, tests/test_losses.py checks them)
# (name, input shape, options): a lower-case name is torch.nn.functional's, called as
# f(x, target, **options) for a loss and f(x, **options) for a layer; a capitalised one is a
# torch.nn module made with the options. Options beyond the function's own: "weight" gives the
# weight's shape, "target_shape" a target of another shape (broadcast), "dtype" the input's.
LOSS_CASES = [
    ("nll_loss", (6, 4), {}),
    ("nll_loss", (6, 4), dict(weight=(4,), ignore_index=2)),
    ("nll_loss", (6, 4), dict(weight=(4,), reduction="sum")),
    ("nll_loss", (2, 3, 4, 3), dict(weight=(3,), reduction="none")),
    ("nll_loss", (5,), dict(reduction="sum")),
    ("binary_cross_entropy", (4, 3), {}),
    ("binary_cross_entropy", (4, 3), dict(weight=(3,), reduction="sum")),
    ("binary_cross_entropy", (2, 3, 2), dict(weight=(2, 3, 2), reduction="none")),
    ("binary_cross_entropy", (5, 2), dict(dtype="float32")),
    ("mse_loss", (4, 3), {}),
    ("mse_loss", (4, 3), dict(reduction="sum")),
    ("mse_loss", (2, 3, 2), dict(weight=(2, 3, 2))),
    ("mse_loss", (4, 3), dict(target_shape=(4, 1), reduction="none")),
    ("l1_loss", (4, 3), {}),
    ("l1_loss", (4, 3), dict(weight=(4, 3), reduction="sum")),
    ("l1_loss", (2, 1, 3), dict(target_shape=(2, 3))),
]
LAYER_CASES = [
    ("leaky_relu", (3, 4, 5), {}),
    ("LeakyReLU", (3, 5), dict(negative_slope=0.2)),
    ("pad", (2, 3, 4, 5), dict(pad=(1, 2))),
    ("pad", (2, 3, 4, 5), dict(pad=(1, -1, 2, 0), value=1.5)),
    ("pad", (2, 3, 4, 5), dict(pad=(0, 1, -2, 3, 1, 1))),
    ("avg_pool2d", (2, 3, 7, 8), dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool2d", (2, 3, 7, 8), dict(kernel_size=3, stride=2, padding=1,
                                      count_include_pad=False)),
    ("avg_pool2d", (1, 2, 6, 9), dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0),
                                      count_include_pad=False)),
    ("avg_pool2d", (1, 2, 6, 6), dict(kernel_size=3, padding=1, divisor_override=5)),
    ("avg_pool2d", (3, 6, 7), dict(kernel_size=2)),
    ("AvgPool2d", (2, 2, 5, 5), dict(kernel_size=2, stride=1, dtype="float32")),
    ("adaptive_avg_pool2d", (2, 3, 7, 9), dict(output_size=(3, 4))),
    ("adaptive_avg_pool2d", (2, 3, 7, 9), dict(output_size=1)),
    ("adaptive_avg_pool2d", (2, 3, 7, 9), dict(output_size=(None, 2))),
    ("adaptive_avg_pool2d", (2, 3, 8, 6), dict(output_size=(4, 3))),
    ("AdaptiveAvgPool2d", (3, 5, 5), dict(output_size=7)),
    ("LogSoftmax", (2, 3, 2, 2), {}),
    ("LogSoftmax", (3, 4, 2), {}),
    ("LogSoftmax", (2, 3, 4), dict(dim=-1)),
]
# the loss modules whose state_dict keys are compared, with the weights they are given
LOSS_MODULE_CASES = [
    ("CrossEntropyLoss", dict(weight=(3,))),
    ("CrossEntropyLoss", {}),
    ("NLLLoss", dict(weight=(3,))),
    ("BCELoss", dict(weight=(3,))),
    ("BCEWithLogitsLoss", dict(weight=(3,), pos_weight=(3,))),
    ("BCEWithLogitsLoss", dict(pos_weight=(3,))),
    ("MSELoss", {}),
    ("L1Loss", dict(reduction="sum")),
]
