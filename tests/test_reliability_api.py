"""Never lose a run (issue 17), the API and the files read back: failed calls change nothing
and name the key; run.json, checkpoints and caches are untrusted input."""
import errno
import json
import os

import numpy as np
import pytest

import tinylesion.nn as nn
from tinylesion import cli, io, predict, train
from tinylesion.data import CachedDataset, make_synthetic
from tinylesion.nn.module import StateDictError
from tinylesion.optim import SGD, Adam
from tinylesion.runinfo import RunInfoError, check_run_info
from tinylesion.runlock import RunLock, RunLockedError


def net():
    return nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))


def arrays(module):
    return {k: np.array(v) for k, v in module.state_dict().items()}


# -- 8. load_state_dict that fails changes nothing and names the key ---------------------------

@pytest.mark.parametrize("last", [np.array(["a", "b", "c"]),          # not numbers
                                  np.zeros((2, 3)),                   # wrong shape
                                  [[1, 2], [3]],                      # ragged: no array
                                  np.array([1 + 2j, 0, 0])])          # complex
def test_a_failing_load_state_dict_changes_nothing_and_names_the_key(last):
    model, other = net(), net()
    before = arrays(model)
    state = {k: v + 1 if v.dtype.kind == "f" else v for k, v in arrays(other).items()}
    state["3.bias"] = last                                # the last key is the bad one
    with pytest.raises(StateDictError, match=r"3\.bias"):
        model.load_state_dict(state)
    after = arrays(model)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_load_state_dict_of_something_else_is_one_error():
    with pytest.raises(StateDictError, match="expected a dict of arrays"):
        net().load_state_dict([1, 2, 3])


def _trained(opt_cls, **kw):
    model = net()
    opt = opt_cls(model.parameters(), **kw)
    x = np.random.default_rng(0).normal(size=(4, 3, 4, 4)).astype(np.float32)
    import tinylesion as tl
    loss = model(tl.tensor(x)).sum()
    loss.backward()
    opt.step()
    return model, opt


def _optimizer_snapshot(opt):
    return ([{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
            {id(p): {k: np.array(v) for k, v in s.items()} for p, s in opt.state.items()})


def _same(a, b):
    groups_a, state_a = a
    groups_b, state_b = b
    return groups_a == groups_b and state_a.keys() == state_b.keys() and all(
        np.array_equal(state_a[p][k], state_b[p][k]) for p in state_a for k in state_a[p])


@pytest.mark.parametrize("damage, words", [
    (lambda s: s["state"][5].update(exp_avg=np.zeros(7)), "parameter 5: state 'exp_avg'"),
    (lambda s: s["state"][5].update(step="many"), "parameter 5: state 'step'"),
    (lambda s: s["state"][5].update(exp_avg_sq=np.array(["x"] * 3)), "'exp_avg_sq'"),
    (lambda s: s["param_groups"][0].update(lr=-1.0), "parameter group 0"),
    (lambda s: s["param_groups"][0].update(params=["a"] * 6), "'params'"),
    (lambda s: s.update(state=[1]), "'state'")])
def test_a_failing_optimizer_load_state_dict_changes_nothing(damage, words):
    _, source = _trained(Adam, lr=0.01)
    _, target = _trained(Adam, lr=0.5)
    state = source.state_dict()
    state = {"state": {k: dict(v) for k, v in state["state"].items()},
             "param_groups": [dict(g) for g in state["param_groups"]]}
    damage(state)
    before = _optimizer_snapshot(target)
    with pytest.raises(ValueError, match=words):
        target.load_state_dict(state)
    assert _same(_optimizer_snapshot(target), before)


def test_an_adam_state_into_sgd_is_a_value_error_naming_what_differs():
    _, adam = _trained(Adam, lr=0.01)
    model = net()
    sgd = SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = _optimizer_snapshot(sgd)
    with pytest.raises(ValueError, match="hyper-parameters"):
        sgd.load_state_dict(adam.state_dict())
    assert _same(_optimizer_snapshot(sgd), before)


# -- 7. run.json, checkpoints and caches are untrusted --------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("api")
    data = make_synthetic(base / "ham", n=24, seed=0, image_size=(32, 24))
    args = cli.parse_args("ham", ["--data", str(data), "--model", "padua1", "--epochs", "1",
                                  "--image-size", "16x12", "--batch-size", "8", "--workers",
                                  "0", "--out", str(base / "run")])
    cli.run(args, "ham", log=lambda *a: None)
    return base / "run", sorted(data.rglob("*.jpg"))[0]


def _damaged(run_dir, tmp_path, change):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    saved = json.loads((copy / "run.json").read_text())
    change(saved)
    (copy / "run.json").write_text(json.dumps(saved))
    return copy


@pytest.mark.parametrize("key, change", [
    ("model", lambda r: r.pop("model")),
    ("model", lambda r: r.update(model="resnet9000")),
    ("image_size", lambda r: r.update(image_size=[16])),
    ("image_size", lambda r: r.update(image_size=[100000, 12])),
    ("image_size", lambda r: r.update(image_size="16x12")),
    ("mean", lambda r: r.update(mean=[0.5, "x", 0.5])),
    ("std", lambda r: r.update(std=[0.2, 0.0, 0.2])),
    ("std", lambda r: r.pop("std")),
    ("class_names", lambda r: r.update(class_names=["a"])),
    ("class_names", lambda r: r.update(class_names="abc")),
    ("preprocess", lambda r: r.update(preprocess="sharpen")),
    ("binary", lambda r: r.update(binary="no")),
    ("binary", lambda r: r.update(binary=True, class_names=["a", "b"],
                                  config={**r["config"], "num_classes": 2})),
    ("config", lambda r: r.update(config=[])),
    ("config", lambda r: r["config"].update(num_classes=10 ** 9)),
    ("config", lambda r: r["config"].update(depth=3)),
    ("config", lambda r: r["config"].update(image_size=[8, 6]))])
def test_predict_on_a_damaged_run_json_is_one_line_naming_the_key(run_dir, tmp_path, capsys,
                                                                  key, change):
    run, image = run_dir
    copy = _damaged(run, tmp_path, change)
    assert predict.main(["--weights", str(copy), str(image)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"key '{key}'" in err and "Traceback" not in err, err


@pytest.mark.parametrize("text", ["[1, 2]", "not json", "\xff\xfe", "[" * 100000])
def test_predict_on_an_unreadable_run_json_is_one_line(run_dir, tmp_path, capsys, text):
    run, image = run_dir
    copy = _damaged(run, tmp_path, lambda r: None)
    (copy / "run.json").write_bytes(text.encode("latin-1"))
    assert predict.main(["--weights", str(copy), str(image)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "run.json" in err


def test_predict_refuses_weights_with_nan(run_dir, tmp_path, capsys):
    run, image = run_dir
    copy = _damaged(run, tmp_path, lambda r: None)
    weights = io.load(copy / "weights.npz")
    name = sorted(weights)[0]
    weights[name] = np.full_like(weights[name], np.nan)
    io.save(weights, copy / "weights.npz")
    assert predict.main(["--weights", str(copy), str(image)]) == 2
    assert f"'{name}' holds NaN" in capsys.readouterr().err


def test_predict_on_an_unfinished_run_says_so(run_dir, tmp_path, capsys):
    from tinylesion.runfolder import STAGING
    run, image = run_dir
    folder = tmp_path / "unfinished"
    (folder / STAGING).mkdir(parents=True)
    (folder / STAGING / "checkpoint.npz").write_bytes((run / "checkpoint.npz").read_bytes())
    assert predict.main(["--weights", str(folder), str(image)]) == 2
    assert "has not finished: continue it with --resume" in capsys.readouterr().err


def test_check_run_info_accepts_what_a_run_writes(run_dir):
    run, _ = run_dir
    saved = json.loads((run / "run.json").read_text())
    assert check_run_info(saved, "run.json") is saved
    with pytest.raises(RunInfoError, match="must hold a JSON object"):
        check_run_info([saved], "run.json")


@pytest.mark.parametrize("entry, value", [
    ("epoch", "one"), ("epoch", True), ("history", {"loss": "abc"}), ("best_score", "low"),
    ("wait", -1), ("stopped", "yes"), ("rng", {"state": 1}), ("model", {"w": "x"}),
    ("optimizer", [1]), ("best", 3), ("loader_seed", 1.5), ("best_epoch", 9)])
def test_a_tampered_checkpoint_names_its_entry(run_dir, entry, value):
    run, _ = run_dir
    ck = train.load_checkpoint(run / "checkpoint.npz")
    assert train.check_checkpoint(ck, "ck") is ck
    ck[entry] = value
    with pytest.raises(io.CheckpointError, match=f"entry '{entry}'"):
        train.check_checkpoint(ck, "ck")


def test_a_checkpoint_with_a_broken_skeleton_is_one_error(tmp_path):
    io.save({"arrays": {}, "skeleton": np.frombuffer(b'{"__array__": "a9"}', np.uint8)},
            tmp_path / "ck.npz")
    with pytest.raises(io.CheckpointError, match="not a checkpoint of fit, or damaged"):
        train.load_checkpoint(tmp_path / "ck.npz")


class Images:
    """A dataset of constant images (what the cache needs: paths, image_size, load)."""

    def __init__(self, root, n=6):
        self.paths = []
        for i in range(n):
            p = root / f"{i}.bin"
            p.write_bytes(bytes([i]))
            self.paths.append(str(p))
        self.image_size, self.preprocess, self.loads = (5, 4), "resize", 0

    def __len__(self):
        return len(self.paths)

    def load(self, i):
        self.loads += 1
        return np.full((4, 5, 3), i, np.uint8)


def test_a_cache_file_changed_since_it_was_written_is_rebuilt(tmp_path):
    ds = Images(tmp_path)
    cache = CachedDataset(ds, tmp_path / "cache").build(num_workers=1)
    with open(cache.data_path, "r+b") as f:       # someone writes into the cache file
        f.write(b"\xff" * 10)
    ds.loads = 0
    again = CachedDataset(ds, tmp_path / "cache")
    assert not again.complete
    again.build(num_workers=1)
    assert ds.loads == len(ds) and again.load(0).max() == 0


def test_a_cache_that_does_not_fit_on_the_disk_is_an_error_naming_it(tmp_path, monkeypatch):
    import tinylesion.data.cache as cache_module

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module.os, "posix_fallocate", full)
    cache = CachedDataset(Images(tmp_path), tmp_path / "cache")
    with pytest.raises(OSError) as caught:
        cache.build(num_workers=1)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(cache.data_path)
    assert "the cache needs" in caught.value.strerror
    assert os.listdir(tmp_path / "cache") == []        # no half-made file left


def test_without_fallocate_the_cache_is_written_out(tmp_path, monkeypatch):
    import tinylesion.data.cache as cache_module

    def unsupported(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(cache_module.os, "posix_fallocate", unsupported)
    ds = Images(tmp_path)
    cache = CachedDataset(ds, tmp_path / "cache").build(num_workers=1)
    assert cache.complete and cache.load(5).min() == 5


# -- 2. the lock, in one process -------------------------------------------------------------

def test_a_second_lock_on_one_folder_is_refused_and_released_locks_vanish(tmp_path):
    with RunLock(tmp_path, log=lambda *a: None) as held:
        assert held.held
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            RunLock(tmp_path, log=lambda *a: None).acquire()
    assert not any(tmp_path.iterdir())
    with RunLock(tmp_path, log=lambda *a: None):   # free again
        pass


def test_a_lock_file_of_garbage_is_taken_over(tmp_path):
    from tinylesion.runlock import LOCK_NAME
    (tmp_path / LOCK_NAME).write_bytes(b"\x00garbage{")
    notes = []
    with RunLock(tmp_path, log=notes.append):
        pass
    assert any("took over the lock left by an unknown holder" in n for n in notes)
