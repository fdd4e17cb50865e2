"""ReLU kernels: the Numba CPU kernel against the reference (serial and threaded sizes)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernels import relu
from kernels.channel_sums import channel_sums
from kernels.relu import relu_backward, relu_forward

import torch_reference as reference


@st.composite
def relu_cases(draw):
    """Sizes on both sides of the threaded cutoff, NaN, ±0 and infinities planted."""
    size = draw(st.sampled_from([1, 7, 1000, relu.SERIAL_MAX + 1, 3 * relu.SERIAL_MAX + 5]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    x = rng.standard_normal(size).astype(dtype)
    specials = np.array([np.nan, 0.0, -0.0, np.inf, -np.inf], dtype)
    where = rng.integers(0, size, min(size, 5))
    x[where] = specials[:len(where)]
    return x, rng.standard_normal(size).astype(dtype)


@settings(max_examples=40, deadline=None)
@given(relu_cases())
def test_cpu_equals_reference(case):
    x, gy = case
    y = relu_forward(x, impl="cpu")
    np.testing.assert_array_equal(y, relu_forward(x, impl="reference"))
    assert y.dtype == x.dtype
    gx = relu_backward(gy, y, impl="cpu")
    np.testing.assert_array_equal(gx, relu_backward(gy, y, impl="reference"))


def test_values_nan_and_gradient_mask():
    x = np.array([-2.0, -0.0, 0.0, 3.0, np.nan, np.inf, -np.inf], np.float32)
    y = relu_forward(x)
    np.testing.assert_array_equal(y, [0, 0, 0, 3, np.nan, np.inf, 0])
    gx = relu_backward(np.ones_like(x), y)
    np.testing.assert_array_equal(gx, [0, 0, 0, 1, 1, 1, 0])  # NaN passes it on


def test_strided_input_and_shape_kept():
    x = np.random.default_rng(0).standard_normal((4, 6, 5, 8))[:, ::2, :, 1::3]
    y = relu_forward(x)
    assert y.shape == x.shape
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    gy = np.ones(x.shape)
    np.testing.assert_array_equal(relu_backward(gy, y), (x > 0).astype(float))


def test_backward_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        relu_backward(np.ones(3), np.ones(4))


def test_matches_pytorch():
    """torch.relu and its gradient (NaN, ±0 and infinities included), stored by
    bench/torch_fixtures.py."""
    x, gy = reference.load("relu/x"), reference.load("relu/gy")
    y = relu_forward(x)
    np.testing.assert_array_equal(y, reference.load("relu/y"))
    np.testing.assert_array_equal(relu_backward(gy, y), reference.load("relu/gx"))


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 5, 7, 9), (2, 4, 75, 100), (2, 3, 17),
                                   (4, 6)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_with_channel_sums_equals_the_two_kernels(shape, dtype):
    """The fused pass: relu_backward's gradient and channel_sums' float64 sums of it, bit for
    bit (the bias gradient of a Conv2d with relu=True), NaN, ±0 and infinities planted."""
    rng = np.random.default_rng(5)
    y = relu_forward(rng.standard_normal(shape).astype(dtype))
    gy = rng.standard_normal(shape).astype(dtype)
    flat_y, flat_g = y.reshape(-1), gy.reshape(-1)
    flat_y[:3] = np.array([np.nan, 0.0, np.inf], dtype)[:flat_y.size]
    flat_g[-2:] = np.array([np.nan, -np.inf], dtype)[-flat_g.size:]
    gx, sums = relu.relu_backward_channel_sums(gy, y, impl="cpu")
    want = relu_backward(gy, y, impl="cpu")
    np.testing.assert_array_equal(gx, want)
    assert gx.dtype == dtype and sums.dtype == np.float64
    np.testing.assert_array_equal(sums, channel_sums(want))
    ref_gx, ref_sums = relu.relu_backward_channel_sums(gy, y, impl="reference")
    np.testing.assert_array_equal(ref_gx, want)
    np.testing.assert_allclose(ref_sums, sums, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_backward_with_channel_sums_strided_and_bad_shapes():
    rng = np.random.default_rng(6)
    y = relu_forward(rng.standard_normal((4, 6, 5, 8)))[:, ::2, :, 1::3]
    gy = rng.standard_normal((4, 6, 5, 8))[:, 1::2, :, ::3]
    gx, sums = relu.relu_backward_channel_sums(gy, y)
    np.testing.assert_array_equal(gx, np.where(y > 0, gy, 0))
    np.testing.assert_allclose(sums, gx.sum(axis=(0, 2, 3)), rtol=1e-12)
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(3, 5\)"):
        relu.relu_backward_channel_sums(np.ones((3, 4)), np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"\(N, C, \.\.\.\)"):
        relu.relu_backward_channel_sums(np.ones(3), np.ones(3))
