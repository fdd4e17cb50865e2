"""nn.Sequential runs Conv2d, ReLU, MaxPool2d as one op while it records a graph
(ops.Conv2dReluMaxPool): the same outputs and gradients as the layers apart, its backward one
pass through the pooling, the ReLU's mask and the bias gradient, the convolution's output not
kept."""
import numpy as np
import pytest

import kernels
import tinylesion as tl
from tinylesion import nn, ops
from tinylesion.testing import gradcheck


def _model(rng, dtype, bias=True, pool=None):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding="same", bias=bias), nn.ReLU(),
                          pool or nn.MaxPool2d(2),
                          nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    if dtype == np.float64:
        model.double()
    state = {k: rng.standard_normal(v.shape).astype(dtype)
             for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    return model


def _unfused(model, x):
    for layer in model:
        x = layer(x)
    return x


def _run(run, model, x):
    model.zero_grad()
    xt = tl.tensor(x, requires_grad=True)
    y = run(xt)
    (y * tl.tensor(np.arange(y.numel(), dtype=x.dtype).reshape(y.shape))).sum().backward()
    return [y.numpy(), xt.grad.numpy()] + [p.grad.numpy() for p in model.parameters()]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("pool", [None, nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)])
def test_same_outputs_and_gradients_as_the_layers_apart(bias, pool):
    rng = np.random.default_rng(0)
    model = _model(rng, np.float32, bias, pool)
    x = rng.standard_normal((2, 3, 11, 9)).astype(np.float32)
    fused, apart = _run(model, model, x), _run(lambda t: _unfused(model, t), model, x)
    assert len(fused) == len(apart)
    for a, b in zip(fused, apart):
        np.testing.assert_array_equal(a, b)


def test_one_op_that_keeps_no_full_size_array(monkeypatch):
    rng = np.random.default_rng(1)
    model = _model(rng, np.float32)
    x = tl.tensor(rng.standard_normal((2, 3, 12, 10)).astype(np.float32))
    y = model[:3](x)
    fn = y._ctx
    assert type(fn) is ops.Conv2dReluMaxPool
    conv_out = (2, 4, 12, 10)
    assert not [k for k, v in vars(fn).items() if getattr(v, "shape", None) == conv_out]

    def refuse(*args, **kwargs):
        raise AssertionError("a separate pass ran")

    for name in ("maxpool2d_backward", "relu_backward", "relu_backward_channel_sums"):
        monkeypatch.setattr(kernels, name, refuse)
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(AssertionError, match="separate pass"):
        _unfused(model, x).sum().backward()


def test_gradient_finite_differences():
    rng = np.random.default_rng(2)
    model = _model(rng, np.float64)
    x = rng.standard_normal((2, 3, 8, 7))
    gradcheck(lambda x: model(x), x, rtol=1e-6)


def test_not_fused_without_a_graph_nor_when_the_layers_differ():
    rng = np.random.default_rng(3)
    model = _model(rng, np.float32)
    x = tl.tensor(rng.standard_normal((1, 3, 10, 9)).astype(np.float32))
    with tl.no_grad():
        plain = model(x).numpy()
    np.testing.assert_array_equal(plain, model(x).numpy())
    seen = []
    pool = model[2]
    inner = pool.forward
    object.__setattr__(pool, "forward", lambda x: seen.append(1) or inner(x))
    np.testing.assert_array_equal(model(x).numpy(), plain)
    assert seen == [1]   # the wrapped forward ran
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.ReLU(), nn.MaxPool2d(2))
    z = tl.tensor(rng.standard_normal((1, 4, 6, 6)).astype(np.float32), requires_grad=True)
    assert type(grouped(z)._ctx) is ops.MaxPool2d


def test_a_pooling_larger_than_the_convolution_output_is_refused_naming_it():
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.MaxPool2d(4))
    x = tl.tensor(np.ones((1, 3, 5, 5), np.float32), requires_grad=True)
    with pytest.raises(ValueError, match="input of 3x3.*smaller than the 4x4 window"):
        model(x)


# ---- ReLU then MaxPool2d (melanoma_cnn's BatchNorm2d, ReLU, MaxPool2d; resnet's stem) -------
def _bn_model(rng, dtype, pool=None, inplace=False):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4),
                          nn.ReLU(inplace=inplace), pool or nn.MaxPool2d(2), nn.Flatten())
    if dtype == np.float64:
        model.double()
    for p in model.parameters():
        p.array[...] = rng.standard_normal(p.shape).astype(dtype)
    return model


@pytest.mark.parametrize("pool", [None, nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)])
@pytest.mark.parametrize("inplace", [False, True])
def test_relu_then_pool_same_outputs_and_gradients_as_the_layers_apart(pool, inplace):
    rng = np.random.default_rng(5)
    model = _bn_model(rng, np.float32, pool, inplace)
    x = rng.standard_normal((2, 3, 11, 9)).astype(np.float32)
    fused, apart = _run(model, model, x), _run(lambda t: _unfused(model, t), model, x)
    for a, b in zip(fused, apart):
        np.testing.assert_array_equal(a, b)
    with tl.no_grad():   # fused too without a graph (unless the ReLU writes its input)
        np.testing.assert_array_equal(model(tl.tensor(x)).numpy(),
                                      _unfused(model, tl.tensor(x)).numpy())


def test_relu_then_pool_is_one_op_whose_relu_runs_on_the_pooled_output(monkeypatch):
    rng = np.random.default_rng(6)
    model = _bn_model(rng, np.float32)
    x = tl.tensor(rng.standard_normal((2, 3, 12, 10)).astype(np.float32))
    y = model[:4](x)
    assert type(y._ctx) is ops.ReluMaxPool and y.shape == (2, 4, 6, 5)
    assert not [k for k, v in vars(y._ctx).items() if getattr(v, "shape", None) == (2, 4, 12, 10)]
    sizes = []
    real = kernels.relu_in_place_mask
    monkeypatch.setattr(kernels, "relu_in_place_mask", lambda a: sizes.append(a.shape) or
                        real(a))

    def refuse(*args, **kwargs):
        raise AssertionError("a separate pass ran")

    # the ReLU and its mask in one pass (relu_in_place_mask), no ReLU pass apart
    for name in ("relu_backward", "maxpool2d_backward", "relu_forward", "relu_mask"):
        monkeypatch.setattr(kernels, name, refuse)
    model(x).sum().backward()
    assert sizes == [(2, 4, 6, 5)]   # the ReLU ran on the pooled output only
    assert all(p.grad is not None for p in model.parameters())


def test_relu_then_pool_gradient_finite_differences():
    rng = np.random.default_rng(7)
    model = _bn_model(rng, np.float64)
    gradcheck(lambda x: model(x), rng.standard_normal((2, 3, 8, 7)), rtol=1e-6)


def test_an_in_place_relu_under_no_grad_still_writes_its_input():
    relu_pool = nn.Sequential(nn.ReLU(inplace=True), nn.MaxPool2d(2))
    x = tl.tensor(np.array([[[[-1.0, 2.0], [3.0, -4.0]]]], np.float32))
    with tl.no_grad():
        y = relu_pool(x)
    np.testing.assert_array_equal(x.numpy(), [[[[0, 2], [3, 0]]]])
    np.testing.assert_array_equal(y.numpy(), [[[[3]]]])
