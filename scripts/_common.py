"""What the results commands share: their options, their run-folder names, the datasets they load."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

__all__ = ["add_common_arguments", "load_datasets", "run_name"]


def run_name(*parts: str) -> str:
    """A folder name from the words of a result's cell.

    >>> run_name("resize only (area)", "v2", "corrected")
    'resize-only-area__v2__corrected'
    """
    return "__".join(p.replace(" ", "-").replace("+", "and").replace("(", "").replace(")", "") for p in parts)


def load_datasets(root: str | os.PathLike, names: Sequence[str], cache_dir: str | os.PathLike | None = None,
                  ) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Each dataset folder ``root/<name>`` that exists, loaded, with its duplicate pairs.

    Returns
    -------
    (dict, dict)
        Name to :func:`skinlib.load_dataset` table, and name to
        :func:`skinlib.find_duplicates` pairs (signatures cached under ``cache_dir``).
    """
    from skinlib.data import load_dataset
    from skinlib.audit import find_duplicates

    tables, pairs = {}, {}
    for name in names:
        if (Path(root) / name).is_dir():
            tables[name] = load_dataset(Path(root) / name)
            pairs[name] = find_duplicates(tables[name], cache_dir=cache_dir, progress=False)
    return tables, pairs


def add_common_arguments(parser: argparse.ArgumentParser, project: str | os.PathLike) -> argparse.ArgumentParser:
    """The options every results command takes: where the data, runs, tables and figures are.

    ``--data-root`` (default: ``shared/data`` beside the project), ``--folds``,
    ``--seeds``, ``--out`` (run folders), ``--images``, ``--tables`` and
    ``--max-epochs`` (a quick check of the command).
    """
    project = Path(project)
    parser.add_argument("--data-root", type=Path, default=project.parent / "shared" / "data")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3, help="training seeds of the mvb runs (its test folder is fixed)")
    parser.add_argument("--out", type=Path, default=project / "runs" / "results")
    parser.add_argument("--images", type=Path, default=project / "Images", help="where the published figures go")
    parser.add_argument("--tables", type=Path, default=project / "results", help="where the result tables go")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="cap every run's epochs (a quick check of the script)")
    return parser
