"""channel_sums (a convolution's bias gradient) against NumPy's float64 sums."""
import math

import numpy as np
import pytest

from kernels.channel_sums import LANES, SHORT, channel_sums


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
    """The documented order, plainly. Shorter than SHORT: eight float64 lanes (lane j: p[j],
    p[j + 8], ...), the lanes added pairwise, then the tail. Otherwise LANES lanes, the tail
    p[k:] into lanes 0, 1, ..., then the lanes added pairwise (lane j + h into lane j)."""
    width = 8 if p.size < SHORT else LANES
    rows = p.size // width
    acc = np.zeros(width)
    for row in p[:width * rows].reshape(rows, width).astype(np.float64):
        acc += row
    tail = p[width * rows:].astype(np.float64)
    if width == 8:
        rest = 0.0
        for v in tail:
            rest += float(v)
        return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) \
            + rest
    acc[:tail.size] += tail
    h = width // 2
    while h:
        acc[:h] += acc[h:2 * h]
        h //= 2
    return acc[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("plane", [61, SHORT - 1, SHORT, SHORT + 37, 7500])
def test_bits_follow_the_fixed_order(dtype, plane):
    # NOTE: signed terms over ten decades, so that float64 sums round (and each order's
    # rounding differs): with values of one scale they are often exact in any order
    rng = np.random.default_rng(2)
    a = (rng.choice([-1.0, 1.0], (3, 4, plane)) * 10.0 ** rng.uniform(-5, 5, (3, 4, plane)))
    a = a.astype(dtype)
    want = [sum((_lane_sums(a[n, c]) for n in range(1, 3)), _lane_sums(a[0, c]))
            for c in range(4)]
    assert np.array_equal(channel_sums(a), np.array(want))
    if plane >= SHORT:
        other = [sum(_eight_lanes(a[n, c]) for n in range(3)) for c in range(4)]
        assert not np.array_equal(np.array(want), np.array(other))


def _eight_lanes(p):
    """The eight-lane order every plane took before the long-plane path (kept to compare)."""
    rows = p.size // 8
    acc = np.zeros(8)
    for row in p[:8 * rows].reshape(rows, 8).astype(np.float64):
        acc += row
    return acc.sum() + float(p[8 * rows:].astype(np.float64).sum())


def test_long_planes_at_least_as_accurate_as_eight_lanes():
    # NOTE: positive terms spread over eight decades: the running sums grow large against the
    # small terms, whose low bits each order rounds away differently; math.fsum is exact
    rng = np.random.default_rng(3)
    a = (10.0 ** rng.uniform(-4, 4, (1, 16, 50176))).astype(np.float32)
    total = a.sum(axis=(0, 2), dtype=np.float64)
    exact = np.array([math.fsum(a[0, c].astype(np.float64).tolist()) for c in range(16)])
    err = np.abs(channel_sums(a) - exact) / total
    err8 = np.abs(np.array([_eight_lanes(a[0, c]) for c in range(16)]) - exact) / total
    assert err.max() <= err8.max() and err.mean() <= err8.mean()
    assert err.max() < 4e-16 < err8.max()  # measured: 1.4e-16 against 8.2e-16
