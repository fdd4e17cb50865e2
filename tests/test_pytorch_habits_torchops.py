"""torch.norm, torch.linalg, F.normalize, cumsum, cumprod, prod, logsumexp, index_select,
index_add, scatter(_add), einsum, unique, bincount, nonzero, roll, repeat_interleave,
masked_select, count_nonzero, argwhere, diagonal, diag, trace, tril, triu, outer,
F.cosine_similarity, F.pairwise_distance, the activations ELU, SELU, CELU, PReLU, Softplus,
LogSigmoid, Mish, Softsign, F.group_norm, F.embedding and the losses of nn/more_losses.py:
PyTorch parity (bench/torchops_fixtures.py stores PyTorch's results for the same calls),
float64 gradient checks, dtypes, errors and the GPU path."""
import math
import os

import numpy as np
import pytest

import tinylesion as tl
import tinylesion.nn.functional as F
from tinylesion.testing import gradcheck
from torch_fixture_parity import check_case, gpu_parity_script, load_cases

HERE = os.path.dirname(__file__)
cases = load_cases("torchops_fixtures")
NAMES = [name for name, _, _ in cases.CASES]


@pytest.fixture(scope="module")
def ref():
    with np.load(os.path.join(HERE, "fixtures", "torchops_reference.npz")) as f:
        return dict(f)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("number", range(len(cases.CASES)), ids=NAMES)
def test_matches_torch(ref, number, dtype):
    check_case(cases, ref, number, dtype, float32_atol=2e-5)


# gradients that are PyTorch's by design rather than the derivative: the padding row gets
# none, scale_grad_by_freq divides by the counts, max_norm rescales the weight in place
# before the lookup (their parity with PyTorch is tested)
NOT_DERIVATIVES = {"embedding/padding", "embedding/padding_last", "embedding/scale_grad",
                   "embedding/max_norm"}


def _differentiable():
    """The cases where PyTorch gives some input a gradient (and it is the derivative)."""
    with np.load(os.path.join(HERE, "fixtures", "torchops_reference.npz")) as f:
        keys = set(f.files)
    return [number for number, (name, _, arrays) in enumerate(cases.CASES)
            if name not in NOT_DERIVATIVES
            and any(f"{name}/float64/grad{i}" in keys for i in range(len(arrays)))]


@pytest.mark.parametrize("number", _differentiable(), ids=lambda n: NAMES[n])
def test_gradients_by_central_differences(ref, number):
    """Each differentiable case at fresh random inputs (away from the norms' kinks), for the
    inputs PyTorch gives a gradient."""
    name, call, arrays = cases.CASES[number]
    rng = np.random.default_rng(number)
    floats = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    fresh = [rng.standard_normal(arrays[i].shape) for i in floats]
    check = [k for k, i in enumerate(floats) if f"{name}/float64/grad{i}" in ref]

    def fn(*values):
        inputs = list(arrays)
        for i, v in zip(floats, values):
            inputs[i] = v
        return call(tl, F, *[t if isinstance(t, tl.Tensor) else tl.tensor(t) for t in inputs])

    gradcheck(fn, *fresh, rtol=1e-5, atol=1e-6, check=check)


def test_scatter_with_a_larger_src_and_in_place_in_the_graph():
    # (PyTorch's own backward refuses a src larger than the index; the gradient of the
    # entries not written is 0)
    index = tl.tensor([[4, 0], [1, 2], [3, 0]])
    rng = np.random.default_rng(0)
    gradcheck(lambda x, s: x.scatter(1, index, s), rng.standard_normal((3, 5)),
              rng.standard_normal((4, 3)))
    gradcheck(lambda x, s: (x * 2).scatter_(1, index, s) * 3, rng.standard_normal((3, 5)),
              rng.standard_normal((3, 2)))
    gradcheck(lambda x, s: (x + 0).scatter_add_(0, tl.tensor([[1, 0], [1, 1]]), s),
              rng.standard_normal((2, 2)), rng.standard_normal((2, 3)))
    _, gs = gradcheck(lambda x, s: x.scatter(1, index, s), rng.standard_normal((3, 5)),
                      rng.standard_normal((4, 3)))
    assert not gs[3].any() and not gs[:, 2].any()


def test_cosine_similarity_of_a_vector_shorter_than_eps_has_the_derivative():
    # (the norm clamped to eps is a constant there; PyTorch's gradient differs in that case)
    rng = np.random.default_rng(1)
    gradcheck(lambda a, b: F.cosine_similarity(a * 1e-9, b, eps=1e-7),
              rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), atol=1e-5)


def test_one_hot_idiom_and_scatter_value_cast():
    labels = tl.tensor([2, 0, 1])
    one_hot = tl.zeros(3, 4).scatter_(1, labels.unsqueeze(1), 1.0)
    assert one_hot.dtype == np.float32
    np.testing.assert_array_equal(one_hot.numpy(), np.eye(4, dtype=np.float32)[[2, 0, 1]])
    ints = tl.zeros(3, dtype=tl.int32).scatter(0, tl.tensor([1]), 2.7)
    assert ints.dtype == np.int32 and ints.tolist() == [0, 2, 0]


def test_integer_and_boolean_dtypes_follow_torch():
    assert tl.cumsum(tl.tensor([1, 2], dtype=tl.int32), 0).dtype == np.int64
    assert tl.cumsum(tl.tensor([True, True]), 0).tolist() == [1, 2]
    assert tl.cumsum(tl.tensor([200, 100], dtype=tl.uint8), 0).tolist() == [200, 300]
    assert tl.prod(tl.tensor([True, False])).dtype == np.int64
    assert tl.prod(tl.tensor([2, 3], dtype=tl.int32)).dtype == np.int64
    assert tl.prod(tl.ones(2, 3), 1, dtype=tl.float64).dtype == np.float64
    assert tl.tensor(3.0).cumsum(0).item() == 3.0 and tl.tensor(3.0).prod(0).item() == 3.0
    assert tl.bincount(tl.tensor([], dtype=tl.int64), minlength=3).tolist() == [0, 0, 0]
    assert tl.nonzero(tl.tensor(5)).shape == (1, 0)
    assert tl.nonzero(tl.tensor(0)).shape == (0, 0)
    assert [t.tolist() for t in tl.nonzero(tl.tensor(5), as_tuple=True)] == [[0]]
    assert tl.nonzero(tl.zeros(2, 3)).shape == (0, 2)
    assert tl.unique(tl.tensor([True, False, True])).tolist() == [False, True]
    values, inverse = tl.unique(tl.tensor([[3, 1], [3, 1]]), return_inverse=True)
    assert values.tolist() == [1, 3] and inverse.tolist() == [[1, 0], [1, 0]]
    assert tl.index_select(tl.arange(5), 0, tl.tensor(2)).shape == (1,)
    assert tl.logsumexp(tl.zeros(2, 0), 1).tolist() == [-math.inf, -math.inf]


def test_zero_norms_have_zero_gradients():
    for ord in (2, 1, 0.5, 3, math.inf):
        x = tl.zeros(3, requires_grad=True)
        tl.linalg.vector_norm(x, ord).backward()
        assert x.grad.tolist() == [0, 0, 0], ord
    x = tl.zeros(2, 3, requires_grad=True)
    F.normalize(x).sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))


@pytest.mark.parametrize("call, error, words", [
    (lambda: tl.norm(tl.tensor([1, 2])), TypeError, "int64"),
    (lambda: tl.norm(tl.ones(3), p="nuc"), tl.errors.InputError, "2-D input"),
    (lambda: tl.norm(tl.ones(3), p="max"), ValueError, "p must be"),
    (lambda: tl.linalg.vector_norm(tl.ones(3), "fro"), TypeError, "ord must be a number"),
    (lambda: tl.linalg.vector_norm(tl.zeros(0), math.inf), RuntimeError, "empty"),
    (lambda: tl.linalg.vector_norm(tl.ones(3), dim=1), IndexError, "out of range"),
    (lambda: tl.linalg.vector_norm(tl.ones(2, 3), dim=(1, -1)), ValueError, "twice"),
    (lambda: tl.linalg.norm(tl.ones(2, 3, 4), 2), RuntimeError, "1D or 2D"),
    (lambda: tl.linalg.matrix_norm(tl.ones(2, 3), 3), ValueError, "ord must be one of"),
    (lambda: tl.norm(tl.ones(2, 3, 4), p="nuc"), RuntimeError, "2-D"),
    (lambda: tl.linalg.svdvals(tl.ones(3)), RuntimeError, "at least 2"),
    (lambda: tl.cumsum(tl.ones(3), 1), IndexError, "dimension 1"),
    (lambda: tl.prod(tl.ones(3), dim=(0,)), TypeError, "dim must be an int"),
    (lambda: tl.ones(3, 4).index_select(1, tl.tensor([4])), RuntimeError, "index 4"),
    (lambda: tl.ones(3, 4).index_select(1, tl.tensor([-1])), RuntimeError, "index -1"),
    (lambda: tl.ones(3, 4).index_select(1, tl.tensor([[0]])), RuntimeError, "vector"),
    (lambda: tl.ones(3, 4).index_select(1, tl.tensor([0.0])), TypeError, "integer"),
    (lambda: tl.zeros(3, 4).scatter(1, tl.tensor([[5]]), 1.0), RuntimeError, "index 5"),
    (lambda: tl.zeros(3, 4).scatter(1, tl.tensor([1]), 1.0), RuntimeError, "dimensions"),
    (lambda: tl.zeros(3, 4).scatter(1, tl.tensor([[1]]), tl.ones(1, 1, dtype=tl.float64)),
     RuntimeError, "dtype"),
    (lambda: tl.zeros(2, 2).scatter(0, tl.tensor([[1, 1, 1]]), 1.0), RuntimeError, "larger"),
    (lambda: tl.zeros(3, 4).scatter(1, tl.tensor([[1]]), "a"), TypeError, "value"),
    (lambda: tl.zeros(3, 4).scatter(1, tl.tensor([[1]])), TypeError, "src"),
    (lambda: tl.zeros(3, 4).scatter(1, tl.tensor([[1]]), 1.0, reduce="multiply"),
     NotImplementedError, "reduce"),
    (lambda: tl.zeros(3, 4).scatter_add(1, tl.tensor([[1]]), tl.ones(2)), RuntimeError,
     "dimensions"),
    (lambda: tl.einsum("ij,jk->ik", tl.ones(2, 3)), ValueError, "2 operands"),
    (lambda: tl.einsum("ij,jk->ik", tl.ones(2, 3), tl.ones(4, 2)), RuntimeError, "'j'"),
    (lambda: tl.einsum("ijk", tl.ones(2, 3)), ValueError, "do not fit"),
    (lambda: tl.einsum("ij->ii", tl.ones(2, 2)), ValueError, "twice"),
    (lambda: tl.einsum("ij->k", tl.ones(2, 2)), ValueError, "no operand"),
    (lambda: tl.einsum("i1", tl.ones(2, 2)), ValueError, "letters"),
    (lambda: tl.einsum("...i...", tl.ones(2, 2)), ValueError, "one '...'"),
    (lambda: tl.einsum("i->j->i", tl.ones(2)), ValueError, "more than one"),
    (lambda: tl.einsum("i,i", tl.ones(2), tl.ones(2, dtype=tl.float64)), RuntimeError,
     "dtype"),
    (lambda: tl.einsum(tl.ones(2), [60]), ValueError, "sublist"),
    (lambda: tl.bincount(tl.tensor([-1, 2])), RuntimeError, "non-negative"),
    (lambda: tl.bincount(tl.tensor([[1]])), RuntimeError, "1-D"),
    (lambda: tl.bincount(tl.tensor([1.5])), TypeError, "integers"),
    (lambda: tl.bincount(tl.tensor([1]), minlength=-1), ValueError, "minlength"),
    (lambda: tl.bincount(tl.tensor([1]), tl.ones(2)), RuntimeError, "weights"),
    (lambda: tl.unique(tl.ones(2), dim=1), IndexError, "dimension 1"),
    (lambda: tl.index_add(tl.ones(3, 2), 0, tl.tensor([0, 1]), tl.ones(3, 2)), RuntimeError,
     "does not fit"),
    (lambda: tl.index_add(tl.ones(3, 2), 0, tl.tensor([[0]]), tl.ones(1, 2)), RuntimeError,
     "vector"),
    (lambda: tl.index_add(tl.ones(3, 2), 0, tl.tensor([3]), tl.ones(1, 2)), RuntimeError,
     "index 3"),
    (lambda: tl.index_add(tl.ones(3, 2), 0, tl.tensor([0]), [[1.0, 2.0]]), TypeError,
     "source"),
    (lambda: tl.diagonal(tl.ones(3, 2), 0, 1, 1), RuntimeError, "two different"),
    (lambda: tl.diagonal(tl.ones(3), 0), IndexError, "dimension 1"),
    (lambda: tl.diag(tl.ones(2, 2, 2)), RuntimeError, "vector or a matrix"),
    (lambda: tl.diag(tl.ones(2), 0.5), TypeError, "offset"),
    (lambda: tl.trace(tl.ones(3)), RuntimeError, "matrix"),
    (lambda: tl.tril(tl.ones(3)), RuntimeError, "at least 2"),
    (lambda: tl.outer(tl.ones(2, 2), tl.ones(2)), RuntimeError, "two vectors"),
    (lambda: tl.logsumexp(tl.ones(2), 1), IndexError, "dimension 1"),
    (lambda: tl.roll(tl.ones(2, 3), (1, 2), 0), RuntimeError, "align"),
    (lambda: tl.roll(tl.ones(2, 3), (1, 2)), RuntimeError, "without dims"),
    (lambda: tl.roll(tl.ones(2, 3), 0.5), TypeError, "shifts"),
    (lambda: tl.repeat_interleave(tl.ones(2, 3), tl.tensor([1, 2, 3]), dim=0), RuntimeError,
     "3 repeats for 2"),
    (lambda: tl.repeat_interleave(tl.ones(2), -1), RuntimeError, "non-negative"),
    (lambda: tl.repeat_interleave(tl.ones(2), tl.tensor([1, -1])), RuntimeError,
     "non-negative"),
    (lambda: tl.repeat_interleave(tl.ones(2), 2, output_size=3), RuntimeError, "output_size"),
    (lambda: tl.repeat_interleave(tl.ones(2), tl.tensor([1.5, 1.0])), TypeError, "integer"),
    (lambda: tl.masked_select(tl.ones(2), tl.tensor([1, 0])), TypeError, "bool"),
    (lambda: tl.masked_select(tl.ones(2), tl.tensor([True, False, True])), ValueError,
     "broadcast"),
])
def test_bad_arguments_raise_one_line_errors(call, error, words):
    with pytest.raises(error, match=words) as info:
        call()
    assert "\n" not in str(info.value)


def test_names_are_where_pytorch_has_them():
    x = tl.ones(2, 3)
    both = ("norm", "cumsum", "cumprod", "prod", "logsumexp", "index_select", "index_add",
            "scatter", "scatter_add", "nonzero", "unique", "bincount", "diagonal", "diag",
            "trace", "tril", "triu", "outer", "roll", "repeat_interleave", "masked_select",
            "count_nonzero", "argwhere")
    for name in both + ("scatter_", "scatter_add_", "index_add_"):
        assert callable(getattr(x, name)), name
    for name in both + ("einsum",):
        assert callable(getattr(tl, name)), name
    for name in ("norm", "vector_norm", "matrix_norm", "svdvals"):
        assert callable(getattr(tl.linalg, name)), name
    for name in ("normalize", "cosine_similarity", "pairwise_distance", "elu", "selu", "celu",
                 "prelu", "softplus", "logsigmoid", "mish", "softsign", "group_norm",
                 "embedding"):
        assert callable(getattr(F, name)), name


# the stand-in CuPy also gets the parameters and gradients of four layers
GPU_SCRIPT = gpu_parity_script("torchops_fixtures", extra=r"""
from tinylesion import nn
modules = [nn.ELU(), nn.PReLU(3, device="cuda"), nn.GroupNorm(3, 3, device="cuda"),
           nn.Embedding(7, 3, padding_idx=0, device="cuda")]
x = tl.randn(2, 3, 4, device="cuda")
ys = [m(x) for m in modules[:3]] + [modules[3](tl.tensor([[0, 6], [2, 2]], device="cuda"))]
sum((y * y).sum() for y in ys).backward()
out["modules"] += sorted({type(t.array).__module__
                          for m in modules for t in [*m.parameters(), *[p.grad for p in
                                                                       m.parameters()]]})
""")


def test_the_gpu_path_gives_the_cpu_numbers():
    """Every case on the stand-in CuPy: the CPU's numbers and dtypes, device arrays only, and
    the differentiable ones without a device-to-host copy."""
    from test_fake_gpu import json_of, run_fake
    out = json_of(run_fake("-c", GPU_SCRIPT))
    assert out["failed"] == {}
    assert out["differs"] == []
    assert set(out["modules"]) == {"cupy"}
    # (repeat_interleave with a tensor of counts reads them: its output's size depends on them)
    assert {name: n for name, n in out["d2h"].items() if n} == {"repeat_interleave/counts": 1}
    assert len(out["d2h"]) > 40
