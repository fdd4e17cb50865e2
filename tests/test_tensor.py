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
    assert not d.requires_grad and d.array is x.array
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


def test_assigning_grad_takes_what_pytorch_takes_and_refuses_the_rest(monkeypatch):
    w = tl.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    g = tl.Tensor(np.full((2, 3), 0.5, np.float32))
    w.grad = g
    assert w.grad is g
    w.grad = None
    assert w.grad is None
    w.grad = g
    del w.grad
    assert w.grad is None
    refused = [
        (tl.Tensor(np.ones((3, 2), np.float32)), RuntimeError,
         r"^t.grad = value: the gradient's shape is \(3, 2\), the tensor's \(2, 3\) \(they"),
        (tl.Tensor(np.ones(6, np.float32)), RuntimeError, r"shape is \(6,\), the tensor's"),
        (tl.Tensor(np.ones((2, 3))), RuntimeError,
         r"the gradient's dtype is float64, the tensor's float32"),
        (np.ones((2, 3), np.float32), TypeError,
         r"^t.grad = value takes a Tensor or None, not ndarray \(wrap an array in a Tensor\)$"),
        ([[1.0] * 3] * 2, TypeError, r"takes a Tensor or None, not list$"),
        (w, RuntimeError, "a tensor cannot be its own gradient")]
    for value, error, words in refused:
        with pytest.raises(error, match=words) as caught:
            w.grad = value
        assert "\n" not in str(caught.value) and w.grad is None
    on_gpu = tl.Tensor(np.ones((2, 3), np.float32))
    real = backend.device_of
    monkeypatch.setattr(backend, "device_of",
                        lambda a: backend.Device("gpu") if a is on_gpu.array else real(a))
    with pytest.raises(RuntimeError, match="the gradient's device is gpu, the tensor's cpu"):
        w.grad = on_gpu
    (w * 2).sum().backward()        # backward's own gradients pass the same checks
    np.testing.assert_array_equal(w.grad.numpy(), np.full((2, 3), 2, np.float32))


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
    a.grad.array += 1
    np.testing.assert_allclose(b.grad.numpy(), 1.0)
    assert a.grad.array.flags.writeable


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


# ---- PyTorch's semantics for the public API ------------------------------------------------
def test_constructor_copies_and_keeps_numpy_dtypes_as_torch_tensor():
    assert tl.Tensor(np.int32(3)).dtype == np.int32                # NumPy numbers keep theirs
    assert tl.Tensor(np.float16(1)).dtype == np.float16
    assert tl.Tensor(np.float64(1)).dtype == np.float64
    assert tl.Tensor([np.float64(1.0), 2.0]).dtype == np.float64    # a float64 among floats
    assert tl.Tensor([np.zeros(2)]).dtype == np.float64
    assert tl.Tensor([np.float32(1.0), 2.0]).dtype == np.float32
    assert tl.Tensor((1.0, 2)).dtype == np.float32
    a = np.arange(3.0)
    t = tl.Tensor(a, requires_grad=True)
    t.array[0] = 9.0                       # .array is writable in place ...
    assert a[0] == 0.0 and t.numpy()[0] == 9.0   # ... and the caller's array is a copy
    u = tl.Tensor(t)
    assert u.array is not t.array and not u.requires_grad
    with pytest.raises(TypeError, match="Tensor from"):
        tl.Tensor(["a", "b"])


def test_to_dtype_and_device_are_differentiable():
    x = tl.Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    y = x.to(tl.float64)
    assert y.dtype == np.float64 and x.to("cpu") is x and x.to("cpu", np.float32) is x
    assert x.to(dtype=np.float64, device="cpu").dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_array_protocol_and_python_numbers():
    x = tl.Tensor(np.array([[2.5]]))
    assert float(x) == 2.5 and int(tl.Tensor(3)) == 3 and bool(tl.Tensor(1.0))
    np.testing.assert_array_equal(np.asarray(x), [[2.5]])
    assert isinstance(np.ones(1) + tl.Tensor(np.ones(1)), tl.Tensor)
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(tl.Tensor([1.0, 2.0]))


# (expression, dtype PyTorch 2.13 gives) for its type promotion rules
PROMOTION = [
    (lambda: tl.Tensor([1, 2]) * 1.5, np.float32),          # int tensor, float scalar
    (lambda: tl.Tensor([1, 2]) / tl.Tensor([2, 4]), np.float32),   # true division
    (lambda: tl.Tensor([1, 2]) / 2, np.float32),
    (lambda: 2 / tl.Tensor([1, 2]), np.float32),
    (lambda: tl.Tensor([1, 2]) ** 0.5, np.float32),
    (lambda: tl.Tensor([1, 2]) ** 2, np.int64),
    (lambda: tl.Tensor([1, 2]) * np.float64(2.0), np.float32),   # NumPy numbers as Python's
    (lambda: tl.Tensor(np.ones(2, np.float32)) * tl.Tensor([1, 2]), np.float32),
    (lambda: tl.Tensor(np.ones(2, np.float32)) * tl.Tensor(np.array(2.0)), np.float32),  # 0-d
    (lambda: tl.Tensor(np.ones(2)) * tl.Tensor(np.float32(2.0)), np.float64),
    (lambda: tl.Tensor(np.ones(2, np.float32)) + tl.Tensor(np.ones(2)), np.float64),
    (lambda: tl.Tensor(np.ones(2, np.int32)) + tl.Tensor(5), np.int32),
    (lambda: tl.Tensor(np.ones(2, np.int32)) + 5, np.int32),
    (lambda: tl.Tensor([1, 2]) + tl.Tensor(2.5), np.float32),    # 0-d of a higher category
    (lambda: tl.Tensor([True]) + True, np.bool_),
    (lambda: tl.Tensor([True]) + 1, np.int64),
    (lambda: tl.Tensor(np.ones(2, np.uint8)) + tl.Tensor(np.ones(2, np.int8)), np.int16),
    (lambda: tl.Tensor(np.ones(2, np.float32)) ** np.float64(2.0), np.float32),
    (lambda: 2 ** tl.Tensor([1, 2]), np.int64),
    (lambda: 2.0 ** tl.Tensor([1, 2]), np.float32),
    (lambda: tl.Tensor([1, 2]).sum(), np.int64),
]


@pytest.mark.parametrize("i", range(len(PROMOTION)))
def test_operators_follow_torch_type_promotion(i):
    expression, dtype = PROMOTION[i]
    assert expression().dtype == dtype


def test_integer_tensor_times_float_is_not_truncated():
    np.testing.assert_allclose((tl.Tensor([1, 2, 3]) * 1.5).numpy(), [1.5, 3.0, 4.5])
    np.testing.assert_allclose((tl.Tensor([1, 2, 3]) + 0.5).numpy(), [1.5, 2.5, 3.5])
    np.testing.assert_allclose((tl.Tensor([1, 2]) / tl.Tensor([2, 4])).numpy(), [0.5, 0.5])
    x = tl.Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    (x * tl.Tensor(np.array([3.0, 4.0]))).sum().backward()   # float64 result, float32 grad
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])


def test_reductions_take_torch_and_numpy_keywords():
    x = tl.Tensor(np.arange(24.0).reshape(2, 3, 4))
    assert x.sum(dim=1).shape == (2, 4) and x.sum(1, True).shape == (2, 1, 4)
    assert x.sum(dim=(0, 2), keepdim=True).shape == (1, 3, 1)
    assert x.mean(axis=-1, keepdims=True).shape == (2, 3, 1)
    np.testing.assert_allclose(x.mean(dim=(0, 1)).numpy(), np.arange(24.0).reshape(6, 4).mean(0))
    assert x.max(axis=(0, 2)).shape == (3,) and x.amax(dim=(0, 2)).shape == (3,)
    with pytest.raises(TypeError, match="both"):
        x.sum(dim=0, axis=1)
    with pytest.raises(RuntimeError, match="floating-point"):
        tl.Tensor([1, 2]).mean()


def test_max_with_dim_returns_values_and_indices():
    x = tl.Tensor(np.array([[1.0, 3.0, 3.0], [4.0, 0.0, 4.0]]), requires_grad=True)
    values, indices = x.max(1)
    assert values.shape == (2,) and indices.dtype == np.int64
    np.testing.assert_array_equal(indices.numpy(), [1, 0])     # the first of tied maxima
    out = x.max(dim=0, keepdim=True)
    assert out.values.shape == (1, 3) and out.indices.shape == (1, 3)
    values.sum().backward()                                    # the gradient goes to the index
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])
    assert x.max().shape == () and x.argmax().item() == 3 and x.argmax(1, True).shape == (2, 1)
    with pytest.raises(TypeError, match="amax"):
        x.max((0, 1))


def test_transpose_swaps_two_dimensions_as_torch():
    x = tl.Tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    assert x.transpose(0, 2).shape == (4, 3, 2) and x.transpose(-1, 1).shape == (2, 4, 3)
    assert x.transpose(1, 1).shape == (2, 3, 4)
    np.testing.assert_array_equal(x.transpose(0, 1).numpy(), np.swapaxes(x.numpy(), 0, 1))
    assert tl.Tensor(np.zeros((2, 3))).transpose(0, 1).shape == (3, 2)
    assert x.transpose(2, 0, 1).shape == (4, 2, 3) and x.permute(2, 0, 1).shape == (4, 2, 3)
    assert x.transpose().shape == (4, 3, 2)
    with pytest.raises(ValueError, match="out of range"):
        x.transpose(0, 3)


def test_flatten_range():
    x = tl.Tensor(np.zeros((2, 3, 4, 5)))
    assert x.flatten().shape == (120,) and x.flatten(1).shape == (2, 60)
    assert x.flatten(1, 2).shape == (2, 12, 5) and x.flatten(-2, -1).shape == (2, 3, 20)
    with pytest.raises(ValueError, match="after"):
        x.flatten(2, 1)


def test_equality_is_elementwise_and_tensors_still_hash_by_identity():
    a, b = tl.Tensor([1, 2, 3]), tl.Tensor([1, 0, 3])
    np.testing.assert_array_equal((a == b).numpy(), [True, False, True])
    np.testing.assert_array_equal((a != np.array([1, 2, 0])).numpy(), [False, False, True])
    assert (a == b).float().mean().item() == pytest.approx(2 / 3)
    assert (a == b).long().dtype == np.int64
    assert len({a: 1, b: 2}) == 2 and a in [a]
