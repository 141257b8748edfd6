import numpy as np
import pytest
from sklearn import metrics as skm

from skinlib.evaluation import expected_calibration_error
from skinlib.evaluation import check_predictions, choose_threshold, evaluate
from skinlib.evaluation import compare, conclusion


def _fixed():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(80, int), np.ones(20, int)]
    p = np.clip(rng.normal(0.3 + 0.3 * y, 0.15), 0, 1)
    return y, p


def test_evaluate_matches_scikit_learn():
    y, p = _fixed()
    m = evaluate(y, p, threshold=0.5, n_boot=200, seed=1)
    pred = (p >= 0.5).astype(int)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["sensitivity"] == pytest.approx(skm.recall_score(y, pred))
    assert m["specificity"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["majority_accuracy"] == 0.8
    np.testing.assert_array_equal(m["confusion"], skm.confusion_matrix(y, pred))
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == tuple(skm.confusion_matrix(y, pred).ravel())
    assert m["roc_auc_low"] < m["roc_auc"] < m["roc_auc_high"]
    # the interval is reproducible for a seed
    assert evaluate(y, p, n_boot=200, seed=1)["roc_auc_low"] == m["roc_auc_low"]


def test_majority_answer_has_high_accuracy_but_auc_half():
    y = np.r_[np.zeros(98, int), np.ones(2, int)]
    m = evaluate(y, np.full(100, 0.1), n_boot=0)
    assert m["accuracy"] == m["majority_accuracy"] == 0.98
    assert m["roc_auc"] == 0.5 and m["sensitivity"] == 0.0 and m["balanced_accuracy"] == 0.5


def test_single_class_gives_nan_with_warning():
    with pytest.warns(UserWarning, match="only benign"):
        m = evaluate([0, 0, 0], [0.1, 0.7, 0.2])
    assert np.isnan(m["roc_auc"]) and np.isnan(m["balanced_accuracy"]) and np.isnan(m["sensitivity"])
    assert m["specificity"] == pytest.approx(2 / 3)
    with pytest.warns(UserWarning):
        assert choose_threshold([1, 1], [0.2, 0.9]) == 0.5


def test_choose_threshold_maximises_youden():
    y, p = _fixed()
    t = choose_threshold(y, p)
    j = lambda thr: evaluate(y, p, thr, n_boot=0)["sensitivity"] + evaluate(y, p, thr, n_boot=0)["specificity"]
    assert all(j(t) >= j(other) - 1e-12 for other in np.linspace(0.05, 0.95, 19))


def test_bad_inputs():
    with pytest.raises(ValueError, match="3 values but y_prob has 2"):
        evaluate([0, 1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="0 \\(benign\\) and 1"):
        evaluate([0, 2], [0.2, 0.3])


def test_compare_is_one_row_per_run():
    y, p = _fixed()
    table = compare({"good": evaluate(y, p, n_boot=0), "random": evaluate(y, np.full(100, 0.5), n_boot=0)})
    assert list(table.index) == ["good", "random"]
    assert "confusion" not in table.columns
    # the calibration columns come last: the columns before them keep their places
    assert list(table.columns[-2:]) == ["brier", "ece"]
    assert list(table.columns[:4]) == ["n", "n_malignant", "roc_auc", "roc_auc_low"]
    assert table.loc["random", "brier"] == pytest.approx(0.25)
    assert table.loc["random", "ece"] == pytest.approx(abs(0.5 - 0.2))
    assert table.loc["random", "roc_auc"] == 0.5 and table.loc["good", "roc_auc"] > 0.8


def test_conclusion_follows_the_numbers():
    y, p = _fixed()
    table = compare({"good": evaluate(y, p, n_boot=300), "blank": evaluate(y, np.full(100, 0.5), n_boot=300)})
    text = conclusion(table)
    assert "**good** ranks images better than chance" in text
    assert "**blank** is indistinguishable from chance" in text
    assert "**good** is clearly better than **blank**" in text
    assert f"accuracy {table.loc['good', 'accuracy']:.2f} against 0.80" in text
    # two similar runs: the intervals overlap, and it says so
    nudged = np.clip(p + 0.01 * np.sin(np.arange(100)), 0, 1)  # clipped: still probabilities
    near = compare({"a": evaluate(y, p, n_boot=300), "b": evaluate(y, nudged, n_boot=300)})
    assert "interval overlaps" in conclusion(near)


def test_brier_and_ece_by_hand():
    y, p = [0, 0, 1, 1], [0.15, 0.42, 0.35, 0.85]
    m = evaluate(y, p, n_boot=0)
    # mean squared gap between probability and label
    assert m["brier"] == pytest.approx((0.15**2 + 0.42**2 + 0.65**2 + 0.15**2) / 4)
    assert m["brier"] == pytest.approx(0.160975)
    # ten bins, one prediction in each occupied bin: the mean absolute gap
    assert m["ece"] == pytest.approx((0.15 + 0.42 + 0.65 + 0.15) / 4)
    assert m["ece"] == pytest.approx(expected_calibration_error(y, p, n_bins=10))


def test_brier_and_ece_defined_with_one_class():
    with pytest.warns(UserWarning, match="only benign"):
        m = evaluate([0, 0, 0], [0.1, 0.7, 0.2], n_boot=0)
    assert m["brier"] == pytest.approx((0.01 + 0.49 + 0.04) / 3)
    assert m["ece"] == pytest.approx(1 / 3)  # all benign: the mean probability


def test_scores_outside_unit_interval_have_no_calibration():
    with pytest.warns(UserWarning, match=r"outside \[0, 1\]"):
        m = evaluate([0, 1, 0, 1], [-2.0, 3.0, 0.5, 1.5], n_boot=0)
    assert np.isnan(m["brier"]) and np.isnan(m["ece"])
    assert m["roc_auc"] == 1.0  # ranking metrics need no probabilities


def test_check_predictions_is_public_and_flattens():
    y, p = check_predictions([[0], [1]], [[0.25], [0.5]])
    assert y.dtype.kind == "i" and p.dtype == float and y.shape == p.shape == (2,)
    with pytest.raises(ValueError, match="NaN"):
        check_predictions([0, 1], [0.1, float("nan")])
