"""Shards of an epoch: every sample once over the ranks, one global order for any N."""
import numpy as np
import pytest

from tinylesion.data import Augment, Loader, OversampleSampler
from tinylesion.data.sharding import DistributedSampler, ShardSampler, launch_world


class Images:
    def __init__(self, n, size=6, seed=0):
        rng = np.random.default_rng(seed)
        self.images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        self.targets = rng.integers(0, 3, n).astype(np.int64)
        self.image_size = (size, size)

    def __len__(self):
        return len(self.images)

    def load(self, index):
        return self.images[index]


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_every_sample_once_per_epoch_and_the_same_order_for_any_n(n):
    for epoch in (0, 1):
        one = ShardSampler(50, 1, 0, seed=3).indices(epoch)
        shards = [ShardSampler(50, n, r, seed=3) for r in range(n)]
        got = [s.indices(epoch) for s in shards]
        assert sorted(np.concatenate(got).tolist()) == list(range(50))
        assert sum(len(s) for s in shards) == 50
        whole = np.empty(50, np.int64)
        for r, part in enumerate(got):
            whole[r::n] = part
        np.testing.assert_array_equal(whole, one)
    assert not np.array_equal(ShardSampler(50, 1, 0, seed=3).indices(0),
                              ShardSampler(50, 1, 0, seed=3).indices(1))


def test_a_sampler_base_is_sharded_too():
    targets = np.array([0] * 12 + [1] * 3)
    base = OversampleSampler(targets, seed=2)
    parts = [ShardSampler(base, 2, r).indices(4) for r in range(2)]
    whole = np.empty(len(base), np.int64)
    whole[0::2], whole[1::2] = parts
    np.testing.assert_array_equal(whole, base.indices(4))


@pytest.mark.parametrize("n", [2, 3])
def test_n_ranks_at_batch_b_see_the_batches_of_one_process_at_n_b(n):
    """The ranks' augmented batches are slices of one process's: rank r's batch b is the
    r-th of every n samples of the big batch b, images and labels alike."""
    ds, B = Images(40), 4
    augment = Augment(rotation_range=40, horizontal_flip=True, zoom_range=0.1)
    big = list(Loader(ds, batch_size=n * B, shuffle=True, seed=9, augment=augment,
                      num_workers=0))
    for r in range(n):
        loader = Loader(ds, batch_size=B, num_workers=1, augment=augment, seed=9,
                        sampler=ShardSampler(len(ds), n, r, seed=9, batch_size=B))
        mine = list(loader)
        assert len(mine) == len(big)
        for (x, y), (bx, by) in zip(mine, big):
            np.testing.assert_array_equal(y, by[r::n])
            np.testing.assert_array_equal(x, bx[r::n])


def test_a_last_global_batch_smaller_than_the_world_is_left_out():
    # 2 full global batches of 3 ranks x 2, then 1 sample: rank 1 and 2 would have no batch
    with pytest.warns(UserWarning, match=r"the last 1 sample\(s\) .* left out: fewer than "
                                         r"the 3 ranks"):
        shards = [ShardSampler(13, 3, r, batch_size=2) for r in range(3)]
        lengths = [len(s.indices(0)) for s in shards]
    assert lengths == [4, 4, 4]
    # a last batch with a sample for every rank is kept
    assert sum(len(ShardSampler(15, 3, r, batch_size=2)) for r in range(3)) == 15


def test_distributed_sampler_has_pytorchs_interface():
    ds = Images(10)
    samplers = [DistributedSampler(ds, num_replicas=3, rank=r, shuffle=True, seed=1)
                for r in range(3)]
    for s in samplers:
        s.set_epoch(2)
    parts = [list(s) for s in samplers]
    assert [len(s) for s in samplers] == [4, 4, 4]           # padded to 12, as PyTorch
    assert set(sum(parts, [])) == set(range(10))
    assert len(sum(parts, [])) == 12
    order = np.random.default_rng([1, 2]).permutation(10)
    assert parts[0][:3] == order[[0, 3, 6]].tolist()
    dropped = [DistributedSampler(ds, 3, r, shuffle=False, drop_last=True) for r in range(3)]
    assert [list(s) for s in dropped] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    samplers[0].set_epoch(3)
    assert list(samplers[0]) != parts[0]
    with pytest.raises(ValueError, match="rank 3 is not below num_replicas 3"):
        DistributedSampler(ds, 3, 3)


def test_the_launch_world_comes_from_the_launchers_variables(monkeypatch):
    for var in ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_SIZE", "PMI_RANK",
                "PMIX_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert launch_world() == (1, 0)
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setenv("PMI_RANK", "2")
    assert launch_world() == (4, 2)
    assert (DistributedSampler(Images(8)).num_replicas, DistributedSampler(Images(8)).rank) \
        == (4, 2)


class _TwoRanks:
    """A stand-in world of 2 ranks whose other rank holds `other(array)` (in-process)."""

    def __init__(self, other):
        self.size, self.rank, self.other, self.messages = 2, 0, other, []

    def allreduce_(self, array):
        self.messages.append(array.size)
        array += self.other(array)
        return array


def test_gradients_are_averaged_in_buckets_one_message_each():
    from tinylesion import distributed, nn, optim
    from tinylesion.tensor import Tensor
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3), nn.Linear(3, 2))
    x = Tensor(np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32))
    model[1:3](model[0](x)).sum().backward()   # the last Linear gets no gradient
    params = list(model.parameters())
    before = [None if p.grad is None else p.grad.array.copy() for p in params]
    world = _TwoRanks(lambda a: 3 * a)  # the other rank's gradients: 3x ours
    opt = distributed.DistributedOptimizer(optim.SGD(params, lr=0.5), world, bucket_bytes=64)
    opt.step()
    for p, g in zip(params, before):
        if g is None:
            assert p.grad is None           # no rank had one: it stays None, no update
        else:
            np.testing.assert_allclose(p.grad.array, 2 * g, rtol=1e-6)  # (g + 3g) / 2
    # buckets cut once they hold 64 bytes: 20 | 4 + 12 | 3 + 6 + 2, the presence counts of
    # the 6 parameters at the end of the first: one message per bucket and no other
    assert world.messages == [20 + 6, 16, 11]
    assert opt.bytes_sent == 4 * (26 + 16 + 11)
    assert opt.param_groups is opt.optimizer.param_groups
    opt.lr_marker = 1
    assert opt.optimizer.lr_marker == 1   # attributes belong to the wrapped optimizer
