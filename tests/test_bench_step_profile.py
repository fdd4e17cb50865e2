"""bench/step_profile.py: its flags, and tinylesion's per-kernel lines of a padua4 step (the
PyTorch half needs PyTorch and runs outside the tests)."""
import json
import os
import sys

import pytest

# NOTE: appended, not inserted first: bench/kernels.py must not shadow the kernels package
sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import step_profile  # noqa: E402
import train_step  # noqa: E402


def test_flags():
    args = step_profile.parse_args(["--model", "melanoma_cnn", "--steps", "2", "--no-torch"])
    assert (args.model, args.steps, args.no_torch, args.top) == ("melanoma_cnn", 2, True, 25)
    for bad in (["--steps", "0"], ["--top", "0"], ["--model", "resnet9"]):
        with pytest.raises(SystemExit):
            step_profile.parse_args(bad)


def test_module_of_a_kernel_file():
    assert step_profile._module_of(os.path.join("a", "kernels", "relu.py")) == "kernels.relu"
    assert step_profile._module_of(os.path.join("x", "tinylesion", "nn", "layers.py")) == \
        "tinylesion.nn.layers"
    assert step_profile._module_of(os.path.join("numpy", "core", "x.py")) == ""


def test_tinylesion_lines_name_the_kernels_and_add_up(tmp_path, monkeypatch):
    case = train_step.Case("padua4", None, 32, 2, 1, "train")
    data = str(tmp_path / "padua4.npz")
    facts, _ = train_step.prepare(case, data)
    monkeypatch.setenv("STEP_PROFILE_FACTS", json.dumps(
        {k: facts[k] for k in ("num_classes", "size", "binary")}))
    args = step_profile.parse_args(["--steps", "1", "--engine", "tinylesion", "--data", data])
    lines, total = step_profile._profile_tinylesion(args)
    assert total > 0 and abs(sum(lines.values()) - total) < 1e-6 * total
    kernels = {label for label in lines if label.startswith("Numba ")}
    assert "Numba adam.py:_adam_parallel" in kernels
    assert any(label.startswith("Numba winograd") for label in kernels)
    assert max(lines, key=lines.get).startswith("Numba ")   # the convolutions lead
