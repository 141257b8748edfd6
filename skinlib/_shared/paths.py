"""Where the project keeps its own files: the checkout, or a per-user cache folder when installed."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["project_dir"]


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
