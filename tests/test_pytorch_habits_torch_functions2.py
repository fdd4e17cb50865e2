"""What the stored-fixture cases of tests/test_pytorch_habits_torchops2.py do not reach for the
new torch functions: names where torch has them (torch namespace, Tensor methods,
torch.linalg), gradients at the hard points (products with zeros, singular determinants, amax
ties, logcumsumexp over a wide range), torch.tensor's float64 precision, and the one-line
errors for bad arguments."""
import math
import warnings

import numpy as np
import pytest

import tinylesion as tl
from tinylesion.testing import gradcheck

FUNCTIONS = ("median", "nanmedian", "quantile", "nanquantile", "kthvalue", "mode", "std_mean",
             "var_mean", "aminmax", "cummax", "cummin", "logcumsumexp", "cdist", "lerp",
             "histc", "meshgrid", "broadcast_to", "take_along_dim", "searchsorted",
             "bucketize", "diff", "erf", "erfc", "erfinv", "logit", "atan2", "hypot",
             "isclose", "movedim", "swapaxes", "narrow", "tile", "rot90", "kron",
             "scatter_reduce", "inverse", "det")
NOT_METHODS = {"std_mean", "var_mean", "cdist", "meshgrid", "searchsorted", "bucketize"}


def test_names_are_where_pytorch_has_them():
    x = tl.ones(2, 3)
    for name in FUNCTIONS:
        assert callable(getattr(tl, name)), name
        if name not in NOT_METHODS:
            assert callable(getattr(x, name)), name
    for name in ("inv", "det", "solve"):
        assert callable(getattr(tl.linalg, name)), name


def test_tensor_of_python_floats_keeps_float64_precision():
    assert tl.tensor([0.1, 0.7], dtype=tl.float64).numpy()[0] == 0.1
    assert tl.tensor(0.1, dtype=tl.float64).item() == 0.1
    assert tl.tensor([0.1]).dtype == np.float32 and tl.tensor(0.1).dtype == np.float32


def test_scatter_reduce_prod_gradient_with_zeros():
    # one zero in a group: only the zero gets a gradient (the others' product); two: none
    x = np.array([[2.0, 0.0, 3.0, 1.5]])
    src = np.array([[0.0, 4.0, 0.0, 5.0]])
    index = tl.tensor([[0, 0, 1, 2]])
    for include_self in (True, False):
        gradcheck(lambda a, s: tl.scatter_reduce(a, 1, index, s, "prod",
                                                 include_self=include_self), x, src)
    x = tl.tensor(x, requires_grad=True)
    s = tl.tensor(src, requires_grad=True)
    tl.scatter_reduce(x, 1, index, s, "prod").sum().backward()
    # group 0: 2·0·4 (one zero: its gradient 2·4), group 1: 0·0 (two zeros: none), group 2:
    # 3·5, and x[3] alone
    assert x.grad.tolist() == [[0.0, 0.0, 5.0, 1.0]] and s.grad.tolist() == [[8.0, 0, 0, 3.0]]


def test_scatter_reduce_amax_ties_share_the_gradient():
    x = tl.tensor([[1.0, 5.0]], requires_grad=True)
    s = tl.tensor([[5.0, 5.0, 2.0]], requires_grad=True)
    y = tl.scatter_reduce(x, 1, tl.tensor([[1, 1, 0]]), s, "amax")
    assert y.tolist() == [[2.0, 5.0]]
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 1 / 3]])
    np.testing.assert_allclose(s.grad.numpy(), [[1 / 3, 1 / 3, 1]])


def test_det_gradient_of_singular_matrices_is_the_adjugate():
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.5, -1.0, 2.0]])   # rank 2
    x = tl.tensor(a, requires_grad=True)
    tl.det(x).backward()
    adjugate_t = np.array([[np.linalg.det(np.delete(np.delete(a, i, 0), j, 1)) * (-1) ** (i + j)
                            for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(x.grad.numpy(), adjugate_t, atol=1e-12)
    assert np.abs(adjugate_t).max() > 1   # not a zero gradient


def test_logcumsumexp_over_a_wide_range_and_its_gradient():
    x = np.array([-1000.0, 0.0, 1000.0, -5.0])
    y = tl.logcumsumexp(tl.tensor(x), 0).numpy()
    np.testing.assert_allclose(y, [-1000.0, 0.0, 1000.0, 1000.0])
    gradcheck(lambda t: tl.logcumsumexp(t * 50, 0), np.random.default_rng(0).standard_normal(7))


def test_order_statistics_rules():
    x = tl.tensor([3.0, 1.0, 4.0, 2.0])
    assert tl.median(x).item() == 2.0   # the lower middle value
    assert tl.quantile(x, 0.5).item() == 2.5
    assert tl.median(tl.tensor([1.0, math.nan, 0.0])).item() != tl.median(
        tl.tensor([1.0, 0.0])).item()
    assert math.isnan(tl.median(tl.tensor([1.0, math.nan, 0.0])).item())
    assert tl.nanmedian(tl.tensor([1.0, math.nan, 0.0])).item() == 0.0
    assert tl.mode(tl.tensor([2, 7, 7, 2, 1]), 0).values.item() == 2   # the smaller of ties
    values, indices = tl.median(tl.tensor(5.0), 0)
    assert values.shape == () and indices.shape == () and indices.item() == 0
    assert tl.histc(tl.tensor([1.0, 1.0]), bins=2).tolist() == [0.0, 2.0]   # range [0, 2]
    assert tl.histc(tl.tensor([0.0, 1.0, 2.0, 5.0]), 2, 0, 2).tolist() == [1.0, 2.0]


def test_meshgrid_warns_without_indexing():
    with pytest.warns(UserWarning, match="indexing"):
        grids = tl.meshgrid(tl.arange(2), tl.arange(3))
    assert grids[0].shape == (2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tl.meshgrid(tl.arange(2), tl.arange(3), indexing="xy")[0].shape == (3, 2)


@pytest.mark.parametrize("call, error, words", [
    (lambda: tl.median(tl.zeros(0)), RuntimeError, "empty"),
    (lambda: tl.median(tl.ones(2, 3), 2), IndexError, "dimension 2"),
    (lambda: tl.kthvalue(tl.ones(2, 3), 4, 1), IndexError, "k=4"),
    (lambda: tl.kthvalue(tl.ones(2, 3), 0), IndexError, "k=0"),
    (lambda: tl.quantile(tl.ones(3), 1.5), ValueError, "range"),
    (lambda: tl.quantile(tl.tensor([1, 2]), 0.5), TypeError, "float or double"),
    (lambda: tl.quantile(tl.ones(3), 0.5, interpolation="cubic"), ValueError,
     "interpolation"),
    (lambda: tl.quantile(tl.ones(3), tl.ones(2, 2) * 0.5), TypeError, "1-D"),
    (lambda: tl.quantile(tl.ones(3), "half"), TypeError, "q must be"),
    (lambda: tl.aminmax(tl.zeros(0)), RuntimeError, "empty"),
    (lambda: tl.cummax(tl.ones(3), 1), IndexError, "dimension 1"),
    (lambda: tl.logcumsumexp(tl.tensor([1, 2]), 0), TypeError, "int64"),
    (lambda: tl.diff(tl.tensor(1.0)), RuntimeError, "one-dimensional"),
    (lambda: tl.diff(tl.ones(3), -1), ValueError, "order n"),
    (lambda: tl.diff(tl.ones(3), prepend=[1.0]), TypeError, "prepend"),
    (lambda: tl.lerp(tl.ones(2), tl.ones(2, dtype=tl.float64), 0.5), TypeError, "end"),
    (lambda: tl.lerp(tl.tensor([1, 2]), tl.tensor([1, 2]), 0.5), TypeError, "floating"),
    (lambda: tl.isclose(tl.ones(2), tl.ones(2, dtype=tl.float64)), TypeError, "same dtype"),
    (lambda: tl.isclose(tl.ones(2), tl.ones(2), rtol=-1), ValueError, "negative"),
    (lambda: tl.histc(tl.ones(3), 0), RuntimeError, "bins"),
    (lambda: tl.histc(tl.ones(3), 4, 2, 1), RuntimeError, "larger than min"),
    (lambda: tl.histc(tl.tensor([1, 2]), 4), TypeError, "int64"),
    (lambda: tl.histc(tl.tensor([1.0, math.nan]), 4), RuntimeError, "not finite"),
    (lambda: tl.searchsorted(tl.ones(2, 3), tl.ones(3, 1)), RuntimeError, "first N-1"),
    (lambda: tl.searchsorted(tl.ones(3), tl.ones(2), side="middle"), ValueError, "side"),
    (lambda: tl.searchsorted(tl.ones(3), tl.ones(2), right=True, side="left"), RuntimeError,
     "opposites"),
    (lambda: tl.bucketize(tl.ones(2), tl.ones(2, 2)), RuntimeError, "1 dimension"),
    (lambda: tl.cdist(tl.ones(3), tl.ones(2, 3)), RuntimeError, "2D"),
    (lambda: tl.cdist(tl.ones(2, 3), tl.ones(2, 4)), RuntimeError, "columns"),
    (lambda: tl.cdist(tl.ones(2, 3), tl.ones(2, 3), p=-1), RuntimeError, "non-negative"),
    (lambda: tl.meshgrid(tl.ones(2, 2), indexing="ij"), RuntimeError, "0D or 1D"),
    (lambda: tl.meshgrid(tl.ones(2), indexing="yx"), ValueError, "indexing"),
    (lambda: tl.meshgrid(indexing="ij"), RuntimeError, "non-empty"),
    (lambda: tl.broadcast_to(tl.ones(2, 3), (3, 3)), Exception, "3"),
    (lambda: tl.take_along_dim(tl.ones(2, 3), tl.tensor([[3]]), 1), IndexError, "range"),
    (lambda: tl.take_along_dim(tl.ones(2, 3), tl.tensor([1]), 1), RuntimeError,
     "same number"),
    (lambda: tl.take_along_dim(tl.ones(2, 3), tl.tensor([[0.5]]), 1), TypeError, "integer"),
    (lambda: tl.movedim(tl.ones(2, 3), (0, 1), 0), RuntimeError, "same length"),
    (lambda: tl.movedim(tl.ones(2, 3), (0, 0), (0, 1)), RuntimeError, "repeated"),
    (lambda: tl.swapaxes(tl.ones(2, 3), 0, 2), IndexError, "dimension 2"),
    (lambda: tl.narrow(tl.ones(2, 3), 1, 2, 2), IndexError, "exceeds"),
    (lambda: tl.tile(tl.ones(2), (-1,)), RuntimeError, "negative"),
    (lambda: tl.rot90(tl.ones(2, 3), 1, (0, 0)), RuntimeError, "different"),
    (lambda: tl.rot90(tl.ones(3)), RuntimeError, "total dims"),
    (lambda: tl.rot90(tl.ones(2, 3), 1, (0,)), RuntimeError, "rotation dims"),
    (lambda: tl.scatter_reduce(tl.ones(2, 3), 1, tl.tensor([[0]]), tl.ones(1, 1), "max"),
     RuntimeError, "reduce"),
    (lambda: tl.scatter_reduce(tl.ones(2, 3), 1, tl.tensor([[3]]), tl.ones(1, 1), "sum"),
     RuntimeError, "index 3"),
    (lambda: tl.linalg.inv(tl.ones(2, 3)), tl.errors.InputError, "square"),
    (lambda: tl.linalg.inv(tl.zeros(2, 2)), RuntimeError, "singular"),
    (lambda: tl.linalg.det(tl.tensor([[1, 2], [3, 4]])), TypeError, "floating point"),
    (lambda: tl.linalg.solve(tl.eye(2), tl.ones(3)), tl.errors.InputError, "Incompatible"),
    (lambda: tl.linalg.solve(tl.eye(2), tl.ones(2, dtype=tl.float64)), TypeError, "dtype"),
    (lambda: tl.linalg.solve(tl.zeros(2, 2), tl.ones(2)), RuntimeError, "singular"),
    (lambda: tl.atan2("a", "b"), TypeError, "Tensor"),
])
def test_bad_arguments_raise_one_line_errors(call, error, words):
    with pytest.raises(error, match=words) as info:
        call()
    assert "\n" not in str(info.value)
