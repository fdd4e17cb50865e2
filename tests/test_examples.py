"""The example scripts end to end on tiny synthetic data, and their one-line errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinylesion import backend
from tinylesion.data import make_synthetic

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--image-size", "32x24", "--batch-size", "8", "--workers", "1"]
METRIC_KEYS = {"accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "roc_auc",
               "per_class", "confusion_matrix", "class_names", "settings", "majority_baseline"}
FLAGS = {"data", "device", "model", "image_size", "epochs", "batch_size", "lr", "optimizer",
         "class_weights", "oversample", "augment", "split", "seed", "workers", "cache", "out",
         "resume", "early_stop", "weight_decay"}


@pytest.fixture(scope="module")
def ham(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("ham") / "ham", n=60, seed=0,
                          image_size=(64, 48))


@pytest.fixture(scope="module")
def dermmel(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("mel") / "mel", n=40, seed=0,
                          layout="dermmel", image_size=(64, 48))


def run_example(name, *args, timeout=300):
    env = dict(os.environ, TINYLESION_CACHE=os.environ.get("TINYLESION_CACHE", ""))
    return subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def check_run(proc, out, binary, extra=(), lr=None):
    """The run succeeded, and each file in --out holds what it should (not only exists)."""
    import re

    import numpy as np
    from PIL import Image

    from tinylesion import io
    from tinylesion.models import get_model
    from tinylesion.train import HISTORY_KEYS
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert FLAGS <= set(metrics["settings"])
    for name in ("history.csv", "weights.npz", "checkpoint.npz", "run.json", "history.png",
                 "confusion_matrix.png", "roc.png", *extra):
        assert (out / name).is_file(), name
    assert ("sensitivity" in metrics) == binary
    assert "macro avg" in proc.stdout and str(out) in proc.stdout
    # metrics.json: the test split, counted once; its numbers agree with each other
    n_test = int(re.search(r"test (\d+) images", proc.stdout).group(1))
    cm = np.array(metrics["confusion_matrix"])
    classes = metrics["class_names"]
    assert cm.shape == (len(classes), len(classes)) and cm.sum() == n_test
    assert list(metrics["per_class"]) == classes
    assert [v["support"] for v in metrics["per_class"].values()] == cm.sum(axis=1).tolist()
    assert metrics["accuracy"] == pytest.approx(np.trace(cm) / n_test)
    recall = [cm[k, k] / cm[k].sum() for k in range(len(classes)) if cm[k].sum()]
    assert metrics["balanced_accuracy"] == pytest.approx(np.mean(recall))
    assert metrics["roc_auc"] is None or 0 <= metrics["roc_auc"] <= 1
    if binary:
        assert metrics["sensitivity"] == pytest.approx(cm[1, 1] / cm[1].sum())
    # history.csv: one epoch of finite values, trained at --lr
    lines = (out / "history.csv").read_text().splitlines()
    assert lines[0].split(",") == ["epoch", *HISTORY_KEYS] and len(lines) == 2
    row = dict(zip(lines[0].split(","), lines[1].split(",")))
    assert row["epoch"] == "1" and np.isfinite(float(row["loss"])) and float(row["loss"]) > 0
    assert float(row["lr"]) == pytest.approx(lr if lr is not None else
                                             metrics["settings"]["lr"])
    # run.json and weights.npz: the model the settings name, its weights, finite
    run = json.loads((out / "run.json").read_text())
    assert run["class_names"] == classes and run["model"] == metrics["settings"]["model"]
    assert len(run["mean"]) == 3 and all(0 < m < 1 for m in run["mean"] + run["std"])
    model = get_model(run["model"], num_classes=len(classes), image_size=run["image_size"])
    weights = io.load(out / "weights.npz")
    state = model.state_dict()
    assert weights.keys() == state.keys()
    for k, v in weights.items():
        assert v.shape == tuple(state[k].shape) and np.all(np.isfinite(v)), k
    model.load_state_dict(weights)
    for name in ("history.png", "confusion_matrix.png", "roc.png", *extra):
        with Image.open(out / name) as im:
            assert im.format == "PNG" and min(im.size) > 100, name
    return metrics


def test_ham_cnn(ham, tmp_path):
    out = tmp_path / "run"
    proc = run_example("ham_cnn", "--data", ham, *TINY, "--augment", "--optimizer", "nadam",
                       "--out", out)
    metrics = check_run(proc, out, binary=False)
    assert metrics["settings"]["model"] == "padua4" and len(metrics["class_names"]) == 7


def test_melanoma_cnn_uses_dermmel_splits(dermmel, tmp_path):
    out = tmp_path / "run"
    proc = run_example("melanoma_cnn", "--data", dermmel, *TINY, "--image-size", "72x72",
                       "--oversample", "--optimizer", "sgd", "--out", out)
    metrics = check_run(proc, out, binary=True)
    assert metrics["class_names"] == ["NotMelanoma", "Melanoma"]  # melanoma is positive
    test_images = [p for p in (dermmel / "test").rglob("*") if p.is_file()]
    assert sum(map(sum, metrics["confusion_matrix"])) == len(test_images)   # the test folder
    assert metrics["per_class"]["Melanoma"]["support"] == len(
        [p for p in test_images if p.parent.name == "Melanoma"])
    assert "train_sep, valid, test used as the train/val/test splits" in proc.stdout


def test_logistic_regression_draws_its_weights(dermmel, tmp_path):
    out = tmp_path / "run"
    proc = run_example("logistic_regression", "--data", dermmel, *TINY,
                       "--class-weights", "none", "--cache", tmp_path / "cache", "--out", out)
    check_run(proc, out, binary=True, extra=("weights.png",))
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 3  # train, val and test cached


def test_dense_nn_on_a_folder_per_class(dermmel, tmp_path):
    out = tmp_path / "run"
    proc = run_example("dense_nn", "--data", dermmel / "train_sep", *TINY, "--split", "70/30",
                       "--optimizer", "rmsprop", "--lr", "3e-4", "--out", out)
    metrics = check_run(proc, out, binary=True, lr=3e-4)
    assert metrics["settings"]["weight_decay"] == pytest.approx(1e-3)  # the model's own L2


def one_line_error(proc):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.skipif(backend.gpu_available(), reason="this machine has a GPU")
def test_gpu_without_cupy_is_one_line_and_exit_2(tmp_path):
    line = one_line_error(run_example("ham_cnn", "--device", "gpu", "--out", tmp_path))
    assert "CuPy" in line and "tinylesion[gpu]" in line


@pytest.mark.parametrize("flag, value, words", [
    ("--lr", "-1", "--lr"), ("--image-size", "100by75", "WIDTHxHEIGHT"),
    ("--split", "80/30", "add up to 100"), ("--optimizer", "adamw", "adam, nadam"),
    ("--device", "tpu", "cpu, gpu, auto"), ("--model", "resnet", "padua4"),
    ("--epochs", "0", ">= 1")])
def test_bad_flag_value_is_one_line_and_exit_2(flag, value, words):
    line = one_line_error(run_example("ham_cnn", flag, value))
    assert flag in line and words in line


def test_data_folder_of_unknown_layout(tmp_path):
    (tmp_path / "empty").mkdir()
    line = one_line_error(run_example("ham_cnn", "--data", tmp_path / "empty"))
    assert "neither a HAM10000 folder" in line
    line = one_line_error(run_example("ham_cnn", "--data", tmp_path / "absent"))
    assert "no such folder" in line


def test_image_size_too_small_for_the_model(ham, tmp_path):
    line = one_line_error(run_example("melanoma_cnn", "--data", ham, *TINY, "--out", tmp_path))
    assert "too small" in line and "--image-size 32x24" in line


def test_resume_without_a_checkpoint(tmp_path, ham):
    line = one_line_error(run_example("ham_cnn", "--data", ham, "--resume", "--out", tmp_path))
    assert "no checkpoint" in line


def test_cli_resume_ends_with_the_weights_of_an_uninterrupted_run(ham, tmp_path):
    import numpy as np
    from tinylesion import cli, io
    base = ["--data", str(ham), "--model", "padua1", "--image-size", "16x12", "--batch-size",
            "8", "--workers", "0", "--augment"]
    quiet = dict(log=lambda *a: None)
    cli.run(cli.parse_args("ham", base + ["--epochs", "2", "--out", str(tmp_path / "a")]),
            "ham", **quiet)
    cli.run(cli.parse_args("ham", base + ["--epochs", "1", "--out", str(tmp_path / "b")]),
            "ham", **quiet)
    cli.run(cli.parse_args("ham", base + ["--epochs", "2", "--resume", "--out",
                                          str(tmp_path / "b")]), "ham", **quiet)
    a, b = io.load(tmp_path / "a" / "weights.npz"), io.load(tmp_path / "b" / "weights.npz")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert len((tmp_path / "b" / "history.csv").read_text().splitlines()) == 3
