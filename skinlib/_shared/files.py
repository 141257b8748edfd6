"""Files: atomic writes, file stamps for cache keys, ``.npz`` caches, reading many files in threads.

Every module that writes a file goes through :func:`atomic_write`, so an interrupted
run leaves the old file or the new one, never half of one. :func:`irregular_file` says,
without opening it, when a path is no regular file (a FIFO, a device, a folder): reading
those blocks or never ends, so no per-file step opens them. Caches of preprocessed
arrays and duplicate signatures are ``.npz`` files keyed by :func:`file_stamp` of
their inputs (:func:`save_cache`, :func:`load_cache`); :mod:`.filemap` runs the per-file
loop that makes and caches them.
"""

from __future__ import annotations

import itertools
import os
import stat
import tempfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

__all__ = ["atomic_write", "file_stamp", "irregular_file", "file_kind", "load_cache", "open_cache", "save_cache", "cached_array", "cached_keep",
           "bounded_map", "check_cache_writable", "cache_write_error"]


def file_stamp(path: str | os.PathLike) -> str:
    """``"size:mtime_ns:inode:ctime_ns"`` of a file (``"missing"`` if it cannot be stat'ed): what
    cache keys record of each input, so that a changed file invalidates a cache.

    Size and modification time alone miss a file replaced by one of the same size with
    its modification time restored, as ``cp -p``, ``rsync -a`` and ``tar`` do. The inode
    (a new file replacing the old one) and the status-change time ``st_ctime_ns`` (set by
    the system on every write, rename or ``utime``; users cannot set it) catch that. The
    price is a recompute after changes that leave the pixels alone (``chmod``, a
    dataset copied elsewhere or restored from a backup): a miss costs time, a stale hit
    wrong results.

    >>> file_stamp("/no/such/file")
    'missing'
    """
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words: ``"a regular file"``, ``"a FIFO"``, ...

    >>> file_kind(os.stat(".").st_mode)
    'a folder'
    """
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((kind for test, kind in _KINDS if test(mode)), "a special file")


def irregular_file(path: str | os.PathLike) -> str:
    """``''`` for a regular file (links followed) or a path that cannot be stat'ed, else the reason to skip it.

    The reason is ``"not a regular file (a FIFO)"`` (a character or block device, a socket, a
    folder). Only ``os.stat`` is called: opening a FIFO to read waits for a writer, forever;
    a device such as ``/dev/zero`` never ends. A path that cannot be stat'ed (missing, no
    permission) is left to whatever reads it, which reports its own reason.

    >>> irregular_file(os.devnull), irregular_file("/no/such/file")
    ('not a regular file (a character device)', '')
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return ""
    return "" if stat.S_ISREG(mode) else f"not a regular file ({file_kind(mode)})"


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write ``path`` through a temporary file in the same folder, then rename it.

    An interrupted run leaves either the old file or the new one, never half of one;
    the temporary file is removed on error. A text ``mode`` writes UTF-8, and a file name that
    is not valid UTF-8 (a str holding surrogates) keeps its bytes, so the path still names the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        text = {} if "b" in mode else {"encoding": "utf-8", "errors": "surrogateescape"}
        with os.fdopen(fd, mode, **text) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_cache(path: Path, build: Callable[[dict[str, Any]], Any]) -> Any:
    """``build(arrays)`` from an ``.npz`` cache written by :func:`save_cache`, or None.

    ``arrays`` holds the saved arrays and ``skipped``, a list of (path, reason) pairs.
    None when the file is missing, or damaged or foreign (it fails to load or to build):
    the caller recomputes and replaces it.
    """
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {key: z[key] for key in z.files}
        arrays["skipped"] = list(zip(arrays.pop("skipped_path").tolist(), arrays.pop("skipped_reason").tolist()))
        return build(arrays)
    except Exception:  # noqa: BLE001 - any failure means "not a usable cache"
        return None


def open_cache(path: Path, build: Callable[[dict[str, Any]], Any]) -> Any:
    """:func:`load_cache`, or None after checking that ``path`` can be written (:func:`check_cache_writable`).

    What every cached computation does first: use the cache when it is whole, else fail now,
    not after the whole dataset, when the result could not be saved.
    """
    cached = load_cache(path, build)
    if cached is None:
        check_cache_writable(path)
    return cached


def cached_array(arrays: dict[str, Any], name: str, dtype, shape: tuple) -> np.ndarray:
    """``arrays[name]`` after checking its dtype and shape (``None`` in ``shape``: any length).

    For the ``build`` functions of :func:`load_cache`: a ``ValueError`` makes the cache
    count as missing, so a foreign or damaged file is recomputed and replaced, never used.

    >>> cached_array({"x": np.zeros((2, 3), np.uint8)}, "x", np.uint8, (None, 3)).shape
    (2, 3)
    >>> cached_array({"x": np.zeros((2, 4), np.uint8)}, "x", np.uint8, (None, 3))
    Traceback (most recent call last):
    ...
    ValueError: cached 'x' is uint8 (2, 4), expected uint8 (None, 3)
    """
    if name not in arrays:
        raise ValueError(f"cache has no array {name!r}")
    a = arrays[name]
    ok = (
        isinstance(a, np.ndarray)
        and a.dtype == np.dtype(dtype)
        and a.ndim == len(shape)
        and all(want is None or got == want for got, want in zip(a.shape, shape))
    )
    if not ok:
        got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        raise ValueError(f"cached {name!r} is {got}, expected {np.dtype(dtype)} {tuple(shape)}")
    return a


def cached_keep(arrays: dict[str, Any], paths: list[str]) -> np.ndarray:
    """The cache's ``keep`` (indices of the ``paths`` that were used) after checking it.

    Integers, strictly increasing, in ``range(len(paths))``, and the cache's ``skipped``
    pairs naming exactly the other paths, in order; else ``ValueError`` (see
    :func:`cached_array`).

    >>> cached_keep({"keep": np.array([0, 2]), "skipped": [("b", "why")]}, ["a", "b", "c"]).tolist()
    [0, 2]
    """
    n = len(paths)
    keep = arrays.get("keep")
    if not isinstance(keep, np.ndarray) or keep.ndim != 1 or not np.issubdtype(keep.dtype, np.integer):
        raise ValueError("cached 'keep' is not a 1-D array of indices")
    if keep.size and (keep[0] < 0 or keep[-1] >= n or np.any(np.diff(keep) <= 0)):
        raise ValueError(f"cached 'keep' has indices out of range(0, {n}) or out of order")
    kept = np.zeros(n, bool)
    kept[keep] = True
    others = [p for p, k in zip(paths, kept) if not k]
    if [p for p, _ in arrays.get("skipped", ())] != others:
        raise ValueError(f"cache keeps {len(keep)} of {n} inputs but does not list the other {len(others)} as skipped")
    return keep.astype(np.intp)


def save_cache(path: Path, skipped, **arrays: np.ndarray) -> None:
    """Write ``arrays`` and the (path, reason) pairs ``skipped`` to an ``.npz`` cache, atomically."""
    skipped = [(str(p), str(r)) for p, r in skipped]
    paths = np.array([p for p, _ in skipped], dtype=str)
    reasons = np.array([r for _, r in skipped], dtype=str)
    atomic_write(path, lambda fh: np.savez(fh, **arrays, skipped_path=paths, skipped_reason=reasons))


def bounded_map(pool: ThreadPoolExecutor, fn: Callable, items: list, window: int) -> Iterator:
    """``pool.map(fn, items)`` in order, with at most ``window`` tasks submitted at a time.

    ``Executor.map`` submits every item at once: a future, a work item and a lock per
    image, about 2.5 KB each, so memory grew with the dataset (74 MB for 30,000 images).
    A bounded window keeps it flat, and on an interrupt only the window is cancelled.
    """
    it = iter(items)
    pending: deque = deque(pool.submit(fn, item) for item in itertools.islice(it, window))
    try:
        while pending:
            result = pending.popleft().result()
            for item in itertools.islice(it, 1):
                pending.append(pool.submit(fn, item))
            yield result
    finally:
        for future in pending:
            future.cancel()


def check_cache_writable(cache_path: Path) -> None:
    """Fail now, not after the whole dataset, when the cache folder cannot be written.

    Creates and removes an empty temporary file: this catches a path under a regular
    file, a missing permission and a read-only file system, for root too.
    """
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{cache_path.name}.", suffix=".tmp", dir=cache_path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise cache_write_error(cache_path, exc) from exc


def cache_write_error(cache_path: Path, exc: OSError) -> OSError:
    """The error naming a cache file that cannot be written, and why (raise it ``from exc``).

    >>> cache_write_error(Path("c/x.npz"), OSError(28, "No space left on device"))
    OSError('cannot write the preprocessing cache c/x.npz: No space left on device')
    """
    return OSError(f"cannot write the preprocessing cache {cache_path}: {exc.strerror or exc}")
