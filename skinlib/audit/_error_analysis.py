"""What one ROC AUC hides: metrics per diagnosis, per patient subgroup, and at screening operating points.

A single ROC AUC averages over every kind of lesion and every patient. This module takes a
run's test predictions, or the out-of-fold predictions of a cross-validation (every image
scored once, by the model that did not train on it), joins them to the dataset table by
resolved path (:func:`scored_predictions`), and breaks the result down:

- :func:`diagnosis_metrics`: for each malignant diagnosis, its sensitivity at the run's
  threshold and the ROC AUC of its images against all benign images; for each benign
  diagnosis, its specificity and the ROC AUC of all malignant images against it (how well the
  model tells malignant lesions from naevi, from keratoses...).
- :func:`subgroup_metrics`: n, n malignant, ROC AUC, sensitivity and specificity per age band,
  sex and body site, computed with fairlearn's ``MetricFrame`` and its seeded bootstrap
  intervals. A group with too few malignant or benign images keeps its counts and gets NaN
  metrics: it is never dropped silently.
- :func:`operating_points`: the sensitivity at 90% and 95% specificity and the specificity at
  90% and 95% sensitivity that screening studies report, read off scikit-learn's ROC curve,
  with the threshold each implies.

:func:`analyse_errors` does all three; :mod:`skinlib.plotting._errors` draws them. fairlearn and
scikit-learn are imported when first used, not on ``import skinlib``.

>>> audit = analyse_errors("runs/ham/cv", skinlib.load_dataset("data/ham10000"))  # doctest: +SKIP
>>> audit.diagnoses[["diagnosis", "n", "metric", "value", "roc_auc"]]  # doctest: +SKIP
>>> figures = skinlib.plotting.plot_error_analysis(audit)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from skinlib._shared.checks import check_whole_number
from skinlib._shared.paths import resolved_paths
from skinlib.data import DIAGNOSIS_COLUMNS as DATA_DIAGNOSIS_COLUMNS
from skinlib.data import LABEL_NAMES, METADATA_COLUMNS
from skinlib.evaluation import check_predictions, evaluate, operating_points
from skinlib.runs import Run, fold_runs


__all__ = [
    "ErrorAnalysis", "analyse_errors", "scored_predictions", "diagnosis_metrics", "subgroup_metrics",
    "age_band", "diagnosis_column", "DIAGNOSIS_COLUMNS", "AGE_BANDS", "SUBGROUP_FEATURES", "OPTIONAL_FEATURES", "UNKNOWN",
]

#: Columns that hold a diagnosis, in the order :func:`diagnosis_column` looks for one
#: (HAM10000 ``dx``, ISIC 2020 ``diagnosis``, PAD-UFES-20 ``diagnostic``).
DIAGNOSIS_COLUMNS = DATA_DIAGNOSIS_COLUMNS
#: The default age bands' edges in years: <30, 30-44, 45-59, 60-74, 75+.
AGE_BANDS = (30, 45, 60, 75)
#: The patient columns :func:`subgroup_metrics` breaks results down by (``load_dataset``'s names).
SUBGROUP_FEATURES = METADATA_COLUMNS
#: Patient columns broken down by too, by default, where a dataset has them (PAD-UFES-20's
#: Fitzpatrick skin type): no warning where it has not.
OPTIONAL_FEATURES = ("skin_type",)
#: The group of the images whose value is not recorded.
UNKNOWN = "unknown"
#: Columns of the predictions that a dataset table never overrides when joined.
_PREDICTION_KEYS = ("path", "label", "fold", "cv_fold", "probability", "probability_uncalibrated", "threshold",
                    "predicted")

NAN = float("nan")


# --------------------------------------------------------------------------- inputs


def _check_level(level: float) -> list[float]:
    if not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise ValueError(f"level must be a number strictly between 0 and 1 (0.95 for 95% intervals), got {level!r}")
    alpha = (1 - float(level)) / 2
    return [alpha, 1 - alpha]


def scored_predictions(
    source: Any,
    dataset: pd.DataFrame | None = None,
    *,
    fold: str = "test",
    column: str = "probability",
    threshold: float | None = None,
) -> pd.DataFrame:
    """One row per scored image: label, probability, threshold, prediction, and the dataset's columns.

    Parameters
    ----------
    source : str, path-like, Run or pandas.DataFrame
        A cross-validation folder (the ``run_dir`` of :func:`skinlib.cross_validate`: every
        ``fold<k>`` run's test predictions, each at its own fold's threshold, so every image
        once and out of fold), a run folder (its ``fold`` predictions at the run's threshold),
        or a table with ``path``, ``label`` and ``column`` (and ``threshold`` per row, or
        pass ``threshold``).
    dataset : pandas.DataFrame, optional
        The :func:`skinlib.load_dataset` table the predictions came from: its columns
        (``dx``, ``age``, ``sex``, ``site``...) are joined on the resolved path, so a run
        trained from ``/abs/data`` joins a table loaded from ``../data``. Predictions without
        a row in it are kept (their columns missing) with a warning; so are labels that
        differ from the dataset's (the predictions' label is kept).
    fold : str
        The fold of a run folder to take (``"test"``); ignored for the other sources.
    column : str
        The probability column: ``"probability"`` (calibrated when the run calibrates) or
        ``"probability_uncalibrated"``.
    threshold : float, optional
        The threshold at or above which an image is called malignant, for every row:
        overrides the runs' own thresholds.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``label`` (0/1), ``probability``, ``threshold``, ``predicted`` (0/1),
        ``fold`` and ``cv_fold`` when read from run folders, then the dataset's columns.
        ``attrs["source"]`` is ``"cross-validation"``, ``"run"`` or ``"table"``.

    Raises
    ------
    ValueError
        When a table lacks a column, a label is not 0/1, a probability is NaN or outside
        [0, 1], no threshold is known, or a folder is not a run nor a cross-validation.

    Examples
    --------
    >>> table = pd.DataFrame({"path": ["a.jpg", "b.jpg"], "label": [0, 1], "probability": [0.2, 0.7]})
    >>> scored_predictions(table, threshold=0.5)[["label", "probability", "predicted"]].values.tolist()
    [[0.0, 0.2, 0.0], [1.0, 0.7, 1.0]]
    """
    if isinstance(source, pd.DataFrame):
        missing = [c for c in ("path", "label", column) if c not in source.columns]
        if missing:
            raise ValueError(
                f"the predictions table lacks column(s) {missing}; expected path, label and {column!r}, "
                f"found {list(source.columns)}")
        table = source.copy()
        kind = "table"
    else:
        folds = fold_runs(source)
        if folds:
            parts = []
            for k, run in folds:
                part = run.predictions("test").copy()
                part["cv_fold"] = k
                part["threshold"] = run.threshold
                parts.append(part)
            table = pd.concat(parts, ignore_index=True)
            kind = "cross-validation"
        else:
            run = source if isinstance(source, Run) else Run(source)
            table = run.predictions(fold).copy()
            if table.empty:
                raise ValueError(f"{run.path}: the run has no predictions of fold {fold!r} (folds: train, val, test)")
            table["threshold"] = run.threshold
            kind = "run"
        if column not in table.columns:
            raise ValueError(f"{source}: the predictions have no column {column!r}; found {list(table.columns)}")
    if threshold is not None:
        if not isinstance(threshold, numbers.Real) or not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
        table["threshold"] = float(threshold)
    elif "threshold" not in table.columns:
        raise ValueError("the predictions table has no threshold column: pass threshold= (e.g. the run's "
                         "Run(path).threshold, chosen on its validation fold)")
    labels, probabilities = check_predictions(table["label"], table[column])
    if probabilities.size and (probabilities.min() < 0 or probabilities.max() > 1):
        raise ValueError(f"{column} must hold probabilities in [0, 1], got values from {probabilities.min():g} "
                         f"to {probabilities.max():g}")
    thresholds = pd.to_numeric(table["threshold"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(thresholds).any():
        raise ValueError("the threshold column holds a missing or non-numeric value")
    table = table.drop(columns=[c for c in ("probability",) if c != column and c in table.columns])
    table["label"] = labels
    table["probability"] = probabilities
    table["threshold"] = thresholds
    table["predicted"] = (probabilities >= thresholds).astype(int)
    first = [c for c in ("path", "label", "probability", "threshold", "predicted", "fold", "cv_fold") if c in table]
    table = table[first + [c for c in table.columns if c not in first]].reset_index(drop=True)
    if dataset is not None:
        table = _join_dataset(table, dataset)
    table.attrs = {"source": kind}
    return table


def _join_dataset(table: pd.DataFrame, dataset: pd.DataFrame) -> pd.DataFrame:
    if "path" not in dataset.columns:
        raise ValueError(f"the dataset table lacks a path column; found {list(dataset.columns)}")
    extra = dataset.drop(columns=[c for c in _PREDICTION_KEYS if c in dataset.columns and c != "label"])
    extra = extra.rename(columns={"label": "dataset_label"})
    extra = extra.assign(_key=resolved_paths(dataset["path"])).drop_duplicates("_key")
    joined = table.assign(_key=resolved_paths(table["path"])).merge(extra, on="_key", how="left", indicator=True)
    unmatched = int((joined["_merge"] == "left_only").sum())
    if unmatched:
        example = joined.loc[joined["_merge"] == "left_only", "path"].iloc[0]
        warnings.warn(
            f"{unmatched} of {len(joined)} predictions have no row in the dataset table (matched on resolved "
            f"paths, e.g. {example}); their dataset columns are missing", stacklevel=3)
    if "dataset_label" in joined.columns:
        known = joined["dataset_label"].notna()
        differ = int((joined.loc[known, "dataset_label"].astype(int) != joined.loc[known, "label"]).sum())
        if differ:
            warnings.warn(f"{differ} prediction(s) carry a label that differs from the dataset table's; the "
                          "predictions' label is used", stacklevel=3)
        joined = joined.drop(columns="dataset_label")
    joined = joined.drop(columns=["_key", "_merge"])
    joined.attrs = {}
    return joined


def diagnosis_column(table: pd.DataFrame) -> str | None:
    """The first column of :data:`DIAGNOSIS_COLUMNS` that ``table`` has, else None.

    Parameters
    ----------
    table : pandas.DataFrame
        A dataset or predictions table.

    Returns
    -------
    str or None
        ``"dx"``, ``"diagnosis"`` or ``"diagnostic"``, in that order of preference; None when it has
        none of them.

    Examples
    --------
    >>> diagnosis_column(pd.DataFrame({"path": [], "dx": []}))
    'dx'
    """
    return next((c for c in DIAGNOSIS_COLUMNS if c in table.columns), None)


def age_band(ages, edges: Sequence[float] = AGE_BANDS) -> pd.Series:
    """Each age's band: ``<30``, ``30-44``, ``45-59``, ``60-74``, ``75+`` for the default edges.

    Parameters
    ----------
    ages : array-like
        Ages in years; NaN is :data:`UNKNOWN`.
    edges : sequence of numbers
        Increasing band edges: a band holds ages from its lower edge up to, not including,
        its upper one. With whole-number edges the bands are named ``30-44``, else ``30-<44.5``.

    Returns
    -------
    pandas.Series
        Strings; ``attrs["order"]`` lists the bands youngest first, then :data:`UNKNOWN`.

    Examples
    --------
    >>> age_band([12, 30, 44.5, 45, 80, float("nan")]).tolist()
    ['<30', '30-44', '30-44', '45-59', '75+', 'unknown']
    >>> age_band([20, 50], edges=(40,)).attrs["order"]
    ['<40', '40+', 'unknown']
    """
    edges = [float(e) for e in edges]
    if not edges or any(math.isnan(e) for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must be one or more increasing numbers of years, got {list(edges)}")
    whole = all(e.is_integer() for e in edges)
    names = [f"<{edges[0]:g}"]
    for low, high in zip(edges, edges[1:]):
        names.append(f"{low:g}-{high - 1:g}" if whole else f"{low:g}-<{high:g}")
    names.append(f"{edges[-1]:g}+")
    values = np.asarray(pd.to_numeric(pd.Series(ages), errors="coerce"), dtype=float)
    index = np.searchsorted(edges, values, side="right")
    out = pd.Series([UNKNOWN if math.isnan(v) else names[i] for v, i in zip(values, index)], dtype=object)
    out.attrs["order"] = names + [UNKNOWN]
    return out


def _labels_of(values: pd.Series) -> pd.Series:
    """Group names as strings, missing values as :data:`UNKNOWN`."""
    text = values.astype(object).where(values.notna(), UNKNOWN).astype(str).str.strip()
    return text.where(text != "", UNKNOWN)


# --------------------------------------------------------------------------- metrics on a group


def _roc_auc(y_true, y_pred) -> float:
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true)
    if y_true.size == 0 or y_true.min() == y_true.max():
        return NAN
    return float(roc_auc_score(y_true, y_pred))


def _sensitivity(y_true, y_pred, predicted) -> float:
    positive = np.asarray(y_true) == 1
    return float(np.mean(np.asarray(predicted)[positive])) if positive.any() else NAN


def _specificity(y_true, y_pred, predicted) -> float:
    negative = np.asarray(y_true) == 0
    return float(1 - np.mean(np.asarray(predicted)[negative])) if negative.any() else NAN


def _correct(y_true, y_pred, predicted) -> float:
    """The share of images called right: sensitivity in a malignant-only group, specificity in a benign one."""
    y_true = np.asarray(y_true)
    return float(np.mean(np.asarray(predicted) == y_true)) if y_true.size else NAN


def _metric_frame(metrics: dict, scored: pd.DataFrame, groups, n_boot: int, quantiles: list[float], seed: int):
    """Fairlearn's MetricFrame of ``metrics`` by ``groups``, with its bootstrap when ``n_boot``."""
    from fairlearn.metrics import MetricFrame

    needs_prediction = {name for name, f in metrics.items() if f is not _roc_auc}
    predicted = scored["predicted"].to_numpy()
    with warnings.catch_warnings():
        # Resamples in which a small group lacks a class give NaN, which the quantiles skip.
        warnings.simplefilter("ignore", RuntimeWarning)
        return MetricFrame(
            metrics=metrics,
            y_true=scored["label"].to_numpy(),
            y_pred=scored["probability"].to_numpy(),
            sensitive_features=groups,
            sample_params={name: {"predicted": predicted} for name in needs_prediction},
            **({"n_boot": n_boot, "ci_quantiles": quantiles, "random_state": seed} if n_boot else {}),
        )


# --------------------------------------------------------------------------- per diagnosis


def diagnosis_metrics(
    scored: pd.DataFrame,
    *,
    diagnosis: str | None = None,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    min_images: int = 10,
) -> pd.DataFrame:
    """Sensitivity and ROC AUC per malignant diagnosis, specificity and ROC AUC per benign one.

    A malignant diagnosis's row: the share of its images called malignant at the threshold
    (its sensitivity) and the ROC AUC of its images against all benign images. A benign
    diagnosis's row: the share of its images called benign (its specificity) and the ROC AUC
    of all malignant images against its images. A diagnosis found in both classes (ISIC
    2020's ``unknown``) has a row per class.

    Parameters
    ----------
    scored : pandas.DataFrame
        A :func:`scored_predictions` table joined to its dataset.
    diagnosis : str, optional
        The diagnosis column; default the first of :data:`DIAGNOSIS_COLUMNS` present.
        Missing values form the diagnosis :data:`UNKNOWN`.
    n_boot : int
        Bootstrap resamples for the intervals (0: none). The rates' intervals come from
        fairlearn's ``MetricFrame`` bootstrap, the ROC AUCs' from :func:`skinlib.evaluate`'s.
    level : float
        The intervals' coverage (0.95: the 2.5% and 97.5% quantiles).
    seed : int
        Seeds the bootstraps.
    min_images : int
        A diagnosis with fewer images keeps its count and gets NaN metrics.

    Returns
    -------
    pandas.DataFrame
        One row per diagnosis and class, malignant first, most images first: ``diagnosis``,
        ``class`` (``"malignant"``/``"benign"``), ``n``, ``metric`` (``"sensitivity"`` or
        ``"specificity"``), ``value``, ``low``, ``high``, ``roc_auc``, ``roc_auc_low``,
        ``roc_auc_high``, ``against`` (the images its ROC AUC is measured against) and
        ``small``. ``attrs["column"]`` names the diagnosis column.

    Examples
    --------
    >>> scored = pd.DataFrame({
    ...     "label":       [1, 1, 1, 1, 0, 0, 0, 0],
    ...     "probability": [0.9, 0.8, 0.3, 0.6, 0.1, 0.2, 0.7, 0.4],
    ...     "dx":          ["mel", "mel", "bcc", "bcc", "nv", "nv", "bkl", "bkl"]}).assign(threshold=0.5)
    >>> scored["predicted"] = (scored["probability"] >= 0.5).astype(int)
    >>> table = diagnosis_metrics(scored, n_boot=0, min_images=1)
    >>> table[["diagnosis", "metric", "value", "roc_auc"]].values.tolist()
    [['bcc', 'sensitivity', 0.5, 0.625], ['mel', 'sensitivity', 1.0, 1.0], ['bkl', 'specificity', 0.5, 0.625], ['nv', 'specificity', 1.0, 1.0]]
    """
    column = diagnosis or diagnosis_column(scored)
    if column is None or column not in scored.columns:
        raise ValueError(
            f"no diagnosis column {'named ' + repr(diagnosis) if diagnosis else 'among ' + str(list(DIAGNOSIS_COLUMNS))} "
            f"in the table (columns: {list(scored.columns)}); join the dataset table with scored_predictions")
    n_boot = check_whole_number("n_boot", n_boot)
    min_images = check_whole_number("min_images", min_images)
    quantiles = _check_level(level)
    _check_scored(scored)
    groups = pd.DataFrame({"diagnosis": _labels_of(scored[column]).to_numpy(),
                           "class": np.where(scored["label"].to_numpy() == 1, LABEL_NAMES[1], LABEL_NAMES[0])})
    frame = _metric_frame({"value": _correct}, scored, groups, n_boot, quantiles, seed)
    counts = groups.value_counts()
    labels, probabilities = scored["label"].to_numpy(), scored["probability"].to_numpy()
    rows = []
    for (name, kind), n in counts.items():
        malignant = kind == "malignant"
        mine = ((groups["diagnosis"] == name) & (groups["class"] == kind)).to_numpy()
        other = labels == (0 if malignant else 1)
        row = {"diagnosis": name, "class": kind, "n": int(n), "metric": "sensitivity" if malignant else "specificity",
               "value": NAN, "low": NAN, "high": NAN, "roc_auc": NAN, "roc_auc_low": NAN, "roc_auc_high": NAN,
               "against": "all benign" if malignant else "all malignant", "small": bool(n < min_images)}
        if not row["small"]:
            row["value"] = float(frame.by_group.loc[(name, kind), "value"])
            if n_boot:
                row["low"] = float(frame.by_group_ci[0].loc[(name, kind), "value"])
                row["high"] = float(frame.by_group_ci[1].loc[(name, kind), "value"])
            if other.any():
                keep = mine | other
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m = evaluate(labels[keep], probabilities[keep], n_boot=n_boot, seed=seed, level=level)
                row.update(roc_auc=m["roc_auc"], roc_auc_low=m["roc_auc_low"], roc_auc_high=m["roc_auc_high"])
        rows.append(row)
    table = pd.DataFrame(rows)
    table["_order"] = (table["class"] == "benign").astype(int)
    table = table.sort_values(["_order", "n", "diagnosis"], ascending=[True, False, True], kind="stable")
    table = table.drop(columns="_order").reset_index(drop=True)
    table.attrs["column"] = column
    return table


def _check_scored(scored: pd.DataFrame) -> None:
    missing = [c for c in ("label", "probability", "predicted") if c not in scored.columns]
    if missing:
        raise ValueError(f"the scored table lacks column(s) {missing}; expected the table from scored_predictions")
    if scored.empty:
        raise ValueError("the scored table is empty")


# --------------------------------------------------------------------------- per subgroup


def subgroup_metrics(
    scored: pd.DataFrame,
    *,
    features: Sequence[str] = SUBGROUP_FEATURES,
    age_bands: Sequence[float] = AGE_BANDS,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    min_malignant: int = 10,
    min_benign: int = 10,
) -> pd.DataFrame:
    """n, n malignant, ROC AUC, sensitivity and specificity per age band, sex and body site.

    Computed per feature with fairlearn's ``MetricFrame`` (sensitivity and specificity at
    each row's ``threshold``: the run's, or each fold's for a cross-validation), with
    percentile intervals from its bootstrap (``n_boot`` resamples of the whole table,
    ``random_state=seed``).

    Parameters
    ----------
    scored : pandas.DataFrame
        A :func:`scored_predictions` table joined to its dataset.
    features : sequence of str
        The columns to break down by; ``age`` is cut into ``age_bands``. A feature the table
        lacks is skipped with a warning (and listed in ``attrs["missing"]``). Missing values
        form the group :data:`UNKNOWN`. The default, :data:`SUBGROUP_FEATURES`, also takes
        the :data:`OPTIONAL_FEATURES` the table has (a skin-type column).
    age_bands : sequence of numbers
        The edges of the age bands (:func:`age_band`).
    n_boot : int
        Bootstrap resamples (0: no intervals).
    level : float
        The intervals' coverage.
    seed : int
        Seeds the bootstrap.
    min_malignant, min_benign : int
        A group with fewer malignant or fewer benign images keeps its counts and gets NaN
        metrics (``small`` is true).

    Returns
    -------
    pandas.DataFrame
        First a row ``feature="all"``, ``group="all"`` for the whole table, then one row per
        group (age bands in order, other groups most images first, :data:`UNKNOWN` last):
        ``feature``, ``group``, ``n``, ``n_malignant``, ``n_benign``, then ``roc_auc``,
        ``sensitivity`` and ``specificity``, each with ``_low`` and ``_high``, and ``small``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> scored = pd.DataFrame({"label": np.tile([0, 1], 50), "sex": np.repeat(["female", "male"], 50)})
    >>> scored["probability"] = np.clip(0.3 + 0.4 * scored["label"] + rng.normal(0, 0.2, 100), 0, 1)
    >>> scored = scored.assign(threshold=0.5, predicted=(scored["probability"] >= 0.5).astype(int))
    >>> table = subgroup_metrics(scored, features=["sex"], n_boot=0)
    >>> table[["feature", "group", "n", "n_malignant"]].values.tolist()
    [['all', 'all', 100, 50], ['sex', 'female', 50, 25], ['sex', 'male', 50, 25]]
    """
    n_boot = check_whole_number("n_boot", n_boot)
    min_malignant = check_whole_number("min_malignant", min_malignant)
    min_benign = check_whole_number("min_benign", min_benign)
    quantiles = _check_level(level)
    _check_scored(scored)
    if isinstance(features, str):
        features = [features]
    if tuple(features) == SUBGROUP_FEATURES:
        features = [*features, *(f for f in OPTIONAL_FEATURES if f in scored.columns)]
    metrics = {"roc_auc": _roc_auc, "sensitivity": _sensitivity, "specificity": _specificity}
    present = [f for f in features if f in scored.columns]
    missing = [f for f in features if f not in scored.columns]
    if missing:
        warnings.warn(f"subgroup_metrics: the table has no column(s) {missing} (join the dataset table with "
                      "scored_predictions); skipped", stacklevel=2)
    labels = scored["label"].to_numpy()
    rows = []
    overall = None
    for feature in present:
        if feature == "age":
            groups = age_band(scored["age"], age_bands)
            order = groups.attrs["order"]
        else:
            groups = _labels_of(scored[feature])
            order = None
        groups = pd.Series(groups.to_numpy(), name=feature)
        frame = _metric_frame(metrics, scored, groups, n_boot, quantiles, seed)
        if overall is None:
            overall = frame
        counts = pd.DataFrame({"group": groups, "label": labels}).groupby("group")["label"].agg(["size", "sum"])
        names = list(counts.index)
        if order is not None:
            names = [g for g in order if g in counts.index]
        else:
            names = sorted(names, key=lambda g: (g == UNKNOWN, -counts.loc[g, "size"], g))
        for name in names:
            n, n_mal = int(counts.loc[name, "size"]), int(counts.loc[name, "sum"])
            small = n_mal < min_malignant or n - n_mal < min_benign
            row = {"feature": feature, "group": name, "n": n, "n_malignant": n_mal, "n_benign": n - n_mal}
            for metric in metrics:
                value = frame.by_group.loc[name, metric]
                low = frame.by_group_ci[0].loc[name, metric] if n_boot else NAN
                high = frame.by_group_ci[1].loc[name, metric] if n_boot else NAN
                row.update({metric: NAN if small else float(value), f"{metric}_low": NAN if small else float(low),
                            f"{metric}_high": NAN if small else float(high)})
            row["small"] = small
            rows.append(row)
    if overall is None:
        overall = _metric_frame(metrics, scored, pd.Series(np.zeros(len(scored), dtype=int), name="all"), n_boot,
                                quantiles, seed)
    n_mal = int(labels.sum())
    first = {"feature": "all", "group": "all", "n": len(labels), "n_malignant": n_mal, "n_benign": len(labels) - n_mal}
    for metric in metrics:
        first[metric] = float(overall.overall[metric])
        first[f"{metric}_low"] = float(overall.overall_ci[0][metric]) if n_boot else NAN
        first[f"{metric}_high"] = float(overall.overall_ci[1][metric]) if n_boot else NAN
    first["small"] = False
    table = pd.DataFrame([first] + rows)
    table.attrs["missing"] = missing
    return table


# --------------------------------------------------------------------------- operating points


# --------------------------------------------------------------------------- all of it


@dataclass
class ErrorAnalysis:
    """What :func:`analyse_errors` found; :func:`skinlib.plotting.plot_error_analysis` draws it.

    Parameters
    ----------
    scored : pandas.DataFrame
        The :func:`scored_predictions` table.
    diagnoses : pandas.DataFrame or None
        :func:`diagnosis_metrics`, or None when the table has no diagnosis column.
    subgroups : pandas.DataFrame
        :func:`subgroup_metrics` (its first row is the whole table).
    operating_points : pandas.DataFrame
        :func:`skinlib.evaluation.operating_points`, with the run's threshold.
    """

    scored: pd.DataFrame
    diagnoses: pd.DataFrame | None
    subgroups: pd.DataFrame
    operating_points: pd.DataFrame



def analyse_errors(
    source: Any,
    dataset: pd.DataFrame | None = None,
    *,
    fold: str = "test",
    column: str = "probability",
    threshold: float | None = None,
    features: Sequence[str] = SUBGROUP_FEATURES,
    age_bands: Sequence[float] = AGE_BANDS,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    min_malignant: int = 10,
    min_benign: int = 10,
) -> ErrorAnalysis:
    """Per diagnosis, per subgroup and operating-point metrics of a run or a cross-validation.

    Parameters
    ----------
    source : str, path-like, Run or pandas.DataFrame
        A cross-validation folder, a run folder or a table of predictions (:func:`scored_predictions`).
    dataset : pandas.DataFrame, optional
        The :func:`skinlib.load_dataset` table, for the diagnosis and patient columns.
    fold, column, threshold
        Go to :func:`scored_predictions`.
    features, age_bands, min_malignant, min_benign
        Go to :func:`subgroup_metrics`; ``min_malignant`` is also :func:`diagnosis_metrics`'
        ``min_images`` for malignant diagnoses, ``min_benign`` for benign ones.
    n_boot, level, seed
        The bootstrap intervals' resamples, coverage and seed.

    Returns
    -------
    ErrorAnalysis

    Examples
    --------
    >>> audit = analyse_errors("runs/ham/cv", skinlib.load_dataset("data/ham10000"))  # doctest: +SKIP
    >>> audit.operating_points  # doctest: +SKIP
    """
    scored = scored_predictions(source, dataset, fold=fold, column=column, threshold=threshold)
    diagnoses = None
    if diagnosis_column(scored) is not None:
        common = dict(n_boot=n_boot, level=level, seed=seed)
        diagnoses = diagnosis_metrics(scored, min_images=0, **common)
        minimum = np.where(diagnoses["class"] == "malignant", min_malignant, min_benign)
        small = diagnoses["n"].to_numpy() < minimum
        diagnoses.loc[small, ["value", "low", "high", "roc_auc", "roc_auc_low", "roc_auc_high"]] = NAN
        diagnoses["small"] = small
    with warnings.catch_warnings():
        if dataset is None:
            warnings.simplefilter("ignore", UserWarning)  # no dataset, no patient columns: said below
        subgroups = subgroup_metrics(scored, features=features, age_bands=age_bands, n_boot=n_boot, level=level,
                                     seed=seed, min_malignant=min_malignant, min_benign=min_benign)
    points = operating_points(scored["label"], scored["probability"], threshold=scored["threshold"].to_numpy())
    return ErrorAnalysis(scored=scored, diagnoses=diagnoses, subgroups=subgroups, operating_points=points)
