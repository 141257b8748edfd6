"""CSV files safe to open in a spreadsheet, that read back as they were written.

A spreadsheet (Excel, LibreOffice, Google Sheets) runs a cell that starts with ``=``, ``+``,
``-`` or ``@`` (or a tab or carriage return before one) as a formula: a file name or a CSV value
such as ``=HYPERLINK("http://...")`` in a table this package writes would run when a researcher
opens it. Following the OWASP advice on CSV injection, every *text* cell that starts with one of
those characters is written with a single quote in front (``'=HYPERLINK(...)``), which
spreadsheets show as text. Numbers are left alone (``-0.5`` stays a number).

:func:`write_csv` writes a table so: text cells escaped, UTF-8 (a file name that is not valid
UTF-8 keeps its bytes, so the path still names the file), and RFC 4180 line ends (``\r\n``), so that
a value holding a carriage return (a file name can) is quoted rather than cut into two rows.

Contract: :func:`escape_cells` also quotes text cells that already start with ``'``, so that
:func:`unescape_cells` (drop one leading ``'``) gives back every value exactly: a table written and
read back is the table that was written.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from skinlib._shared.files import atomic_write

__all__ = ["FORMULA_STARTS", "escape_text", "escape_cells", "unescape_cells", "write_csv"]

#: The first characters that make a spreadsheet read a cell as a formula (OWASP), and the quote itself.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def escape_text(value: object) -> object:
    """``value`` with a ``'`` in front when it is text starting like a formula (or with ``'``).

    Parameters
    ----------
    value : object
        A cell's value; only ``str`` values are changed.

    Returns
    -------
    object
        The cell as it is written.

    Examples
    --------
    >>> escape_text('=HYPERLINK("http://x")'), escape_text("-b.jpg"), escape_text(-0.5), escape_text("a.jpg")
    ('\\'=HYPERLINK("http://x")', "'-b.jpg", -0.5, 'a.jpg')
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _is_text(values: pd.Series) -> bool:
    return values.dtype == object or isinstance(values.dtype, (pd.StringDtype, pd.CategoricalDtype))


def escape_cells(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text cells cannot run as spreadsheet formulas (:func:`escape_text`).

    Parameters
    ----------
    table : pandas.DataFrame
        The table about to be written; it is not changed.

    Returns
    -------
    pandas.DataFrame
        The same columns (categorical ones as plain values) with the text cells escaped.

    Examples
    --------
    >>> escape_cells(pd.DataFrame({"path": ["=1+1", "a"], "p": [-1.0, 2.0]})).values.tolist()
    [["'=1+1", -1.0], ['a', 2.0]]
    """
    out = table.copy()
    for position in range(out.shape[1]):
        values = out.iloc[:, position]
        if _is_text(values) and values.map(lambda v: escape_text(v) is not v).any():
            out.isetitem(position, values.astype(object).map(escape_text))
    return out


def unescape_cells(values: pd.Series) -> pd.Series:
    """Text read from a file :func:`escape_cells` wrote, as it was before (one leading ``'`` dropped).

    Parameters
    ----------
    values : pandas.Series
        A text column as read (strings).

    Returns
    -------
    pandas.Series

    Examples
    --------
    >>> unescape_cells(pd.Series(["'=1+1", "''quoted", "a"])).tolist()
    ['=1+1', "'quoted", 'a']
    """
    quoted = values.str.startswith("'", na=False)
    return values.where(~quoted, values.str[1:]) if quoted.any() else values


def write_csv(path: Path, table: pd.DataFrame) -> None:
    """``table`` as a CSV file (without its index), written atomically, safe in a spreadsheet.

    Text cells are escaped (:func:`escape_cells`; read them back with :func:`unescape_cells`), the file is
    UTF-8 with undecodable file-name bytes kept as they were, and rows end in ``\r\n`` (RFC 4180), so
    that every value holding a line break or a carriage return is quoted.

    Parameters
    ----------
    path : pathlib.Path
        The file to write (replaced whole).
    table : pandas.DataFrame
        The table; it is not changed.
    """
    text = escape_cells(table).to_csv(index=False, lineterminator="\r\n")
    atomic_write(Path(path), lambda fh: fh.write(text.encode("utf-8", "surrogateescape")), mode="wb")
