"""The loss modules, the losses and layers beyond the first ones: PyTorch parity through the
stored fixtures, float64 gradient checks, and the errors for bad input."""
import warnings

import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn as nn
import tinylesion.nn.functional as F
from tinylesion.testing import gradcheck

import torch_reference as reference

OWN_OPTIONS = ("target_shape", "dtype")  # the cases' options that are not arguments
TOLERANCE = {np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12),
             np.dtype(np.float32): dict(rtol=2e-6, atol=1e-6)}


def stored(key):
    return lambda name: reference.load(f"{key}/{name}")


def call(name, *args, **options):
    """tinylesion's functional `name`, or its module of that (capitalised) name, on args."""
    kwargs = {k: v for k, v in options.items() if k not in OWN_OPTIONS}
    if name[0].isupper():
        return getattr(nn, name)(**kwargs)(*args)
    return getattr(F, name)(*args, **kwargs)


# ---- PyTorch parity ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", range(len(reference.LOSS_CASES)),
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(reference.LOSS_CASES)])
def test_losses_match_torch(case):
    name, _, options = reference.LOSS_CASES[case]
    load = stored(f"losses/case{case}")
    x = tl.Tensor(load("x"), requires_grad=True)
    target = load("target")
    grad_target = name in ("mse_loss", "l1_loss")
    if grad_target:
        target = tl.Tensor(target, requires_grad=True)
    if "weight" in options:
        options = dict(options, weight=load("weight"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a target of another shape is warned about
        loss = call(name, x, target, **options)
    loss.backward(load("gy"))
    tolerance = TOLERANCE[x.dtype]
    assert loss.dtype == x.dtype
    np.testing.assert_allclose(loss.numpy(), load("y"), **tolerance)
    np.testing.assert_allclose(x.grad.numpy(), load("gx"), **tolerance)
    if grad_target:
        np.testing.assert_allclose(target.grad.numpy(), load("gtarget"), **tolerance)


@pytest.mark.parametrize("case", range(len(reference.LAYER_CASES)),
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(reference.LAYER_CASES)])
def test_layers_match_torch(case):
    name, _, options = reference.LAYER_CASES[case]
    load = stored(f"layers/case{case}")
    x = tl.Tensor(load("x"), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LogSoftmax() warns of its implicit dim
        y = call(name, x, **options)
    y.backward(load("gy"))
    tolerance = TOLERANCE[x.dtype]
    assert y.dtype == x.dtype
    np.testing.assert_allclose(y.numpy(), load("y"), **tolerance)
    np.testing.assert_allclose(x.grad.numpy(), load("gx"), **tolerance)


@pytest.mark.parametrize("num_classes", [-1, 6])
def test_one_hot_matches_torch(num_classes):
    indices = reference.load("one_hot/indices")
    out = F.one_hot(tl.Tensor(indices), num_classes)
    expected = reference.load(f"one_hot/{num_classes}")
    assert out.dtype == np.int64 and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("case", range(len(reference.LOSS_MODULE_CASES)))
def test_loss_modules_state_dict_matches_torch(case):
    name, options = reference.LOSS_MODULE_CASES[case]
    kwargs = {k: np.ones(v, np.float32) if isinstance(v, tuple) else v
              for k, v in options.items()}
    module = getattr(nn, name)(**kwargs)
    expected = [str(s) for s in reference.load(f"loss_modules/case{case}/layout") if str(s)]
    assert reference.state_layout(module.state_dict()) == expected
    assert module.parameters() == []


# ---- the loss modules --------------------------------------------------------------------------
def test_loss_modules_equal_the_functionals(rng):
    logits = tl.Tensor(rng.standard_normal((6, 4)))
    target = np.array([0, 3, -1, 1, 2, 3])
    w = rng.uniform(0.5, 2.0, 4)
    same = lambda a, b: np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-14)
    same(nn.CrossEntropyLoss(w, ignore_index=-1, reduction="sum", label_smoothing=0.1)(
        logits, target), F.cross_entropy(logits, target, weight=w, reduction="sum",
                                         label_smoothing=0.1, ignore_index=-1))
    log_p = F.log_softmax(logits, dim=1)
    same(nn.NLLLoss(w, ignore_index=-1)(log_p, target),
         F.nll_loss(log_p, target, w, ignore_index=-1))
    # nll_loss of log_softmax is cross_entropy
    same(F.nll_loss(log_p, target, w, ignore_index=-1),
         F.cross_entropy(logits, target, weight=w, ignore_index=-1))
    y = rng.uniform(0, 1, (6, 4))
    pw = rng.uniform(0.5, 2.0, 4)
    same(nn.BCEWithLogitsLoss(w, reduction="none", pos_weight=pw)(logits, y),
         F.binary_cross_entropy_with_logits(logits, y, w, pos_weight=pw, reduction="none"))
    same(nn.BCELoss(w)(logits.sigmoid(), y), F.binary_cross_entropy(logits.sigmoid(), y, w))
    # without pos_weight, BCE on probabilities is BCE on logits
    np.testing.assert_allclose(F.binary_cross_entropy(logits.sigmoid(), y, w).item(),
                               F.binary_cross_entropy_with_logits(logits, y, w).item(),
                               rtol=1e-12)
    same(nn.MSELoss(reduction="sum")(logits, y), ((logits - tl.Tensor(y)) ** 2).sum())
    same(nn.L1Loss()(logits, y), (logits - tl.Tensor(y)).abs().mean())


def test_loss_module_weights_are_buffers_that_move_and_convert():
    criterion = nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 3.0], np.float32))
    assert isinstance(criterion.weight, tl.Tensor)
    assert list(criterion.state_dict()) == ["weight"]
    assert criterion.to(np.float64).weight.dtype == np.float64
    assert criterion.to("cpu").weight.device == tl.Tensor(0.0).device
    criterion.load_state_dict({"weight": np.array([3.0, 2.0, 1.0])})
    np.testing.assert_array_equal(criterion.weight.numpy(), [3.0, 2.0, 1.0])
    # a Tensor weight is kept as it is given, and a float32 loss of float32 logits results
    w = tl.Tensor(np.array([1.0, 2.0], np.float32))
    bce = nn.BCEWithLogitsLoss(pos_weight=w)
    assert bce.pos_weight is w and bce.weight is None
    loss = bce(tl.Tensor(np.zeros((3, 2), np.float32)), np.ones((3, 2), np.float32))
    assert loss.dtype == np.float32


def test_deprecated_size_average_and_reduce_give_the_reduction(rng):
    x = tl.Tensor(rng.standard_normal((3, 2)))
    y = rng.standard_normal((3, 2))
    for (size_average, reduce), reduction in [((False, None), "sum"), ((None, False), "none"),
                                              ((True, True), "mean")]:
        with pytest.warns(UserWarning, match=f"reduction='{reduction}'"):
            module = nn.MSELoss(size_average, reduce)
        assert module.reduction == reduction
        with pytest.warns(UserWarning):
            loss = F.mse_loss(x, y, size_average, reduce)
        np.testing.assert_allclose(loss.numpy(), F.mse_loss(x, y, reduction=reduction).numpy())


def test_losses_take_pytorchs_positional_order(rng):
    x = tl.Tensor(rng.standard_normal((4, 3)))
    t, w = np.array([0, 2, 1, 2]), rng.uniform(0.5, 2.0, 3)
    same = lambda a, b: np.testing.assert_array_equal(a.numpy(), b.numpy())
    same(F.cross_entropy(x, t, w, None, 2, None, "sum", 0.1),
         F.cross_entropy(x, t, weight=w, ignore_index=2, reduction="sum", label_smoothing=0.1))
    same(F.nll_loss(x, t, w, None, 2, None, "none"),
         F.nll_loss(x, t, weight=w, ignore_index=2, reduction="none"))
    y = rng.uniform(0, 1, (4, 3))
    same(F.binary_cross_entropy_with_logits(x, y, w, None, None, "sum", w),
         F.binary_cross_entropy_with_logits(x, y, weight=w, reduction="sum", pos_weight=w))
    same(nn.CrossEntropyLoss(w, None, 2, None, "sum", 0.1)(x, t),
         F.cross_entropy(x, t, weight=w, ignore_index=2, reduction="sum", label_smoothing=0.1))
    same(nn.BCEWithLogitsLoss(w, None, None, "none", w)(x, y),
         F.binary_cross_entropy_with_logits(x, y, weight=w, reduction="none", pos_weight=w))


def test_losses_refuse_a_bad_reduction():
    x = tl.Tensor(np.zeros((2, 3)))
    for make in (nn.MSELoss, nn.L1Loss, nn.CrossEntropyLoss, nn.NLLLoss, nn.BCELoss,
                 nn.BCEWithLogitsLoss):
        with pytest.raises(ValueError, match="reduction must be one of"):
            make(reduction="avg")
    for loss in (F.nll_loss, F.cross_entropy):
        with pytest.raises(ValueError, match="reduction must be one of"):
            loss(x, np.array([0, 1]), reduction="avg")


# ---- gradient checks (float64 central differences) ---------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_gradcheck(reduction, weighted, device, rng):
    target = np.array([0, -100, 3, 1, 2, 3])
    weight = rng.uniform(0.2, 3.0, 4) if weighted else None
    gradcheck(lambda x: F.nll_loss(x, target, weight, reduction=reduction),
              rng.standard_normal((6, 4)), device=device)
    gradcheck(lambda x: F.nll_loss(x, np.array([[0, 2], [1, 1]]), None if weight is None else weight[:3],
                                   reduction=reduction), rng.standard_normal((2, 3, 2)))


def test_nll_loss_of_one_prediction_and_all_ignored(rng):
    gradcheck(lambda x: F.nll_loss(x, np.array(2)), rng.standard_normal(4))
    x = tl.Tensor(rng.standard_normal((2, 3)))
    with np.errstate(invalid="ignore"):
        assert np.isnan(F.nll_loss(x, np.array([-100, -100])).item())  # 0 / 0, as PyTorch
    assert F.nll_loss(x, np.array([-100, -100]), reduction="sum").item() == 0.0


@pytest.mark.parametrize("loss", ["nll_loss", "cross_entropy", "smoothed"])
@pytest.mark.parametrize("weight", [None, np.array([0.5, 1.0, 2.0])])
def test_all_ignored_rows_have_zero_gradient(loss, weight):
    # the mean is 0 / 0 = NaN, but an ignored row's gradient is 0, as PyTorch's
    x = tl.Tensor(np.array([[0.1, -0.3, 0.7], [1.0, 0.2, -0.5]]), requires_grad=True)
    target = np.array([1, 1])
    options = dict(label_smoothing=0.2) if loss == "smoothed" else {}
    function = F.nll_loss if loss == "nll_loss" else F.cross_entropy
    with np.errstate(invalid="ignore", divide="ignore"):
        out = function(x, target, weight, ignore_index=1, **options)
        out.backward()
    assert np.isnan(out.item())
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3)))


def test_cross_entropy_refuses_ignore_index_with_probabilities():
    x = tl.Tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="ignore_index=0 is not supported for class prob"):
        F.cross_entropy(x, np.full((2, 3), 1 / 3, np.float32), ignore_index=0)
    assert F.cross_entropy(x, np.full((2, 3), 1 / 3, np.float32), ignore_index=-1).item() > 0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight_shape", [None, (3,), (4, 1)])
def test_binary_cross_entropy_gradcheck(reduction, weight_shape, device, rng):
    y = rng.uniform(0, 1, (4, 3))
    weight = None if weight_shape is None else rng.uniform(0.5, 2.0, weight_shape)
    gradcheck(lambda p: F.binary_cross_entropy(p, y, weight, reduction=reduction),
              rng.uniform(0.05, 0.95, (4, 3)), device=device)


def test_binary_cross_entropy_clamps_the_logs():
    p = tl.Tensor(np.array([0.0, 1.0, 0.0, 1.0], np.float32), requires_grad=True)
    loss = F.binary_cross_entropy(p, np.array([1.0, 0.0, 0.0, 1.0], np.float32),
                                  reduction="none")
    np.testing.assert_array_equal(loss.numpy(), [100.0, 100.0, 0.0, 0.0])
    loss.sum().backward()
    assert np.all(np.isfinite(p.grad.numpy()))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (3, 1)), ((3, 1), (1, 4))])
def test_regression_losses_gradcheck(name, reduction, shapes, device, rng):
    fn = getattr(F, name)
    x, y = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the broadcasting warning
        gradcheck(lambda a, b: fn(a, b, reduction=reduction), x, y, device=device)
        if shapes[0] == shapes[1]:
            w = rng.uniform(0.5, 2.0, shapes[0])
            gradcheck(lambda a, b: fn(a, b, reduction=reduction, weight=w), x, y)


def test_regression_losses_warn_of_broadcasting(rng):
    with pytest.warns(UserWarning, match="different to the input size"):
        F.mse_loss(tl.Tensor(np.zeros((3, 1))), np.zeros(3))
    with pytest.raises(ValueError, match="do not broadcast"):
        F.l1_loss(tl.Tensor(np.zeros((3, 2))), np.zeros(3))
    with pytest.raises(ValueError, match="weight of shape"):
        F.mse_loss(tl.Tensor(np.zeros((3, 2))), np.zeros((3, 2)), weight=np.ones(2))


@pytest.mark.parametrize("slope", [0.01, 0.3, -0.5])
def test_leaky_relu_gradcheck(slope, device, rng):
    x = rng.uniform(0.1, 2.0, (4, 5)) * rng.choice([-1, 1], (4, 5))
    gradcheck(lambda t: F.leaky_relu(t, slope), x, device=device)
    gradcheck(nn.LeakyReLU(slope), x)


@pytest.mark.parametrize("padding", [(1, 2), (2, 0, 1, 3), (-1, 2, 0, -2), (1, 1, 0, 2, 1, 0)])
def test_pad_gradcheck(padding, device, rng):
    gradcheck(lambda t: F.pad(t, padding, value=0.5), rng.standard_normal((2, 3, 4, 5)),
              device=device)


def test_pad_values_and_errors():
    x = tl.Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(F.pad(x, (1, -1), value=9).numpy(),
                                  [[9, 0, 1], [9, 3, 4]])
    np.testing.assert_array_equal(F.pad(x, (0, 0, 1, 0)).numpy()[0], [0, 0, 0])
    np.testing.assert_array_equal(F.pad(x, (1, 1), mode="reflect").numpy(),
                                  [[1, 0, 1, 2, 1], [4, 3, 4, 5, 4]])
    with pytest.raises(NotImplementedError, match="mode 'reflect'"):
        F.pad(x, (1, 1, 1, 1), mode="reflect")
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad(x, (1, 1), mode="mirror")
    with pytest.raises(ValueError, match="even number"):
        F.pad(x, (1, 1, 1))
    with pytest.raises(ValueError, match="even number"):
        F.pad(x, (1,) * 6)
    with pytest.raises(ValueError, match="negative size"):
        F.pad(x, (-2, -2))


@pytest.mark.parametrize("shape, kernel, stride, padding", [
    ((2, 3, 7, 8), 3, 2, 1), ((1, 2, 6, 9), (2, 3), (1, 2), (1, 0)), ((2, 5, 5), 2, None, 0),
    ((1, 1, 4, 4), 4, 1, 2), ((1, 2, 5, 6), (3, 1), (1, 3), (1, 0))])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_gradcheck(shape, kernel, stride, padding, count_include_pad, device, rng):
    gradcheck(lambda t: F.avg_pool2d(t, kernel, stride, padding,
                                     count_include_pad=count_include_pad),
              rng.standard_normal(shape), device=device)


def test_avg_pool2d_divisor_override_and_errors(rng):
    x = rng.standard_normal((1, 1, 4, 4))
    gradcheck(lambda t: F.avg_pool2d(t, 3, 1, 1, divisor_override=2), x)
    np.testing.assert_allclose(F.avg_pool2d(tl.Tensor(x), 2, divisor_override=1).numpy(),
                               F.avg_pool2d(tl.Tensor(x), 2).numpy() * 4, rtol=1e-14)
    assert F.avg_pool2d(tl.Tensor(x), 3, 2, ceil_mode=True).shape == (1, 1, 2, 2)
    assert nn.AvgPool2d(3, 2, ceil_mode=True)(tl.Tensor(x)).shape == (1, 1, 2, 2)
    with pytest.raises(ValueError, match="at most half"):
        F.avg_pool2d(tl.Tensor(x), 2, padding=2)
    with pytest.raises(ValueError, match="smaller than the 5x5 window"):
        F.avg_pool2d(tl.Tensor(x), 5)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.avg_pool2d(tl.Tensor(np.zeros((4, 4))), 2)
    with pytest.raises(ValueError, match="divisor_override"):
        F.avg_pool2d(tl.Tensor(x), 2, divisor_override=0)


@pytest.mark.parametrize("shape, output_size", [
    ((2, 3, 7, 9), (3, 4)), ((2, 3, 7, 9), 1), ((1, 2, 6, 4), (3, 2)), ((2, 5, 5), 7),
    ((1, 1, 5, 8), (None, 3)), ((1, 2, 3, 10), (2, 4))])
def test_adaptive_avg_pool2d_gradcheck(shape, output_size, device, rng):
    gradcheck(lambda t: F.adaptive_avg_pool2d(t, output_size), rng.standard_normal(shape),
              device=device)


def test_adaptive_avg_pool2d_bins_and_global_pooling(rng):
    x = rng.standard_normal((2, 3, 5, 7))
    y = F.adaptive_avg_pool2d(tl.Tensor(x), (2, 3)).numpy()
    # PyTorch's bins of 5 rows into 2: [0, 3) and [2, 5); of 7 columns into 3: [0, 3), [2, 5),
    # [4, 7)
    for i, (r0, r1) in enumerate([(0, 3), (2, 5)]):
        for j, (c0, c1) in enumerate([(0, 3), (2, 5), (4, 7)]):
            np.testing.assert_allclose(y[..., i, j], x[..., r0:r1, c0:c1].mean(axis=(-2, -1)),
                                       rtol=1e-12)
    for size in (1, (1, 1)):
        np.testing.assert_allclose(nn.AdaptiveAvgPool2d(size)(tl.Tensor(x)).numpy(),
                                   x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)


def test_log_softmax_module_picks_pytorchs_implicit_dim(rng):
    x = tl.Tensor(rng.standard_normal((2, 3, 4)))
    with pytest.warns(UserWarning, match="Implicit dimension"):
        y = nn.LogSoftmax()(x)
    np.testing.assert_allclose(np.exp(y.numpy()).sum(axis=0), 1.0, rtol=1e-12)
    gradcheck(nn.LogSoftmax(dim=1), rng.standard_normal((2, 3, 4)))


# ---- dropout2d ---------------------------------------------------------------------------------
def test_dropout2d_zeroes_whole_channels_and_scales_the_others():
    tl.manual_seed(0)
    x = tl.Tensor(np.ones((64, 16, 3, 2)), requires_grad=True)
    layer = nn.Dropout2d(0.25)
    y = layer(x)
    values = y.numpy().reshape(64, 16, -1)
    # each channel is all zeros or all 1/(1 − p)
    assert np.all(values.min(axis=2) == values.max(axis=2))
    assert set(np.unique(values)) <= {0.0, 1 / 0.75}
    assert abs((values[..., 0] == 0).mean() - 0.25) < 0.05
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())  # the gradient is the mask
    layer.eval()
    assert layer(x) is x
    assert F.dropout2d(x, 1.0).numpy().max() == 0.0 and F.dropout2d(x, 0.0) is x


def test_dropout2d_warnings_and_errors():
    x = tl.Tensor(np.ones((2, 3, 4)))
    with pytest.warns(UserWarning, match="3D input"):
        y = F.dropout2d(x, 0.5)
    assert np.all(y.numpy().min(axis=2) == y.numpy().max(axis=2))
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout2d(1.5)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.dropout2d(tl.Tensor(np.ones(3)))


# ---- bad input ---------------------------------------------------------------------------------
def test_nll_loss_bad_targets():
    x = tl.Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="nll_loss: target holds class 4, outside 0..3"):
        F.nll_loss(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="integer class indices"):
        F.nll_loss(x, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(4,\)"):
        F.nll_loss(x, np.array([0, 1, 1]), weight=np.ones(3))


def test_binary_cross_entropy_bad_input():
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(tl.Tensor(np.array([0.5, 1.5])), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(tl.Tensor(np.array([0.5, np.nan])), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="target shape"):
        F.binary_cross_entropy(tl.Tensor(np.array([0.5, 0.5])), np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="does not broadcast"):
        F.binary_cross_entropy(tl.Tensor(np.full((2, 3), 0.5)), np.ones((2, 3)),
                               weight=np.ones(2))


def test_one_hot_bad_input():
    with pytest.raises(TypeError, match="integer class indices"):
        F.one_hot(tl.Tensor(np.array([0.0, 1.0])))
    with pytest.raises(ValueError, match="non-negative"):
        F.one_hot(np.array([0, -1]), 3)
    with pytest.raises(ValueError, match="class value 3 is not smaller than num_classes=3"):
        F.one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="empty"):
        F.one_hot(np.zeros(0, np.int64))


@pytest.mark.parametrize("size", [None, 0, 1.5, (2, 2, 2), (0, 1), (2, 1.5)])
def test_adaptive_avg_pool2d_refuses_bad_output_size(size):
    # None is only an entry of a pair (it keeps that axis), as in PyTorch
    with pytest.raises(ValueError, match="output_size must"):
        F.adaptive_avg_pool2d(tl.Tensor(np.zeros((1, 1, 4, 4), np.float32)), size)


@pytest.mark.parametrize("kernel, override", [(2, None), ((3, 2), None), (2, 3)])
def test_avg_pool_of_tiling_windows_matches_the_window_sum_and_its_gradient(kernel, override):
    # windows that tile the image (stride = kernel, no padding) take the reshape path; rows
    # and columns past the last whole window are left out, as in PyTorch
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 6))
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    y = F.avg_pool2d(tl.Tensor(x), kernel, divisor_override=override).numpy()
    OH, OW = 7 // kh, 6 // kw
    want = np.empty((2, 3, OH, OW))
    for i in range(OH):
        for j in range(OW):
            want[..., i, j] = x[..., i * kh:(i + 1) * kh, j * kw:(j + 1) * kw].sum(axis=(-2, -1))
    np.testing.assert_allclose(y, want / (override or kh * kw), rtol=1e-12)
    gradcheck(lambda a: F.avg_pool2d(a, kernel, divisor_override=override), x)
