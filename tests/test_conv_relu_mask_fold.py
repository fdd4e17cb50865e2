"""Conv2d(relu=True) then a convolution: the second's backward writes the input gradient already
through the first's ReLU (masked, with the first's bias sums; kernels.conv2d_backward_relu_input,
on the Winograd path in its output pass), the same bits as the passes apart."""
import numba
import numpy as np
import pytest

import kernels
import kernels.conv_cpu as conv_cpu
import kernels.threads as threads
import kernels.winograd as winograd
import tinylesion as tl
from tinylesion import nn, ops
from tinylesion.ops import layers
from tinylesion.testing import gradcheck


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def small_winograd(request, monkeypatch):
    """The Winograd path for small layers, on 1 or 2 threads (where Numba has them)."""
    if request.param > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("one Numba thread")
    monkeypatch.setattr(conv_cpu, "WINOGRAD_MIN_CHANNELS", 1)
    monkeypatch.setattr(conv_cpu, "WINOGRAD_MIN_FILTERS", 1)
    before = threads.get_num_threads()
    threads.set_num_threads(request.param)
    yield request.param
    threads.set_num_threads(before)


def _block(rng, dtype, C=3, F=6, pool=True, bias=True):
    layers_ = [nn.Conv2d(C, F, 3, padding=1, bias=bias), nn.ReLU(),
               nn.Conv2d(F, F, 3, padding=1), nn.ReLU()] + ([nn.MaxPool2d(2)] if pool else [])
    model = nn.Sequential(*layers_)
    if dtype == np.float64:
        model.double()
    for p in model.parameters():
        p.array[...] = (rng.standard_normal(p.shape) * 0.5).astype(dtype)
    return model


def _grads(model, x, fold, monkeypatch):
    monkeypatch.setattr(layers, "FOLD_RELU_MASK", fold)
    model.zero_grad()
    xt = tl.tensor(x, requires_grad=True)
    y = model(xt)
    (y * tl.tensor(np.sin(np.arange(y.numel())).astype(x.dtype).reshape(y.shape))).sum() \
        .backward()
    return [xt.grad.numpy()] + [p.grad.numpy() for p in model.parameters()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,pool,bias,part", [
    ((4, 3, 9, 12), True, True, False), ((4, 3, 18, 25), True, False, False),
    ((3, 3, 20, 17), False, True, True), ((2, 3, 11, 9), True, True, True)])
def test_same_gradients_as_the_passes_apart(small_winograd, monkeypatch, dtype, shape, pool,
                                            bias, part):
    """Blocks of whole images (the sums in the output pass) and of parts of images (part:
    one tile row a block; kernels.channel_sums then), with and without pooling and bias."""
    if part:
        monkeypatch.setattr(winograd, "TILE_BLOCK_BYTES", 1)
        monkeypatch.setattr(winograd, "MIN_COLUMNS", 1)
    rng = np.random.default_rng(0)
    model = _block(rng, dtype, pool=pool, bias=bias)
    x = rng.standard_normal(shape).astype(dtype)
    folded, apart = _grads(model, x, True, monkeypatch), _grads(model, x, False, monkeypatch)
    for a, b in zip(folded, apart):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("pool", [True, False])
def test_no_separate_mask_pass(small_winograd, monkeypatch, pool):
    rng = np.random.default_rng(1)
    model = _block(rng, np.float32, pool=pool)
    x = rng.standard_normal((4, 3, 10, 12)).astype(np.float32)
    calls = []
    real = kernels.relu_backward_channel_sums
    monkeypatch.setattr(kernels, "relu_backward_channel_sums",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    _grads(model, x, True, monkeypatch)
    own = 0 if pool else 1   # the second convolution's own ReLU (no pooling after it)
    assert len(calls) == own
    _grads(model, x, False, monkeypatch)
    assert len(calls) == 2 * own + 1


def test_kernel_equals_conv_backward_then_relu(small_winograd):
    """kernels.conv2d_backward_relu_input against conv2d_backward and
    relu_backward_channel_sums, on the Winograd path and another (NaN in x passes the
    gradient, as kernels.relu's does)."""
    rng = np.random.default_rng(2)
    for dtype in (np.float32, np.float64):
        for kernel, padding in ((3, 1), (5, 2), (1, 0)):
            x = np.maximum(rng.standard_normal((4, 5, 9, 11)), 0).astype(dtype)
            x[1, 2, 3, 4] = np.nan
            W = rng.standard_normal((6, 5, kernel, kernel)).astype(dtype)
            OH, OW = 10 - kernel + 2 * padding, 12 - kernel + 2 * padding
            gy = rng.standard_normal((4, 6, OH, OW)).astype(dtype)
            gx, gW, gb, sums = kernels.conv2d_backward_relu_input(gy, x, W, 1, padding)
            gx0, gW0, gb0 = kernels.conv2d_backward(gy, x, W, 1, padding)
            want, want_sums = kernels.relu_backward_channel_sums(gx0, x)
            for a, b in ((gx, want), (sums, want_sums), (gW, gW0), (gb, gb0)):
                np.testing.assert_array_equal(a, b)
            assert gx[1, 2, 3, 4] == gx0[1, 2, 3, 4] and sums.dtype == np.float64


def test_a_retained_gradient_is_not_masked(small_winograd, monkeypatch):
    """The first convolution's output keeps its own gradient (retain_grad): the second then
    hands it unmasked, as the layers apart do."""
    rng = np.random.default_rng(3)
    x = tl.tensor(rng.standard_normal((2, 3, 8, 9)), requires_grad=True)
    W1 = tl.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    W2 = tl.tensor(rng.standard_normal((4, 4, 3, 3)), requires_grad=True)
    z = ops.Conv2d.apply(x, W1, None, padding=(1, 1), relu=True)
    z.retain_grad()
    y = ops.Conv2d.apply(z, W2, None, padding=(1, 1))
    y.sum().backward()
    want = kernels.conv2d_backward(np.ones(y.shape), z.numpy(), W2.numpy(), 1, 1)[0]
    np.testing.assert_array_equal(z.grad.numpy(), want)
    assert (want[z.numpy() <= 0] != 0).any()


def test_gradient_finite_differences(small_winograd):
    rng = np.random.default_rng(4)
    model = _block(rng, np.float64, pool=True)
    gradcheck(lambda x: model(x), rng.standard_normal((2, 3, 8, 7)), rtol=1e-6)
    model = _block(rng, np.float64, pool=False, bias=False)
    gradcheck(lambda x: model(x), rng.standard_normal((2, 3, 6, 5)), rtol=1e-6)
