"""The dataset audit in one call: copies, same-lesion pairs, leakage, label suspects, image quality
and error analysis, gathered as tables.

:func:`audit_dataset` runs every check the package has on one :func:`skinlib.load_dataset`
table (and, optionally, against other datasets and on the runs trained from it) and returns a
:class:`DatasetAudit`, whose tables :func:`skinlib.audit.write_audit_report` writes as CSV
files and one self-contained HTML page:

- copies (:func:`skinlib.find_duplicates`) within the dataset and against each other table;
- same-lesion pairs (:func:`skinlib.audit.find_same_lesion`), other photographs of one
  lesion, not already listed as copies;
- the leakage of the dataset's own split (its ``train/`` and ``test/`` folders, the
  ``source_split`` column): the pairs it separates (:func:`skinlib.check_leakage`) and the
  test images :func:`skinlib.drop_leaked` would remove;
- likely label errors (:func:`skinlib.find_label_issues`) of each cross-validation folder;
- dark, blurry, ... images (:func:`skinlib.find_quality_issues`, CleanVision);
- per diagnosis, per subgroup and operating-point metrics (:func:`skinlib.analyse_errors`) of
  each run or cross-validation;
- a count per issue kind, and every file that could not be read, with the reason.

Nothing is dropped and nothing is written: the audit is a set of lists to look at. A file that
cannot be read is listed in ``unreadable``, never a reason to stop.

>>> audit = audit_dataset(skinlib.load_dataset("data/mvb"), runs=["runs/mvb/cv"])  # doctest: +SKIP
>>> audit.summary  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from skinlib.audit._duplicates import find_duplicates
from skinlib.audit._error_analysis import ErrorAnalysis, analyse_errors
from skinlib.audit._label_issues import find_label_issues
from skinlib.audit._same_lesion import find_same_lesion
from skinlib.data import check_leakage, drop_leaked, merge_pairs
from skinlib.audit._quality import find_quality_issues
from skinlib.data import skipped_files
from skinlib.runs import Run, fold_dir

__all__ = ["DatasetAudit", "audit_dataset", "check_runs", "is_cross_validation", "summary_table", "SPLIT_COLUMN",
           "UNREADABLE_COLUMNS", "SUMMARY_COLUMNS"]

#: The column of a dataset's own split (``train/``, ``test/`` folders), whose leakage is checked.
SPLIT_COLUMN = "source_split"
#: The columns of :attr:`DatasetAudit.unreadable`.
UNREADABLE_COLUMNS = ["path", "reason", "found_by"]
#: The columns of :attr:`DatasetAudit.summary`.
SUMMARY_COLUMNS = ["check", "issue", "count"]


@dataclass
class DatasetAudit:
    """What :func:`audit_dataset` found; :func:`skinlib.audit.write_audit_report` writes it.

    Attributes
    ----------
    name : str
        The dataset's name (its folder's name unless given).
    dataset : pandas.DataFrame
        The audited :func:`skinlib.load_dataset` table.
    copies : pandas.DataFrame
        :func:`skinlib.find_duplicates`' pairs within the dataset, then against each other table,
        with an ``against`` column (``""`` within the dataset, else the other table's name).
    same_lesion : pandas.DataFrame or None
        Same-lesion pairs not already listed as copies, with ``against`` too; None when not searched.
    leakage : pandas.DataFrame or None
        :func:`skinlib.check_leakage`'s pairs (copies and same-lesion pairs) that the dataset's
        own split separates; None when the dataset has no split of its own.
    leaked_test : list of str
        The test images :func:`skinlib.drop_leaked` would remove (empty without a ``test`` split).
    label_issues : pandas.DataFrame or None
        :func:`skinlib.find_label_issues` of each cross-validation folder, with a ``run`` column.
    quality : pandas.DataFrame or None
        :func:`skinlib.find_quality_issues`' table; None when not checked.
    errors : dict
        Run or cross-validation folder (as given) to its :class:`~skinlib.audit.ErrorAnalysis`.
    diagnoses, subgroups, operating_points : pandas.DataFrame or None
        The error analyses' tables, one after the other, with a ``run`` column.
    summary : pandas.DataFrame
        :data:`SUMMARY_COLUMNS`: the number of pairs, images or rows per check and issue kind.
    unreadable : pandas.DataFrame
        :data:`UNREADABLE_COLUMNS`: each file that could not be read, once, with the first
        reason given and the steps that skipped it.
    notes : list of str
        What was skipped and why (a run folder has no out-of-fold predictions...).
    """

    name: str
    dataset: pd.DataFrame = field(repr=False)
    copies: pd.DataFrame = field(repr=False)
    same_lesion: pd.DataFrame | None = field(default=None, repr=False)
    leakage: pd.DataFrame | None = field(default=None, repr=False)
    leaked_test: list[str] = field(default_factory=list, repr=False)
    label_issues: pd.DataFrame | None = field(default=None, repr=False)
    quality: pd.DataFrame | None = field(default=None, repr=False)
    errors: dict[str, ErrorAnalysis] = field(default_factory=dict, repr=False)
    diagnoses: pd.DataFrame | None = field(default=None, repr=False)
    subgroups: pd.DataFrame | None = field(default=None, repr=False)
    operating_points: pd.DataFrame | None = field(default=None, repr=False)
    summary: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SUMMARY_COLUMNS), repr=False)
    unreadable: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=UNREADABLE_COLUMNS), repr=False)
    notes: list[str] = field(default_factory=list)


def is_cross_validation(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a cross-validation folder (it holds the run of fold 1), not a run folder.

    >>> is_cross_validation("/no/such/folder")
    False
    """
    return fold_dir(folder, 1).is_dir()


def check_runs(runs: Sequence[str | os.PathLike]) -> list[str]:
    """The runs as strings, after checking each is a run or cross-validation folder with a valid config.

    Raises ``FileNotFoundError`` for a missing folder and :class:`skinlib.RunFolderError` (naming the
    file) for a folder without a valid ``config`` of a run, or of a cross-validation's first fold.

    >>> check_runs(["/no/such/cv"])
    Traceback (most recent call last):
    ...
    FileNotFoundError: /no/such/cv: no such run or cross-validation folder
    """
    checked = []
    for run in runs:
        path = Path(run)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such run or cross-validation folder")
        Run(fold_dir(path, 1) if is_cross_validation(path) else path).read_config()  # RunFolderError naming the file
        checked.append(str(run))
    return checked


def _keywords(function, **options) -> dict[str, Any]:
    """The ``options`` that ``function`` takes (the same-lesion finder's may differ from find_duplicates')."""
    parameters = inspect.signature(function).parameters
    return {k: v for k, v in options.items() if k in parameters}


def _with_against(pairs: pd.DataFrame, name: str) -> pd.DataFrame:
    out = pairs.copy()
    out.insert(len(out.columns), "against", name)
    out.attrs = dict(pairs.attrs)
    return out


def summary_table(audit: DatasetAudit) -> pd.DataFrame:
    """The counts per check and issue kind of an audit (:data:`SUMMARY_COLUMNS`).

    Copies count pairs per kind (and per other dataset), same-lesion pairs and leaking pairs
    count pairs, label issues count flagged images per cross-validation, quality issues count
    images per issue type, and ``unreadable`` the files that could not be read.

    Examples
    --------
    >>> copies = pd.DataFrame({"path_a": ["a"], "path_b": ["b"], "kind": ["near"], "against": [""]})
    >>> summary_table(DatasetAudit("demo", pd.DataFrame({"path": ["a", "b"]}), copies)).values.tolist()
    [['images', 'audited', 2], ['copies', 'near', 1], ['unreadable', 'files', 0]]
    """
    rows = [("images", "audited", len(audit.dataset))]
    for against, part in audit.copies.groupby("against", sort=False):
        where = "copies" if not against else f"copies in {against}"
        rows += [(where, str(kind), int(n)) for kind, n in part["kind"].value_counts().sort_index().items()]
    if audit.same_lesion is not None:
        for against in ["", *sorted(set(audit.same_lesion["against"]) - {""})]:
            where = "same lesion" if not against else f"same lesion in {against}"
            rows.append((where, "pairs", int((audit.same_lesion["against"] == against).sum())))
    if audit.leakage is not None:
        rows.append(("leakage", "pairs across the split", len(audit.leakage)))
        rows.append(("leakage", "test images with a copy or lesion outside test", len(audit.leaked_test)))
    if audit.label_issues is not None:
        for run, part in audit.label_issues.groupby("run", sort=False):
            rows.append((f"label issues of {run}", "flagged", int(part["flagged"].sum())))
    if audit.quality is not None:
        summary = audit.quality.attrs.get("summary") or audit.quality["issue"].value_counts().to_dict()
        rows += [("quality", str(issue), int(n)) for issue, n in summary.items() if issue != "unreadable"]
    rows.append(("unreadable", "files", len(audit.unreadable)))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _unreadable(found: list[tuple[str, str, str]]) -> pd.DataFrame:
    """(path, reason, step) triples as one row per path: its first reason, and every step that skipped it."""
    by_path: dict[str, list[str]] = {}
    for path, reason, step in found:
        entry = by_path.setdefault(str(path), [str(reason), ""])
        steps = entry[1].split(", ") if entry[1] else []
        if step not in steps:
            entry[1] = ", ".join([*steps, step])
    return pd.DataFrame([(p, r, s) for p, (r, s) in by_path.items()], columns=UNREADABLE_COLUMNS, dtype=str)


def _concat(tables: dict[str, pd.DataFrame | None]) -> pd.DataFrame | None:
    """The tables one after the other, each with a first column ``run`` naming it; None if none."""
    parts = []
    for name, table in tables.items():
        if table is not None:
            if not isinstance(table.index, pd.RangeIndex) or table.index.name is not None:
                table = table.reset_index()  # operating_points are indexed by their point: keep it as a column
            parts.append(table.assign(run=name)[["run", *table.columns]])
    return pd.concat(parts, ignore_index=True) if parts else None


def audit_dataset(
    df: pd.DataFrame,
    *,
    against: Mapping[str, pd.DataFrame] | None = None,
    runs: Sequence[str | os.PathLike] = (),
    name: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    same_lesion: bool = True,
    quality: bool = True,
    n_boot: int = 200,
    seed: int = 0,
) -> DatasetAudit:
    """Run every check of the package on a dataset table and gather the results.

    Parameters
    ----------
    df : pandas.DataFrame
        The :func:`skinlib.load_dataset` table to audit; the files it skipped on loading are
        listed as unreadable.
    against : dict, optional
        Other dataset tables by name: the copies (and same-lesion pairs) between ``df`` and each.
    runs : sequence of path-like
        Cross-validation folders (the ``run_dir`` of :func:`skinlib.cross_validate`) or run
        folders trained on ``df``: each gets an error analysis; each cross-validation folder a
        label-issue search too (a run folder has no out-of-fold predictions: it is skipped, with a
        note).
    name : str, optional
        The dataset's name in the report (default: the name of its folder).
    cache_dir : path-like, optional
        Caches the image signatures of the copy search (and of the same-lesion search, when it
        takes one), as preprocessing does: the same audit again reads them instantly.
    progress : bool
        Progress bars on the long steps.
    same_lesion, quality : bool
        Search for same-lesion pairs; check image quality (CleanVision).
    n_boot, seed
        The error analyses' bootstrap resamples and seed (:func:`skinlib.analyse_errors`).

    Returns
    -------
    DatasetAudit

    Raises
    ------
    ValueError
        When ``df`` has no ``path`` column.
    FileNotFoundError, skinlib.RunFolderError
        When an entry of ``runs`` is not a folder, or not a run or cross-validation folder with a
        valid config; checked before any image is read.

    Examples
    --------
    >>> df = skinlib.load_dataset(skinlib.make_sample("/tmp/skin-audit", n=60))  # doctest: +SKIP
    >>> audit = audit_dataset(df, same_lesion=False)  # doctest: +SKIP
    >>> audit.copies[["path_a", "path_b", "kind"]]  # doctest: +SKIP
    """
    if "path" not in getattr(df, "columns", ()):
        raise ValueError("df has no 'path' column; expected a dataset table from skinlib.load_dataset")
    against = dict(against or {})
    for other_name, other in against.items():
        if "path" not in getattr(other, "columns", ()):
            raise ValueError(f"against[{other_name!r}] has no 'path' column; expected a table from load_dataset")
    runs = check_runs(runs)
    root = df.attrs.get("root")
    name = name or (Path(root).name if root else "dataset")
    notes: list[str] = []
    unreadable = [(p, r, "load") for p, r in skipped_files(df).itertuples(index=False)]
    for other_name, other in against.items():
        unreadable += [(p, r, f"load {other_name}") for p, r in skipped_files(other).itertuples(index=False)]

    from tqdm.auto import tqdm

    steps = ["copies", *(["same lesion"] if same_lesion else []), *(["quality"] if quality else []),
             *(f"runs: {run}" for run in runs)]
    bar = tqdm(total=len(steps), desc="audit", unit="step", disable=not progress, position=0)

    def step(what: str) -> None:
        bar.set_postfix_str(what)

    def gather(table: pd.DataFrame, what: str) -> None:
        unreadable.extend((p, r, what) for p, r in table.attrs.get("skipped", []))

    def quietly(function, *args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*skipped \d+ image")  # listed in unreadable instead
            return function(*args, **kwargs)

    options = dict(cache_dir=cache_dir, progress=progress)
    try:
        step("copies")
        parts = [_with_against(quietly(find_duplicates, df, **options), "")]
        parts += [_with_against(quietly(find_duplicates, df, other, **options), n) for n, other in against.items()]
        for part in parts:
            gather(part, "copies")
        copies = pd.concat(parts, ignore_index=True)
        bar.update(1)

        lesions = None
        if same_lesion:
            step("same lesion")
            lesions = _same_lesion_pairs(df, against, parts, options, gather, notes, quietly)
            bar.update(1)

        within = copies[copies["against"] == ""]
        if lesions is not None:
            within = pd.concat([within, lesions[lesions["against"] == ""]], ignore_index=True)
        leakage, leaked_test = None, []
        split = df[SPLIT_COLUMN].astype(str) if SPLIT_COLUMN in df.columns else pd.Series([], dtype=str)
        if split.ne("").any() and split[split != ""].nunique() > 1:
            leakage = check_leakage(df, within, column=SPLIT_COLUMN)
            if "test" in set(split):
                leaked_test = list(drop_leaked(df, within, column=SPLIT_COLUMN).attrs["dropped"])
        else:
            notes.append("the dataset has no train/test split of its own (source_split): no leakage to check")

        issues = None
        if quality:
            step("quality")
            issues = find_quality_issues(df, progress=progress)
            unreadable += [(p, r, "quality") for p, r in issues.attrs.get("unreadable", {}).items()]
            bar.update(1)

        label_tables, errors = {}, {}
        for run in runs:
            step(f"runs: {run}")
            if is_cross_validation(run):
                try:
                    label_tables[run] = find_label_issues(run, df)
                except ValueError as exc:
                    notes.append(f"label issues of {run}: {exc}")
            else:
                notes.append(f"label issues: {run} is a run folder, which scores only its test fold; "
                             "pass a cross-validation folder for out-of-fold predictions")
            try:
                errors[run] = analyse_errors(run, df, n_boot=n_boot, seed=seed)
            except ValueError as exc:
                notes.append(f"error analysis of {run}: {exc}")
            bar.update(1)
    finally:
        bar.close()

    audit = DatasetAudit(
        name=name, dataset=df, copies=copies.reset_index(drop=True), same_lesion=lesions, leakage=leakage,
        leaked_test=leaked_test, label_issues=_concat(label_tables), quality=issues, errors=errors,
        diagnoses=_concat({r: e.diagnoses for r, e in errors.items()}),
        subgroups=_concat({r: e.subgroups for r, e in errors.items()}),
        operating_points=_concat({r: e.operating_points for r, e in errors.items()}),
        unreadable=_unreadable(unreadable), notes=notes,
    )
    audit.summary = summary_table(audit)
    return audit


def _same_lesion_pairs(df, against, copies, options, gather, notes, quietly) -> pd.DataFrame:
    """The same-lesion pairs within ``df`` and against each other table that are not copies (``copies``:
    the copy tables in the same order, within first)."""
    kwargs = _keywords(find_same_lesion, **options)
    found = []
    for (other_name, other), copy_pairs in zip([("", None), *against.items()], copies):
        pairs = quietly(find_same_lesion, df, **kwargs) if other is None else quietly(find_same_lesion, df, other,
                                                                                      **kwargs)
        gather(pairs, "same lesion")
        merged = merge_pairs(copy_pairs.drop(columns="against"), pairs)
        new = merged[merged["kind"] == "same lesion"]
        kept = {frozenset(ab) for ab in zip(new["path_a"].astype(str), new["path_b"].astype(str))}
        # The finder's own rows (its columns and dtypes), less the pairs already listed as copies.
        mask = [frozenset(ab) in kept for ab in zip(pairs["path_a"].astype(str), pairs["path_b"].astype(str))]
        found.append(_with_against(pairs[mask], other_name))
    return pd.concat(found, ignore_index=True).reset_index(drop=True)
