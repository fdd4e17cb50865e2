"""split_by_lesion: no lesion in two splits, class proportions kept, deterministic in seed."""
import numpy as np
import pytest

from tinylesion.data import HAM10000, Subset, split_by_lesion
from tinylesion.data.splits import group_labels, split_indices

HAM_COUNTS = np.array([327, 514, 1099, 115, 1113, 6705, 142])


def lesion_like(seed=0, images=10015):
    """targets and groups shaped like HAM10000: its class counts, 1 to 6 images per lesion."""
    rng = np.random.default_rng(seed)
    targets = np.repeat(np.arange(7), HAM_COUNTS * images // HAM_COUNTS.sum())
    groups, g, i = np.empty(len(targets), np.int64), 0, 0
    while i < len(targets):
        size = min(int(rng.choice([1, 1, 1, 2, 2, 3, 6])), len(targets) - i)
        size = max(1, int(np.sum(targets[i:i + size] == targets[i])))  # one class per lesion
        groups[i:i + size] = g
        g, i = g + 1, i + size
    shuffle = rng.permutation(len(targets))
    return targets[shuffle], rng.permutation(g)[groups[shuffle]]


def test_no_group_in_two_splits_and_every_sample_once():
    targets, groups = lesion_like()
    parts = split_indices(targets, groups, (0.7, 0.1, 0.2), seed=3)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(targets)))
    for a in range(3):
        assert np.all(np.diff(parts[a]) > 0)                      # sorted, no repeats
        for b in range(a + 1, 3):
            assert not set(groups[parts[a]]) & set(groups[parts[b]])


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.1), (0.7, 0.1, 0.2), (0.75, 0.25)])
def test_sizes_and_class_proportions_follow_the_whole(fractions):
    targets, groups = lesion_like(seed=1)
    parts = split_indices(targets, groups, fractions, seed=0)
    assert len(parts) == len(fractions)
    whole = np.bincount(targets, minlength=7) / len(targets)
    for idx, f in zip(parts, fractions):
        assert abs(len(idx) / len(targets) - f) < 0.01
        share = np.bincount(targets[idx], minlength=7) / len(idx)
        assert np.abs(share - whole).max() < 0.01
        # every class, even the smallest (115 images), reaches every split
        assert np.all(np.bincount(targets[idx], minlength=7) > 0)


def test_deterministic_in_seed():
    targets, groups = lesion_like(images=2000)
    a = split_indices(targets, groups, seed=5)
    b = split_indices(targets, groups, seed=5)
    c = split_indices(targets, groups, seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_group_class_is_its_majority():
    targets = np.array([2, 1, 1, 0, 3, 3])
    groups = np.array([7, 7, 7, 4, 9, 9])
    ids, labels = group_labels(targets, groups)
    assert ids.tolist() == [4, 7, 9] and labels.tolist() == [0, 1, 3]
    ids, labels = group_labels(np.array([2, 1]), np.array([5, 5]))   # a tie: the smaller
    assert labels.tolist() == [1]


def test_split_by_lesion_on_a_dataset(synthetic_ham):
    ds = HAM10000(synthetic_ham, image_size=(32, 24))
    train, val, test = split_by_lesion(ds, (0.6, 0.2, 0.2), seed=0)
    assert all(isinstance(s, Subset) and s.dataset is ds for s in (train, val, test))
    assert len(train) + len(val) + len(test) == len(ds)
    lesions = [{m["lesion_id"] for m in s.metadata} for s in (train, val, test)]
    assert not (lesions[0] & lesions[1] or lesions[0] & lesions[2] or lesions[1] & lesions[2])
    assert set(train.targets.tolist()) == set(range(7))        # every class is trained on
    assert train.load(0).shape == (24, 32, 3)
    two = split_by_lesion(ds, (0.5, 0.5), seed=1)
    assert len(two) == 2 and len(two[0]) + len(two[1]) == len(ds)


@pytest.mark.parametrize("fractions, match", [
    ((0.8, 0.1), "sum to 1"), ((0.5, 0.2, 0.2, 0.1), "2 or 3"), ((1.2, -0.2), "> 0"),
    ((1.0,), "2 or 3"), ((0.9, 0.1, 0.0), "> 0"),
    ("80/10/10", r"2 or 3 numbers such as \(0.8, 0.1, 0.1\), got '80/10/10'"),
    ("111", "2 or 3 numbers"), (None, "2 or 3 numbers")])
def test_bad_fractions(fractions, match):
    targets, groups = lesion_like(images=200)
    with pytest.raises(ValueError, match=match):
        split_indices(targets, groups, fractions)


def test_mismatched_inputs():
    with pytest.raises(ValueError, match="same length"):
        split_indices(np.zeros(5, int), np.zeros(4, int))
    with pytest.raises(ValueError, match="cannot split 2 samples"):
        split_indices(np.zeros(2, int), np.arange(2))


def test_few_samples_still_fill_every_split():
    # 12 images of 3 classes at 80/10/10: each class's share of val and test is under one
    # image, so the per-class rule alone leaves the test split empty
    targets = np.array([5] * 6 + [4] * 3 + [2] * 3)
    parts = split_indices(targets, np.arange(12), (0.8, 0.1, 0.1), seed=0)
    assert [len(p) for p in parts] == [10, 1, 1]
    assert sorted(np.concatenate(parts).tolist()) == list(range(12))


def test_fewer_groups_than_splits_is_a_clear_error():
    with pytest.raises(ValueError, match="3 samples of 2 groups .* 3 non-empty parts"):
        split_indices([0, 0, 1], [0, 0, 1], (0.8, 0.1, 0.1))
    assert [len(p) for p in split_indices([0, 1], [0, 1], (0.5, 0.5))] == [1, 1]
