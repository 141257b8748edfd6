"""Can a predicted probability be taken at its word? Measuring it, and fixing it.

A model is calibrated when, among the images it gives a probability of 0.8, about
80% are malignant. ROC AUC says nothing about this: it only looks at the order.
:func:`skinlib.evaluation.expected_calibration_error` measures the gap; :func:`fit_temperature` and
:func:`apply_temperature` close it by temperature scaling (Guo et al., 2017): the
logit of each probability is divided by one number ``T`` chosen on the validation
fold. ``T > 1`` softens an overconfident model, ``T < 1`` sharpens a timid one, and
the order of the images, hence ROC AUC, is unchanged.

A model trained with balanced class weights is also shifted: it says "malignant"
as often as "benign" although malignant lesions are rarer. One temperature cannot
move that; :func:`fit_temperature_shift` fits a temperature and a shift of the logit
together (Platt scaling of the logit), and :func:`apply_temperature` takes both.

>>> T = fit_temperature(y_val, p_val)  # doctest: +SKIP
>>> p_test_calibrated = apply_temperature(p_test, T)  # doctest: +SKIP
>>> T, shift = fit_temperature_shift(y_val, p_val)  # doctest: +SKIP
>>> p_test_calibrated = apply_temperature(p_test, T, shift)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from skinlib.evaluation._metrics import check_predictions, check_probabilities, choose_threshold
from skinlib.runs import Run, rewrite_run

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["calibrate_predictions", "calibrate_run", "fit_temperature", "fit_temperature_shift", "apply_temperature", "EPSILON"]

#: Probabilities are clipped to ``[EPSILON, 1 - EPSILON]`` before taking their logit,
#: so that a 0 or a 1 gives a finite logit.
EPSILON = 1e-7


def _logits(y_prob: np.ndarray) -> np.ndarray:
    from scipy import special  # imported here, as scikit-learn in skinlib.evaluate: keeps imports light

    return special.logit(np.clip(y_prob, EPSILON, 1 - EPSILON))


def _fit_inputs(y_true, y_prob, bounds, caller: str) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Checked labels, probabilities and temperature bounds of a fitting function."""
    y_true, y_prob = check_predictions(y_true, y_prob)
    if y_true.size == 0:
        raise ValueError(f"{caller} needs at least one prediction")
    check_probabilities(y_prob)
    low, high = (float(b) for b in bounds)
    if not (0 < low < high < math.inf):
        raise ValueError(f"bounds must be (low, high) with 0 < low < high < inf, got {bounds!r}")
    return y_true, y_prob, low, high


def fit_temperature(y_true, y_prob, *, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature ``T`` that calibrates ``y_prob`` best.

    ``T`` minimises the log-loss of ``sigmoid(logit(y_prob) / T)`` against ``y_true``.
    Fit it on the validation fold, then pass it with the test fold's probabilities
    to :func:`apply_temperature`. Probabilities are clipped to
    ``[EPSILON, 1 - EPSILON]`` before their logit. ``T`` is searched within
    ``bounds`` (bounded scalar minimisation of ``log T``); a ``T`` at a bound gives a
    warning, as it does when the classes are perfectly separated (the loss then
    keeps falling as ``T`` shrinks). With one class only there is nothing to fit:
    returns 1.0 with a warning.

    Parameters
    ----------
    y_true : array-like
        Labels, 0 (benign) or 1 (malignant), one per image.
    y_prob : array-like
        Predicted probabilities of malignancy, in [0, 1], as many as ``y_true``.
    bounds : tuple of float
        ``(low, high)``, the range ``T`` is searched in, with ``0 < low < high < inf``
        (default ``(0.05, 20.0)``).

    Returns
    -------
    float
        The temperature ``T``; 1.0 when ``y_true`` holds one class only.

    Raises
    ------
    ValueError
        When ``y_true`` and ``y_prob`` differ in length or are empty, a label is not 0 or 1, a
        probability is NaN or outside [0, 1], or ``bounds`` is not as above.

    Examples
    --------
    >>> p = np.array([0.1, 0.3, 0.7, 0.9] * 25)
    >>> y = np.array([0, 1, 0, 1] * 25)  # probabilities that say too much
    >>> fit_temperature(y, p) > 1
    True
    """
    y_true, y_prob, low, high = _fit_inputs(y_true, y_prob, bounds, "fit_temperature")
    if y_true.min() == y_true.max():
        warnings.warn("fit_temperature: only one class present; using T = 1", stacklevel=2)
        return 1.0
    from scipy import optimize

    logits = _logits(y_prob)
    sign = 2.0 * y_true - 1.0  # the log-loss of logit z for label y is softplus(-(2y - 1) z)

    def log_loss(log_t: float) -> float:
        return float(np.logaddexp(0.0, -sign * logits / math.exp(log_t)).mean())

    result = optimize.minimize_scalar(
        log_loss, bounds=(math.log(low), math.log(high)), method="bounded", options={"xatol": 1e-6}
    )
    temperature = math.exp(result.x)
    if min(result.x - math.log(low), math.log(high) - result.x) < 1e-3:
        warnings.warn(
            f"fit_temperature: T = {temperature:.4g} is at the edge of bounds {bounds}; "
            "the classes may be perfectly separated on this set, or the bounds too narrow",
            stacklevel=2,
        )
    return temperature


def fit_temperature_shift(y_true, y_prob, *, bounds: tuple[float, float] = (0.05, 20.0)) -> tuple[float, float]:
    """The temperature ``T`` and shift ``b`` that calibrate ``y_prob`` best.

    They minimise the log-loss of ``sigmoid(logit(y_prob) / T + b)`` against ``y_true``.
    The shift corrects a model that says "malignant" too often or too rarely
    overall, as balanced class weights make it; the temperature, one that is too
    sure or too unsure. Fit on the validation fold; apply with
    :func:`apply_temperature`. ``T`` is kept within ``bounds``. With one class only
    returns ``(1.0, 0.0)`` with a warning.

    Parameters
    ----------
    y_true : array-like
        Labels, 0 (benign) or 1 (malignant), one per image.
    y_prob : array-like
        Predicted probabilities of malignancy, in [0, 1], as many as ``y_true``.
    bounds : tuple of float
        ``(low, high)``, the range ``T`` is kept in, with ``0 < low < high < inf``
        (default ``(0.05, 20.0)``). The shift is kept within [-20, 20].

    Returns
    -------
    tuple of (float, float)
        ``(T, b)``: the temperature and the shift of the logit; ``(1.0, 0.0)`` when
        ``y_true`` holds one class only.

    Raises
    ------
    ValueError
        When ``y_true`` and ``y_prob`` differ in length or are empty, a label is not 0 or 1, a
        probability is NaN or outside [0, 1], or ``bounds`` is not as above.

    Examples
    --------
    >>> y = np.array([0] * 80 + [1] * 20)
    >>> p = np.r_[np.full(80, 0.4), np.full(20, 0.6)]  # says 0.4 where the rate is 0
    >>> T, shift = fit_temperature_shift(y, p)
    >>> bool(shift < 0), apply_temperature(p, T, shift).round(2)[[0, -1]].tolist()
    (True, [0.0, 1.0])
    """
    y_true, y_prob, low, high = _fit_inputs(y_true, y_prob, bounds, "fit_temperature_shift")
    if y_true.min() == y_true.max():
        warnings.warn("fit_temperature_shift: only one class present; using T = 1, shift 0", stacklevel=2)
        return 1.0, 0.0
    from scipy import optimize

    logits = _logits(y_prob)
    sign = 2.0 * y_true - 1.0

    def log_loss(params: np.ndarray) -> float:
        z = logits / math.exp(params[0]) + params[1]
        return float(np.logaddexp(0.0, -sign * z).mean())

    start = np.array([0.0, 0.0])
    result = optimize.minimize(log_loss, start, method="L-BFGS-B",
                               bounds=[(math.log(low), math.log(high)), (-20.0, 20.0)])
    return float(math.exp(result.x[0])), float(result.x[1])


def apply_temperature(y_prob, temperature: float, shift: float = 0.0) -> np.ndarray:
    """``sigmoid(logit(y_prob) / temperature + shift)``, as float64, in the shape of ``y_prob``.

    ``temperature`` (from :func:`fit_temperature` or :func:`fit_temperature_shift`)
    must be a positive number; ``shift`` (from the latter) any finite number.
    Probabilities are first clipped to ``[EPSILON, 1 - EPSILON]``; ``temperature=1``
    and ``shift=0`` return them so, unchanged otherwise. The order of the
    probabilities is kept (ties aside among those clipped), so ROC AUC is unchanged.

    Parameters
    ----------
    y_prob : array-like
        Probabilities, in [0, 1], of any shape.
    temperature : float
        The temperature ``T``: the logit is divided by it. A positive finite number.
    shift : float
        The shift ``b`` added to the divided logit (default 0.0: no shift). A finite number.

    Returns
    -------
    numpy.ndarray
        The rescaled probabilities, float64, in the shape of ``y_prob``.

    Raises
    ------
    ValueError
        When ``temperature`` is not a positive finite number, ``shift`` not a finite number
        (a bool is neither), or ``y_prob`` holds NaN or a value outside [0, 1].

    Examples
    --------
    >>> apply_temperature([0.5, 0.9], 2.0).round(3)
    array([0.5 , 0.75])
    """
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not 0 < temperature < math.inf:
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if np.isnan(y_prob).any():
        raise ValueError("y_prob contains NaN (did training diverge?)")
    if isinstance(shift, bool) or not isinstance(shift, numbers.Real) or not math.isfinite(shift):
        raise ValueError(f"shift must be a finite number, got {shift!r}")
    check_probabilities(y_prob)
    if temperature == 1 and shift == 0:
        return np.clip(y_prob, EPSILON, 1 - EPSILON)
    from scipy import special

    return special.expit(_logits(y_prob) / float(temperature) + float(shift))


def calibrate_predictions(preds: "pd.DataFrame", calibrate: bool = True) -> dict[str, Any]:
    """Fit the calibration and the threshold on the validation rows of a run's predictions.

    Parameters
    ----------
    preds : pandas.DataFrame
        ``fold``, ``label`` and ``probability_uncalibrated`` columns; its
        ``probability`` column is set (in place) to the calibrated probabilities.
    calibrate : bool
        ``False`` keeps the probabilities uncalibrated and only chooses the threshold.

    Returns
    -------
    dict
        The run config entries ``temperature``, ``shift``, ``calibration``,
        ``threshold`` (Youden's J on the calibrated validation probabilities) and
        ``threshold_rule``.
    """
    val_mask = (preds["fold"] == "val").to_numpy()
    y, raw = preds["label"].to_numpy()[val_mask], preds["probability_uncalibrated"].to_numpy()[val_mask]
    temperature, shift = 1.0, 0.0
    # Both classes are needed, and predictions that differ (an "as published" model
    # answers the same for every image: there is nothing to rescale).
    if calibrate and len(np.unique(y)) == 2 and np.ptp(raw) > 1e-9:
        temperature, shift = fit_temperature_shift(y, raw)
    preds["probability"] = apply_temperature(preds["probability_uncalibrated"].to_numpy(), temperature, shift)
    val = preds[val_mask]
    return {
        "temperature": temperature,
        "shift": shift,
        "calibration": ("temperature and shift of the logit fitted on the validation fold"
                        if (temperature, shift) != (1.0, 0.0) else "none"),
        "threshold": choose_threshold(val["label"], val["probability"]) if len(val) else 0.5,
        "threshold_rule": "Youden's J on the validation fold" if len(val) else "0.5 (no validation fold)",
    }


def calibrate_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Refit a run's calibration and threshold on its validation fold, in place.

    For run folders written before runs fitted a shift: reads ``predictions.csv``
    (its ``probability_uncalibrated``, or ``probability`` for older runs), fits a
    temperature and shift on the validation rows, recomputes the calibrated
    probabilities and the threshold, and replaces ``predictions.csv`` and
    ``config.json`` together (:func:`skinlib.runs.rewrite_run`). The model is
    untouched; ROC AUC does not change.

    Parameters
    ----------
    run_dir : str or path-like
        A complete run folder.

    Returns
    -------
    dict
        The new calibration entries.
    """
    run = Run(run_dir)
    config = dict(run.config)
    preds = run.predictions()
    if "probability_uncalibrated" not in preds:
        preds["probability_uncalibrated"] = preds["probability"]
    entries = calibrate_predictions(preds, True)
    config.update(entries, calibrate=True)
    rewrite_run(run, predictions=preds, config=config)
    return entries
