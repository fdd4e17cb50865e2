"""Linear layers split over the ranks by input features (row_parallel.py) under `mpirun -n 2`:
the gradients of the whole layer, and fit's weights, metrics and checkpoints of one process."""
import json
import shutil

import numpy as np
import pytest

from mpi_launch import ROOT, load, mpirun, ok, python
from tinylesion import nn, optim, row_parallel
from tinylesion.distributed import DistributedError
from tinylesion.gradient_overlap import OVERLAP_ENV
from tinylesion.sharded_optimizer import SHARD_ENV

SCRIPT = ROOT / "tests" / "mpi" / "run_split.py"
SPLIT = {row_parallel.SPLIT_ENV: "1", SHARD_ENV: "0", OVERLAP_ENV: "0"}


def test_the_split_layer_has_the_gradients_of_the_whole_layer_in_float64(tmp_path):
    """Rows 3 and 4 on ranks 0 and 1, 11 input features cut 5 + 6: outputs and the gradients
    of x, W and b against the whole layer's formulas and against central differences."""
    import sys
    sys.path.insert(0, str(ROOT / "tests" / "mpi"))
    from run_split import grad_problem
    ok(mpirun([SCRIPT, "grad", tmp_path / "grad.npz"]))
    run = load(tmp_path / "grad.npz")
    W, b, rows, X, G = grad_problem(2)
    assert rows == [3, 4] and list(run["weight shape"]) == [4, 5]   # rank 0's columns 0:5
    np.testing.assert_allclose(run["y"], X @ W.T + b, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(run["gx"], G @ W, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(run["gW"], G.T @ X, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(run["gb"], G.sum(axis=0), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(run["numeric gW"], run["gW"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(run["numeric gx"], run["gx"], rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def fit_runs(tmp_path_factory):
    """fit on one process at batch 32, and on 2 ranks at 16 with both Linear layers split
    (the allreduce, the sharded optimizer and the overlapped allreduce for the conv layer);
    then one process resumes the 2-rank checkpoint for a third epoch, 2 split ranks the
    one-process checkpoint, and the one-process run its own."""
    tmp = tmp_path_factory.mktemp("split")
    ok(python([SCRIPT, "fit", tmp / "one.npz", 32, 2, tmp / "one.ckpt"]))
    for name, extra in (("two", {}), ("shard", {SHARD_ENV: "1"}),
                        ("overlap", {OVERLAP_ENV: "1"})):
        ok(mpirun([SCRIPT, "fit", tmp / f"{name}.npz", 16, 2, tmp / f"{name}.ckpt"],
                  env={**SPLIT, **extra}))
    shutil.copy(tmp / "two.ckpt", tmp / "written by two.ckpt")   # resuming writes it again
    shutil.copy(tmp / "one.ckpt", tmp / "one for two.ckpt")
    ok(mpirun([SCRIPT, "fit", tmp / "two3.npz", 16, 3, tmp / "one for two.ckpt", "resume"],
              env=SPLIT))
    ok(python([SCRIPT, "fit", tmp / "one3.npz", 32, 3, tmp / "one.ckpt", "resume"]))
    ok(python([SCRIPT, "fit", tmp / "resumed.npz", 32, 3, tmp / "two.ckpt", "resume"]))
    runs = {k: load(tmp / f"{k}.npz") for k in ("one", "two", "shard", "overlap", "one3",
                                                  "resumed", "two3")}
    runs["checkpoint"] = tmp / "written by two.ckpt"
    return runs


def _same_weights(a, b, state=True):
    keys = [k for k in a if k.startswith(("end ", "state "))]
    assert len(keys) == 6 + 6   # conv, two Linear: weights, biases and momentum buffers
    for k in keys:
        if not state and k.startswith(("state 0 ", "state 1 ", "state 3 ", "state 5 ")):
            # NOTE: the sharded optimizer keeps the state of the replicated parameters in its
            # own segments; the split weights' (2, 4) is the wrapped optimizer's, compared
            continue
        assert a[k].shape == b[k].shape, k
        # float32 rounding of sums in another order (the weights are O(0.1))
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-7, err_msg=k)


def test_two_ranks_with_split_layers_end_with_the_weights_of_one_process(fit_runs):
    one = fit_runs["one"]
    for name in ("two", "shard", "overlap"):
        run = fit_runs[name]
        # the Linear layers were split during training, and are whole again after fit
        assert run["classes during"].tolist() == [["Conv2d", "ReLU", "Flatten",
                                                   "RowParallelLinear", "ReLU",
                                                   "RowParallelLinear"]] * 2, name
        assert run["classes"].tolist() == one["classes"].tolist()
        assert "2 Linear weight(s) split over the ranks" in str(run["log"]), name
        _same_weights(one, run, state=name != "shard")
    # the steps did move the weights: a comparison that can fail
    assert np.abs(fit_runs["one3"]["end 3.weight"] - one["end 3.weight"]).max() > 1e-4


def test_evaluation_with_split_layers_gives_the_metrics_of_one_process(fit_runs):
    """33 validation images at batch 16: rank 0 evaluates 2 batches, rank 1 one (it pads a
    forward call); the losses and metrics are those of one process."""
    one = json.loads(str(fit_runs["one"]["history"]))
    for name in ("two", "shard"):
        two = json.loads(str(fit_runs[name]["history"]))
        for key in ("val_accuracy", "val_macro_f1"):
            assert two[key] == one[key], (name, key)
        for key in ("val_loss", "loss", "accuracy"):
            np.testing.assert_allclose(two[key], one[key], rtol=1e-6, err_msg=key)


def test_the_checkpoint_holds_whole_weights_and_resumes_in_one_process(fit_runs):
    from tinylesion.checkpoints import load_checkpoint
    ck = load_checkpoint(fit_runs["checkpoint"])
    assert ck["model"]["3.weight"].shape == (16, 256)
    assert ck["model"]["5.weight"].shape == (3, 16)
    assert ck["best"]["3.weight"].shape == (16, 256)
    assert ck["optimizer"]["state"][2]["momentum_buffer"].shape == (16, 256)
    assert ck["world_size"] == 2
    # one process resumes the 2-rank run: its third epoch is that of one process
    _same_weights(fit_runs["one3"], fit_runs["resumed"])


def test_two_ranks_with_split_layers_resume_a_one_process_checkpoint(fit_runs):
    """The whole weights and momentum of one process's checkpoint cut into each rank's
    columns: the third epoch on 2 ranks is that of one process."""
    _same_weights(fit_runs["one3"], fit_runs["two3"])


@pytest.mark.parametrize("shard", ["0", "1"])
def test_a_linear_layer_frozen_when_fit_starts_stays_whole_and_trains_once_thawed(tmp_path,
                                                                                  shard):
    """A Linear layer frozen when fit prepares the ranks is not split (it has no gradient to
    save sending); thawed after the first epoch, its gradient joins the others' buckets (the
    allreduce's or the sharded optimizer's, made anew) and the run stays that of one
    process."""
    ok(python([SCRIPT, "fit", tmp_path / "one.npz", 32, 2, tmp_path / "one.ckpt", "thaw"]))
    ok(mpirun([SCRIPT, "fit", tmp_path / "two.npz", 16, 2, tmp_path / "two.ckpt", "thaw"],
              env={**SPLIT, SHARD_ENV: shard}))
    one, two = load(tmp_path / "one.npz"), load(tmp_path / "two.npz")
    assert two["classes during"].tolist() == [["Conv2d", "ReLU", "Flatten", "Linear", "ReLU",
                                               "RowParallelLinear"]] * 2
    assert "1 Linear weight(s) split over the ranks" in str(two["log"])
    keys = [k for k in one if k.startswith("end ") or (shard == "0" and k.startswith("state"))]
    assert len(keys) == (12 if shard == "0" else 6)
    for k in keys:   # (sharded: the replicated parameters' state is in the ranks' segments)
        np.testing.assert_allclose(two[k], one[k], rtol=1e-5, atol=1e-7, err_msg=k)
    # the thawed layer did train in the second epoch (its momentum is there)
    assert "state 2 momentum_buffer" in one
    assert np.abs(one["state 2 momentum_buffer"]).max() > 0


def test_evaluate_model_pads_the_rank_with_fewer_batches(tmp_path):
    ok(python([SCRIPT, "eval", tmp_path / "one.npz", 32]))
    ok(mpirun([SCRIPT, "eval", tmp_path / "two.npz", 16]))
    one, two = load(tmp_path / "one.npz"), load(tmp_path / "two.npz")
    np.testing.assert_array_equal(two["y_true"], one["y_true"])
    assert len(one["y_true"]) == 33
    np.testing.assert_allclose(two["y_score"], one["y_score"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-6)


@pytest.mark.parametrize("samples", [1, 3])
def test_a_rank_with_an_empty_evaluation_shard_pads_as_the_others(tmp_path, samples):
    """1 validation image on 2 ranks: rank 1's shard is empty, yet it makes rank 0's forward
    call (on a zero image shaped as rank 0's, told by an allgather); 3 images: the shards
    differ by one image in one batch each. The scores and loss are those of one process."""
    ok(python([SCRIPT, "eval", tmp_path / "one.npz", 16, samples]))
    ok(mpirun([SCRIPT, "eval", tmp_path / "two.npz", 16, samples]))
    one, two = load(tmp_path / "one.npz"), load(tmp_path / "two.npz")
    assert len(one["y_true"]) == samples and one["y_score"].shape == (samples, 3)
    np.testing.assert_array_equal(two["y_true"], one["y_true"])
    np.testing.assert_allclose(two["y_score"], one["y_score"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-6)


def test_an_empty_evaluation_shard_on_the_gpu_pads_as_the_others(tmp_path):
    """As above on the stand-in CuPy (tests/fakegpu) under the CUDA simulator: 1 image on 2
    ranks, rank 1's forward calls on a zero image on the device, the activations through the
    stand-in NCCL: the scores and loss of one CPU process."""
    fake = ROOT / "tests" / "fakegpu"
    ok(python([SCRIPT, "eval", tmp_path / "one.npz", 16, 1]))
    ok(mpirun([SCRIPT, "eval", tmp_path / "two.npz", 16, 1, "gpu"], timeout=300,
              env={"NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": f"{fake}:{ROOT}"}))
    one, two = load(tmp_path / "one.npz"), load(tmp_path / "two.npz")
    assert two["kinds"].tolist() == ["cupy"] and one["kinds"].tolist() == ["numpy"]
    assert len(one["y_true"]) == 1
    np.testing.assert_array_equal(two["y_true"], one["y_true"])
    np.testing.assert_allclose(two["y_score"], one["y_score"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-6)


class _World:
    def __init__(self, size, rank=0):
        self.size, self.rank = size, rank


def test_which_layers_are_split():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4096, 1024), nn.ReLU(), nn.Linear(1024, 2))
    # 16 MB of float32 weight and more
    assert [n for n, _ in row_parallel.candidates(model, _World(2))] == ["1"]
    assert [n for n, _ in row_parallel.candidates(model, _World(2), True)] == ["1", "3"]
    assert row_parallel.candidates(model, _World(2), False) == []
    assert row_parallel.candidates(model, _World(1), True) == []   # one process: unchanged
    model[1].weight.requires_grad = False   # a frozen layer stays whole
    assert row_parallel.candidates(model, _World(2)) == []
    assert row_parallel.column_bounds(11, 2) == [0, 5, 11]
    assert row_parallel.column_bounds(4, 3) == [0, 1, 2, 4]


def test_a_layer_is_split_only_when_that_moves_fewer_bytes():
    """split_pays: B·in + N·B·out < out·in floats on MPI, N·B·(in + out) < out·in on NCCL
    (B rows per rank, N ranks), pinned at the boundary."""
    pays = row_parallel.split_pays
    assert pays(8, 8, 2, 2) and not pays(8, 8, 3, 2)   # 48 < 64, 72 > 64
    assert pays(8, 8, 1, 2, nccl=True) and not pays(8, 8, 2, 2, nccl=True)   # 32, 64
    # the papers' large layers at batch 16 on 2 ranks split; a classifier's would not pay
    assert pays(150_528, 1024, 16, 2) and pays(16_384, 512, 16, 2)
    assert not pays(1024, 7, 16, 2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4096, 1024), nn.ReLU(), nn.Linear(1024, 2))

    def names(world, **kw):
        return [n for n, _ in row_parallel.candidates(model, world, **kw)]

    # 16 MB: split up to 682 rows per rank (682·(4096 + 2·1024) < 4096·1024 < 683·(...))
    assert names(_World(2), batch=16) == names(_World(2), batch=682) == ["1"]
    assert names(_World(2), batch=683) == []
    assert names(_World(2), setting=True, batch=683) == ["1", "3"]   # forced: every layer
    assert names(_World(2)) == ["1"]   # no batch given: the size alone
    gpus = _World(2)
    gpus.nccl = object()   # rows moved whole: 2·409·5120 < 4096·1024 < 2·410·5120
    assert names(gpus, batch=409) == ["1"] and names(gpus, batch=410) == []


def test_fit_splits_by_the_bytes_moved_at_the_loaders_batch(tmp_path):
    """prepare_fit (fit's preparation) on 2 ranks, TINYLESION_SPLIT_LINEAR unset: the 16 MB
    layer is split at 16 and 682 rows per rank, not at 683 (split_pays' boundary)."""
    ok(mpirun([SCRIPT, "decide", tmp_path / "decide.npz"],
              env={row_parallel.SPLIT_ENV: ""}))
    run = load(tmp_path / "decide.npz")
    assert run["split at 16"].tolist() == run["split at 682"].tolist() == ["1", ""]
    assert run["split at 683"].tolist() == [""]


def test_the_split_setting_comes_from_the_environment():
    assert row_parallel.default_split({}) is row_parallel.SPLIT is None
    assert row_parallel.default_split({row_parallel.SPLIT_ENV: "1"}) is True
    assert row_parallel.default_split({row_parallel.SPLIT_ENV: "0"}) is False
    with pytest.raises(DistributedError) as info:
        row_parallel.default_split({row_parallel.SPLIT_ENV: "yes"})
    assert row_parallel.SPLIT_ENV in str(info.value) and "\n" not in str(info.value)


def test_a_whole_optimizer_state_is_cut_to_this_ranks_columns():
    layer = nn.Linear(6, 2)
    opt = optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    whole = {"state": {0: {"momentum_buffer": np.arange(12.0).reshape(2, 6)},
                       1: {"momentum_buffer": np.ones(2)}},
             "param_groups": opt.state_dict()["param_groups"]}
    layer.weight.row_parallel = (3, 6, 6)   # rank 1 of 2
    layer.weight.array = layer.weight.array[:, 3:].copy()
    cut = row_parallel.cut_optimizer_state_dict(opt, whole)
    np.testing.assert_array_equal(cut["state"][0]["momentum_buffer"],
                                  np.arange(12.0).reshape(2, 6)[:, 3:])
    np.testing.assert_array_equal(cut["state"][1]["momentum_buffer"], np.ones(2))
    opt.load_state_dict(cut)   # the shapes now match the parameters


def test_the_split_layer_on_the_gpu_keeps_its_arrays_on_the_device(tmp_path):
    """2 ranks on the stand-in CuPy (tests/fakegpu) under the CUDA simulator: the split
    weight, its gradient and its momentum stay on the device, the activations travel through
    the stand-in NCCL, and the steps end with the weights of one CPU process at the global
    batch."""
    fake = ROOT / "tests" / "fakegpu"
    ok(python([SCRIPT, "gpu", tmp_path / "cpu.npz", 3, "cpu"]))
    ok(mpirun([SCRIPT, "gpu", tmp_path / "gpu.npz", 3, "gpu"], timeout=300,
              env={"NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": f"{fake}:{ROOT}"}))
    cpu, gpu = load(tmp_path / "cpu.npz"), load(tmp_path / "gpu.npz")
    assert gpu["kinds"].tolist() == ["cupy"] * 3 and cpu["kinds"].tolist() == ["numpy"] * 3
    assert gpu["shape"].tolist() == [3, 36]   # rank 0's half of the 72 input features
    # NCCL on the device: per step, the allgathers of x and dY and the reduce-scatters of the
    # outputs and of x's gradient (the conv before needs it), and the conv's gradients
    # allreduced; the weights gathered whole after each step go through the host
    assert gpu["nccl calls"].tolist() == [2 * 3, 2 * 3]
    keys = [k for k in cpu if k[0].isdigit()]
    assert len(keys) == 3 * 4
    for k in keys:
        np.testing.assert_allclose(gpu[k], cpu[k], rtol=1e-5, atol=3e-7, err_msg=k)
    assert np.abs(cpu["2 3.weight"] - cpu["0 3.weight"]).max() > 1e-3


def test_clipping_counts_every_ranks_columns_of_the_split_weights(tmp_path):
    """clip_grad_norm_ on 2 ranks with both Linear layers split (the conv's gradients
    allreduced, or sharded): the norms and weights of one process clipping whole gradients."""
    ok(python([SCRIPT, "clip", tmp_path / "one.npz"]))
    ok(mpirun([SCRIPT, "clip", tmp_path / "two.npz"]))
    one, two = load(tmp_path / "one.npz"), load(tmp_path / "two.npz")
    keys = [k for k in one if k.startswith("one ")]
    assert len(keys) == 2 * (2 + 6)
    for k in keys:
        for name in ("split", "sharded"):
            np.testing.assert_allclose(two[k.replace("one", name, 1)], one[k], rtol=1e-5,
                                       atol=1e-7, err_msg=f"{name}: {k}")
    # the limits do clip: the norms before clipping are far above them
    assert float(one["one 0 2.0 norm"]) > 4 * 0.05 and float(one["one 0 inf norm"]) > 4 * 0.01


def test_the_global_weight_reduced_before_backward_divides_the_split_gradients_there(tmp_path):
    """scale_split_gradients (fit's step): the split weights' gradients come out of backward
    already divided by the global batch's class weight, synchronize() does not divide them
    again, and they are those of the pass after the reduction (the other gradients
    allreduced or sharded); a zero_grad() between undoes it (the pass again); without the
    loss, synchronize() refuses."""
    ok(mpirun([SCRIPT, "scale", tmp_path / "scale.npz"]))
    run = load(tmp_path / "scale.npz")
    for tag in ("", "sharded "):
        names = ("1.weight", "3.weight") + (("1.bias", "3.bias") if not tag else ())
        assert float(run[f"{tag}global weight"]) > 0
        for name in names:
            for how in ("before", "undone"):
                np.testing.assert_allclose(run[f"{tag}{how} {name}"], run[f"{tag}after {name}"],
                                           rtol=1e-6, atol=1e-8, err_msg=tag + how + name)
        for name in ("1.weight", "3.weight"):   # divided in backward: nothing left to do
            np.testing.assert_allclose(run[f"{tag}before sync {name}"],
                                       run[f"{tag}after {name}"], rtol=1e-6, atol=1e-8,
                                       err_msg=tag + name)
            assert np.abs(run[f"{tag}after {name}"]).max() > 0
        np.testing.assert_allclose(run[f"{tag}before loss"], run[f"{tag}after loss"],
                                   rtol=1e-6)
        assert "needs synchronize(loss=" in str(run[f"{tag}error"])
