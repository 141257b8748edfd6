"""Files: atomic writes, file stamps for cache keys, ``.npz`` caches, reading many files in threads.

Every module that writes a file goes through :func:`atomic_write`, so an interrupted
run leaves the old file or the new one, never half of one. Caches of preprocessed
arrays and duplicate signatures are ``.npz`` files keyed by :func:`file_stamp` of
their inputs (:func:`save_cache`, :func:`load_cache`).
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

__all__ = ["atomic_write", "file_stamp", "load_cache", "save_cache", "bounded_map", "check_cache_writable"]


def file_stamp(path: str | os.PathLike) -> str:
    """``"size:mtime_ns"`` of a file (``"missing"`` if it cannot be stat'ed): what cache keys
    record of each input, so that a changed file invalidates a cache."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write ``path`` through a temporary file in the same folder, then rename it.

    An interrupted run leaves either the old file or the new one, never half of one;
    the temporary file is removed on error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, mode) as fh:
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
        raise OSError(f"cannot write the preprocessing cache {cache_path}: {exc.strerror or exc}") from exc
