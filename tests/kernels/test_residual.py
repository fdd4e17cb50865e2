"""kernels/residual.py: relu(out + shortcut) in place, against the sum then the ReLU."""
import numpy as np
import pytest

from kernels import residual


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (1, 256, 56, 56), (2, 64, 9, 9)])
def test_add_relu_into_is_the_sum_then_the_relu(dtype, shape):
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    a.reshape(-1)[:3] = [np.nan, -np.inf, np.inf]
    expected = np.maximum(a + b, 0)   # (maximum propagates NaN, as the ReLU does)
    out = a.copy()
    assert residual.add_relu_into(out, b) is out
    np.testing.assert_array_equal(out, expected)
    assert (out.size > residual.SERIAL_MAX) == (np.prod(shape) > residual.SERIAL_MAX)


def test_a_strided_shortcut_is_read_as_it_stands():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    b = rng.standard_normal((1, 8, 6, 6)).astype(np.float32).transpose(0, 1, 3, 2)
    expected = np.maximum(a + b, 0)
    np.testing.assert_array_equal(residual.add_relu_into(a, b), expected)


@pytest.mark.parametrize("other", [np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float64),
                                   np.zeros((3, 2), np.int32)])
def test_mismatched_arrays_are_refused(other):
    with pytest.raises(ValueError, match="add_relu_into"):
        residual.add_relu_into(np.zeros((3, 2), np.float32) if other.dtype != np.int32
                               else np.zeros((3, 2), np.int32), other)
