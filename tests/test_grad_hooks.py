"""Tensor.register_post_accumulate_grad_hook: once per backward, when the leaf's .grad is final."""
import numpy as np
import pytest

import tinylesion as tl


def recorder(calls, name):
    """A hook that records (name, a copy of the gradient it saw) on each call."""
    def hook(p):
        calls.append((name, p.grad.numpy().copy()))
    return hook


def net(rng):
    w1 = tl.Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w2 = tl.Tensor(rng.standard_normal((4, 4)), requires_grad=True)
    return w1, w2


def test_a_parameter_used_twice_fires_once_with_its_whole_gradient():
    rng = np.random.default_rng(0)
    x = tl.Tensor(rng.standard_normal((5, 3)))
    w1, w2 = net(rng)
    calls = []
    w1.register_post_accumulate_grad_hook(recorder(calls, "w1"))
    w2.register_post_accumulate_grad_hook(recorder(calls, "w2"))
    # w2 is used near the output and again deep inside: its first contribution arrives
    # long before its last
    h = (x @ w1).tanh() @ w2
    loss = ((h.tanh() @ w2) * h).sum()
    loss.backward()
    names = [name for name, _ in calls]
    assert names.count("w1") == 1 and names.count("w2") == 1
    for name, seen in calls:
        final = {"w1": w1, "w2": w2}[name].grad.numpy()
        np.testing.assert_array_equal(seen, final, err_msg=f"{name}: hook before the end")
    # the reverse order of the layers: w2 is final before w1 (so during backward)
    assert names == ["w2", "w1"]


def test_the_hook_runs_during_backward_before_earlier_layers_have_gradients():
    rng = np.random.default_rng(1)
    x = tl.Tensor(rng.standard_normal((5, 3)))
    w1, w2 = net(rng)
    seen = []
    w2.register_post_accumulate_grad_hook(lambda p: seen.append(w1.grad is None))
    ((x @ w1).relu() @ w2).sum().backward()
    assert seen == [True]


def test_the_same_leaf_twice_in_one_op_fires_once():
    x = tl.Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    calls = []
    x.register_post_accumulate_grad_hook(recorder(calls, "x"))
    (x * x).sum().backward()
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0][1], [2.0, -4.0, 6.0])


def test_a_parameter_backward_does_not_reach_gets_no_call():
    rng = np.random.default_rng(2)
    x = tl.Tensor(rng.standard_normal((5, 3)))
    w1, w2 = net(rng)
    unused = tl.Tensor(rng.standard_normal((4, 2)), requires_grad=True)
    calls = []
    unused.register_post_accumulate_grad_hook(recorder(calls, "unused"))
    w1.register_post_accumulate_grad_hook(recorder(calls, "w1"))
    h = (x @ w1).relu()
    _ = h @ unused            # a branch off the graph of the loss
    (h @ w2).sum().backward()
    assert [name for name, _ in calls] == ["w1"] and unused.grad is None


def test_retain_graph_fires_once_per_backward_with_the_accumulated_gradient():
    rng = np.random.default_rng(3)
    x = tl.Tensor(rng.standard_normal((5, 3)))
    w1, w2 = net(rng)
    calls = []
    w1.register_post_accumulate_grad_hook(recorder(calls, "w1"))
    loss = ((x @ w1).tanh() @ w2).sum()
    loss.backward(retain_graph=True)
    once = w1.grad.numpy().copy()
    loss.backward()
    assert len(calls) == 2
    np.testing.assert_array_equal(calls[0][1], once)
    np.testing.assert_allclose(calls[1][1], 2 * once, rtol=1e-12)
    np.testing.assert_allclose(w1.grad.numpy(), 2 * once, rtol=1e-12)
    with pytest.raises(RuntimeError, match="already freed"):
        loss.backward()   # the second backward freed it
    assert len(calls) == 2


def test_a_leaf_as_the_root_and_remove():
    v = tl.Tensor(np.zeros(3), requires_grad=True)
    first, second = [], []
    handle = v.register_post_accumulate_grad_hook(lambda p: first.append(1))
    v.register_post_accumulate_grad_hook(lambda p: second.append(len(first)))
    v.backward(np.array([1.0, 2.0, 3.0]))
    assert first == [1] and second == [1]   # in registration order
    handle.remove()
    handle.remove()   # a second remove does nothing
    v.backward(np.array([1.0, 2.0, 3.0]))
    assert first == [1] and second == [1, 1]


def test_the_hook_may_update_the_parameter_in_place():
    v = tl.Tensor(np.zeros(3), requires_grad=True)
    v.register_post_accumulate_grad_hook(lambda p: p.array.__isub__(0.5 * p.grad.array))
    (v * tl.Tensor(np.array([1.0, 2.0, 3.0]))).sum().backward()
    np.testing.assert_array_equal(v.numpy(), [-0.5, -1.0, -1.5])


def test_a_hook_on_an_op_result_or_a_constant_is_refused():
    x = tl.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="only leaves"):
        (x * 2).register_post_accumulate_grad_hook(lambda p: None)
    with pytest.raises(RuntimeError, match="does not require grad"):
        tl.Tensor(np.ones(2)).register_post_accumulate_grad_hook(lambda p: None)
    with pytest.raises(TypeError, match="callable"):
        x.register_post_accumulate_grad_hook(3)
