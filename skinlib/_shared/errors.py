"""skinlib's errors: one family under :class:`SkinlibError`, each still a ``ValueError``.

Each layer raises its own kind, and re-exports it where its users look for it
(``skinlib.data.DatasetError``, ``skinlib.preprocessing.ImageReadError``,
``skinlib.runs.RunFolderError``, ``skinlib.models.FoldRunMismatch``); all of them are also
importable from ``skinlib``. Catch :class:`SkinlibError` for any input skinlib refuses, or
``ValueError`` as before.

>>> issubclass(DatasetError, SkinlibError) and issubclass(SkinlibError, ValueError)
True
"""

from __future__ import annotations

__all__ = ["SkinlibError", "DatasetError", "ImageReadError", "RunFolderError", "FoldRunMismatch"]


class SkinlibError(ValueError):
    """Input that skinlib refuses: the message names the file or value and what was expected."""


class DatasetError(SkinlibError):
    """A dataset folder or its label file is unusable; the message says why."""


class ImageReadError(SkinlibError):
    """An image file could not be read or decoded."""


class RunFolderError(SkinlibError):
    """A run folder is missing a file or holds something unexpected."""


class FoldRunMismatch(SkinlibError):
    """A fold's run folder exists but was trained on another split, model or preprocessing."""


# Tracebacks, reprs and pickles name each error where its users import it from, not this private module.
for _error, _home in [(SkinlibError, "skinlib"), (DatasetError, "skinlib.data"),
                      (ImageReadError, "skinlib.preprocessing"), (RunFolderError, "skinlib.runs"),
                      (FoldRunMismatch, "skinlib.models")]:
    _error.__module__ = _home
del _error, _home
