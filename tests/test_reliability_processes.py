"""Never lose a run (issue 17) across processes: Ctrl-C at many moments (Numba kernels, the
loader's threads), two processes writing one --out, and a small full tmpfs."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinylesion import cli, io, train
from tinylesion.data import make_synthetic
from tinylesion.runfolder import STAGING
from tinylesion.runlock import LOCK_NAME

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ham(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("ham") / "ham", n=60, seed=0,
                          image_size=(64, 48))


def example(*args):
    """The ham example started in a subprocess (line-buffered stdout, stderr captured)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(ROOT / "examples" / "ham_cnn.py"),
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=env)


def flags(data, out, *more):
    return ["--data", data, "--model", "padua2", "--image-size", "48x36", "--batch-size", "4",
            "--epochs", "3", "--workers", "2", "--out", out, *more]


def wait_for(proc, words, timeout=300):
    """Read the process's stdout until a line holds `words`; False if it ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            return False
        if words in line:
            return True
    return False


def interrupt(proc, delay):
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def checkpoint_of(out):
    for folder in (out / STAGING, out):
        if (folder / "checkpoint.npz").is_file():
            path = folder / "checkpoint.npz"
            return train.check_checkpoint(train.load_checkpoint(path), path)
    return None


@pytest.mark.parametrize("when, delay", [
    ("data:", 0.0),          # reading the images: the channel statistics' threads
    ("model padua2", 0.2),   # in the first epoch: Numba kernels, the loader's threads
    ("model padua2", 1.0),   # later in training (the run ends about 2 s after that line)
    ("epoch 1/3", 0.0),      # just after the first checkpoint
    ("epoch 1/3", 0.7),
    ("epoch 2/3", 0.3)])
def test_ctrl_c_exits_130_with_one_line_and_a_working_hint(ham, tmp_path, when, delay):
    out = tmp_path / "run"
    proc = example(*flags(ham, out, "--cache" if when == "data:" else "--seed",
                          tmp_path / "cache" if when == "data:" else 0))
    assert wait_for(proc, when), proc.communicate()[1][-2000:]
    if when.startswith("epoch"):  # the epoch's line is logged just before its checkpoint
        end = time.monotonic() + 60
        while not (out / STAGING / "checkpoint.npz").exists() and time.monotonic() < end:
            time.sleep(0.01)
    code, err = interrupt(proc, delay)
    lines = err.strip().splitlines()
    assert code == 130 and len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert lines[0].startswith("interrupted")
    ck = checkpoint_of(out)
    if "with --resume --out" in lines[0]:
        assert ck is not None and ck["epoch"] >= 1   # the hint names a checkpoint that is
    else:
        assert ck is None and "nothing" in lines[0]
    assert not (out / LOCK_NAME).exists()
    if when == "epoch 1/3" and delay == 0.0:       # the hint works
        assert "with --resume --out" in lines[0]
        proc = example(*flags(ham, out, "--resume", "--workers", "0"))
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        assert json.loads((out / "metrics.json").read_text())["settings"]["resumed_after_epoch"] \
            >= 1


def test_ctrl_c_repeated_during_training_never_a_traceback(ham, tmp_path):
    """SIGINT sent again and again lands sooner or later inside a Numba kernel, where the
    dispatcher reports it as a SystemError: still one line and status 130."""
    out = tmp_path / "run"
    proc = example(*flags(ham, out, "--epochs", "2"))
    assert wait_for(proc, "model padua2")
    time.sleep(0.5)
    for pause in (0.01, 0.01, 0.2, 0.01, 0.3, 0.05):
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGINT)
        time.sleep(pause)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and len(err.strip().splitlines()) == 1, err[-3000:]


def test_an_interrupt_reported_as_a_system_error_by_numba_is_ctrl_c(tmp_path, monkeypatch,
                                                                    capsys):
    from tinylesion.data import make_synthetic as synth
    data = synth(tmp_path / "ham", n=24, seed=0, image_size=(32, 24))

    def numba_dispatcher(*_, **__):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError("CPUDispatcher(<function conv>) returned a result with an "
                              "exception set") from exc

    monkeypatch.setattr(train, "fit", numba_dispatcher)
    args = cli.parse_args("ham", ["--data", str(data), "--model", "padua1", "--image-size",
                                  "16x12", "--workers", "0", "--out", str(tmp_path / "run")])
    try:
        with pytest.raises(SystemExit) as stop:
            cli.run(args, "ham", log=lambda *a: None)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # run() ignores it after
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 130 and "\n" not in err
    assert "before the first epoch ended: nothing to resume" in err and "--resume --out" not in err
    assert not (tmp_path / "run").exists()


def test_two_processes_on_one_out_folder(ham, tmp_path):
    """The second writer is refused in one line while the first runs; the folder ends with
    the first run's files, all of one run."""
    out = tmp_path / "run"
    first = example(*flags(ham, out, "--epochs", "2", "--seed", "1"))
    end = time.monotonic() + 300
    while not (out / LOCK_NAME).exists() and first.poll() is None and time.monotonic() < end:
        time.sleep(0.05)
    assert (out / LOCK_NAME).exists()
    second = example(*flags(ham, out, "--epochs", "1", "--seed", "2"))
    _, err2 = second.communicate(timeout=300)
    _, err1 = first.communicate(timeout=600)
    assert first.returncode == 0, err1[-3000:]
    lines = err2.strip().splitlines()
    assert second.returncode == 2 and len(lines) == 1 and "another run (pid" in lines[0], err2
    assert f"pid {first.pid}" in lines[0]
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["seed"] == 1
    ck = train.load_checkpoint(out / "checkpoint.npz")
    weights = io.load(out / "weights.npz")
    assert ck["epoch"] == 2 and all(np.array_equal(v, ck["best"][k]) for k, v in weights.items())


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 1 MB tmpfs, where this machine lets us mount one (root, no container limits)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + done.stderr.decode().strip())
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_cache_on_a_full_disk_is_one_line_not_sigbus(ham, tmp_path, tiny_tmpfs):
    out = tmp_path / "run"
    proc = example(*flags(ham, out, "--image-size", "256x192", "--cache", tiny_tmpfs))
    _, err = proc.communicate(timeout=600)
    lines = err.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, err[-3000:]   # SIGBUS would be -7
    assert f"cannot write {tiny_tmpfs}" in lines[0] and "No space left on device" in lines[0]
    assert "MB" in lines[0] and list(tiny_tmpfs.iterdir()) == []
    assert not out.exists()


def test_a_run_folder_on_a_full_disk_is_one_line(ham, tiny_tmpfs):
    out = tiny_tmpfs / "run"
    proc = example(*flags(ham, out, "--model", "padua4", "--image-size", "100x75",
                          "--epochs", "1", "--workers", "0"))  # a 9 MB checkpoint
    _, err = proc.communicate(timeout=600)
    lines = err.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, err[-3000:]
    assert "cannot write" in lines[0] and "No space left on device" in lines[0]
    assert not [p for p in tiny_tmpfs.rglob("*") if p.is_file()]


def test_kill_9_then_resume_ends_as_an_uninterrupted_run(ham, tmp_path):
    """kill -9 after the first checkpoint: the lock is taken over with a note, and --resume
    ends with the weights an uninterrupted run ends with, bit for bit."""
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    proc = example(*flags(ham, whole, "--epochs", "2", "--workers", "0"))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    proc = example(*flags(ham, cut, "--epochs", "2", "--workers", "0"))
    end = time.monotonic() + 600
    while not (cut / STAGING / "checkpoint.npz").exists() and time.monotonic() < end:
        time.sleep(0.02)
    proc.kill()
    proc.communicate(timeout=60)
    assert (cut / LOCK_NAME).exists() and not (cut / "weights.npz").exists()
    proc = example(*flags(ham, cut, "--resume", "--workers", "0", "--epochs", "2"))
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "took over the lock left by pid" in out and "resuming from" in out
    a, b = io.load(whole / "weights.npz"), io.load(cut / "weights.npz")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
