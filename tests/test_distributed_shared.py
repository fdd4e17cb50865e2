"""Gradient sums through shared-memory windows (shared_window.py) under `mpirun`: the bits of
MPI's Allreduce on 2 ranks, the same bits on every rank, the hierarchical sum across
"machines", the fall-back, the steps of DistributedOptimizer, the abort of a failing rank."""
import time

import numpy as np
import pytest

from mpi_launch import ROOT, load, mpirun, ok
from tinylesion.shared_window import SHARED_ENV, default_shared, room_for, slice_bounds

SCRIPT = ROOT / "tests" / "mpi" / "run_shared.py"


def pairs(record):
    """(key, shared result of every rank, MPI's result of every rank, every rank's input)."""
    for k in record:
        if k.startswith("shared "):
            key = k[len("shared "):]
            yield key, record[k], record[f"plain {key}"], record[f"inputs {key}"]


def test_two_ranks_sum_in_shared_windows_to_the_bits_of_mpi_allreduce(tmp_path):
    ok(mpirun([SCRIPT, "exact", tmp_path / "two.npz"]))
    record = load(tmp_path / "two.npz")
    assert not bool(record["hierarchical"])
    checked = 0
    for key, shared, plain, inputs in pairs(record):
        assert shared.shape == plain.shape == (2,) + inputs.shape[1:]
        assert np.array_equal(shared, plain), key     # both ranks, bit for bit
        assert np.array_equal(shared[0], inputs[0] + inputs[1]), key
        assert not np.array_equal(shared[0], inputs[0]), key   # (a sum took place)
        checked += 1
    assert checked == 14
    # a message shorter than its window: the rest of the window untouched
    prefix, inputs = record["prefix"], record["prefix inputs"]
    assert np.array_equal(prefix[:, :600], np.stack([inputs[0, :600] + inputs[1, :600]] * 2))
    assert np.array_equal(prefix[:, 600:], inputs[:, 600:])


def test_three_ranks_end_with_the_same_bits_the_sum_in_rank_order(tmp_path):
    ok(mpirun([SCRIPT, "exact", tmp_path / "three.npz"], n=3))
    for key, shared, plain, inputs in pairs(load(tmp_path / "three.npz")):
        for rank in range(3):
            assert np.array_equal(shared[rank], (inputs[0] + inputs[1]) + inputs[2]), key
        np.testing.assert_allclose(shared, plain, rtol=1e-5 if "32" in key else 1e-12,
                                   atol=1e-30, err_msg=key)


def test_across_machines_node_sums_then_the_leaders_allreduce(tmp_path):
    """4 ranks cut into 2 "machines" of 2: each machine's sum in its leader's window, the
    leaders' allreduce (of 2: commutative), copied back to every rank of each machine."""
    ok(mpirun([SCRIPT, "machines", tmp_path / "four.npz"], n=4, timeout=300))
    record = load(tmp_path / "four.npz")
    assert bool(record["hierarchical"])
    for key, shared, plain, inputs in pairs(record):
        want = (inputs[0] + inputs[1]) + (inputs[2] + inputs[3])
        for rank in range(4):
            assert np.array_equal(shared[rank], want), key


def test_a_failed_window_on_one_rank_sends_every_rank_back_to_mpi_allreduce(tmp_path):
    ok(mpirun([SCRIPT, "nowindow", tmp_path / "no.npz"], timeout=120))
    record = load(tmp_path / "no.npz")
    assert bool(record["first_none"]) and bool(record["again_none"])
    assert record["sum"].tolist() == [3.0] * 10


@pytest.mark.parametrize("shard", [0, 1])
def test_distributed_optimizer_steps_are_those_of_mpi_collectives(tmp_path, shard):
    """SGD with momentum through DistributedOptimizer, its buckets (1 KB: several) in shared
    windows or not, the allreduce after backward or the sharded step (reduce-scatter,
    allgather): the same weights and gradients after every step, bit for bit."""
    ok(mpirun([SCRIPT, "steps", tmp_path / "shared.npz", 4, 1, shard]))
    ok(mpirun([SCRIPT, "steps", tmp_path / "plain.npz", 4, 0, shard]))
    shared, plain = load(tmp_path / "shared.npz"), load(tmp_path / "plain.npz")
    assert int(shared["buckets"]) >= 2
    if shard:
        assert "sharded" in str(shared["described"])
        assert int(shared["scratch_in_windows"]) == 1 and int(plain["scratch_in_windows"]) == 0
    assert int(shared["in_windows"]) == int(shared["buckets"]) and int(plain["in_windows"]) == 0
    assert "shared-memory windows" in str(shared["described"])
    assert "shared-memory" not in str(plain["described"])
    keys = [k for k in shared if k.startswith("step ")]
    assert len(keys) == 4 * 4 * 2
    for k in keys:
        assert np.array_equal(shared[k], plain[k]), k
    assert not np.array_equal(shared["step 3 weight 0"], shared["step 0 weight 0"])


@pytest.mark.parametrize("ranks", [2, 3])
def test_small_gradients_take_one_synchronisation_with_the_steps_of_mpi_allreduce(tmp_path,
                                                                                   ranks):
    """One bucket (16 MB buckets, a small net): every rank sums every rank's bucket into its
    own buffer after one signal, backward writing two windows in turn; the weights,
    gradients and the global loss of MPI's Allreduce after every step, bit for bit on 2
    ranks and 3 (the same rank order)."""
    big = 16 << 20
    ok(mpirun([SCRIPT, "steps", tmp_path / "one.npz", 4, 1, 0, big, 1], n=ranks))
    ok(mpirun([SCRIPT, "steps", tmp_path / "mpi.npz", 4, 0, 0, big, 1], n=ranks))
    one, mpi = load(tmp_path / "one.npz"), load(tmp_path / "mpi.npz")
    assert bool(one["single_sync"]) and not bool(mpi["single_sync"])
    assert int(one["buckets"]) == int(one["in_windows"]) == 1
    keys = [k for k in one if k.startswith("step ")]
    assert len(keys) == 4 * (4 * 2 + 1)
    for k in keys:
        assert np.array_equal(one[k], mpi[k]), k
    assert not np.array_equal(one["step 3 weight 0"], one["step 0 weight 0"])
    # backward wrote into two windows in turn (MPI's path: one bucket, always the same)
    written = one["written"]
    assert (written[0::2] == written[0]).all() and (written[1::2] == written[1]).all()
    assert (written[0] != written[1]).all()
    assert (mpi["written"] == mpi["written"][0]).all()


@pytest.mark.parametrize("mode", ["fail", "failsingle"])
def test_a_failing_rank_ends_a_job_waiting_in_a_shared_window_in_seconds(tmp_path, mode):
    t0 = time.perf_counter()
    proc = mpirun([SCRIPT, mode, tmp_path / "x"], timeout=120)
    took = time.perf_counter() - t0
    assert proc.returncode != 0
    assert "rank 1 broke on purpose" in proc.stderr
    assert "never expected" not in proc.stdout
    assert took < 60, took


def test_slices_cover_the_message_once_on_cache_line_boundaries():
    for count in (0, 1, 15, 16, 17, 100, 150_529):
        for size in (1, 2, 3, 4):
            for itemsize in (4, 8):
                bounds = slice_bounds(count, size, itemsize)
                assert len(bounds) == size
                assert bounds[0][0] == 0 and bounds[-1][1] == count
                for (lo, hi), (nlo, _) in zip(bounds, bounds[1:]):
                    assert lo <= hi == nlo
                    assert (hi * itemsize) % 64 == 0 or hi == count


def test_the_switch_reads_one_or_zero_and_names_itself_otherwise():
    from tinylesion.distributed import DistributedError
    assert default_shared({SHARED_ENV: "0"}) is False
    assert default_shared({SHARED_ENV: "1"}) is True
    assert default_shared({}) is True
    with pytest.raises(DistributedError, match=SHARED_ENV):
        default_shared({SHARED_ENV: "yes"})


def test_no_window_larger_than_the_shared_memory_file_system_holds(tmp_path):
    """(A window past the free space of /dev/shm would end the ranks with SIGBUS.)"""
    env = {"OMPI_MCA_osc_sm_backing_directory": str(tmp_path)}
    assert room_for(1, env)
    assert not room_for(1 << 62, env)
    assert room_for(1 << 62, {"OMPI_MCA_osc_sm_backing_directory": str(tmp_path / "none")})
