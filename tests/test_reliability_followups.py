"""Follow-ups to issue 17 (never lose a run): a weight turning non-finite stops the run with
the best finite epoch kept; the cached synthetic dataset is made by one process at a time and
never used half made."""
import json
import os

import numpy as np
import pytest

import tinylesion as tl
from tinylesion import train
from tinylesion.optim import Adam

from test_train import ArrayLoader, blobs, small_cnn


class PoisonAt:
    """An optimizer that steps as `inner` does, then writes `value` into `target` (a name of
    the model's state_dict) after the last step of epoch `epoch` (1-based)."""

    def __init__(self, inner, model, target, epoch, steps_per_epoch, value=np.inf):
        self.inner, self.model, self.target, self.value = inner, model, target, value
        self.at, self.steps = epoch * steps_per_epoch, 0
        self.param_groups = inner.param_groups

    def zero_grad(self):
        self.inner.zero_grad()

    def step(self):
        self.inner.step()
        self.steps += 1
        if self.steps == self.at:
            self.model.state_dict()[self.target][...] = self.value

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, state):
        self.inner.load_state_dict(state)


@pytest.mark.parametrize("target, value", [("6.weight", np.inf), ("1.running_var", np.nan)])
def test_a_non_finite_weight_stops_the_run_and_keeps_the_best_finite_epoch(tmp_path, target,
                                                                           value):
    tl.manual_seed(0)
    model = small_cnn()
    x, y = blobs(48, 1)
    loader = ArrayLoader(x, y, batch_size=16)
    opt = PoisonAt(Adam(model.parameters(), lr=1e-2), model, target, epoch=2,
                   steps_per_epoch=len(loader), value=value)
    seen = []
    path = tmp_path / "checkpoint.npz"
    with pytest.raises(train.TrainingError) as caught:
        train.fit(model, opt, loader, epochs=4, checkpoint_path=path, progress=False,
                  log=lambda *a: None, on_epoch_end=lambda e, h: seen.append(
                      {k: v.copy() for k, v in model.state_dict().items()}))
    error = caught.value
    assert f"weight {target} became NaN or infinite at epoch 2" in str(error)
    assert error.best_epoch == 1 and error.checkpoint_epoch == 1
    assert all(len(v) == 1 for v in error.history.values())   # nothing of epoch 2
    for k, v in model.state_dict().items():                    # epoch 1's weights, finite
        np.testing.assert_array_equal(v, seen[0][k])
    ck = train.load_checkpoint(path)
    assert ck["epoch"] == 1 and all(np.isfinite(v).all() for v in ck["model"].values())


# -- the synthetic dataset in the cache: made by one process, never seen half made ------------

MAKER = r"""
import json, os, sys, time
from pathlib import Path
from tinylesion.data import synthetic
from tinylesion.data.datasets import HAM10000

real, calls = synthetic.make_synthetic, []

def slow(out, **kwargs):
    calls.append(1)
    Path(sys.argv[1]).write_text("making")
    time.sleep(float(sys.argv[2]))
    return real(out, **kwargs)

synthetic.make_synthetic = slow
render = synthetic._render
synthetic._render = lambda job: (time.sleep(float(sys.argv[3])), render(job))
notes = []
root = synthetic.default_synthetic_root("ham10000", n=20, seed=3, image_size=(40, 30),
                                        log=notes.append)
ds = HAM10000(root)
pixels = [int(ds.load(i).sum()) for i in range(len(ds))]   # every image read whole
print(json.dumps(dict(root=str(root), made=len(calls), notes=notes, images=len(ds),
                      pixels=sum(pixels))))
"""


def _maker(cache, marker, delay, per_image=0):
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, TINYLESION_CACHE=str(cache),
               PYTHONPATH=os.pathsep.join([str(root)] + [p for p in [os.environ.get(
                   "PYTHONPATH")] if p]))
    return subprocess.Popen([sys.executable, "-c", MAKER, str(marker), str(delay),
                             str(per_image)], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(path, proc, seconds=120):
    import time
    end = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the first process never started making the dataset"
        time.sleep(0.05)


def test_two_processes_make_the_synthetic_dataset_once_and_both_read_it_whole(tmp_path):
    cache = tmp_path / "cache"
    first = _maker(cache, tmp_path / "first", 3)
    _wait_for(tmp_path / "first", first)                  # the first one is making it now
    second = _maker(cache, tmp_path / "second", 0)
    results = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    a, b = results
    assert a["made"] == 1 and b["made"] == 0              # made once
    assert a["root"] == b["root"] and a["images"] == b["images"] == 20
    assert a["pixels"] == b["pixels"]
    assert len(b["notes"]) == 1 and "waiting for it to finish" in b["notes"][0]
    assert f"pid {first.pid}" in b["notes"][0] and not a["notes"]
    assert [p.name for p in cache.iterdir()] == ["synthetic-ham10000-20-3-40x30"]


def test_a_half_made_synthetic_dataset_of_a_killed_process_is_never_used(tmp_path, monkeypatch):
    import signal
    from tinylesion.data import HAM10000, synthetic
    cache = tmp_path / "cache"
    proc = _maker(cache, tmp_path / "first", 0, per_image=0.5)
    name = "synthetic-ham10000-20-3-40x30"
    _wait_for(tmp_path / "first", proc)
    import time
    while not list(cache.glob(f".{name}.tmp-*/HAM10000_images_part_*/*.jpg")):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)                                  # some images written, not all
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert not (cache / name).exists() and list(cache.glob(f".{name}.tmp-*"))
    monkeypatch.setenv("TINYLESION_CACHE", str(cache))
    notes = []
    root = synthetic.default_synthetic_root("ham10000", n=20, seed=3, image_size=(40, 30),
                                            log=notes.append)
    assert root == cache / name and len(HAM10000(root)) == 20
    assert [p.name for p in cache.iterdir()] == [name]    # the half-made folder removed
    assert len(notes) == 1 and f"pid {proc.pid}" in notes[0] and "no longer runs" in notes[0]


def test_a_cached_synthetic_dataset_missing_an_image_is_made_again(tmp_path, monkeypatch):
    from tinylesion.data import HAM10000, synthetic
    monkeypatch.setenv("TINYLESION_CACHE", str(tmp_path))
    root = synthetic.default_synthetic_root("ham10000", n=20, seed=3, image_size=(40, 30),
                                            log=lambda *a: None)
    victim = sorted(root.rglob("*.jpg"))[5]
    victim.unlink()
    again = synthetic.default_synthetic_root("ham10000", n=20, seed=3, image_size=(40, 30),
                                             log=lambda *a: None)
    assert again == root and victim.is_file() and len(HAM10000(root)) == 20
    assert [p.name for p in tmp_path.iterdir()] == [root.name]


# -- a run that stopped early, resumed with a larger patience, trains on ---------------------

def _policy_fit(script, patience, epochs, checkpoint, resume=False, logged=None):
    from test_training_policy import OneBatch, ScriptedValidation, data
    from tinylesion import nn
    from tinylesion.optim import SGD
    tl.manual_seed(0)
    x, y = data()
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    opt = SGD(model.parameters(), lr=0.05)
    val = ScriptedValidation(model, x, y, script)
    history = train.fit(model, opt, OneBatch(x, y), val, epochs=epochs, mean=(0.5,) * 3,
                        std=(0.25,) * 3, early_stopping=patience, checkpoint_path=checkpoint,
                        resume=resume, progress=False,
                        log=(lambda *a: None) if logged is None else logged.append)
    return history, model


@pytest.mark.parametrize("patience", [4, 0])
def test_a_stopped_run_resumed_with_a_larger_early_stop_trains_on_as_if_never_stopped(
        tmp_path, patience):
    script = ["good", "bad", "bad", "good", "bad", "good"]
    full, full_model = _policy_fit(script, patience, 6, tmp_path / "full.npz")
    stopped, _ = _policy_fit(script, 2, 6, tmp_path / "part.npz")
    assert len(stopped["loss"]) == 3                        # stopped early after epoch 3
    logged = []
    resumed, model = _policy_fit(script[3:], patience, 6, tmp_path / "part.npz", resume=True,
                                 logged=logged)
    assert any("had stopped early at epoch 3" in line and "it goes on" in line
               for line in logged), logged
    assert resumed == full
    for k, v in full_model.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v)


def test_a_stopped_run_resumed_with_the_same_early_stop_stays_stopped_and_says_how_to_go_on(
        tmp_path):
    script = ["good", "bad", "bad", "good", "bad", "good"]
    stopped, stopped_model = _policy_fit(script, 2, 6, tmp_path / "part.npz")
    logged = []
    resumed, model = _policy_fit(script[3:], 2, 9, tmp_path / "part.npz", resume=True,
                                 logged=logged)
    assert resumed == stopped
    assert any("already stopped early at epoch 3" in line and "larger --early-stop" in line
               for line in logged), logged
    for k, v in stopped_model.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v)


def test_the_ham_example_resumed_with_a_larger_early_stop_trains_on(tmp_path, monkeypatch):
    from test_reliability_runs import quick, run
    from tinylesion.data import make_synthetic
    ham = make_synthetic(tmp_path / "ham", n=24, seed=0, image_size=(32, 24))
    real, losses = train._run_eval, iter([0.5, 0.6, 0.7, 0.4, 0.3])

    def rising(*a, **k):  # fit's validation loss: it rises after epoch 1, then falls
        y_true, y_score, loss = real(*a, **k)
        return y_true, y_score, next(losses) if len(a) == 6 else loss   # else the test set

    monkeypatch.setattr(train, "_run_eval", rising)
    out = tmp_path / "run"
    code, logged = run(*quick(ham, out, "--epochs", "5", "--early-stop", "2"))
    assert code == 0 and any("early stopping" in line for line in logged), logged
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 3
    code, logged = run(*quick(ham, out, "--resume", "--epochs", "5", "--early-stop", "4"))
    assert code == 0, logged
    assert any("--early-stop 4 (was 2)" in line for line in logged), logged
    assert any("had stopped early at epoch 3" in line and "it goes on" in line
               for line in logged), logged
    rows = (out / "history.csv").read_text().splitlines()
    assert len(rows) == 1 + 5 and rows[-1].split(",")[3] == "0.3"


# -- the service: a damaged metrics.json is as none, with a logged note ------------------------

@pytest.mark.parametrize("text", ["[1, 2, 3]", '"accuracy"', "{not json", "null"])
def test_a_malformed_metrics_json_is_served_as_none_with_a_note(tmp_path, caplog, text):
    from tinylesion.serve.runs import _test_metrics
    (tmp_path / "metrics.json").write_text(text)
    with caplog.at_level("WARNING", logger="tinylesion.serve"):
        assert _test_metrics(tmp_path) == {}
    assert f"{tmp_path / 'metrics.json'} is not a JSON object" in caplog.text
    (tmp_path / "metrics.json").write_text('{"accuracy": 0.5, "settings": {}, "f": true}')
    assert _test_metrics(tmp_path) == {"accuracy": 0.5}
    (tmp_path / "metrics.json").unlink()
    caplog.clear()
    assert _test_metrics(tmp_path) == {} and not caplog.text     # absent: no note
