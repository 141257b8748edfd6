"""Tables of results from run folders: comparisons, cross-validation summaries, Markdown.

The pieces the results commands (``scripts/results.py``, ``scripts/results_v3.py``)
and the notebooks build their tables from, usable on any dataset the project loads:
:func:`compare` evaluates several runs on one fold, :func:`conclusion` says what the
table shows, :func:`run_metrics` and :func:`summarise` turn run folders (the folds of
a cross-validation, or several seeds) into mean ± standard deviation rows,
:func:`out_of_fold` stitches the test folds of a cross-validation together, and
:func:`outcome_examples` picks true positives, false positives and false negatives
to look at. Run folders are read through :mod:`skinlib.runs`.

>>> table = compare({"v1": "runs/sample/v1", "v2": "runs/sample/v2"})  # doctest: +SKIP
>>> print(conclusion(table))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from skinlib._shared.paths import resolved_paths
from skinlib.evaluation._metrics import evaluate
from skinlib.runs import Run, fold_dir

__all__ = [
    "compare", "conclusion", "run_metrics", "summarise", "markdown_table", "out_of_fold", "outcome_examples", "METRICS",
]

#: The metrics :func:`run_metrics` reports for each fold of a run.
METRICS = ("n", "n_malignant", "roc_auc", "balanced_accuracy", "sensitivity", "specificity", "accuracy",
           "majority_accuracy")


def compare(runs: Mapping[str, Any], fold: str = "test", **kwargs) -> pd.DataFrame:
    """One row per run: the metrics of :func:`skinlib.evaluate`, ready for a notebook table.

    Parameters
    ----------
    runs : mapping
        A run's name to a metrics dict (from :func:`skinlib.evaluate`), or to a run
        folder written by :func:`skinlib.train` (a path or a :class:`skinlib.runs.Run`);
        for a folder, ``fold``'s predictions are evaluated at the threshold the run
        chose on its validation fold.
    fold : str
        The fold of the run folders to evaluate.
    **kwargs
        Go to :func:`skinlib.evaluate` (``n_boot``, ``seed``...).

    Returns
    -------
    pandas.DataFrame
        Indexed by run name.

    Examples
    --------
    >>> from skinlib.evaluation._metrics import evaluate
    >>> table = compare({"a": evaluate([0, 1, 1], [0.2, 0.7, 0.9], n_boot=0)})
    >>> float(table.loc["a", "roc_auc"])
    1.0
    """
    rows = []
    for name, run in runs.items():
        if isinstance(run, Mapping):
            m = dict(run)
        else:
            run = run if isinstance(run, Run) else Run(run)
            part = run.predictions(fold)
            m = evaluate(part["label"], part["probability"], threshold=run.threshold, **kwargs)
        m.pop("confusion", None)
        rows.append({"run": name, **m})
    return pd.DataFrame(rows).set_index("run")


def _verdict(row: pd.Series) -> str:
    low, high = row["roc_auc_low"], row["roc_auc_high"]
    if np.isnan(row["roc_auc"]):
        return "cannot be judged (one class only in this set)"
    if np.isnan(low):
        return f"ROC AUC {row['roc_auc']:.2f} (no interval)"
    if low <= 0.5 <= high:
        return f"is indistinguishable from chance (ROC AUC {row['roc_auc']:.2f}, 95% CI {low:.2f}-{high:.2f})"
    side = "better" if low > 0.5 else "worse"
    return f"ranks images {side} than chance (ROC AUC {row['roc_auc']:.2f}, 95% CI {low:.2f}-{high:.2f})"


def conclusion(table: pd.DataFrame) -> str:
    """A short conclusion, in Markdown, computed from a :func:`compare` table.

    For each run: whether it beats chance (its ROC AUC interval excludes 0.5), its
    balanced accuracy, and how its accuracy compares with always answering the
    majority class. Then, for the best run by ROC AUC, whether its interval
    separates it from each other run. Nothing in it is written by hand.

    Parameters
    ----------
    table : pandas.DataFrame
        A :func:`compare` table, indexed by run name, with (at least) the columns ``roc_auc``,
        ``roc_auc_low``, ``roc_auc_high``, ``balanced_accuracy``, ``sensitivity``,
        ``specificity``, ``accuracy`` and ``majority_accuracy``.

    Returns
    -------
    str
        Markdown list items, one line each: one per run, then one per other run compared
        with the best (only when at least two runs have a ROC AUC).
    """
    lines = []
    for name, row in table.iterrows():
        gap = row["accuracy"] - row["majority_accuracy"]
        lines.append(
            f"- **{name}** {_verdict(row)}; balanced accuracy {row['balanced_accuracy']:.2f} "
            f"(sensitivity {row['sensitivity']:.2f}, specificity {row['specificity']:.2f}); "
            f"accuracy {row['accuracy']:.2f} against {row['majority_accuracy']:.2f} for always answering "
            f"the majority class ({'+' if gap >= 0 else '-'}{abs(gap):.2f})."
        )
    ranked = table.dropna(subset=["roc_auc"]).sort_values("roc_auc", ascending=False)
    if len(ranked) >= 2:
        best_name, best = ranked.index[0], ranked.iloc[0]
        for name, row in ranked.iloc[1:].iterrows():
            if best["roc_auc_low"] > row["roc_auc_high"]:
                how = "clearly better than"
            else:
                how = "ahead of, but its interval overlaps,"
            lines.append(f"- **{best_name}** is {how} **{name}** "
                         f"(ROC AUC {best['roc_auc']:.2f} vs {row['roc_auc']:.2f}).")
    return "\n".join(lines)


def run_metrics(run: Run | str | os.PathLike, folds: Sequence[str] = ("val", "test"),
                paths: Sequence[str] | set[str] | None = None) -> dict[str, Any]:
    """Metrics of one run on its folds, at the run's threshold, without a bootstrap.

    Parameters
    ----------
    run : Run or path-like
        A run folder.
    folds : sequence of str
        The folds to evaluate.
    paths : collection of str, optional
        Restrict the test fold to these images (matched on the resolved path, so a
        run trained from ``/abs/data`` is read with paths from ``../data``).

    Returns
    -------
    dict
        ``epochs_run``, then ``<fold>_<metric>`` for each fold and each of :data:`METRICS`.
    """
    run = run if isinstance(run, Run) else Run(run)
    config, preds = run.config, run.predictions()
    out = {"epochs_run": config["epochs_run"]}
    for fold in folds:
        part = preds[preds["fold"] == fold]
        if paths is not None and fold == "test":
            part = part[resolved_paths(part["path"]).isin(set(resolved_paths(paths)))]
        # No bootstrap: the spread reported is the one between folds (or seeds).
        m = evaluate(part["label"], part["probability"], threshold=config["threshold"], n_boot=0)
        for key in METRICS:
            out[f"{fold}_{key}"] = m[key]
    return out


def summarise(rows: pd.DataFrame, keys: list[str], unit: str = "fold") -> pd.DataFrame:
    """Mean and standard deviation over the runs of each group of :func:`run_metrics` rows.

    Parameters
    ----------
    rows : pandas.DataFrame
        One row per run (fold or seed): ``keys``, ``unit`` and the columns of :func:`run_metrics`.
    keys : list of str
        The columns that name a group (e.g. preprocessing, model, setup).
    unit : str
        The column that tells the runs of a group apart (``"fold"`` or ``"seed"``).

    Returns
    -------
    pandas.DataFrame
        One row per group: ``runs``, ``test_auc_mean``, ``test_auc_sd``, ``val_auc_mean``,
        the test fold's other metrics averaged, ``epochs_run`` and ``test_auc_per_run``
        (each run's test ROC AUC, in order).
    """
    agg = rows.groupby(keys, sort=False).agg(
        runs=(unit, "count"),
        test_auc_mean=("test_roc_auc", "mean"),
        test_auc_sd=("test_roc_auc", "std"),
        val_auc_mean=("val_roc_auc", "mean"),
        balanced_accuracy=("test_balanced_accuracy", "mean"),
        sensitivity=("test_sensitivity", "mean"),
        specificity=("test_specificity", "mean"),
        accuracy=("test_accuracy", "mean"),
        majority_accuracy=("test_majority_accuracy", "mean"),
        epochs_run=("epochs_run", "mean"),
    )
    agg["test_auc_per_run"] = rows.groupby(keys, sort=False)["test_roc_auc"].apply(
        lambda v: ", ".join(f"{a:.3f}" for a in v))
    return agg.reset_index()


def markdown_table(table: pd.DataFrame) -> str:
    """A table as Markdown, floats with three decimals.

    The index is left out: reset it first to show it (as ``run`` below).

    Parameters
    ----------
    table : pandas.DataFrame
        The table; its column names make the header row.

    Returns
    -------
    str
        The Markdown table, one line per row after the header and separator lines, ending in
        a newline. Float cells have three decimals; every other cell is written with ``str``.

    Examples
    --------
    >>> print(markdown_table(pd.DataFrame({"run": ["v2"], "roc_auc": [0.8304]})), end="")
    | run | roc_auc |
    |---|---|
    | v2 | 0.830 |
    """
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in r]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def out_of_fold(cv_dir: str | os.PathLike, folds: int, column: str = "probability") -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities of every image's test fold in a cross-validation folder.

    Every image once, scored by the model that did not train on it.

    Parameters
    ----------
    cv_dir : str or path-like
        The ``run_dir`` of :func:`skinlib.cross_validate`.
    folds : int
        Its number of folds.
    column : str
        ``"probability"`` or ``"probability_uncalibrated"``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
    """
    both = pd.concat([Run(fold_dir(cv_dir, k)).predictions("test") for k in range(1, folds + 1)])
    return both["label"].to_numpy(), both[column].to_numpy()


#: The cases :func:`outcome_examples` picks, in order.
OUTCOMES = ("true positive", "false positive", "false negative")


def outcome_examples(scored: pd.DataFrame, threshold: float, n: int = 4) -> pd.DataFrame:
    """The most telling true positives, false positives and false negatives of a test set.

    Parameters
    ----------
    scored : pandas.DataFrame
        ``label`` and ``probability`` columns (and whatever else, e.g. ``path``).
    threshold : float
        A probability at or above it says "malignant".
    n : int
        How many of each: the most confident true and false positives, and the
        false negatives the model was surest were benign.

    Returns
    -------
    pandas.DataFrame
        The chosen rows, with a ``case`` column; ``attrs["counts"]`` holds how many
        of each the set has.

    Examples
    --------
    >>> scored = pd.DataFrame({"label": [1, 0, 1, 0], "probability": [0.9, 0.8, 0.1, 0.2]})
    >>> outcome_examples(scored, 0.5, n=1)["case"].tolist()
    ['true positive', 'false positive', 'false negative']
    """
    said = scored["probability"] >= threshold
    cases = {"true positive": scored[said & (scored["label"] == 1)],
             "false positive": scored[said & (scored["label"] == 0)],
             "false negative": scored[~said & (scored["label"] == 1)]}
    shown = pd.concat([rows.sort_values("probability", ascending=kind == "false negative").head(n).assign(case=kind)
                       for kind, rows in cases.items()])
    shown.attrs["counts"] = {kind: len(rows) for kind, rows in cases.items()}
    return shown
