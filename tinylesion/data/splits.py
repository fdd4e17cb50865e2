"""Train/validation/test splits stratified by class and grouped by lesion."""
import numpy as np

from .datasets import Subset


def _check_fractions(fractions):
    try:
        if isinstance(fractions, str):
            raise TypeError
        fractions = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ValueError(f"fractions must be 2 or 3 numbers such as (0.8, 0.1, 0.1), got "
                         f"{fractions!r}") from None
    if len(fractions) not in (2, 3):
        raise ValueError(f"fractions must have 2 or 3 values, got {len(fractions)}: {fractions}")
    if any(not f > 0 for f in fractions):
        raise ValueError(f"every fraction must be > 0, got {fractions}")
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {fractions} (sum {sum(fractions):g})")
    return np.array(fractions)


def group_labels(targets, groups):
    """(group ids, the class of each group): its most frequent class, the smallest on a tie."""
    targets = np.asarray(targets, dtype=np.int64)
    ids, inverse = np.unique(np.asarray(groups), return_inverse=True)
    counts = np.zeros((len(ids), int(targets.max()) + 1 if len(targets) else 1), np.int64)
    np.add.at(counts, (inverse, targets), 1)
    return ids, counts.argmax(axis=1)


def _fill_empty(split_of_group, sizes, labels, fr):
    """Give every empty split one group, taken from the split furthest above its share.

    NOTE: with few samples the per-class rule can leave a split with nothing (12 images at
    80/10/10: every class's share of the test split is under one image). The group moved is
    the smallest of the donor split, of its most frequent class there, so that the donor keeps
    its proportions as well as it can; donors keep at least one group each.
    """
    k = len(fr)
    for s in range(k):
        if np.any(split_of_group == s):
            continue
        count = np.bincount(split_of_group, minlength=k)
        surplus = np.bincount(split_of_group, weights=sizes, minlength=k) - fr * sizes.sum()
        surplus[count < 2] = -np.inf
        donor = int(np.argmax(surplus))
        members = np.flatnonzero(split_of_group == donor)
        common = np.bincount(labels[members])[labels[members]]
        # the smallest group; among those, of the donor's most frequent class; then the first
        g = members[np.lexsort((-common, sizes[members]))[0]]
        split_of_group[g] = s


def split_indices(targets, groups, fractions=(0.8, 0.1, 0.1), seed=0):
    """Sorted index arrays, one per fraction, stratified by class, never splitting a group.

    NOTE: for each class, its groups (in an order shuffled by seed, larger groups first) go one
    at a time to the split furthest below its share of that class's samples, so that each
    split's class proportions stay close to the whole's and no group is cut in two. Every
    split gets at least one group (ValueError when there are fewer groups than splits).
    """
    fr = _check_fractions(fractions)
    targets = np.asarray(targets, dtype=np.int64)
    groups = np.asarray(groups)
    if targets.shape != groups.shape or targets.ndim != 1:
        raise ValueError(f"targets {targets.shape} and groups {groups.shape} must be two "
                         "1-d arrays of the same length")
    if len(targets) and targets.min() < 0:
        raise ValueError(f"targets must be >= 0, found {targets.min()}")
    rng = np.random.default_rng(seed)
    ids, labels = group_labels(targets, groups)
    if len(ids) < len(fr):
        raise ValueError(f"cannot split {len(targets)} samples of {len(ids)} groups (lesions) "
                         f"into {len(fr)} non-empty parts: a group is never cut in two")
    sizes = np.bincount(np.searchsorted(ids, groups), minlength=len(ids))
    split_of_group = np.empty(len(ids), np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        members = members[rng.permutation(len(members))]
        members = members[np.argsort(-sizes[members], kind="stable")]
        want = fr * sizes[members].sum()
        have = np.zeros(len(fr))
        for g in members:
            s = int(np.argmax(want - have))  # the first split on a tie
            split_of_group[g] = s
            have[s] += sizes[g]
    _fill_empty(split_of_group, sizes, labels, fr)
    sample_split = split_of_group[np.searchsorted(ids, groups)]
    return tuple(np.flatnonzero(sample_split == s) for s in range(len(fr)))


def split_by_lesion(ds, fractions=(0.8, 0.1, 0.1), seed=0):
    """Split a dataset into (train, val, test) Subsets (or two with two fractions).

    Stratified by class and grouped by ds.groups (lesion_id for HAM10000), so that no lesion is
    in two splits; a lesion's class is its most frequent one. Deterministic in seed.
    """
    parts = split_indices(ds.targets, ds.groups, fractions, seed)
    return tuple(Subset(ds, idx) for idx in parts)
