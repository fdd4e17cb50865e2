"""Tensor semantics: dtypes, autograd bookkeeping, no_grad, graph freeing, errors."""
import numpy as np
import pytest

import tinylesion as tl
from tinylesion import backend


def test_dtype_rules_follow_torch_tensor():
    assert tl.Tensor(np.zeros(3)).dtype == np.float64          # NumPy keeps its dtype
    assert tl.Tensor(np.zeros(3, np.int64)).dtype == np.int64
    assert tl.Tensor(1.5).dtype == np.float32                   # Python floats: float32
    assert tl.Tensor([1.0, 2.0]).dtype == np.float32
    assert tl.Tensor([1, 2]).dtype == np.int64
    assert tl.Tensor(3).dtype == np.int64


def test_scalar_operands_keep_tensor_dtype():
    x = tl.Tensor(np.ones(2, np.float32))
    assert (x * 2.5).dtype == np.float32 and (1 - x).dtype == np.float32
    assert (x ** 2).dtype == np.float32


def test_properties_and_conversions():
    x = tl.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.shape == (2, 3) and x.device == "cpu" and x.is_leaf
    assert tl.Tensor(np.array([4.0])).item() == 4.0
    assert isinstance(x.numpy(), np.ndarray)
    d = x.detach()
    assert not d.requires_grad and d.data is x.data
    assert x.to("cpu") is x
    with pytest.raises(ValueError, match="one element"):
        x.item()


def test_gradients_accumulate_until_zeroed():
    x = tl.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])
    x.zero_grad()
    assert x.grad is None


def test_shared_input_and_diamond_graph():
    x = tl.Tensor(np.array([2.0]), requires_grad=True)
    a = x * x
    y = a + a * x        # x² + x³ → 2x + 3x² = 16
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [16.0])


def test_leaf_gradients_do_not_alias():
    a = tl.Tensor(np.ones(3), requires_grad=True)
    b = tl.Tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()
    a.grad.data += 1
    np.testing.assert_allclose(b.grad.numpy(), 1.0)
    assert a.grad.data.flags.writeable


def test_no_grad_records_nothing():
    x = tl.Tensor(np.ones(2), requires_grad=True)
    with tl.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    assert tl.is_grad_enabled()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_needs_input_grad_skips_constants():
    x = tl.Tensor(np.ones((2, 2)), requires_grad=True)
    c = tl.Tensor(np.ones((2, 2)))
    (x @ c).sum().backward()
    assert c.grad is None and x.grad is not None


def test_graph_is_freed_after_backward():
    x = tl.Tensor(np.ones(2), requires_grad=True)
    y = (x * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="already freed"):
        y.backward()


def test_deep_chain_does_not_hit_recursion_limit():
    x = tl.Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y + 1e-4 * y
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [(1 + 1e-4) ** 10_000], rtol=1e-9)


def test_backward_with_explicit_gradient():
    x = tl.Tensor(np.ones(3), requires_grad=True)
    (x * 2).backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2, 4, 6])
    with pytest.raises(RuntimeError, match="one-element"):
        (x * 2).backward()


def test_retain_grad_on_intermediate():
    x = tl.Tensor(np.ones(2), requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6, 6])


def test_only_float_tensors_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        tl.Tensor(np.array([1, 2]), requires_grad=True)


def test_manual_seed_makes_generators_repeatable():
    tl.manual_seed(3)
    a = backend.generator().random(4)
    tl.manual_seed(3)
    np.testing.assert_array_equal(a, backend.generator().random(4))


def test_gpu_request_without_cupy_gives_clear_error(monkeypatch):
    if backend.gpu_available():
        pytest.skip("this machine has a working GPU")
    with pytest.raises(backend.DeviceError, match=r"tinylesion\[gpu\]|no CUDA device"):
        tl.Tensor([1.0], device="gpu")
    with pytest.raises(backend.DeviceError, match="unknown device"):
        backend.as_device("tpu")
    assert backend.as_device("auto") == "cpu"
