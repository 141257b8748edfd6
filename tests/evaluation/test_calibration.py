"""skinlib.evaluation._calibration: the expected calibration error and temperature scaling."""

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.calibration import calibration_curve
from sklearn.metrics import log_loss, roc_auc_score

from skinlib.evaluation import EPSILON, apply_temperature, fit_temperature
from skinlib.evaluation import expected_calibration_error


def draw(n, seed, sharpness=1.0):
    """Labels drawn as Bernoulli(p) and a model's probabilities ``sigmoid(sharpness * logit(p))``.

    ``sharpness`` 1 is a calibrated model, 3 an overconfident one. ``p`` stays within
    [0.01, 0.99] so that no prediction reaches the clipping at EPSILON.
    """
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, n)
    y = (rng.random(n) < p).astype(int)
    return y, expit(sharpness * logit(p))


# --------------------------------------------------------------------------- ECE


def test_ece_small_when_calibrated_large_when_overconfident():
    y, p = draw(50_000, seed=0)
    _, overconfident = draw(50_000, seed=0, sharpness=3)  # same labels, pushed towards 0 and 1
    calibrated = expected_calibration_error(y, p)
    assert calibrated < 0.02
    assert expected_calibration_error(y, overconfident) > 0.1
    assert expected_calibration_error(y, overconfident) > 5 * calibrated


def test_ece_by_hand():
    y = [0, 0, 1, 1, 1, 0]
    p = [0.1, 0.3, 0.4, 0.6, 0.8, 0.9]
    # 2 bins: [0, .5] holds .1 .3 .4 (mean .2667, 1 of 3 malignant); (.5, 1] holds .6 .8 .9 (mean .7667, 2 of 3)
    by_hand = 0.5 * abs(0.8 / 3 - 1 / 3) + 0.5 * abs(2.3 / 3 - 2 / 3)
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(by_hand)
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(1 / 12)
    # 4 bins: {.1} 0 -> .1; {.3, .4} half -> .15; {.6} 1 -> .4; {.8, .9} half -> .35, weighted 1, 2, 1, 2 of 6
    assert expected_calibration_error(y, p, n_bins=4) == pytest.approx((0.1 + 2 * 0.15 + 0.4 + 2 * 0.35) / 6)
    # one bin: |mean probability - prevalence|
    assert expected_calibration_error(y, p, n_bins=1) == pytest.approx(abs(np.mean(p) - 0.5))


def test_ece_is_weighted_distance_of_calibration_curve_points():
    y, p = draw(2_000, seed=3, sharpness=2)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
    counts = np.histogram(p, bins=np.linspace(0, 1, 11))[0]
    counts = counts[counts > 0]
    expected = np.sum(counts / len(p) * np.abs(predicted - observed))
    assert expected_calibration_error(y, p) == pytest.approx(expected)


def test_ece_extremes_and_perfect_answers():
    assert expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0
    assert expected_calibration_error([1, 1], [0.0, 0.0]) == 1.0
    assert expected_calibration_error([0, 1], [0.5, 0.5]) == 0.0


def test_ece_bad_inputs():
    with pytest.raises(ValueError, match="n_bins must be a positive integer, got 0"):
        expected_calibration_error([0, 1], [0.2, 0.8], n_bins=0)
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([0, 1], [0.2, 0.8], n_bins=2.5)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\], got values from -0.1 to 1.2"):
        expected_calibration_error([0, 1], [-0.1, 1.2])
    with pytest.raises(ValueError, match="2 values but y_prob has 1"):
        expected_calibration_error([0, 1], [0.3])
    with pytest.raises(ValueError, match="NaN"):
        expected_calibration_error([0, 1], [0.3, np.nan])
    with pytest.raises(ValueError, match="at least one"):
        expected_calibration_error([], [])


# --------------------------------------------------------------------------- temperature scaling


def test_temperature_recovers_overconfidence_and_fixes_held_out_set():
    y_val, p_val = draw(20_000, seed=1, sharpness=3)
    t = fit_temperature(y_val, p_val)
    assert t == pytest.approx(3, rel=0.1)

    y_test, p_test = draw(20_000, seed=2, sharpness=3)  # a separate set, drawn the same way
    q_test = apply_temperature(p_test, t)
    assert expected_calibration_error(y_test, q_test) < 0.02 < 0.1 < expected_calibration_error(y_test, p_test)
    assert log_loss(y_test, q_test) < log_loss(y_test, p_test) - 0.05
    assert roc_auc_score(y_test, q_test) == pytest.approx(roc_auc_score(y_test, p_test), abs=1e-12)


def test_temperature_of_calibrated_and_timid_models():
    y, p = draw(20_000, seed=4)
    assert fit_temperature(y, p) == pytest.approx(1, rel=0.1)
    y, timid = draw(20_000, seed=4, sharpness=0.5)  # probabilities too close to 0.5
    assert fit_temperature(y, timid) == pytest.approx(0.5, rel=0.1)


def test_temperature_minimises_log_loss():
    y, p = draw(3_000, seed=5, sharpness=2)
    t = fit_temperature(y, p)
    best = log_loss(y, apply_temperature(p, t))
    for other in (t * 0.9, t * 1.1, 1.0, 3.0):
        assert best <= log_loss(y, apply_temperature(p, other)) + 1e-12


def test_temperature_one_class_and_separable_warn():
    with pytest.warns(UserWarning, match="only one class"):
        assert fit_temperature([1, 1, 1], [0.2, 0.6, 0.9]) == 1.0
    with pytest.warns(UserWarning, match="edge of bounds"):
        t = fit_temperature([0, 0, 1, 1], [0.2, 0.3, 0.7, 0.8])  # perfectly separated: sharpen without end
    assert t == pytest.approx(0.05, rel=1e-3)


def test_fit_temperature_bad_inputs():
    with pytest.raises(ValueError, match="bounds must be"):
        fit_temperature([0, 1], [0.2, 0.8], bounds=(0, 10))
    with pytest.raises(ValueError, match="bounds must be"):
        fit_temperature([0, 1], [0.2, 0.8], bounds=(5, 2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_temperature([0, 1], [0.2, 1.5])
    with pytest.raises(ValueError, match="0 \\(benign\\) and 1"):
        fit_temperature([0, 3], [0.2, 0.8])


def test_apply_temperature_values_shape_and_identity():
    p = np.array([[0.0, 0.2, 0.5], [0.7, 0.9, 1.0]])
    same = apply_temperature(p, 1)
    assert same.dtype == np.float64 and same.shape == (2, 3)
    np.testing.assert_array_equal(same, [[EPSILON, 0.2, 0.5], [0.7, 0.9, 1 - EPSILON]])
    soft = apply_temperature(p, 2.0)
    np.testing.assert_allclose(soft[1, 1], 0.75)  # logit(0.9) = log 9, halved: log 3 -> 3/4
    np.testing.assert_allclose(soft[0, 2], 0.5)
    np.testing.assert_allclose(apply_temperature([expit(3.0)], 3.0), [expit(1.0)])
    # softer towards 0.5 above 1, sharper below, the order kept
    assert np.all(np.abs(soft - 0.5) <= np.abs(same - 0.5))
    assert np.all(np.abs(apply_temperature(p, 0.5) - 0.5) >= np.abs(same - 0.5))
    assert np.all(np.diff(apply_temperature(p.ravel(), 7.0)) > 0)


@pytest.mark.parametrize("bad", [0, -1.0, np.nan, np.inf, "2", None, True])
def test_apply_temperature_rejects_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature must be a positive finite number"):
        apply_temperature([0.2, 0.8], bad)


def test_apply_temperature_rejects_bad_probabilities():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        apply_temperature([0.2, 1.2], 2.0)
    with pytest.raises(ValueError, match="NaN"):
        apply_temperature([0.2, np.nan], 2.0)
