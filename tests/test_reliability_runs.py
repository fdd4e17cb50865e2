"""Never lose a run (issue 17): checks before the run folder changes, whole replacement, one
writer, what --resume may change, divergence, full disks; the examples run in-process."""
import errno
import json
import os
import socket

import numpy as np
import pytest

from tinylesion import io, predict, train
from tinylesion.runfolder import STAGING, RunFolder
from tinylesion.runlock import LOCK_NAME, RunLock

from example_runs import one_line, quick, run, snapshot


@pytest.fixture
def earlier(run_copy):
    """A copy of the finished run with a file of the user's own in it."""
    (run_copy / "notes.txt").write_text("mine")
    return run_copy


# -- 1. nothing changes before everything is checked; replaced whole ---------------------------

def test_a_typo_in_data_keeps_the_earlier_run(tiny_ham, earlier, tmp_path, capsys):
    before = snapshot(earlier)
    code, _ = run(*quick(tmp_path / "no-such-data", earlier))
    assert code == 2 and "no such folder" in one_line(capsys)
    assert snapshot(earlier) == before


def test_a_metadata_file_missing_a_column_keeps_the_earlier_run(ham_copy, earlier, capsys):
    data = ham_copy
    meta = data / "HAM10000_metadata.csv"
    lines = meta.read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("dx")
    meta.write_text("\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != drop)
                              for line in lines) + "\n")
    before = snapshot(earlier)
    code, _ = run(*quick(data, earlier))
    assert code == 2 and "dx" in one_line(capsys)
    assert snapshot(earlier) == before


def test_a_model_too_big_for_the_size_keeps_the_earlier_run(tiny_ham, earlier, capsys):
    before = snapshot(earlier)
    assert run(*quick(tiny_ham, earlier), "--model", "padua4", "--image-size", "8x6")[0] == 2
    assert "too small" in one_line(capsys)
    assert snapshot(earlier) == before


def test_a_broken_image_found_while_reading_keeps_the_earlier_run(ham_copy, earlier, tmp_path,
                                                                  capsys):
    data = ham_copy
    image = sorted(data.rglob("*.jpg"))[-1]
    image.write_bytes(image.read_bytes()[:100])
    before = snapshot(earlier)
    assert run(*quick(data, earlier), "--cache", tmp_path / "cache")[0] == 2
    assert image.name in one_line(capsys)
    assert snapshot(earlier) == before


def test_nothing_is_created_for_a_run_that_fails_its_checks(tmp_path, capsys):
    out = tmp_path / "new" / "run"
    assert run(*quick(tmp_path / "absent", out))[0] == 2
    one_line(capsys)
    assert not (tmp_path / "new").exists()


def test_the_earlier_run_stays_whole_until_the_new_one_ends(tiny_ham, earlier, monkeypatch):
    """While the new run trains, --out holds the earlier run, whole; at the end, the new one,
    whole (each file of one run), with the user's own files kept."""
    before = snapshot(earlier)
    seen = {}
    fit = train.fit

    def watching_fit(*a, **k):
        history = fit(*a, **k)
        seen["during"] = {n: b for n, b in snapshot(earlier).items()
                          if not n.startswith(".")}
        return history

    monkeypatch.setattr(train, "fit", watching_fit)
    code, logged = run(*quick(tiny_ham, earlier, "--seed", "3"))
    assert code == 0
    assert seen["during"] == {n: b for n, b in before.items() if not n.startswith(".")}
    assert any("it is replaced when this run ends" in line for line in logged)
    after = snapshot(earlier)
    assert after["notes.txt"] == b"mine" and not (earlier / STAGING).exists()
    assert not (earlier / LOCK_NAME).exists()
    for name in ("run.json", "weights.npz", "checkpoint.npz", "metrics.json"):
        assert after[name] != before[name], name
    run_json = json.loads(after["run.json"])
    assert run_json["settings"]["seed"] == 3
    # the new weights are the new checkpoint's (restored best) weights: one run's files
    ck = train.load_checkpoint(earlier / "checkpoint.npz")
    weights = io.load(earlier / "weights.npz")
    for k, v in weights.items():
        np.testing.assert_array_equal(v, ck["best"][k])


def test_a_move_cut_short_is_finished_by_the_next_writer(tiny_ham, earlier, monkeypatch, capsys):
    """Power lost half-way through swapping the files in: predict refuses the mixed folder
    in one line; the next writer finishes the move (roll forward from the journal)."""
    real = os.replace
    moved = []

    def dying_replace(src, dst):
        if str(src).startswith(str(earlier / STAGING)) and os.path.dirname(dst) == str(earlier):
            if len(moved) == 2:
                raise OSError(errno.EIO, "Input/output error")
            moved.append(dst)
        return real(src, dst)

    import tinylesion.runfolder as runfolder
    monkeypatch.setattr(runfolder.os, "replace", dying_replace)
    code, _ = run(*quick(tiny_ham, earlier, "--seed", "5"))
    monkeypatch.setattr(runfolder.os, "replace", real)
    assert code == 1 and "Input/output error" in one_line(capsys)
    assert RunFolder(earlier).moving()
    image = str(sorted(tiny_ham.rglob("*.jpg"))[0])
    assert predict.main(["--weights", str(earlier), image]) == 2
    assert "being moved into this folder" in one_line(capsys)
    with RunLock(earlier, log=lambda *a: None):
        RunFolder(earlier).recover(log=lambda *a: None)
    assert not (earlier / STAGING).exists()
    assert json.loads((earlier / "run.json").read_text())["settings"]["seed"] == 5
    assert predict.main(["--weights", str(earlier), image]) == 0


# -- 2. one writer per run folder --------------------------------------------------------------

def test_a_second_writer_is_refused_in_one_line(tiny_ham, earlier, capsys):
    before = snapshot(earlier)
    with RunLock(earlier, log=lambda *a: None):
        code, _ = run(*quick(tiny_ham, earlier))
        assert code == 2
        line = one_line(capsys)
        assert "another run" in line and f"pid {os.getpid()}" in line
        assert socket.gethostname() in line
        code, _ = run(*quick(tiny_ham, earlier), "--resume")
        assert code == 2 and "another run" in one_line(capsys)
    assert {k: v for k, v in snapshot(earlier).items()} == before


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_note(tiny_ham, earlier):
    (earlier / LOCK_NAME).write_text(json.dumps({"pid": 999999999, "host": "elsewhere",
                                                 "since": "2026-01-01 00:00:00"}))
    code, logged = run(*quick(tiny_ham, earlier))
    assert code == 0
    assert any("took over the lock left by pid 999999999 on host elsewhere" in line
               for line in logged)
    assert not (earlier / LOCK_NAME).exists()


def test_the_lock_without_flock_is_an_exclusive_file(tmp_path, monkeypatch):
    import fcntl
    monkeypatch.setattr(fcntl, "flock", lambda *a: (_ for _ in ()).throw(
        OSError(errno.ENOLCK, "No locks available")))
    notes = []
    with RunLock(tmp_path, log=notes.append):
        with pytest.raises(Exception, match="another run"):
            RunLock(tmp_path, log=notes.append).acquire()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 999999999, "host":
                                                  socket.gethostname(), "since": "then"}))
    with RunLock(tmp_path, log=notes.append):
        pass
    assert any("took over" in n for n in notes)


# -- 3. --resume honours a change and says so, or refuses it -----------------------------------

def test_resume_with_another_optimizer_is_refused_in_one_line(tiny_ham, earlier, capsys):
    before = snapshot(earlier)
    code, _ = run(*quick(tiny_ham, earlier, "--resume", "--optimizer", "sgd", "--epochs", "2"))
    assert code == 2
    line = one_line(capsys)
    assert "trained with --optimizer adam, not sgd" in line
    assert snapshot(earlier) == before


def test_resume_takes_the_runs_own_settings_when_not_given(tiny_ham, tmp_path):
    out = tmp_path / "run"
    assert run(*quick(tiny_ham, out, "--optimizer", "sgd", "--lr", "0.02", "--seed", "4"))[0] == 0
    # no --optimizer, --lr, --seed: the run's own, not the defaults (adam, 1e-3, 0)
    code, logged = run("--data", tiny_ham, "--workers", "0", "--out", out, "--resume",
                       "--epochs", "2")
    assert code == 0, logged
    said = " ".join(logged)
    assert "sgd lr 0.02 (the checkpoint's)" in said and "--epochs 2 (was 1)" in said
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert settings["optimizer"] == "sgd" and settings["seed"] == 4
    assert settings["batch_size"] == 8 and settings["image_size"] == [16, 12]
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 3


def test_resume_with_another_lr_uses_it_and_says_so(tiny_ham, earlier):
    code, logged = run(*quick(tiny_ham, earlier, "--resume", "--lr", "0.5", "--epochs", "2"))
    assert code == 0, logged
    said = " ".join(logged)
    assert "adam lr 0.5," in said and "--lr 0.5 (was 0.001)" in said
    lr = [float(line.split(",")[-1]) for line in
          (earlier / "history.csv").read_text().splitlines()[1:]]
    assert lr == [0.001, 0.5]             # what was printed is what trained epoch 2
    ck = train.load_checkpoint(earlier / "checkpoint.npz")
    assert ck["optimizer"]["param_groups"][0]["lr"] == 0.5
    settings = json.loads((earlier / "run.json").read_text())["settings"]
    assert settings["changed_on_resume"]["lr"] == [0.001, 0.5]


@pytest.mark.parametrize("flag, value, words", [
    ("--model", "padua2", "--model padua1, not padua2"),
    ("--image-size", "20x16", "--image-size 16x12, not 20x16"),
    ("--seed", "7", "--seed 0, not 7"),
    ("--split", "70/20/10", "--split 80/10/10, not 70/20/10")])
def test_resume_refuses_what_the_checkpoint_cannot_follow(tiny_ham, earlier, flag, value,
                                                          words, capsys):
    before = snapshot(earlier)
    assert run(*quick(tiny_ham, earlier, "--resume"), flag, value)[0] == 2
    assert words in one_line(capsys)
    assert snapshot(earlier) == before


def test_resume_of_a_damaged_run_is_one_line_naming_the_key(tiny_ham, earlier, capsys):
    saved = json.loads((earlier / "run.json").read_text())
    saved["settings"]["lr"] = "fast"
    (earlier / "run.json").write_text(json.dumps(saved))
    assert run(*quick(tiny_ham, earlier, "--resume"))[0] == 2
    assert "key 'settings.lr'" in one_line(capsys)
    saved["settings"]["lr"] = 0.001
    del saved["mean"]
    (earlier / "run.json").write_text(json.dumps(saved))
    assert run(*quick(tiny_ham, earlier, "--resume"))[0] == 2
    assert "key 'mean' is missing" in one_line(capsys)


def test_resume_of_a_tampered_checkpoint_names_the_entry(tiny_ham, earlier, capsys):
    ck = train.load_checkpoint(earlier / "checkpoint.npz")
    ck["epoch"] = -3
    train.save_checkpoint(ck, earlier / "checkpoint.npz")
    assert run(*quick(tiny_ham, earlier, "--resume"))[0] == 2
    line = one_line(capsys)
    assert "cannot continue from" in line and "entry 'epoch'" in line
    ck["epoch"] = 1
    good = ck["model"]["0.weight"]
    for where in ("model", "best"):  # the best weights, restored at the end, checked at once
        ck[where]["0.weight"] = np.zeros((1, 1))
        train.save_checkpoint(ck, earlier / "checkpoint.npz")
        assert run(*quick(tiny_ham, earlier, "--resume"))[0] == 2
        assert "0.weight: checkpoint (1, 1)" in one_line(capsys)
        ck[where]["0.weight"] = good
    ck["scheduler"]["best"] = "low"
    train.save_checkpoint(ck, earlier / "checkpoint.npz")
    assert run(*quick(tiny_ham, earlier, "--resume"))[0] == 2
    assert "entry 'scheduler.best' must be a number" in one_line(capsys)
    ck["scheduler"]["best"] = 0.5
    train.save_checkpoint(ck, earlier / "checkpoint.npz")
    assert run(*quick(tiny_ham, earlier, "--resume"))[0] == 0


# -- 4. a non-finite loss stops the run; the best finite weights are kept ----------------------

def _nan_on_eval(monkeypatch, at_call):
    real = train._run_eval
    calls = []

    def poisoned(*a, **k):
        y_true, y_score, loss = real(*a, **k)
        calls.append(1)
        return y_true, y_score, (float("nan") if len(calls) == at_call else loss)

    monkeypatch.setattr(train, "_run_eval", poisoned)


@pytest.mark.parametrize("early_stop", ["10", "0"])
def test_a_nan_validation_loss_stops_and_keeps_the_best_finite_epoch(tiny_ham, tmp_path,
                                                                     monkeypatch, capsys,
                                                                     early_stop):
    out = tmp_path / "run"
    _nan_on_eval(monkeypatch, at_call=3)
    code, logged = run(*quick(tiny_ham, out, "--epochs", "5", "--early-stop", early_stop))
    assert code == 1
    line = one_line(capsys)
    assert "validation loss became nan at epoch 3" in line
    assert "last good checkpoint (after epoch 2)" in line and f"{out} holds the weights" in line
    ck = train.load_checkpoint(out / "checkpoint.npz")
    assert ck["epoch"] == 2 and len(ck["history"]["val_loss"]) == 2
    best = int(np.argmin(ck["history"]["val_loss"])) + 1
    assert f"weights of epoch {best}" in line
    weights = io.load(out / "weights.npz")
    for k, v in weights.items():
        assert np.isfinite(v).all()
        np.testing.assert_array_equal(v, ck["best"][k])
    assert len((out / "history.csv").read_text().splitlines()) == 3
    assert predict.main(["--weights", str(out), str(sorted(tiny_ham.rglob("*.jpg"))[0])]) == 0


def test_divergence_in_the_first_epoch_writes_nothing_and_claims_no_checkpoint(
        tiny_ham, earlier, monkeypatch, capsys):
    before = snapshot(earlier)
    _nan_on_eval(monkeypatch, at_call=1)
    code, _ = run(*quick(tiny_ham, earlier, "--epochs", "3", "--early-stop", "0"))
    assert code == 1
    line = one_line(capsys)
    assert "nothing was written" in line and "checkpoint" not in line
    assert snapshot(earlier) == before


def test_a_really_diverging_run_is_one_line_and_writes_only_finite_weights(tiny_ham, tmp_path,
                                                                           capsys):
    out = tmp_path / "run"
    code, _ = run(*quick(tiny_ham, out, "--optimizer", "sgd", "--lr", "50", "--epochs", "4",
                         "--early-stop", "0"))
    assert code == 1  # the loss is NaN in the first epoch: nothing finite to keep
    line = one_line(capsys)
    assert "loss became nan at epoch 1" in line and "nothing was written" in line
    assert "checkpoint" not in line and not out.exists()


# -- 6. a full disk or read-only folder: one line naming the path, the earlier state kept -------

def _failing_npz_writer(monkeypatch, when):
    """io.save's writer runs out of space half-way through the `when`-th file."""
    real = io._write_npz
    calls = []

    def half(f, entries):
        calls.append(1)
        if len(calls) == when:
            f.write(b"PK\x03\x04 half a zip")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(f, entries)

    monkeypatch.setattr(io, "_write_npz", half)


def test_a_full_disk_at_the_weights_keeps_the_earlier_run_and_the_checkpoint(
        tiny_ham, earlier, monkeypatch, capsys):
    before = snapshot(earlier)
    _failing_npz_writer(monkeypatch, when=2)  # 1: the epoch's checkpoint, 2: weights.npz
    code, _ = run(*quick(tiny_ham, earlier, "--seed", "2"))
    assert code == 1
    line = one_line(capsys)
    assert f"cannot write {earlier / STAGING / 'weights.npz'}: No space left" in line
    assert f"continue with --resume --out {earlier}" in line
    after = snapshot(earlier)
    assert {k: v for k, v in after.items() if not k.startswith(STAGING)} == before
    assert not [n for n in after if n.endswith(".tmp")]         # no half-written file
    monkeypatch.undo()
    code, logged = run(*quick(tiny_ham, earlier, "--resume"))       # the hint works
    assert code == 0, logged
    assert json.loads((earlier / "run.json").read_text())["settings"]["seed"] == 2
    assert not (earlier / STAGING).exists()


def test_a_full_disk_at_the_first_checkpoint_leaves_nothing(tiny_ham, earlier, monkeypatch, capsys):
    before = snapshot(earlier)
    _failing_npz_writer(monkeypatch, when=1)
    code, _ = run(*quick(tiny_ham, earlier))
    assert code == 1
    line = one_line(capsys)
    assert "checkpoint.npz: No space left on device" in line and "--resume" not in line
    assert snapshot(earlier) == before


def test_a_full_disk_at_a_json_file_is_one_line(tiny_ham, tmp_path, monkeypatch, capsys):
    import tinylesion.runfolder as runfolder
    real = runfolder.write_atomic

    def full(path, fill, mode="wb"):
        if str(path).endswith("metrics.json"):
            def half(f):
                f.write("{" if "b" not in mode else b"{")
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(path, half, mode)
        return real(path, fill, mode)

    monkeypatch.setattr(runfolder, "write_atomic", full)
    out = tmp_path / "run"
    assert run(*quick(tiny_ham, out))[0] == 1
    assert "cannot write" in one_line(capsys)
    assert not (out / "metrics.json").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_a_read_only_out_folder_is_one_line(tiny_ham, tmp_path, monkeypatch, capsys):
    import tinylesion.runlock as runlock
    real = os.open

    def read_only(path, flags, *a):
        if str(path).endswith(LOCK_NAME):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, flags, *a)

    out = tmp_path / "run"
    out.mkdir()
    monkeypatch.setattr(runlock.os, "open", read_only)
    assert run(*quick(tiny_ham, out))[0] == 2
    line = one_line(capsys)
    assert f"--out {out}" in line and "Read-only file system" in line
