"""Likely label errors: the images whose given label their out-of-fold probability contradicts.

A dermoscopy label is a clinician's call, a histopathology report, or a follow-up; some are
wrong. :func:`find_label_issues` ranks every image by how well its given label agrees with
the probability a model that never trained on it gave (the out-of-fold predictions of a
grouped :func:`skinlib.cross_validate`) and flags the likely errors, with cleanlab
(confident learning: ``cleanlab.filter.find_label_issues`` flags,
``cleanlab.rank.get_label_quality_scores`` ranks). In-sample predictions would hide the
errors a model memorised, so they are refused. :func:`plot_label_issues` shows the top
suspects to look at.

Nothing is dropped: the table says which images to check. To train without the flagged
images, remove them from the training side only, never from the test images (the test must
stay the dataset as published). A cross-validation does it with ``exclude_from_training``,
on the same folds as before:

>>> issues = find_label_issues("runs/ham/cv", df)  # doctest: +SKIP
>>> suspects = issues.loc[issues["flagged"], "path"]  # doctest: +SKIP
>>> skinlib.cross_validate(df, model="v2", duplicates=pairs, exclude_from_training=suspects)  # doctest: +SKIP

and one split by hand:

>>> flagged = set(issues.loc[issues["flagged"], "path"].map(os.path.realpath))  # doctest: +SKIP
>>> split = skinlib.split_dataset(df, seed=0, duplicates=pairs)  # doctest: +SKIP
>>> drop = split["path"].map(os.path.realpath).isin(flagged) & (split["fold"] != "test")  # doctest: +SKIP
>>> split = split[~drop]  # train and validate without them; test on every test image  # doctest: +SKIP

For a strict held-out test, find the issues with a cross-validation of the training side only
(``cross_validate(df[~test])``): then no model that judged a training label saw a test image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from skinlib._shared.paths import resolved_paths
from skinlib.audit._error_analysis import scored_predictions
from skinlib.data import LABEL_NAMES

if TYPE_CHECKING:
    pass

__all__ = ["find_label_issues", "LABEL_COLUMNS", "CLASSES"]

#: Dataset columns that say where a label came from, added to :func:`find_label_issues`'
#: table when present (HAM10000 ``dx``, ``dx_type``; ISIC 2020 ``diagnosis``,
#: ``benign_malignant``; PAD-UFES-20 ``diagnostic``, ``biopsed``), with ``group``.
LABEL_COLUMNS = ("dx", "dx_type", "diagnosis", "diagnostic", "benign_malignant", "biopsed", "group")
#: Label 0 and 1.
CLASSES = LABEL_NAMES


def _out_of_fold(scored: pd.DataFrame, source: Any) -> None:
    """Raise ValueError unless ``scored`` holds out-of-fold predictions, each image once."""
    where = "the predictions" if isinstance(source, pd.DataFrame) else str(source)
    if scored.attrs.get("source") == "run":
        raise ValueError(
            f"{where}: a single run folder scores only its own test fold; pass the cross-validation folder "
            "(the run_dir of skinlib.cross_validate), whose test folds score every image once out of fold")
    if "fold" in scored.columns:
        folds = scored["fold"].astype(str)
        inside = folds[folds != "test"]
        if len(inside):
            counts = ", ".join(f"{n} {name!r}" for name, n in inside.value_counts().items())
            raise ValueError(
                f"{where}: {len(inside)} prediction(s) are not out of fold ({counts}): a model's predictions on "
                "the images it trained or was selected on agree with their labels, wrong ones included. "
                "Use the test folds of a cross-validation (the run_dir of skinlib.cross_validate), or a table "
                "of out-of-fold probabilities")
    resolved = resolved_paths(scored["path"])
    twice = resolved[resolved.duplicated()]
    if len(twice):
        raise ValueError(
            f"{where}: {twice.nunique()} image(s) are scored more than once (e.g. {twice.iloc[0]}); out-of-fold "
            "predictions score each image once (several cross-validations or seeds mixed?)")


def find_label_issues(
    source: Any,
    dataset: pd.DataFrame | None = None,
    *,
    column: str = "probability",
    filter_by: str = "prune_by_noise_rate",
    method: str = "self_confidence",
    adjust: bool = False,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rank images by how likely their label is wrong, from out-of-fold probabilities (cleanlab).

    Parameters
    ----------
    source : str, path-like or pandas.DataFrame
        A cross-validation folder (the ``run_dir`` of :func:`skinlib.cross_validate`, ideally
        grouped by patient or lesion with duplicates merged), or a table of out-of-fold
        probabilities with ``path``, ``label`` and ``column`` (a ``fold`` column, when present,
        must be ``"test"`` throughout). A run folder, or predictions of a ``train`` or ``val``
        fold, are refused: in-sample predictions agree with the labels they learned.
    dataset : pandas.DataFrame, optional
        The :func:`skinlib.load_dataset` table: its columns among :data:`LABEL_COLUMNS`
        (``dx``, ``dx_type``...) are added, joined on the resolved path.
    column : str
        The probability column (``"probability"`` or ``"probability_uncalibrated"``).
    filter_by : str
        cleanlab's rule for flagging (``cleanlab.filter.find_label_issues``); the default
        ``"prune_by_noise_rate"`` flags, per off-diagonal of the confident joint, the images
        likeliest to be mislabelled.
    method : str
        cleanlab's label quality score (``cleanlab.rank.get_label_quality_scores``):
        ``"self_confidence"`` (the probability of the given label), ``"normalized_margin"``
        or ``"confidence_weighted_entropy"``.
    adjust : bool
        cleanlab's ``adjust_pred_probs``: subtract each class's mean self-confidence before
        scoring (it accounts for class imbalance in the ranking: with probabilities calibrated
        to a 20% prevalence every malignant image has a low probability of its label). It
        changes the ranking only, not the flags.
    columns : sequence of str, optional
        The dataset columns to add instead of :data:`LABEL_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        One row per image, likeliest error first: ``rank`` (from 1), ``path``, ``label``
        (given, 0/1), ``given`` (``"benign"``/``"malignant"``), ``probability`` (out of fold,
        of malignancy), ``quality`` (cleanlab's score in [0, 1]: low is suspect), ``flagged``,
        ``cv_fold`` when read from a cross-validation folder, then the dataset's label columns.
        ``attrs["n_flagged"]`` counts the flagged images; nothing is dropped.

    Raises
    ------
    ValueError
        When the predictions are not out of fold, an image is scored twice, a class is
        missing, or a probability is outside [0, 1].

    Examples
    --------
    >>> probability = np.r_[np.linspace(0.01, 0.3, 50), np.linspace(0.7, 0.99, 50)]
    >>> label = (probability > 0.5).astype(int)
    >>> label[[0, 99]] = 1 - label[[0, 99]]  # two clear-cut images mislabelled
    >>> oof = pd.DataFrame({"path": [f"{i}.jpg" for i in range(100)], "label": label, "probability": probability})
    >>> issues = find_label_issues(oof)
    >>> issues.loc[issues["flagged"], ["rank", "path", "given", "probability"]].values.tolist()
    [[1, '0.jpg', 'malignant', 0.01], [2, '99.jpg', 'benign', 0.99]]
    """
    from cleanlab.filter import find_label_issues as cleanlab_issues
    from cleanlab.rank import get_label_quality_scores

    scored = scored_predictions(source, dataset, column=column, threshold=0.5)
    _out_of_fold(scored, source)
    labels = scored["label"].to_numpy()
    present = set(np.unique(labels).tolist())
    if present != {0, 1}:
        raise ValueError(f"find_label_issues needs benign and malignant images; the predictions hold only "
                         f"{CLASSES[present.pop()] if present else 'nothing'}")
    p = scored["probability"].to_numpy()
    pred_probs = np.column_stack([1 - p, p])
    flagged = cleanlab_issues(labels, pred_probs, filter_by=filter_by, n_jobs=1)
    quality = get_label_quality_scores(labels, pred_probs, method=method, adjust_pred_probs=bool(adjust))
    wanted = LABEL_COLUMNS if columns is None else tuple(columns)
    if columns is not None:
        absent = [c for c in wanted if c not in scored.columns]
        if absent:
            raise ValueError(f"columns {absent} are not in the dataset table (columns: {list(scored.columns)})")
    extra = [c for c in wanted if c in scored.columns and c not in ("path", "label", "probability")]
    table = pd.DataFrame({
        "path": scored["path"].astype(str).to_numpy(),
        "label": labels,
        "given": np.array(CLASSES)[labels],
        "probability": p,
        "quality": np.asarray(quality, dtype=float),
        "flagged": np.asarray(flagged, dtype=bool),
    })
    if "cv_fold" in scored.columns:
        table["cv_fold"] = scored["cv_fold"].to_numpy()
    for c in extra:
        table[c] = scored[c].to_numpy()
    # Likeliest error first; ties in the order of the predictions (a stable sort).
    table = table.sort_values("quality", kind="stable").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.attrs = {"n_flagged": int(table["flagged"].sum()), "filter_by": filter_by, "method": method,
                   "adjust": bool(adjust)}
    return table
