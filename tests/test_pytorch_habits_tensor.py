"""Tensor methods and constructors by PyTorch's names; PyTorch's RuntimeError for bad shapes;
the message for a torch.Tensor given to tinylesion."""
import operator

import numpy as np
import pytest

import tinylesion as tl
from tinylesion.testing import gradcheck

rng = np.random.default_rng(0)


def test_constructors_infer_as_torch():
    assert tl.tensor([1, 2]).dtype == np.int64 and tl.tensor([1.0, 2]).dtype == np.float32
    assert tl.tensor(np.array([1.0])).dtype == np.float64 and tl.tensor(True).dtype == np.bool_
    assert tl.FloatTensor([1, 2]).dtype == np.float32
    assert tl.FloatTensor([1, 2]).tolist() == [1.0, 2.0]
    assert tl.LongTensor([1.7, 2]).dtype == np.int64
    assert tl.FloatTensor(2, 3).shape == (2, 3) and tl.LongTensor(4).shape == (4,)
    assert tl.DoubleTensor(np.ones(2, np.float32)).dtype == np.float64
    assert tl.BoolTensor([1, 0]).tolist() == [True, False]
    assert tl.IntTensor(tl.arange(3)).dtype == np.int32


def test_comparisons_and_logic():
    x, y = tl.tensor([1, 2, 3]), tl.tensor([1, 0, 3])
    assert x.eq(y).tolist() == [True, False, True] and x.ne(y).tolist() == [False, True, False]
    assert x.gt(1).tolist() == [False, True, True] and x.le(y).tolist() == [True, False, True]
    assert x.eq(y).sum().item() == 2
    pred = tl.tensor([[1], [0], [3]])
    assert pred.eq(x.view_as(pred)).sum().item() == 2        # the MNIST example's count
    assert x.eq(y).all().item() is False and x.eq(y).any().item() is True
    assert x.eq(y).logical_not().tolist() == [False, True, False]
    f = tl.tensor([1.0, float("nan"), float("inf")])
    assert f.isnan().tolist() == [False, True, False] and f.isinf().tolist() == [False, False,
                                                                                   True]


def test_arithmetic_by_name_matches_the_operators():
    a, b = tl.tensor([[1.0, -2.0], [3.0, 4.0]]), tl.tensor([0.5, 2.0])
    np.testing.assert_allclose(a.add(b, alpha=3).numpy(), (a + 3 * b).numpy())
    np.testing.assert_allclose(a.sub(b, alpha=2).numpy(), (a - 2 * b).numpy())
    np.testing.assert_allclose(a.mul(b).numpy(), (a * b).numpy())
    np.testing.assert_allclose(a.div(b).numpy(), (a / b).numpy())
    np.testing.assert_allclose(a.pow(2).numpy(), (a ** 2).numpy())
    assert a.div(b, rounding_mode="trunc").tolist() == [[2.0, -1.0], [6.0, 2.0]]
    assert a.div(b, rounding_mode="floor").tolist() == [[2.0, -1.0], [6.0, 2.0]]
    assert tl.tensor([-7, 7]).div(2, rounding_mode="trunc").tolist() == [-3, 3]
    assert tl.tensor([-7, 7]).div(2, rounding_mode="floor").tolist() == [-4, 3]
    with pytest.raises(ValueError, match="rounding_mode"):
        a.div(b, rounding_mode="round")
    np.testing.assert_allclose(a.neg().numpy(), -a.numpy())
    np.testing.assert_allclose(a.square().numpy(), a.numpy() ** 2)
    np.testing.assert_allclose(a.matmul(a).numpy(), a.numpy() @ a.numpy())


def test_gradients_of_the_named_methods():
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    gradcheck(lambda a, b: a.add(b, alpha=-2.5), x, y)
    gradcheck(lambda a, b: a.sub(b, alpha=0.5), x, y)
    gradcheck(lambda a, b: a.mul(b).div(b.pow(2) + 1), x, y)
    gradcheck(lambda a: a.masked_fill(a.data > 0, 0.5), x)
    gradcheck(lambda a: a.flip(1).narrow(0, 1, 2), x)
    gradcheck(lambda a: a.unbind(1)[2] * 3, x)
    gradcheck(lambda a: (a.pow(2) + 1).rsqrt() + (a.pow(2) + 1).reciprocal(), x)
    gradcheck(lambda a: a.t().contiguous().view_as(a), x)


def test_in_place_methods():
    x = tl.ones(3)
    assert x.add_(tl.tensor([1.0, 2.0, 3.0]), alpha=2) is x and x.tolist() == [3.0, 5.0, 7.0]
    x.sub_(1).mul_(2).div_(4)
    assert x.tolist() == [1.0, 2.0, 3.0]
    x.clamp_(max=2.0)
    assert x.tolist() == [1.0, 2.0, 2.0]
    x.masked_fill_(tl.tensor([True, False, False]), -1.0)
    assert x.tolist() == [-1.0, 2.0, 2.0]
    x.copy_(np.array([4, 5, 6]))
    assert x.tolist() == [4.0, 5.0, 6.0] and x.dtype == np.float32
    w = tl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w.add_(1)


def test_random_fills_and_types():
    tl.manual_seed(0)
    w = tl.empty(2000)
    assert w.uniform_(-0.5, 0.5) is w
    assert -0.5 <= float(w.min()) and float(w.max()) < 0.5 and abs(float(w.mean())) < 0.03
    w.normal_(2.0, 0.5)
    assert abs(float(w.mean()) - 2.0) < 0.05 and abs(float(w.std()) - 0.5) < 0.05
    a = tl.empty(4).normal_(generator=tl.Generator().manual_seed(1))
    b = tl.empty(4).normal_(generator=tl.Generator().manual_seed(1))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(TypeError):
        tl.zeros(2, dtype=tl.int64).normal_()
    x = tl.tensor([1.7, -1.2])
    assert x.int().dtype == np.int32 and x.long().tolist() == [1, -1]
    assert x.float().dtype == np.float32 and x.bool().tolist() == [True, True]
    assert x.size(0) == 2 and x.size() == (2,) and x.dim() == 1 and x.numel() == 2
    assert x.nelement() == 2 and x.element_size() == 4 and not x.is_cuda
    assert x.get_device() == -1 and x.argmax().item() == 0


def test_shape_mismatches_are_runtime_errors_too():
    cases = [lambda: tl.ones(2, 3) @ tl.ones(2, 3),
             lambda: tl.nn.Linear(4, 2)(tl.ones(3, 5)),
             lambda: tl.nn.Conv2d(3, 4, 3)(tl.ones(1, 2, 5, 5)),
             lambda: tl.cat([tl.ones(2, 3), tl.ones(2, 4)]),
             lambda: tl.stack([tl.ones(2), tl.ones(3)]),
             lambda: tl.ones(2, 3) + tl.ones(3, 2),
             lambda: tl.ones(6).view(4, 2)]
    for case in cases:
        with pytest.raises(RuntimeError):
            case()
        with pytest.raises(ValueError):   # as before, for code that catches ValueError
            case()


def test_a_torch_tensor_is_named():
    class FakeTorchTensor:
        shape = (1, 4)
        dtype = "torch.float32"

        def __array__(self, dtype=None, copy=None):
            return np.ones((1, 4), np.float32)

    FakeTorchTensor.__module__ = "torch"
    with pytest.raises(TypeError, match=r"Linear got a torch.Tensor; use tl.from_numpy\(t"):
        tl.nn.Linear(4, 2)(FakeTorchTensor())
    with pytest.raises(TypeError, match="got a torch.Tensor"):
        tl.ones(1, 4) + FakeTorchTensor()


def test_functional_shape_mismatches_are_runtime_errors_too():
    import tinylesion.nn.functional as F
    for case in (lambda: F.conv2d(tl.ones(1, 3, 5, 5), tl.ones(2, 4, 3, 3)),
                 lambda: F.linear(tl.ones(2, 5), tl.ones(3, 4))):
        with pytest.raises(RuntimeError):
            case()
        with pytest.raises(ValueError):
            case()


def test_torch_namespace_functions():
    a, b = tl.tensor([1.0, 5.0, 3.0]), tl.tensor([1.0, 2.0, 3.0])
    assert tl.eq(a, b).tolist() == [True, False, True] and tl.gt(a, 2).tolist() == [False,
                                                                                    True, True]
    assert tl.add(a, b, alpha=2).tolist() == [3.0, 9.0, 9.0]
    assert tl.sub(a, 1).tolist() == [0.0, 4.0, 2.0] and tl.mul(a, b).tolist() == [1, 10, 9]
    assert tl.div(tl.tensor([7, -7]), 2, rounding_mode="floor").tolist() == [3, -4]
    assert tl.pow(b, 2).tolist() == [1.0, 4.0, 9.0] and tl.all(a > 0).item()
    assert tl.any(tl.isnan(a)).item() is False
    tl.manual_seed(0)
    perm = tl.randperm(10)
    assert perm.dtype == np.int64 and sorted(perm.tolist()) == list(range(10))
    tl.manual_seed(0)
    assert tl.randperm(10).tolist() == perm.tolist()
    array = np.arange(3.0)
    shared = tl.as_tensor(array)
    shared[0] = 9.0
    assert array[0] == 9.0 and tl.as_tensor(array, dtype=tl.float32).dtype == np.float32
    assert tl.get_default_dtype() == tl.float32 and tl.half == np.float16
    tl.use_deterministic_algorithms(True)
    tl.set_float32_matmul_precision("high")
    with pytest.raises(NotImplementedError):
        tl.set_default_dtype(tl.float64)


def test_topk_sort_gather():
    x = tl.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.9]])
    values, indices = x.topk(2, 1)
    assert indices.tolist() == [[1, 2], [2, 0]]
    np.testing.assert_allclose(values.numpy(), [[0.7, 0.2], [0.9, 0.5]])
    # the top-5 accuracy idiom: pred.t().eq(target.view(1, -1).expand_as(pred))
    _, pred = x.topk(1, 1, True, True)
    target = tl.tensor([1, 0])
    assert pred.t().eq(target.view(1, -1).expand_as(pred.t())).sum().item() == 1
    assert x.topk(1, dim=1, largest=False).indices.tolist() == [[0], [1]]
    s = tl.sort(tl.tensor([3, 1, 2]), descending=True)
    assert s.values.tolist() == [3, 2, 1] and s.indices.tolist() == [0, 2, 1]
    assert tl.argsort(tl.tensor([3.0, 1.0, 2.0])).tolist() == [1, 2, 0]
    np.testing.assert_allclose(tl.gather(x, 1, tl.tensor([[2, 2], [0, 1]])).numpy(),
                               [[0.2, 0.2], [0.5, 0.3]])
    with pytest.raises(RuntimeError, match="topk"):
        x.topk(4)
    assert tl.tensor([1.5, 2.5, -0.5]).round().tolist() == [2.0, 2.0, -0.0]
    assert tl.floor(tl.tensor([1.5, -1.5])).tolist() == [1.0, -2.0]


def test_gather_topk_sort_gradients():
    x = rng.standard_normal((3, 5))
    index = np.array([[0, 0, 4], [1, 3, 3], [2, 2, 2]])
    gradcheck(lambda t: t.gather(1, tl.tensor(index)), x)       # repeated entries add up
    gradcheck(lambda t: t.topk(3, dim=1).values * 2, x)
    gradcheck(lambda t: t.sort(0, descending=True).values, x)


def test_zero_dim_tensors_format_and_index_as_their_value():
    loss = tl.tensor(0.123456)
    assert f"{loss:.4f}" == "0.1235" and f"{loss:>8.2e}" == "1.23e-01"
    assert f"{tl.tensor(7):03d}" == "007" and f"{loss}" == str(loss.item())
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{tl.tensor([1.0, 2.0]):.2f}"
    assert ["a", "b", "c"][tl.tensor(2)] == "c" and list(range(tl.tensor(3))) == [0, 1, 2]
    assert operator.index(tl.tensor([4])) == 4
    for bad in (tl.tensor(1.0), tl.tensor([1, 2])):
        with pytest.raises(TypeError, match="only integer tensors of a single element"):
            operator.index(bad)


def test_the_torch_functions_take_a_tensors_data_as_a_tensor():
    outputs = tl.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    values, indices = tl.max(outputs.data, 1)      # the old tutorials' idiom
    assert isinstance(values, tl.Tensor) and indices.tolist() == [1, 0]
    assert tl.argmax(outputs.data, dim=1).tolist() == [1, 0]
    assert tl.min(outputs.data, dim=0).indices.tolist() == [0, 1, 0]
    assert tl.sum(tl.argmax(outputs, 1) == tl.tensor([1, 1]).data).item() == 1
    # every function that checks its input takes a raw array (.array) as a tensor too
    for result in (tl.unsqueeze(outputs.array, 0), tl.squeeze(outputs.array[None]),
                   tl.t(outputs.array), tl.std(outputs.array, dim=1),
                   tl.chunk(outputs.array, 2)[0], tl.split(outputs.array, 1)[1]):
        assert isinstance(result, tl.Tensor)
    with pytest.raises(TypeError, match=r"max\(\) expects a Tensor, not list"):
        tl.max([1, 2])
