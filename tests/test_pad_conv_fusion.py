"""nn.Sequential folds a ZeroPad2d into the Conv2d after it (the convolution's own padding) while
it records a graph, joined with what follows (batch norm, ReLU, pooling) as before: the same
outputs and gradients as the layers apart, up to float32 rounding of the Winograd tiles' other
offsets; no padded copy; not folded where the pad is not the same on opposite sides, or a
forward is replaced or hooked."""
import numpy as np
import pytest

import tinylesion as tl
from tinylesion import nn, ops
from tinylesion.testing import gradcheck

from fusion_steps import step as _step, unfused as _unfused


def _model(dtype=np.float32, seed=0):
    model = nn.Sequential(
        nn.ZeroPad2d(2), nn.Conv2d(3, 4, 5), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.ZeroPad2d(1), nn.Conv2d(4, 5, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.ZeroPad2d((1, 1, 2, 2)), nn.Conv2d(5, 3, 3, padding=(0, 1)), nn.ReLU(),
        nn.ZeroPad2d(1), nn.Conv2d(3, 2, 3, stride=2),
        nn.ZeroPad2d(3), nn.Conv2d(2, 2, 7), nn.Flatten())
    if dtype == np.float64:
        model.double()
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.array[...] = (0.3 * rng.standard_normal(p.shape)).astype(dtype)
    return model


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-11), (np.float32, 2e-4)])
def test_same_outputs_gradients_and_statistics_as_the_layers_apart(dtype, rtol):
    fused, apart = _model(dtype), _model(dtype)
    rng = np.random.default_rng(1)
    for _ in range(2):
        x = rng.standard_normal((4, 3, 20, 18)).astype(dtype)
        got, want = _step(fused, fused, x), _step(lambda t: _unfused(apart, t), apart, x)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a.dtype == b.dtype and a.shape == b.shape
            scale = np.abs(b).max() + 1e-30
            np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)
    assert int(fused[2].num_batches_tracked.array) == 2


def test_no_pad_op_recorded(monkeypatch):
    model = _model()
    x = tl.tensor(np.random.default_rng(2).standard_normal((2, 3, 20, 18)).astype(np.float32),
                  requires_grad=True)

    def refuse(*args, **kwargs):
        raise AssertionError("a padded copy was made")

    monkeypatch.setattr(ops.Pad2d, "apply", refuse)
    model(x).sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in model.parameters())
    assert type(model[:3](x)._ctx) is ops.Conv2dBatchNorm   # pad, conv, bn: one op
    with pytest.raises(AssertionError, match="padded copy"):
        _unfused(model, x)


def test_gradient_finite_differences():
    model = _model(np.float64)
    rng = np.random.default_rng(4)
    gradcheck(lambda t: model(t), rng.standard_normal((2, 3, 20, 18)), rtol=1e-6)


def test_not_folded_where_it_would_change_anything(monkeypatch):
    calls = []
    original = ops.Pad2d.apply
    monkeypatch.setattr(ops.Pad2d, "apply",
                        lambda *a, **k: calls.append(k["padding"]) or original(*a, **k))
    x = tl.tensor(np.random.default_rng(5).standard_normal((2, 3, 9, 9)).astype(np.float32),
                  requires_grad=True)
    uneven = nn.Sequential(nn.ZeroPad2d((1, 2, 1, 1)), nn.Conv2d(3, 2, 3))
    assert uneven(x).shape == (2, 2, 9, 10) and calls == [(1, 2, 1, 1)]
    same = nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(3, 2, 3, padding="same"))
    assert same(x).shape == (2, 2, 11, 11) and calls[-1] == (1, 1, 1, 1)
    for name in (0, 1):   # a replaced forward (Grad-CAM's wrapper) runs
        model = nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(3, 2, 3))
        seen, inner = [], model[name].forward
        object.__setattr__(model[name], "forward", lambda t: seen.append(1) or inner(t))
        n = len(calls)
        assert model(x).shape == (2, 2, 9, 9) and seen == [1] and len(calls) == n + 1
    for name in (0, 1):   # a forward hook sees the layer's own output
        model = nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(3, 2, 3))
        shapes = []
        model[name].register_forward_hook(lambda m, args, out: shapes.append(out.shape))
        n = len(calls)
        assert model(x).shape == (2, 2, 9, 9) and len(calls) == n + 1
        assert shapes == [(2, 3, 11, 11) if name == 0 else (2, 2, 9, 9)]


def test_errors_as_the_layers_apart():
    x = tl.tensor(np.ones((1, 3, 4, 4), np.float32))
    for model in (nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(2, 2, 3)),
                  nn.Sequential(nn.ZeroPad2d(0), nn.Conv2d(3, 2, 7))):
        with pytest.raises(Exception) as fused:
            model(x)
        with pytest.raises(Exception) as apart:
            _unfused(model, x)
        assert type(fused.value) is type(apart.value) and str(fused.value) == str(apart.value)
