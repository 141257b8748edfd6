"""Grouped k-fold cross-validation: an estimate with the spread that the split itself causes.

One train/test split gives one number; another split of the same data gives another,
and the difference is often larger than what training seeds change. Here every image is
tested exactly once, by a model that never saw its patient, its lesion or any copy of it
(groups merged through duplicate pairs), and the result is the mean and standard
deviation over the folds.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib._shared.errors import FoldRunMismatch
from skinlib._shared.files import atomic_write
from skinlib._shared.paths import resolved_paths
from skinlib.data import merge_groups, split_dataset
from skinlib.evaluation import evaluate
from skinlib.models._training import train
from skinlib.preprocessing import Preprocess, PreprocessResult, preprocess_dataset
from skinlib.runs import Run, dataset_fingerprint, fold_dir

__all__ = ["assign_folds", "cross_validate", "FoldRunMismatch", "FOLD_METRICS"]

#: The columns of :func:`cross_validate`'s table.
FOLD_METRICS = [
    "n_train", "n_val", "n_test", "n_malignant", "roc_auc", "average_precision", "balanced_accuracy",
    "sensitivity", "specificity", "threshold", "epochs_run",
]


def assign_folds(
    df: pd.DataFrame, folds: int = 5, seed: int = 0, duplicates: pd.DataFrame | None = None
) -> np.ndarray:
    """The test fold (1 to ``folds``) of every row: stratified by label, grouped.

    scikit-learn's ``StratifiedGroupKFold`` on the ``group`` column, with groups joined
    through the ``duplicates`` pairs (:func:`skinlib.merge_groups`): no patient, lesion or
    copy of an image is split across folds, and each fold keeps about the dataset's share
    of malignant images. The same seed and data give the same folds.

    Parameters
    ----------
    df : pandas.DataFrame
        A table with ``label`` and ``group`` columns (:func:`skinlib.load_dataset`).
    folds : int
        Number of folds, a whole number of at least 2 and at most the number of
        (merged) groups (default 5).
    seed : int
        Seeds the shuffling of the groups (default 0).
    duplicates : pandas.DataFrame, optional
        Pairs of images (``path_a``, ``path_b``: :func:`skinlib.find_duplicates`,
        :func:`skinlib.find_same_lesion`) whose groups are joined first; default: the
        ``group`` column as it is.

    Returns
    -------
    numpy.ndarray
        int64, one entry per row of ``df`` in its order: the row's test fold, 1 to
        ``folds``.

    Raises
    ------
    ValueError
        When ``folds`` is not a whole number of at least 2, ``df`` lacks ``label`` or
        ``group``, or there are fewer groups than folds.

    Examples
    --------
    >>> fold = assign_folds(df, folds=5, seed=0)  # doctest: +SKIP
    >>> np.bincount(fold)[1:]  # images per fold  # doctest: +SKIP
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if int(folds) != folds or folds < 2:
        raise ValueError(f"folds must be a whole number of at least 2, got {folds}")
    for col in ("label", "group"):
        if col not in df.columns:
            raise ValueError(f"df lacks column {col!r}; expected the table from load_dataset")
    groups = merge_groups(df, duplicates) if duplicates is not None else df["group"].astype(str)
    n_groups = groups.nunique()
    if n_groups < folds:
        raise ValueError(f"folds={folds} needs at least {folds} groups (patients, lesions), the data has {n_groups}")
    splitter = StratifiedGroupKFold(n_splits=int(folds), shuffle=True, random_state=seed)
    out = np.zeros(len(df), dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a class with fewer groups than folds
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(df)), df["label"].to_numpy(), groups.to_numpy()), 1):
            out[test] = k
    return out


def _fold_rows(rows: pd.DataFrame, test_fold: np.ndarray, k: int, val_size: float, seed: int,
               duplicates: pd.DataFrame | None) -> pd.DataFrame:
    """``rows`` with a ``fold`` column: fold ``k`` is ``test``; the rest split into train and val."""
    out = rows.copy()
    fold = np.full(len(rows), "test", dtype=object)
    rest = test_fold != k
    if val_size > 0:
        inner = split_dataset(rows[rest], test_size=0, val_size=val_size, seed=seed + k, duplicates=duplicates)
        fold[rest] = inner["fold"].to_numpy()
    else:
        fold[rest] = "train"
    out["fold"] = fold
    return out


def _check_existing(run: Run, rows: pd.DataFrame, model_name: str, config: Preprocess | None) -> None:
    saved = run.config
    problems = []
    if saved.get("dataset_fingerprint") != dataset_fingerprint(rows):
        problems.append("another split or dataset")
    if saved.get("model") != model_name:
        problems.append(f"model {saved.get('model')!r}, not {model_name!r}")
    if config is not None and saved.get("preprocess") != json.loads(json.dumps(config.to_dict())):
        problems.append("another preprocessing")
    if problems:
        raise FoldRunMismatch(
            f"{run.path}: this fold's run folder holds a run of {', '.join(problems)}; "
            "delete it or choose another run_dir"
        )


def cross_validate(
    df: pd.DataFrame,
    preprocess: Preprocess | None = None,
    model: str = "v2",
    *,
    folds: int = 5,
    seed: int = 0,
    duplicates: pd.DataFrame | None = None,
    val_size: float = 0.1,
    run_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    only_folds: list[int] | tuple[int, ...] | None = None,
    exclude_from_training: pd.Series | list[str] | None = None,
    **train_kwargs,
) -> pd.DataFrame:
    """Train and test ``model`` on each of ``folds`` grouped folds of ``df``.

    The images are preprocessed once with ``preprocess`` (default
    ``Preprocess.for_model(model)``; cached under ``cache_dir``), split into folds by
    :func:`assign_folds` (groups merged through ``duplicates``), and for each fold a
    model trains on the other folds: ``val_size`` of them (grouped too) validate it for
    early stopping and for the threshold (Youden's J), and the fold itself tests it.
    ``train_kwargs`` go to :func:`skinlib.train` (``epochs``, ``batch_size``,
    ``early_stopping``, ``faithful``...); ``seed`` seeds the folds and the training.

    With ``run_dir``, each fold's run folder is ``run_dir/fold<k>``, plus ``folds.csv``
    (every image's test fold) and ``cross_validation.csv`` (the table). A fold whose run
    folder is complete is reused, so an interrupted call resumes; one trained on another
    split, model or preprocessing raises :class:`FoldRunMismatch`. Without ``run_dir``
    the runs go to a temporary folder that is deleted.

    ``only_folds`` (e.g. ``[1]``) runs those folds only, of the same split: a quick
    ablation costs one training instead of ``folds``.

    ``exclude_from_training`` (paths, such as the ``path`` column of
    :func:`skinlib.find_label_issues`' suspects) leaves those images out of every fold's
    training and validation images, never out of a test fold: the folds stay those of the
    whole table, so each fold's result compares with a run on all images, and every image
    is still tested once. Paths not in the table raise a ``ValueError``.

    Returns one row per fold (index ``1`` to ``folds``) with :data:`FOLD_METRICS` on its
    test images, then the rows ``mean`` and ``sd`` (standard deviation over the folds);
    ``attrs["summary"]`` says it in one line.

    Parameters
    ----------
    df : pandas.DataFrame
        The dataset table (:func:`skinlib.load_dataset`): ``path``, ``label`` and
        ``group`` columns, plus the metadata columns a ``metadata=`` training needs.
    preprocess : Preprocess, optional
        The images' pipeline (default ``Preprocess.for_model(model)``).
    model : str
        A model name, ``"v1"``, ``"v2"`` (the default) or ``"v3"``: each fold builds its
        own.
    folds : int
        Number of grouped folds (:func:`assign_folds`; default 5).
    seed : int
        Seeds the folds, each fold's validation split (``seed + k`` for fold ``k``) and
        the training (default 0).
    duplicates : pandas.DataFrame, optional
        Pairs of images (``path_a``, ``path_b``) whose groups are joined, for the folds
        and the validation splits alike.
    val_size : float
        Share of the other folds' images (grouped, via :func:`skinlib.split_dataset`)
        that validate each fold's model, in [0, 1) (default 0.1); 0: no validation
        images, all of them train.
    run_dir : str or path-like, optional
        Keep the runs: ``run_dir/fold<k>`` (:func:`skinlib.runs.fold_dir`), ``folds.csv``
        (``path``, ``label``, ``test_fold``) and the table as ``cross_validation.csv``
        (``cross_validation_folds-<k>-...csv`` with ``only_folds``). Default: a
        temporary folder, deleted at the end.
    cache_dir : str or path-like, optional
        Caches the preprocessed images (:func:`skinlib.preprocess_dataset`).
    progress : bool
        Show progress bars for the preprocessing and the folds (default ``True``).
    only_folds : list of int, optional
        Run only these folds (1 to ``folds``) of the same split (default: all).
    exclude_from_training : pandas.Series or list of str, optional
        Paths of images of ``df`` to leave out of every fold's training and validation
        images (matched on the resolved path); they are still tested in their fold.
    **train_kwargs
        Go to :func:`skinlib.train` (``epochs``, ``batch_size``, ``early_stopping``,
        ``faithful``...); not ``run_dir``, ``overwrite`` or ``progress``, which this
        function sets.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``fold``: one row per fold run (``"1"``, ``"2"``...), then ``mean``
        and ``sd``; the columns :data:`FOLD_METRICS` (``n_train``, ``n_val``,
        ``n_test``, ``n_malignant``, ``roc_auc``, ``average_precision``,
        ``balanced_accuracy``, ``sensitivity``, ``specificity``, ``threshold``,
        ``epochs_run``), as floats, of each fold's test images. ``attrs["summary"]``
        gives the mean and sd of the test ROC AUC in one line.

    Raises
    ------
    ValueError
        When ``val_size`` is not in [0, 1), ``only_folds`` names no fold or one outside
        1 to ``folds``, or ``exclude_from_training`` names a path that is not in ``df``.
    TypeError
        When ``model`` is not a name, ``train_kwargs`` holds ``run_dir``, ``overwrite``
        or ``progress``, or ``exclude_from_training`` is one path rather than a list.
    FoldRunMismatch
        When a fold's complete run folder holds a run of another split, dataset, model
        or preprocessing.

    Examples
    --------
    >>> cv = cross_validate(df, Preprocess.default(), "v2", folds=5, epochs=30)  # doctest: +SKIP
    >>> cv.loc["mean", "roc_auc"], cv.loc["sd", "roc_auc"]  # doctest: +SKIP
    """
    if not 0 <= val_size < 1:
        raise ValueError(f"val_size must be in [0, 1), got {val_size}")
    for reserved in ("run_dir", "overwrite", "progress"):
        if reserved in train_kwargs:
            raise TypeError(f"cross_validate sets train's {reserved!r} itself")
    if not isinstance(model, str):
        raise TypeError("model must be a model name such as 'v2': each fold builds its own model")
    chosen = list(range(1, folds + 1)) if only_folds is None else [int(k) for k in only_folds]
    if not chosen or any(not 1 <= k <= folds for k in chosen):
        raise ValueError(f"only_folds must list folds between 1 and {folds}, got {only_folds!r}")
    excluded_paths = _excluded_paths(df, exclude_from_training)  # checked before the long preprocessing
    data = preprocess_dataset(df, preprocess or Preprocess.for_model(model), cache_dir=cache_dir, progress=progress)
    rows = data.rows
    test_fold = assign_folds(rows, folds, seed, duplicates)
    excluded = (resolved_paths(rows["path"]).isin(excluded_paths).to_numpy() if excluded_paths
                else np.zeros(len(rows), dtype=bool))

    from tqdm.auto import tqdm

    # A scratch folder only when the runs are not kept.
    scratch = tempfile.TemporaryDirectory(prefix="skinlib-cv-") if run_dir is None else contextlib.nullcontext(run_dir)
    with scratch as folder:
        base = Path(folder)
        if run_dir is not None:
            table = pd.DataFrame({"path": rows["path"].astype(str), "label": rows["label"], "test_fold": test_fold})
            atomic_write(base / "folds.csv", lambda fh: table.to_csv(fh, index=False), mode="w")
        records = {}
        for k in tqdm(chosen, desc="cross-validate", unit="fold", disable=not progress):
            fold_rows = _fold_rows(rows, test_fold, k, val_size, seed, duplicates)
            # Excluded images leave the training and validation sides only.
            kept = ~excluded | (test_fold == k)
            fold_rows = fold_rows[kept].reset_index(drop=True)
            run = Run(fold_dir(base, k))
            if run.complete:
                _check_existing(run, fold_rows, model, data.config)
            else:
                fold_data = PreprocessResult(data.x[kept], data.y[kept], fold_rows, data.skipped, data.cache_path,
                                             data.from_cache, data.config)
                train(model, fold_data, seed=seed, run_dir=run.path, progress=False, **train_kwargs)
            records[k] = _fold_metrics(run)
    per_fold = pd.DataFrame.from_dict(records, orient="index")[FOLD_METRICS].astype(float)
    per_fold.index = per_fold.index.astype(str)
    out = pd.concat([per_fold, per_fold.mean().to_frame("mean").T, per_fold.std(ddof=1).to_frame("sd").T])
    out.index.name = "fold"
    out.attrs["summary"] = (
        f"{model}: test ROC AUC {out.loc['mean', 'roc_auc']:.3f} ± {out.loc['sd', 'roc_auc']:.3f} "
        f"(mean ± sd over {len(chosen) if len(chosen) < folds else ''}{' of ' if len(chosen) < folds else ''}"
        f"{folds} grouped folds, {len(rows)} images)"
    )
    if run_dir is not None:
        # A subset of folds gets its own file: it never replaces the table of all folds.
        name = "cross_validation.csv" if len(chosen) == folds else f"cross_validation_folds-{'-'.join(map(str, chosen))}.csv"
        atomic_write(Path(run_dir) / name, lambda fh: out.to_csv(fh), mode="w")
    return out


def _excluded_paths(df: pd.DataFrame, paths) -> set[str]:
    """``paths`` resolved (none without it), after checking that each is an image of ``df``.

    Matched on the resolved path, as :func:`skinlib.evaluation.run_metrics` does: a table of
    suspects read from run folders written from ``../data`` names the images of ``/abs/data``.
    """
    if paths is None:
        return set()
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError("exclude_from_training must be a list of paths, not one path")
    wanted = set(resolved_paths(paths))
    unknown = sorted(wanted - set(resolved_paths(df["path"])))
    if unknown:
        raise ValueError(f"exclude_from_training: {len(unknown)} path(s) are not images of the table, "
                         f"e.g. {unknown[0]!r} (pass the paths of load_dataset's table)")
    return wanted


def _fold_metrics(run: Run) -> dict:
    config, preds = run.config, run.predictions()
    test = preds[preds["fold"] == "test"]
    m = evaluate(test["label"], test["probability"], threshold=config["threshold"], n_boot=0)
    counts = preds["fold"].value_counts()
    return {
        "n_train": int(counts.get("train", 0)), "n_val": int(counts.get("val", 0)), "n_test": m["n"],
        "n_malignant": m["n_malignant"], "roc_auc": m["roc_auc"], "average_precision": m["average_precision"],
        "balanced_accuracy": m["balanced_accuracy"], "sensitivity": m["sensitivity"],
        "specificity": m["specificity"], "threshold": m["threshold"], "epochs_run": config["epochs_run"],
    }
