"""nn.Sequential runs a Conv2d with a bias and a training BatchNorm2d as one op while it records a
graph (ops.Conv2dBatchNorm): the same outputs, gradients and running statistics as the layers
apart, bit for bit, the bias gradient summed in the batch norm's input-gradient pass; not fused
where that would change anything (eval mode, no graph, no bias, groups, a replaced forward)."""
import numpy as np
import pytest

import kernels
import kernels.conv
import tinylesion as tl
from tinylesion import nn, ops
from tinylesion.testing import gradcheck

from fusion_steps import step as _step, unfused as _unfused


def _model(dtype=np.float32, affine=True, momentum=0.1, track=True, seed=0):
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4, momentum=momentum, affine=affine,
                                                      track_running_stats=track),
        nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3, stride=(2, 1), padding=(1, 0)),
        nn.BatchNorm2d(5, momentum=momentum, affine=affine, track_running_stats=track),
        nn.Flatten())
    if dtype == np.float64:
        model.double()
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.array[...] = rng.standard_normal(p.shape).astype(dtype)
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine, momentum, track", [(True, 0.1, True), (False, None, True),
                                                     (True, 0.3, False)])
def test_same_outputs_gradients_and_statistics_as_the_layers_apart(dtype, affine, momentum,
                                                                   track):
    fused, apart = (_model(dtype, affine, momentum, track) for _ in range(2))
    rng = np.random.default_rng(1)
    for _ in range(2):   # the second step: the running statistics and the batch count
        x = (rng.standard_normal((3, 3, 10, 9)) + 2.0).astype(dtype)
        got, want = _step(fused, fused, x), _step(lambda t: _unfused(apart, t), apart, x)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    assert not track or int(fused[1].num_batches_tracked.array) == 2


def test_one_op_whose_backward_does_not_sum_the_gradient_again(monkeypatch):
    model = _model()
    x = tl.tensor(np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32))
    y = model[:2](x)
    assert type(y._ctx) is ops.Conv2dBatchNorm and y.shape == (2, 4, 8, 8)
    assert type(model[:6](x)._ctx) is ops.Conv2dBatchNorm

    def refuse(*args, **kwargs):
        raise AssertionError("a separate pass ran")

    monkeypatch.setattr(kernels.conv, "channel_sums", refuse)
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(AssertionError, match="separate pass"):
        _unfused(model, x).sum().backward()


def test_only_the_gradients_asked_for():
    conv, bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
    conv.weight.requires_grad = False
    model = nn.Sequential(conv, bn)
    x = tl.tensor(np.random.default_rng(3).standard_normal((2, 3, 6, 6)).astype(np.float32))
    y = model(x)
    assert type(y._ctx) is ops.Conv2dBatchNorm
    (y * y).sum().backward()
    assert conv.weight.grad is None and x.grad is None
    assert conv.bias.grad is not None and bn.weight.grad is not None


def test_gradient_finite_differences():
    rng = np.random.default_rng(4)
    x, W, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2)), \
        rng.standard_normal(4)
    gamma, beta = rng.uniform(0.5, 1.5, 4), rng.standard_normal(4)

    def op(x, W, b, gamma, beta):
        return ops.Conv2dBatchNorm.apply(x, W, b, gamma, beta, stride=(2, 1), padding=(1, 0),
                                         eps=1e-3)

    gradcheck(op, x, W, b, gamma, beta, rtol=1e-6)
    model = _model(np.float64)
    gradcheck(lambda t: model(t), rng.standard_normal((2, 3, 8, 6)), rtol=1e-6)


def _kinds(model, x):
    y = model(x)
    kinds = []
    fn = y._ctx
    while fn is not None and hasattr(fn, "inputs") and fn.inputs:
        kinds.append(type(fn))
        fn = fn.inputs[0]._ctx if fn.inputs[0] is not None else None
    return kinds


def test_not_fused_where_it_would_change_anything():
    rng = np.random.default_rng(5)
    x = tl.tensor(rng.standard_normal((2, 4, 6, 6)).astype(np.float32), requires_grad=True)
    fused = nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4))
    assert _kinds(fused, x) == [ops.Conv2dBatchNorm]
    for model in (nn.Sequential(nn.Conv2d(4, 4, 3, bias=False), nn.BatchNorm2d(4)),
                  nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.BatchNorm2d(4))):
        assert _kinds(model, x) == [ops.BatchNormTrain, ops.Conv2d]
    evaluated = nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)).eval()
    assert ops.Conv2dBatchNorm not in _kinds(evaluated, x)
    assert ops.Conv2d in _kinds(evaluated, x)
    with tl.no_grad():   # no graph: the plain layers (or the inference paths)
        plain = fused(x).numpy()
    np.testing.assert_array_equal(plain, _unfused(fused, x).numpy())
    for name in (0, 1):   # a replaced forward (Grad-CAM's wrapper) runs
        model = nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4))
        seen, inner = [], model[name].forward
        object.__setattr__(model[name], "forward", lambda t: seen.append(1) or inner(t))
        assert _kinds(model, x) == [ops.BatchNormTrain, ops.Conv2d] and seen == [1]


def test_errors_as_the_layers_apart_and_nothing_counted():
    x = tl.tensor(np.ones((1, 3, 3, 3), np.float32), requires_grad=True)
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(ValueError, match=r"more than one value per channel.*\(1, 2, 1, 1\)"):
        model(x)
    with pytest.raises(ValueError, match=r"more than one value per channel.*\(1, 2, 1, 1\)"):
        _unfused(nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2)), x)
    assert int(model[1].num_batches_tracked.array) == 0
    mismatched = nn.Sequential(nn.Conv2d(3, 2, 1), nn.BatchNorm2d(3))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\) expects .* 3 channels"):
        mismatched(x)
