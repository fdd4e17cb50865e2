"""`mpirun -n 2 python examples/ham_cnn.py --distributed`: the run of one process at the same
global batch, written once by rank 0; resumable in one process; a wrong launch is one line."""
import json

import numpy as np
import pytest

from mpi_launch import ROOT, mpirun, ok, python
from tinylesion.data import make_synthetic

EXAMPLE = ROOT / "examples" / "ham_cnn.py"
# dense_nn: no dropout (its draws differ per rank) and no batch norm (per-rank statistics by
# default); 49 training images: global batches of 14, 14, 14, 7 (the last one split 4 + 3)
FLAGS = ["--model", "dense_nn", "--image-size", "32x24", "--workers", "1"]


@pytest.fixture(scope="module")
def ham(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("ham") / "ham", n=60, seed=0,
                          image_size=(64, 48))


@pytest.fixture(scope="module")
def one(ham, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "run"
    ok(python([EXAMPLE, "--data", ham, *FLAGS, "--epochs", "2", "--batch-size", "14",
               "--out", out], timeout=300))
    return out


def history(out):
    lines = (out / "history.csv").read_text().splitlines()
    return np.array([[float(v) for v in line.split(",")] for line in lines[1:]])


def same_run(a, b):
    np.testing.assert_allclose(history(b), history(a), rtol=1e-4)
    ma, mb = (json.loads((o / "metrics.json").read_text()) for o in (a, b))
    assert {k: v for k, v in ma.items() if k != "settings"} == \
        {k: v for k, v in mb.items() if k != "settings"}
    with np.load(a / "weights.npz") as wa, np.load(b / "weights.npz") as wb:
        floats = [k for k in wa.files if wa[k].dtype.kind == "f"]
        assert len(floats) == 12
        for k in floats:
            # Adam turns rounding in near-zero gradients into visible steps: 8 steps of lr 1e-3
            np.testing.assert_allclose(wb[k], wa[k], atol=1e-4, err_msg=k)


def test_two_ranks_with_every_linear_layer_split_train_as_one_process(ham, one, tmp_path):
    """TINYLESION_SPLIT_LINEAR=1: dense_nn's six Linear layers split over the ranks by input
    features (the uneven last batch, 4 + 3 rows, included); the run folder is the one of one
    process (whole weights, the same metrics on the test set)."""
    out = tmp_path / "split"
    proc = ok(mpirun([EXAMPLE, "--data", ham, *FLAGS, "--epochs", "2", "--batch-size", "7",
                      "--distributed", "--out", out], timeout=300,
                     env={"TINYLESION_SPLIT_LINEAR": "1"}))
    assert "6 Linear weight(s) split over the ranks" in proc.stdout
    same_run(one, out)


def test_two_ranks_train_as_one_process_at_the_same_global_batch(ham, one, tmp_path):
    out = tmp_path / "two"
    proc = ok(mpirun([EXAMPLE, "--data", ham, *FLAGS, "--epochs", "2", "--batch-size", "7",
                      "--distributed", "--out", out], timeout=300))
    same_run(one, out)
    assert proc.stdout.count("epoch 2/2") == 1            # rank 0 alone logs
    assert proc.stdout.count("wrote metrics.json") == 1
    assert "2 ranks" in proc.stdout and "14 per step" in proc.stdout
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    assert settings["distributed"] is True and settings["batch_size"] == 7


def test_sharded_allreduced_and_overlapped_steps_train_the_same_run_bit_for_bit(ham, tmp_path):
    runs = {}
    # dense_nn at 32x24 has 9.4 MB of weights: under the size at which fit shards by itself
    settings = {"sharded": {"TINYLESION_SHARD_OPTIMIZER": "1"}, "allreduce": {},
                "overlap": {"TINYLESION_OVERLAP": "1"}}
    said = {"sharded": "optimizer sharded over the ranks", "allreduce":
            "gradient allreduce after backward", "overlap": "gradient allreduce overlapped with "
            "backward"}
    for name, env in settings.items():
        out = tmp_path / name
        proc = ok(mpirun([EXAMPLE, "--data", ham, *FLAGS, "--epochs", "1", "--batch-size", "7",
                          "--distributed", "--out", out], env=env, timeout=300))
        assert said[name] in proc.stdout
        runs[name] = out
    for name in ("allreduce", "overlap"):
        with np.load(runs["sharded"] / "weights.npz") as wa, \
                np.load(runs[name] / "weights.npz") as wb:
            assert sorted(wa.files) == sorted(wb.files)
            for k in wa.files:
                np.testing.assert_array_equal(wb[k], wa[k], err_msg=k)
        # the logged losses: summed in the float32 gradient message (as two float32 parts) or
        # with the overlapped path's float64 presence counts, the same to float32 rounding
        np.testing.assert_allclose(history(runs[name]), history(runs["sharded"]), rtol=1e-7)


@pytest.mark.parametrize("variable", ["TINYLESION_OVERLAP", "TINYLESION_SHARD_OPTIMIZER",
                                      "TINYLESION_SPLIT_LINEAR", "TINYLESION_SHARED_WINDOW"])
def test_a_bad_overlap_shard_or_split_setting_is_a_one_line_error(ham, tmp_path, variable):
    proc = mpirun([EXAMPLE, "--data", ham, *FLAGS, "--distributed", "--out", tmp_path / "x"],
                  env={variable: "yes"}, timeout=120)
    assert proc.returncode != 0
    assert f"error: {variable}='yes'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_sharding_and_overlap_asked_for_together_is_a_one_line_error(ham, tmp_path):
    proc = mpirun([EXAMPLE, "--data", ham, *FLAGS, "--distributed", "--out", tmp_path / "x"],
                  env={"TINYLESION_OVERLAP": "1", "TINYLESION_SHARD_OPTIMIZER": "1"},
                  timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert lines and all("TINYLESION_SHARD_OPTIMIZER=1 and TINYLESION_OVERLAP=1" in line
                         for line in lines)
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_a_one_process_run_resumes_on_two_ranks_with_the_optimizer_sharded(ham, one, tmp_path):
    """The checkpoint's whole Adam state cut into the ranks' shares, and gathered again for
    the next checkpoint."""
    out = tmp_path / "res1"
    ok(python([EXAMPLE, "--data", ham, *FLAGS, "--epochs", "1", "--batch-size", "14",
               "--out", out], timeout=300))
    proc = ok(mpirun([EXAMPLE, "--data", ham, *FLAGS, "--epochs", "2", "--batch-size", "7",
                      "--distributed", "--resume", "--out", out], timeout=300,
                     env={"TINYLESION_SHARD_OPTIMIZER": "1"}))
    assert "optimizer sharded over the ranks" in proc.stdout
    assert "written by 1 rank(s), this run has 2" in proc.stdout
    same_run(one, out)
    from tinylesion.checkpoints import load_checkpoint
    # the state gathered from the two ranks' shares is the whole state of every parameter
    want = load_checkpoint(one / "checkpoint.npz")["optimizer"]["state"]
    got = load_checkpoint(out / "checkpoint.npz")["optimizer"]["state"]
    assert sorted(got) == sorted(want) and len(want) == 12
    for k in want:
        assert sorted(got[k]) == sorted(want[k]) == ["exp_avg", "exp_avg_sq", "step"]
        assert int(got[k]["step"]) == int(want[k]["step"])
        for name in ("exp_avg", "exp_avg_sq"):
            assert np.shape(got[k][name]) == np.shape(want[k][name])
            np.testing.assert_allclose(got[k][name], want[k][name], rtol=1e-3, atol=1e-6)


def test_a_two_rank_run_resumes_in_one_process(ham, one, tmp_path):
    """The epoch order and augmentation do not depend on the number of ranks: a resumed run
    on another number of ranks, at the same global batch, continues the same run."""
    out = tmp_path / "res"
    # with the optimizer sharded: its checkpoint holds the state gathered from both ranks
    proc = ok(mpirun([EXAMPLE, "--data", ham, *FLAGS, "--epochs", "1", "--batch-size", "7",
                      "--distributed", "--out", out], timeout=300,
                     env={"TINYLESION_SHARD_OPTIMIZER": "1"}))
    assert "optimizer sharded over the ranks" in proc.stdout
    proc = ok(python([EXAMPLE, "--data", ham, *FLAGS, "--epochs", "2", "--batch-size", "14",
                      "--resume", "--out", out], timeout=300))
    assert "written by 2 rank(s), this run has 1" in proc.stdout
    # the per-rank batch doubled on half the ranks: the same global batch, said so
    assert "--batch-size 14 per rank on 1 rank(s), 14 per step (was 7 on 2: 14 per step)" \
        in proc.stdout
    assert "will not repeat" not in proc.stdout
    same_run(one, out)


def test_mpirun_without_distributed_is_a_one_line_error(ham, tmp_path):
    proc = mpirun([EXAMPLE, "--data", ham, *FLAGS, "--epochs", "1", "--out", tmp_path / "x"],
                  timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert lines and all("without --distributed" in line for line in lines)
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_a_one_line_error_on_rank_0_ends_every_rank(ham, tmp_path):
    """Rank 0 checks the run folder while the others wait for what it prepares: its one-line
    error must end them too (MPI_Abort), not leave them waiting."""
    proc = mpirun([EXAMPLE, "--data", ham, *FLAGS, "--distributed", "--resume",
                   "--out", tmp_path / "none"], timeout=120)
    assert proc.returncode != 0
    assert "error: --resume: no checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("shard", ["0", "1"])
def test_a_diverging_run_on_two_ranks_stops_every_rank_with_one_line(ham, tmp_path, shard):
    """The global loss comes back with the gradients: every rank sees it NaN at the same step
    and stops before updating, allreduced or sharded."""
    out = tmp_path / "run"
    proc = mpirun([EXAMPLE, "--data", ham, *FLAGS, "--optimizer", "sgd", "--lr", "50",
                   "--epochs", "2", "--early-stop", "0", "--batch-size", "7", "--distributed",
                   "--out", out], env={"TINYLESION_SHARD_OPTIMIZER": shard}, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    # rank 0 alone says it (the launcher's abort notice may run into the line's start)
    errors = [line for line in proc.stderr.splitlines() if "error: " in line]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert "loss became nan at epoch 1" in errors[0] and "nothing was written" in errors[0]
    assert "Traceback" not in proc.stderr and not out.exists()
