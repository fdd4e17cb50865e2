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


def _lane_sums(p):
    """The documented order, plainly: eight float64 lanes (lane j: p[j], p[j + 8], ...), the
    lanes added pairwise, then the tail."""
    rows = p.size // 8
    acc = np.zeros(8)
    for row in p[:8 * rows].reshape(rows, 8).astype(np.float64):
        acc += row
    rest = 0.0
    for v in p[8 * rows:]:
        rest += float(v)
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + rest


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bits_follow_the_fixed_order(dtype):
    a = (np.random.default_rng(2).standard_normal((3, 4, 61)) * 1e3).astype(dtype)
    want = [sum((_lane_sums(a[n, c]) for n in range(1, 3)), _lane_sums(a[0, c]))
            for c in range(4)]
    assert np.array_equal(channel_sums(a), np.array(want))
