"""Metrics that accuracy cannot hide behind: ROC AUC with an interval, balanced
accuracy, sensitivity, specificity, the majority-class baseline, and whether the
probabilities can be taken at their word (Brier score, expected calibration error).

All computed with scikit-learn but the calibration error, which is a few lines of NumPy;
this module only gathers them. Fixing calibration is :mod:`skinlib.evaluation._calibration`'s job.
"""

from __future__ import annotations

import numbers
import warnings
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from skinlib._shared.checks import is_whole_number

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["evaluate", "choose_threshold", "check_predictions", "check_probabilities", "expected_calibration_error",
           "operating_points"]

NAN = float("nan")


def check_predictions(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` as 0/1 integers and ``y_prob`` as floats, both flat, once checked.

    Raises ``ValueError`` when their lengths differ, when a label is not 0 (benign)
    or 1 (malignant), or when a probability is NaN. The range of ``y_prob`` is not
    checked: ranking metrics accept any score.

    Parameters
    ----------
    y_true : array-like
        Labels, 0 (benign) or 1 (malignant), of any shape; cast to integers.
    y_prob : array-like
        Probabilities (or any score), of any shape; cast to floats.

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray)
        ``(y_true, y_prob)``, flattened: integer labels and float probabilities.

    Examples
    --------
    >>> check_predictions([0, 1], [0.2, 0.9])
    (array([0, 1]), array([0.2, 0.9]))
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    y_prob = np.asarray(y_prob, dtype=float).ravel()
    if y_true.shape != y_prob.shape:
        raise ValueError(f"y_true has {y_true.size} values but y_prob has {y_prob.size}")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError(f"y_true must hold 0 (benign) and 1 (malignant), got values {np.unique(y_true)}")
    if np.isnan(y_prob).any():
        raise ValueError("y_prob contains NaN (did training diverge?)")
    return y_true, y_prob


def check_probabilities(y_prob: np.ndarray, name: str = "y_prob") -> None:
    """Raise ``ValueError`` naming ``name`` when ``y_prob`` holds a value outside [0, 1].

    An empty array passes; NaN is not checked here (:func:`check_predictions` refuses it).

    Parameters
    ----------
    y_prob : numpy.ndarray
        The values to check.
    name : str
        What to call them in the error message (default ``"y_prob"``).

    Raises
    ------
    ValueError
        When a value of ``y_prob`` is below 0 or above 1.
    """
    if y_prob.size and (y_prob.min() < 0 or y_prob.max() > 1):
        raise ValueError(
            f"{name} must hold probabilities in [0, 1], got values from {y_prob.min():g} to {y_prob.max():g}"
        )


def expected_calibration_error(y_true, y_prob, *, n_bins: int = 10) -> float:
    """The expected calibration error (ECE) of probabilities ``y_prob`` for labels ``y_true``.

    ``[0, 1]`` is cut in ``n_bins`` bins of equal width; in each, the gap between
    the mean predicted probability and the observed share of malignant images is
    weighted by the share of images in the bin, and the gaps are summed. 0 is
    perfect calibration; an overconfident model scores high even with a good ROC
    AUC. Empty bins count for nothing. The bins are those of
    ``sklearn.calibration.calibration_curve(strategy="uniform")`` (closed on the
    right, the first one on both sides), so the ECE is the weighted mean distance
    of its points from the diagonal.

    Parameters
    ----------
    y_true : array-like
        Labels, 0 (benign) or 1 (malignant), one per image.
    y_prob : array-like
        Predicted probabilities of malignancy, in [0, 1], as many as ``y_true``.
    n_bins : int
        The number of equal-width bins (default 10); a positive integer.

    Returns
    -------
    float
        The ECE, in [0, 1].

    Raises
    ------
    ValueError
        When ``n_bins`` is not a positive integer, there is no prediction, or the
        predictions fail :func:`check_predictions` or :func:`check_probabilities`.

    Examples
    --------
    >>> expected_calibration_error([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.8], n_bins=2)
    0.25
    >>> expected_calibration_error([0, 1], [0.5, 0.5])
    0.0
    """
    y_true, y_prob = check_predictions(y_true, y_prob)
    if not is_whole_number(n_bins) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    if y_true.size == 0:
        raise ValueError("expected_calibration_error needs at least one prediction")
    check_probabilities(y_prob)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], y_prob)  # as calibration_curve bins them
    predicted = np.bincount(bins, weights=y_prob, minlength=n_bins)
    observed = np.bincount(bins, weights=y_true, minlength=n_bins)
    # sum over bins of (count / n) * |predicted / count - observed / count|
    return float(np.abs(predicted - observed).sum() / y_true.size)


def choose_threshold(y_true, y_prob) -> float:
    """The probability threshold that maximises Youden's J (sensitivity + specificity - 1).

    Choose it on the validation fold, then apply it to the test fold. With one class
    only there is nothing to choose: returns 0.5 with a warning.

    Parameters
    ----------
    y_true : array-like
        Labels, 0 (benign) or 1 (malignant), one per image.
    y_prob : array-like
        Predicted probabilities of malignancy (or any score), as many as ``y_true``.

    Returns
    -------
    float
        The threshold, at most 1.0: images at or above it are called malignant. 0.5 when
        ``y_true`` holds one class only.

    Examples
    --------
    >>> choose_threshold([0, 0, 1, 1], [0.1, 0.3, 0.35, 0.8])
    0.35
    """
    from sklearn import metrics as skm

    y_true, y_prob = check_predictions(y_true, y_prob)
    if len(np.unique(y_true)) < 2:
        warnings.warn("choose_threshold: only one class present; using 0.5", stacklevel=2)
        return 0.5
    fpr, tpr, thresholds = skm.roc_curve(y_true, y_prob)
    best = int(np.argmax(tpr - fpr))
    return float(min(thresholds[best], 1.0))


def _bootstrap_auc(y_true, y_prob, n: int, seed: int, level: float) -> tuple[float, float]:
    from sklearn import metrics as skm

    rng = np.random.default_rng(seed)
    size = len(y_true)
    aucs = []
    for _ in range(n):
        idx = rng.integers(0, size, size)
        yt = y_true[idx]
        if yt.min() == yt.max():  # a resample with one class has no AUC
            continue
        aucs.append(skm.roc_auc_score(yt, y_prob[idx]))
    if len(aucs) < n / 2:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    low, high = np.quantile(aucs, [alpha, 1 - alpha])
    return float(low), float(high)


def evaluate(
    y_true,
    y_prob,
    threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Classification metrics of malignancy probabilities ``y_prob`` against labels ``y_true``.

    Returns a dict: ``n``, ``n_malignant``, ``roc_auc`` with its bootstrap interval
    (``roc_auc_low``, ``roc_auc_high``; ``n_boot`` resamples, percentile
    method), ``average_precision``, and at ``threshold``: ``balanced_accuracy``,
    ``sensitivity`` (malignant found), ``specificity`` (benign cleared),
    ``accuracy``, ``majority_accuracy`` (always answering the more common class),
    ``tn``, ``fp``, ``fn``, ``tp``; then, whatever the threshold, how far the
    probabilities can be trusted as such: ``brier`` (mean squared difference
    between probability and label, 0 is perfect, 0.25 is answering 0.5 always) and
    ``ece`` (expected calibration error over 10 equal-width bins, see
    :func:`expected_calibration_error`); last ``confusion``
    (2x2, rows true, columns predicted). With one class only, the metrics that
    need both are NaN, with a warning; ``brier`` and ``ece`` stay defined. Scores
    outside [0, 1] are not probabilities: ``brier`` and ``ece`` are then NaN, with
    a warning, and the ranking metrics are computed as usual.

    Parameters
    ----------
    y_true : array-like
        Labels, 0 (benign) or 1 (malignant), one per image.
    y_prob : array-like
        Predicted probabilities of malignancy, as many as ``y_true``.
    threshold : float
        A probability at or above it says "malignant" (default 0.5).
    n_boot : int
        Bootstrap resamples for the ROC AUC interval (default 1000); 0 skips the bootstrap,
        and ``roc_auc_low`` and ``roc_auc_high`` are NaN. They are NaN too when fewer than
        half the resamples hold both classes.
    seed : int
        Seeds the bootstrap resamples: the same seed gives the same interval.
    level : float
        The confidence level of the interval (default 0.95: the 2.5th and 97.5th percentiles).

    Returns
    -------
    dict
        The metrics named above, by name, and ``threshold`` (as a float).

    Examples
    --------
    >>> m = evaluate([0, 0, 0, 1], [0.1, 0.2, 0.6, 0.9], n_boot=0)
    >>> m["roc_auc"], m["sensitivity"], m["specificity"]
    (1.0, 1.0, 0.6666666666666666)
    >>> round(m["brier"], 4), round(m["ece"], 4)
    (0.105, 0.25)
    """
    from sklearn import metrics as skm  # imported here: keeps `import skinlib` light

    y_true, y_prob = check_predictions(y_true, y_prob)
    n = len(y_true)
    if n == 0:
        raise ValueError("evaluate needs at least one prediction")
    pred = (y_prob >= threshold).astype(int)
    cm = skm.confusion_matrix(y_true, pred, labels=[0, 1])
    tn, fp, fn, tp = (int(v) for v in cm.ravel())
    n_pos = int(y_true.sum())
    two_classes = 0 < n_pos < n
    nan = float("nan")
    if not two_classes:
        warnings.warn(
            f"evaluate: only {'malignant' if n_pos else 'benign'} images in this set; "
            "ROC AUC, average precision and balanced accuracy are undefined (NaN)",
            stacklevel=2,
        )
    auc = float(skm.roc_auc_score(y_true, y_prob)) if two_classes else nan
    low, high = _bootstrap_auc(y_true, y_prob, n_boot, seed, level) if two_classes and n_boot else (nan, nan)
    sensitivity = tp / (tp + fn) if tp + fn else nan
    specificity = tn / (tn + fp) if tn + fp else nan
    if ((y_prob >= 0) & (y_prob <= 1)).all():
        brier = float(skm.brier_score_loss(y_true, y_prob, pos_label=1))
        ece = expected_calibration_error(y_true, y_prob, n_bins=10)
    else:
        warnings.warn(
            f"evaluate: y_prob has values outside [0, 1] (from {y_prob.min():g} to {y_prob.max():g}); "
            "they are scores, not probabilities: Brier score and ECE are undefined (NaN)",
            stacklevel=2,
        )
        brier = ece = nan
    return {
        "n": n,
        "n_malignant": n_pos,
        "roc_auc": auc,
        "roc_auc_low": low,
        "roc_auc_high": high,
        "average_precision": float(skm.average_precision_score(y_true, y_prob)) if two_classes else nan,
        "balanced_accuracy": (sensitivity + specificity) / 2 if two_classes else nan,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "accuracy": (tp + tn) / n,
        "majority_accuracy": max(n_pos, n - n_pos) / n,
        "threshold": float(threshold),
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
        "brier": brier,
        "ece": ece,
        "confusion": cm,
    }


def operating_points(
    y_true,
    y_prob,
    *,
    specificities: Sequence[float] = (0.90, 0.95),
    sensitivities: Sequence[float] = (0.90, 0.95),
    threshold=None,
) -> pd.DataFrame:
    """Sensitivity at fixed specificities and specificity at fixed sensitivities, from the ROC curve.

    Read off scikit-learn's ``roc_curve`` (every threshold kept): the sensitivity at a
    specificity of at least ``s`` is that of the threshold with the highest sensitivity
    among those whose specificity is ``s`` or more; likewise the other way round. These are
    the operating points screening studies report (what the model finds when it may alarm
    only 5% of benign patients, and how many benign patients it alarms to find 95% of
    melanomas).

    Parameters
    ----------
    y_true, y_prob : array-like
        Labels (0/1) and probabilities (or any score).
    specificities, sensitivities : sequence of float
        The targets, in [0, 1].
    threshold : float or array-like, optional
        The run's threshold (one, or one per image, as a cross-validation's folds have):
        adds the row ``"at the run's threshold"``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``point`` (``"sensitivity at 90% specificity"``...): ``fixed`` (the
        metric held), ``target``, ``sensitivity``, ``specificity`` and ``threshold``
        (images at or above it are called malignant; ``inf`` calls none; NaN for a per-image
        threshold).

    Examples
    --------
    >>> y = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    >>> p = [.1, .2, .3, .4, .5, .6, .7, .8, .85, .95, .9, .75, .65, .3]
    >>> points = operating_points(y, p, specificities=[0.9], sensitivities=[0.75])
    >>> points[["sensitivity", "specificity", "threshold"]].values.tolist()
    [[0.25, 0.9, 0.9], [0.75, 0.6, 0.65]]
    """
    import pandas as pd
    from sklearn.metrics import roc_curve

    y_true, y_prob = check_predictions(y_true, y_prob)
    if len(np.unique(y_true)) < 2:
        raise ValueError("operating_points needs benign and malignant images; this set has one class only")
    fpr, tpr, thresholds = roc_curve(y_true, y_prob, drop_intermediate=False)
    specificity = 1 - fpr
    tolerance = 1e-9
    rows = []
    for fixed, targets in (("specificity", specificities), ("sensitivity", sensitivities)):
        for target in targets:
            if not isinstance(target, numbers.Real) or not 0 <= target <= 1:
                raise ValueError(f"{fixed} targets must be numbers in [0, 1], got {target!r}")
            if fixed == "specificity":
                allowed = np.flatnonzero(specificity >= target - tolerance)
                best = allowed[np.argmax(tpr[allowed])]  # the first such: the highest threshold
            else:
                allowed = np.flatnonzero(tpr >= target - tolerance)
                best = allowed[np.argmax(specificity[allowed])]
            other = "sensitivity" if fixed == "specificity" else "specificity"
            rows.append({"point": f"{other} at {100 * target:g}% {fixed}", "fixed": fixed, "target": float(target),
                         "sensitivity": float(tpr[best]), "specificity": float(specificity[best]),
                         "threshold": float(thresholds[best])})
    if threshold is not None:
        cut = np.broadcast_to(np.asarray(threshold, dtype=float), y_prob.shape)
        called = y_prob >= cut
        single = np.unique(cut)
        rows.append({"point": "at the run's threshold", "fixed": "threshold", "target": NAN,
                     "sensitivity": float(called[y_true == 1].mean()),
                     "specificity": float(1 - called[y_true == 0].mean()),
                     "threshold": float(single[0]) if single.size == 1 else NAN})
    return pd.DataFrame(rows).set_index("point")
