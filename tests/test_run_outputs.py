"""What an example's run folder holds: metrics.json is the test split's evaluation of the saved
weights (not the validation split's), history.csv, run.json and weights.npz hold what the run
did; the examples' plateau schedule halves the rate on the third epoch without improvement."""
import csv
import json

import numpy as np
import pytest
from PIL import Image

from tinylesion import cli, io
from tinylesion.data import HAM10000, ImageFolder, Loader, channel_stats, make_synthetic
from tinylesion.data import split_by_lesion
from tinylesion.metrics import evaluate
from tinylesion.models import get_model
from tinylesion.train import evaluate_model

QUIET = dict(log=lambda *a: None)
# DermMel folders of different sizes and class balance, so that no metric of the validation
# split can pass for the test split's
COUNTS = {"train_sep": (10, 10), "valid": (3, 7), "test": (8, 4)}
NAMES = ("Melanoma", "NotMelanoma")


@pytest.fixture(scope="module")
def dermmel(tmp_path_factory):
    root = tmp_path_factory.mktemp("dermmel")
    rng = np.random.default_rng(0)
    for split, counts in COUNTS.items():
        for name, count in zip(NAMES, counts):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                x = rng.integers(0, 120, (20, 20, 3))
                x[..., 0 if name == "Melanoma" else 2] += rng.integers(40, 130)
                Image.fromarray(x.astype(np.uint8)).save(folder / f"{split}_{i}.png")
    return root


@pytest.fixture(scope="module")
def ham(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("ham") / "ham", n=60, seed=0,
                          image_size=(32, 24))


def run_cli(task, data, out, *flags):
    args = cli.parse_args(task, ["--data", str(data), "--out", str(out), "--workers", "0",
                                 "--batch-size", "8", *flags])
    return cli.run(args, task, **QUIET)


def reevaluate(out, test_ds, train_targets, classes):
    """metrics of the saved weights on test_ds, with the run's own normalisation."""
    run = json.loads((out / "run.json").read_text())
    size = tuple(run["image_size"])
    model = get_model(run["model"], num_classes=len(classes), image_size=size)
    model.load_state_dict(io.load(out / "weights.npz"))
    loader = Loader(test_ds, batch_size=8, num_workers=0)
    y_true, y_score = evaluate_model(model, loader, "cpu", run["mean"], run["std"])
    return y_true, y_score, evaluate(y_true, y_score, classes, y_true_train=train_targets)


def assert_same_metrics(got, expected):
    for key, value in expected.items():
        assert key in got, key
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
        elif isinstance(value, dict):
            for name, inner in value.items():
                assert got[key][name] == pytest.approx(inner, rel=1e-6, abs=1e-9), (key, name)
        else:
            assert got[key] == value, key


def test_metrics_json_is_the_test_folders_evaluation(dermmel, tmp_path):
    out = tmp_path / "run"
    returned = run_cli("logistic", dermmel, out, "--model", "logistic_regression",
                       "--image-size", "16x16", "--epochs", "2", "--lr", "1e-3")
    metrics = json.loads((out / "metrics.json").read_text())
    classes = ["NotMelanoma", "Melanoma"]                 # melanoma last: the positive class
    assert metrics["class_names"] == classes and list(metrics["per_class"]) == classes
    kw = dict(image_size=(16, 16), classes=classes, preprocess="half_crop224")
    test_ds = ImageFolder(dermmel / "test", **kw)
    train_ds = ImageFolder(dermmel / "train_sep", **kw)
    y_true, y_score, expected = reevaluate(out, test_ds, train_ds.targets, classes)
    assert_same_metrics(metrics, expected)
    assert_same_metrics(returned, expected)
    # by hand: the test folder's 8 melanomas and 4 others; predictions at 0.5
    assert y_true.tolist() == [0] * 4 + [1] * 8 and y_score.shape == (12,)
    predicted = (y_score >= 0.5).astype(int)
    cm = [[int(np.sum((y_true == a) & (predicted == b))) for b in (0, 1)] for a in (0, 1)]
    assert metrics["confusion_matrix"] == cm
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == y_true))
    assert metrics["per_class"]["Melanoma"]["support"] == 8
    assert metrics["per_class"]["NotMelanoma"]["support"] == 4
    assert metrics["sensitivity"] == pytest.approx(cm[1][1] / 8)
    assert metrics["specificity"] == pytest.approx(cm[0][0] / 4)
    # the training folder is a tie: the majority class is the first, NotMelanoma
    assert metrics["majority_baseline"] == pytest.approx(4 / 12)
    assert metrics["settings"]["lr"] == pytest.approx(1e-3)
    # run.json: the training split's channel statistics, the classes, the model
    run = json.loads((out / "run.json").read_text())
    mean, std = channel_stats(train_ds, num_workers=0)
    np.testing.assert_allclose(run["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(run["std"], std, rtol=1e-12)
    assert run["class_names"] == classes and run["model"] == "logistic_regression"
    assert run["image_size"] == [16, 16] and run["binary"] is True
    # history.csv: one row per epoch, the rate the run was given
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-3, 1e-3])
    assert all(float(r["loss"]) > 0 and 0 <= float(r["val_accuracy"]) <= 1 for r in rows)
    # the validation folder (3 melanomas, 7 others) is not what was reported
    val_ds = ImageFolder(dermmel / "valid", **kw)
    _, _, on_val = reevaluate(out, val_ds, train_ds.targets, classes)
    assert metrics["confusion_matrix"] != on_val["confusion_matrix"]


def test_metrics_json_is_the_test_split_of_the_lesion_split(ham, tmp_path):
    out = tmp_path / "run"
    run_cli("ham", ham, out, "--model", "padua1", "--image-size", "16x12", "--epochs", "1",
            "--split", "60/15/25")
    metrics = json.loads((out / "metrics.json").read_text())
    ds = HAM10000(ham, image_size=(16, 12), preprocess="resize")
    train, val, test = split_by_lesion(ds, fractions=(0.6, 0.15, 0.25), seed=0)
    assert len(val) != len(test)
    classes = list(ds.classes)
    assert metrics["class_names"] == classes
    _, _, expected = reevaluate(out, test, train.targets, classes)
    assert_same_metrics(metrics, expected)
    assert sum(map(sum, metrics["confusion_matrix"])) == len(test)


class Captured(Exception):
    pass


def test_the_examples_plateau_schedule_halves_on_the_third_bad_epoch(monkeypatch, dermmel,
                                                                     tmp_path):
    from tinylesion import train
    seen = {}

    def capture(model, optimizer, *args, **kwargs):
        seen.update(kwargs, optimizer=optimizer)
        raise Captured

    monkeypatch.setattr(train, "fit", capture)
    with pytest.raises(Captured):
        run_cli("logistic", dermmel, tmp_path / "run", "--model", "logistic_regression",
                "--image-size", "16x16", "--lr", "0.08", "--early-stop", "4")
    assert seen["early_stopping"] == 4
    scheduler, optimizer = seen["scheduler"], seen["optimizer"]
    rates = []
    for val_loss in [1.0, 0.9, 0.95, 0.9, 0.91, 0.89, 0.89, 0.895, 0.9, 0.9, 0.9, 0.9]:
        scheduler.step(val_loss)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([0.08, 0.08, 0.08, 0.08, 0.04, 0.04, 0.04, 0.04, 0.02, 0.02,
                                   0.02, 0.01])


def test_class_order_of_a_folder_per_class(tmp_path):
    # sorted by name; with two classes a melanoma class goes last (the positive class), with
    # more it keeps its place
    for names, expected in ((["nevus", "melanoma"], ["nevus", "melanoma"]),
                            (["Melanoma", "benign"], ["benign", "Melanoma"]),
                            (["a", "b"], ["a", "b"]),
                            (["nevus", "melanoma", "bcc"], ["bcc", "melanoma", "nevus"])):
        root = tmp_path / "_".join(names)
        for name in names:
            (root / name).mkdir(parents=True)
            for i in range(10):
                Image.new("RGB", (8, 8), (10 * i, 80, 120)).save(root / name / f"{i}.png")
        train, val, test, kind = cli.open_data(root, (8, 8), "resize", (0.6, 0.2, 0.2), 0,
                                               log=lambda *a: None)
        assert kind == "ImageFolder" and list(train.classes) == expected, names
        assert list(test.classes) == expected


def test_a_dermmel_folder_with_one_class_is_refused(tmp_path):
    for split in ("train_sep", "valid", "test"):
        (tmp_path / split / "Melanoma").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / "Melanoma" / "a.png")
    with pytest.raises(cli.UsageError, match="at least two"):
        cli.open_data(tmp_path, (8, 8), "resize", (0.8, 0.1, 0.1), 0, log=lambda *a: None)


@pytest.mark.parametrize("name, cls, extra", [("adam", "Adam", {}), ("nadam", "NAdam", {}),
                                              ("sgd", "SGD", {"momentum": 0.9}),
                                              ("rmsprop", "RMSprop", {})])
def test_the_optimizer_the_flags_ask_for(monkeypatch, dermmel, tmp_path, name, cls, extra):
    from tinylesion import train
    seen = {}

    def capture(model, optimizer, *args, **kwargs):
        seen.update(kwargs, optimizer=optimizer)
        raise Captured

    monkeypatch.setattr(train, "fit", capture)
    with pytest.raises(Captured):
        run_cli("logistic", dermmel, tmp_path / "run", "--model", "logistic_regression",
                "--image-size", "16x16", "--lr", "0.03", "--optimizer", name,
                "--weight-decay", "0.002")
    optimizer = seen["optimizer"]
    assert type(optimizer).__name__ == cls
    group = optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(0.03) and group["weight_decay"] == pytest.approx(0.002)
    for key, value in extra.items():
        assert group[key] == pytest.approx(value), key


def test_the_splits_of_a_lesion_split_are_disjoint(ham):
    train, val, test, kind = cli.open_data(ham, (16, 12), "resize", (0.6, 0.2, 0.2), 0,
                                           log=lambda *a: None)
    assert kind == "HAM10000"
    parts = [set(map(str, d.paths)) for d in (train, val, test)]
    assert all(parts) and sum(map(len, parts)) == len(set.union(*parts)) == 60
    assert len(parts[0]) > len(parts[1]) and len(parts[0]) > len(parts[2])


@pytest.mark.parametrize("flags", [[], ["--augment"], ["--oversample"]])
def test_the_loaders_the_flags_ask_for(monkeypatch, dermmel, tmp_path, flags):
    from tinylesion import train
    seen = {}

    def capture(model, optimizer, train_loader, val_loader, *args, **kwargs):
        seen.update(train=train_loader, val=val_loader)
        raise Captured

    monkeypatch.setattr(train, "fit", capture)
    with pytest.raises(Captured):
        run_cli("logistic", dermmel, tmp_path / "run", "--model", "logistic_regression",
                "--image-size", "16x16", "--seed", "3", *flags)
    tr, va = seen["train"], seen["val"]
    assert len(tr.dataset) == 20 and len(va.dataset) == 10          # train_sep/ and valid/
    assert not va.shuffle and va.augment is None and va.sampler is None
    assert tr.batch_size == va.batch_size == 8 and tr.seed == 3
    assert tr.shuffle == ("--oversample" not in flags)
    assert (tr.sampler is not None) == ("--oversample" in flags)
    if "--augment" in flags:
        # Keras ImageDataGenerator(rotation_range=90, zoom_range=0.1, shifts 0.1, both flips)
        a = tr.augment
        assert (a.rotation_range, a.zoom_range, a.width_shift_range, a.height_shift_range) \
            == (90, pytest.approx((0.9, 1.1)), 0.1, 0.1)
        assert a.horizontal_flip and a.vertical_flip and a.fill_mode == "nearest"
    else:
        assert tr.augment is None


def test_ham10000_images_without_metadata_are_named(tmp_path):
    for part in ("HAM10000_images_part_1", "HAM10000_images_part_2"):
        (tmp_path / part).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / part / "ISIC_0000001.jpg")
    with pytest.raises(cli.UsageError, match="looks like HAM10000 but .*metadata"):
        cli.open_data(tmp_path, (8, 8), "resize", (0.8, 0.1, 0.1), 0, log=lambda *a: None)
