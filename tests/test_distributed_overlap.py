"""DistributedOptimizer(overlap=True) in one process, against a stand-in world of 2 ranks:
buckets start during backward in reverse layer order and end with the blocking path's result."""
import numpy as np
import pytest

import tinylesion as tl
from tinylesion import distributed, nn, optim
from tinylesion.gradient_overlap import OVERLAP_ENV, default_overlap
from tinylesion.tensor import Tensor


class Deferred:
    """A request whose reduction happens at wait(), as late as MPI may do it."""

    def __init__(self, finish):
        self.finish, self.tests = finish, 0

    def test(self):
        self.tests += 1
        return False

    def wait(self):
        if self.finish is not None:
            self.finish()
            self.finish = None


class TwoRanks:
    """Rank 0 of a stand-in world whose other rank holds 3x this rank's arrays."""

    def __init__(self, watch=None):
        self.size, self.rank, self.watch = 2, 0, watch
        self.messages, self.started_while = [], []
        self.requests = []

    def allreduce_(self, array):
        self.messages.append(("allreduce", array.size))
        array += 3 * array if array.dtype != np.float64 else array  # counts: both ranks
        return array

    def iallreduce_(self, array):
        self.messages.append(("iallreduce", array.size))
        if self.watch is not None:
            self.started_while.append(self.watch())
        snapshot = array.copy()  # what this rank handed over when it started

        def finish():
            array[...] = snapshot + 3 * snapshot
        self.requests.append(Deferred(finish))
        return self.requests[-1]


def model_and_input(seed=0):
    rng = np.random.default_rng(seed)
    tl.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3), nn.Linear(3, 2))
    x = Tensor(rng.standard_normal((6, 5)).astype(np.float32))
    return model, x


def blocking_result(forward, passes=1):
    model, x = model_and_input()
    opt = distributed.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.5), TwoRanks(),
                                           bucket_bytes=64, overlap=False)
    for _ in range(passes):
        forward(model, x).sum().backward()
    opt.synchronize()
    return [None if p.grad is None else p.grad.array.copy() for p in model.parameters()]


def whole(model, x):
    return model(x)


def without_last(model, x):
    return model[1:3](model[0](x))   # the last Linear gets no gradient


@pytest.mark.parametrize("forward", [whole, without_last])
def test_buckets_start_during_backward_and_end_as_the_blocking_path(forward):
    model, x = model_and_input()
    world = TwoRanks(watch=lambda: model[0].weight.grad is None)
    opt = distributed.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.5), world,
                                           bucket_bytes=64, overlap=True)
    forward(model, x).sum().backward()
    started = list(world.messages)
    opt.synchronize()
    want = blocking_result(forward)
    for p, g in zip(model.parameters(), want):
        if g is None:
            assert p.grad is None
        else:
            np.testing.assert_array_equal(p.grad.array, g)
    # buckets in reverse parameter order, cut at 64 bytes: last two Linears | first Linear
    if forward is whole:
        assert started == [("iallreduce", 2 + 6 + 3 + 12), ("iallreduce", 4 + 20)]
        # the first bucket started before the first layer had its gradient
        assert world.started_while == [True, False]
        assert world.requests[0].tests > 0   # later gradients drove MPI's progress
    else:
        # the bucket with the unreached Linear waits for step() (and so the next one too)
        assert started == []
    assert world.messages[-1] == ("allreduce", 6 + 1)  # presence counts and the redo flag
    assert len(world.messages) == 3
    assert opt.bytes_sent == 4 * (23 + 24) + 8 * 7


def test_a_second_backward_before_step_reduces_the_accumulated_gradients():
    model, x = model_and_input()
    world = TwoRanks()
    opt = distributed.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.5), world,
                                           bucket_bytes=64, overlap=True)
    model(x).sum().backward()
    model(x).sum().backward()   # gradient accumulation: the started buckets went stale
    opt.synchronize()
    for p, g in zip(model.parameters(), blocking_result(whole, passes=2)):
        np.testing.assert_array_equal(p.grad.array, g)
    # the next step overlaps again
    opt.zero_grad()
    model(x).sum().backward()
    n = len(world.messages)
    opt.synchronize()
    assert [kind for kind, _ in world.messages[n:]] == ["allreduce"]
    for p, g in zip(model.parameters(), blocking_result(whole)):
        np.testing.assert_array_equal(p.grad.array, g)


def test_freezing_a_layer_rebuilds_the_buckets():
    model, x = model_and_input()
    world = TwoRanks()
    opt = distributed.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.5), world,
                                           bucket_bytes=64, overlap=True)
    for p in model[0].parameters():
        p.requires_grad = False
    model(x).sum().backward()
    opt.synchronize()
    want = blocking_result(whole)
    for p, g in zip(model.parameters(), want):
        if p.requires_grad:
            np.testing.assert_array_equal(p.grad.array, g)
        else:
            assert p.grad is None
    assert len(opt.overlap.params) == 4


def test_parameters_cast_after_the_buckets_were_made_are_reduced_right():
    model, x = model_and_input()
    world = TwoRanks()
    opt = distributed.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.5), world,
                                           bucket_bytes=64, overlap=True)
    for p in model.parameters():
        p.array = p.array.astype(np.float64)
    x64 = Tensor(x.array.astype(np.float64))
    model(x64).sum().backward()
    assert [kind for kind, _ in world.messages] == []   # nothing started with old buckets
    opt.synchronize()
    want_model, _ = model_and_input()
    for p in want_model.parameters():
        p.array = p.array.astype(np.float64)
    blocking = distributed.DistributedOptimizer(optim.SGD(want_model.parameters(), lr=0.5),
                                                TwoRanks(), bucket_bytes=64, overlap=False)
    want_model(x64).sum().backward()
    blocking.synchronize()
    for p, q in zip(model.parameters(), want_model.parameters()):
        assert p.grad.array.dtype == np.float64
        np.testing.assert_array_equal(p.grad.array, q.grad.array)
    assert all(b.flat.dtype == np.float64 for b in opt.overlap.buckets)  # rebuilt


def test_a_second_wrapper_of_the_same_parameters_takes_the_hooks_over():
    model, x = model_and_input()
    first_world, second_world = TwoRanks(), TwoRanks()
    sgd = optim.SGD(model.parameters(), lr=0.5)
    first = distributed.DistributedOptimizer(sgd, first_world, bucket_bytes=64, overlap=True)
    second = distributed.DistributedOptimizer(sgd, second_world, bucket_bytes=64, overlap=True)
    assert first.overlap.handles == [] and second.overlap.handles
    model(x).sum().backward()
    assert first_world.messages == [] and len(second_world.messages) == 2
    second.synchronize()
    for p, g in zip(model.parameters(), blocking_result(whole)):
        np.testing.assert_array_equal(p.grad.array, g)


def test_the_overlap_default_comes_from_the_environment_or_the_measured_default():
    assert default_overlap({OVERLAP_ENV: "1"}) is True
    assert default_overlap({OVERLAP_ENV: "0"}) is False
    assert default_overlap({}) is distributed.OVERLAP
    with pytest.raises(distributed.DistributedError, match=OVERLAP_ENV):
        default_overlap({OVERLAP_ENV: "yes"})
