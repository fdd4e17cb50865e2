"""Tests of tinylesion.plots: each picture is a readable PNG; bad input gets a clear error."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tinylesion import metrics, plots

NAMES7 = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]


def check_png(path):
    """Assert that `path` is a non-blank PNG image and return its pixels."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 50 and image.height > 50
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 0, "the picture is blank"
    return pixels


@pytest.fixture(autouse=True)
def no_figures_left_open():
    yield
    import matplotlib.pyplot as plt
    assert plt.get_fignums() == [], "a plot function left a figure open"


def scores(rng, n, K, y):
    """Softmax scores that favour the true class."""
    logits = rng.normal(size=(n, K))
    logits[np.arange(n), y] += 1.5
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# plot_history
# ---------------------------------------------------------------------------------------------

def test_history_full(tmp_path):
    n = 12
    history = {"loss": list(np.linspace(2, 0.5, n)), "val_loss": list(np.linspace(2.1, 0.8, n)),
                "accuracy": list(np.linspace(0.2, 0.9, n)),
                "val_accuracy": list(np.linspace(0.2, 0.8, n)),
                "val_macro_f1": list(np.linspace(0.1, 0.7, n)),
                "lr": [1e-3] * 6 + [5e-4] * 3 + [2.5e-4] * 3, "epoch_time": [1.0] * n}
    path = plots.plot_history(history, tmp_path / "history.png")
    assert path == tmp_path / "history.png"
    check_png(path)


@pytest.mark.parametrize("history", [
    {"loss": [1.0]},                                   # one epoch, train loss only
    {"loss": [1.0, 0.8], "accuracy": [0.5, 0.6]},      # no validation, no lr
    {"val_accuracy": [0.5, None, 0.7]},                # a missing value becomes a gap
    {"lr": [0.1, 0.05]},                               # only the learning rate
    {"loss": [1.0, np.nan], "lr": [0.0, 0.0], "val_loss": [None, None]},
])
def test_history_partial(tmp_path, history):
    check_png(plots.plot_history(history, tmp_path / "sub" / "h.png"))


@pytest.mark.parametrize("history, match", [
    ({"loss": [1.0, 0.9], "val_loss": [1.0]}, "differ in length.*loss=2.*val_loss=1"),
    ({}, "none of"),
    ({"epoch_time": [1.0]}, "none of"),
    ({"loss": ["a", "b"]}, r"history\['loss'\] must be a list of numbers"),
    ({"loss": [[1.0, 2.0]]}, "flat list"),
    ([1.0, 0.5], "dict of lists"),
])
def test_history_bad_input(tmp_path, history, match):
    with pytest.raises(ValueError, match=match):
        plots.plot_history(history, tmp_path / "h.png")


# ---------------------------------------------------------------------------------------------
# plot_confusion_matrix
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("normalize", [True, False])
def test_confusion_matrix(tmp_path, normalize):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 200)
    y[y == 3] = 4                                      # an empty row must not break it
    cm = metrics.confusion_matrix(y, np.argmax(scores(rng, 200, 7, y), axis=1), 7)
    path = plots.plot_confusion_matrix(cm.tolist(), NAMES7, tmp_path / "cm.png", normalize)
    check_png(path)


@pytest.mark.parametrize("cm, names, match", [
    (np.ones((3, 3)), ["a", "b"], "3x3 but class_names has 2"),
    (np.ones((2, 3)), ["a", "b"], "square"),
    (np.ones(4), ["a", "b"], "square"),
    (-np.ones((2, 2)), ["a", "b"], "non-negative"),
])
def test_confusion_matrix_bad_input(tmp_path, cm, names, match):
    with pytest.raises(ValueError, match=match):
        plots.plot_confusion_matrix(cm, names, tmp_path / "cm.png")


# ---------------------------------------------------------------------------------------------
# plot_roc
# ---------------------------------------------------------------------------------------------

def test_roc_binary_vector_and_two_columns(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60)
    s = np.clip(0.3 * y + rng.random(60) * 0.7, 0, 1)
    check_png(plots.plot_roc(y, s, ["benign", "melanoma"], tmp_path / "roc1.png"))
    two = np.stack([1 - s, s], axis=1)
    check_png(plots.plot_roc(y, two, ["benign", "melanoma"], tmp_path / "roc2.png"))


def test_roc_multiclass_with_absent_class(tmp_path):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 6, 150)                        # class 6 ("vasc") never occurs
    check_png(plots.plot_roc(y, scores(rng, 150, 7, y), NAMES7, tmp_path / "roc.png"))


@pytest.mark.parametrize("y, s, names, match", [
    ([0, 1, 1], [0.2, 0.4], ["a", "b"], "same number of rows"),
    ([0, 0, 0], [0.2, 0.4, 0.5], ["a", "b"], "at least two classes in y_true"),
    ([0, 1, 2], np.ones((3, 3)) / 3, ["a", "b"], "3 columns but class_names has 2"),
    ([0, 1, 2], [0.1, 0.2, 0.3], ["a", "b", "c"], "binary"),
    ([0, 1, 5], np.ones((3, 3)) / 3, ["a", "b", "c"], "label 5"),
])
def test_roc_bad_input(tmp_path, y, s, names, match):
    with pytest.raises(ValueError, match=match):
        plots.plot_roc(np.array(y), np.array(s), names, tmp_path / "roc.png")


# ---------------------------------------------------------------------------------------------
# plot_weights_image
# ---------------------------------------------------------------------------------------------

def test_weight_images_layout_and_scaling():
    H, W = 2, 3
    w = np.zeros(3 * H * W)
    w[0 * H * W + 1 * W + 2] = 4.0                     # red channel, row 1, column 2
    w[2 * H * W + 0 * W + 0] = -4.0                    # blue channel, row 0, column 0
    images = plots._weight_images(np.stack([w, np.full_like(w, 7.0)]), H, W)
    assert images.shape == (2, H, W, 3)
    assert images[0, 1, 2, 0] == 1.0 and images[0, 0, 0, 2] == 0.0
    others = np.ones((H, W, 3), bool)
    others[1, 2, 0] = others[0, 0, 2] = False
    np.testing.assert_allclose(images[0][others], 0.5)      # zero sits midway in [-4, 4]
    np.testing.assert_allclose(images[1], 0.5)               # a constant image is grey


@pytest.mark.parametrize("K", [None, 1, 7])
def test_weights_png(tmp_path, K):
    rng = np.random.default_rng(3)
    H, W = 10, 14
    w = rng.normal(size=3 * H * W) if K is None else rng.normal(size=(K, 3 * H * W))
    names = NAMES7 if K == 7 else None
    pixels = check_png(plots.plot_weights_image(w, (H, W), tmp_path / "w.png", names))
    assert pixels.shape[2] == 3


def test_weights_from_tensor(tmp_path):
    tl = pytest.importorskip("tinylesion.tensor")
    w = tl.Tensor(np.random.default_rng(4).normal(size=(2, 3 * 4 * 5)).astype(np.float32))
    check_png(plots.plot_weights_image(w, (4, 5), tmp_path / "w.png"))


@pytest.mark.parametrize("w, hw, match", [
    (np.ones(3 * 8 * 8 + 1), (8, 8), r"needs 192 = 3\*8\*8 weights.*expected \(192,\)"),
    (np.ones((2, 100)), (8, 8), r"shape \(2, 100\).*expected \(192,\) or \(K, 192\)"),
    (np.ones((2, 2, 48)), (4, 4), "expected"),
    (np.ones(48), (4,), r"must be \(H, W\)"),
    (np.full(48, np.nan), (4, 4), "NaN"),
])
def test_weights_bad_input(tmp_path, w, hw, match):
    with pytest.raises(ValueError, match=match):
        plots.plot_weights_image(w, hw, tmp_path / "w.png")


def test_weights_names_must_match(tmp_path):
    with pytest.raises(ValueError, match="2 output rows but class_names has 3"):
        plots.plot_weights_image(np.ones((2, 48)), (4, 4), tmp_path / "w.png", ["a", "b", "c"])


# ---------------------------------------------------------------------------------------------
# Shared behaviour
# ---------------------------------------------------------------------------------------------

def test_path_must_be_png(tmp_path):
    with pytest.raises(ValueError, match="must end in .png"):
        plots.plot_history({"loss": [1.0]}, tmp_path / "h.jpg")


def test_import_does_not_load_matplotlib():
    code = ("import sys, tinylesion, tinylesion.plots, tinylesion.metrics; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(_repo_root()))


def _repo_root():
    import pathlib
    return pathlib.Path(plots.__file__).resolve().parent.parent
