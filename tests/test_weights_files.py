"""Weights files from other libraries: PyTorch's zip .pth read without torch and without
running code from it, .safetensors, and get_model(weights=) with its head handling."""
import os
import pickle
import struct
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tinylesion as tl
from tinylesion import models
from tinylesion.io import CheckpointError
from tinylesion.models import HeadDroppedWarning, load_weights
from tinylesion.nn.module import StateDictError

FIXTURES = Path(__file__).resolve().parent / "fixtures"


# ---- a real torch.save file (bench/torch_weights_fixture.py) -------------------------------
def test_a_torch_save_file_loads_exactly_without_torch():
    state = tl.load(FIXTURES / "torch_state.pth")
    expected = np.load(FIXTURES / "torch_state_expected.npz")
    assert list(state) == list(expected.files)
    for key in expected.files:
        assert state[key].dtype == expected[key].dtype, key
        assert state[key].shape == expected[key].shape, key
        np.testing.assert_array_equal(state[key], expected[key], err_msg=key)
    # views saved with their storage: a slice at an offset, a column, a transpose
    np.testing.assert_array_equal(state["big.rows"], state["big"][1:3])
    np.testing.assert_array_equal(state["big.column"], state["big"][:, 2])
    np.testing.assert_array_equal(state["big.transposed"], state["big"].T)
    assert state["bfloat16"].dtype == np.float32 and state["half"].dtype == np.float16
    assert "torch" not in sys.modules


# ---- crafted files: a pickle written opcode by opcode (protocol 2) -------------------------
def _text(s):
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(i):
    return b"J" + struct.pack("<i", i)


def _tuple(items):
    return b"(" + b"".join(items) + b"t"


def _global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _tensor(key, numel, offset, size, stride, storage="FloatStorage"):
    """The opcodes of torch._utils._rebuild_tensor_v2 on storage `key`, as torch.save."""
    pid = _tuple([_text("storage"), _global("torch", storage), _text(key), _text("cpu"),
                  _int(numel)]) + b"Q"
    hooks = _global("collections", "OrderedDict") + b")R"
    return (_global("torch._utils", "_rebuild_tensor_v2")
            + _tuple([pid, _int(offset), _tuple(map(_int, size)), _tuple(map(_int, stride)),
                      b"\x89", hooks]) + b"R")


def _state(entries):
    """A pickled dict {name: opcodes}."""
    body = b"".join(_text(k) + v for k, v in entries.items())
    return b"\x80\x02}(" + body + b"u."


def _write_zip(path, pickled, storages, prefix="archive"):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{prefix}/data.pkl", pickled)
        zf.writestr(f"{prefix}/byteorder", "little")
        for key, raw in storages.items():
            zf.writestr(f"{prefix}/data/{key}", raw)
        zf.writestr(f"{prefix}/version", "3\n")
    return path


def test_a_crafted_file_of_strided_views_reads_as_torch_would(tmp_path):
    data = np.arange(12, dtype=np.float32)
    path = _write_zip(tmp_path / "views.pth", _state({
        "whole": _tensor("0", 12, 0, (3, 4), (4, 1)),
        "corner": _tensor("0", 12, 5, (2, 2), (4, 1)),
        "columns": _tensor("0", 12, 1, (3, 3), (1, 4)),
        "counts": _tensor("1", 2, 0, (2,), (1,), "LongStorage")}),
        {"0": data.tobytes(), "1": np.array([3, -4], np.int64).tobytes()})
    state = tl.load(path)
    np.testing.assert_array_equal(state["whole"], data.reshape(3, 4))
    np.testing.assert_array_equal(state["corner"], [[5, 6], [9, 10]])
    np.testing.assert_array_equal(state["columns"], data.reshape(3, 4)[:, 1:].T)
    assert state["counts"].dtype == np.int64 and state["counts"].tolist() == [3, -4]


class _RunsACommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_pickle_that_would_run_a_command_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    pickled = pickle.dumps({"w": _RunsACommand(f"touch {marker}")}, protocol=2)
    path = _write_zip(tmp_path / "evil.pth", pickled, {})
    with pytest.raises(CheckpointError, match=r"evil.pth: it names the global (posix|os|nt)\."
                                              r"system.*refused, nothing was run") as info:
        tl.load(path)
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="system"):
        models.get_model("mobilenet_v3_small", weights=path)
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("torch", "load"),
                                          ("numpy.core.multiarray", "_reconstruct"),
                                          ("torch._utils", "_rebuild_device_tensor_from_numpy")])
def test_an_unknown_global_is_refused_by_name(tmp_path, module, name):
    pickled = b"\x80\x02}(" + _text("w") + _global(module, name) + b")Ru."
    path = _write_zip(tmp_path / "odd.pth", pickled, {})
    with pytest.raises(CheckpointError, match=f"names the global {module}.{name}"):
        tl.load(path)


def test_a_truncated_zip_is_refused(tmp_path):
    raw = (FIXTURES / "torch_state.pth").read_bytes()
    for cut in (len(raw) // 2, len(raw) - 30):
        path = tmp_path / "cut.pth"
        path.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match="cut.pth"):
            tl.load(path)


def test_a_storage_too_short_is_refused(tmp_path):
    pickled = _state({"w": _tensor("0", 12, 0, (3, 4), (4, 1))})
    path = _write_zip(tmp_path / "short.pth", pickled, {"0": np.zeros(11, np.float32).tobytes()})
    with pytest.raises(CheckpointError, match=r"short.pth: storage '0' \(FloatStorage\) should "
                                              r"hold 12 entries \(48 bytes\).*44 bytes"):
        tl.load(path)


@pytest.mark.parametrize("offset, size, stride", [(1, (3, 4), (4, 1)), (0, (4, 4), (4, 1)),
                                                  (0, (3, 4), (5, 1)), (12, (1,), (1,))])
def test_a_view_beyond_its_storage_is_refused(tmp_path, offset, size, stride):
    pickled = _state({"w": _tensor("0", 12, offset, size, stride)})
    path = _write_zip(tmp_path / "over.pth", pickled, {"0": np.zeros(12, np.float32).tobytes()})
    with pytest.raises(CheckpointError, match=r"over.pth: a tensor of size .* reads entry "
                                              r"\d+ of storage '0', which has only 12"):
        tl.load(path)


def test_other_malformed_files_are_refused_in_one_line(tmp_path):
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps({"w": [1.0]}, protocol=2))
    with pytest.raises(CheckpointError, match="bare pickle.*legacy format.*not read"):
        tl.load(legacy)
    bare = _write_zip(tmp_path / "bare.pth", b"\x80\x02" + _tensor("0", 2, 0, (2,), (1,))
                      + b".", {"0": np.zeros(2, np.float32).tobytes()})
    with pytest.raises(CheckpointError, match="holds a ndarray, not a dict of tensors"):
        tl.load(bare)
    odd_id = _write_zip(tmp_path / "id.pth", b"\x80\x02}(" + _text("w") + _tuple(
        [_text("storage")]) + b"Qu.", {})
    with pytest.raises(CheckpointError, match="unexpected persistent id"):
        tl.load(odd_id)
    missing = _write_zip(tmp_path / "missing.pth", _state({"w": _tensor("7", 2, 0, (2,), (1,))}),
                         {})
    with pytest.raises(CheckpointError, match="storage '7' has no entry archive/data/7"):
        tl.load(missing)
    garbage = _write_zip(tmp_path / "garbage.pth", b"\x80\x02}(not a pickle", {})
    with pytest.raises(CheckpointError, match="garbage.pth: its data.pkl is not a readable"):
        tl.load(garbage)


# ---- safetensors ---------------------------------------------------------------------------
def test_safetensors_files_load(tmp_path):
    from safetensors.numpy import save_file
    state = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(3, np.int64),
             "h": np.ones(4, np.float16)}
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    loaded = tl.load(path)
    assert sorted(loaded) == sorted(state)
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(CheckpointError, match="bad.safetensors is not a readable safetensors"):
        tl.load(bad)



def test_a_safetensors_file_written_by_torch_loads_with_bfloat16_as_float32():
    """safetensors.torch's file of the same tensors (stored fixture): bfloat16, the dtype of
    most files on the Hugging Face hub, is read exactly (its bits are float32's upper half)."""
    state = tl.load(FIXTURES / "torch_state.safetensors")
    expected = np.load(FIXTURES / "torch_state_expected.npz")
    assert sorted(state) == sorted(expected.files)
    for key in expected.files:
        assert state[key].dtype == expected[key].dtype, key
        np.testing.assert_array_equal(state[key], expected[key], err_msg=key)
    assert state["bfloat16"].dtype == np.float32 and state["half"].dtype == np.float16


def _bfloat16_file(path, arrays, cut=0):
    """A safetensors file of bfloat16 tensors (float32 values truncated to their upper half),
    written byte by byte as the format describes; `cut` drops that many data bytes."""
    import json
    header, data = {}, b""
    for key, value in arrays.items():
        bits = (np.asarray(value, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        header[key] = {"dtype": "BF16", "shape": list(np.shape(value)),
                       "data_offsets": [len(data), len(data) + len(bits)]}
        data += bits
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[:len(data) - cut])
    return path


def test_a_bfloat16_checkpoint_fine_tunes_a_model(tmp_path):
    tl.manual_seed(0)
    source = models.get_model("resnet18", num_classes=7)
    state = {k: _array(v).astype(np.float32) for k, v in source.state_dict().items()
             if _array(v).dtype == np.float32}
    path = _bfloat16_file(tmp_path / "bf16.safetensors", state)
    loaded = tl.load(path)
    for key, value in state.items():   # each value rounded toward zero to 8 mantissa bits
        truncated = (value.view(np.uint32) & 0xFFFF0000).view(np.float32)
        np.testing.assert_array_equal(loaded[key], truncated, err_msg=key)
    model = models.get_model("resnet18", num_classes=7, weights=path)
    for key, value in model.state_dict().items():
        if key in loaded:
            assert _array(value).dtype == np.float32, key
            np.testing.assert_array_equal(_array(value), loaded[key], err_msg=key)
    short = _bfloat16_file(tmp_path / "short.safetensors", {"w": np.ones((2, 3))}, cut=2)
    with pytest.raises(CheckpointError, match="short.safetensors is not a readable"):
        tl.load(short)

# ---- get_model(weights=): the head, and every other key ------------------------------------
def _array(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _saved(model, path, **extra):
    """Save the model's state_dict as a .safetensors file (other libraries' format)."""
    from safetensors.numpy import save_file
    state = {k: np.array(_array(v), order="C") for k, v in model.state_dict().items()}
    state.update(extra)
    save_file(state, str(path))
    return path


def _equal(a, b, skip=()):
    """Model b holds model a's values under every key of b but `skip`."""
    source = a.state_dict()
    for k, y in b.state_dict().items():
        if k not in skip:
            np.testing.assert_array_equal(_array(source[k]), _array(y), err_msg=k)


def test_a_head_for_other_classes_is_dropped_and_said(tmp_path):
    tl.manual_seed(0)
    source = models.get_model("mobilenet_v3_small", num_classes=1000)
    path = _saved(source, tmp_path / "imagenet.safetensors")
    tl.manual_seed(1)
    fresh = models.get_model("mobilenet_v3_small", num_classes=7)
    with pytest.warns(HeadDroppedWarning, match=r"dropped classifier.3.weight \(1000, 1024\), "
                                                r"classifier.3.bias \(1000,\)"):
        tl.manual_seed(1)
        model = models.get_model("mobilenet_v3_small", num_classes=7, weights=path)
    _equal(source, model, skip=("classifier.3.weight", "classifier.3.bias"))
    np.testing.assert_array_equal(model.classifier[3].weight.numpy(),
                                  fresh.classifier[3].weight.numpy())  # its own initialisation
    messages = []
    assert load_weights(fresh, path, log=messages.append) == ["classifier.3.weight",
                                                              "classifier.3.bias"]
    assert len(messages) == 1 and "7 classes" in messages[0]


def test_a_head_that_fits_is_kept_so_a_fine_tuned_file_reloads_whole(tmp_path):
    tuned = models.get_model("mobilenet_v3_small", num_classes=2)
    tl.save(tuned.state_dict(), tmp_path / "tuned.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = models.get_model("mobilenet_v3_small", num_classes=2,
                                 weights=tmp_path / "tuned.pth")
    _equal(tuned, again)
    tl.save({"model": tuned.state_dict(), "epoch": 3}, tmp_path / "checkpoint.pth")
    _equal(tuned, models.get_model("mobilenet_v3_small", num_classes=2,
                                   weights=tmp_path / "checkpoint.pth"))


def test_every_other_mismatch_is_an_error_naming_the_key_and_changes_nothing(tmp_path):
    source = models.get_model("mobilenet_v3_small", num_classes=3)
    state = {k: _array(v) for k, v in source.state_dict().items()}
    target = models.get_model("mobilenet_v3_small", num_classes=3)
    before = {k: _array(v).copy() for k, v in target.state_dict().items()}
    cases = [
        ({k: v for k, v in state.items() if k != "features.1.block.0.0.weight"},
         "missing keys: features.1.block.0.0.weight"),
        (dict(state, **{"features.99.weight": np.zeros(1, np.float32)}),
         "unexpected keys: features.99.weight"),
        (dict(state, **{"features.0.1.bias": np.zeros(17, np.float32)}),
         r"mis-shaped keys: features.0.1.bias \(file \(17,\), model \(16,\)\)"),
    ]
    for broken, message in cases:
        with pytest.raises(StateDictError, match=message):
            load_weights(target, broken)
    for k, v in target.state_dict().items():
        np.testing.assert_array_equal(_array(v), before[k], err_msg=k)
    with pytest.raises(StateDictError, match="does not fit resnet18: missing keys"):
        models.get_model("resnet18", weights=_saved(source, tmp_path / "other.safetensors"))


def test_old_files_without_batch_norm_counters_load():
    source = models.get_model("mobilenet_v3_small", num_classes=3)
    state = {k: _array(v) for k, v in source.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    target = models.get_model("mobilenet_v3_small", num_classes=3)
    assert load_weights(target, state) == []
    _equal(source, target)


def test_inception_takes_a_file_with_its_auxiliary_head_either_way(tmp_path):
    source = models.get_model("inception_v3", num_classes=1000, aux_logits=True)
    path = _saved(source, tmp_path / "inception.safetensors")
    without = models.get_model("inception_v3", num_classes=1000, weights=path)
    assert without.AuxLogits is None
    _equal(source, without, skip=[k for k in source.state_dict() if k.startswith("AuxLogits")])
    with_aux = models.get_model("inception_v3", num_classes=1000, aux_logits=True,
                                weights=path)
    _equal(source, with_aux)
    with pytest.warns(HeadDroppedWarning, match="AuxLogits.fc.weight.*fc.weight"):
        models.get_model("inception_v3", num_classes=5, aux_logits=True, weights=path)


def test_densenet_takes_the_published_files_older_key_names():
    source = models.get_model("densenet121", num_classes=4)
    old = {k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): _array(v)
           for k, v in source.state_dict().items()}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    target = models.get_model("densenet121", num_classes=4)
    load_weights(target, old)
    _equal(source, target)
