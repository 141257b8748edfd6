"""Figures of an error analysis (:mod:`skinlib.audit._error_analysis`): per diagnosis, per subgroup,
and the ROC curve with the screening operating points.

Built like those of :mod:`skinlib.plotting._plots`: each function returns a
:class:`matplotlib.figure.Figure`, never through pyplot.

>>> figures = plot_error_analysis(analyse_errors("runs/ham/cv", dataset))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from skinlib.evaluation import check_predictions, operating_points
from skinlib.plotting._plots import new_axes
from skinlib.plotting._text import plain_text

if TYPE_CHECKING:
    from skinlib.audit import ErrorAnalysis
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_error_analysis", "plot_diagnoses", "plot_subgroups", "plot_operating_points"]


def plot_error_analysis(analysis: ErrorAnalysis) -> dict[str, "Figure"]:
    """The figures of an :class:`~skinlib.audit.ErrorAnalysis`.

    Parameters
    ----------
    analysis : skinlib.audit.ErrorAnalysis
        What :func:`skinlib.analyse_errors` found: its ``diagnoses`` go to :func:`plot_diagnoses`,
        its ``subgroups`` to :func:`plot_subgroups`, and its ``scored`` labels and probabilities
        with its ``operating_points`` to :func:`plot_operating_points`.

    Returns
    -------
    dict
        ``"diagnoses"`` (when the dataset has diagnoses), ``"subgroups"`` and ``"roc"``.
    """
    out = {}
    if analysis.diagnoses is not None:
        out["diagnoses"] = plot_diagnoses(analysis.diagnoses)
    out["subgroups"] = plot_subgroups(analysis.subgroups)
    out["roc"] = plot_operating_points(analysis.scored["label"], analysis.scored["probability"],
                                       analysis.operating_points)
    return out


def _interval_bars(ax: "Axes", values, low, high, labels: list[str], colors: list[str]) -> None:
    """Horizontal bars of ``values`` with their intervals; NaN values are marked "too few images".

    Drawn top to bottom in the order of ``labels``.
    """
    y = np.arange(len(labels))
    values, low, high = (np.asarray(v, dtype=float) for v in (values, low, high))
    shown = np.nan_to_num(values, nan=0.0)
    errors = np.vstack([np.clip(values - low, 0, None), np.clip(high - values, 0, None)])
    errors = np.nan_to_num(errors, nan=0.0)
    ax.barh(y, shown, xerr=errors, color=colors, alpha=0.8, capsize=3, error_kw={"linewidth": 1})
    for i, v in enumerate(values):
        if np.isnan(v):
            ax.text(0.02, i, "too few images", va="center", fontsize=8, color="grey")
    ax.set_yticks(y, labels)
    ax.set_xlim(0, 1)
    ax.set_ylim(len(labels) - 0.5, -0.5)


def plot_diagnoses(table: pd.DataFrame) -> "Figure":
    """Bars per diagnosis with their intervals: sensitivity or specificity, and ROC AUC.

    Left, each malignant diagnosis's sensitivity and each benign one's specificity at the
    threshold; right, the ROC AUC of each against the other class (dashed: chance). A
    diagnosis with too few images shows "too few images".

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`diagnosis_metrics`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> table = pd.DataFrame({"diagnosis": ["mel", "nv"], "class": ["malignant", "benign"], "n": [30, 90],
    ...                       "metric": ["sensitivity", "specificity"], "value": [0.7, 0.8], "low": [0.5, 0.7],
    ...                       "high": [0.85, 0.9], "roc_auc": [0.85, 0.85], "roc_auc_low": [0.8, 0.8],
    ...                       "roc_auc_high": [0.9, 0.9]})
    >>> len(plot_diagnoses(table).axes)
    2
    """
    from matplotlib.figure import Figure

    missing = {"diagnosis", "class", "n", "metric", "value", "low", "high", "roc_auc"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks column(s) {sorted(missing)}; expected the table from diagnosis_metrics")
    labels = [f"{d} ({'mal.' if c == 'malignant' else 'ben.'}, n={n})"
              for d, c, n in zip(table["diagnosis"], table["class"], table["n"])]
    colors = ["tab:red" if c == "malignant" else "tab:blue" for c in table["class"]]
    fig = Figure(figsize=(9, 0.45 * len(table) + 1.4), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    for ax, (value, low, high), title in (
        (left, ("value", "low", "high"), "sensitivity (malignant) / specificity (benign)"),
        (right, ("roc_auc", "roc_auc_low", "roc_auc_high"), "ROC AUC against the other class"),
    ):
        _interval_bars(ax, table[value], table.get(low, table[value]), table.get(high, table[value]), labels, colors)
        ax.set_title(title, fontsize=10)
    right.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    return plain_text(fig)


def plot_subgroups(table: pd.DataFrame, metrics: Sequence[str] = ("roc_auc", "sensitivity", "specificity")) -> "Figure":
    """A forest plot: each subgroup's metrics with their intervals, one panel per metric.

    The first row and the dashed line in each panel are the whole table's value (the row
    ``"all"``); a group with too few images shows "too few images" beside its counts.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`subgroup_metrics`.
    metrics : sequence of str
        The metrics to draw, each a panel.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> table = pd.DataFrame({"feature": ["all", "sex", "sex"], "group": ["all", "female", "male"],
    ...                       "n": [100, 50, 50], "n_malignant": [20, 10, 10], "roc_auc": [0.8, 0.75, float("nan")],
    ...                       "roc_auc_low": [0.7, 0.6, float("nan")], "roc_auc_high": [0.9, 0.85, float("nan")]})
    >>> len(plot_subgroups(table, metrics=["roc_auc"]).axes)
    1
    """
    from matplotlib.figure import Figure

    missing = {"feature", "group", "n", "n_malignant", *metrics} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks column(s) {sorted(missing)}; expected the table from subgroup_metrics")
    overall = table[table["feature"] == "all"]
    rows = pd.concat([overall, table[table["feature"] != "all"]]).reset_index(drop=True)
    labels = [f"{'all images' if f == 'all' else f'{f}: {g}'} (n={n}, {m} mal.)"
              for f, g, n, m in zip(rows["feature"], rows["group"], rows["n"], rows["n_malignant"])]
    fig = Figure(figsize=(3.2 * len(metrics) + 2.5, 0.32 * max(len(rows), 1) + 1.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0])
    y = np.arange(len(rows))
    features = rows["feature"].to_numpy()
    for ax, metric in zip(axes, metrics):
        values = rows[metric].to_numpy(dtype=float)
        low = rows.get(f"{metric}_low", rows[metric]).to_numpy(dtype=float)
        high = rows.get(f"{metric}_high", rows[metric]).to_numpy(dtype=float)
        xerr = np.nan_to_num(np.vstack([np.clip(values - low, 0, None), np.clip(high - values, 0, None)]))
        ax.errorbar(values, y, xerr=xerr, fmt="o", color="black", markersize=4, capsize=2, linewidth=1)
        for i in np.flatnonzero(np.isnan(values)):
            ax.text(0.02, i, "too few images", va="center", fontsize=7, color="grey", transform=ax.get_yaxis_transform())
        if not overall.empty and not np.isnan(overall[metric].iloc[0]):
            ax.axvline(float(overall[metric].iloc[0]), color="tab:red", linestyle="--", linewidth=1, label="all")
        for i in np.flatnonzero(features[1:] != features[:-1]):
            ax.axhline(i + 0.5, color="lightgrey", linewidth=0.8)
        ax.set_xlim(0, 1)
        ax.set_title(metric.replace("_", " ").replace("roc auc", "ROC AUC"), fontsize=10)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].set_ylim(len(rows) - 0.5, -0.5)
    return plain_text(fig)


def plot_operating_points(y_true, y_prob, points: pd.DataFrame | None = None, *, ax: "Axes | None" = None) -> "Figure":
    """The ROC curve with the operating points of :func:`operating_points` marked.

    Parameters
    ----------
    y_true, y_prob : array-like
        Labels and probabilities.
    points : pandas.DataFrame, optional
        :func:`operating_points` (computed with its defaults when not given).
    ax : matplotlib.axes.Axes, optional
        Draw on it instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_operating_points([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    >>> len(fig.axes[0].lines) > 1
    True
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    y_true, y_prob = check_predictions(y_true, y_prob)
    if points is None:
        points = operating_points(y_true, y_prob)
    fig, ax = new_axes(ax, (5.5, 5))
    fpr, tpr, _ = roc_curve(y_true, y_prob)
    ax.plot(fpr, tpr, color="black", linewidth=1.5, label=f"ROC (AUC {roc_auc_score(y_true, y_prob):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    markers = iter("osD^vP*X")
    for name, row in points.iterrows():
        where = f", threshold {row['threshold']:.3f}" if np.isfinite(row["threshold"]) else ""
        ax.plot(1 - row["specificity"], row["sensitivity"], marker=next(markers, "o"), linestyle="none", markersize=7,
                label=f"{name}: sens. {row['sensitivity']:.2f}, spec. {row['specificity']:.2f}{where}")
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.legend(loc="lower right", fontsize=7)
    return plain_text(ax)
