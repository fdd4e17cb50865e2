"""class_weights (the seeds' formula) and OversampleSampler (counts, originals, reshuffles)."""
import numpy as np
import pytest

from tinylesion.data import OversampleSampler, class_weights


def test_class_weights_formula():
    y = np.array([0] * 6 + [1] * 3 + [2] * 1)
    w = class_weights(y)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w, [10 / (3 * 6), 10 / (3 * 3), 10 / (3 * 1)], rtol=1e-6)
    np.testing.assert_allclose(class_weights(y, const=0.1), w - 0.1, rtol=1e-6)
    np.testing.assert_array_equal(class_weights(y, mode="none"), [1, 1, 1])
    assert class_weights(y, mode="none", num_classes=5).shape == (5,)
    # the weighted count of every class is the same: n_c * w_c = N / K
    np.testing.assert_allclose(np.bincount(y) * w, 10 / 3, rtol=1e-6)


def test_class_weights_match_scikit_learn():
    import sklearn.utils as utils     # in the test extra: missing is a failure, not a skip
    y = np.random.default_rng(0).choice(7, size=500, p=[.03, .05, .11, .01, .11, .67, .02])
    ref = utils.compute_class_weight("balanced", classes=np.arange(7), y=y)
    np.testing.assert_allclose(class_weights(y, num_classes=7), ref, rtol=1e-6)


def test_class_weights_accepts_a_dataset_and_lists():
    class Fake:
        targets = np.array([1, 1, 0])
    np.testing.assert_allclose(class_weights(Fake()), [1.5, 0.75])
    np.testing.assert_allclose(class_weights([1, 1, 0]), [1.5, 0.75])


def test_class_weights_errors():
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have no samples"):
        class_weights([0, 2, 2])
    with pytest.raises(ValueError, match="num_classes"):
        class_weights([0, 5], num_classes=3)
    with pytest.raises(ValueError, match=">= 0"):
        class_weights([0, -1])
    with pytest.raises(ValueError, match="mode"):
        class_weights([0, 1], mode="sqrt")
    with pytest.raises(ValueError, match="integers"):
        class_weights([0.5, 1.0])
    with pytest.raises(ValueError, match="non-empty"):
        class_weights([])


def test_oversampler_counts_and_originals():
    y = np.array([0] * 10 + [1] * 3 + [2] * 7 + [3] * 1)
    s = OversampleSampler(y, seed=0)
    assert len(s) == 40
    for epoch in range(3):
        idx = s.indices(epoch)
        assert idx.dtype == np.int64 and len(idx) == len(s)
        np.testing.assert_array_equal(np.bincount(y[idx]), [10, 10, 10, 10])
        draws = np.bincount(idx, minlength=len(y))
        assert draws.min() >= 1                         # every original at least once
        for c in range(4):                              # repeats spread evenly in a class
            members = draws[y == c]
            assert members.max() - members.min() <= 1
        assert np.array_equal(draws[y == 0], np.ones(10))   # the majority is not oversampled
    np.testing.assert_array_equal(s.counts(1), [10, 10, 10, 10])


def test_oversampler_reshuffles_by_seed_and_epoch():
    y = np.array([0] * 20 + [1] * 5 + [2] * 3)
    a, b = OversampleSampler(y, seed=1), OversampleSampler(y, seed=1)
    assert np.array_equal(a.indices(4), b.indices(4))
    assert not np.array_equal(a.indices(0), a.indices(1))
    assert not np.array_equal(a.indices(0), OversampleSampler(y, seed=2).indices(0))
    # the extras of class 1 (15 draws of 5 images: 3 rounds) and class 2 differ between epochs
    extras = [np.sort(a.indices(e)[y[a.indices(e)] == 2]) for e in range(6)]
    assert len({tuple(e) for e in extras}) > 1


def test_oversampler_skips_absent_labels_and_checks_input():
    s = OversampleSampler([4, 4, 7])
    assert len(s) == 4 and sorted(s.indices(0).tolist()) == [0, 1, 2, 2]
    with pytest.raises(ValueError, match=">= 0"):
        OversampleSampler([0, -3])
