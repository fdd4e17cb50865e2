"""PyTorch's tensor-level functions, creation functions and Tensor methods: values against
NumPy written to PyTorch's documented semantics, float64 central-difference gradients."""
import numpy as np
import pytest

import tinylesion as tl
from tinylesion import backend
from tinylesion.testing import gradcheck


def randn(rng, *shape):
    return rng.standard_normal(shape)


def apart(rng, *shape):
    """Values at least 0.1 apart (and from 0): no ties, so finite differences are exact."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) + 1) / n * 4 - 2).reshape(shape) + 0.05


# ---- gradients of the new differentiable ops -------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_and_stack_gradients(dim, device, rng):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    shapes = [tuple(n + i if d == dim % 3 else n for d, n in enumerate(s))
              for i, s in enumerate(shapes)]
    gradcheck(lambda a, b, c: tl.cat([a, b, c], dim), *(randn(rng, *s) for s in shapes),
              device=device)
    gradcheck(lambda a, b: tl.stack([a, b], dim) * 2, randn(rng, 2, 3), randn(rng, 2, 3),
              device=device)
    gradcheck(lambda a, b: tl.stack((a, b), dim=-1), randn(rng, 3, 2), randn(rng, 3, 2))


def test_cat_gradient_skips_inputs_without_grad(rng):
    a = tl.Tensor(randn(rng, 2, 3), requires_grad=True)
    b = tl.Tensor(randn(rng, 1, 3))
    (tl.cat([b, a]) * tl.Tensor(np.arange(9.0).reshape(3, 3))).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.arange(3.0, 9.0).reshape(2, 3))
    assert b.grad is None


@pytest.mark.parametrize("fn", [
    lambda t: t.unsqueeze(0), lambda t: t.unsqueeze(-1), lambda t: tl.unsqueeze(t, 1),
    lambda t: t.unsqueeze(1).squeeze(), lambda t: tl.squeeze(t[:, :1], 1),
    lambda t: t.t(), lambda t: t.T, lambda t: t.clone() * t,
    lambda t: t.expand(3, 2, 5), lambda t: t[:, :1].expand(-1, 4), lambda t: t.expand_as(
        tl.Tensor(np.zeros((2, 2, 5)))),
    lambda t: t.repeat(2, 3), lambda t: t.repeat(2, 1, 2),
    lambda t: t.chunk(2, 1)[1], lambda t: t.split([1, 4], dim=1)[1] * 3,
    lambda t: t.softmax(1), lambda t: tl.log_softmax(t, 0),
], ids=["unsqueeze0", "unsqueeze-1", "tl.unsqueeze", "squeeze", "squeeze1", "t", "T", "clone",
        "expand", "expand-1", "expand_as", "repeat", "repeat3", "chunk", "split", "softmax",
        "log_softmax"])
def test_shape_op_gradients(fn, device, rng):
    gradcheck(fn, randn(rng, 2, 5), device=device)


@pytest.mark.parametrize("fn", [
    lambda t: t.clamp(-0.5, 0.7), lambda t: tl.clamp(t, min=0.2), lambda t: t.clip(max=-0.3),
    lambda t: t.clamp_min(0.1), lambda t: t.clamp_max(0.1),
    lambda t: t.min(), lambda t: t.min(1).values, lambda t: tl.min(t, 0, keepdim=True)[0],
    lambda t: t.amin(1), lambda t: tl.amin(t, (0, 1), keepdim=True),
    lambda t: tl.max(t, 1).values, lambda t: tl.amax(t, 0),
    lambda t: t.maximum(tl.Tensor(np.full(5, 0.33))), lambda t: tl.minimum(t, 0.33),
], ids=["clamp", "clamp_min_kw", "clip_max", "clamp_min", "clamp_max", "min", "min_dim",
        "min_keepdim", "amin", "amin_all", "max_dim", "amax", "maximum", "minimum"])
def test_selection_gradients(fn, device, rng):
    gradcheck(fn, apart(rng, 3, 5), device=device)


def test_clamp_with_tensor_bounds_differentiates_the_bounds(rng):
    x, low, high = apart(rng, 3, 4), apart(rng, 4) - 0.5, apart(rng, 3, 1) + 0.9
    gradcheck(lambda x, lo, hi: tl.clamp(x, lo, hi), x, low, high)


def test_maximum_minimum_where_gradients_broadcast(rng):
    a, b = apart(rng, 3, 4), apart(rng, 4)[::-1].copy() * 0.9
    gradcheck(tl.maximum, a, b)
    gradcheck(lambda a, b: tl.min(a, b), a, b)
    gradcheck(lambda a, b: a.max(b), a, b)
    cond = rng.random((3, 4)) > 0.5
    gradcheck(lambda a, b: tl.where(cond, a, b), a, b)
    gradcheck(lambda a, b: tl.where(tl.Tensor(cond[:1]), a, b), a, randn(rng, 3, 1))
    gradcheck(lambda a: tl.where(cond, 2.0, a), a)
    gradcheck(lambda a: a.where(cond, 0.0), a)


@pytest.mark.parametrize("op", ["std", "var"])
@pytest.mark.parametrize("dim, keepdim", [(None, False), (1, False), (-1, True),
                                          ((0, 2), False), ((0, 2), True)])
@pytest.mark.parametrize("correction", [None, 0, 2])
def test_std_var_gradients(op, dim, keepdim, correction, device, rng):
    gradcheck(lambda t: getattr(t, op)(dim, keepdim=keepdim, correction=correction),
              randn(rng, 3, 4, 5), device=device)


# ---- values against NumPy, written to PyTorch's documented semantics ------------------------
def test_std_var_use_the_unbiased_correction_by_default():
    x = np.arange(12.0).reshape(3, 4) ** 1.5
    t = tl.Tensor(x)
    np.testing.assert_allclose(tl.std(t).item(), x.std(ddof=1), rtol=1e-12)
    np.testing.assert_allclose(t.var(1).numpy(), x.var(1, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(t.var(1, False).numpy(), x.var(1), rtol=1e-12)  # unbiased=False
    np.testing.assert_allclose(tl.std(t, unbiased=False).item(), x.std(), rtol=1e-12)
    np.testing.assert_allclose(tl.std(t, False).item(), x.std(), rtol=1e-12)   # std(x, False)
    np.testing.assert_allclose(t.std(0, keepdim=True, correction=2).numpy(),
                               x.std(0, ddof=2, keepdims=True), rtol=1e-12)
    assert t.std(dim=(0, 1)).shape == () and t.var(0, keepdim=True).shape == (1, 4)
    assert tl.std(tl.Tensor([1.0, 2.0])).dtype == np.float32


def test_std_gradient_is_zero_where_std_is_zero_and_var_of_one_is_nan():
    x = tl.Tensor(np.ones(3), requires_grad=True)
    x.std().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0])
    one = tl.Tensor(np.ones(1), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="[Dd]egrees of freedom"):
        v = one.var()
    v.backward()
    assert np.isnan(v.item()) and np.isnan(one.grad.numpy()).all()


def test_std_var_errors():
    with pytest.raises(TypeError, match="floating-point"):
        tl.var(tl.Tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="not both"):
        tl.std(tl.Tensor([1.0, 2.0]), unbiased=True, correction=0)


@pytest.mark.parametrize("name", ["std", "max", "min", "argmin", "squeeze", "softmax", "t",
                                  "chunk", "clamp", "maximum"])
def test_functions_name_a_non_tensor_input(name):
    args = {"softmax": (0,), "chunk": (2,), "clamp": (0,), "maximum": (0,)}.get(name, ())
    with pytest.raises(TypeError, match=f"{name}\\(\\) expects a Tensor, not list"):
        getattr(tl, name)([1.0, 2.0], *args)


def test_clamp_gradient_passes_at_the_bounds_and_nan_stays():
    x = tl.Tensor(np.array([0.0, 1.0, 2.0, 3.0]), requires_grad=True)
    y = x.clamp(1, 2)
    y.sum().backward()
    np.testing.assert_array_equal(y.numpy(), [1, 1, 2, 2])
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 1, 0])   # bounds included
    np.testing.assert_array_equal(tl.clamp(tl.Tensor([np.nan, 1.0]), 0, 0.5).numpy()[1], 0.5)
    assert np.isnan(tl.clamp(tl.Tensor([np.nan, 1.0]), 0, 0.5).numpy()[0])
    np.testing.assert_array_equal(tl.clamp(tl.Tensor([0.0, 1.0, 2.0]), 1.5, 0.5).numpy(),
                                  [0.5, 0.5, 0.5])                # min > max gives max
    ints = tl.Tensor([1, 2, 3])
    assert ints.clamp(min=2).dtype == np.int64
    assert ints.clamp(min=1.5).dtype == np.float32                # promoted as torch
    np.testing.assert_array_equal(ints.clamp(min=1.5).numpy(), [1.5, 2, 3])
    with pytest.raises(ValueError, match="at least one"):
        tl.clamp(ints)


def test_clamp_with_crossed_tensor_bounds_gives_high_its_gradient():
    x = tl.Tensor(np.array([0.0, 1.0, 2.0]), requires_grad=True)
    low = tl.Tensor(np.full(3, 1.5), requires_grad=True)
    high = tl.Tensor(np.full(3, 0.5), requires_grad=True)
    tl.clamp(x, low, high).sum().backward()
    assert x.grad.numpy().tolist() == [0, 0, 0] and low.grad.numpy().tolist() == [0, 0, 0]
    assert high.grad.numpy().tolist() == [1, 1, 1]


def test_maximum_minimum_ties_share_the_gradient():
    a = tl.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = tl.Tensor(np.array([1.0, 3.0, 2.0]), requires_grad=True)
    tl.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 0, 1])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 1, 0])
    a.grad = b.grad = None
    tl.min(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 1, 0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 0, 1])
    np.testing.assert_array_equal(tl.min(tl.Tensor([1, 5]), tl.Tensor([2, 3])).numpy(), [1, 3])


def test_max_min_forms_and_first_index_of_ties():
    x = np.array([[1.0, 3.0, 3.0], [4.0, 0.0, 0.0]])
    t = tl.Tensor(x)
    assert tl.max(t).item() == 4.0 and tl.min(t).item() == 0.0
    values, indices = tl.max(t, 1)
    np.testing.assert_array_equal(values.numpy(), [3, 4])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])        # first maximum
    out = t.min(1, keepdim=True)
    assert type(out).__name__ == "min" and out.indices.shape == (2, 1)
    np.testing.assert_array_equal(out.values.numpy(), [[1], [0]])
    np.testing.assert_array_equal(out.indices.numpy(), [[0], [1]])  # first minimum
    np.testing.assert_array_equal(tl.argmin(t, 1).numpy(), [0, 1])
    assert tl.argmin(t).item() == 4 and t.argmin(0, keepdim=True).shape == (1, 3)
    np.testing.assert_array_equal(tl.amin(t, 0).numpy(), x.min(0))
    assert tl.amax(t).item() == 4.0 and tl.amax(t, (0, 1), keepdim=True).shape == (1, 1)
    np.testing.assert_array_equal(t.min(axis=1).numpy(), x.min(1))    # NumPy's keyword
    assert tl.max(tl.Tensor(np.array([1.0, np.nan, 3.0])), 0).indices.item() == 1  # NaN wins
    scalar = tl.Tensor(np.array(2.0))
    assert tl.max(scalar, 0).values.item() == 2.0 and tl.max(scalar, 0).indices.item() == 0
    with pytest.raises(TypeError, match="amin"):
        t.min((0, 1))
    with pytest.raises(IndexError, match="out of range"):
        tl.max(t, 2)


def test_cat_and_stack_values_promotion_and_errors():
    a, b = np.arange(6).reshape(2, 3), np.arange(3.0).reshape(1, 3)
    out = tl.cat([tl.Tensor(a), tl.Tensor(b.astype(np.float32))])
    assert out.dtype == np.float32                                   # int64 + float32
    np.testing.assert_array_equal(out.numpy(), np.concatenate([a, b]))
    assert tl.cat([tl.Tensor(a.astype(np.int32)), tl.Tensor(b)]).dtype == np.float64
    assert tl.cat([tl.Tensor([True]), tl.Tensor([1])]).dtype == np.int64
    np.testing.assert_array_equal(tl.cat((tl.Tensor(a), tl.Tensor(a)), dim=-1).numpy(),
                                  np.concatenate([a, a], -1))
    assert tl.cat([tl.Tensor(a), tl.zeros(0)]).shape == (2, 3)      # torch skips 1-D empties
    st = tl.stack([tl.Tensor(a), tl.Tensor(a * 2)], dim=2)
    np.testing.assert_array_equal(st.numpy(), np.stack([a, a * 2], 2))
    assert tl.stack([tl.Tensor(1.0), tl.Tensor(2.0)]).shape == (2,)
    with pytest.raises(ValueError, match=r"except in dimension 0: \(2, 3\) and \(2, 4\)"):
        tl.cat([tl.zeros(2, 3), tl.zeros(2, 4)])
    with pytest.raises(ValueError, match="zero-dimensional"):
        tl.cat([tl.Tensor(1.0), tl.Tensor(2.0)])
    with pytest.raises(ValueError, match="non-empty"):
        tl.cat([])
    with pytest.raises(TypeError, match="item 1 is a ndarray"):
        tl.cat([tl.zeros(2), np.zeros(2)])
    with pytest.raises(TypeError, match="list or tuple"):
        tl.cat(tl.zeros(2))
    with pytest.raises(ValueError, match=r"item 0 has \(2, 3\) and item 1 has \(2, 4\)"):
        tl.stack([tl.zeros(2, 3), tl.zeros(2, 4)])
    with pytest.raises(IndexError, match="out of range"):
        tl.stack([tl.zeros(2)], dim=2)


def test_squeeze_unsqueeze_and_shapes():
    x = tl.zeros(2, 1, 3, 1)
    assert x.squeeze().shape == (2, 3) and x.squeeze(1).shape == (2, 3, 1)
    assert x.squeeze(0).shape == (2, 1, 3, 1)                        # not size 1: no-op
    assert tl.squeeze(x, (1, 3)).shape == (2, 3) and tl.zeros(()).squeeze(0).shape == ()
    assert x.unsqueeze(4).shape == (2, 1, 3, 1, 1) and x.unsqueeze(-5).shape == (1, 2, 1, 3, 1)
    with pytest.raises(IndexError, match="dimension 5 is out of range"):
        x.unsqueeze(5)
    with pytest.raises(IndexError, match="out of range"):
        x.squeeze(4)
    t = tl.Tensor(np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(t.t().numpy(), np.arange(6).reshape(2, 3).T)
    assert tl.zeros(3).t().shape == (3,) and tl.zeros(2, 3, 4).T.shape == (4, 3, 2)
    with pytest.raises(ValueError, match="at most 2 dimensions"):
        tl.zeros(2, 3, 4).t()
    assert x.dim() == x.ndimension() == 4 and tl.numel(x) == 6
    assert tl.flatten(x, 1).shape == (2, 3) and tl.reshape(x, (6,)).shape == (6,)
    assert tl.transpose(x, 0, 2).shape == (3, 1, 2, 1)
    assert tl.permute(x, (3, 2, 1, 0)).shape == (1, 3, 1, 2)


def test_expand_repeat_chunk_split():
    x = tl.Tensor(np.arange(3).reshape(3, 1))
    np.testing.assert_array_equal(x.expand(2, 3, 4).numpy(),
                                  np.broadcast_to(np.arange(3).reshape(3, 1), (2, 3, 4)))
    assert x.expand(-1, 5).shape == (3, 5)
    with pytest.raises(ValueError, match="only size-1 dimensions grow"):
        x.expand(4, 4)
    np.testing.assert_array_equal(tl.arange(2).repeat(2, 2).numpy(), [[0, 1, 0, 1]] * 2)
    with pytest.raises(ValueError, match="at least one per dimension"):
        x.repeat(2)
    assert [c.shape for c in tl.arange(5).chunk(3)] == [(2,), (2,), (1,)]
    assert [c.shape for c in tl.arange(6).chunk(4)] == [(2,), (2,), (2,)]
    assert [c.shape for c in tl.arange(5).split(2)] == [(2,), (2,), (1,)]
    pieces = tl.split(tl.arange(10).reshape(2, 5), [1, 4], dim=1)
    np.testing.assert_array_equal(pieces[1].numpy(), np.arange(10).reshape(2, 5)[:, 1:])
    with pytest.raises(ValueError, match="add up to 4"):
        tl.arange(5).split([1, 3])


def test_where_values_promotion_and_errors():
    cond = tl.Tensor(np.array([True, False]))
    out = tl.where(cond, tl.Tensor([1, 2]), 2.5)
    assert out.dtype == np.float32 and out.numpy().tolist() == [1.0, 2.5]
    assert tl.where(cond, 1.0, 0.0).dtype == np.float32
    assert tl.where(cond, 1, 0).dtype == np.int64
    assert tl.where(cond, tl.Tensor(np.array([1.0, 2.0])), tl.Tensor(2.0)).dtype == np.float64
    assert tl.where(cond, 3, tl.Tensor([7, 8])).numpy().tolist() == [3, 8]
    with pytest.raises(TypeError, match="boolean"):
        tl.where(tl.Tensor([1, 0]), 1.0, 0.0)


def test_elementwise_functions_and_questions(rng):
    x = rng.uniform(0.5, 2.0, (2, 3))
    t = tl.Tensor(x)
    for name, ref in [("exp", np.exp), ("log", np.log), ("sqrt", np.sqrt), ("abs", np.abs),
                      ("tanh", np.tanh), ("relu", lambda a: np.maximum(a, 0)),
                      ("sigmoid", lambda a: 1 / (1 + np.exp(-a)))]:
        np.testing.assert_allclose(getattr(tl, name)(t).numpy(), ref(x), rtol=1e-12)
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(tl.softmax(t, 1).numpy(), e / e.sum(1, keepdims=True))
    np.testing.assert_allclose(t.log_softmax(-1).numpy(), np.log(e / e.sum(1, keepdims=True)))
    np.testing.assert_allclose(tl.matmul(t, t.T).numpy(), x @ x.T)
    np.testing.assert_allclose(tl.sum(t, 1).numpy(), x.sum(1))
    np.testing.assert_allclose(tl.mean(t, 0, keepdim=True).numpy(), x.mean(0, keepdims=True))
    assert tl.mean(tl.Tensor([1, 2]), dtype=tl.float64).item() == 1.5
    assert tl.argmax(t).item() == x.argmax()
    assert tl.is_tensor(t) and not tl.is_tensor(x)
    assert tl.equal(tl.Tensor([1, 2]), tl.Tensor([1.0, 2.0]))         # dtypes may differ
    assert not tl.equal(tl.Tensor([1, 2]), tl.Tensor([1, 2, 3]))
    assert not tl.equal(tl.Tensor([1, 2]), tl.Tensor([1, 3]))
    assert tl.allclose(t, t + 1e-9) and not tl.allclose(t, t + 1e-3)
    nan = tl.Tensor([1.0, np.nan])
    assert tl.allclose(nan, nan, equal_nan=True) and not tl.allclose(nan, nan)


# ---- creation ---------------------------------------------------------------------------
def test_creation_dtypes_sizes_and_keywords():
    assert tl.zeros(2, 3).shape == tl.ones((2, 3)).shape == tl.empty([2, 3]).shape == (2, 3)
    assert tl.zeros(2).dtype == np.float32 and tl.zeros(()).shape == ()
    assert tl.ones(2, dtype=tl.int64).dtype == np.int64
    assert tl.zeros(2, device="cpu").device == "cpu"
    z = tl.zeros(2, 2, requires_grad=True)
    assert z.requires_grad and z.is_leaf
    np.testing.assert_array_equal(tl.eye(2, 3).numpy(), np.eye(2, 3))
    assert tl.eye(3, dtype=tl.float64).dtype == np.float64
    assert tl.full((2,), 3).dtype == np.int64 and tl.full((2,), 3.0).dtype == np.float32
    assert tl.full((2,), True).dtype == np.bool_
    np.testing.assert_array_equal(tl.full((2, 2), 7.5).numpy(), np.full((2, 2), 7.5))
    like = tl.Tensor(np.zeros((2, 3), np.float64))
    for fn, value in [(tl.zeros_like, 0), (tl.ones_like, 1)]:
        out = fn(like)
        assert out.shape == (2, 3) and out.dtype == np.float64 and (out.numpy() == value).all()
    assert tl.full_like(like, 4, dtype=tl.int64).numpy().tolist() == [[4] * 3] * 2
    assert tl.empty_like(like).shape == (2, 3)
    with pytest.raises(ValueError, match="negative"):
        tl.zeros(2, -1)
    with pytest.raises(TypeError, match="ints"):
        tl.ones(2.0)
    with pytest.raises(TypeError, match="floating-point"):
        tl.zeros(2, dtype=tl.int64, requires_grad=True)
    with pytest.raises(NotImplementedError, match="out="):
        tl.zeros(2, out=tl.zeros(2))


def test_arange_and_linspace_as_torch():
    assert tl.arange(5).dtype == np.int64 and tl.arange(5).numpy().tolist() == [0, 1, 2, 3, 4]
    assert tl.arange(0, 1, 0.1).dtype == np.float32 and tl.arange(0.0, 5).dtype == np.float32
    assert tl.arange(np.int32(3)).dtype == np.int64
    np.testing.assert_array_equal(tl.arange(0, 1, 0.1).numpy(),
                                  (np.arange(10) * 0.1).astype(np.float32))  # start + i·step
    assert tl.arange(1, 2.5, 0.5).shape == (3,) and tl.arange(-1, -3, -0.5).shape == (4,)
    assert tl.arange(10, 0, -3).numpy().tolist() == [10, 7, 4, 1]
    with pytest.raises(ValueError, match="cannot be reached"):
        tl.arange(0, 5, -1)
    with pytest.raises(ValueError, match="zero"):
        tl.arange(0, 5, 0)
    # torch's formula, in float32: the second half counted back from the end
    h = np.float32(1) / np.float32(6)
    expected = [np.float32(i) * h if i < 3 else np.float32(1) - h * np.float32(6 - i)
                for i in range(7)]
    np.testing.assert_array_equal(tl.linspace(0, 1, 7).numpy(), np.array(expected, np.float32))
    assert tl.linspace(0, 1, 7).numpy()[4] == np.float32(0.6666666269302368)
    assert tl.linspace(0, 10, 4, dtype=tl.int64).numpy().tolist() == [0, 3, 6, 10]
    assert tl.linspace(2, 5, 1).numpy().tolist() == [2.0] and tl.linspace(0, 1, 0).shape == (0,)


def test_random_draws_follow_manual_seed():
    tl.manual_seed(7)
    a, b, c = tl.rand(3, 4), tl.randn((3, 4)), tl.randint(2, 5, (1000,))
    tl.manual_seed(7)
    np.testing.assert_array_equal(a.numpy(), tl.rand(3, 4).numpy())
    np.testing.assert_array_equal(b.numpy(), tl.randn(3, 4).numpy())
    np.testing.assert_array_equal(c.numpy(), tl.randint(2, 5, (1000,)).numpy())
    assert a.dtype == b.dtype == np.float32 and c.dtype == np.int64
    assert 0 <= a.numpy().min() and a.numpy().max() < 1
    assert set(c.numpy().tolist()) == {2, 3, 4}
    assert tl.randint(3, (2, 2)).numpy().max() < 3 and tl.randint(3, size=(4,)).shape == (4,)
    assert tl.randn(2, dtype=tl.float64, requires_grad=True).requires_grad
    with pytest.raises(TypeError, match="floating point"):
        tl.rand(2, dtype=tl.int64)
    with pytest.raises(ValueError, match="below high"):
        tl.randint(3, 3, (2,))


def test_from_numpy_shares_memory():
    a = np.arange(4.0)
    t = tl.from_numpy(a)
    a[0] = 10
    t.array[1] = 20
    assert t.dtype == np.float64 and t.numpy().tolist() == [10, 20, 2, 3] and a[1] == 20
    with pytest.raises(TypeError, match="numpy.ndarray"):
        tl.from_numpy([1, 2])


# ---- Tensor methods -----------------------------------------------------------------------
def test_in_place_fill_and_zero():
    x = tl.Tensor(np.arange(4.0), requires_grad=True)
    assert x.fill_(2.5) is x and x.numpy().tolist() == [2.5] * 4 and x.requires_grad
    assert x.zero_().numpy().tolist() == [0.0] * 4
    ints = tl.zeros(2, dtype=tl.int64).fill_(2.7)
    assert ints.numpy().tolist() == [2, 2] and ints.dtype == np.int64
    assert x.fill_(tl.Tensor(3.0)).numpy().tolist() == [3.0] * 4
    with pytest.raises(ValueError, match="one-element"):
        x.fill_(tl.Tensor([1.0, 2.0]))


def test_clone_is_a_differentiable_copy():
    x = tl.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.clone()
    assert y.array is not x.array and not np.shares_memory(y.array, x.array)
    (y * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3, 3])


def test_type_as_new_tensors_and_cuda():
    x = tl.Tensor(np.zeros(2, np.float64))
    assert tl.Tensor([1, 2]).type_as(x).dtype == np.float64
    assert x.new_zeros(2, 3).dtype == np.float64 and x.new_zeros((2, 3)).shape == (2, 3)
    assert x.new_ones(2, dtype=tl.float32).dtype == np.float32
    assert x.new_full((2,), 5).numpy().tolist() == [5.0, 5.0] and x.new_empty(3).shape == (3,)
    assert x.new_tensor([1, 2]).dtype == np.float64
    if not backend.gpu_available():
        with pytest.raises(backend.DeviceError, match=r"tinylesion\[gpu\]|no CUDA device"):
            x.cuda()


@pytest.mark.parametrize("name, dtype", [
    ("int32", np.int32), ("int16", np.int16), ("int8", np.int8), ("uint8", np.uint8),
    ("bool", np.bool_), ("float", np.float32), ("double", np.float64), ("long", np.int64),
    ("int", np.int32)])
def test_torch_dtype_names(name, dtype):
    # torch.int32, torch.bool, torch.float (float32), torch.long (int64), torch.int (int32)...
    assert tl.zeros(2, dtype=getattr(tl, name)).dtype == dtype
    assert tl.Tensor(np.arange(3)).to(getattr(tl, name)).dtype == dtype


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
def test_creation_without_a_size_raises_and_an_empty_tuple_is_0d(name):
    # as torch: zeros() is an error, zeros(()) a 0-d tensor
    with pytest.raises(TypeError, match=f"{name}\\(\\) missing its size"):
        getattr(tl, name)()
    assert getattr(tl, name)(()).shape == ()


def test_out_is_refused_and_randint_wants_a_size_tuple():
    a = tl.zeros(2)
    for fn in (tl.cat, tl.stack):
        with pytest.raises(NotImplementedError, match="out="):
            fn([a, a], out=tl.zeros(4))
    with pytest.raises(TypeError, match="size a tuple"):
        tl.randint(3, 10)                     # torch: size must be a tuple, not high=3 x 10
    assert tl.randint(3, 10, (5,)).shape == (5,) and tl.randint(3, (2, 2)).shape == (2, 2)
