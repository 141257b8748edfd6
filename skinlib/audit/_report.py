"""Writing a dataset audit to disk: one self-contained HTML page and a CSV file per table.

:func:`write_audit_report` writes a :class:`skinlib.audit.DatasetAudit` into a folder:
``report.html``, a single file that opens from disk anywhere (its figures are embedded as
base64 PNG images, its style is inline, it loads nothing and runs no script), and the audit's
tables as CSV files (:data:`TABLE_FILES`), in full where the page shows their first rows.
Every file name and value on the page is HTML-escaped: a file named
``<img src=x onerror=alert(1)>.jpg`` shows as that text; one whose name is not valid UTF-8 shows
each undecodable byte as ``\\xNN`` (:func:`skinlib.plotting.display_text`), as its figures do, and
a ``$`` in a name is drawn as a dollar sign. The images audited are only read.

A report folder is written whole or not at all: its files are written into a temporary sibling
folder, which then replaces the report folder in one rename (:func:`skinlib._shared.folders.write_folder`),
so an interrupted report leaves the previous one as it was. The page's head lists the files the
report wrote (:func:`report_files` reads that list back); a folder is only ever replaced when it
holds nothing else, and never when it lies inside an audited dataset (:func:`check_report_dir`).

>>> audit = skinlib.audit.audit_dataset(skinlib.load_dataset("data/mvb"))  # doctest: +SKIP
>>> write_audit_report(audit, "runs/mvb/audit")  # doctest: +SKIP
PosixPath('runs/mvb/audit/report.html')
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from skinlib._shared.folders import check_folder, write_folder
from skinlib.audit._audit import DatasetAudit, audit_roots, write_csv
from skinlib.audit._checks import CHECKS, SUMMARY_FILE, TABLE_FILES, Check
from skinlib._shared.files import atomic_write
from skinlib.plotting import display_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["write_audit_report", "check_report_dir", "report_files", "html_table", "figure_html", "REPORT_FILE",
           "TABLE_FILES"]

#: The page's file name in the report folder.
REPORT_FILE = "report.html"
#: The ``name`` of the page's ``<meta>`` element that lists the report's files (its manifest).
_MANIFEST_META = "skinlib-report-files"
#: The manifest's ``format``; a page with another is not a report this code wrote.
_FORMAT = "skinlib-report-1"
_MANIFEST_RE = re.compile(rf'<meta name="{_MANIFEST_META}" content="([^"]*)">')
#: How much of the page's start is read for its manifest (it is in the head, before the style).
_HEAD_BYTES = 1 << 16
# TABLE_FILES, the audit's tables and their CSV files, follows the registered checks (skinlib.audit._checks).

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .2em .5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td { overflow-wrap: break-word; max-width: 40em; } td.num { white-space: nowrap; }
div.table { overflow-x: auto; }
img { max-width: 100%; height: auto; display: block; margin: .5em 0; }
.note { color: #555; font-size: .9em; } nav a { margin-right: 1em; }
"""


def _esc(value) -> str:
    # display_text first: a file name that is not UTF-8 shows its bytes as \xNN, as on its figures.
    return html.escape(display_text(value), quote=True)


def _cell(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, (int, np.integer)):
        return f'<td class="num">{int(value)}</td>'
    if isinstance(value, (float, np.floating)):
        return '<td class="num">' + ("" if np.isnan(value) else f"{float(value):.3g}") + "</td>"
    return f"<td>{_esc('' if value is None else value)}</td>"


def html_table(table: pd.DataFrame, max_rows: int = 100, csv_name: str | None = None) -> str:
    """A table as an HTML ``<table>`` of its first ``max_rows`` rows, every header and value escaped.

    Parameters
    ----------
    table : pandas.DataFrame
        The table (its index is left out).
    max_rows : int
        Rows shown; a note below says how many there are and names ``csv_name``, which has all.
    csv_name : str, optional
        The CSV file of the full table.

    Returns
    -------
    str

    Examples
    --------
    >>> text = html_table(pd.DataFrame({"path": ["<b>.jpg"], "n": [2]}))
    >>> "<td>&lt;b&gt;.jpg</td>" in text, '<td class="num">2</td>' in text, "<b>" in text
    (True, True, False)
    """
    if table.empty:
        return '<p class="note">none</p>'
    head = "".join(f"<th>{_esc(c)}</th>" for c in table.columns)
    rows = ["<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in table.head(max_rows).itertuples(index=False)]
    out = f'<div class="table"><table><tr>{head}</tr>{"".join(rows)}</table></div>'
    if len(table) > max_rows:
        where = f"; all of them are in {_esc(csv_name)}" if csv_name else ""
        out += f'<p class="note">The first {max_rows} of {len(table)} rows{where}.</p>'
    return out


def figure_html(fig: "Figure", alt: str, *, dpi: int = 80) -> str:
    """``fig`` as an ``<img>`` whose source is the PNG itself (base64), drawn with the Agg canvas.

    The Agg canvas is attached to ``fig`` whatever pyplot's backend is: no window opens.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, saved as PNG with ``bbox_inches="tight"``.
    alt : str
        The image's ``alt`` text (HTML-escaped).
    dpi : int
        The PNG's resolution in dots per inch (default 80).

    Returns
    -------
    str
        One ``<img alt="..." src="data:image/png;base64,...">`` element.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> figure_html(Figure(figsize=(1, 1)), "an <empty> figure")[:62]
    '<img alt="an &lt;empty&gt; figure" src="data:image/png;base64,'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # the Agg canvas, whatever pyplot's backend is: no window, nothing global
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{anchor}"><h2>{_esc(title)}</h2>{"".join(parts)}</section>'


def _figure(build: Callable[[], "Figure"], alt: str) -> str:
    """The figure ``build`` draws, embedded; a figure that fails to draw is a note, not a lost report."""
    try:
        return figure_html(build(), alt)
    except Exception as exc:  # a failed thumbnail, a value matplotlib cannot draw...: one figure, not the report
        return _note(f"{alt}: the figure could not be drawn ({type(exc).__name__}: {exc})")


def _note(text: str) -> str:
    return f'<p class="note">{_esc(text)}</p>'


class _Page:
    """What a check's :meth:`~skinlib.audit.Check.section` builds its section with: every value escaped here."""

    def __init__(self, max_rows: int, shown: int) -> None:
        self.max_rows, self.shown = max_rows, shown

    def section(self, check: Check, *parts: str) -> str:
        """The check's section: its heading, then ``parts`` (HTML built by the methods below)."""
        return _section(check.anchor, check.title, *parts)

    def table(self, table: pd.DataFrame, csv_name: str | None = None) -> str:
        """The table's first rows (:func:`html_table`), naming the CSV file that holds it whole."""
        return html_table(table, self.max_rows, csv_name)

    def heading(self, text, level: int = 3) -> str:
        return f"<h{level}>{_esc(text)}</h{level}>"

    note = staticmethod(_note)
    figure = staticmethod(_figure)


def _manifest(files: list[str]) -> str:
    """The ``<meta>`` element listing the report's files, which :func:`report_files` reads back."""
    listed = json.dumps({"format": _FORMAT, "files": sorted(files)}, ensure_ascii=True)
    return f'<meta name="{_MANIFEST_META}" content="{_esc(listed)}">'


def report_files(folder: str | os.PathLike) -> set[str] | str:
    """The files the report in ``folder`` wrote, as its page lists them; or why ``folder`` holds no such report.

    Parameters
    ----------
    folder : str or path-like
        A folder, which need not exist.

    Returns
    -------
    set of str or str
        The file names (:data:`REPORT_FILE` among them) when ``folder/report.html`` is a page
        :func:`write_audit_report` wrote; otherwise a short reason (no page, a page without the list).

    Examples
    --------
    >>> report_files("/no/such/report")
    'no report.html'
    """
    page = Path(folder) / REPORT_FILE
    if page.is_symlink() or not page.is_file():
        return f"no {REPORT_FILE}"
    try:
        with open(page, "rb") as fh:
            head = fh.read(_HEAD_BYTES).decode("utf-8", "replace")
    except OSError as exc:
        return f"its {REPORT_FILE} cannot be read: {exc.strerror or exc}"
    found = _MANIFEST_RE.search(head)
    if found is None:
        return f"its {REPORT_FILE} does not list the files of a report (not written by skinlib, or by an older version)"
    try:
        manifest = json.loads(html.unescape(found.group(1)))
    except json.JSONDecodeError:
        return f"the list of files in its {REPORT_FILE} is damaged"
    files = manifest.get("files") if isinstance(manifest, dict) and manifest.get("format") == _FORMAT else None
    if not (isinstance(files, list) and REPORT_FILE in files and all(
            isinstance(f, str) and f not in ("", ".", "..") and "/" not in f and "\\" not in f for f in files)):
        return f"the list of files in its {REPORT_FILE} is not one this version writes"
    return set(files)


def _head(audit: DatasetAudit, nav: list[tuple[str, str]], files: list[str]) -> str:
    """The page's head (the list of the report's files in it), title, the line on the dataset and the navigation."""
    root = audit.dataset.attrs.get("root", "")
    written = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    links = "".join(f'<a href="#{_esc(anchor)}">{_esc(title)}</a>' for anchor, title in nav)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{_manifest(files)}'
            f"<title>Audit of {_esc(audit.name)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>Audit of {_esc(audit.name)}</h1>"
            f'<p class="note">{len(audit.dataset)} images in {_esc(root)}; written {_esc(written)}. '
            "The tables below show their first rows; the CSV files beside this page hold them whole.</p>"
            f"<nav>{links}</nav>")


def _summary_section(audit: DatasetAudit, max_rows: int) -> str:
    return _section("summary", "Summary", html_table(audit.summary, max_rows, SUMMARY_FILE),
                    *(_note(n) for n in audit.notes))


def _sections(audit: DatasetAudit, page: _Page) -> list[tuple[Check, str]]:
    """Each registered check with its section, in order; those without one are left out."""
    found = ((check, check.section(audit, page)) for check in CHECKS.values())
    return [(check, section) for check, section in found if section is not None]


def _page(audit: DatasetAudit, max_rows: int, shown: int, files: list[str]) -> str:
    sections = _sections(audit, _Page(max_rows, shown))
    nav = [("summary", "Summary"), *((check.anchor, check.nav) for check, _ in sections)]
    body = [_summary_section(audit, max_rows), *(section for _, section in sections)]
    return f"{_head(audit, nav, files)}{''.join(body)}</body></html>\n"


def _table_files(audit: DatasetAudit) -> dict[str, str]:
    """Each table that applies (a table that is None, or no unreadable file, does not) and its CSV file."""
    found = {}
    for name, filename in TABLE_FILES.items():
        table = audit.tables.get(name)
        if table is not None and not (name == "unreadable" and table.empty):
            found[name] = filename
    return found


def _write_text(path: Path, text: str, errors: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8", errors)), mode="wb")


def check_report_dir(out_dir: str | os.PathLike, datasets=()) -> Path:
    """Check, before any work, that a report can be written into ``out_dir``.

    ``out_dir`` may be missing, an empty folder, or a report folder :func:`write_audit_report`
    wrote (its page lists every file in it, :func:`report_files`); it may not be, or lie inside,
    one of ``datasets``, comparing resolved paths (links followed).

    Parameters
    ----------
    out_dir : str or path-like
        The report folder.
    datasets : iterable of path-like
        The audited datasets' folders (a file, such as a label CSV, stands for its folder).

    Returns
    -------
    pathlib.Path
        ``out_dir``, resolved.

    Raises
    ------
    NotADirectoryError
        When ``out_dir``, or a folder above it, is a file.
    ValueError
        When ``out_dir`` is inside one of ``datasets``, naming both.
    FileExistsError
        When ``out_dir`` holds a file no earlier report wrote (or is not a report folder), naming
        the first such file.

    Examples
    --------
    >>> check_report_dir("/no/such/report").name
    'report'
    """
    roots = [p if not os.path.isfile(p) else os.path.dirname(os.path.abspath(p)) for p in map(str, datasets)]
    return check_folder(out_dir, report_files, what="report", roots=roots)


def write_audit_report(audit: DatasetAudit, out_dir: str | os.PathLike, *, max_rows: int = 100,
                       pairs_shown: int = 12) -> Path:
    """Write ``report.html`` and the audit's tables as CSV files into ``out_dir``, whole or not at all.

    The files are written into a temporary sibling folder, which then replaces ``out_dir`` in one
    rename: an error or an interruption leaves an earlier report there as it was, and no
    temporary folder. Two reports written into one folder at once leave one of them, whole.

    Parameters
    ----------
    audit : skinlib.audit.DatasetAudit
        What :func:`skinlib.audit.audit_dataset` returned.
    out_dir : path-like
        The report folder (created with its parents when missing). It must not exist, be empty,
        or be a report folder this function wrote: that folder is replaced whole, none of its
        files left. A folder holding anything else is refused, and nothing that a report did not
        write is ever deleted. A folder inside (or equal to) an audited dataset's folder is
        refused (:func:`check_report_dir`).
    max_rows : int
        Rows of each table shown on the page (the CSV files hold all).
    pairs_shown : int
        Pairs of copies, and of same-lesion photographs, shown side by side.

    Returns
    -------
    pathlib.Path
        The page, ``out_dir/report.html``.

    Raises
    ------
    NotADirectoryError
        When ``out_dir``, or a folder above it, is an existing file.
    ValueError
        When ``out_dir`` is inside an audited dataset's folder, naming both.
    FileExistsError
        When ``out_dir`` is not empty and holds a file that no earlier report wrote there, naming it.

    Examples
    --------
    >>> write_audit_report(audit, "runs/mvb/audit")  # doctest: +SKIP
    PosixPath('runs/mvb/audit/report.html')
    """
    out = Path(out_dir)
    roots = audit_roots(audit)
    check_folder(out, report_files, what="report", roots=roots)  # before any figure is drawn
    tables = _table_files(audit)
    text = _page(audit, max_rows, pairs_shown, [REPORT_FILE, *tables.values()])  # every figure drawn first

    def write(folder: Path) -> None:
        for name, filename in tables.items():
            write_csv(folder / filename, audit.tables[name])
        _write_text(folder / REPORT_FILE, text, "backslashreplace")

    write_folder(out, write, report_files, what="report", roots=roots)
    return out / REPORT_FILE


#: The command line checks its ``--out`` with it before any work (the package exports ``write_audit_report``).
