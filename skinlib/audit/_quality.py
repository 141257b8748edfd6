"""Images that should not be there: dark, overexposed, blurry, low-information, odd-shaped and
grayscale images, found with CleanVision.

:func:`find_quality_issues` scores every image of a dataset table (the ``path`` column of
:func:`skinlib.load_dataset`) with CleanVision's image-property checks (``cleanvision.Imagelab``
on the file paths, ``find_issues`` for the chosen issue types) and returns one row per image and
issue found. :func:`plot_quality_issues` shows a few examples of each issue type.

Every file is first opened and fully decoded with Pillow, as CleanVision decodes it: a file
that does not decode (empty, truncated, not an image, more pixels than
:func:`skinlib.preprocessing.max_image_pixels`, or in a mode CleanVision cannot score: two bands,
or no conversion to grey, as LAB) is left out of the check and listed with the issue
``unreadable``, instead of stopping the whole run; so is a path that is no regular file (a FIFO,
a device, a folder), never opened (:func:`skinlib._shared.filemap.map_files`). CleanVision opens
the files itself, and is given only those that passed. An image of a few pixels is scored
(a strip is what ``odd_aspect_ratio`` is for). Nothing is written anywhere: CleanVision keeps its scores in memory (only
``Imagelab.save``, which is never called here, writes files).

Nothing is dropped either: the table says which images to look at.

>>> issues = find_quality_issues(df)  # doctest: +SKIP
>>> issues.attrs["summary"]  # doctest: +SKIP
{'dark': 3, 'light': 0, 'blurry': 12, 'low_information': 0, 'odd_aspect_ratio': 0, 'grayscale': 0, 'unreadable': 1}
>>> fig = plot_quality_issues(issues, n=4)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import os
from functools import partial
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from skinlib._shared.filemap import Skip, map_files
from skinlib.preprocessing import max_image_pixels

if TYPE_CHECKING:
    pass

__all__ = ["find_quality_issues", "ISSUE_TYPES", "OTHER_ISSUE_TYPES", "UNREADABLE"]

#: The issue types checked by default (CleanVision's image-property checks): a low score means
#: a likely issue, and an image is flagged when its score is below CleanVision's threshold.
ISSUE_TYPES = ("dark", "light", "blurry", "low_information", "odd_aspect_ratio", "grayscale")
#: Also accepted in ``issue_types``: an image area far outside the dataset's interquartile range.
OTHER_ISSUE_TYPES = ("odd_size",)
#: The issue of a file that does not decode.
UNREADABLE = "unreadable"
COLUMNS = ["path", "issue", "score"]


def _check_file(path: str, limit: int) -> Skip | None:
    """Nothing when Pillow decodes ``path`` into an image CleanVision can score, else :class:`Skip` with the reason."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            width, height = im.size
            if width * height > limit:
                return Skip(f"image is {width} x {height} pixels, more than the limit of {limit / 1e6:g} megapixels")
            if len(im.getbands()) == 2:
                return Skip(f"image mode {im.mode} (two bands) is not supported")
            im.load()
            try:
                # CleanVision's blur check converts to grey; one pixel tells whether the mode can be.
                im.crop((0, 0, 1, 1)).convert("L")
            except ValueError as exc:
                return Skip(f"image mode {im.mode} cannot be scored: {exc}")
    except Exception as exc:  # noqa: BLE001 - any decoding failure means: leave the file out
        return Skip(f"{type(exc).__name__}: {exc}")
    return None


def _issue_params(issue_types: Sequence[str] | Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict]:
    if issue_types is None:
        issue_types = ISSUE_TYPES
    if isinstance(issue_types, str):
        issue_types = [issue_types]
    if isinstance(issue_types, Mapping):
        params = {str(k): dict(v or {}) for k, v in issue_types.items()}
    else:
        params = {str(k): {} for k in issue_types}
    unknown = sorted(set(params) - set(ISSUE_TYPES) - set(OTHER_ISSUE_TYPES))
    if unknown:
        raise ValueError(f"unknown issue type(s) {unknown}; expected some of {list(ISSUE_TYPES + OTHER_ISSUE_TYPES)}")
    if not params:
        raise ValueError("issue_types is empty: name at least one issue type")
    return params


def find_quality_issues(
    df: pd.DataFrame,
    *,
    issue_types: Sequence[str] | Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
    workers: int = 1,
    max_pixels: int | None = None,
) -> pd.DataFrame:
    """Find dark, overexposed, blurry, low-information, odd-shaped and grayscale images.

    Parameters
    ----------
    df : pandas.DataFrame
        A dataset table with a ``path`` column (:func:`skinlib.load_dataset`). A path listed
        twice is checked once.
    issue_types : sequence of str or dict, optional
        The issue types to check (default :data:`ISSUE_TYPES`; ``"odd_size"`` may be added), or a
        dict from issue type to CleanVision hyperparameters, such as
        ``{"dark": {"threshold": 0.2}, "blurry": {}}``.
    progress : bool
        Show CleanVision's messages and progress bar.
    workers : int
        Processes CleanVision scores the images with (1: in this process, no pool).
    max_pixels : int, optional
        An image of more pixels is listed as unreadable and not decoded (default
        :func:`skinlib.preprocessing.max_image_pixels`).

    Returns
    -------
    pandas.DataFrame
        One row per image and issue found: ``path`` (as in ``df``), ``issue`` (an issue type or
        ``"unreadable"``) and ``score`` (CleanVision's score from 0 to 1, low meaning a worse
        image; NaN for unreadable files), ordered by issue type, then score. ``attrs["summary"]``
        is a dict of the number of images per issue type checked (0 included) and
        ``"unreadable"``; ``attrs["skipped"]`` the unreadable files as ``(path, reason)`` pairs, as every
        per-file step lists them (:func:`skinlib.skipped_files`);
        ``attrs["checked"]`` the number of images scored.

    Raises
    ------
    ValueError
        When ``df`` has no ``path`` column or an issue type is unknown.

    Notes
    -----
    CleanVision's checks, with its default thresholds: ``dark``, the 99th percentile of
    brightness is low; ``light``, the 5th percentile is high; ``blurry``, few edges on a 64-pixel
    copy; ``low_information``, a low entropy of the pixel histogram; ``odd_aspect_ratio``, the
    shorter side is less than about a third of the longer; ``grayscale``, the file is stored
    with one channel (a colour file whose three channels are equal is not flagged).

    Examples
    --------
    >>> find_quality_issues(pd.DataFrame({"image": ["a.jpg"]}))
    Traceback (most recent call last):
    ...
    ValueError: df has no 'path' column; expected a dataset table from skinlib.load_dataset
    """
    if "path" not in df.columns:
        raise ValueError("df has no 'path' column; expected a dataset table from skinlib.load_dataset")
    params = _issue_params(issue_types)
    paths = list(dict.fromkeys(df["path"].astype(str)))
    limit = max_image_pixels(max_pixels)
    # Decoding is checked here, in threads, with no bar of its own: CleanVision's bar is the progress shown.
    decoded = map_files(paths, partial(_check_file, limit=limit), workers=min(4, os.cpu_count() or 1), progress=False)
    unreadable = dict(decoded.skipped)
    readable = [paths[i] for i in decoded.keep]

    frames = []
    counts = {issue: 0 for issue in params}
    if readable:
        from cleanvision import Imagelab

        # CleanVision opens each path through fsspec: give it absolute local paths, keyed back.
        original = {os.path.abspath(p): p for p in readable}
        quiet = contextlib.nullcontext() if progress else contextlib.redirect_stderr(io.StringIO())
        with quiet, (contextlib.nullcontext() if progress else contextlib.redirect_stdout(io.StringIO())):
            lab = Imagelab(filepaths=list(original), verbose=progress)
            lab.find_issues(params, n_jobs=workers, verbose=progress)
        found = lab.issues
        for issue in params:
            flagged = found[found[f"is_{issue}_issue"].astype(bool)]
            counts[issue] = len(flagged)
            frames.append(pd.DataFrame({
                "path": [original[p] for p in flagged.index],
                "issue": issue,
                "score": flagged[f"{issue}_score"].astype(float).to_numpy(),
            }).sort_values("score", kind="stable"))
    frames.append(pd.DataFrame({"path": list(unreadable), "issue": UNREADABLE, "score": np.nan}))
    frames = [f for f in frames if len(f)]
    table = (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS))[COLUMNS]
    table = table.astype({"path": str, "issue": str, "score": float}).reset_index(drop=True)
    counts[UNREADABLE] = len(unreadable)
    table.attrs["summary"] = counts
    table.attrs["skipped"] = list(unreadable.items())
    table.attrs["checked"] = len(readable)
    return table
