"""Float64 central-difference gradient checks for every differentiable op."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinylesion as tl
import tinylesion.nn.functional as F
from tinylesion.testing import gradcheck

SETTINGS = settings(max_examples=15, deadline=None)
small = st.integers(1, 4)


def randn(rng, *shape):
    return rng.standard_normal(shape)


# ---- element-wise and broadcasting ------------------------------------------------------
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a ** b,
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)),
                                    ((2, 1, 4), (3, 1)), ((), (2, 3))])
def test_binary_ops_broadcast(name, shapes, device, rng):
    a = rng.uniform(0.5, 2.0, shapes[0])
    b = rng.uniform(0.5, 2.0, shapes[1])
    gradcheck(BINARY[name], a, b, device=device)


@pytest.mark.parametrize("fn", [
    lambda x: -x, lambda x: x.exp(), lambda x: x.log(), lambda x: x.sqrt(),
    lambda x: x ** 3, lambda x: x ** -0.5, lambda x: 2.0 / x, lambda x: 3.0 - x,
    lambda x: x.relu(), lambda x: x.sigmoid(), lambda x: x.tanh(), lambda x: x.abs(),
    lambda x: 2 ** x,
], ids=["neg", "exp", "log", "sqrt", "cube", "rsqrt", "rdiv", "rsub", "relu", "sigmoid",
        "tanh", "abs", "rpow"])
def test_unary_ops(fn, device, rng, request):
    # both signs, except for the ops defined on positive inputs only (tests/test_op_signs.py
    # checks every sign region of every op)
    positive_only = any(f"-{name}]" in request.node.name for name in ("log", "sqrt", "rsqrt"))
    x = rng.uniform(0.3, 2.0, (3, 5)) * rng.choice([1] if positive_only else [-1, 1], (3, 5))
    gradcheck(fn, x, device=device)


def test_relu_sigmoid_negative_inputs(rng):
    x = rng.uniform(0.1, 2.0, (4, 4)) * rng.choice([-1, 1], (4, 4))
    gradcheck(F.relu, x)
    gradcheck(F.sigmoid, x * 5)


@given(n=small, k=small, m=small, batch=st.sampled_from([(), (2,), (2, 1)]))
@SETTINGS
def test_matmul(n, k, m, batch):
    rng = np.random.default_rng(n * 100 + k * 10 + m)
    gradcheck(lambda a, b: a @ b, rng.standard_normal(batch + (n, k)),
              rng.standard_normal((k, m)))


def test_matmul_vectors(rng):
    gradcheck(lambda a, b: a @ b, randn(rng, 4), randn(rng, 4, 3))
    gradcheck(lambda a, b: a @ b, randn(rng, 2, 4), randn(rng, 4))
    gradcheck(lambda a, b: a @ b, randn(rng, 4), randn(rng, 4))        # a 0-d dot product
    gradcheck(lambda a, b: a @ b, randn(rng, 4), randn(rng, 2, 4, 3))
    gradcheck(lambda a, b: a @ b, randn(rng, 2, 3, 4), randn(rng, 4))


# ---- reductions and shapes --------------------------------------------------------------
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("op", ["sum", "mean", "max"])
def test_reductions(op, axis, keepdims, device, rng):
    x = randn(rng, 3, 4, 5)
    gradcheck(lambda t: getattr(t, op)(axis=axis, keepdims=keepdims), x, device=device)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_dim_gradient(dim, keepdim, rng):
    gradcheck(lambda t: t.max(dim, keepdim).values, randn(rng, 3, 4, 2))
    gradcheck(lambda t: t.max(dim=dim, keepdim=keepdim)[0] * 2, randn(rng, 3, 4))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_max_dim_matches_torch_with_ties_and_nan(dim):
    import torch_reference as reference
    key = f"tensor_ops/max_dim{dim}"
    x = tl.Tensor(reference.load("tensor_ops/max_x"), requires_grad=True)
    values, indices = x.max(dim)
    values.backward(reference.load(f"{key}/gy"))
    np.testing.assert_array_equal(indices.numpy(), reference.load(f"{key}/indices"))
    np.testing.assert_allclose(values.numpy(), reference.load(f"{key}/values"))
    np.testing.assert_allclose(x.grad.numpy(), reference.load(f"{key}/gx"))


@pytest.mark.parametrize("name, fn", [("max", lambda t: t.max()),
                                      ("amax1", lambda t: t.amax(1)),
                                      ("amax01", lambda t: t.max(axis=(0, 1)))])
def test_max_ties_share_gradient_as_torch(name, fn):
    import torch_reference as reference
    x = tl.Tensor(reference.load("tensor_ops/ties_x"), requires_grad=True)
    fn(x).backward(reference.load(f"tensor_ops/{name}/gy"))
    np.testing.assert_allclose(x.grad.numpy(), reference.load(f"tensor_ops/{name}/gx"))


def test_max_of_nan_gives_its_gradient_to_the_nan():
    x = tl.Tensor(np.array([1.0, np.nan, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 0])


def test_pow_at_zero_and_negative_bases_as_torch():
    import torch_reference as reference
    base = tl.Tensor(reference.load("tensor_ops/pow/base"), requires_grad=True)
    exponent = tl.Tensor(reference.load("tensor_ops/pow/exponent"), requires_grad=True)
    y = base ** exponent
    y.backward(np.ones(y.shape))
    for name, ours in (("y", y), ("gbase", base.grad), ("gexponent", exponent.grad)):
        np.testing.assert_allclose(ours.numpy(), reference.load(f"tensor_ops/pow/{name}"),
                                   rtol=1e-12, err_msg=name)
    x = tl.Tensor(np.array([0.0, 2.0]), requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])   # not 0·0⁻¹ = NaN


def test_max_ties_share_gradient():
    x = tl.Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 0.5, 0.5, 0])


def test_reshape_transpose_flatten_getitem(device, rng):
    x = randn(rng, 2, 3, 4)
    gradcheck(lambda t: t.reshape(4, -1) * 2, x, device=device)
    gradcheck(lambda t: t.transpose(2, 0, 1), x, device=device)
    gradcheck(lambda t: t.transpose(0, 2), x, device=device)
    gradcheck(lambda t: t.flatten(0, 1), x, device=device)
    gradcheck(lambda t: t.transpose(), x, device=device)
    gradcheck(lambda t: t.flatten(1), x, device=device)
    gradcheck(lambda t: t[1, :, 1:3], x, device=device)
    gradcheck(lambda t: t[np.array([0, 1, 1])], x, device=device)  # repeated index accumulates


@given(left=st.integers(0, 3), right=st.integers(0, 3), top=st.integers(0, 3),
       bottom=st.integers(0, 3))
@SETTINGS
def test_zero_pad(left, right, top, bottom):
    x = np.random.default_rng(0).standard_normal((2, 2, 3, 4))
    gradcheck(lambda t: F.pad2d(t, (left, right, top, bottom)), x)
    y = F.pad2d(tl.Tensor(x), (left, right, top, bottom))
    assert y.shape == (2, 2, 3 + top + bottom, 4 + left + right)


# ---- softmax and losses -----------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_log_softmax(axis, device, rng):
    x = randn(rng, 3, 5) * 3
    gradcheck(lambda t: F.softmax(t, axis), x, device=device)
    gradcheck(lambda t: F.log_softmax(t, axis), x, device=device)


def test_softmax_stable_for_huge_logits():
    x = tl.Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=np.float32),
                  requires_grad=True)
    p = F.softmax(x)
    lp = F.log_softmax(x)
    assert np.all(np.isfinite(p.numpy())) and np.all(np.isfinite(lp.numpy()))
    np.testing.assert_allclose(p.numpy()[0], [1, 0, 0])
    np.testing.assert_allclose(p.numpy()[1], [1 / 3] * 3, rtol=1e-6)
    loss = F.cross_entropy(x, np.array([1, 0]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_allclose(loss.item(), (2e4 + np.log(3)) / 2, rtol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(reduction, weighted, smoothing, device, rng):
    logits = randn(rng, 6, 4) * 2
    target = np.array([0, 3, 1, 1, 2, 3])
    weight = rng.uniform(0.2, 3.0, 4) if weighted else None
    gradcheck(lambda x: F.cross_entropy(x, target, weight=weight, reduction=reduction,
                                        label_smoothing=smoothing), logits, device=device)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_ignore_index(reduction, weighted, smoothing, rng):
    logits = randn(rng, 6, 4) * 2
    target = np.array([0, -100, 1, 3, -100, 2])
    weight = rng.uniform(0.2, 3.0, 4) if weighted else None
    gradcheck(lambda x: F.cross_entropy(x, target, weight=weight, reduction=reduction,
                                        label_smoothing=smoothing), logits)
    kept = F.cross_entropy(tl.Tensor(logits[target >= 0]), target[target >= 0], weight=weight,
                           reduction=reduction, label_smoothing=smoothing).numpy()
    loss = F.cross_entropy(tl.Tensor(logits), target, weight=weight, reduction=reduction,
                           label_smoothing=smoothing).numpy()
    np.testing.assert_allclose(loss[target >= 0] if reduction == "none" else loss, kept,
                               rtol=1e-12)


@pytest.mark.parametrize("case", range(8))
def test_cross_entropy_shapes_and_probabilities_match_torch(case):
    """(N, C) with ignored targets, (C,), (N, C, d1, d2), class probabilities; stored by
    bench/torch_fixtures.py (CE_CASES)."""
    import torch_reference as reference
    key = f"cross_entropy/case{case}"
    load = lambda name: reference.load(f"{key}/{name}")
    weight = load("weight") if reference.has(f"{key}/weight") else None
    x = tl.Tensor(load("x"), requires_grad=True)
    loss = F.cross_entropy(x, load("target"), weight=weight, reduction=str(load("reduction")),
                           label_smoothing=float(load("label_smoothing")),
                           ignore_index=int(load("ignore_index")))
    loss.backward(load("gy"))
    np.testing.assert_allclose(loss.numpy(), load("loss"), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), load("gx"), rtol=1e-10, atol=1e-12)


def test_cross_entropy_other_shapes_gradcheck(rng):
    target = np.array([[0, 2], [-100, 1]])
    gradcheck(lambda x: F.cross_entropy(x, target), randn(rng, 2, 3, 2))
    gradcheck(lambda x: F.cross_entropy(x, np.array(1)), randn(rng, 4))
    probs = rng.dirichlet(np.ones(3), 4)
    gradcheck(lambda x: F.cross_entropy(x, probs, weight=np.array([1.0, 2.0, 0.5]),
                                        label_smoothing=0.1), randn(rng, 4, 3))


def test_cross_entropy_bad_targets_name_the_class():
    x = tl.Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="class 4, outside 0..3"):
        F.cross_entropy(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="class -1"):
        F.cross_entropy(x, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="integer class indices"):
        F.cross_entropy(x, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        F.cross_entropy(x, np.array([0, 1]))


def test_cross_entropy_weighted_mean_divides_by_target_weights():
    logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
    weight = np.array([2.0, 1.0, 1.0])
    loss = F.cross_entropy(tl.Tensor(logits), np.array([0, 1]), weight=weight)
    expected = (2.0 * -np.log(0.5) + 1.0 * -np.log(0.8)) / 3.0
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_bce_with_logits(reduction, pos_weight, device, rng):
    x = randn(rng, 7) * 4
    y = rng.integers(0, 2, 7).astype(np.float64)
    pw = None if pos_weight is None else np.array(pos_weight)
    gradcheck(lambda t: F.binary_cross_entropy_with_logits(t, y, pos_weight=pw,
                                                           reduction=reduction), x,
              device=device)


def test_bce_with_logits_stable_and_exact():
    x = tl.Tensor(np.array([1e4, -1e4, 0.0], dtype=np.float32))
    y = np.array([1.0, 1.0, 0.0], dtype=np.float32)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none").numpy()
    np.testing.assert_allclose(loss, [0.0, 1e4, np.log(2)], rtol=1e-6)


# ---- layers -----------------------------------------------------------------------------
def test_linear(device, rng):
    gradcheck(F.linear, randn(rng, 5, 3), randn(rng, 4, 3), randn(rng, 4), device=device)
    gradcheck(F.linear, randn(rng, 2, 5, 3), randn(rng, 4, 3), None, device=device)


@given(N=st.integers(1, 2), C=st.integers(1, 3), F_=st.integers(1, 3),
       H=st.integers(3, 8), W=st.integers(3, 8), KH=st.integers(1, 3), KW=st.integers(1, 3),
       SH=st.integers(1, 3), SW=st.integers(1, 3), PH=st.integers(0, 2), PW=st.integers(0, 2),
       bias=st.booleans())
@settings(max_examples=20, deadline=None)
def test_conv2d(N, C, F_, H, W, KH, KW, SH, SW, PH, PW, bias):
    rng = np.random.default_rng(H * W + KH)
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((F_, C, KH, KW))
    b = rng.standard_normal(F_) if bias else None
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=(SH, SW), padding=(PH, PW)), x, w, b)


@pytest.mark.parametrize("kernel,stride,padding", [(7, 1, 3), (5, 1, 2), (3, 3, 0),
                                                    (3, 1, "same"), (2, 1, "same")])
def test_conv2d_seed_shapes(kernel, stride, padding, device, rng):
    x, w, b = randn(rng, 1, 2, 9, 8), randn(rng, 2, 2, kernel, kernel), randn(rng, 2)
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding), x, w, b,
              device=device)
    if padding == "same":
        assert F.conv2d(tl.Tensor(x), tl.Tensor(w), padding="same").shape == (1, 2, 9, 8)


def test_conv2d_first_layer_skips_input_grad(rng):
    x = tl.Tensor(randn(rng, 1, 2, 5, 5))
    w = tl.Tensor(randn(rng, 3, 2, 3, 3), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad is not None


@given(H=st.integers(2, 9), W=st.integers(2, 9), k=st.sampled_from([(2, 2), (3, 3), (2, 3)]),
       s=st.sampled_from([None, 1, 2, 3]))
@SETTINGS
def test_max_pool2d(H, W, k, s):
    if H < k[0] or W < k[1]:
        return
    rng = np.random.default_rng(H * 10 + W)
    # distinct values: the max is unique, so the finite difference is well defined; kept in
    # [0, 1) (gaps of 1/n >> eps), so that the central difference's rounding stays far below atol
    n = 2 * 3 * H * W
    x = rng.permutation(n).reshape(2, 3, H, W) / n
    gradcheck(lambda t: F.max_pool2d(t, k, s), x)
    SH, SW = (k if s is None else (s, s))
    assert F.max_pool2d(tl.Tensor(x), k, s).shape == (2, 3, (H - k[0]) // SH + 1,
                                                      (W - k[1]) // SW + 1)


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 4), (2, 3, 3, 4), (1, 2, 3, 1)])
def test_batch_norm_training(shape, device, rng):
    x = randn(rng, *shape) * 2 + 1
    C = shape[1]
    gradcheck(lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True), x,
              rng.uniform(0.5, 2, C), randn(rng, C), device=device, rtol=1e-4, atol=1e-6)


def test_batch_norm_eval(device, rng):
    x = randn(rng, 4, 3, 2, 2)
    rm, rv = tl.Tensor(randn(rng, 3), device=device), tl.Tensor(rng.uniform(0.5, 2, 3),
                                                                device=device)
    gradcheck(lambda x, g, b: F.batch_norm(x, rm, rv, g, b, training=False), x,
              rng.uniform(0.5, 2, 3), randn(rng, 3), device=device)


def test_dropout_with_fixed_mask(rng):
    from tinylesion import ops
    x = randn(rng, 4, 5)
    mask = (rng.random((4, 5)) > 0.3) / 0.7
    gradcheck(lambda t: ops.Dropout.apply(t, p=0.3, mask=mask), x)


def test_dropout_statistics_and_eval():
    tl.manual_seed(0)
    x = tl.Tensor(np.ones((200, 500), dtype=np.float32))
    y = F.dropout(x, 0.3, training=True).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert F.dropout(x, 0.3, training=False) is x
