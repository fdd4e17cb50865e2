"""Gradients living in DistributedOptimizer's buckets (in one process, against a stand-in world
of 2 ranks): backward writes into them, the allreduce reads them in place, .grad stays a view."""
import numpy as np
import pytest

import tinylesion as tl
from test_distributed_overlap import model_and_input
from tinylesion import distributed, optim
from tinylesion.tensor import Tensor


class TwoRanks:
    """Rank 0 of a stand-in world whose other rank holds 3x this rank's arrays; it keeps the
    arrays it was handed."""

    def __init__(self):
        self.size, self.rank, self.reduced = 2, 0, []

    def allreduce_(self, array):
        self.reduced.append(array)
        array += 3 * array
        return array


def reference_grads(passes=1, forward=None):
    """The gradients one process gets (no buckets) after `passes` backward calls."""
    model, x = model_and_input()
    for _ in range(passes):
        (forward or (lambda m, v: m(v)))(model, x).sum().backward()
    return [None if p.grad is None else p.grad.array.copy() for p in model.parameters()]


def wrapped(bucket_bytes=64, **kwargs):
    model, x = model_and_input()
    world = TwoRanks()
    opt = distributed.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.5, **kwargs),
                                           world, bucket_bytes=bucket_bytes, overlap=False)
    return model, x, world, opt


def bucket_arrays(opt):
    return [b.flat for b in opt.buckets.buckets]


def shares_a_bucket(array, opt):
    return any(np.shares_memory(array, flat) for flat in bucket_arrays(opt))


def test_backward_writes_into_the_buckets_and_the_allreduce_reduces_them_in_place():
    model, x, world, opt = wrapped()
    model(x).sum().backward()
    for p in model.parameters():   # before any reduction: backward wrote there
        assert shares_a_bucket(p.grad.array, opt)
    opt.step()
    # one message per bucket, each the bucket's own memory (no copy in)
    assert len(world.reduced) == len(bucket_arrays(opt)) == 3
    for array, flat in zip(world.reduced, bucket_arrays(opt)):
        assert np.shares_memory(array, flat)
    for p, g in zip(model.parameters(), reference_grads()):
        assert shares_a_bucket(p.grad.array, opt)   # no copy out either
        np.testing.assert_allclose(p.grad.array, 2 * g, rtol=1e-6)   # (g + 3g) / 2


def test_the_next_steps_reuse_the_buckets_with_either_zero_grad():
    model, x, world, opt = wrapped()
    flats = bucket_arrays(opt)
    for set_to_none in (True, False, True):
        opt.zero_grad(set_to_none=set_to_none)
        if not set_to_none:   # zeroed in place: still the views
            for p in model.parameters():
                assert shares_a_bucket(p.grad.array, opt) and not p.grad.array.any()
        model(x).sum().backward()
        for p in model.parameters():
            assert shares_a_bucket(p.grad.array, opt)
        opt.synchronize()   # (no step: the weights, and so the gradients, stay the same)
        for p, g in zip(model.parameters(), reference_grads()):
            np.testing.assert_allclose(p.grad.array, 2 * g, rtol=1e-6)
    assert all(a is b for a, b in zip(bucket_arrays(opt), flats))   # the same buffers
    assert len(world.reduced) == 3 * 3


def test_gradients_accumulated_over_several_backward_calls_are_reduced_once():
    model, x, world, opt = wrapped()
    model(x).sum().backward()
    model(x).sum().backward()   # added in place into the buckets
    for p in model.parameters():
        assert shares_a_bucket(p.grad.array, opt)
    opt.synchronize()
    for p, g in zip(model.parameters(), reference_grads(passes=2)):
        np.testing.assert_allclose(p.grad.array, 2 * g, rtol=1e-6)


def test_a_gradient_the_user_assigns_is_copied_in_and_never_lost():
    model, x, world, opt = wrapped()
    model(x).sum().backward()
    params = list(model.parameters())
    mine = np.arange(params[0].array.size, dtype=np.float32).reshape(params[0].array.shape)
    params[0].grad = Tensor(mine)                          # a Tensor of the user's
    params[2].grad.array = np.full(params[2].array.shape, 5, np.float32)   # or its array
    opt.synchronize()
    expected = reference_grads()
    np.testing.assert_allclose(params[0].grad.array, 2 * mine)
    np.testing.assert_allclose(params[2].grad.array, np.full(params[2].array.shape, 10))
    for i in (1, 3, 4, 5):
        np.testing.assert_allclose(params[i].grad.array, 2 * expected[i], rtol=1e-6)
    for p in params:   # the views again, so that the next backward writes there
        assert shares_a_bucket(p.grad.array, opt)
    # a gradient assigned to a parameter no backward reached, and then added to
    opt.zero_grad()
    params[5].grad = Tensor(np.ones(params[5].array.shape, np.float32))
    model(x).sum().backward()
    opt.synchronize()
    np.testing.assert_allclose(params[5].grad.array, 2 * (expected[5] + 1), rtol=1e-6)


def test_a_parameter_without_a_gradient_keeps_none_and_leaves_nothing_stale():
    model, x, world, opt = wrapped()
    model(x).sum().backward()
    opt.step()
    opt.zero_grad()

    def without_last(m, v):
        return m[1:3](m[0](v))
    without_last(model, x).sum().backward()
    opt.synchronize()
    model_ref, x_ref = model_and_input()
    model_ref(x_ref).sum().backward()
    with tl.no_grad():
        for p in model_ref.parameters():
            p.array -= 0.5 * 2 * p.grad.array
    for p in model_ref.parameters():
        p.grad = None
    without_last(model_ref, x_ref).sum().backward()
    for p, q in zip(model.parameters(), model_ref.parameters()):
        if q.grad is None:
            assert p.grad is None   # no rank had one
        else:
            np.testing.assert_allclose(p.grad.array, 2 * q.grad.array, rtol=1e-5, atol=1e-7)


def test_clipping_and_the_step_see_the_averaged_gradients_in_the_buckets():
    model, x, world, opt = wrapped()
    model(x).sum().backward()
    total = opt.clip_grad_norm_(0.1)
    expected = reference_grads()
    norm = float(np.sqrt(sum(float((2 * g.astype(np.float64) ** 2).sum()) * 2
                             for g in expected)))
    assert total == pytest.approx(norm, rel=1e-5)
    clipped = [g * 2 * (0.1 / (norm + 1e-6)) for g in expected]
    before = [p.array.copy() for p in model.parameters()]
    opt.step()
    for p, g, w in zip(model.parameters(), clipped, before):
        np.testing.assert_allclose(p.grad.array, g, rtol=1e-5)
        np.testing.assert_allclose(p.array, w - 0.5 * g, rtol=1e-5, atol=1e-7)


def test_frozen_unfrozen_or_cast_parameters_get_new_buckets():
    model, x, world, opt = wrapped()
    old = bucket_arrays(opt)
    first = model[0].weight
    first.requires_grad_(False)   # frozen: out of the buckets, backward writes elsewhere
    model(x).sum().backward()
    opt.synchronize()
    assert first.grad is None and getattr(first, "_grad_view", None) is None
    assert not any(np.shares_memory(a, b) for a in bucket_arrays(opt) for b in old)
    first.requires_grad_(True)    # unfrozen: its gradient is copied in once, then a view
    opt.zero_grad()
    model(x).sum().backward()
    assert not shares_a_bucket(first.grad.array, opt)
    opt.synchronize()
    assert shares_a_bucket(first.grad.array, opt)
    for p, g in zip(model.parameters(), reference_grads()):
        np.testing.assert_allclose(p.grad.array, 2 * g, rtol=1e-6)
    model.double()                # cast: the float32 buckets no longer fit
    opt.zero_grad()
    x64 = Tensor(x.array.astype(np.float64))
    model(x64).sum().backward()
    opt.synchronize()
    ref, _ = model_and_input()
    ref.double()
    ref(x64).sum().backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        assert p.grad.array.dtype == np.float64 and shares_a_bucket(p.grad.array, opt)
        np.testing.assert_allclose(p.grad.array, 2 * q.grad.array, rtol=1e-12)


def test_one_process_keeps_gradients_of_its_own():
    model, x = model_and_input()
    opt = distributed.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.5), None)
    model(x).sum().backward()
    assert opt.buckets is None
    assert all(getattr(p, "_grad_view", None) is None for p in model.parameters())
