"""fit's policy, with a validation loss scripted to fall or rise: early stopping after exactly
`patience` bad epochs, the best epoch's weights at the end, the learning rate as the plateau
schedule sets it, and a checkpoint after every epoch."""
import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn as nn
from tinylesion import train
from tinylesion.optim import SGD, ReduceLROnPlateau

N, K = 24, 3


def data():
    rng = np.random.default_rng(0)
    y = np.arange(N) % K
    x = rng.integers(0, 60, (N, 3, 4, 4))
    for k in range(K):
        x[y == k, k] += 150
    return x.astype(np.uint8), y.astype(np.int64)


class OneBatch:
    """The whole training set as one batch, in a fixed order: each epoch is one full-batch
    gradient step of a convex model, so the loss on the training data falls every epoch."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return 1

    def __iter__(self):
        yield self.images, self.labels


class ScriptedValidation:
    """The training images as the validation set, labelled per epoch from a script: "good"
    gives the training labels (a validation loss that falls with training), "bad" shifted
    labels (a loss above every "good" epoch's). It keeps a copy of the weights each epoch
    was validated with."""

    def __init__(self, model, images, labels, script):
        self.model, self.images, self.labels, self.script = model, images, labels, script
        self.weights = []

    def __len__(self):
        return 1

    def __iter__(self):
        epoch = len(self.weights)
        self.weights.append({k: np.array(v, copy=True)
                             for k, v in self.model.state_dict().items()})
        bad = self.script[epoch] == "bad"
        yield self.images, (self.labels + 1) % K if bad else self.labels


def run(script, early_stopping, epochs=None, scheduler=None, lr=0.05, **kwargs):
    """fit a linear model; returns (history, the validation loader, the model, optimizer)."""
    tl.manual_seed(0)
    x, y = data()
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, K))
    opt = SGD(model.parameters(), lr=lr)
    val = ScriptedValidation(model, x, y, script)
    sched = scheduler(opt) if scheduler is not None else None
    history = train.fit(model, opt, OneBatch(x, y), val, epochs=epochs or len(script),
                        mean=(0.5,) * 3, std=(0.25,) * 3, scheduler=sched,
                        early_stopping=early_stopping, progress=False, log=lambda *a: None,
                        **kwargs)
    return history, val, model, opt


def assert_weights(model, expected):
    state = model.state_dict()
    assert state.keys() == expected.keys()
    for k in state:
        np.testing.assert_array_equal(np.asarray(state[k]), expected[k], err_msg=k)


def differs(a, b):
    return any(not np.array_equal(a[k], b[k]) for k in a)


def test_the_script_gives_the_losses_it_promises():
    history, _, _, _ = run(["good"] * 4 + ["bad"] * 2, early_stopping=0)
    good, bad = history["val_loss"][:4], history["val_loss"][4:]
    assert all(b < a for a, b in zip(good, good[1:])), good
    assert min(bad) > max(good), history["val_loss"]


@pytest.mark.parametrize("patience", [1, 2, 3])
def test_a_rising_validation_loss_stops_after_patience_epochs(patience):
    script = ["good"] * 3 + ["bad"] * 8
    history, val, model, _ = run(script, early_stopping=patience)
    # the best epoch is the third; the run stops at the end of the patience-th bad epoch
    assert len(history["loss"]) == 3 + patience, history["val_loss"]
    assert all(len(v) == 3 + patience for v in history.values())
    assert int(np.argmin(history["val_loss"])) == 2
    assert_weights(model, val.weights[2])          # the weights the best epoch validated
    assert differs(val.weights[2], val.weights[-1])


def test_an_improvement_starts_the_patience_again():
    # best at epoch 2, then 1 bad epoch, a new best at epoch 4, then 2 bad epochs: stop at 6
    script = ["good", "good", "bad", "good", "bad", "bad", "bad", "bad"]
    history, val, model, _ = run(script, early_stopping=2)
    assert len(history["loss"]) == 6, history["val_loss"]
    assert_weights(model, val.weights[3])


def test_a_loss_that_never_improves_enough_to_stop_runs_every_epoch():
    history, val, model, _ = run(["good"] * 5, early_stopping=2)
    assert len(history["loss"]) == 5
    assert_weights(model, val.weights[4])          # the last epoch is the best


def test_the_best_weights_come_back_when_the_run_ends_before_patience_runs_out():
    script = ["good", "good", "bad", "bad"]        # 2 bad epochs < patience 3: no stop
    history, val, model, _ = run(script, early_stopping=3)
    assert len(history["loss"]) == 4
    assert_weights(model, val.weights[1])


def test_early_stopping_off_keeps_the_last_epochs_weights():
    script = ["good", "bad", "bad", "bad", "bad"]
    history, val, model, _ = run(script, early_stopping=0)
    assert len(history["loss"]) == 5
    assert_weights(model, val.weights[-1])         # not the best epoch's (the first)
    assert differs(val.weights[0], val.weights[-1])


def test_the_plateau_schedule_halves_the_rate_on_the_third_bad_epoch():
    # ReduceLROnPlateau(factor 0.5, patience 2), as the examples build it; history["lr"] is
    # the rate each epoch trained with
    script = ["good", "bad", "bad", "bad", "bad", "bad", "bad", "good"]
    history, _, _, opt = run(script, early_stopping=0, lr=0.04, scheduler=lambda o:
                             ReduceLROnPlateau(o, mode="min", factor=0.5, patience=2))
    assert history["lr"] == pytest.approx([0.04, 0.04, 0.04, 0.04, 0.02, 0.02, 0.02, 0.01])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)


def test_a_checkpoint_after_each_epoch_holds_that_epoch(tmp_path):
    ck = tmp_path / "ck.npz"
    seen = []

    def look(epoch, history):
        state = train.load_checkpoint(ck)
        seen.append((state["epoch"], len(state["history"]["loss"])))

    script = ["good", "good", "bad", "bad"]
    history, val, _, _ = run(script, early_stopping=2, checkpoint_path=ck, on_epoch_end=look)
    assert seen == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert len(history["loss"]) == 4


# -- ReduceLROnPlateau by hand: the floor, the cooldown, the threshold, mode max ------------

def plateau_rates(metrics, **kwargs):
    model = nn.Linear(2, 1)
    opt = SGD(model.parameters(), lr=1.0)
    sched = ReduceLROnPlateau(opt, **kwargs)
    rates = []
    for m in metrics:
        sched.step(m)
        rates.append(opt.param_groups[0]["lr"])
    return rates


def test_plateau_counts_bad_epochs_beyond_patience():
    assert plateau_rates([5, 5, 5, 5, 5, 5, 5], factor=0.5, patience=2) == \
        pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.25])
    assert plateau_rates([5, 6, 4, 6, 6, 6], factor=0.5, patience=1) == \
        pytest.approx([1, 1, 1, 1, 0.5, 0.5])
    assert plateau_rates([5, 5, 5], factor=0.1, patience=0) == pytest.approx([1, 0.1, 0.01])


def test_plateau_stops_at_min_lr():
    assert plateau_rates([5] * 6, factor=0.5, patience=0, min_lr=0.2) == \
        pytest.approx([1, 0.5, 0.25, 0.2, 0.2, 0.2])


def test_plateau_cooldown_ignores_bad_epochs():
    assert plateau_rates([5] * 7, factor=0.5, patience=0, cooldown=2) == \
        pytest.approx([1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25])


def test_plateau_threshold_and_mode_max():
    # rel threshold 0.1: 4.6 is not below 5 * 0.9 = 4.5, so it is a bad epoch
    assert plateau_rates([5, 4.6, 4.6], factor=0.5, patience=1, threshold=0.1) == \
        pytest.approx([1, 1, 0.5])
    assert plateau_rates([5, 4.4, 4.0], factor=0.5, patience=0, threshold=0.1) == \
        pytest.approx([1, 1, 0.5])
    # abs threshold 0.5: 4.6 is not below 4.5; 4.4 is
    assert plateau_rates([5, 4.6, 4.4], factor=0.5, patience=0, threshold=0.5,
                         threshold_mode="abs") == pytest.approx([1, 0.5, 0.5])
    assert plateau_rates([1, 2, 2, 1], mode="max", factor=0.5, patience=1) == \
        pytest.approx([1, 1, 1, 0.5])


# -- what the history holds, recomputed by hand from the weights each epoch had ---------------

def forward(weights, images, mean=0.5, std=0.25):
    """Logits of the linear model with `weights` on uint8 images, normalised as fit does."""
    import tinylesion.nn.functional as F  # noqa: F401
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, K))
    model.load_state_dict(weights)
    x = (images.astype(np.float64) / 255 - mean) / std
    with tl.no_grad():
        return model(tl.Tensor(x.astype(np.float32))).numpy().astype(np.float64)


def cross_entropy(logits, labels, weights=None):
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    w = np.ones(K) if weights is None else np.asarray(weights, np.float64)
    picked = -logp[np.arange(len(labels)), labels]
    return float((w[labels] * picked).sum() / w[labels].sum())


@pytest.mark.parametrize("class_weights", [None, [0.5, 1.0, 2.0]])
def test_history_holds_the_losses_and_scores_of_each_epoch(class_weights):
    script = ["good", "good", "bad", "good"]
    history, val, _, _ = run(script, early_stopping=0, class_weights=None if class_weights is None
                             else np.array(class_weights, np.float32))
    x, y = data()
    for e, weights in enumerate(val.weights):
        labels = (y + 1) % K if script[e] == "bad" else y
        logits = forward(weights, x)
        assert history["val_loss"][e] == pytest.approx(
            cross_entropy(logits, labels, class_weights), rel=1e-4), e
        predicted = logits.argmax(axis=1)
        assert history["val_accuracy"][e] == pytest.approx(np.mean(predicted == labels))
        f1 = []
        for k in range(K):
            tp = np.sum((predicted == k) & (labels == k))
            fp, fn = np.sum((predicted == k) & (labels != k)), np.sum((predicted != k) &
                                                                      (labels == k))
            f1.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
        assert history["val_macro_f1"][e] == pytest.approx(np.mean(f1)), e
        if e > 0:   # the epoch's training loss: the one batch, before its step
            assert history["loss"][e] == pytest.approx(
                cross_entropy(forward(val.weights[e - 1], x), y, class_weights), rel=1e-4)
            assert history["accuracy"][e] == pytest.approx(
                np.mean(forward(val.weights[e - 1], x).argmax(axis=1) == y))


def test_without_validation_the_training_loss_decides():
    tl.manual_seed(0)
    x, y = data()
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, K))
    opt = SGD(model.parameters(), lr=0.05)
    history = train.fit(model, opt, OneBatch(x, y), None, epochs=3, mean=(0.5,) * 3,
                        std=(0.25,) * 3, early_stopping=1, progress=False, log=lambda *a: None)
    assert history["val_loss"] == [None] * 3 and history["val_accuracy"] == [None] * 3
    assert len(history["loss"]) == 3 and history["loss"][2] < history["loss"][0]


class Noisy(nn.Module):
    """A linear model with dropout: training mode and eval mode give different outputs."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(3 * 4 * 4, K))

    def forward(self, x):
        return self.net(x)


def test_evaluation_runs_in_eval_mode_and_restores_the_mode():
    tl.manual_seed(0)
    x, y = data()
    model = Noisy()
    model.train()
    y_true, first = train.evaluate_model(model, OneBatch(x, y), mean=(0.5,) * 3,
                                         std=(0.25,) * 3)
    assert model.training                        # back in training mode
    _, second = train.evaluate_model(model, OneBatch(x, y), mean=(0.5,) * 3, std=(0.25,) * 3)
    np.testing.assert_array_equal(first, second)     # no dropout: the same scores twice
    model.eval()
    z = (x.astype(np.float64) / 255 - 0.5) / 0.25
    with tl.no_grad():
        logits = model(tl.Tensor(z.astype(np.float32))).numpy().astype(np.float64)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(first, expected / expected.sum(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_array_equal(y_true, y)


def test_resume_needs_a_checkpoint_path():
    tl.manual_seed(0)
    x, y = data()
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, K))
    with pytest.raises(ValueError, match="checkpoint_path"):
        train.fit(model, SGD(model.parameters(), lr=0.1), OneBatch(x, y), epochs=2,
                  resume=True, progress=False, log=lambda *a: None)


def test_resume_without_the_scheduler_the_checkpoint_had(tmp_path):
    ck = tmp_path / "ck.npz"
    plateau = lambda o: ReduceLROnPlateau(o, factor=0.5, patience=0)
    run(["good", "bad", "bad"], early_stopping=0, epochs=2, scheduler=plateau,
        checkpoint_path=ck)
    history, _, _, opt = run(["good", "bad", "bad"], early_stopping=0, epochs=3,
                             checkpoint_path=ck, resume=True)
    assert len(history["loss"]) == 3
    assert history["lr"] == pytest.approx([0.05, 0.05, 0.025])   # the optimizer kept its rate
    # and with a scheduler, from a checkpoint written without one
    ck2 = tmp_path / "ck2.npz"
    run(["good", "bad", "bad"], early_stopping=0, epochs=2, checkpoint_path=ck2)
    history, _, _, _ = run(["good", "bad", "bad"], early_stopping=0, epochs=3,
                           scheduler=plateau, checkpoint_path=ck2, resume=True)
    assert len(history["loss"]) == 3 and history["lr"] == pytest.approx([0.05, 0.05, 0.05])


def test_resume_with_another_loader_seed_warns(tmp_path):
    class Seeded(OneBatch):
        def __init__(self, images, labels, seed):
            super().__init__(images, labels)
            self.seed = seed

    ck = tmp_path / "ck.npz"
    x, y = data()
    said = []
    for seed, resume, epochs, warns in ((1, False, 1, False), (2, True, 2, True),
                                        (2, True, 3, False)):
        tl.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, K))
        said.clear()
        train.fit(model, SGD(model.parameters(), lr=0.1), Seeded(x, y, seed), epochs=epochs,
                  checkpoint_path=ck, resume=resume, progress=False, log=said.append)
        warned = [line for line in said if "seed" in line]
        assert bool(warned) == warns, said


# -- the validation loss's weighting, binary models, resuming, divergence ----------------------

class Batches:
    """Given (images, labels) batches, the same each epoch."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        yield from self.batches


def test_the_validation_loss_is_the_class_weighted_mean_over_the_whole_set():
    x, y = data()
    w = np.array([0.5, 1.0, 3.0])
    tl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, K))
    start = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    val = Batches([(x[:5], y[:5]), (x[5:], y[5:])])        # batches of unequal weight
    opt = SGD(model.parameters(), lr=0.0)                    # the weights stay at `start`
    history = train.fit(model, opt, OneBatch(x, y), val, epochs=1, class_weights=w,
                        mean=(0.5,) * 3, std=(0.25,) * 3, early_stopping=0, progress=False,
                        log=lambda *a: None)
    assert history["val_loss"][0] == pytest.approx(cross_entropy(forward(start, x), y, w),
                                                   rel=1e-5)
    # a validation set of classes of weight 0 only: the unweighted mean
    zero = y == 0
    history = train.fit(model, opt, OneBatch(x, y), Batches([(x[zero], y[zero])]), epochs=1,
                        class_weights=np.array([0.0, 1.0, 1.0]), mean=(0.5,) * 3,
                        std=(0.25,) * 3, early_stopping=0, progress=False, log=lambda *a: None)
    assert history["val_loss"][0] == pytest.approx(
        cross_entropy(forward(start, x[zero]), y[zero]), rel=1e-5)


def test_a_binary_model_weighs_positives_by_w1_over_w0():
    x, y = data()
    y = (y == 1).astype(np.int64)
    tl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1))
    model.binary = True
    start = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}
    opt = SGD(model.parameters(), lr=0.0)
    history = train.fit(model, opt, OneBatch(x, y), OneBatch(x, y), epochs=1,
                        class_weights=np.array([0.5, 2.0]), mean=(0.5,) * 3, std=(0.25,) * 3,
                        early_stopping=0, progress=False, log=lambda *a: None)
    probe = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1))
    probe.load_state_dict(start)
    z = (x.astype(np.float64) / 255 - 0.5) / 0.25
    with tl.no_grad():
        logit = probe(tl.Tensor(z.astype(np.float32))).numpy().reshape(-1).astype(np.float64)
    log_p, log_q = -np.logaddexp(0, -logit), -np.logaddexp(0, logit)   # log σ, log (1 - σ)
    expected = np.mean(-(2.0 / 0.5) * y * log_p - (1 - y) * log_q)
    assert history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert history["val_loss"][0] == pytest.approx(expected, rel=1e-5)
    # predicted positive where σ(z) >= 0.5, i.e. z >= 0
    assert history["val_accuracy"][0] == pytest.approx(np.mean((logit >= 0) == y))
    assert 0 < np.mean(logit >= 0) < 1


def test_validation_labels_outside_the_models_classes_are_named():
    class Labelled(OneBatch):
        def __init__(self, images, labels):
            super().__init__(images, labels)
            self.dataset = type("D", (), {"targets": labels})()

    x, y = data()
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, K))
    model.num_classes = K
    with pytest.raises(ValueError, match=r"validation data has labels 0\.\.5"):
        train.fit(model, SGD(model.parameters(), lr=0.1), Labelled(x, y),
                  Labelled(x, np.where(y == 2, 5, y)), epochs=1, progress=False,
                  log=lambda *a: None)


def test_resume_keeps_the_schedulers_count_of_bad_epochs(tmp_path):
    script = ["good", "bad", "bad", "bad"]
    plateau = lambda o: ReduceLROnPlateau(o, factor=0.5, patience=1)
    whole, _, _, _ = run(script, early_stopping=0, scheduler=plateau)
    assert whole["lr"] == pytest.approx([0.05, 0.05, 0.05, 0.025])
    ck = tmp_path / "ck.npz"
    run(script, early_stopping=0, epochs=2, scheduler=plateau, checkpoint_path=ck)
    # (the resumed run's validation script starts at its first epoch, the third)
    resumed, _, _, _ = run(script[2:], early_stopping=0, epochs=4, scheduler=plateau,
                           checkpoint_path=ck, resume=True)
    assert resumed["lr"] == pytest.approx(whole["lr"])
    # resume may also be a checkpoint already read
    again, _, _, _ = run(script[2:], early_stopping=0, epochs=4, scheduler=plateau,
                         resume=train.load_checkpoint(ck))
    assert again["lr"] == pytest.approx(whole["lr"])
    assert again["val_loss"] == pytest.approx(resumed["val_loss"])


def test_a_diverging_run_ends_with_the_best_finite_epochs_weights():
    x, y = data()
    tl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, K))
    val = ScriptedValidation(model, x, y, ["good", "good", "bad", "good"])

    def poison(epoch, history):
        if epoch == 2:
            model.parameters()[0].array[0, 0] = np.nan

    with pytest.raises(train.TrainingError) as info:
        train.fit(model, SGD(model.parameters(), lr=0.05), OneBatch(x, y), val, epochs=4,
                  mean=(0.5,) * 3, std=(0.25,) * 3, early_stopping=0, progress=False,
                  log=lambda *a: None, on_epoch_end=poison)
    assert_weights(model, val.weights[1])          # epoch 2's: the best with finite losses
    assert info.value.best_epoch == 2 and "epoch 2's" in str(info.value)


class CountsValidations(nn.Module):
    """A linear model that counts its validation passes and calls validated(out) on each."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, K))
        self.validations = 0

    def forward(self, x):
        out = self.net(x)
        if not self.training:
            self.validations += 1
            return self.validated(out)
        return out


class NaNWhenValidating(CountsValidations):
    """Outputs NaN in eval mode from its second validation on."""

    def validated(self, out):
        return out * float("nan") if self.validations >= 2 else out


def test_a_nan_validation_loss_stops_the_run():
    x, y = data()
    tl.manual_seed(0)
    model = NaNWhenValidating()
    with pytest.raises(train.TrainingError, match="validation loss became nan at epoch 2"):
        train.fit(model, SGD(model.parameters(), lr=0.05), OneBatch(x, y), OneBatch(x, y),
                  epochs=4, mean=(0.5,) * 3, std=(0.25,) * 3, early_stopping=0,
                  progress=False, log=lambda *a: None)


class PoisonedAfterValidating(CountsValidations):
    """Its weight turns NaN right after its third validation pass."""

    def validated(self, out):
        if self.validations == 3:
            self.net[1].weight.array[0, 0] = np.nan
        return out


def test_a_weight_that_turns_nan_stops_the_run_and_drops_that_epoch(tmp_path):
    x, y = data()
    tl.manual_seed(0)
    model = PoisonedAfterValidating()
    ck = tmp_path / "ck.npz"
    with pytest.raises(train.TrainingError, match="NaN or infinite at epoch 3") as info:
        train.fit(model, SGD(model.parameters(), lr=0.05), OneBatch(x, y), OneBatch(x, y),
                  epochs=4, mean=(0.5,) * 3, std=(0.25,) * 3, early_stopping=0,
                  checkpoint_path=ck, progress=False, log=lambda *a: None)
    assert all(len(values) == 2 for values in info.value.history.values()), info.value.history
    assert info.value.checkpoint_epoch == 2 and "after epoch 2" in str(info.value)
    assert train.load_checkpoint(ck)["epoch"] == 2
    assert np.all(np.isfinite(model.net[1].weight.numpy()))    # epoch 1's weights are back


def test_an_equal_validation_loss_is_not_an_improvement():
    # lr 0: the weights, and so the validation loss, stay exactly as they were
    history, _, _, _ = run(["good"] * 6, early_stopping=2, lr=0.0)
    assert len(set(history["val_loss"])) == 1
    assert len(history["loss"]) == 3            # the best epoch, then 2 without improvement
