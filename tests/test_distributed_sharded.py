"""The sharded optimizer under `mpirun -n 2`: the weights and state of the unsharded step."""
import numpy as np
import pytest

from mpi_launch import ROOT, load, mpirun, ok
from tinylesion import distributed, optim
from tinylesion.sharded_optimizer import SHARD_ENV, default_shard, elementwise

SCRIPT = ROOT / "tests" / "mpi" / "run_sharded.py"


@pytest.fixture(scope="module")
def optimizers(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharded") / "optimizers.npz"
    ok(mpirun([SCRIPT, "optimizers", out]))
    return load(out)


def test_every_optimizer_sharded_gives_the_weights_and_state_of_the_unsharded_step(optimizers):
    run = optimizers
    names = {k.split(" ")[0] for k in run}
    assert names == {"sgd", "sgd_plain", "adam", "adam_array", "amsgrad", "adamw", "nadam",
                     "rmsprop", "adadelta", "adagrad"}
    compared = 0
    for k in run:
        if " plain" in k and "bytes" not in k:
            sharded = k.replace(" plain", " sharded")
            assert sharded in run, sharded
            np.testing.assert_array_equal(run[sharded], run[k], err_msg=k)
            compared += 1
    # weights of 10 arrays and the state after each of 4 steps, for every optimizer
    assert compared > 10 * 4 * 10
    for name in names:   # the steps do change the weights (a comparison that can fail)
        assert not np.array_equal(run[f"{name} 0 sharded trunk.0.weight"],
                                  run[f"{name} 3 sharded trunk.0.weight"])
        # no state for the layer no rank reaches (2, 3) nor for the frozen weight (8)
        for index in (2, 3, 8):
            assert not any(k.startswith(f"{name} 3 sharded state {index} ") for k in run)
        assert any(k.startswith(f"{name} 3 sharded state 6 ") for k in run) or \
            name == "sgd_plain"   # the layer only rank 0 uses is stepped on both


def test_each_rank_updates_its_share_and_the_shares_cover_every_weight(optimizers):
    for name in ("sgd", "adam"):
        # the trainable elements (head.weight thawed again at the end) split over the ranks
        assert float(optimizers[f"{name} own elements"]) == \
            float(optimizers[f"{name} trainable elements"])


def test_clipping_the_sharded_gradients_clips_as_the_unsharded_path(tmp_path):
    ok(mpirun([SCRIPT, "clip", tmp_path / "clip.npz"]))
    run = load(tmp_path / "clip.npz")
    for k in run:
        if "plain" in k:
            other = run[k.replace("plain", "sharded")]
            # float32 rounding of the norm (float64 over the shards, float32 unsharded)
            np.testing.assert_allclose(other, run[k], rtol=1e-6, atol=1e-7, err_msg=k)
    # the limits do clip: the norms before clipping are far above them
    assert float(run["0 2.0 plain norm"]) > 10 * 0.05


def test_state_dicts_cross_between_sharded_and_unsharded_optimizers(tmp_path):
    ok(mpirun([SCRIPT, "resume", tmp_path / "resume.npz"]))
    run = load(tmp_path / "resume.npz")
    keys = [k for k in run if k.startswith("plain ")]
    assert len(keys) == 10
    for k in keys:
        np.testing.assert_array_equal(run[k.replace("plain", "crossed")], run[k], err_msg=k)


def test_the_sharding_default_comes_from_the_environment_or_the_size_of_the_weights():
    from tinylesion import sharded_optimizer
    from tinylesion.nn import Linear
    from tinylesion.sharded_optimizer import SHARD_MIN_BYTES, choose
    assert default_shard({}) is sharded_optimizer.SHARD is None
    small = optim.Adam(Linear(4, 3).parameters())
    big = Linear(SHARD_MIN_BYTES // 4 // 256, 256)
    assert not choose(small) and choose(small, True) and not choose(small, True, overlap=True)
    assert choose(optim.Adam(big.parameters())) and not choose(optim.Adam(big.parameters()),
                                                               False)
    big.weight.requires_grad = False   # frozen weights are not updated: they do not count
    assert not choose(optim.Adam(big.parameters()))
    assert default_shard({SHARD_ENV: "0"}) is False
    assert default_shard({SHARD_ENV: "1"}) is True
    with pytest.raises(distributed.DistributedError) as info:
        default_shard({SHARD_ENV: "yes"})
    assert SHARD_ENV in str(info.value) and "\n" not in str(info.value)


def test_asking_for_sharding_and_overlap_together_is_a_one_line_error():
    from tinylesion.gradient_overlap import OVERLAP_ENV
    with pytest.raises(distributed.DistributedError) as info:
        default_shard({SHARD_ENV: "1", OVERLAP_ENV: "1"})
    message = str(info.value)
    assert SHARD_ENV in message and OVERLAP_ENV in message and "\n" not in message
    assert default_shard({SHARD_ENV: "1", OVERLAP_ENV: "0"}) is True
    assert default_shard({SHARD_ENV: "0", OVERLAP_ENV: "1"}) is False
    assert default_shard({OVERLAP_ENV: "1"}) is None   # by size: fit then overlaps


def test_only_element_by_element_optimizers_are_sharded():
    from tinylesion.nn import Linear
    layer = Linear(2, 2)
    for make in (optim.SGD, optim.Adam, optim.AdamW, optim.NAdam, optim.RMSprop,
                 optim.Adadelta, optim.Adagrad):
        assert elementwise(make(layer.parameters(), lr=0.1))

    class Scaled(optim.SGD):   # an update that may look across elements
        def _update(self, p, g, state, group):
            p.array -= group["lr"] * g / float(np.abs(g).max())

    assert not elementwise(Scaled(layer.parameters(), lr=0.1))


def test_shard_and_overlap_together_are_refused():
    from tinylesion.nn import Linear
    with pytest.raises(ValueError, match="overlap"):
        distributed.DistributedOptimizer(optim.SGD(Linear(2, 2).parameters(), lr=0.1),
                                         overlap=True, shard=True)


def test_the_loss_rides_with_the_gradients_on_every_path(tmp_path):
    """synchronize(loss=...) (fit's step): one reduction carries the gradients of the summed
    losses and the loss weights, values and counts; the same weights on the sharded, the
    allreduced and the overlapped paths, and those of distributed.global_loss's two."""
    ok(mpirun([SCRIPT, "loss", tmp_path / "loss.npz"]))
    run = load(tmp_path / "loss.npz")
    keys = [k for k in run if k.startswith("global_loss ")]
    assert len(keys) == 3 * (10 + 2)
    for k in keys:
        for path in ("allreduce", "sharded", "overlap"):
            other = run[k.replace("global_loss", path)]
            if k.endswith(" count"):
                assert int(other) == int(run[k]), k
            else:   # the loss scaled at the top of backward or the gradients at the end
                np.testing.assert_allclose(other, run[k], rtol=1e-5, atol=1e-7, err_msg=k)
            if path != "allreduce" and not k.endswith((" value", " count")):
                np.testing.assert_array_equal(other, run[k.replace("global_loss", "allreduce")],
                                              err_msg=k)
    assert int(run["global_loss 0 count"]) == 12   # 6 samples on each of 2 ranks


def test_gradients_in_the_buckets_accumulate_zero_and_take_an_assigned_gradient(tmp_path):
    """Both paths with the gradients living in their buckets: two backward() calls before a
    step, zero_grad(set_to_none=False), a .grad the user assigns (copied in, never lost)."""
    ok(mpirun([ROOT / "tests" / "mpi" / "run_sharded.py", "habits", tmp_path / "h.npz"]))
    run = load(tmp_path / "h.npz")
    compared = 0
    for k in run:
        if k.startswith("plain ") and k[6].isdigit():
            np.testing.assert_array_equal(run["sharded" + k[5:]], run[k], err_msg=k)
            compared += 1
    assert compared == 4 * (10 + 1)
    # the assigned gradient, averaged over the ranks ((1 + 2) / 2), made the last step
    np.testing.assert_allclose(run["plain 3 bias step"], np.full(3, -0.1 * 1.5), rtol=1e-5)
    assert not np.allclose(run["plain 2 bias step"], -0.15, rtol=1e-3)
    # on rank 0, 7 parameters get a gradient (the trunk's 2, the head's, the extra layer's,
    # the frozen layer's bias), every one written into the allreduce's buckets; the sharded
    # step's first bucket has rows of 327 elements, which cut the head's weight (140-379)
    assert run["plain in buckets"].tolist() == [7] * 4
    assert run["sharded in buckets"].tolist() == [6] * 4
