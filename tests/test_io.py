"""tl.save / tl.load: exact round trips, atomic writes, clean refusals, optimizer resumption."""
import json
import math
import os
import pickle
import zipfile

import numpy as np
import pytest

import tinylesion as tl
from tinylesion import io, optim
from tinylesion.io import CheckpointError


def nested_state():
    rng = np.random.default_rng(0)
    return {
        "model": {"0.weight": rng.standard_normal((4, 3)).astype(np.float32),
                  "0.bias": np.zeros(4, np.float32),
                  "1.running_var": rng.random(5),  # float64 stays float64
                  "1.num_batches": np.array(7, dtype=np.int64)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": rng.standard_normal((4, 3))},
                                2: {"step": 3, "exp_avg": np.arange(6, dtype=np.int64)}},
                      "param_groups": [{"lr": 1e-3, "betas": [0.9, 0.999], "params": [0, 1]}]},
        "epoch": 3,
        "best": -math.inf,
        "name": "ham-cnn ✓",
        "done": False,
        "note": None,
        "history": {"loss": [2.5, 1.25, 0.5], "acc": [0.1, 0.5]},
        "empty": {},
        "masks": {"keep": np.array([True, False]), "pixels": np.zeros((2, 0, 3), np.uint8)},
    }


def assert_same(a, b, where="state"):
    """Equal structure, key order, types, dtypes and values."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b)
    else:
        assert type(a) is type(b) and (a == b or (a != a and b != b)), where


def test_round_trip_of_nested_dicts(tmp_path):
    state = nested_state()
    path = io.save(state, tmp_path / "ckpt.npz")
    assert path == str(tmp_path / "ckpt.npz")
    assert_same(state, io.load(path))


def test_json_values_round_trip_except_tuples_become_lists(tmp_path):
    state = {"betas": (0.9, 0.999), "nan": math.nan, "np": np.float32(0.5), "i": np.int64(4),
             "groups": [{"lr": 0.1, "params": [0, 1]}]}
    out = io.load(io.save(state, tmp_path / "a"))
    assert out["betas"] == [0.9, 0.999] and math.isnan(out["nan"])
    assert out["np"] == 0.5 and out["i"] == 4 and type(out["i"]) is int
    assert out["groups"] == [{"lr": 0.1, "params": [0, 1]}]


def test_tensors_are_saved_as_their_arrays(tmp_path):
    t = tl.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    out = io.load(io.save({"t": t}, tmp_path / "t.npz"))
    np.testing.assert_array_equal(out["t"], t.array)


def test_exactly_the_path_given_is_written_and_old_npz_names_still_load(tmp_path):
    for name in ("weights", "model.pt"):
        path = io.save({"x": np.ones(2)}, tmp_path / name)
        assert path == str(tmp_path / name) and os.path.exists(path)
        assert not os.path.exists(str(tmp_path / name) + ".npz")
        np.testing.assert_array_equal(io.load(tmp_path / name)["x"], [1.0, 1.0])
    io.save({"x": np.zeros(2)}, tmp_path / "old.npz")    # where older versions wrote "old"
    np.testing.assert_array_equal(io.load(tmp_path / "old")["x"], [0.0, 0.0])


def test_file_is_a_plain_npz_with_flattened_names(tmp_path):
    path = io.save(nested_state(), tmp_path / "c.npz")
    with np.load(path, allow_pickle=False) as z:
        assert "model/0.weight" in z.files and "optimizer/state/0/exp_avg" in z.files
        assert z["model/0.weight"].dtype == np.float32
        assert z["epoch"].shape == () and z["epoch"].dtype.kind == "U"
        assert json.loads(str(z["history/loss"])) == [2.5, 1.25, 0.5]
        assert json.loads(str(z["__tinylesion__"]))["format"] == "tinylesion"


def test_file_mode_follows_the_umask(tmp_path):
    mask = os.umask(0o022)
    try:
        path = io.save({"x": np.ones(1)}, tmp_path / "m.npz")
    finally:
        os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o644


# ---- atomic writes ---------------------------------------------------------------------------
def test_failure_during_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = io.save({"x": np.arange(3)}, tmp_path / "ckpt.npz")
    real_write = np.lib.format.write_array
    calls = []

    def failing_write(f, array, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first entry is already in the new archive
            raise OSError("disk full")
        return real_write(f, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(OSError, match="disk full"):
        io.save({"x": np.arange(5), "y": np.zeros(1000)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(io.load(path)["x"], [0, 1, 2])
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # the temporary file is gone


def test_unsaveable_value_fails_before_touching_the_file(tmp_path):
    path = io.save({"x": np.arange(3)}, tmp_path / "ckpt.npz")
    with pytest.raises(CheckpointError, match="'model/w'.*Python objects"):
        io.save({"model": {"w": np.array([{}, 1], dtype=object)}}, path)
    np.testing.assert_array_equal(io.load(path)["x"], [0, 1, 2])
    assert os.listdir(tmp_path) == ["ckpt.npz"]


@pytest.mark.parametrize("state, message", [
    ({"a": {1, 2}}, "'a': a set is neither an array nor a JSON value"),
    ({"a": [np.zeros(2)]}, "'a'.*ndarray inside a list"),
    ({"a": object()}, "'a': a object"),
    ({("a", 1): 1}, "keys must be str or int"),
    ({"a/b": 1, "a": {"b": 2}}, "same entry 'a/b'"),
    ({"__tinylesion__": 1}, "reserved name"),
    ([np.zeros(2)], "expects a dict"),
])
def test_unsaveable_states_are_named(tmp_path, state, message):
    with pytest.raises(CheckpointError, match=message):
        io.save(state, tmp_path / "x.npz")


class _ForeignArray:
    """Stands in for another library's tensor (a PyTorch state_dict's): shape, dtype and
    __array__, but no NumPy array in .data."""

    def __init__(self, array):
        self._array, self.shape, self.dtype = array, array.shape, array.dtype
        self.data = self  # as torch.Tensor.data: the tensor itself

    def __array__(self, dtype=None, copy=None):
        return self._array


def test_another_librarys_tensors_are_saved_as_arrays(tmp_path):
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    path = io.save({"0.weight": _ForeignArray(weight)}, tmp_path / "from_torch.npz")
    back = io.load(path)["0.weight"]
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, weight)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder .*nowhere does not exist"):
        io.save({"x": np.ones(1)}, tmp_path / "nowhere" / "x.npz")


# ---- refusing what is not a tinylesion file ---------------------------------------------------
def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file at .*absent.npz"):
        io.load(tmp_path / "absent.npz")


def test_a_folder_is_named_as_a_folder(tmp_path):
    from tinylesion.checkpoints import load_checkpoint
    folder = tmp_path / "weights.npz"
    folder.mkdir()
    for read in (io.load, tl.load, load_checkpoint):
        with pytest.raises(CheckpointError, match=f"^{folder} is a folder, not a checkpoint file"):
            read(folder)
    with pytest.raises(CheckpointError, match=f"^{folder} is a folder"):  # found by the .npz
        io.load(tmp_path / "weights")                                    # an old save added
    with pytest.raises(IsADirectoryError, match=f"^cannot save {folder}: it is a folder"):
        io.save({"x": np.ones(1)}, folder)
    assert list(folder.iterdir()) == []


def test_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __tinylesion__=np.array(json.dumps(
        {"format": "tinylesion", "version": 1, "tree": {"dict": [["x", {"array": "x"}]]}})),
        x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match=r"evil.npz: entry 'x' holds pickled"):
        io.load(path)


def test_pickle_file_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"w": np.ones(3)}))
    with pytest.raises(CheckpointError, match="model.pt is not a tinylesion checkpoint"):
        io.load(path)


def test_plain_npz_and_npy_are_refused(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.ones(2))
    with pytest.raises(CheckpointError, match="plain.npz is a .npz file but not a tinylesion"):
        io.load(tmp_path / "plain.npz")
    np.save(tmp_path / "one.npy", np.ones(2))
    with pytest.raises(CheckpointError, match="one.npy holds a single NumPy array"):
        io.load(tmp_path / "one.npy")


def test_truncated_and_garbage_files_are_refused(tmp_path):
    path = io.save(nested_state(), tmp_path / "full.npz")
    data = open(path, "rb").read()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.npz"):
        io.load(tmp_path / "cut.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(CheckpointError, match="text.npz is not a tinylesion checkpoint"):
        io.load(tmp_path / "text.npz")


def test_newer_format_and_damaged_manifest_are_named(tmp_path):
    def write(name, manifest, **entries):
        with zipfile.ZipFile(tmp_path / name, "w") as zf:
            for key, array in dict(entries, __tinylesion__=np.array(manifest)).items():
                with zf.open(key + ".npy", "w") as f:
                    np.lib.format.write_array(f, array)
        return tmp_path / name

    future = json.dumps({"format": "tinylesion", "version": 99, "tree": {"dict": []}})
    with pytest.raises(CheckpointError, match="format 99"):
        io.load(write("future.npz", future))
    lost = json.dumps({"format": "tinylesion", "version": 1,
                       "tree": {"dict": [["w", {"array": "w"}]]}})
    with pytest.raises(CheckpointError, match="lost.npz is damaged.*'w'"):
        io.load(write("lost.npz", lost))
    with pytest.raises(CheckpointError, match="bad.npz: unreadable"):
        io.load(write("bad.npz", "{not json"))


# ---- resuming training from a checkpoint -------------------------------------------------------
def _model():
    tl.manual_seed(0)
    return tl.nn.Sequential(tl.nn.Linear(4, 6), tl.nn.ReLU(), tl.nn.Linear(6, 3))


def _train(model, opt, sched, batches):
    for x, y in batches:
        opt.zero_grad()
        loss = ((model(tl.Tensor(x)) - tl.Tensor(y)) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step(loss.item())
    return [p.array.copy() for p in model.parameters()]


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.01, weight_decay=1e-3),
    lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: optim.NAdam(ps, lr=0.01),
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
], ids=["sgd", "adam", "amsgrad", "nadam", "rmsprop"])
def test_optimizer_round_trip_through_save_load_resumes_identically(tmp_path, make_opt):
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal((5, 4)).astype(np.float32),
                rng.standard_normal((5, 3)).astype(np.float32)) for _ in range(8)]
    model = _model()
    opt = make_opt(model.parameters())
    sched = optim.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    _train(model, opt, sched, batches[:4])
    io.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "epoch": 4}, tmp_path / "ckpt.pt")
    expected = _train(model, opt, sched, batches[4:])

    checkpoint = io.load(tmp_path / "ckpt.pt")
    assert checkpoint["epoch"] == 4
    resumed = _model()
    resumed.load_state_dict(checkpoint["model"])
    opt2 = make_opt(resumed.parameters())
    opt2.load_state_dict(checkpoint["optimizer"])
    sched2 = optim.ReduceLROnPlateau(opt2)
    sched2.load_state_dict(checkpoint["scheduler"])
    for a, b in zip(expected, _train(resumed, opt2, sched2, batches[4:])):
        np.testing.assert_array_equal(a, b)
    assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]


def test_a_torch_save_zip_file_is_read_through_the_restricted_unpickler(tmp_path):
    # the layout torch.save writes: a zip archive holding a pickle (more in test_weights_files)
    with zipfile.ZipFile(tmp_path / "model.pth", "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": [1.0]}, protocol=2))
        zf.writestr("archive/version", "3\n")
    assert io.load(tmp_path / "model.pth") == {"w": [1.0]}
