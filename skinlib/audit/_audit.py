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

Each check is one :class:`skinlib.audit.Check` of the registry :data:`skinlib.audit.CHECKS`
(:mod:`skinlib.audit._checks`), which the audit walks in order. Nothing is dropped and nothing is
written: the audit is a set of lists to look at. A file that cannot be read is listed in
``unreadable``, never a reason to stop. :meth:`DatasetAudit.save` writes an audit into a folder
and :func:`load_audit` reads it back, so that its report can be redrawn without recomputing.

>>> audit = audit_dataset(skinlib.load_dataset("data/mvb"), runs=["runs/mvb/cv"])  # doctest: +SKIP
>>> audit.summary  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from skinlib._shared.files import atomic_write
from skinlib._shared.checks import check_whole_number
from skinlib._shared.folders import place_problem, write_folder
from skinlib._shared.spreadsheet import unescape_cells, write_csv
from skinlib.audit._checks import CHECKS, SPLIT_COLUMN, TABLE_FILES, UNREADABLE_COLUMNS, Check, Findings
from skinlib.audit._error_analysis import ErrorAnalysis
from skinlib.audit._run_predictions import dataset_predictions
from skinlib.data import skipped_files
from skinlib.runs import Run, fold_dir, is_cross_validation

__all__ = ["DatasetAudit", "audit_dataset", "check_runs", "summary_table", "load_audit",
           "write_csv", "SPLIT_COLUMN", "UNREADABLE_COLUMNS", "SUMMARY_COLUMNS", "MANIFEST_FILE",
           "dataset_roots", "audit_roots"]

#: The columns of :attr:`DatasetAudit.summary`.
SUMMARY_COLUMNS = ["check", "issue", "count"]
#: The file :meth:`DatasetAudit.save` writes last, naming the others; :func:`load_audit` reads it first.
MANIFEST_FILE = "audit.json"
#: The manifest's ``format``; :func:`load_audit` refuses another.
_FORMAT = "skinlib-audit-1"


class _Table:
    """An attribute of :class:`DatasetAudit` that is one of its ``tables`` (None when it does not apply)."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, audit, owner=None):
        return self if audit is None else audit.tables.get(self.name)

    def __set__(self, audit, table) -> None:
        audit.tables[self.name] = table


@dataclass
class DatasetAudit:
    """What :func:`audit_dataset` found; :func:`skinlib.audit.write_audit_report` writes it.

    Its tables, one per entry of :data:`skinlib.audit.TABLE_FILES`, are in ``tables``; those of
    the registered checks are attributes too.

    Parameters
    ----------
    name : str
        The dataset's name (its folder's name unless given).
    dataset : pandas.DataFrame
        The audited :func:`skinlib.load_dataset` table.
    tables : dict, optional
        Table name to table (None when it does not apply): those below, and those of any check
        registered with :func:`skinlib.audit.register`. A table of :data:`skinlib.audit.TABLE_FILES`
        not given is None, except ``summary`` and ``unreadable``: empty tables of their columns.
    leaked_test : list of str, optional
        The test images :func:`skinlib.drop_leaked` would remove (empty without a ``test`` split).
    errors : dict, optional
        Run or cross-validation folder (as given) to its :class:`~skinlib.audit.ErrorAnalysis`.
    notes : list of str, optional
        What was skipped and why (a run folder has no out-of-fold predictions...).
    settings : dict, optional
        How :func:`audit_dataset` was called (other tables, runs, checks skipped, bootstrap...).

    Attributes
    ----------
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
    diagnoses, subgroups, operating_points : pandas.DataFrame or None
        The error analyses' tables, one after the other, with a ``run`` column.
    summary : pandas.DataFrame
        :data:`SUMMARY_COLUMNS`: the number of pairs, images or rows per check and issue kind.
    unreadable : pandas.DataFrame
        :data:`UNREADABLE_COLUMNS`: each file that could not be read, once, with the first
        reason given and the steps that skipped it.
    """

    name: str
    dataset: pd.DataFrame = field(repr=False)
    tables: dict[str, pd.DataFrame | None] = field(default_factory=dict, repr=False)
    leaked_test: list[str] = field(default_factory=list, repr=False)
    errors: dict[str, ErrorAnalysis] = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict, repr=False)

    copies = _Table()
    same_lesion = _Table()
    leakage = _Table()
    label_issues = _Table()
    quality = _Table()
    diagnoses = _Table()
    subgroups = _Table()
    operating_points = _Table()
    summary = _Table()
    unreadable = _Table()

    def __post_init__(self) -> None:
        self.tables = {**dict.fromkeys(TABLE_FILES), **self.tables}  # every registered check's table, None if not found
        if self.tables.get("summary") is None:
            self.tables["summary"] = pd.DataFrame(columns=SUMMARY_COLUMNS)
        if self.tables.get("unreadable") is None:
            self.tables["unreadable"] = pd.DataFrame(columns=UNREADABLE_COLUMNS)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the audit into ``folder``, whole, for :func:`load_audit` to read back without recomputing.

        Every table as a CSV file (the names of :data:`skinlib.audit.TABLE_FILES`), the dataset
        as ``dataset.csv``, each error analysis in ``errors/<k>/``, and :data:`MANIFEST_FILE`:
        the name, notes, settings and leaked test images, and each table's file, column types,
        index and ``attrs``. The files are written into a temporary sibling folder that then
        replaces ``folder`` in one rename (:func:`write_folder`): an interrupted save leaves the
        earlier one as it was.

        ``folder`` may be missing, an empty folder, or a folder an earlier save wrote: its
        :data:`MANIFEST_FILE` is valid and lists every file in it. That folder is replaced whole;
        a folder holding anything its manifest does not list is refused, and nothing is deleted
        that a save did not write. A folder inside (or equal to) an audited dataset's folder
        (:func:`audit_roots`, resolved) is refused too.

        Parameters
        ----------
        folder : str or path-like
            The folder to write (its parents are made when missing).

        Returns
        -------
        pathlib.Path
            The manifest, ``folder/audit.json``.

        Raises
        ------
        NotADirectoryError
            When ``folder``, or a folder above it, is a file.
        ValueError
            When ``folder`` is inside an audited dataset's folder, naming both.
        FileExistsError
            When ``folder`` holds a file that no earlier save wrote there, naming it.
        """
        files = {**TABLE_FILES, **{n: f"{n}.csv" for n in self.tables if n not in TABLE_FILES}}

        def write(out: Path) -> None:
            manifest: dict[str, Any] = {
                "format": _FORMAT, "name": self.name, "notes": list(self.notes),
                "leaked_test": list(self.leaked_test), "settings": _jsonable(self.settings) or {},
                "dataset": _save_table(self.dataset, out, "dataset.csv"), "tables": {}, "errors": [],
            }
            for name, table in self.tables.items():
                manifest["tables"][name] = None if table is None else _save_table(table, out, files[name])
            for k, (run, analysis) in enumerate(self.errors.items(), 1):
                saved = {f.name: _save_table(getattr(analysis, f.name), out, f"errors/{k}/{f.name}.csv")
                         for f in dataclasses.fields(analysis) if getattr(analysis, f.name) is not None}
                manifest["errors"].append({"run": run, "tables": saved})
            atomic_write(out / MANIFEST_FILE, lambda fh: fh.write(json.dumps(manifest, indent=1).encode("ascii")),
                         mode="wb")

        write_folder(folder, write, _saved_files, what="saved audit", roots=audit_roots(self))
        return Path(folder) / MANIFEST_FILE


def _plain_relative(name: object) -> bool:
    """Whether ``name`` is a relative POSIX path that stays inside its folder (no ``..``, no empty part)."""
    return isinstance(name, str) and "\\" not in name and not name.startswith("/") and \
        all(part not in ("", ".", "..") for part in name.split("/"))


def _saved_files(folder: Path) -> set[str] | str:
    """The files the :data:`MANIFEST_FILE` in ``folder`` lists (itself among them), or why there are none."""
    path = folder / MANIFEST_FILE
    if path.is_symlink() or not path.is_file():
        return f"no {MANIFEST_FILE}"
    try:
        manifest = json.loads(path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"its {MANIFEST_FILE} cannot be read: {exc}"
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        return f"its {MANIFEST_FILE} is not one that DatasetAudit.save writes"
    try:
        files = {MANIFEST_FILE, manifest["dataset"]["file"],
                 *(t["file"] for t in manifest["tables"].values() if t is not None),
                 *(t["file"] for entry in manifest["errors"] for t in entry["tables"].values())}
    except (KeyError, TypeError, AttributeError):
        return f"its {MANIFEST_FILE} is damaged"
    if not all(_plain_relative(f) for f in files):
        return f"its {MANIFEST_FILE} lists a file outside its folder"
    return files


def load_audit(folder: str | os.PathLike) -> DatasetAudit:
    """The audit :meth:`DatasetAudit.save` wrote into ``folder``, with its tables' types, index and attrs.

    ``skinlib.audit.write_audit_report(load_audit(folder), out)`` redraws the report without
    reading an image again but those the figures show.

    Parameters
    ----------
    folder : str or path-like
        A folder :meth:`DatasetAudit.save` wrote.

    Returns
    -------
    DatasetAudit
        The saved audit: its name, dataset, tables, error analyses, leaked test images, notes and
        settings.

    Raises
    ------
    FileNotFoundError
        When ``folder`` has no :data:`MANIFEST_FILE` (or a file it names is missing).
    ValueError
        When the manifest is not one :meth:`DatasetAudit.save` writes.

    Examples
    --------
    >>> load_audit("/no/such/audit")
    Traceback (most recent call last):
    ...
    FileNotFoundError: /no/such/audit: no saved audit (no audit.json)
    """
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no saved audit (no {MANIFEST_FILE})")
    try:
        manifest = json.loads(path.read_text(encoding="ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a saved audit ({exc})") from None
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found != _FORMAT:
        raise ValueError(f"{path}: not a saved audit (format {found!r}, expected {_FORMAT!r})")
    tables = {n: None if m is None else _load_table(folder, m) for n, m in manifest["tables"].items()}
    errors = {}
    for entry in manifest["errors"]:
        saved = {n: _load_table(folder, m) for n, m in entry["tables"].items()}
        errors[entry["run"]] = ErrorAnalysis(**{f.name: saved.get(f.name) for f in dataclasses.fields(ErrorAnalysis)})
    return DatasetAudit(name=manifest["name"], dataset=_load_table(folder, manifest["dataset"]), tables=tables,
                        leaked_test=list(manifest["leaked_test"]), errors=errors, notes=list(manifest["notes"]),
                        settings=manifest["settings"])


def check_runs(runs: Sequence[str | os.PathLike]) -> list[str]:
    """The runs as strings, after checking each is a run or cross-validation folder with a valid config.

    Parameters
    ----------
    runs : sequence of path-like
        Run folders and cross-validation folders (a cross-validation's first fold is checked).

    Returns
    -------
    list of str
        ``runs`` as strings, as given, in order.

    Raises
    ------
    FileNotFoundError
        For a folder that does not exist.
    skinlib.RunFolderError
        Naming the file, for a folder without a valid ``config`` of a run, or of a cross-validation's
        first fold.

    Examples
    --------
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


def summary_table(audit: DatasetAudit) -> pd.DataFrame:
    """The counts per check and issue kind of an audit (:data:`SUMMARY_COLUMNS`).

    The number of images audited, then each registered check's rows (:meth:`Check.summary`), in
    the order of :data:`skinlib.audit.CHECKS`: copies count pairs per kind (and per other
    dataset), same-lesion pairs and leaking pairs count pairs, label issues count flagged images
    per cross-validation, quality issues count images per issue type, and ``unreadable`` the files
    that could not be read.

    Parameters
    ----------
    audit : DatasetAudit
        An audit whose tables are found (its ``summary`` is not read).

    Returns
    -------
    pandas.DataFrame
        :data:`SUMMARY_COLUMNS`: ``check``, ``issue`` and ``count``, one row per check and issue kind,
        starting with ``("images", "audited", len(audit.dataset))``.

    Examples
    --------
    >>> copies = pd.DataFrame({"path_a": ["a"], "path_b": ["b"], "kind": ["near"], "against": [""]})
    >>> summary_table(DatasetAudit("demo", pd.DataFrame({"path": ["a", "b"]}), {"copies": copies})).values.tolist()
    [['images', 'audited', 2], ['copies', 'near', 1], ['unreadable', 'files', 0]]
    """
    rows = [("images", "audited", len(audit.dataset))]
    for check in CHECKS.values():
        rows += check.summary(audit)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


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
    skip: Collection[str] = (),
    n_boot: int = 200,
    seed: int = 0,
) -> DatasetAudit:
    """Run every check of the package on a dataset table and gather the results.

    The checks are those of :data:`skinlib.audit.CHECKS`, in its order: the copies first, the
    runs' checks on each run in turn, the unreadable files last.

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
        Caches the image signatures of the copy search (and of the same-lesion search), as
        preprocessing does: the same audit again reads them instantly.
    progress : bool
        Progress bars on the long steps.
    same_lesion, quality : bool
        Search for same-lesion pairs; check image quality (CleanVision).
    skip : collection of str
        Names of other checks to skip (those with a :attr:`Check.skip_help`, as ``same_lesion``
        and ``quality``).
    n_boot, seed
        The error analyses' bootstrap resamples and seed (:func:`skinlib.analyse_errors`).

    Returns
    -------
    DatasetAudit

    Raises
    ------
    ValueError
        When ``df`` has no ``path`` column, ``skip`` names a check that cannot be skipped, ``n_boot``
        or ``seed`` is not a whole number >= 0, ``cache_dir`` is inside an audited dataset, or a run's
        predictions are not of the dataset's images (none, or fewer than half, are its rows; the
        others are left out, with a note). All checked before any image is read.
    NotADirectoryError
        When ``cache_dir`` (or a folder above it) is a file.
    FileNotFoundError, skinlib.RunFolderError
        When an entry of ``runs`` is not a folder, or not a run or cross-validation folder with a
        valid config.

    Examples
    --------
    >>> df = skinlib.load_dataset(skinlib.make_sample("/tmp/skin-audit", n=60))  # doctest: +SKIP
    >>> audit = audit_dataset(df, same_lesion=False)  # doctest: +SKIP
    >>> audit.copies[["path_a", "path_b", "kind"]]  # doctest: +SKIP
    """
    against = _checked_tables(df, against)
    skipped = _skipped(skip, same_lesion=same_lesion, quality=quality)
    n_boot, seed = check_whole_number("n_boot", n_boot), check_whole_number("seed", seed)
    roots = [*dataset_roots(df), *(r for other in against.values() for r in dataset_roots(other))]
    if cache_dir is not None and (problem := place_problem(cache_dir, what="cache", roots=roots)):
        raise problem[0](f"cache_dir {problem[1]}")
    runs = check_runs(runs)
    root = df.attrs.get("root")
    found = Findings(dataset=df, against=against, runs=runs,
                     options=dict(cache_dir=cache_dir, progress=progress, n_boot=n_boot, seed=seed))
    for run in runs:  # before any image is read: a run of another dataset is an error
        predictions, note = dataset_predictions(run, df)
        if note:
            found.predictions[run] = predictions
            found.notes.append(note)
    if df.attrs.get("outside"):
        outside = df.attrs["outside"]
        found.notes.append(f"{len(outside)} row(s) of the dataset name images outside its folder (e.g. "
                           f"{outside[0]}); they are audited, and shown, as rows of the dataset")
    found.unreadable += _load_skipped(df, against)
    for check in CHECKS.values():  # a table no check fills (a check skipped...) does not apply
        found.tables.update(dict.fromkeys(check.tables))
    _search(found, [check for name, check in CHECKS.items() if name not in skipped], progress)
    settings = dict(against=list(against), runs=runs, cache_dir=None if cache_dir is None else str(cache_dir),
                    skip=sorted(skipped), n_boot=n_boot, seed=seed, roots=list(dict.fromkeys(roots)))
    audit = DatasetAudit(name=name or (Path(root).name if root else "dataset"), dataset=df, tables=found.tables,
                         leaked_test=found.leaked_test, errors=found.errors, notes=found.notes, settings=settings)
    audit.summary = summary_table(audit)
    return audit


def _checked_tables(df: pd.DataFrame, against: Mapping[str, pd.DataFrame] | None) -> dict[str, pd.DataFrame]:
    """``against`` as a dict, after checking that it and ``df`` are dataset tables (a ``path`` column)."""
    if "path" not in getattr(df, "columns", ()):
        raise ValueError("df has no 'path' column; expected a dataset table from skinlib.load_dataset")
    against = dict(against or {})
    for other_name, other in against.items():
        if "path" not in getattr(other, "columns", ()):
            raise ValueError(f"against[{other_name!r}] has no 'path' column; expected a table from load_dataset")
    return against


def _skipped(skip: Collection[str], *, same_lesion: bool, quality: bool) -> set[str]:
    """The names of the checks to skip, after checking each can be."""
    skipped = {str(s) for s in ([skip] if isinstance(skip, str) else skip)}
    skipped |= {n for n, wanted in (("same_lesion", same_lesion), ("quality", quality)) if not wanted}
    refused = sorted(n for n in skipped if n not in CHECKS or not CHECKS[n].skip_help)
    if refused:
        can = ", ".join(n for n, c in CHECKS.items() if c.skip_help)
        raise ValueError(f"cannot skip {refused[0]!r}: the checks that can be skipped are {can}")
    return skipped


def _load_skipped(df: pd.DataFrame, against: Mapping[str, pd.DataFrame]) -> list[tuple[str, str, str]]:
    """(path, reason, step) of the files that loading the tables skipped."""
    found = [(p, r, "load") for p, r in skipped_files(df).itertuples(index=False)]
    for other_name, other in against.items():
        found += [(p, r, f"load {other_name}") for p, r in skipped_files(other).itertuples(index=False)]
    return found


def _search(found: Findings, checks: list[Check], progress: bool) -> None:
    """Run the checks: each on the dataset, then those of the runs on each run, then each one's finish."""
    from tqdm.auto import tqdm

    by_run = [check for check in checks if check.per_run]
    steps = [c.step for c in checks if c.step] + [f"runs: {run}" for run in found.runs if by_run]
    bar = tqdm(total=len(steps), desc="audit", unit="step", disable=not progress, position=0)
    try:
        for check in checks:
            if check.step:
                bar.set_postfix_str(check.step)
            check.find(found)
            if check.step:
                bar.update(1)
        for run in found.runs if by_run else ():
            bar.set_postfix_str(f"runs: {run}")
            for check in by_run:
                check.find_in_run(found, run)
            bar.update(1)
        for check in checks:
            check.finish(found)
    finally:
        bar.close()


# --------------------------------------------------------------------------- saving and loading tables


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, set, frozenset)):
        return str(value) if isinstance(value, Path) else sorted(value, key=str)
    raise TypeError(type(value).__name__)


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that JSON can hold (numpy numbers as numbers, tuples as lists)."""
    out = {}
    for key, value in values.items():
        try:
            out[str(key)] = json.loads(json.dumps(value, default=_plain))
        except (TypeError, ValueError):
            continue  # a figure, a function...: not part of a saved audit
    return out


def _kind(values: pd.Series) -> str:
    """The Python type of an object column's values (``str`` when mixed), for reading them back."""
    types = {type(v) for v in values.dropna()}
    for kind, accepted in (("bool", (bool, np.bool_)), ("int", (int, np.integer)), ("float", (float, np.floating))):
        if types and all(issubclass(t, accepted) and not (kind == "int" and issubclass(t, bool)) for t in types):
            return kind
    return "str"


def _save_table(table: pd.DataFrame, folder: Path, file: str) -> dict[str, Any]:
    """Write ``table`` (its index as first columns) to ``folder/file``; what :func:`_load_table` needs to
    read it back: the file, each column's name and type, the index's names, the JSON-able ``attrs``.
    """
    plain = isinstance(table.index, pd.RangeIndex) and table.index.start == 0 and table.index.step == 1 \
        and table.index.name is None
    flat = table if plain else table.reset_index()
    columns = []
    for position, column in enumerate(flat.columns):
        values = flat.iloc[:, position]
        entry: dict[str, Any] = {"name": str(column), "dtype": str(values.dtype)}
        if isinstance(values.dtype, pd.CategoricalDtype):
            entry.update(categories=_plain(values.cat.categories.to_numpy()), ordered=bool(values.cat.ordered),
                         categories_dtype=str(values.cat.categories.dtype))
        elif values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            nan = np.array([isinstance(v, float) for v in values], dtype=bool) & values.isna().to_numpy()
            entry.update(kind=_kind(values) if values.dtype == object else "str",
                         nulls=np.flatnonzero(values.isna().to_numpy() & ~nan).tolist(),
                         nans=np.flatnonzero(nan).tolist())
        columns.append(entry)
    write_csv(folder / file, flat.set_axis([c["name"] for c in columns], axis=1))
    return {"file": file, "columns": columns, "index": None if plain else [None if n is None else str(n)
                                                                          for n in table.index.names],
            "attrs": _jsonable(table.attrs)}


def _cast(values: pd.Series, entry: Mapping[str, Any]) -> pd.Series | pd.Categorical:
    """A column read as strings (blank ``""``) back to the type :func:`_save_table` recorded."""
    dtype, blank = entry["dtype"], values == ""
    if dtype == "bool":
        return values == "True"
    if dtype == "category":
        codes = _cast(values, {"dtype": entry["categories_dtype"]})
        return pd.Categorical(pd.Series(codes).where(~blank), categories=entry["categories"], ordered=entry["ordered"])
    if "nulls" in entry:  # strings, blank or missing
        kind = entry.get("kind", "str")
        out = values.astype(object if dtype == "object" else dtype)
        if kind != "str":
            out[~blank] = [{"bool": lambda v: v == "True", "int": int, "float": float}[kind](v) for v in values[~blank]]
        out.iloc[entry["nulls"]] = None
        out.iloc[entry.get("nans", [])] = np.nan
        return out
    if dtype.startswith(("int", "uint")):
        return values.astype(dtype)
    if dtype.startswith("float"):
        return values.where(~blank, "nan").astype(dtype)
    if dtype.startswith("datetime64"):
        return pd.to_datetime(values.where(~blank)).astype(dtype)
    try:
        return values.where(~blank).astype(dtype)  # string, Int64, boolean...: blank is missing
    except (TypeError, ValueError):
        return values


def _load_table(folder: Path, saved: Mapping[str, Any]) -> pd.DataFrame:
    """The table :func:`_save_table` wrote into ``folder``, with its types, index and attrs."""
    path = folder / saved["file"]
    names = [c["name"] for c in saved["columns"]]
    if names:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8", encoding_errors="surrogateescape")
        raw = raw.set_axis(names, axis=1)
        raw = pd.DataFrame({i: unescape_cells(raw.iloc[:, i]) for i in range(raw.shape[1])}).set_axis(names, axis=1)
    else:
        raw = pd.DataFrame(index=pd.RangeIndex(0))
    table = pd.DataFrame({c["name"]: _cast(raw.iloc[:, i], c) for i, c in enumerate(saved["columns"])},
                         index=raw.index, columns=names)
    if saved["index"] is not None:
        table = table.set_index(names[:len(saved["index"])])
        table.index.names = saved["index"]
    table.attrs = dict(saved["attrs"])
    return table


# --------------------------------------------------------------------------- folders written whole


#: What reads a folder's manifest: the files it lists (POSIX paths relative to the folder), or, when
#: the folder holds no valid manifest, a short reason why not.


def dataset_roots(table: pd.DataFrame) -> list[str]:
    """The folders a dataset table was read from: ``attrs["root"]``, and the folders of its label CSV
    and its ``.npz`` (as :func:`skinlib.load_dataset` sets them), each once.

    Parameters
    ----------
    table : pandas.DataFrame
        A :func:`skinlib.load_dataset` table (one without those ``attrs`` has no roots).

    Returns
    -------
    list of str
        The folders, as recorded (not resolved).

    Examples
    --------
    >>> df = pd.DataFrame({"path": []})
    >>> df.attrs.update(root="data/clinic", csv="data/clinic/labels.csv")
    >>> dataset_roots(df)
    ['data/clinic']
    """
    attrs = getattr(table, "attrs", {}) or {}
    found = [str(attrs["root"])] if attrs.get("root") else []
    found += [os.path.dirname(str(attrs[key])) or "." for key in ("csv", "npz") if attrs.get(key)]
    return list(dict.fromkeys(os.path.normpath(p) for p in found))


def audit_roots(audit: DatasetAudit) -> list[str]:
    """Every folder an audit read a dataset from: its dataset's (:func:`dataset_roots`) and those of the
    tables it was compared against (``settings["roots"]``, which :func:`audit_dataset` records).

    Parameters
    ----------
    audit : DatasetAudit
        An audit, computed or loaded (:func:`load_audit`).

    Returns
    -------
    list of str
        The folders, each once.
    """
    recorded = audit.settings.get("roots") or []
    return list(dict.fromkeys([*dataset_roots(audit.dataset), *(str(r) for r in recorded if r)]))
