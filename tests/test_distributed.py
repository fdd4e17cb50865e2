"""Data parallelism under `mpirun -n 2`: N ranks at batch B train as one process at batch N·B."""
import sys
import time

import numpy as np
import pytest

from mpi_launch import ROOT, is_open_mpi, load, mpirun, ok, python
from tinylesion import distributed, nn
from tinylesion.gradient_overlap import OVERLAP_ENV
from tinylesion.tensor import Tensor

SCRIPT = ROOT / "tests" / "mpi" / "run_distributed.py"


@pytest.fixture(scope="module")
def train_runs(tmp_path_factory):
    """2 epochs of SGD: one process at batch 32, 2 ranks at 16 (the allreduce after backward,
    and overlapped with it). The one-process run goes first: it compiles the kernels."""
    tmp = tmp_path_factory.mktemp("train")
    ok(python([SCRIPT, "train", tmp / "one.npz", 32, 2]))
    ok(mpirun([SCRIPT, "train", tmp / "two.npz", 16, 2], env={OVERLAP_ENV: "0"}))
    ok(mpirun([SCRIPT, "train", tmp / "overlap.npz", 16, 2], env={OVERLAP_ENV: "1"}))
    return {k: load(tmp / f"{k}.npz") for k in ("one", "two", "overlap")}


def test_two_ranks_at_16_end_with_the_weights_of_one_process_at_32(train_runs):
    one, two = train_runs["one"], train_runs["two"]
    ends = [k for k in one if k.startswith("end ")]
    assert len(ends) == 9  # conv, batch norm (weights and running statistics), linear
    for k in ends:
        # float32 summation-order rounding only (the weights are O(1))
        np.testing.assert_allclose(two[k], one[k], rtol=1e-5, atol=3e-7, err_msg=k)
    for k in one:
        if k.startswith("grad "):
            np.testing.assert_allclose(two[k], one[k], rtol=1e-5, atol=3e-7, err_msg=k)
    assert int(two["size"]) == 2 and int(one["size"]) == 1
    # on 2 ranks backward wrote every gradient into its bucket (one process: no buckets)
    assert two["in_buckets"].tolist() == [6] * int(two["steps"])   # 6 parameters
    assert not one["in_buckets"].any()


def test_gradients_travel_as_one_flat_buffer_per_step(train_runs):
    two = train_runs["two"]
    params = [k for k in two if k.startswith("grad ")]
    grad_bytes = sum(two[k].nbytes for k in params)
    steps = 2 * 3  # 88 samples at a global batch of 32: 3 steps per epoch, 2 epochs
    assert int(two["steps"]) == steps
    # the gradients and, in the same message, a presence count per parameter in the
    # gradients' float32 (+1: the naive gradients)
    assert int(two["bytes_sent"]) == (steps + 1) * (grad_bytes + 4 * len(params))
    # overlapped: the same, and one float64 more per step (the flag "a gradient went stale")
    overlap = train_runs["overlap"]
    assert int(overlap["bytes_sent"]) == (steps + 1) * (grad_bytes + 8 * len(params) + 8)


def test_overlapping_the_allreduce_with_backward_changes_no_bit(train_runs):
    two, overlap = train_runs["two"], train_runs["overlap"]
    assert len(two) == len(overlap)
    for k in two:
        if k not in ("bytes_sent", "in_buckets"):   # the weights, the first step's gradients
            np.testing.assert_array_equal(overlap[k], two[k], err_msg=k)
    assert not overlap["in_buckets"].any()   # copied into its buckets as backward goes


def test_the_class_weighted_loss_is_the_weighted_mean_over_the_global_batch(train_runs):
    one, two = train_runs["one"], train_runs["two"]
    grads = [k for k in one if k.startswith("grad ")]
    # a mean of per-rank weighted means gives other gradients at once, well beyond the
    # tolerance of the comparison above; on one process both are the same loss
    assert max(np.abs(two[k.replace("grad", "naive")] - one[k]).max() for k in grads) > 1e-3
    for k in grads:
        np.testing.assert_allclose(one[k.replace("grad", "naive")], one[k], rtol=1e-6)


def test_buckets_started_in_a_different_order_on_each_rank_stay_apart(tmp_path):
    """A layer used on rank 0 only: its buckets start during backward there and at step() on
    rank 1 (zeros), with SyncBatchNorm's allreduce in between on both: the run ends as the
    blocking one, bit for bit. NOTE: the buckets travel on a communicator of their own, as
    MPI wants one order of collectives per communicator; Open MPI keeps its blocking and
    nonblocking collectives apart anyway, so there this checks the buckets' contents."""
    for overlap in ("0", "1"):
        ok(mpirun([SCRIPT, "uneven", tmp_path / f"{overlap}.npz", 3], env={OVERLAP_ENV: overlap},
                  timeout=120))
    blocking, overlapped = load(tmp_path / "0.npz"), load(tmp_path / "1.npz")
    assert len(blocking) == 2 * 3 * 8
    for k in blocking:
        np.testing.assert_array_equal(overlapped[k], blocking[k], err_msg=k)


def test_a_hostfile_run_over_tcp_ends_as_the_run_on_shared_memory(train_runs, tmp_path):
    """`mpirun --hostfile F`, F naming two "hosts" that are both this machine, the ranks
    talking over TCP as between machines: the weights of the shared-memory run, bit for bit
    (2 ranks: one addition per element, whatever the transport)."""
    if not is_open_mpi():
        pytest.skip("the flags are Open MPI's")
    hosts = tmp_path / "hosts"
    hosts.write_text("localhost\n127.0.0.1\n")
    ok(mpirun([SCRIPT, "train", tmp_path / "tcp.npz", 16, 2], env={OVERLAP_ENV: "0"},
              flags=["--hostfile", hosts, "--mca", "btl", "tcp,self", "--mca", "pml", "ob1"]))
    tcp, two = load(tmp_path / "tcp.npz"), train_runs["two"]
    assert sorted(tcp) == sorted(two)
    for k in two:
        np.testing.assert_array_equal(tcp[k], two[k], err_msg=k)


def test_adam_matches_one_process_step_by_step(tmp_path):
    ok(python([SCRIPT, "adam", tmp_path / "one.npz", 32, 3]))
    ok(mpirun([SCRIPT, "adam", tmp_path / "two.npz", 16, 3]))
    one, two = load(tmp_path / "one.npz"), load(tmp_path / "two.npz")
    for s in range(3):
        grads = [k for k in one if k.startswith(f"step {s} grad ")]
        assert grads
        for k in grads:
            np.testing.assert_allclose(two[k], one[k], rtol=1e-4, atol=1e-6, err_msg=k)
    # NOTE: Adam divides by |g|: where g is rounding noise (the conv bias before the batch
    # norm) one rounding difference is a whole step, so the first step's weights are compared
    # where the gradient is well above rounding
    for i, name in enumerate(["0.weight", "0.bias", "1.weight", "1.bias", "5.weight",
                              "5.bias"]):
        g = one[f"step 0 grad {i}"]
        solid = np.abs(g) > 1e-4
        np.testing.assert_allclose(two[f"step 0 {name}"][solid], one[f"step 0 {name}"][solid],
                                   rtol=1e-5, atol=1e-6, err_msg=name)


def test_sync_batchnorm_equals_batch_norm_on_the_whole_batch(tmp_path):
    ok(mpirun([SCRIPT, "syncbn", tmp_path / "sbn.npz"]))
    got = load(tmp_path / "sbn.npz")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((12, 3, 5, 4)).astype(np.float32) * 3 + 1
    r = rng.standard_normal(x.shape).astype(np.float32)
    bn = nn.BatchNorm2d(3, momentum=0.3)
    bn.weight.array[...] = [1.5, -0.5, 2.0]
    bn.bias.array[...] = [0.1, 0.2, -0.3]
    xt = Tensor(x, requires_grad=True)
    y = bn(xt)
    (y * Tensor(r)).sum().backward()
    want = {"y": y.array, "gx": xt.grad.array, "gw": bn.weight.grad.array,
            "gb": bn.bias.grad.array, "running_mean": bn.running_mean.array,
            "running_var": bn.running_var.array}
    for k, v in want.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-5, err_msg=k)


def test_a_failing_rank_ends_the_job_in_seconds_with_its_message(tmp_path):
    t0 = time.perf_counter()
    proc = mpirun([SCRIPT, "fail", tmp_path / "x"], timeout=120)
    took = time.perf_counter() - t0
    assert proc.returncode != 0
    assert "rank 1 broke on purpose" in proc.stderr
    assert "never expected" not in proc.stdout
    assert took < 60, took  # start-up included; the abort itself takes well under a second


def test_a_one_line_error_on_one_rank_ends_the_job_with_it(tmp_path):
    proc = mpirun([SCRIPT, "exit", tmp_path / "x"], timeout=120)
    assert proc.returncode != 0
    assert "error: a one-line error on rank 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_distributed_without_mpi4py_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setattr(distributed, "_world", None)
    with pytest.raises(distributed.DistributedError) as info:
        distributed.init()
    message = str(info.value)
    assert "\n" not in message and "mpi4py" in message and "tinylesion[mpi]" in message


@pytest.mark.parametrize("overlap", ["0", "1", "shard"])
def test_the_gpu_path_reduces_through_nccl_on_the_device(tmp_path, overlap):
    """2 ranks on the stand-in CuPy (tests/fakegpu) under the CUDA simulator: broadcast and
    gradient and SyncBatchNorm reductions go through the stand-in NCCL on device pointers,
    and end with the weights of one CPU process at the global batch. Overlapped with
    backward, the gradient buckets go on a side stream (the stand-in checks the ordering of
    the streams that read the arrays). Sharded, the gradients are reduce-scattered and the
    weights allgathered through NCCL, and the optimizer state stays on the device."""
    fake = ROOT / "tests" / "fakegpu"
    shard = ["shard"] if overlap == "shard" else []
    ok(python([SCRIPT, "gpu", tmp_path / "cpu.npz", 8, 2, "cpu"]))
    ok(mpirun([SCRIPT, "gpu", tmp_path / "gpu.npz", 4, 2, "gpu", *shard], timeout=300,
              env={"NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": f"{fake}:{ROOT}",
                   OVERLAP_ENV: "0" if shard else overlap}))
    cpu, gpu = load(tmp_path / "cpu.npz"), load(tmp_path / "gpu.npz")
    assert bool(gpu["side_stream"]) == (overlap == "1")
    # backward writes the gradients into the buckets on the device: the allreduce's all 6;
    # the sharded step's all but the Linear weight, which the first bucket's count slots cut
    # (elements 60-275 of 279, rows of 140); the overlapped path copies them in
    assert gpu["in_buckets"].tolist() == [{"0": 6, "1": 0, "shard": 5}[overlap]] * 2
    assert gpu["kinds"].tolist() == ["cupy"] and bool(gpu["nccl"])
    assert gpu["state_kinds"].tolist() == ["cupy"]
    # per step: SyncBatchNorm forward and backward, one gradient bucket (sharded: one
    # reduce-scatter, one allgather for the step and one per state array of the state_dict);
    # one bcast per array
    assert int(gpu["allreduces"]) == 2 * (2 if shard else 3)
    assert (int(gpu["reduce_scatters"]), int(gpu["allgathers"])) == ((2, 3) if shard
                                                                      else (0, 0))
    assert int(gpu["bcasts"]) == 9
    names = [k for k in cpu if k not in ("kinds", "nccl", "allreduces", "bcasts",
                                          "side_stream", "reduce_scatters", "allgathers",
                                          "state_kinds", "in_buckets")]
    assert len(names) == 9
    for k in names:
        np.testing.assert_allclose(gpu[k], cpu[k], rtol=1e-5, atol=3e-7, err_msg=k)
