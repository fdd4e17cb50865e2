"""Tests of tinylesion.metrics: small examples by hand, and random data against scikit-learn."""
import json
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from tinylesion import metrics as M

# NOTE: scikit-learn is in the test extra (setup.py); a plain import, so that a missing
# reference fails the run instead of skipping every comparison with it.
import sklearn.metrics as skm  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def labels_pair(draw, min_k=2, max_k=5, max_n=40):
    """(y_true, y_pred, K): random labels, sometimes with missing classes or one predicted class."""
    K = draw(st.integers(min_k, max_k))
    n = draw(st.integers(1, max_n))
    hi_true = draw(st.integers(0, K - 1))            # classes above hi_true never occur
    y_true = np.array(draw(st.lists(st.integers(0, hi_true), min_size=n, max_size=n)))
    if draw(st.booleans()):
        y_pred = np.full(n, draw(st.integers(0, K - 1)))     # a single class in y_pred
    else:
        y_pred = np.array(draw(st.lists(st.integers(0, K - 1), min_size=n, max_size=n)))
    return y_true, y_pred, K


@st.composite
def scored(draw, min_k=2, max_k=5, max_n=40):
    """(y_true, y_score (N, K) rows summing to 1 with many ties, K)."""
    K = draw(st.integers(min_k, max_k))
    n = draw(st.integers(2, max_n))
    y = np.array(draw(st.lists(st.integers(0, K - 1), min_size=n, max_size=n)))
    raw = np.array(draw(st.lists(st.integers(1, 4), min_size=n * K, max_size=n * K)), float)
    score = raw.reshape(n, K)
    return y, score / score.sum(axis=1, keepdims=True), K


def quiet(f, *a, **kw):
    """Call a scikit-learn function with its undefined-metric warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*a, **kw)


def pairwise_auc(y, s):
    """AUC by its definition: P(score_pos > score_neg) + P(tie) / 2 over all pairs."""
    pos, neg = s[y == 1], s[y == 0]
    d = pos[:, None] - neg[None, :]
    return float(np.mean((d > 0) + 0.5 * (d == 0)))


# ---------------------------------------------------------------------------------------------
# By hand
# ---------------------------------------------------------------------------------------------

def test_hand_example_three_classes():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    assert M.accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    assert M.confusion_matrix(y_true, y_pred, 3).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    cmn = M.confusion_matrix(y_true, y_pred, 3, normalize="true")
    np.testing.assert_allclose(cmn, [[2 / 3, 1 / 3, 0], [0, 0.5, 0.5], [0, 0, 1]])
    assert M.balanced_accuracy(y_true, y_pred) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    prf = M.precision_recall_f1(y_true, y_pred, 3)
    # class 0: tp 2, fp 0, fn 1; class 1: tp 1, fp 1, fn 1; class 2: tp 1, fp 1, fn 0
    assert prf[0] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert prf[1] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert prf[2] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    assert M.macro_f1(y_true, y_pred) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert M.weighted_f1(y_true, y_pred) == pytest.approx((3 * 0.8 + 2 * 0.5 + 2 / 3) / 6)


def test_hand_zero_division_and_absent_class():
    # class 2 is never true and never predicted; class 1 is never predicted.
    y_true, y_pred = np.array([0, 1, 1]), np.array([0, 0, 0])
    prf = M.precision_recall_f1(y_true, y_pred, 3)
    assert prf[1] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert prf[2] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert prf[0]["precision"] == pytest.approx(1 / 3)
    # macro F1 averages classes 0 and 1 only (class 2 occurs nowhere).
    assert M.macro_f1(y_true, y_pred, 3) == pytest.approx((0.5 + 0.0) / 2)
    assert M.confusion_matrix(y_true, y_pred, 3, "true")[2].tolist() == [0, 0, 0]
    # a class only predicted does not count in balanced accuracy
    assert M.balanced_accuracy([0, 0], [0, 1]) == pytest.approx(0.5)


def test_hand_roc_with_ties():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.4, 0.8, 0.8, 0.9])
    fpr, tpr, thr = M.roc_curve(y, s)
    assert thr.tolist() == [np.inf, 0.9, 0.8, 0.4, 0.1]
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 1 / 3, 2 / 3, 1])
    # pairs (pos, neg): 0.4 beats 0.1, ties 0.4; 0.8 beats 0.1, 0.4, ties 0.8; 0.9 beats all
    assert M.roc_auc(y, s) == pytest.approx((1.5 + 2.5 + 3) / 9)
    assert M.roc_auc(y, np.stack([1 - s, s], axis=1)) == pytest.approx((1.5 + 2.5 + 3) / 9)


def test_hand_sensitivity_specificity_and_baseline():
    y_true = np.array([1, 1, 1, 0, 0])
    y_pred = np.array([1, 0, 1, 0, 1])
    assert M.sensitivity_specificity(y_true, y_pred) == pytest.approx((2 / 3, 1 / 2))
    assert M.sensitivity_specificity(y_true, y_pred, positive=0) == pytest.approx((1 / 2, 2 / 3))
    assert M.majority_baseline([2, 2, 1, 0], [2, 1, 2, 2]) == pytest.approx(0.75)
    assert M.majority_baseline([1, 0], [0, 0, 1]) == pytest.approx(2 / 3)   # tie: smallest


def test_multiclass_auc_skips_absent_class():
    y = np.array([0, 0, 1, 1])
    s = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.8, 0.1], [0.5, 0.4, 0.1]])
    want = np.mean([pairwise_auc((y == k).astype(int), s[:, k]) for k in (0, 1)])
    assert M.roc_auc(y, s) == pytest.approx(want)


# ---------------------------------------------------------------------------------------------
# Against scikit-learn
# ---------------------------------------------------------------------------------------------

@SETTINGS
@given(labels_pair())
def test_label_metrics_match_sklearn(data):
    y_true, y_pred, K = data
    labels = list(range(K))
    assert M.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert M.balanced_accuracy(y_true, y_pred) == pytest.approx(
        quiet(skm.balanced_accuracy_score, y_true, y_pred))
    np.testing.assert_array_equal(M.confusion_matrix(y_true, y_pred, K),
                                  skm.confusion_matrix(y_true, y_pred, labels=labels))
    np.testing.assert_allclose(
        M.confusion_matrix(y_true, y_pred, K, normalize="true"),
        quiet(skm.confusion_matrix, y_true, y_pred, labels=labels, normalize="true"))
    p, r, f, s = quiet(skm.precision_recall_fscore_support, y_true, y_pred, labels=labels)
    got = M.precision_recall_f1(y_true, y_pred, K)
    assert sorted(got) == labels
    for k in labels:
        assert got[k] == pytest.approx({"precision": p[k], "recall": r[k], "f1": f[k],
                                        "support": s[k]})
    assert M.macro_f1(y_true, y_pred, K) == pytest.approx(
        quiet(skm.f1_score, y_true, y_pred, average="macro"))
    assert M.weighted_f1(y_true, y_pred, K) == pytest.approx(
        quiet(skm.f1_score, y_true, y_pred, average="weighted"))
    for positive in (0, 1):
        sens, spec = M.sensitivity_specificity(y_true, y_pred, positive)
        t, q = (y_true == positive).astype(int), (y_pred == positive).astype(int)
        assert sens == pytest.approx(quiet(skm.recall_score, t, q, pos_label=1, zero_division=0))
        assert spec == pytest.approx(quiet(skm.recall_score, t, q, pos_label=0, zero_division=0))


@SETTINGS
@given(labels_pair())
def test_majority_baseline_matches_dummy_classifier(data):
    from sklearn.dummy import DummyClassifier
    y_train, y_eval, _ = data
    dummy = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(y_train), 1)), y_train)
    want = skm.accuracy_score(y_eval, dummy.predict(np.zeros((len(y_eval), 1))))
    assert M.majority_baseline(y_train, y_eval) == pytest.approx(want)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.25, 0.5, 0.7, 1.0])),
                min_size=2, max_size=40))
def test_roc_curve_and_auc_match_sklearn(pairs):
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs])
    assume(0 < y.sum() < len(y))
    for drop in (False, True):
        got = M.roc_curve(y, s, drop_intermediate=drop)
        want = skm.roc_curve(y, s, drop_intermediate=drop)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b)
    auc = M.roc_auc(y, s)
    assert auc == pytest.approx(skm.roc_auc_score(y, s))
    assert auc == pytest.approx(pairwise_auc(y, s))


@SETTINGS
@given(scored(min_k=3))
def test_multiclass_auc_matches_sklearn_ovr(data):
    y, s, K = data
    present = np.unique(y)
    assume(present.size >= 2)
    got = M.roc_auc(y, s)
    per_class = [skm.roc_auc_score((y == k).astype(int), s[:, k]) for k in present]
    assert got == pytest.approx(np.mean(per_class))
    if present.size == K:
        assert got == pytest.approx(skm.roc_auc_score(y, s, multi_class="ovr", average="macro"))


@SETTINGS
@given(scored(max_k=4))
def test_evaluate_consistent_and_json(data):
    y, s, K = data
    names = [f"c{k}" for k in range(K)]
    out = M.evaluate(y, s, names, y_true_train=y)
    json.dumps(out, allow_nan=False)
    y_pred = s.argmax(axis=1)
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, y_pred))
    assert out["balanced_accuracy"] == pytest.approx(
        quiet(skm.balanced_accuracy_score, y, y_pred))
    assert out["macro_f1"] == pytest.approx(quiet(skm.f1_score, y, y_pred, average="macro"))
    assert out["weighted_f1"] == pytest.approx(
        quiet(skm.f1_score, y, y_pred, average="weighted"))
    assert out["confusion_matrix"] == skm.confusion_matrix(y, y_pred, labels=range(K)).tolist()
    assert list(out["per_class"]) == names and out["class_names"] == names
    assert sum(v["support"] for v in out["per_class"].values()) == len(y)
    present = np.unique(y)
    if present.size < 2:
        assert out["roc_auc"] is None
    elif K == 2:
        assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s[:, 1]))
        assert out["roc_auc"] == pytest.approx(pairwise_auc(y, s[:, 1]))
    else:   # one-vs-rest, averaged over the classes present (scikit-learn's, per class)
        assert out["roc_auc"] == pytest.approx(np.mean(
            [skm.roc_auc_score((y == k).astype(int), s[:, k]) for k in present]))
    assert ("sensitivity" in out) == (K == 2)
    for v in out.values():
        assert not isinstance(v, np.generic | np.ndarray)
    text = M.classification_report(out)
    assert all(n in text for n in names) and "macro avg" in text


def test_evaluate_binary_vector_scores():
    y = np.array([0, 1, 1, 0, 1])
    s = np.array([0.2, 0.5, 0.9, 0.6, 0.1])            # 0.5 counts as positive
    out = M.evaluate(y, s, ["benign", "melanoma"])
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert out["sensitivity"] == pytest.approx(2 / 3)
    assert out["specificity"] == pytest.approx(1 / 2)
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert out["confusion_matrix"] == [[1, 1], [1, 2]]
    assert out["per_class"]["melanoma"]["support"] == 3
    report = M.classification_report(out)
    assert "sensitivity" in report and "melanoma" in report


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: M.accuracy([0, 1], [0]), "differ in length"),
    (lambda: M.accuracy([], []), "empty"),
    (lambda: M.accuracy([0.5, 1], [0, 1]), "integer class labels"),
    (lambda: M.accuracy([[0, 1]], [[0, 1]]), "1-D"),
    (lambda: M.confusion_matrix([0, -1], [0, 0]), "negative"),
    (lambda: M.confusion_matrix([0, 3], [0, 0], num_classes=3), "num_classes is 3"),
    (lambda: M.confusion_matrix([0, 1], [0, 0], normalize="all"), "normalize"),
    (lambda: M.roc_curve([1, 1], [0.2, 0.3]), "both positive and negative"),
    (lambda: M.roc_curve([0, 2], [0.2, 0.3]), "0/1"),
    (lambda: M.roc_auc([0, 0], [0.2, 0.3]), "only one class"),
    (lambda: M.roc_auc([0, 1], [0.2, np.nan]), "NaN"),
    (lambda: M.roc_auc([0, 1, 3], np.ones((3, 3)) / 3), "only 3 columns"),
    (lambda: M.evaluate([0, 1], np.ones((2, 3)) / 3, ["a", "b"]), "3 columns"),
    (lambda: M.evaluate([0, 1], [0.2, 0.7], ["a", "b", "c"]), "binary"),
    (lambda: M.evaluate([0, 1], np.ones((2, 2)) / 2, ["a", "a"]), "duplicates"),
    (lambda: M.evaluate([0, 2], np.ones((2, 2)) / 2, ["a", "b"]), "label 2"),
    (lambda: M.classification_report({"accuracy": 1.0}), "lacks"),
])
def test_bad_input_gives_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
