"""The audit's figures: same-lesion and copy pairs side by side, likely label errors, image quality
issues. Each takes the table its finder returns and gives a matplotlib Figure, drawn without pyplot.
"""

from __future__ import annotations

import os
import textwrap
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from skinlib.plotting._plots import show_image, thumbnail
from skinlib.plotting._text import plain_text
from skinlib.data import DIAGNOSIS_COLUMNS
from skinlib.preprocessing import read_image

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_pairs", "plot_duplicates", "plot_label_issues", "plot_quality_issues"]


def _draw_pair(ax_a, ax_b, pair, read: Callable[[str], np.ndarray]) -> None:
    """A pair's two images side by side, each titled with its file name; a file that cannot be read
    is a blank cell titled "unreadable".
    """
    for ax, path in ((ax_a, str(pair["path_a"])), (ax_b, str(pair["path_b"]))):
        try:
            show_image(ax, thumbnail(np.asarray(read(path)), 160))
            ax.set_title(os.path.basename(path), fontsize=8)
        except (OSError, ValueError):  # ImageReadError is a ValueError
            show_image(ax, None)
            ax.set_title("unreadable", fontsize=8)


def plot_pairs(pairs: pd.DataFrame, n: int = 12, *, per_row: int = 2,
               read: Callable[[str], np.ndarray] | None = None) -> "Figure":
    """The first ``n`` pairs of a pair table side by side, ``per_row`` pairs to a row.

    Each image is titled with its file name; under each pair, its similarity and kind, and the
    same-lesion finder's ``evidence`` or the copy's ``transform``. An image that cannot be read
    is a blank cell titled "unreadable".

    Parameters
    ----------
    pairs : pandas.DataFrame
        :func:`skinlib.find_duplicates`' table, or the same-lesion pairs: ``path_a``, ``path_b``,
        ``similarity``, ``kind``.
    n : int
        How many pairs, from the top.
    per_row : int
        Pairs per row of the figure.
    read : callable, optional
        Reads a path to a uint8 array (default :func:`skinlib.read_image` in colour).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> pairs = pd.DataFrame({"path_a": ["a.jpg"], "path_b": ["b.jpg"], "similarity": [0.9], "kind": ["near"]})
    >>> fig = plot_pairs(pairs, read=lambda path: np.zeros((8, 8, 3), np.uint8))
    >>> [ax.get_title() for ax in fig.axes]
    ['a.jpg', 'b.jpg']
    """
    from matplotlib.figure import Figure

    missing = {"path_a", "path_b", "similarity", "kind"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs lacks column(s) {sorted(missing)}; expected a table of image pairs")
    read = read or (lambda path: read_image(path, color=True, min_side=160))
    shown = pairs.head(n)
    per_row = max(1, min(per_row, len(shown)))
    rows = max(1, -(-len(shown) // per_row))
    fig = Figure(figsize=(4.4 * per_row, 2.8 * rows), layout="constrained")
    axes = fig.subplots(rows, 2 * per_row, squeeze=False)
    for ax in axes.ravel():
        show_image(ax, None)
    for i, (_, pair) in enumerate(shown.iterrows()):
        row, col = divmod(i, per_row)
        ax_a, ax_b = axes[row, 2 * col : 2 * col + 2]
        _draw_pair(ax_a, ax_b, pair, read)
        how = str(pair.get("evidence", "") or pair.get("transform", "") or "")
        ax_a.set_xlabel(f"{pair['similarity']:.3f}, {pair['kind']}", fontsize=8)
        ax_b.set_xlabel(textwrap.fill(how if how != "nan" else "", 32), fontsize=7)
    for ax in axes.ravel()[2 * len(shown):]:
        ax.remove()
    return plain_text(fig)


def plot_label_issues(
    issues: pd.DataFrame,
    n: int = 12,
    *,
    columns: int = 4,
    flagged_only: bool = True,
    read: Callable[[str], np.ndarray] | None = None,
) -> "Figure":
    """Thumbnails of the likeliest label errors, each titled with its given label and probability.

    Parameters
    ----------
    issues : pandas.DataFrame
        :func:`find_label_issues`'s table (ranked).
    n : int
        How many images, from the top of the ranking.
    columns : int
        Images per row.
    flagged_only : bool
        Show flagged images only (fewer than ``n`` when fewer are flagged).
    read : callable, optional
        Reads an image path to a uint8 array (default :func:`skinlib.read_image` in colour,
        BGR); an image that cannot be read is a blank cell titled "unreadable".

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> issues = pd.DataFrame({"rank": [1], "path": ["x.jpg"], "given": ["benign"], "probability": [0.97],
    ...                        "quality": [0.03], "flagged": [True], "dx": ["nv"]})
    >>> fig = plot_label_issues(issues, read=lambda path: np.zeros((8, 8, 3), np.uint8))
    >>> fig.axes[0].get_title()
    '#1 given benign (nv)\\np(malignant) 0.97'
    """
    from matplotlib.figure import Figure

    missing = {"path", "given", "probability"} - set(issues.columns)
    if missing:
        raise ValueError(f"issues lacks column(s) {sorted(missing)}; expected the table from find_label_issues")
    if n < 1 or columns < 1:
        raise ValueError(f"n and columns must be at least 1, got n={n}, columns={columns}")
    read = read or (lambda path: read_image(path, color=True, min_side=256))
    shown = issues[issues["flagged"]] if flagged_only and "flagged" in issues.columns else issues
    shown = shown.head(n)
    cols = max(1, min(columns, len(shown)))
    rows = max(1, -(-len(shown) // cols))
    fig = Figure(figsize=(2.3 * cols, 2.5 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if shown.empty:
        axes[0].set_title("no image flagged", fontsize=9)
        return plain_text(fig)
    diagnosis = next((c for c in DIAGNOSIS_COLUMNS if c in shown.columns), None)
    for ax, (_, row) in zip(axes, shown.iterrows()):
        rank = f"#{row['rank']} " if "rank" in row else ""
        how = [str(row[c]) for c in (diagnosis, "dx_type") if c and c in row and pd.notna(row[c])]
        dx = f" ({', '.join(how)})" if how else ""
        title = f"{rank}given {row['given']}{dx}\np(malignant) {row['probability']:.2f}"
        try:
            img = thumbnail(np.asarray(read(str(row["path"]))), 192)
        except (OSError, ValueError):  # ImageReadError is a ValueError
            ax.set_title(f"{title}\nunreadable", fontsize=8)
            continue
        show_image(ax, img)
        ax.set_title(title, fontsize=8)
    for ax in axes[len(shown):]:
        ax.remove()
    return plain_text(fig)


def plot_quality_issues(
    issues: pd.DataFrame, n: int = 4, *, read: Callable[[str], np.ndarray] | None = None
) -> "Figure":
    """Thumbnails of up to ``n`` images per issue type, one row per issue type found.

    Parameters
    ----------
    issues : pandas.DataFrame
        :func:`find_quality_issues`' table; each row shows its first ``n`` images (the lowest
        scores first).
    n : int
        Images per issue type.
    read : callable, optional
        Reads an image path to a uint8 array (default :func:`skinlib.read_image` in colour, BGR);
        an image that cannot be read (such as every ``unreadable`` one) is a blank cell with its
        file name.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> issues = pd.DataFrame({"path": ["a.jpg", "b.jpg"], "issue": ["dark", "blurry"], "score": [0.1, 0.2]})
    >>> fig = plot_quality_issues(issues, read=lambda path: np.zeros((8, 8, 3), np.uint8))
    >>> [ax.get_title() for ax in fig.axes]
    ['dark\\na.jpg 0.10', 'blurry\\nb.jpg 0.20']
    """
    from matplotlib.figure import Figure

    missing = {"path", "issue", "score"} - set(issues.columns)
    if missing:
        raise ValueError(f"issues lacks column(s) {sorted(missing)}; expected the table from find_quality_issues")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    read = read or (lambda path: read_image(path, color=True, min_side=128))
    kinds = list(dict.fromkeys(issues["issue"]))
    rows = max(1, len(kinds))
    fig = Figure(figsize=(2.2 * n, 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, n, squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if not kinds:
        axes[0, 0].set_title("no image flagged", fontsize=9)
        for ax in axes[0, 1:]:
            ax.remove()
    for r, kind in enumerate(kinds):
        shown = issues[issues["issue"] == kind].head(n)
        for c, (_, row) in enumerate(shown.iterrows()):
            ax = axes[r, c]
            score = "" if pd.isna(row["score"]) else f" {row['score']:.2f}"
            title = f"{kind}\n{os.path.basename(str(row['path']))}{score}"
            try:
                img = thumbnail(np.asarray(read(str(row["path"]))), 160)
            except (OSError, ValueError):  # ImageReadError is a ValueError
                ax.set_title(title, fontsize=8)
                continue
            show_image(ax, img)
            ax.set_title(title, fontsize=8)
        for ax in axes[r, len(shown):]:
            ax.remove()
    return plain_text(fig)


def plot_duplicates(
    pairs: pd.DataFrame, n: int = 4, read: Callable[[str], np.ndarray] | None = None
) -> "Figure":
    """The first ``n`` pairs of :func:`skinlib.find_duplicates`, side by side: one row per pair.

    Each row shows ``path_a`` and ``path_b`` in colour, titled with the file name, and the
    pair's similarity, kind and matching transform. The table is ranked most similar
    first; pass ``pairs.tail(n)`` to look at the borderline pairs instead. A file that
    cannot be read is a blank cell titled "unreadable". An empty table gives one blank row
    titled "no duplicate pairs".

    Parameters
    ----------
    pairs : pandas.DataFrame
        :func:`skinlib.find_duplicates`' table: ``path_a``, ``path_b``, ``similarity``,
        ``kind`` and, optionally, ``transform``.
    n : int
        How many pairs, from the top, at least 1 (default 4).
    read : callable, optional
        Reads a path to a uint8 array (default :func:`skinlib.read_image` in colour, BGR).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_duplicates(skinlib.find_duplicates(df), n=3)  # doctest: +SKIP
    """
    missing = {"path_a", "path_b", "similarity", "kind"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs lacks column(s) {sorted(missing)}; expected the table from find_duplicates")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    from matplotlib.figure import Figure

    read = read or (lambda p: read_image(p, color=True))
    shown = pairs.head(n)
    rows = max(1, len(shown))
    fig = Figure(figsize=(4.4, 2.2 * rows), layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False)
    if shown.empty:
        show_image(axes[0, 0], None)
        show_image(axes[0, 1], None)
        axes[0, 0].set_title("no duplicate pairs", fontsize=9)
        return plain_text(fig)
    for (ax_a, ax_b), (_, pair) in zip(axes, shown.iterrows()):
        _draw_pair(ax_a, ax_b, pair, read)
        how = pair["kind"] + (f", {pair['transform']}" if str(pair.get("transform", "")) else "")
        ax_a.set_ylabel(f"{pair['similarity']:.3f}\n{how}", fontsize=8)
    return plain_text(fig)
