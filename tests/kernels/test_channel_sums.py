"""channel_sums (a convolution's bias gradient) against NumPy's float64 sums."""
import numpy as np
import pytest

from kernels.channel_sums import channel_sums


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 5, 7, 9), (32, 16, 8, 8), (2, 3, 17),
                                   (4, 6), (2, 4, 3, 5, 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_numpy_float64_sums(shape, dtype):
    a = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    axes = (0,) + tuple(range(2, len(shape)))
    want = a.sum(axis=axes, dtype=np.float64)
    got = channel_sums(a)
    assert got.dtype == np.float64 and got.shape == (shape[1],)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_strided_input_and_same_result_every_run():
    a = np.random.default_rng(1).standard_normal((8, 12, 20, 30)).astype(np.float32)
    view = a[:, ::2, 3:, ::3]   # not contiguous
    np.testing.assert_allclose(channel_sums(view), view.sum(axis=(0, 2, 3), dtype=np.float64),
                               rtol=1e-12)
    first = channel_sums(a)
    for _ in range(3):
        assert np.array_equal(channel_sums(a), first)
