"""One cached, threaded pass over a list of files: :func:`map_files`.

Preprocessing a dataset, hashing its images for duplicates and taking their local features
are the same loop: a function of one file, run over many in threads with a progress bar;
files it cannot use are skipped with a reason, never stopping the run, and so are paths that
are no regular file (a FIFO, a device, a folder: :func:`.files.irregular_file`), before the
function could open them (a FIFO would block it for ever); the kept results
are stacked into named arrays and cached in an ``.npz`` file (:func:`.files.save_cache`)
whose name holds a key of the settings and of every file's :func:`.files.file_stamp`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar

import numpy as np

from skinlib._shared.files import (bounded_map, cache_write_error, cached_keep, file_stamp, irregular_file,
                                   open_cache, save_cache)

__all__ = ["map_files", "FileMap", "Skip", "cache_key"]

R = TypeVar("R")
T = TypeVar("T")


class Skip(Exception):
    """What the per-file function of :func:`map_files` raises (or returns) to leave a file out.

    >>> Skip("file is empty").reason
    'file is empty'
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = str(reason)


@dataclass
class FileMap(Generic[T]):
    """What :func:`map_files` returns.

    ``results`` are the kept files' results in input order (``build`` of their stacked
    arrays, or the list itself without ``stack``); ``keep`` the indices of those files
    (intp, increasing); ``skipped`` the other files' ``(path, reason)`` pairs, in input
    order; ``from_cache`` whether the cache served them; ``cache_path`` the cache file
    (None without ``cache_dir``).
    """

    results: T
    keep: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)
    from_cache: bool = False
    cache_path: Path | None = None


def cache_key(settings: str | Mapping[str, Any], paths: Sequence[str], fields: Sequence[str] | None = None) -> str:
    """24 hex digits of a SHA-256 of ``settings`` and of each file's path, ``fields`` and stamp.

    ``settings`` is hashed as it is when a string, else as sorted JSON and a newline; then one
    line per file, ``path<TAB>field<TAB>file_stamp(path)`` (no field without ``fields``).
    A changed setting, path, field or file gives another key.

    >>> cache_key({"version": 1}, ["/no/such/file"]) == cache_key('{"version": 1}\\n', ["/no/such/file"])
    True
    >>> cache_key("v1\\n", ["/no/such/file"], ["0"]) == cache_key("v1\\n", ["/no/such/file"], ["1"])
    False
    """
    if not isinstance(settings, str):
        settings = json.dumps(dict(settings), sort_keys=True) + "\n"
    if fields is not None and len(fields) != len(paths):
        raise ValueError(f"cache key: {len(fields)} fields for {len(paths)} files")
    h = hashlib.sha256(settings.encode())
    for i, path in enumerate(paths):
        parts = [str(path)] if fields is None else [str(path), str(fields[i])]
        h.update(("\t".join(parts) + f"\t{file_stamp(path)}\n").encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:24]


def map_files(
    paths: Sequence[str | os.PathLike],
    compute: Callable[[str], R],
    *,
    stack: Callable[[list[R]], dict[str, np.ndarray]] | None = None,
    build: Callable[[dict[str, np.ndarray], int], T] | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_name: str = "files",
    key: str | Mapping[str, Any] = "",
    key_fields: Sequence[str] | None = None,
    workers: int = 1,
    progress: bool = True,
    desc: str = "files",
    unit: str = "img",
    executor: Callable[[int], ThreadPoolExecutor] = ThreadPoolExecutor,
) -> FileMap[T]:
    """``compute`` of every file, in threads, with a progress bar, skipping what it cannot use, cached.

    Parameters
    ----------
    paths : sequence of str or path-like
        The files, in order (taken as strings). A path that is no regular file (links
        followed) is skipped with the reason ``"not a regular file (a FIFO)"`` (a device, a
        directory...) without ``compute`` seeing it: opening a FIFO waits for a writer.
    compute : callable
        ``compute(path)`` returns the file's result, or raises or returns :class:`Skip` with the
        reason to leave the file out. Any other exception stops the run and writes no cache.
    stack : callable, optional
        ``stack(results)``: the kept results (a list, in input order, which ``stack`` may empty
        as it copies them) as a dict of named arrays, what the cache stores besides ``keep``.
        Without it, ``results`` is that list and nothing can be cached.
    build : callable, optional
        ``build(arrays, n)``: the returned ``results`` from the named arrays of ``n`` kept files,
        fresh from ``stack`` or read from the cache. It checks them: a ``ValueError`` (as from
        :func:`.files.cached_array`) makes a cache file count as missing, recomputed and replaced.
    cache_dir : str or path-like, optional
        Folder of the cache file ``{cache_name}-{key}.npz``, where ``key`` is
        :func:`cache_key` of ``key``, the paths, ``key_fields`` and each file's stamp. The cache
        is used when whole; else the folder is checked to be writable before anything is
        computed, and the file written atomically after (``OSError`` naming it otherwise).
    cache_name : str
        The start of the cache file's name.
    key : str or dict
        The settings the results depend on (:func:`cache_key`).
    key_fields : sequence of str, optional
        One string per file hashed into the key with its path (a label, say).
    workers : int
        Threads; 1 (or fewer) computes in this thread. At most ``8 * workers`` files are queued.
    progress : bool
        Show a ``tqdm.auto`` bar (never for no files).
    desc, unit : str
        The bar's label and unit.
    executor : callable
        Makes the thread pool from the number of workers.

    Returns
    -------
    FileMap
        ``results``, ``keep`` (indices of the kept files), ``skipped`` (``[(path, reason), ...]``),
        ``from_cache`` and ``cache_path``.

    Examples
    --------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> paths = [os.path.join(tmp.name, name) for name in ("a", "b", "c")]
    >>> for path, text in zip(paths, ["12", "x", "7"]):
    ...     _ = Path(path).write_text(text)
    >>> def number(path):
    ...     text = Path(path).read_text()
    ...     if not text.isdigit():
    ...         raise Skip(f"not a number: {text!r}")
    ...     return int(text)
    >>> out = map_files(paths, number, progress=False)
    >>> out.results, out.keep.tolist(), [(os.path.basename(p), r) for p, r in out.skipped]
    ([12, 7], [0, 2], [('b', "not a number: 'x'")])
    >>> cached = dict(stack=lambda values: {"n": np.array(values, np.int64)},
    ...               build=lambda arrays, n: arrays["n"].tolist(), cache_dir=tmp.name, cache_name="numbers")
    >>> map_files(paths, number, progress=False, **cached).from_cache
    False
    >>> again = map_files(paths, number, progress=False, **cached)
    >>> again.from_cache, again.results, again.skipped == out.skipped
    (True, [12, 7], True)
    >>> tmp.cleanup()
    """
    paths = [str(p) for p in paths]
    if (stack is None) != (build is None):
        raise ValueError("map_files: give both stack and build, or neither")
    cache_path = None
    if cache_dir is not None:
        if stack is None:
            raise ValueError("map_files: a cache needs stack and build")
        cache_path = Path(cache_dir) / f"{cache_name}-{cache_key(key, paths, key_fields)}.npz"

        def from_cache(arrays: dict[str, Any]) -> FileMap:
            # A foreign or damaged file fails these checks (ValueError): no cache, recomputed and replaced.
            keep = cached_keep(arrays, paths)
            return FileMap(build(arrays, len(keep)), keep, list(arrays["skipped"]), True, cache_path)

        cached = open_cache(cache_path, from_cache)
        if cached is not None:
            return cached

    def run(path: str):
        # Checked here, not only where tables are loaded: a FIFO may appear after loading,
        # or the table may have been built by hand.
        reason = irregular_file(path)
        if reason:
            return Skip(reason)
        try:
            return compute(path)
        except Skip as skip:  # returned, not raised: a raise would end bounded_map's generator
            return skip

    from tqdm.auto import tqdm

    n = len(paths)
    kept: list = []
    keep: list[int] = []
    skipped: list[tuple[str, str]] = []
    with tqdm(total=n, desc=desc, unit=unit, disable=not progress or n == 0) as bar:
        # Threads, not processes: decoding, OpenCV and NumPy release the GIL, so threads use
        # every core without re-importing anything, in notebooks and scripts alike.
        with executor(workers) if workers > 1 else contextlib.nullcontext() as pool:
            results = bounded_map(pool, run, paths, 8 * workers) if workers > 1 else map(run, paths)
            for i, result in enumerate(results):
                if isinstance(result, Skip):
                    skipped.append((paths[i], result.reason))
                else:
                    kept.append(result)
                    keep.append(i)
                bar.update(1)
    keep_array = np.array(keep, np.intp)
    if stack is None:
        return FileMap(kept, keep_array, skipped)
    arrays = stack(kept)
    del kept
    reserved = {"keep", "skipped_path", "skipped_reason"} & set(arrays)
    if reserved:
        raise ValueError(f"map_files: stack may not name an array {sorted(reserved)}")
    out = FileMap(build(arrays, len(keep_array)), keep_array, skipped, False, cache_path)
    if cache_path is not None:
        try:
            save_cache(cache_path, skipped, keep=keep_array.astype(np.int64), **arrays)
        except OSError as exc:
            raise cache_write_error(cache_path, exc) from exc
    return out

