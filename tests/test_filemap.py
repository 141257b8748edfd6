"""map_files: the one cached, threaded per-file loop of preprocessing, duplicates and local features.

Small text files stand in for images: each holds a number (kept) or a word (skipped). A counter
records which files were computed, so a cache hit is checked by nothing being computed at all.
"""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import skinlib._shared.files as files
from skinlib._shared.filemap import FileMap, Skip, cache_key, map_files
from skinlib._shared.files import cached_array, save_cache


class Counter:
    """``compute`` of map_files: the file's number, or Skip for anything else; counts its calls."""

    def __init__(self, jitter: bool = False):
        self.calls: list[str] = []
        self.threads: set[int] = set()
        self.lock = threading.Lock()
        self.jitter = jitter

    def __call__(self, path: str) -> np.ndarray:
        with self.lock:
            self.calls.append(path)
            self.threads.add(threading.get_ident())
        if self.jitter:  # finish out of order, so that the order kept is map_files' doing
            time.sleep(random.Random(path).random() * 0.01)
        text = Path(path).read_text()
        if text == "returned":
            return Skip("returned a skip")
        if not text.isdigit():
            raise Skip(f"not a number: {text}")
        return np.array([int(text), len(text)], np.int64)


def stack(results: list) -> dict[str, np.ndarray]:
    return {"values": np.stack(results) if results else np.zeros((0, 2), np.int64)}


def build(arrays: dict, n: int) -> np.ndarray:
    return cached_array(arrays, "values", np.int64, (n, 2))


def write_files(folder: Path, texts: list[str]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, text in enumerate(texts):
        path = folder / f"f{i:03d}.txt"
        path.write_text(text)
        paths.append(str(path))
    return paths


TEXTS = ["5", "x", "17", "returned", "3", "42", "y", "8"]
KEPT = [0, 2, 4, 5, 7]


def run(paths, compute, cache=None, **kwargs) -> FileMap:
    kwargs = {"progress": False, "key": {"version": 1}, "cache_name": "numbers", **kwargs}
    return map_files(paths, compute, stack=stack, build=build, cache_dir=cache, **kwargs)


def cache_files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_in_input_order_with_skipped_files_and_reasons(tmp_path, workers):
    paths = write_files(tmp_path / "in", TEXTS)
    out = run(paths, Counter(jitter=True), workers=workers)
    assert out.keep.tolist() == KEPT and out.keep.dtype == np.intp
    np.testing.assert_array_equal(out.results, [[5, 1], [17, 2], [3, 1], [42, 2], [8, 1]])
    assert out.skipped == [(paths[1], "not a number: x"), (paths[3], "returned a skip"), (paths[6], "not a number: y")]
    assert not out.from_cache and out.cache_path is None


def test_without_stack_the_results_are_the_list(tmp_path):
    paths = write_files(tmp_path / "in", TEXTS)
    out = map_files(paths, Counter(), progress=False, workers=2)
    assert [int(r[0]) for r in out.results] == [5, 17, 3, 42, 8]
    with pytest.raises(ValueError, match="a cache needs stack and build"):
        map_files(paths, Counter(), cache_dir=tmp_path / "cache", progress=False)
    with pytest.raises(ValueError, match="both stack and build"):
        map_files(paths, Counter(), stack=stack, progress=False)


def test_second_call_is_served_from_the_cache_without_computing(tmp_path):
    paths = write_files(tmp_path / "in", TEXTS)
    cache = tmp_path / "cache"
    first_counter, second_counter = Counter(), Counter()
    first = run(paths, first_counter, cache, workers=2)
    assert sorted(first_counter.calls) == sorted(paths) and not first.from_cache
    assert cache_files(cache) == [first.cache_path.name]
    assert first.cache_path.name == f"numbers-{cache_key({'version': 1}, paths)}.npz"
    second = run(paths, second_counter, cache, workers=2)
    assert second_counter.calls == [] and second.from_cache and second.cache_path == first.cache_path
    np.testing.assert_array_equal(second.results, first.results)
    assert second.keep.tolist() == first.keep.tolist() and second.keep.dtype == np.intp
    assert second.skipped == first.skipped
    assert cache_files(cache) == [first.cache_path.name]  # nothing new written


def test_a_changed_file_or_setting_invalidates_the_cache(tmp_path):
    paths = write_files(tmp_path / "in", TEXTS)
    cache = tmp_path / "cache"
    first = run(paths, Counter(), cache)
    Path(paths[1]).write_text("99")  # a skipped file now reads
    counter = Counter()
    again = run(paths, counter, cache)
    assert not again.from_cache and sorted(counter.calls) == sorted(paths)
    assert again.keep.tolist() == [0, 1, 2, 4, 5, 7] and again.results[1].tolist() == [99, 2]
    assert again.cache_path != first.cache_path
    # Another setting, or another per-file field, is another key.
    assert not run(paths, Counter(), cache, key={"version": 2}).from_cache
    labels = ["0"] * len(paths)
    assert not run(paths, Counter(), cache, key_fields=labels).from_cache
    assert run(paths, Counter(), cache, key_fields=labels).from_cache
    assert not run(paths, Counter(), cache, key_fields=["1"] + labels[1:]).from_cache


def test_one_and_two_workers_give_the_same_result_and_cache(tmp_path):
    paths = write_files(tmp_path / "in", TEXTS * 5)
    serial_counter, threaded_counter = Counter(jitter=True), Counter(jitter=True)
    serial = run(paths, serial_counter, tmp_path / "c1", workers=1)
    threaded = run(paths, threaded_counter, tmp_path / "c2", workers=2)
    np.testing.assert_array_equal(serial.results, threaded.results)
    assert serial.keep.tolist() == threaded.keep.tolist() and serial.skipped == threaded.skipped
    assert serial.cache_path.name == threaded.cache_path.name
    assert serial.cache_path.read_bytes() == threaded.cache_path.read_bytes()
    # One worker computes in the calling thread; two use two other threads.
    assert serial_counter.threads == {threading.get_ident()}
    assert threading.get_ident() not in threaded_counter.threads and len(threaded_counter.threads) == 2


@pytest.mark.parametrize("workers", [1, 2])
def test_an_interrupted_compute_leaves_no_cache_file(tmp_path, workers):
    paths = write_files(tmp_path / "in", TEXTS * 4)
    cache = tmp_path / "cache"
    counter = Counter()

    def failing(path):
        if len(counter.calls) == 10:
            raise KeyboardInterrupt
        return counter(path)

    with pytest.raises(KeyboardInterrupt):
        run(paths, failing, cache, workers=workers)
    assert len(counter.calls) < len(paths)  # it stopped part-way
    assert cache_files(cache) == []  # no cache, no temporary file
    out = run(paths, Counter(), cache, workers=workers)
    assert not out.from_cache and len(out.keep) == 5 * 4 and cache_files(cache) == [out.cache_path.name]


def test_an_other_error_propagates_and_writes_nothing(tmp_path):
    paths = write_files(tmp_path / "in", TEXTS)

    def broken(path):
        raise RuntimeError("a bug, not a bad file")

    with pytest.raises(RuntimeError, match="a bug"):
        run(paths, broken, tmp_path / "cache", workers=2)
    assert cache_files(tmp_path / "cache") == []


def test_an_unwritable_cache_folder_fails_before_computing(tmp_path):
    paths = write_files(tmp_path / "in", TEXTS)
    blocker = tmp_path / "results"
    blocker.write_text("a file where a folder was expected")
    counter = Counter()
    with pytest.raises(OSError, match="cannot write the preprocessing cache") as info:
        run(paths, counter, blocker / "cache")
    assert str(blocker / "cache" / "numbers-") in str(info.value)
    assert counter.calls == []


def test_a_full_disk_names_the_cache_and_leaves_no_file(tmp_path, monkeypatch):
    paths = write_files(tmp_path / "in", TEXTS)
    cache = tmp_path / "cache"

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left on device") as info:
        run(paths, Counter(), cache)
    assert f"cannot write the preprocessing cache {cache / 'numbers-'}" in str(info.value)
    assert info.value.__cause__.errno == errno.ENOSPC
    assert cache_files(cache) == []


def test_a_foreign_cache_file_is_recomputed_and_replaced(tmp_path):
    paths = write_files(tmp_path / "in", TEXTS)
    cache = tmp_path / "cache"
    good = run(paths, Counter(), cache)
    # Right keep and skipped, values of the wrong shape: build's check rejects it.
    save_cache(good.cache_path, good.skipped, keep=good.keep, values=np.zeros((len(good.keep), 3), np.int64))
    counter = Counter()
    again = run(paths, counter, cache)
    assert not again.from_cache and len(counter.calls) == len(paths)
    np.testing.assert_array_equal(again.results, good.results)
    assert run(paths, Counter(), cache).from_cache


def test_no_files(tmp_path):
    out = run([], Counter(), tmp_path / "cache", workers=2)
    assert out.results.shape == (0, 2) and out.keep.tolist() == [] and out.skipped == []
    assert run([], Counter(), tmp_path / "cache").from_cache


def test_stack_may_not_take_the_cache_s_own_names(tmp_path):
    paths = write_files(tmp_path / "in", TEXTS)
    with pytest.raises(ValueError, match="keep"):
        map_files(paths, Counter(), stack=lambda r: {"keep": np.zeros(3)}, build=build, progress=False)


def test_the_progress_bar_has_its_label_and_can_be_off(tmp_path, capsys):
    paths = write_files(tmp_path / "in", TEXTS)
    run(paths, Counter(), progress=True, desc="count numbers")
    err = capsys.readouterr().err
    assert "count numbers" in err and f"{len(paths)}/{len(paths)}" in err
    run(paths, Counter(), progress=False, desc="count numbers")
    run([], Counter(), progress=True, desc="count numbers")  # no bar for no files
    assert "count numbers" not in capsys.readouterr().err


def test_a_bounded_window_of_queued_files(tmp_path):
    """At most 8 * workers files are queued at a time, however many there are."""
    paths = write_files(tmp_path / "in", ["1"] * 200)
    outstanding, peak = [0], [0]
    lock = threading.Lock()

    from concurrent.futures import ThreadPoolExecutor

    class CountingPool(ThreadPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            with lock:
                outstanding[0] += 1
                peak[0] = max(peak[0], outstanding[0])
            future = super().submit(fn, *args, **kwargs)

            def done(_):
                with lock:
                    outstanding[0] -= 1

            future.add_done_callback(done)
            return future

    out = run(paths, Counter(), workers=2, executor=CountingPool)
    assert len(out.keep) == 200
    assert 2 <= peak[0] <= 16
