"""nn.ELU, nn.PReLU, the softplus family, nn.GroupNorm, nn.Embedding and the losses of
nn/more_losses.py as modules: PyTorch's defaults, parameters, state_dict keys, warnings and
errors (their numbers against PyTorch's and their gradient checks are in
test_pytorch_habits_torchops.py)."""
import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn.functional as F
from tinylesion import nn
from tinylesion.errors import InputError
from tinylesion.testing import gradcheck


def test_elu_and_prelu_modules():
    x = tl.tensor([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(nn.ELU()(x).numpy(), [np.expm1(-2.0), 0, 3], rtol=1e-6)
    assert repr(nn.ELU(alpha=0.5, inplace=True)) == "ELU(alpha=0.5, inplace=True)"
    assert F.elu(tl.tensor([-1e4, 1e4])).tolist() == [-1.0, 1e4]   # no overflow either side
    p = nn.PReLU()
    assert p.weight.shape == (1,) and p.weight.tolist() == [0.25]
    assert list(p.state_dict()) == ["weight"] and repr(p) == "PReLU(num_parameters=1)"
    q = nn.PReLU(3, init=0.1, dtype=tl.float64)
    assert q.weight.dtype == np.float64 and q(tl.ones(2, 3, dtype=tl.float64) * -1).tolist() \
        == [[-0.1] * 3] * 2
    q(-tl.ones(4, 3, 2, dtype=tl.float64)).sum().backward()
    assert q.weight.grad.tolist() == [-8.0] * 3


def test_softplus_family_modules():
    assert repr(nn.Softplus(beta=2, threshold=5)) == "Softplus(beta=2, threshold=5)"
    assert repr(nn.CELU(0.5)) == "CELU(alpha=0.5)" and repr(nn.SELU()) == "SELU()"
    big = tl.tensor([-1e4, 1e4])    # no overflow either side
    assert F.softplus(big).tolist() == [0.0, 1e4] and F.logsigmoid(big).tolist() == [-1e4, 0]
    assert F.mish(big).tolist() == [-0.0, 1e4]


def test_group_norm_module():
    g = nn.GroupNorm(2, 6)
    assert g.weight.tolist() == [1.0] * 6 and g.bias.tolist() == [0.0] * 6
    assert list(g.state_dict()) == ["weight", "bias"]
    assert repr(g) == "GroupNorm(2, 6, eps=1e-05, affine=True)"
    assert nn.GroupNorm(3, 6, affine=False).weight is None
    x = tl.randn(4, 6, 5, 5)
    y = g(x).numpy().reshape(4, 2, -1)
    np.testing.assert_allclose(y.mean(2), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(2), 1, atol=1e-3)
    rng = np.random.default_rng(0)
    gradcheck(lambda x, w, b: F.group_norm(x, 3, w, b), rng.standard_normal((2, 6, 4)),
              rng.standard_normal(6), rng.standard_normal(6))


def test_embedding_module():
    tl.manual_seed(0)
    e = nn.Embedding(10, 3, padding_idx=2)
    assert e.weight.shape == (10, 3) and not e.weight.numpy()[2].any()
    assert abs(float(e.weight.numpy().std()) - 1) < 0.5   # N(0, 1)
    assert repr(e) == "Embedding(10, 3, padding_idx=2)"
    assert list(e.state_dict()) == ["weight"]
    out = e(tl.tensor([[2, 7, 7]]))
    assert out.shape == (1, 3, 3)
    out.sum().backward()
    assert e.weight.grad.numpy()[7].tolist() == [2.0] * 3 and not e.weight.grad.numpy()[2].any()
    assert nn.Embedding(5, 2, padding_idx=-1).padding_idx == 4
    table = tl.tensor([[1.0, 2.0], [3.0, 4.0]])
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad and frozen(tl.tensor([1])).tolist() == [[3.0, 4.0]]
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    table.array[0, 0] = 9.0    # the module holds its own copy
    assert frozen.weight.tolist()[0] == [1.0, 2.0]


def test_embedding_max_norm_scales_the_rows_looked_up_in_place():
    e = nn.Embedding(4, 2, max_norm=1.0)
    with tl.no_grad():
        e.weight.copy_(tl.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0], [0.0, 9.0]]))
    out = e(tl.tensor([0, 1, 0]))
    np.testing.assert_allclose(out.numpy(), [[0.6, 0.8], [0.3, 0.4], [0.6, 0.8]], rtol=1e-6)
    np.testing.assert_allclose(e.weight.numpy()[2:], [[6.0, 8.0], [0.0, 9.0]])  # not looked up
    assert repr(e) == "Embedding(4, 2, max_norm=1.0)"
    used = e.weight * 2   # recorded: its backward needs the weight as it is
    with pytest.raises(RuntimeError, match="in-place"):
        e(tl.tensor([2]))
    del used


def test_more_losses_modules_and_warnings():
    assert repr(nn.SmoothL1Loss()) == "SmoothL1Loss()"
    assert nn.KLDivLoss(reduction="batchmean").reduction == "batchmean"
    x, y = tl.tensor([[0.1, 0.2]]), tl.tensor([[0.5, 0.5]])
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(x.log(), y)
    with pytest.warns(UserWarning, match="broadcast"):
        F.smooth_l1_loss(tl.ones(2, 3), tl.ones(3))
    assert F.kl_div(x.log(), tl.tensor([[0.0, 1.0]]), reduction="sum").item() == \
        pytest.approx(-np.log(0.2))    # the zero target adds nothing
    loss = nn.TripletMarginLoss(margin=0.5)(tl.zeros(2, 3), tl.zeros(2, 3), tl.ones(2, 3))
    assert loss.item() == 0.0


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.elu(tl.tensor([1, 2])), TypeError, "elu"),
    (lambda: F.softplus(tl.ones(2), beta=0), ValueError, "beta"),
    (lambda: F.softplus(tl.tensor([1, 2])), TypeError, "softplus"),
    (lambda: F.logsigmoid(tl.tensor([1, 2])), TypeError, "logsigmoid"),
    (lambda: F.celu(tl.ones(2), alpha=0.0), ZeroDivisionError, "alpha"),
    (lambda: F.smooth_l1_loss(tl.ones(2), tl.ones(2), beta=-1), ValueError, "beta"),
    (lambda: F.huber_loss(tl.ones(2), tl.ones(2), delta=0), ValueError, "delta"),
    (lambda: F.kl_div(tl.ones(2), tl.ones(2), reduction="max"), ValueError, "reduction"),
    (lambda: nn.KLDivLoss(reduction="max"), ValueError, "reduction"),
    (lambda: F.triplet_margin_loss(tl.ones(1, 2), tl.ones(1, 2), tl.ones(1, 2), margin=0),
     ValueError, "margin"),
    (lambda: nn.SmoothL1Loss(reduction="avg"), ValueError, "reduction"),
    (lambda: F.prelu(tl.ones(2, 3), tl.ones(2)), InputError, "2 slopes"),
    (lambda: F.prelu(tl.ones(2, 3), tl.ones(3, 1)), InputError, "vector"),
    (lambda: nn.PReLU(0), ValueError, "num_parameters"),
    (lambda: nn.GroupNorm(4, 6), ValueError, "divisible"),
    (lambda: nn.GroupNorm(0, 6), ValueError, "num_groups"),
    (lambda: F.group_norm(tl.ones(2, 6, 3), 4), InputError, "num_groups=4"),
    (lambda: F.group_norm(tl.ones(6), 3), InputError, "(N, C, *)"),
    (lambda: F.group_norm(tl.ones(2, 6, 3), 3, tl.ones(5)), InputError, "weight"),
    (lambda: nn.Embedding(5, 2, padding_idx=5), ValueError, "padding_idx"),
    (lambda: nn.Embedding(5, 2, sparse=True), NotImplementedError, "sparse"),
    (lambda: nn.Embedding(-1, 2), ValueError, "num_embeddings"),
    (lambda: nn.Embedding(5, 2)(tl.tensor([5])), IndexError, "index 5"),
    (lambda: nn.Embedding(5, 2)(tl.tensor([-1])), IndexError, "index -1"),
    (lambda: nn.Embedding(5, 2)(tl.tensor([1.0])), TypeError, "integers"),
    (lambda: F.embedding(tl.tensor([1]), tl.ones(5)), InputError, "2-D"),
    (lambda: F.embedding(tl.tensor([1]), tl.ones(5, 2), sparse=True), NotImplementedError,
     "sparse"),
    (lambda: nn.Embedding.from_pretrained(tl.ones(3)), ValueError, "2-D"),
])
def test_bad_arguments_raise_one_line_errors(call, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace("*", r"\*")
                       .replace(")", r"\)")) as info:
        call()
    assert "\n" not in str(info.value)
