"""Folders written whole: built beside their place, swapped in by one rename, never emptied of what they did
not write.

A folder format that keeps a manifest of its own files (the audit report's page, a saved audit's
``audit.json``) writes through :func:`write_folder`: the new folder is assembled in a temporary sibling
(same parent, so the rename is atomic), and replaces the old one only when every entry of the old one is
in its manifest; an entry that is not (a user's own file) stops the write, and nothing is deleted. A
folder inside one of ``roots`` (the audited datasets) is refused. :func:`check_folder` says so up front.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Iterator, Sequence

__all__ = ["Owned", "check_folder", "folder_problem", "locked", "place_problem", "write_folder"]

#: Reads a folder's manifest: the set of files it lists, or a string saying why there is none.
Owned = Callable[[Path], "set[str] | str"]


def _walk(folder: Path) -> list[tuple[str, bool]]:
    """Every entry under ``folder``: (its POSIX path relative to it, whether it is a folder), sorted; links are
    entries, never followed.
    """
    found = []

    def fail(exc: OSError) -> None:
        raise exc

    for top, dirs, files in os.walk(folder, onerror=fail):
        rel = Path(top).relative_to(folder)
        for name in dirs + files:
            path = Path(top) / name
            found.append(((rel / name).as_posix(), path.is_dir() and not path.is_symlink()))
    return sorted(found)


def _foreign(folder: Path, files: set[str]) -> list[str]:
    """The entries of ``folder`` that ``files`` (its manifest's list) does not account for."""
    return [name for name, is_dir in _walk(folder)
            if not (any(f.startswith(name + "/") for f in files) if is_dir else name in files)]


def place_problem(folder: str | os.PathLike, *, what: str,
                  roots: Sequence[str | os.PathLike] = ()) -> tuple[type[Exception], str] | None:
    """Why nothing of ``what`` may be written in ``folder`` (None when it may): a file where ``folder`` or
    a folder above it should be, or ``folder`` inside one of ``roots``, comparing resolved paths.

    What it holds is not looked at: :func:`folder_problem` checks that for a folder written whole; a
    cache folder (the audit's ``cache_dir``) needs only this.

    Parameters
    ----------
    folder : str or path-like
        Where the files go.
    what : str
        ``"report"``, ``"cache"``: named in the message.
    roots : sequence of path-like
        The audited datasets' folders, never written under.

    Returns
    -------
    (type, str) or None
        The exception class (``NotADirectoryError`` or ``ValueError``) and the message.

    Examples
    --------
    >>> place_problem("/data/clinic/cache", what="cache", roots=["/data/clinic"])[1]
    '/data/clinic/cache is inside the audited dataset /data/clinic (/data/clinic/cache is in /data/clinic): the cache is never written under a dataset; choose a folder outside it'
    """
    given = Path(folder)
    for above in (given, *given.parents):
        if above.exists():
            if not above.is_dir():
                return NotADirectoryError, f"{given}: cannot write the {what} there, {above} is a file, not a folder"
            break
    real = Path(os.path.realpath(given))
    for root in roots:
        resolved = Path(os.path.realpath(root))
        if real == resolved or resolved in real.parents:
            return ValueError, (f"{given} is inside the audited dataset {root} ({real} is in {resolved}): the "
                                f"{what} is never written under a dataset; choose a folder outside it")
    return None


def folder_problem(folder: str | os.PathLike, owned: Owned, *, what: str,
                   roots: Sequence[str | os.PathLike] = ()) -> tuple[type[Exception], str] | None:
    """Why a ``what`` folder may not be written at ``folder`` (None when it may); see :func:`check_folder`.

    Parameters
    ----------
    folder : str or path-like
        Where the folder goes.
    owned : callable
        Reads a folder's manifest: the set of files it lists, or a string saying why there is none.
    what : str
        ``"report"``, ``"saved audit"``: named in the message.
    roots : sequence of path-like
        The audited datasets' folders, never written under.

    Returns
    -------
    (type, str) or None
        The exception class and message that :func:`check_folder` raises.
    """
    given = Path(folder)
    problem = place_problem(given, what=what, roots=roots)
    if problem is not None:
        return problem
    real = Path(os.path.realpath(given))
    if not real.is_dir():
        return None
    entries = _walk(real)
    if not entries:
        return None
    files = owned(real)
    if isinstance(files, str):
        return FileExistsError, (f"{given} is not empty and is not a {what} folder ({files}): it holds "
                                 f"{entries[0][0]}; expected a new or empty folder, or one an earlier {what} "
                                 "was written to. Nothing was changed")
    foreign = _foreign(real, files)
    if foreign:
        return FileExistsError, (f"{given} holds {foreign[0]}, which the {what} written there did not write "
                                 f"(expected only the files it lists: {', '.join(sorted(files))}). Nothing was "
                                 "changed or deleted")
    return None


def check_folder(folder: str | os.PathLike, owned: Owned, *, what: str,
                 roots: Sequence[str | os.PathLike] = ()) -> Path:
    """Check that a ``what`` folder (a report, a saved audit) may be written, whole, at ``folder``.

    It may when ``folder`` does not exist, is an empty folder, or is a folder an earlier ``what`` was
    written to (its manifest, read by ``owned``, is valid and lists everything in it), and when it is
    not inside (or equal to) one of ``roots``, comparing resolved paths (links followed).

    Parameters
    ----------
    folder : str or path-like
        Where the folder goes.
    owned : callable
        Reads a folder's manifest: the set of files it lists, or a string saying why there is none.
    what : str
        ``"report"``, ``"saved audit"``: named in errors.
    roots : sequence of path-like
        The audited datasets' folders.

    Returns
    -------
    pathlib.Path
        ``folder``, resolved.

    Raises
    ------
    NotADirectoryError
        When ``folder``, or a folder above it, is a file.
    ValueError
        When ``folder`` is inside one of ``roots``, naming both.
    FileExistsError
        When ``folder`` holds anything its manifest does not list (or has no manifest), naming the
        first such file.
    """
    problem = folder_problem(folder, owned, what=what, roots=roots)
    if problem is not None:
        raise problem[0](problem[1])
    return Path(os.path.realpath(folder))


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (the parent of the folders swapped in) while one is swapped in.

    Two processes finishing at once then swap one after the other, never interleaved.

    Parameters
    ----------
    folder : pathlib.Path
        The folder to lock (it must exist).

    Yields
    ------
    None
        While the lock is held.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; a rename onto a folder that is not empty fails there
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _remove_listed(folder: Path, files: set[str]) -> None:
    """Remove the files ``files`` lists from ``folder`` and the folders left empty; anything else stays."""
    for name, is_dir in reversed(_walk(folder)):
        path = folder / name
        with contextlib.suppress(OSError):
            if is_dir:
                path.rmdir()  # only when empty: a file not listed keeps its folder
            elif name in files:
                path.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def _swap_in(new: Path, target: Path, owned: Owned, what: str) -> None:
    """Move the completed folder ``new`` to ``target``, replacing a folder an earlier ``what`` was written to."""
    if not target.is_dir() or not _walk(target):
        if os.name == "nt" and target.is_dir():
            target.rmdir()  # Windows does not rename onto an empty folder
        try:
            os.rename(new, target)  # onto nothing, or onto an empty folder: atomic either way
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            raise FileExistsError(f"{target} was filled by another process while the {what} was written; "
                                  "it was left as it is") from None
        return
    old = target.with_name(f".{target.name}.replaced-{uuid.uuid4().hex[:12]}")
    os.rename(target, old)
    try:
        files = owned(old)
        foreign = [files] if isinstance(files, str) else _foreign(old, files)
        if foreign:  # something not taking the lock wrote there since the check: put it back, untouched
            raise FileExistsError(f"{target} changed while the {what} was written ({foreign[0]}); it was left "
                                  "as it is")
        os.rename(new, target)
    except BaseException:
        if not os.path.lexists(target):
            os.rename(old, target)  # put the old folder back; the new one is removed by the caller
        raise
    _remove_listed(old, files)


def write_folder(folder: str | os.PathLike, write: Callable[[Path], None], owned: Owned, *, what: str,
                 roots: Sequence[str | os.PathLike] = ()) -> Path:
    """Write a folder whole or not at all: ``write(tmp)`` fills a temporary sibling folder, which then
    replaces ``folder`` in one rename.

    ``folder`` is checked first (:func:`check_folder`), and again, under an exclusive lock on its
    parent, just before the swap: two writers at once swap one after the other, so the folder is one
    of theirs, whole. An error or an interruption before the swap leaves ``folder`` as it was and
    removes the temporary folder. The replaced folder's files, all listed in its manifest, are then
    removed; nothing its manifest does not list is ever deleted.

    Parameters
    ----------
    folder : str or path-like
        The folder to write (its parents are created).
    write : callable
        ``write(tmp)`` writes every file of the new folder, its manifest among them, into ``tmp``.
    owned : callable
        Reads a folder's manifest: the set of files it lists, or a string saying why there is none.
    what : str
        ``"report"``, ``"saved audit"``: named in errors.
    roots : sequence of path-like
        The audited datasets' folders, never written under.

    Returns
    -------
    pathlib.Path
        ``folder``, resolved.

    Raises
    ------
    NotADirectoryError, ValueError, FileExistsError
        As :func:`check_folder`.
    """
    real = check_folder(folder, owned, what=what, roots=roots)
    real.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}.", suffix=".partial", dir=real.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # as a folder made with mkdir, not mkdtemp's private one
        write(tmp)
        with locked(real.parent):
            check_folder(real, owned, what=what, roots=roots)  # another writer may have been there since
            _swap_in(tmp, real, owned, what)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return real
