"""Writing a dataset audit to disk: one self-contained HTML page and a CSV file per table.

:func:`write_audit_report` writes a :class:`skinlib.audit.DatasetAudit` into a folder:
``report.html``, a single file that opens from disk anywhere (its figures are embedded as
base64 PNG images, its style is inline, it loads nothing and runs no script), and the audit's
tables as CSV files (:data:`TABLE_FILES`), in full where the page shows their first rows.
Every file name and value on the page is HTML-escaped: a file named
``<img src=x onerror=alert(1)>.jpg`` shows as that text. Every file is written atomically
(a temporary file renamed into place), so an interrupted report leaves the previous files or
the new ones, never half of one; the images audited are only read.

>>> audit = skinlib.audit.audit_dataset(skinlib.load_dataset("data/mvb"))  # doctest: +SKIP
>>> write_audit_report(audit, "runs/mvb/audit")  # doctest: +SKIP
PosixPath('runs/mvb/audit/report.html')
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from skinlib.audit._audit import DatasetAudit
from skinlib._shared.files import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["write_audit_report", "html_table", "figure_html", "REPORT_FILE", "TABLE_FILES"]

#: The page's file name in the report folder.
REPORT_FILE = "report.html"
#: The audit's tables (attributes of :class:`~skinlib.audit.DatasetAudit`) and their CSV files;
#: a table that does not apply (no runs, no split of its own...) gets no file.
TABLE_FILES = {
    "summary": "summary.csv", "copies": "copies.csv", "same_lesion": "same_lesion.csv", "leakage": "leakage.csv",
    "label_issues": "label_issues.csv", "quality": "quality.csv", "diagnoses": "diagnoses.csv",
    "subgroups": "subgroups.csv", "operating_points": "operating_points.csv", "unreadable": "unreadable.csv",
}

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
    return html.escape(str(value), quote=True)


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
    except (ValueError, RuntimeError, OSError) as exc:  # matplotlib's text parser, a failed thumbnail...
        return _note(f"{alt}: the figure could not be drawn ({type(exc).__name__}: {exc})")


def _note(text: str) -> str:
    return f'<p class="note">{_esc(text)}</p>'


def _pairs_section(anchor: str, title: str, pairs: pd.DataFrame | None, what: str, csv: str, max_rows: int,
                   shown: int) -> str:
    if pairs is None:
        return _section(anchor, title, _note("not searched"))
    from skinlib.plotting import plot_pairs

    figure = _figure(lambda: plot_pairs(pairs, shown), f"the first {shown} {what}") if len(pairs) else ""
    return _section(anchor, title, _note(f"{what.capitalize()}: {len(pairs)}, most similar first."), figure,
                    html_table(pairs, max_rows, csv))


def _page(audit: DatasetAudit, max_rows: int, shown: int) -> str:
    root = audit.dataset.attrs.get("root", "")
    written = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    sections = [_section("summary", "Summary", html_table(audit.summary, max_rows, "summary.csv"),
                         *(_note(n) for n in audit.notes))]
    sections.append(_pairs_section("copies", "Copies", audit.copies, "pairs of copies (identical or near)",
                                   "copies.csv", max_rows, shown))
    sections.append(_pairs_section("same-lesion", "Same lesion", audit.same_lesion,
                                   "pairs of photographs of one lesion (copies not repeated)", "same_lesion.csv",
                                   max_rows, shown))
    if audit.leakage is None:
        sections.append(_section("leakage", "Leakage of the dataset's split", _note("no train/test split of its own")))
    else:
        sections.append(_section(
            "leakage", "Leakage of the dataset's split",
            _note(f"Pairs of copies or same-lesion photographs that cross the dataset's own split: "
                  f"{len(audit.leakage)}. Test images with a copy or same-lesion photograph outside the test "
                  f"split: {len(audit.leaked_test)} (skinlib.drop_leaked leaves them out)."),
            html_table(audit.leakage, max_rows, "leakage.csv")))
    if audit.label_issues is not None:
        parts = []
        for run, issues in audit.label_issues.groupby("run", sort=False):
            flagged = int(issues["flagged"].sum())
            parts += [f"<h3>{_esc(run)}</h3>", _note(f"{flagged} of {len(issues)} images flagged, likeliest first.")]
            if flagged:
                from skinlib.plotting import plot_label_issues

                parts.append(_figure(lambda: plot_label_issues(issues.drop(columns="run"), n=12),
                                     f"the likeliest label errors of {run}"))
            parts.append(html_table(issues[issues["flagged"]] if flagged else issues.head(0), max_rows,
                                    "label_issues.csv"))
        sections.append(_section("label-issues", "Likely label errors", *parts))
    if audit.quality is not None:
        found = audit.quality[audit.quality["issue"] != "unreadable"]
        parts = [_note(f"{found['path'].nunique()} images with an issue, of {audit.quality.attrs.get('checked', '?')} "
                       "checked (lowest score first within each issue).")]
        if len(found):
            from skinlib.plotting import plot_quality_issues

            parts.append(_figure(lambda: plot_quality_issues(found, n=4), "examples of each image quality issue"))
        parts.append(html_table(found, max_rows, "quality.csv"))
        sections.append(_section("quality", "Image quality", *parts))
    if audit.errors:
        from skinlib.plotting import plot_error_analysis

        parts = []
        for run, analysis in audit.errors.items():
            parts.append(f"<h3>{_esc(run)}</h3>")
            for name, fig in plot_error_analysis(analysis).items():
                parts.append(_figure(lambda: fig, f"{name} of {run}"))
            for name in ("diagnoses", "subgroups", "operating_points"):
                table = getattr(audit, name)
                if table is not None:
                    part = table[table["run"] == run].drop(columns="run")
                    parts += [f"<h4>{_esc(name.replace('_', ' '))}</h4>", html_table(part, max_rows, f"{name}.csv")]
        sections.append(_section("errors", "What one ROC AUC hides", *parts))
    sections.append(_section("unreadable", "Files that could not be read",
                             html_table(audit.unreadable, max_rows, "unreadable.csv")))
    titles = (("summary", "Summary"), ("copies", "Copies"), ("same-lesion", "Same lesion"), ("leakage", "Leakage"),
              ("label-issues", "Label errors"), ("quality", "Quality"), ("errors", "Error analysis"),
              ("unreadable", "Unreadable"))
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in titles if any(f'<section id="{a}">' in s for s in sections))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>Audit of {_esc(audit.name)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>Audit of {_esc(audit.name)}</h1>"
            f'<p class="note">{len(audit.dataset)} images in {_esc(root)}; written {_esc(written)}. '
            "The tables below show their first rows; the CSV files beside this page hold them whole.</p>"
            f"<nav>{nav}</nav>{''.join(sections)}</body></html>\n")


def _write_text(path: Path, text: str, errors: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8", errors)), mode="wb")


def write_audit_report(audit: DatasetAudit, out_dir: str | os.PathLike, *, max_rows: int = 100,
                       pairs_shown: int = 12) -> Path:
    """Write ``report.html`` and the audit's tables as CSV files into ``out_dir``.

    Parameters
    ----------
    audit : skinlib.audit.DatasetAudit
        What :func:`skinlib.audit.audit_dataset` returned.
    out_dir : path-like
        The report folder (created with its parents when missing). CSV files of :data:`TABLE_FILES`
        left there by an earlier report whose tables no longer apply are removed; nothing else
        in it is touched.
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

    Examples
    --------
    >>> write_audit_report(audit, "runs/mvb/audit")  # doctest: +SKIP
    PosixPath('runs/mvb/audit/report.html')
    """
    out = Path(out_dir)
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                raise NotADirectoryError(f"{out}: cannot write the report there, {folder} is a file, not a folder")
            break
    text = _page(audit, max_rows, pairs_shown)  # every figure drawn before the first file is replaced
    out.mkdir(parents=True, exist_ok=True)
    earlier = (out / REPORT_FILE).is_file()
    for name, filename in TABLE_FILES.items():
        table = getattr(audit, name)
        if table is None or (name == "unreadable" and table.empty):
            if earlier:
                (out / filename).unlink(missing_ok=True)  # an earlier report's table that no longer applies
            continue
        # UTF-8; a file name that is not valid UTF-8 keeps its bytes, so the path still names the file.
        _write_text(out / filename, table.to_csv(index=False), "surrogateescape")
    page = out / REPORT_FILE
    _write_text(page, text, "backslashreplace")
    return page
