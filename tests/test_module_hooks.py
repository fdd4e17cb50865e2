"""Module hooks (forward pre-hooks, forward hooks, full backward hooks and pre-hooks) and
Tensor.register_hook, with PyTorch's semantics: what each hook sees, what a returned value
replaces, removal and order, and that a hooked layer is never fused away."""
import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn as nn
from tinylesion.testing import gradcheck


def small_cnn():
    tl.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


# ---- forward hooks ---------------------------------------------------------------------------
def test_a_forward_hook_on_a_fused_conv_sees_its_output_before_the_relu():
    model = small_cnn()
    seen = []
    model[0].register_forward_hook(lambda module, args, output: seen.append(output))
    x = tl.randn(2, 3, 8, 8)
    for grad_mode in (True, False):   # the training fusions and the inference ones
        seen.clear()
        with tl.set_grad_enabled(grad_mode):
            out = model(x)
        assert len(seen) == 1
        conv = model[0]
        expected = tl.nn.functional.conv2d(x, conv.weight, conv.bias, padding=1).numpy()
        np.testing.assert_allclose(seen[0].numpy(), expected, rtol=1e-5, atol=1e-6)
        assert seen[0].numpy().min() < 0       # not the ReLU's output
        np.testing.assert_allclose(out.numpy(), nn.Sequential(*model)(x).numpy(), rtol=1e-6)


def test_forward_hooks_replace_order_and_remove():
    layer = nn.Linear(3, 2)
    x = tl.ones(1, 3)
    plain = layer(x).numpy()
    calls = []
    first = layer.register_forward_hook(lambda m, a, out: calls.append("first") or out * 2)
    layer.register_forward_hook(lambda m, a, out: calls.append("prepended"), prepend=True)
    np.testing.assert_allclose(layer(x).numpy(), plain * 2, rtol=1e-6)
    assert calls == ["prepended", "first"]
    first.remove()
    first.remove()    # a second remove does nothing
    np.testing.assert_allclose(layer(x).numpy(), plain, rtol=1e-6)


def test_forward_pre_hooks_replace_the_arguments():
    layer = nn.Linear(3, 2)
    x = tl.ones(1, 3)
    layer.register_forward_pre_hook(lambda m, args: args[0] * 0)   # a single value
    np.testing.assert_allclose(layer(x).numpy()[0], layer.bias.numpy())
    seen = []

    def with_kwargs(module, args, kwargs):
        seen.append(sorted(kwargs))
        return args, kwargs

    block = nn.Identity()
    block.register_forward_pre_hook(with_kwargs, with_kwargs=True)
    block(x)
    assert seen == [[]]
    bad = nn.Identity()
    bad.register_forward_pre_hook(lambda m, a, k: "oops", with_kwargs=True)
    with pytest.raises(RuntimeError, match=r"must return None or a tuple \(args, kwargs\)"):
        bad(x)


def test_always_call_forward_hooks_run_when_forward_raises():
    layer = nn.Linear(3, 2)
    calls = []
    layer.register_forward_hook(lambda m, a, out: calls.append(("always", out)),
                                always_call=True)
    layer.register_forward_hook(lambda m, a, out: calls.append(("plain", out)))
    with pytest.raises(RuntimeError):
        layer(tl.ones(1, 4))            # wrong width
    assert calls == [("always", None)]


def test_a_hook_must_be_callable():
    with pytest.raises(TypeError, match="must be callable"):
        nn.Linear(2, 2).register_forward_hook("not a function")


# ---- full backward hooks -------------------------------------------------------------------
def test_full_backward_hook_sees_the_gradients_of_inputs_and_outputs():
    model = small_cnn()
    grads = []
    model[0].register_full_backward_hook(lambda m, gi, go: grads.append((gi, go)))
    outputs = []
    model[0].register_forward_hook(lambda m, a, out: outputs.append(out) or out.retain_grad())
    x = tl.randn(2, 3, 8, 8, requires_grad=True)
    model(x).sum().backward()
    (grad_input,), (grad_output,) = grads[0]
    assert len(grads) == 1
    np.testing.assert_array_equal(grad_input.numpy(), x.grad.numpy())
    np.testing.assert_array_equal(grad_output.numpy(), outputs[0].grad.numpy())
    assert (grad_output.numpy() == 0).any()      # the ReLU's mask: after the conv, not before


def test_a_full_backward_hook_can_replace_grad_input():
    layer = nn.Linear(3, 2)
    x = tl.ones(1, 3, requires_grad=True)
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 2,))
    layer(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[0], 2 * layer.weight.numpy().sum(0), rtol=1e-6)


def test_a_backward_pre_hook_can_replace_grad_output():
    layer = nn.Linear(3, 2)
    x = tl.ones(4, 3)
    layer.register_full_backward_pre_hook(lambda m, go: (go[0] * 0,))
    layer(x).sum().backward()
    assert not layer.weight.grad.numpy().any() and not layer.bias.grad.numpy().any()


def test_the_first_layer_gets_none_for_an_input_without_gradient():
    conv = nn.Conv2d(3, 2, 3)
    got = []
    conv.register_full_backward_hook(lambda m, gi, go: got.append((gi, go[0].shape)))
    conv(tl.rand(1, 3, 5, 5)).sum().backward()
    assert got == [((None,), (1, 2, 3, 3))]


def test_gradients_through_hooked_modules_pass_a_float64_check():
    rng = np.random.default_rng(0)
    layer = nn.Linear(4, 3).double()
    layer.register_full_backward_hook(lambda m, gi, go: None)
    layer.register_full_backward_pre_hook(lambda m, go: None)
    layer.register_forward_hook(lambda m, a, out: out.tanh())
    gradcheck(lambda x: layer(x).sum(), rng.standard_normal((2, 4)))


# ---- Tensor.register_hook ------------------------------------------------------------------
def test_tensor_hooks_change_what_flows_back():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    y = x * 3
    handle = y.register_hook(lambda g: g * 10)
    y.retain_grad()
    ((y * y).sum() + (x * 2).sum()).backward()
    # dL/dy = 2y = [6, 12], times 10; dL/dx = 3 · that + 2, seen once as the sum of both uses
    np.testing.assert_allclose(y.grad.numpy(), [60, 120])
    np.testing.assert_allclose(x.grad.numpy(), [182, 362])
    assert len(seen) == 1 and np.allclose(seen[0], [182, 362])
    handle.remove()
    x.grad = None
    (x * 3 * x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [18, 36])


def test_a_leaf_hook_runs_before_post_accumulate_hooks():
    w = tl.tensor([1.0, 1.0], requires_grad=True)
    order = []
    w.register_post_accumulate_grad_hook(lambda p: order.append(("post", p.grad.numpy()[0])))
    w.register_hook(lambda g: order.append(("hook", g.numpy()[0])) or g + 1)
    (w * 2 + w * 3).sum().backward()
    assert order == [("hook", 5.0), ("post", 6.0)]


def test_bad_tensor_hooks_are_clear_errors():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tl.ones(2).register_hook(lambda g: g)
    x = tl.ones(2, requires_grad=True)
    x.register_hook(lambda g: tl.ones(3))
    with pytest.raises(RuntimeError, match=r"changed the gradient's shape from \(2,\) to \(3,\)"):
        (x * 2).sum().backward()
    y = tl.ones(2, requires_grad=True)
    y.register_hook(lambda g: g.numpy())
    with pytest.raises(TypeError, match="must return None or a Tensor, not ndarray"):
        (y * 2).sum().backward()


def test_a_grad_cam_written_with_hooks_matches_explain_grad_cam():
    from tinylesion import explain
    model = small_cnn().eval()
    x = tl.randn(2, 3, 8, 8)
    layer = model[0]
    store = {}
    forward = layer.register_forward_hook(lambda m, a, out: store.__setitem__("A", out))
    backward = layer.register_full_backward_hook(
        lambda m, gi, go: store.__setitem__("G", go[0]))
    logits = model(x)
    target = logits.argmax(1)
    logits.gather(1, target.reshape(-1, 1)).sum().backward()
    forward.remove()
    backward.remove()
    weights = store["G"].mean(dim=(2, 3), keepdim=True)
    cam = tl.relu((weights * store["A"]).sum(dim=1)).detach().numpy()
    expected = explain.grad_cam(model, x, layer=layer)    # upsampled to 8x8: here 8x8 already
    np.testing.assert_allclose(cam, expected, rtol=1e-5, atol=1e-6)
