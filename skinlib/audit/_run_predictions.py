"""The predictions of the runs an audit is given, restricted to the rows of the audited dataset.

An audit's label-issue search and error analysis read the predictions of cross-validation and run
folders. Those are meant to be of the audited dataset's images; a folder trained on another dataset
(its paths name other files) would make the report flag, count and show images that are not in the
dataset. So, before any image is read, each run's predictions are matched to the dataset's rows on
resolved paths (:func:`skinlib._shared.paths.resolved_paths`): when none, or fewer than
:data:`MIN_MATCHED` of them, are rows of the dataset, the run does not belong to it (a ``ValueError``
naming the run, the counts and an unmatched image); otherwise the predictions of other images are
left out, with a note, and the checks read only what is left.
"""

from __future__ import annotations

import os

import pandas as pd

from skinlib._shared.paths import resolved_paths
from skinlib.audit._error_analysis import scored_predictions

__all__ = ["MIN_MATCHED", "RunPredictions", "dataset_predictions"]

#: The share of a run's predictions that must be rows of the audited dataset: below it, the run was
#: trained on another dataset (a cross-validation of a subset of the dataset matches whole).
MIN_MATCHED = 0.5


class RunPredictions(ValueError):
    """A run's predictions are not of the audited dataset's images (too few of them are its rows)."""


def dataset_predictions(run: str | os.PathLike, dataset: pd.DataFrame) -> tuple[pd.DataFrame | None, str | None]:
    """The run's scored predictions (:func:`skinlib.audit.scored_predictions`) of the dataset's rows only.

    Parameters
    ----------
    run : str or path-like
        A cross-validation or run folder.
    dataset : pandas.DataFrame
        The audited table (its ``path`` column).

    Returns
    -------
    table : pandas.DataFrame or None
        The predictions whose image is a row of ``dataset``, in their order (None when the folder's
        predictions cannot be read: the checks say why in their notes, as for any run).
    note : str or None
        What was left out (None when every prediction is of a row).

    Raises
    ------
    RunPredictions
        When no prediction, or fewer than :data:`MIN_MATCHED` of them, is of a row of ``dataset``.
    """
    try:
        scored = scored_predictions(run)
    except (ValueError, OSError):
        return None, None
    rows = set(resolved_paths(dataset["path"]))
    inside = resolved_paths(scored["path"]).isin(rows).to_numpy()
    matched, total = int(inside.sum()), len(scored)
    if matched == total:
        return scored, None
    example = scored.loc[~inside, "path"].iloc[0]
    if matched < MIN_MATCHED * total:
        raise RunPredictions(
            f"{run}: {total - matched} of its {total} predictions are of images that are not rows of the audited "
            f"dataset (e.g. {example}; matched on resolved paths): was it trained on another dataset? Pass the "
            "cross-validation or run folders trained on the audited dataset")
    kept = scored[inside].reset_index(drop=True)
    kept.attrs = dict(scored.attrs)
    note = (f"{run}: {total - matched} of its {total} predictions are of images that are not rows of the audited "
            f"dataset (e.g. {example}); they are left out of its label issues and error analysis")
    return kept, note
