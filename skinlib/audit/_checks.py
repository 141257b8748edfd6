"""The audit's checks: one contract (:class:`Check`) and one registry (:data:`CHECKS`).

Each check of :func:`skinlib.audit.audit_dataset` (copies, same lesion, leakage, label issues,
quality, error analysis, unreadable files) is one small :class:`Check`, shaped like an issue
manager of cleanlab's Datalab: a ``name``, its ``tables`` and their CSV files, how it finds them
(:meth:`Check.find` on the dataset, :meth:`Check.find_in_run` on each run, :meth:`Check.finish`),
its rows of the summary table (:meth:`Check.summary`) and its section of the report
(:meth:`Check.section`). :data:`CHECKS` holds them in the order of the summary and of the page;
the audit, the report (:data:`TABLE_FILES` too) and the command line walk it, so a check added with
:func:`register` shows everywhere without another edit.

>>> list(CHECKS)
['copies', 'same_lesion', 'leakage', 'label_issues', 'quality', 'error_analysis', 'unreadable']
>>> TABLE_FILES["same_lesion"]
'same_lesion.csv'
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator

import pandas as pd

from skinlib.audit._duplicates import find_duplicates
from skinlib.audit._error_analysis import ErrorAnalysis, analyse_errors
from skinlib.audit._label_issues import find_label_issues
from skinlib.audit._quality import find_quality_issues
from skinlib.audit._same_lesion import find_same_lesion
from skinlib.data import check_leakage, drop_leaked, merge_pairs
from skinlib.runs import is_cross_validation

__all__ = ["Check", "Findings", "CHECKS", "TABLE_FILES", "register", "unregister", "table_files",
           "is_cross_validation", "concat_runs", "SPLIT_COLUMN", "UNREADABLE_COLUMNS", "SUMMARY_FILE"]

#: The column of a dataset's own split (``train/``, ``test/`` folders), whose leakage is checked.
SPLIT_COLUMN = "source_split"
#: The columns of :attr:`DatasetAudit.unreadable`.
UNREADABLE_COLUMNS = ["path", "reason", "found_by"]
#: The CSV file of the summary table, which every audit has (the checks' tables follow it).
SUMMARY_FILE = "summary.csv"

#: A row of the summary table: check, issue kind, count.
Row = tuple[str, str, int]


def concat_runs(tables: Mapping[str, pd.DataFrame | None]) -> pd.DataFrame | None:
    """The tables one after the other, each with a first column ``run`` naming it; None if none."""
    parts = []
    for name, table in tables.items():
        if table is not None:
            if not isinstance(table.index, pd.RangeIndex) or table.index.name is not None:
                table = table.reset_index()  # operating_points are indexed by their point: keep it as a column
            parts.append(table.assign(run=name)[["run", *table.columns]])
    return pd.concat(parts, ignore_index=True) if parts else None


@dataclass
class Findings:
    """What the checks of one audit share while they run: its inputs, and what they found so far.

    Every parameter but ``dataset`` defaults to an empty list or dict; the checks fill them in.

    Parameters
    ----------
    dataset : pandas.DataFrame
        The audited table.
    against : dict, optional
        The other tables by name.
    runs : list of str, optional
        The run and cross-validation folders.
    options : dict, optional
        ``cache_dir``, ``progress``, ``n_boot``, ``seed``.
    tables : dict, optional
        Table name (of a check's :attr:`Check.tables`) to the table found, None when it does not apply.
    errors : dict, optional
        Run to its :class:`~skinlib.audit.ErrorAnalysis`.
    leaked_test : list of str, optional
        The test images :func:`skinlib.drop_leaked` would remove.
    notes : list of str, optional
        What was skipped and why.
    unreadable : list of tuple, optional
        (path, reason, step) of every file a step could not read, in the order found.
    per_run : dict, optional
        Check name to a dict run -> what :meth:`Check.find_in_run` kept, for :meth:`Check.finish`.
    predictions : dict, optional
        Run to its predictions of the dataset's rows, for a run some of whose predictions are of other
        images (:func:`skinlib.audit._run_predictions.dataset_predictions`); see :meth:`source`.
    """

    dataset: pd.DataFrame
    against: dict[str, pd.DataFrame] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame | None] = field(default_factory=dict)
    errors: dict[str, ErrorAnalysis] = field(default_factory=dict)
    leaked_test: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str, str]] = field(default_factory=list)
    per_run: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)

    def source(self, run: str) -> Any:
        """What the runs' checks read for ``run``: its folder, or its predictions of the dataset's rows only.

        Parameters
        ----------
        run : str
            A run or cross-validation folder of :attr:`runs`.

        Returns
        -------
        str or pandas.DataFrame
            ``run``, or the table in :attr:`predictions` when it has one.
        """
        return self.predictions.get(run, run)

    def gather(self, table: pd.DataFrame, what: str) -> None:
        """List the files a finder skipped (its ``attrs["skipped"]``) as unreadable by step ``what``.

        Parameters
        ----------
        table : pandas.DataFrame
            A finder's table; ``attrs["skipped"]`` holds ``(path, reason)`` pairs (none when absent).
        what : str
            The step named in :attr:`unreadable` (``"copies"``, ``"same lesion"``...).
        """
        self.unreadable.extend((p, r, what) for p, r in table.attrs.get("skipped", []))

    @staticmethod
    def quietly(function: Callable, *args, **kwargs):
        """``function(*args, **kwargs)`` without its "skipped N images" warning: they are listed instead.

        Parameters
        ----------
        function : callable
            A finder (:func:`skinlib.find_duplicates`...).
        *args, **kwargs
            Its arguments.

        Returns
        -------
        object
            What ``function`` returns; other warnings are still shown.
        """
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*skipped \d+ image")
            return function(*args, **kwargs)

    @property
    def search_options(self) -> dict[str, Any]:
        """The options of the image searches (copies, same lesion): ``cache_dir`` and ``progress``."""
        return {"cache_dir": self.options.get("cache_dir"), "progress": self.options.get("progress", True)}


class Check:
    """The contract of one audit check (after cleanlab Datalab's ``IssueManager``).

    A check is registered with :func:`register` and then found by the audit, the summary, the
    report and the command line. Its class attributes say what it is; its methods find its tables
    (``find_issues`` in cleanlab), count them (``make_summary``) and show them (``report``).

    Attributes
    ----------
    name : str
        Its key in :data:`CHECKS` (``"same_lesion"``); ``--no-<name>`` on the command line when
        it can be skipped.
    tables : dict
        Its tables (attributes of :class:`~skinlib.audit.DatasetAudit`) to their CSV files.
    anchor, title, nav : str
        Its section's id, heading and link in the page's navigation.
    step : str or None
        The progress bar's step while :meth:`find` runs; None for a quick check (no step).
    skip_help : str or None
        The help of ``--no-<name>`` when the check can be skipped (``audit_dataset(skip=...)``);
        None when it always runs.
    """

    name: ClassVar[str] = ""
    tables: ClassVar[dict[str, str]] = {}
    anchor: ClassVar[str] = ""
    title: ClassVar[str] = ""
    nav: ClassVar[str] = ""
    step: ClassVar[str | None] = None
    skip_help: ClassVar[str | None] = None
    #: Whether :meth:`find_in_run` does anything (the runs are a step each when one check does).
    per_run: ClassVar[bool] = False

    def find(self, found: Findings) -> None:
        """Search the dataset: set ``found.tables[t]`` for each of :attr:`tables` (or leave it None).

        The base class does nothing.

        Parameters
        ----------
        found : Findings
            The audit's inputs and what the checks found so far; its tables, notes, unreadable
            files and leaked test images are set there.
        """

    def find_in_run(self, found: Findings, run: str) -> None:
        """Search one run or cross-validation folder (called per run, in order, for each check).

        The base class does nothing; a check that does something here sets :attr:`per_run`.

        Parameters
        ----------
        found : Findings
            The audit's inputs and what the checks found so far; what the run gives is kept
            there (``found.per_run``, ``found.errors``) or noted.
        run : str
            The run or cross-validation folder, as given to the audit.
        """

    def finish(self, found: Findings) -> None:
        """Gather what :meth:`find_in_run` kept, after every check has searched every run.

        The base class does nothing.

        Parameters
        ----------
        found : Findings
            The audit's inputs and what the checks found so far; the gathered tables are set in
            ``found.tables``.
        """

    def summary(self, audit) -> list[Row]:
        """Its rows of the summary table: ``(check, issue, count)``; none when it did not run.

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.

        Returns
        -------
        list of tuple
            ``(check, issue, count)`` rows; the base class returns none.
        """
        return []

    def section(self, audit, page) -> str | None:
        """Its section of the report, built through ``page``; None for no section.

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.
        page : object
            The report's page builder: ``page.section(self, ...)``, ``page.table``,
            ``page.note``, ``page.figure``, ``page.heading`` (every value escaped there), and
            ``page.shown``, the pairs shown side by side.

        Returns
        -------
        str or None
            The section's HTML; the base class returns None.
        """
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {', '.join(self.tables)}>"


#: The registered checks by name, in the order of the summary and of the report.
CHECKS: dict[str, Check] = {}


def register(check: type[Check] | Check) -> type[Check] | Check:
    """Add a check (a :class:`Check` subclass, or an instance) to :data:`CHECKS`, last.

    Usable as a class decorator.

    Parameters
    ----------
    check : type or Check
        A :class:`Check` subclass (registered as an instance made without arguments) or an instance.

    Returns
    -------
    type or Check
        ``check``, unchanged.

    Raises
    ------
    ValueError
        For an empty name, a name already registered, or a table another check has.

    Examples
    --------
    >>> @register
    ... class Nothing(Check):
    ...     name, tables = "nothing", {"nothing": "nothing.csv"}
    >>> "nothing" in CHECKS and TABLE_FILES["nothing"]
    'nothing.csv'
    >>> unregister("nothing"); "nothing" in TABLE_FILES
    False
    """
    instance = check() if isinstance(check, type) else check
    if not instance.name or instance.name in CHECKS:
        why = "taken" if instance.name else "empty"
        raise ValueError(f"a check needs a name of its own; {instance.name!r} is {why}")
    taken = set(table_files())
    if taken & set(instance.tables):
        raise ValueError(f"check {instance.name!r}: table {sorted(taken & set(instance.tables))[0]!r} is another's")
    CHECKS[instance.name] = instance
    return check


def unregister(name: str) -> None:
    """Remove the check ``name`` from :data:`CHECKS` (a check registered for a test...).

    Parameters
    ----------
    name : str
        The check's :attr:`Check.name`.

    Raises
    ------
    KeyError
        When no check of that name is registered.
    """
    del CHECKS[name]


def table_files() -> dict[str, str]:
    """Every table of an audit to its CSV file: the summary, then each registered check's tables."""
    files = {"summary": SUMMARY_FILE}
    for check in CHECKS.values():
        files.update(check.tables)
    return files


class _TableFiles(Mapping):
    """:func:`table_files` as a mapping that follows :data:`CHECKS` (a check registered later shows)."""

    def __getitem__(self, name: str) -> str:
        return table_files()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(table_files())

    def __len__(self) -> int:
        return len(table_files())

    def __repr__(self) -> str:
        return repr(table_files())


#: The audit's tables (attributes of :class:`~skinlib.audit.DatasetAudit`) and their CSV files, from
#: :data:`CHECKS`; a table that does not apply (no runs, no split of its own...) gets no file.
TABLE_FILES: Mapping[str, str] = _TableFiles()


# --------------------------------------------------------------------------- the checks


def _with_against(pairs: pd.DataFrame, name: str) -> pd.DataFrame:
    out = pairs.copy()
    out.insert(len(out.columns), "against", name)
    out.attrs = dict(pairs.attrs)
    return out


def _pairs_section(check: Check, page, pairs: pd.DataFrame | None, what: str) -> str:
    """A section of pairs: a note, the first pairs side by side, the table; "not searched" when None."""
    if pairs is None:
        return page.section(check, page.note("not searched"))
    from skinlib.plotting import plot_pairs

    shown = page.shown
    figure = page.figure(lambda: plot_pairs(pairs, shown), f"the first {shown} {what}") if len(pairs) else ""
    return page.section(check, page.note(f"{what.capitalize()}: {len(pairs)}, most similar first."), figure,
                        page.table(pairs, check.tables[next(iter(check.tables))]))


@register
class CopiesCheck(Check):
    """Copies (:func:`skinlib.find_duplicates`) within the dataset, then against each other table."""

    name, tables, step = "copies", {"copies": "copies.csv"}, "copies"
    anchor, title, nav = "copies", "Copies", "Copies"

    def find(self, found: Findings) -> None:
        """Set ``found.tables["copies"]``: the copies within the dataset, then against each other table.

        Parameters
        ----------
        found : Findings
            The audit's inputs and what the checks found so far; the table has an ``against`` column (``""`` within
            the dataset, else the other table's name).
        """
        parts = [_with_against(found.quietly(find_duplicates, found.dataset, **found.search_options), "")]
        parts += [_with_against(found.quietly(find_duplicates, found.dataset, other, **found.search_options), name)
                  for name, other in found.against.items()]
        for part in parts:
            found.gather(part, "copies")
        found.tables["copies"] = pd.concat(parts, ignore_index=True).reset_index(drop=True)

    def summary(self, audit) -> list[Row]:
        """The number of pairs of each kind, within the dataset and against each other table.

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.

        Returns
        -------
        list of tuple
            ``("copies", kind, count)``, then ``("copies in <other>", kind, count)``; none
            without a copies table.
        """
        if audit.copies is None:
            return []
        rows = []
        for against, part in audit.copies.groupby("against", sort=False):
            where = "copies" if not against else f"copies in {against}"
            rows += [(where, str(kind), int(n)) for kind, n in part["kind"].value_counts().sort_index().items()]
        return rows

    def section(self, audit, page) -> str:
        """A note, the first pairs side by side and the table of copies ("not searched" without one).

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.
        page : object
            The report's page builder (see :meth:`Check.section`).

        Returns
        -------
        str
            The section's HTML.
        """
        return _pairs_section(self, page, audit.copies, "pairs of copies (identical or near)")


@register
class SameLesionCheck(Check):
    """Other photographs of one lesion (:func:`skinlib.audit.find_same_lesion`) not already listed as copies."""

    name, tables, step = "same_lesion", {"same_lesion": "same_lesion.csv"}, "same lesion"
    anchor, title, nav = "same-lesion", "Same lesion", "Same lesion"
    skip_help = "skip the search for same-lesion pairs"

    def find(self, found: Findings) -> None:
        """Set ``found.tables["same_lesion"]``: same-lesion pairs not listed as copies, per table.

        Parameters
        ----------
        found : Findings
            The audit's inputs and what the checks found so far; it needs ``found.tables["copies"]``. The table has
            an ``against`` column, as the copies'.
        """
        copies = found.tables["copies"]
        parts = []
        for other_name, other in [("", None), *found.against.items()]:
            tables = (found.dataset,) if other is None else (found.dataset, other)
            pairs = found.quietly(find_same_lesion, *tables, **found.search_options)
            found.gather(pairs, "same lesion")
            parts.append(_with_against(self._new(pairs, copies[copies["against"] == other_name]), other_name))
        found.tables["same_lesion"] = pd.concat(parts, ignore_index=True).reset_index(drop=True)

    @staticmethod
    def _new(pairs: pd.DataFrame, copies: pd.DataFrame) -> pd.DataFrame:
        """The finder's own rows (its columns and dtypes), less the pairs already listed as copies."""
        merged = merge_pairs(copies.drop(columns="against"), pairs)
        new = merged[merged["kind"] == "same lesion"]
        kept = {frozenset(ab) for ab in zip(new["path_a"].astype(str), new["path_b"].astype(str))}
        return pairs[[frozenset(ab) in kept for ab in zip(pairs["path_a"].astype(str), pairs["path_b"].astype(str))]]

    def summary(self, audit) -> list[Row]:
        """The number of same-lesion pairs within the dataset and against each other table.

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.

        Returns
        -------
        list of tuple
            ``("same lesion", "pairs", count)``, then ``("same lesion in <other>", "pairs",
            count)``; none when not searched.
        """
        lesions = audit.same_lesion
        if lesions is None:
            return []
        return [("same lesion" if not against else f"same lesion in {against}", "pairs",
                 int((lesions["against"] == against).sum()))
                for against in ["", *sorted(set(lesions["against"]) - {""})]]

    def section(self, audit, page) -> str:
        """A note, the first pairs side by side and the table ("not searched" when not searched).

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.
        page : object
            The report's page builder (see :meth:`Check.section`).

        Returns
        -------
        str
            The section's HTML.
        """
        return _pairs_section(self, page, audit.same_lesion, "pairs of photographs of one lesion (copies not repeated)")


@register
class LeakageCheck(Check):
    """The pairs within the dataset that its own split (``source_split``) separates, and the test
    images :func:`skinlib.drop_leaked` would remove.
    """

    name, tables = "leakage", {"leakage": "leakage.csv"}
    anchor, title, nav = "leakage", "Leakage of the dataset's split", "Leakage"

    def find(self, found: Findings) -> None:
        """Set ``found.tables["leakage"]`` and ``found.leaked_test`` from the dataset's own split.

        Uses the copies and same-lesion pairs within the dataset; with no split of its own (fewer than
        two non-empty values of :data:`SPLIT_COLUMN`), a note instead.

        Parameters
        ----------
        found : Findings
            The audit's inputs and what the checks found so far; the test images are set only with a ``test`` split.
        """
        df, copies, lesions = found.dataset, found.tables["copies"], found.tables.get("same_lesion")
        within = copies[copies["against"] == ""]
        if lesions is not None:
            within = pd.concat([within, lesions[lesions["against"] == ""]], ignore_index=True)
        split = df[SPLIT_COLUMN].astype(str) if SPLIT_COLUMN in df.columns else pd.Series([], dtype=str)
        if split.ne("").any() and split[split != ""].nunique() > 1:
            found.tables["leakage"] = check_leakage(df, within, column=SPLIT_COLUMN)
            if "test" in set(split):
                found.leaked_test = list(drop_leaked(df, within, column=SPLIT_COLUMN).attrs["dropped"])
        else:
            found.notes.append("the dataset has no train/test split of its own (source_split): no leakage to check")

    def summary(self, audit) -> list[Row]:
        """The pairs across the dataset's split and the test images with a copy or lesion outside test.

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.

        Returns
        -------
        list of tuple
            Two ``("leakage", issue, count)`` rows; none without a split of its own.
        """
        if audit.leakage is None:
            return []
        return [("leakage", "pairs across the split", len(audit.leakage)),
                ("leakage", "test images with a copy or lesion outside test", len(audit.leaked_test))]

    def section(self, audit, page) -> str:
        """A note with the counts and the table of leaking pairs (a note alone without a split).

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.
        page : object
            The report's page builder (see :meth:`Check.section`).

        Returns
        -------
        str
            The section's HTML.
        """
        if audit.leakage is None:
            return page.section(self, page.note("no train/test split of its own"))
        return page.section(
            self, page.note(f"Pairs of copies or same-lesion photographs that cross the dataset's own split: "
                            f"{len(audit.leakage)}. Test images with a copy or same-lesion photograph outside the "
                            f"test split: {len(audit.leaked_test)} (skinlib.drop_leaked leaves them out)."),
            page.table(audit.leakage, self.tables["leakage"]))


@register
class LabelIssuesCheck(Check):
    """Likely label errors (:func:`skinlib.find_label_issues`) of each cross-validation folder."""

    name, tables, per_run = "label_issues", {"label_issues": "label_issues.csv"}, True
    anchor, title, nav = "label-issues", "Likely label errors", "Label errors"

    def find_in_run(self, found: Findings, run: str) -> None:
        """Keep :func:`skinlib.find_label_issues` of a cross-validation folder; a note for a run folder.

        Parameters
        ----------
        found : Findings
            The audit's inputs and what the checks found so far; the table is kept in ``found.per_run["label_issues"]``;
            a ``ValueError`` of the search becomes a note.
        run : str
            The run or cross-validation folder.
        """
        if not is_cross_validation(run):
            found.notes.append(f"label issues: {run} is a run folder, which scores only its test fold; "
                               "pass a cross-validation folder for out-of-fold predictions")
            return
        try:
            found.per_run.setdefault(self.name, {})[run] = find_label_issues(found.source(run), found.dataset)
        except ValueError as exc:
            found.notes.append(f"label issues of {run}: {exc}")

    def finish(self, found: Findings) -> None:
        """Set ``found.tables["label_issues"]``: the kept tables with a ``run`` column (None if none).

        Parameters
        ----------
        found : Findings
            The audit's inputs and what the checks found so far; see :func:`concat_runs`.
        """
        found.tables["label_issues"] = concat_runs(found.per_run.get(self.name, {}))

    def summary(self, audit) -> list[Row]:
        """The number of flagged images of each cross-validation.

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.

        Returns
        -------
        list of tuple
            ``("label issues of <run>", "flagged", count)`` per run; none without the table.
        """
        if audit.label_issues is None:
            return []
        return [(f"label issues of {run}", "flagged", int(part["flagged"].sum()))
                for run, part in audit.label_issues.groupby("run", sort=False)]

    def section(self, audit, page) -> str | None:
        """Per run: a heading, a note, the likeliest label errors drawn and the flagged rows.

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.
        page : object
            The report's page builder (see :meth:`Check.section`).

        Returns
        -------
        str or None
            The section's HTML; None without the table.
        """
        if audit.label_issues is None:
            return None
        parts = []
        for run, issues in audit.label_issues.groupby("run", sort=False):
            flagged = int(issues["flagged"].sum())
            parts += [page.heading(run), page.note(f"{flagged} of {len(issues)} images flagged, likeliest first.")]
            if flagged:
                from skinlib.plotting import plot_label_issues

                parts.append(page.figure(lambda: plot_label_issues(issues.drop(columns="run"), n=12),
                                         f"the likeliest label errors of {run}"))
            parts.append(page.table(issues[issues["flagged"]] if flagged else issues.head(0),
                                    self.tables["label_issues"]))
        return page.section(self, *parts)


@register
class QualityCheck(Check):
    """Dark, blurry, ... images (:func:`skinlib.find_quality_issues`, CleanVision)."""

    name, tables, step = "quality", {"quality": "quality.csv"}, "quality"
    anchor, title, nav = "quality", "Image quality", "Quality"
    skip_help = "skip the image quality checks"

    def find(self, found: Findings) -> None:
        """Set ``found.tables["quality"]``: :func:`skinlib.find_quality_issues` of the dataset.

        Parameters
        ----------
        found : Findings
            The audit's inputs and what the checks found so far; the files it could not read (its
            ``attrs["skipped"]``) are added to ``found.unreadable``.
        """
        issues = find_quality_issues(found.dataset, progress=found.options.get("progress", True))
        found.unreadable += [(p, r, "quality") for p, r in issues.attrs.get("skipped", [])]
        found.tables["quality"] = issues

    def summary(self, audit) -> list[Row]:
        """The number of images per issue type (``attrs["summary"]``, else counted), unreadable left out.

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.

        Returns
        -------
        list of tuple
            ``("quality", issue, count)`` rows; none when not checked.
        """
        if audit.quality is None:
            return []
        counts = audit.quality.attrs.get("summary") or audit.quality["issue"].value_counts().to_dict()
        return [("quality", str(issue), int(n)) for issue, n in counts.items() if issue != "unreadable"]

    def section(self, audit, page) -> str | None:
        """A note, examples of each issue drawn and the table of issues (unreadable files left out).

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.
        page : object
            The report's page builder (see :meth:`Check.section`).

        Returns
        -------
        str or None
            The section's HTML; None when not checked.
        """
        if audit.quality is None:
            return None
        found = audit.quality[audit.quality["issue"] != "unreadable"]
        checked = audit.quality.attrs.get("checked", "?")
        parts = [page.note(f"{found['path'].nunique()} images with an issue, of {checked} checked "
                           "(lowest score first within each issue).")]
        if len(found):
            from skinlib.plotting import plot_quality_issues

            parts.append(page.figure(lambda: plot_quality_issues(found, n=4), "examples of each image quality issue"))
        parts.append(page.table(found, self.tables["quality"]))
        return page.section(self, *parts)


@register
class ErrorAnalysisCheck(Check):
    """Per diagnosis, per subgroup and operating-point metrics (:func:`skinlib.analyse_errors`) of each run."""

    name, per_run = "error_analysis", True
    tables = {"diagnoses": "diagnoses.csv", "subgroups": "subgroups.csv", "operating_points": "operating_points.csv"}
    anchor, title, nav = "errors", "What one ROC AUC hides", "Error analysis"

    def find_in_run(self, found: Findings, run: str) -> None:
        """Set ``found.errors[run]``: :func:`skinlib.analyse_errors` of the run.

        Parameters
        ----------
        found : Findings
            The audit's inputs and what the checks found so far; its ``n_boot`` and ``seed`` options are used; a
            ``ValueError`` of the analysis becomes a note.
        run : str
            The run or cross-validation folder.
        """
        try:
            found.errors[run] = analyse_errors(found.source(run), found.dataset, n_boot=found.options.get("n_boot", 200),
                                               seed=found.options.get("seed", 0))
        except ValueError as exc:
            found.notes.append(f"error analysis of {run}: {exc}")

    def finish(self, found: Findings) -> None:
        """Set the ``diagnoses``, ``subgroups`` and ``operating_points`` tables of every run, with ``run``.

        Parameters
        ----------
        found : Findings
            The audit's inputs and what the checks found so far; see :func:`concat_runs`.
        """
        for table in self.tables:
            found.tables[table] = concat_runs({run: getattr(e, table) for run, e in found.errors.items()})

    def section(self, audit, page) -> str | None:
        """Per run: a heading, the figures of :func:`skinlib.plotting.plot_error_analysis` and its tables.

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.
        page : object
            The report's page builder (see :meth:`Check.section`).

        Returns
        -------
        str or None
            The section's HTML; None without an error analysis.
        """
        if not audit.errors:
            return None
        from skinlib.plotting import plot_error_analysis

        parts = []
        for run, analysis in audit.errors.items():
            parts.append(page.heading(run))
            for name, fig in plot_error_analysis(analysis).items():
                parts.append(page.figure(lambda: fig, f"{name} of {run}"))
            for name, csv in self.tables.items():
                table = audit.tables.get(name)
                if table is not None:
                    part = table[table["run"] == run].drop(columns="run")
                    parts += [page.heading(name.replace("_", " "), 4), page.table(part, csv)]
        return page.section(self, *parts)


@register
class UnreadableCheck(Check):
    """Every file that could not be read, once, with the first reason given and the steps that skipped it."""

    name, tables = "unreadable", {"unreadable": "unreadable.csv"}
    anchor, title, nav = "unreadable", "Files that could not be read", "Unreadable"

    def finish(self, found: Findings) -> None:
        """Set ``found.tables["unreadable"]``: each file once, its first reason, the steps that skipped it.

        Parameters
        ----------
        found : Findings
            The audit's inputs and what the checks found so far; the table has :data:`UNREADABLE_COLUMNS` (strings;
            ``found_by`` joins the steps with ``", "``).
        """
        by_path: dict[str, list[str]] = {}
        for path, reason, step in found.unreadable:
            entry = by_path.setdefault(str(path), [str(reason), ""])
            steps = entry[1].split(", ") if entry[1] else []
            if step not in steps:
                entry[1] = ", ".join([*steps, step])
        found.tables["unreadable"] = pd.DataFrame([(p, r, s) for p, (r, s) in by_path.items()],
                                                  columns=UNREADABLE_COLUMNS, dtype=str)

    def summary(self, audit) -> list[Row]:
        """The number of files that could not be read.

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.

        Returns
        -------
        list of tuple
            One row, ``("unreadable", "files", count)``.
        """
        return [("unreadable", "files", len(audit.unreadable))]

    def section(self, audit, page) -> str:
        """The table of files that could not be read.

        Parameters
        ----------
        audit : DatasetAudit
            The audit, its tables found.
        page : object
            The report's page builder (see :meth:`Check.section`).

        Returns
        -------
        str
            The section's HTML.
        """
        return page.section(self, page.table(audit.unreadable, self.tables["unreadable"]))
