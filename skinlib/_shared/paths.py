"""Where the project keeps its own files: the checkout, or a per-user cache folder when installed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pandas as pd

__all__ = ["project_dir", "resolved_paths"]


def project_dir() -> Path:
    """The checkout this package lives in, or a per-user cache folder when installed.

    Returns
    -------
    pathlib.Path
        The checkout (the folder holding ``pyproject.toml`` beside ``skinlib/``), else
        ``$XDG_CACHE_HOME/skinlib`` (``~/.cache/skinlib`` when the variable is not set).
    """
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").is_file():
        return here
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "skinlib"


def resolved_paths(paths: Iterable) -> pd.Series:
    """Each path resolved (links followed, ``..`` and ``.`` removed, made absolute), as strings.

    Tables match rows by the resolved path, so that ``data/x.jpg``, ``./data/x.jpg`` and a link to
    it are one image.

    Parameters
    ----------
    paths : iterable of str or path-like
        The paths; a pandas Series keeps its index.

    Returns
    -------
    pandas.Series
        The resolved paths (``os.path.realpath``), one per path, in order.

    Examples
    --------
    >>> resolved_paths(["/a/./b/../c.jpg"]).tolist()
    ['/a/c.jpg']
    """
    series = paths if isinstance(paths, pd.Series) else pd.Series(list(paths), dtype=object)
    return series.astype(str).map(os.path.realpath)
