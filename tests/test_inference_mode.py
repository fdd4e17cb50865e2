"""Inference under no_grad: the one-pass batch norm equals the recorded one; memory is freed."""
import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn as nn
from kernels.channel_affine import channel_affine, channel_affine_reference


def _bn(num, dtype, seed):
    rng = np.random.default_rng(seed)
    bn = nn.BatchNorm2d(num)
    bn.weight.array[...] = rng.uniform(0.5, 2.0, num)
    bn.bias.array[...] = rng.standard_normal(num)
    bn.running_mean.array[...] = rng.standard_normal(num)
    bn.running_var.array[...] = rng.uniform(0.1, 3.0, num)
    return bn.to(dtype=dtype) if dtype != np.float32 else bn


@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (3, 64, 40, 30), (1, 512, 7, 7)])
@pytest.mark.parametrize("impl", ["cpu", "reference"])
def test_channel_affine_is_a_product_then_a_sum(shape, impl):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    scale = rng.standard_normal(shape[1]).astype(np.float32)
    shift = rng.standard_normal(shape[1]).astype(np.float32)
    expected = x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)
    y = channel_affine(x, scale, shift, impl=impl)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    # with the ReLU, into the input's own array
    z = x.copy()
    assert channel_affine(z, scale, shift, impl=impl, relu=True, out=z) is z
    np.testing.assert_allclose(z, np.maximum(expected, 0), rtol=1e-6, atol=1e-6)
    # a strided input is read as it stands, the result is a new contiguous array
    xt = x.transpose(0, 1, 3, 2)
    np.testing.assert_allclose(channel_affine(xt, scale, shift, impl=impl),
                               channel_affine_reference(np.ascontiguousarray(xt), scale, shift),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 6, 5, 3), (2, 32, 64, 64)])
def test_eval_batch_norm_under_no_grad_equals_the_recorded_one(shape, monkeypatch):
    import kernels.channel_affine as module
    calls = []
    monkeypatch.setattr(module, "channel_affine",
                        lambda *a, _f=module.channel_affine: calls.append(1) or _f(*a))
    bn = _bn(shape[1], np.float32, 1).eval()
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    xt = tl.Tensor(x, requires_grad=True)
    recorded = bn(xt)                 # the differentiable x * scale + shift
    assert recorded.requires_grad and not calls
    with tl.no_grad():
        fused = bn(tl.Tensor(x))
    assert calls == [1]               # the one-pass kernel ran
    assert not fused.requires_grad and fused.dtype == np.float32
    np.testing.assert_allclose(fused.numpy(), recorded.numpy(), rtol=1e-6, atol=1e-6)
    # frozen parameters and an input without gradient: nothing to record either
    bn.requires_grad_(False)
    np.testing.assert_allclose(bn(tl.Tensor(x)).numpy(), recorded.numpy(), rtol=1e-6,
                               atol=1e-6)
    # 2-D input of BatchNorm1d takes the same path
    bn1 = nn.BatchNorm1d(shape[1]).eval()
    bn1.load_state_dict(bn.state_dict())
    x2 = x[:, :, 0, 0].copy()
    with tl.no_grad():
        got = bn1(tl.Tensor(x2)).numpy()
    np.testing.assert_allclose(got, bn1(tl.Tensor(x2, requires_grad=True)).numpy(), rtol=1e-6,
                               atol=1e-6)


def test_training_batch_norm_is_unaffected_by_no_grad():
    """model.train() normalises with the batch's statistics and updates the running ones,
    with or without no_grad."""
    bn = _bn(4, np.float32, 3).train()
    x = np.random.default_rng(4).standard_normal((8, 4, 5, 5)).astype(np.float32)
    before = bn.running_mean.numpy().copy()
    with tl.no_grad():
        y = bn(tl.Tensor(x)).numpy()
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    expected = (x - mean) / np.sqrt(var + bn.eps) * bn.weight.numpy().reshape(1, -1, 1, 1) \
        + bn.bias.numpy().reshape(1, -1, 1, 1)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(bn.running_mean.numpy(), before)


def test_eval_batch_norm_keeps_gradients_when_recording():
    bn = _bn(3, np.float32, 5).eval()
    x = tl.Tensor(np.random.default_rng(6).standard_normal((2, 3, 4, 4)).astype(np.float32),
                  requires_grad=True)
    bn(x).sum().backward()
    scale = bn.weight.numpy() / np.sqrt(bn.running_var.numpy() + bn.eps)
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(scale.reshape(1, 3, 1, 1),
                                                               x.shape), rtol=1e-6)
    assert bn.weight.grad is not None and bn.bias.grad is not None


def test_relu_inplace_writes_into_its_input_under_no_grad_only():
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 5)).astype(np.float32)
    relu = nn.ReLU(inplace=True)
    t = tl.Tensor(x.copy())
    with tl.no_grad():
        y = relu(t)
    assert np.shares_memory(y.array, t.array) and np.array_equal(t.numpy(), np.maximum(x, 0))
    # recording: a new tensor, the input untouched, the gradient right
    t = tl.Tensor(x.copy(), requires_grad=True)
    y = relu(t)
    assert y is not t and np.array_equal(t.numpy(), x)
    y.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), (x > 0).astype(np.float32))
    # the default (inplace=False) and a read-only input give new tensors under no_grad too
    with tl.no_grad():
        t = tl.Tensor(x.copy())
        assert not np.shares_memory(nn.ReLU()(t).array, t.array) and np.array_equal(t.numpy(), x)
        ro = x.copy()
        ro.flags.writeable = False
        assert np.array_equal(tl.nn.functional.relu(tl.Tensor(ro), inplace=True).numpy(),
                              np.maximum(x, 0))


def _traced_peak(fn):
    import tracemalloc
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_bottleneck_under_no_grad_holds_one_activation_fewer():
    """resnet50's first block (with its projection) at inference: the ReLUs (inplace=True, as
    torchvision's) write into the batch norm's and the sum's arrays, so the block's peak is an
    output-sized activation lower than with new arrays for them."""
    from tinylesion.models.resnet import Bottleneck
    tl.manual_seed(0)
    down = nn.Sequential(nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256))
    block = Bottleneck(64, 64, 1, down).eval()
    x = tl.Tensor(np.random.default_rng(8).standard_normal((4, 64, 24, 24)).astype(np.float32))
    with tl.no_grad():
        expected = block(x).numpy()
        peak_inplace = _traced_peak(lambda: block(x))
        block.relu.inplace = False
        peak_new = _traced_peak(lambda: block(x))
        np.testing.assert_array_equal(block(x).numpy(), expected)
    activation = 4 * 256 * 24 * 24 * 4
    assert peak_inplace <= peak_new - 0.9 * activation


def _stack(pad, bias, dtype=np.float32, seed=9):
    tl.manual_seed(seed)
    layers = [] if pad is None else [nn.ZeroPad2d(pad)]
    layers += [nn.Conv2d(6, 20, 3, bias=bias), _bn(20, np.float32, seed), nn.ReLU()]
    model = nn.Sequential(*layers).eval()
    return model.to(dtype=dtype) if dtype != np.float32 else model


@pytest.mark.parametrize("pad, bias", [(2, True), ((1, 1, 2, 2), False), (None, True),
                                       ((1, 0, 1, 1), True)])
def test_sequential_folds_pad_conv_batch_norm_relu_at_inference(pad, bias, monkeypatch):
    """Under no_grad, [ZeroPad2d] Conv2d BatchNorm2d(eval) ReLU run as one convolution with
    folded weights: the unfused layers' numbers to float32 rounding, and one output array."""
    import tinylesion.nn.inference_fusion as fusion
    model = _stack(pad, bias)
    x = tl.Tensor(np.random.default_rng(10).standard_normal((3, 6, 47, 45)).astype(np.float32))
    recorded = model(x).numpy()           # grad mode: the layers one by one
    with tl.no_grad():
        monkeypatch.setattr(fusion, "ENABLED", False)
        unfused = model(x).numpy()
        monkeypatch.setattr(fusion, "ENABLED", True)
        fused = model(x).numpy()
    np.testing.assert_array_equal(unfused, recorded)
    scale = np.abs(recorded).max()
    np.testing.assert_allclose(fused, unfused, rtol=1e-5, atol=1e-6 * scale)
    assert (fused >= 0).all()
    layers = list(model)
    assert fusion.fused_conv_run(layers, 0, x) is None   # recording: never
    with tl.no_grad():
        if pad == (1, 0, 1, 1):   # an asymmetric pad runs on its own, the rest as one op
            assert fusion.fused_conv_run(layers, 0, x) is None
            assert fusion.fused_conv_run(layers, 1, x)[1] == 3
        else:
            assert fusion.fused_conv_run(layers, 0, x)[1] == len(layers)


def test_folded_layers_hold_one_output_array(monkeypatch):
    """A 1x1 Conv2d, BatchNorm2d and ReLU under no_grad: the unfused layers hold two
    output-sized arrays at once (the convolution's and the batch norm's), the folded one."""
    import tinylesion.nn.inference_fusion as fusion
    tl.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(32, 64, 1), _bn(64, np.float32, 12), nn.ReLU()).eval()
    x = tl.Tensor(np.random.default_rng(13).standard_normal((4, 32, 40, 40)).astype(np.float32))
    out = 4 * 64 * 40 * 40 * 4
    with tl.no_grad():
        model(x)
        peak_fused = _traced_peak(lambda: model(x))
        monkeypatch.setattr(fusion, "ENABLED", False)
        peak_unfused = _traced_peak(lambda: model(x))
    assert peak_fused < 1.2 * out and peak_unfused > 1.8 * out


def test_folding_leaves_training_and_replaced_layers_alone():
    import tinylesion.nn.inference_fusion as fusion
    model = _stack(1, True)
    x = tl.Tensor(np.random.default_rng(11).standard_normal((4, 6, 9, 9)).astype(np.float32))
    # model.train(): batch statistics, running ones updated, under no_grad too
    model.train()
    before = model[2].running_mean.numpy().copy()
    with tl.no_grad():
        model(x)
    assert not np.allclose(model[2].running_mean.numpy(), before)
    model.eval()
    with tl.no_grad():
        assert fusion.fused_conv_run(list(model), 0, x) is not None
        seen = []
        conv = model[1]
        conv.forward = lambda t, _f=type(conv).forward: seen.append(1) or _f(conv, t)
        assert fusion.fused_conv_run(list(model), 0, x) is None   # Grad-CAM's wrapping
        model(x)
    assert seen == [1]
    assert fusion.fused_conv_run(list(model), 0, x) is None      # recording: never


@pytest.mark.parametrize("size, folds", [(20, True), (3, False)])
def test_conv_bn_helper_equals_the_layers(size, folds, monkeypatch):
    """ResNet's conv_bn: under no_grad one folded convolution where the output outweighs the
    weights, else the convolution then the one-pass batch norm; the layers' numbers either way
    (float32 rounding), and the layers' own calls when recording."""
    import tinylesion.nn.inference_fusion as fusion
    tl.manual_seed(1)
    conv, bn, relu = nn.Conv2d(16, 24, 3, padding=1, bias=False), _bn(24, np.float32, 14), \
        nn.ReLU(inplace=True)
    bn.eval()
    x = tl.Tensor(np.random.default_rng(15).standard_normal((2, 16, size, size))
                  .astype(np.float32))
    expected = relu(bn(conv(x))).numpy()
    folded = []
    monkeypatch.setattr(fusion, "_fold", lambda W, *a, _f=fusion._fold:
                        (W is not None and folded.append(1)) or _f(W, *a))
    assert np.array_equal(fusion.conv_bn(conv, bn, x, relu).numpy(), expected) and not folded
    with tl.no_grad():
        got = fusion.conv_bn(conv, bn, x, relu).numpy()
        plain = fusion.conv_bn(conv, bn, x).numpy()
    assert folded == ([1] if folds else [])   # (the second call reuses the folded weights)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.maximum(plain, 0), expected, rtol=1e-5, atol=1e-5)
    assert (plain < 0).any()


def test_add_relu_writes_the_sum_into_the_blocks_own_array():
    from tinylesion.nn.inference_fusion import add_relu
    rng = np.random.default_rng(16)
    a, b = (rng.standard_normal((2, 8, 5, 5)).astype(np.float32) for _ in range(2))
    relu = nn.ReLU(inplace=True)
    out, shortcut = tl.Tensor(a.copy()), tl.Tensor(b.copy())
    with tl.no_grad():
        y = add_relu(out, shortcut, relu)
    np.testing.assert_array_equal(y.numpy(), np.maximum(a + b, 0))
    assert np.shares_memory(y.array, out.array) and np.array_equal(shortcut.numpy(), b)
    out = tl.Tensor(a.copy(), requires_grad=True)
    y = add_relu(out, shortcut, relu)          # recording: a new array, gradients as usual
    assert not np.shares_memory(y.array, out.array) and np.array_equal(out.numpy(), a)
    y.sum().backward()
    np.testing.assert_array_equal(out.grad.numpy(), (a + b > 0).astype(np.float32))
