"""Interrupted preprocessing and caches that cannot be written.

README promises that an interrupted run never leaves half a cache, and that a
cache which cannot be written is an error naming it. A run is killed for real, in
a subprocess (SIGKILL as by the OOM killer, SIGINT as by Ctrl-C), part-way through
the images and also in the middle of writing the cache; the next run must neither
read a half-written file nor fail, and must give the correct output. A cache
folder that cannot be written, and a full disk, are simulated in this process
(tests may run as root, whom a read-only folder does not stop).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skinlib
import skinlib._shared.files
import skinlib.preprocessing._pipeline as pp
from skinlib import Preprocess, preprocess_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> pd.DataFrame:
    """300 synthetic images: with Preprocess.seed() (~15 ms an image) a run takes seconds."""
    folder = skinlib.make_sample(tmp_path_factory.mktemp("interrupt") / "sample", n=300, seed=5)
    return skinlib.load_dataset(folder)


def cache_files(cache: Path) -> dict[str, list[Path]]:
    files = sorted(cache.iterdir()) if cache.exists() else []
    return {
        "npz": [p for p in files if p.name.startswith("preprocessed-") and p.suffix == ".npz"],
        "tmp": [p for p in files if p.name.startswith(".") and p.name.endswith(".tmp")],
        "other": [p for p in files if not (p.suffix == ".npz" or p.name.endswith(".tmp"))],
    }


def assert_loadable(npz: Path) -> None:
    with np.load(npz, allow_pickle=False) as z:
        assert {"x", "keep", "skipped_path", "skipped_reason"} <= set(z.files)
        assert len(z["x"]) == len(z["keep"])


def assert_correct(res, df: pd.DataFrame, config: Preprocess) -> None:
    """The full result, and a few images recomputed one by one."""
    assert res.x.shape == (len(df),) + config.output_shape and res.skipped.empty
    np.testing.assert_array_equal(res.y, df["label"].to_numpy())
    for i in (0, len(df) // 2, len(df) - 1):
        np.testing.assert_array_equal(res.x[i], config.load(df["path"].iloc[i]))


# The child runs preprocess_dataset on the table it is given; the counting wrapper
# tells the parent when images are being processed, so that the signal lands
# part-way through the work and not during start-up.
CHILD = textwrap.dedent(
    """
    import io, os, signal, sys, threading
    import numpy as np, pandas as pd
    sys.path.insert(0, {repo!r})
    import skinlib.preprocessing._pipeline as pp
    from skinlib import Preprocess, preprocess_dataset

    df = pd.read_pickle({table!r})
    config = Preprocess.from_json({config!r})
    mode = {mode!r}

    real_load, done, lock = pp._load_one, [0], threading.Lock()
    def counting_load(config, path):
        out = real_load(config, path)
        with lock:
            done[0] += 1
            if done[0] == 20:
                print("working", flush=True)
        return out
    pp._load_one = counting_load

    if mode == "die_while_writing_cache":
        # Write the first half of the real cache file, make sure it is on disk, and die
        # there, as a power cut or the OOM killer would.
        real_savez = np.savez
        def dying_savez(fh, **arrays):
            buf = io.BytesIO()
            real_savez(buf, **arrays)
            fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            fh.flush()
            os.fsync(fh.fileno())
            print("half written", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        np.savez = dying_savez

    preprocess_dataset(df, config, cache_dir={cache!r}, workers=2, progress=False)
    print("finished", flush=True)
    """
)


def start_child(tmp_path: Path, df: pd.DataFrame, config: Preprocess, cache: Path, mode: str = "") -> subprocess.Popen:
    table = tmp_path / "table.pkl"
    df.to_pickle(table)
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(repo=str(REPO), table=str(table), config=config.to_json(), cache=str(cache), mode=mode))
    # Its own session, so that the whole process group can be signalled like a terminal's
    # Ctrl-C, and nothing of it outlives the test.
    return subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, cwd=tmp_path,
    )


def wait_for_line(proc: subprocess.Popen, expected: str) -> None:
    for line in proc.stdout:
        if line.strip() == expected:
            return
    proc.wait()
    raise AssertionError(f"child ended (code {proc.returncode}) before printing {expected!r}: {proc.stderr.read()}")


def finish(proc: subprocess.Popen) -> str:
    """Wait for the child (a generous limit only guards against a hang) and return its stderr."""
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError("the interrupted run did not stop")
    return err


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_run_killed_part_way(sig, sample, tmp_path):
    config = Preprocess.seed()  # the exact bilateral filter: slow enough to be caught mid-run
    cache = tmp_path / "cache"
    proc = start_child(tmp_path, sample, config, cache)
    try:
        wait_for_line(proc, "working")
        os.killpg(proc.pid, sig)
        err = finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0, "the run finished before the signal arrived"
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in err  # stopped by the interrupt, not by some other failure
    else:
        assert proc.returncode == -signal.SIGKILL
    files = cache_files(cache)
    # The run never got to its cache: no file that could pass for one, whole or half.
    assert files["other"] == [] and files["npz"] == []
    # The next run computes everything, correctly, and caches it; the one after reads it.
    res = preprocess_dataset(sample, config, cache_dir=cache, progress=False)
    assert not res.from_cache
    assert_correct(res, sample, config)
    again = preprocess_dataset(sample, config, cache_dir=cache, progress=False)
    assert again.from_cache
    np.testing.assert_array_equal(again.x, res.x)


def test_killed_while_writing_the_cache(sample, tmp_path):
    """Killed with half the cache on disk: the half is never read, never named like a cache."""
    df = sample.iloc[:60].reset_index(drop=True)
    config = Preprocess.default()
    cache = tmp_path / "cache"
    proc = start_child(tmp_path, df, config, cache, mode="die_while_writing_cache")
    wait_for_line(proc, "half written")
    finish(proc)
    assert proc.returncode == -signal.SIGKILL
    files = cache_files(cache)
    assert files["npz"] == [] and files["other"] == []
    # The half-written data sits in a temporary file only (a SIGKILL leaves no chance
    # to remove it); it is named so that no run takes it for a cache.
    assert len(files["tmp"]) == 1
    stray = files["tmp"][0]
    with pytest.raises(Exception):
        assert_loadable(stray)
    res = preprocess_dataset(df, config, cache_dir=cache, progress=False)
    assert not res.from_cache
    assert_correct(res, df, config)
    files = cache_files(cache)
    assert [p.name for p in files["npz"]] == [res.cache_path.name]
    assert_loadable(res.cache_path)
    assert preprocess_dataset(df, config, cache_dir=cache, progress=False).from_cache


def test_preprocessing_streams_through_a_bounded_window(sample, monkeypatch):
    """Only a few images are queued at any moment, whatever the dataset's size.

    Submitting every image at once (Executor.map) costs memory per image, on top of
    the output, and leaves the whole queue to cancel on Ctrl-C.
    """
    outstanding, peak = [0], [0]

    class CountingPool(pp.ThreadPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            outstanding[0] += 1
            peak[0] = max(peak[0], outstanding[0])
            future = super().submit(fn, *args, **kwargs)
            future.add_done_callback(lambda f: outstanding.__setitem__(0, outstanding[0] - 1))
            return future

    monkeypatch.setattr(pp, "ThreadPoolExecutor", CountingPool)
    config = Preprocess.default()
    res = preprocess_dataset(sample, config, workers=2, progress=False)
    assert_correct(res, sample, config)
    assert 2 <= peak[0] <= 32 < len(sample)


# --------------------------------------------------------------------------- caches that cannot be written


@pytest.fixture
def small(sample) -> pd.DataFrame:
    return sample.iloc[:12].reset_index(drop=True)


@pytest.fixture
def images_processed(monkeypatch) -> list[str]:
    """Paths preprocess_dataset decoded in this test (it looks _load_one up at call time)."""
    seen: list[str] = []
    real = pp._load_one

    def counting(config, path):
        seen.append(path)
        return real(config, path)

    monkeypatch.setattr(pp, "_load_one", counting)
    return seen


def all_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_cache_dir_under_a_regular_file(small, tmp_path, images_processed):
    """A cache folder that cannot be created: an error naming it, before any image is processed."""
    blocker = tmp_path / "results"
    blocker.write_text("a file where a folder was expected")
    cache = blocker / "cache"
    with pytest.raises(OSError, match="cannot write the preprocessing cache") as info:
        preprocess_dataset(small, Preprocess.default(), cache_dir=cache, progress=False)
    assert str(cache / "preprocessed-") in str(info.value)
    assert images_processed == []  # the error comes first, not after the whole dataset
    assert all_files(tmp_path) == ["results"] and blocker.read_text().startswith("a file")


def test_cache_dir_not_writable(small, tmp_path, monkeypatch, images_processed):
    """Permission denied in the cache folder (simulated: as root no mode stops a write)."""
    cache = tmp_path / "cache"
    cache.mkdir()

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(skinlib._shared.files.tempfile, "mkstemp", denied)
    with pytest.raises(OSError, match="Permission denied") as info:
        preprocess_dataset(small, Preprocess.default(), cache_dir=cache, progress=False)
    assert f"cannot write the preprocessing cache {cache / 'preprocessed-'}" in str(info.value)
    assert images_processed == []
    assert all_files(cache) == []
    monkeypatch.undo()
    # a readable cache is still used from a folder that cannot be written to
    res = preprocess_dataset(small, Preprocess.default(), cache_dir=cache, progress=False)
    monkeypatch.setattr(skinlib._shared.files.tempfile, "mkstemp", denied)
    assert preprocess_dataset(small, Preprocess.default(), cache_dir=cache, progress=False).from_cache
    assert all_files(cache) == [res.cache_path.name]


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_at_fsync(small, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setattr(os, "fsync", _no_space)
    with pytest.raises(OSError, match="No space left on device") as info:
        preprocess_dataset(small, Preprocess.default(), cache_dir=cache, progress=False)
    assert f"cannot write the preprocessing cache {cache / 'preprocessed-'}" in str(info.value)
    assert info.value.__cause__.errno == errno.ENOSPC
    assert all_files(cache) == []  # the temporary file is removed


def test_disk_full_part_way_through_the_file(small, tmp_path, monkeypatch):
    """The disk fills up after part of the file is written: no partial file is left."""
    cache = tmp_path / "cache"
    real_savez = np.savez

    def savez_until_full(fh, **arrays):
        fh.write(b"PK\x03\x04" + b"\x00" * 1000)  # the start of a zip, then no more room
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pp.np, "savez", savez_until_full)
    with pytest.raises(OSError, match="No space left on device") as info:
        preprocess_dataset(small, Preprocess.default(), cache_dir=cache, progress=False)
    assert str(cache / "preprocessed-") in str(info.value)
    assert all_files(cache) == []
    # an earlier good cache of the same data is never damaged by a failed rewrite
    monkeypatch.setattr(pp.np, "savez", real_savez)
    good = preprocess_dataset(small, Preprocess.default(), cache_dir=cache, progress=False)
    before = good.cache_path.read_bytes()
    good.cache_path.write_bytes(before[:50])  # damaged, so the next call rewrites it
    monkeypatch.setattr(pp.np, "savez", savez_until_full)
    with pytest.raises(OSError, match="No space left on device"):
        preprocess_dataset(small, Preprocess.default(), cache_dir=cache, progress=False)
    assert good.cache_path.read_bytes() == before[:50]  # replaced whole or not at all
    assert all_files(cache) == [good.cache_path.name]
