"""fit: loss falls, beats the majority baseline, resume is bit-identical, NaN stops clearly."""
import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn as nn
from tinylesion import models, train
from tinylesion.metrics import majority_baseline
from tinylesion.optim import SGD, Adam, ReduceLROnPlateau


class ArrayLoader:
    """Batches of uint8 images from memory, in an order that is a function of (seed, epoch)."""

    def __init__(self, images, labels, batch_size=16, shuffle=True, seed=0):
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(n)
                 if self.shuffle else np.arange(n))
        self.epoch += 1
        for i in range(0, n, self.batch_size):
            idx = order[i:i + self.batch_size]
            yield self.images[idx], self.labels[idx]


def blobs(n, seed, classes=3, size=8):
    """Images whose class sets the brightness of one colour channel, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.choice(classes, size=n, p=[0.6, 0.25, 0.15][:classes] if classes == 3 else None)
    x = rng.normal(90, 30, (n, 3, size, size))
    for k in range(classes):
        x[y == k, k % 3] += 90
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)


def small_cnn(classes=3, dropout=0.25):
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(dropout),
                         nn.Linear(4 * 4 * 4, classes))


def make_run(tmp_path, seed=0):
    tl.manual_seed(seed)
    model = small_cnn()
    opt = Adam(model.parameters(), lr=1e-2)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=0)
    xtr, ytr = blobs(96, 1)
    xva, yva = blobs(48, 2)
    return (model, opt, sched, ArrayLoader(xtr, ytr, seed=seed),
            ArrayLoader(xva, yva, shuffle=False))


def test_loss_falls_and_beats_majority_baseline():
    model, opt, _, tr, va = make_run(None)
    history = train.fit(model, opt, tr, va, epochs=6, mean=(0.4,) * 3, std=(0.2,) * 3,
                        class_weights=np.array([0.5, 1.3, 2.2], np.float32), progress=False,
                        log=lambda *a: None)
    assert set(history) == set(train.HISTORY_KEYS)
    assert all(len(v) == 6 for v in history.values())
    assert history["loss"][-1] < 0.5 * history["loss"][0], history["loss"]
    y_true, y_score = train.evaluate_model(model, va, mean=(0.4,) * 3, std=(0.2,) * 3)
    assert y_score.shape == (48, 3)
    np.testing.assert_allclose(y_score.sum(axis=1), 1.0, rtol=1e-5)
    acc = np.mean(y_score.argmax(axis=1) == y_true)
    assert acc > majority_baseline(tr.labels, y_true) + 0.15


def test_binary_model_uses_bce_with_pos_weight():
    tl.manual_seed(0)
    x, y = blobs(64, 3, classes=2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1))
    model.binary = True
    opt = Adam(model.parameters(), lr=1e-2)
    loader = ArrayLoader(x, y)
    history = train.fit(model, opt, loader, loader, epochs=4, class_weights=[0.8, 1.4],
                        progress=False, log=lambda *a: None)
    assert history["loss"][-1] < history["loss"][0]
    y_true, y_score = train.evaluate_model(model, loader)
    assert y_score.shape == (64,) and np.all((y_score >= 0) & (y_score <= 1))
    assert np.mean((y_score >= 0.5) == y_true) > 0.8


class Interrupt(Exception):
    pass


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    quiet = dict(progress=False, log=lambda *a: None, mean=(0.4,) * 3, std=(0.2,) * 3)
    model, opt, sched, tr, va = make_run(tmp_path)
    train.fit(model, opt, tr, va, epochs=3, scheduler=sched, early_stopping=2,
              checkpoint_path=tmp_path / "full.npz", **quiet)
    expected = {k: v.copy() for k, v in model.state_dict().items()}

    def stop_after_first(epoch, history):
        if epoch == 0:
            raise Interrupt

    ck = tmp_path / "part.npz"
    model, opt, sched, tr, va = make_run(tmp_path)
    with pytest.raises(Interrupt):
        train.fit(model, opt, tr, va, epochs=3, scheduler=sched, early_stopping=2,
                  checkpoint_path=ck, on_epoch_end=stop_after_first, **quiet)
    tl.backend.generator().random(17)  # the random state moved on: resume must restore it
    model, opt, sched, tr, va = make_run(tmp_path, seed=0)
    tr.set_epoch(5)
    history = train.fit(model, opt, tr, va, epochs=3, scheduler=sched, early_stopping=2,
                        checkpoint_path=ck, resume=True, **quiet)
    assert len(history["loss"]) == 3
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, expected[k], err_msg=k)
    assert opt.param_groups[0]["lr"] == train.load_checkpoint(tmp_path / "full.npz")[
        "optimizer"]["param_groups"][0]["lr"]


def test_nan_loss_stops_with_epoch_and_batch_and_keeps_checkpoint(tmp_path):
    model, _, _, tr, va = make_run(tmp_path)
    opt = SGD(model.parameters(), lr=1e-3)
    ck = tmp_path / "ck.npz"
    saved = {}

    def poison(epoch, history):
        if epoch == 0:
            saved["bytes"] = ck.read_bytes()
            model.parameters()[-1].array[0] = np.nan

    with pytest.raises(train.TrainingError, match=r"epoch 2, batch 1 of 6.*ck\.npz"):
        train.fit(model, opt, tr, va, epochs=3, checkpoint_path=ck, progress=False,
                  log=lambda *a: None, on_epoch_end=poison)
    assert ck.read_bytes() == saved["bytes"]


def test_a_diverging_run_stops_with_one_message_and_no_numpy_warnings(tmp_path):
    import warnings
    model, _, _, tr, va = make_run(tmp_path)
    opt = SGD(model.parameters(), lr=1e-3)
    model.parameters()[-2].array[...] = 3e38  # the logits overflow to inf, the loss to NaN
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would fail the test
        with pytest.raises(train.TrainingError, match="try a smaller --lr"):
            train.fit(model, opt, tr, va, epochs=3, progress=False, log=lambda *a: None)


def test_checkpoint_round_trip_keeps_structure(tmp_path):
    state = {"a": np.arange(3.0), "b": {0: [1, (2, np.ones(2))]}, "inf": float("inf"),
             "none": None}
    train.save_checkpoint(state, tmp_path / "c.npz")
    back = train.load_checkpoint(tmp_path / "c.npz")
    np.testing.assert_array_equal(back["a"], state["a"])
    assert back["b"][0][0] == 1 and back["b"][0][1][0] == 2
    np.testing.assert_array_equal(back["b"][0][1][1], np.ones(2))
    assert back["inf"] == float("inf") and back["none"] is None


def test_history_csv(tmp_path):
    h = {k: [0.5, 0.25] for k in train.HISTORY_KEYS}
    h["val_loss"] = [None, 0.1]
    train.write_history_csv(h, tmp_path / "h.csv")
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,loss") and lines[1].count(",") == len(train.HISTORY_KEYS)


def test_labels_outside_the_models_classes_are_named_before_training():
    class Labels:
        targets = np.array([0, 1, 7])

    class Batches:
        dataset = Labels()

    model = models.get_model("logistic_regression", num_classes=7, image_size=(8, 8))
    with pytest.raises(ValueError, match=r"training data has labels 0\.\.7.*7 classes"):
        train.fit(model, Adam(model.parameters()), Batches(), epochs=1,
                  progress=False)
