"""Files that lie: replaced images with restored times, foreign caches, decompression bombs,
bad output paths, paths outside the dataset folder, symlinked datasets, bad configs.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import skinlib
from skinlib import Preprocess, preprocess_dataset
from skinlib.duplicates import image_signatures
from skinlib.files import file_stamp, load_cache, save_cache
from conftest import lesion_image, write_jpeg


def write_bmp(path: Path, img: np.ndarray) -> Path:
    """An uncompressed BMP: images of one shape give files of one size, whatever the pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".bmp", img)
    assert ok
    buf.tofile(path)
    return path


def replace_keeping_size_and_mtime(path: Path, img: np.ndarray, how: str) -> None:
    """Put other pixels into ``path``: same size, same modification time, as ``cp -p`` or ``rsync -a`` leave it."""
    st = os.stat(path)
    if how == "in_place":  # cp -p, tar: the file is rewritten, its times set back
        ok, buf = cv2.imencode(".bmp", img)
        with open(path, "r+b") as fh:
            fh.write(buf.tobytes())
    else:  # rsync -a: a new file renamed over the old one
        tmp = write_bmp(path.with_name(f".{path.name}.part"), img)
        os.replace(tmp, path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


@pytest.fixture
def bmp_table(tmp_path) -> pd.DataFrame:
    paths = [write_bmp(tmp_path / "img" / f"{i}.bmp", lesion_image(size=64, radius=8 + 3 * i, seed=i)) for i in range(4)]
    return pd.DataFrame({"path": [str(p) for p in paths], "label": [0, 1, 0, 1], "group": list("abcd")})


# --------------------------------------------------------------------------- stale caches


def test_file_stamp_records_inode_and_ctime(tmp_path):
    path = write_bmp(tmp_path / "a.bmp", lesion_image(size=32))
    st = os.stat(path)
    assert file_stamp(path) == f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"
    assert file_stamp(tmp_path / "gone.bmp") == "missing"


@pytest.mark.parametrize("how", ["in_place", "renamed_over"])
def test_preprocess_cache_notices_a_same_size_image_with_restored_mtime(bmp_table, tmp_path, how):
    cache = tmp_path / "cache"
    config = Preprocess.default()
    first = preprocess_dataset(bmp_table, config, cache_dir=cache, progress=False)
    path = Path(bmp_table["path"][1])
    replace_keeping_size_and_mtime(path, lesion_image(size=64, radius=28, lesion=20, seed=50), how)
    again = preprocess_dataset(bmp_table, config, cache_dir=cache, progress=False)
    assert not again.from_cache
    np.testing.assert_array_equal(again.x[1], config.load(path))
    assert not np.array_equal(again.x[1], first.x[1])
    np.testing.assert_array_equal(again.x[[0, 2, 3]], first.x[[0, 2, 3]])


@pytest.mark.parametrize("how", ["in_place", "renamed_over"])
def test_signature_cache_notices_a_same_size_image_with_restored_mtime(bmp_table, tmp_path, how):
    cache = tmp_path / "cache"
    first = image_signatures(bmp_table["path"], cache_dir=cache, progress=False)
    replace_keeping_size_and_mtime(Path(bmp_table["path"][2]), lesion_image(size=64, radius=28, lesion=20, seed=50), how)
    again = image_signatures(bmp_table["path"], cache_dir=cache, progress=False)
    fresh = image_signatures(bmp_table["path"], progress=False)
    assert not again.from_cache
    np.testing.assert_array_equal(again.digests, fresh.digests)
    assert not np.array_equal(again.digests[2], first.digests[2])


# Each entry: how a cache file's arrays are spoiled (given the good arrays and the number of rows).
PREPROCESS_DAMAGE = {
    "x_float": lambda a, n: {**a, "x": a["x"].astype(np.float32)},
    "x_other_size": lambda a, n: {**a, "x": np.zeros((len(a["x"]), 20, 20, 1), np.uint8)},
    "x_colour": lambda a, n: {**a, "x": np.zeros(a["x"].shape[:3] + (3,), np.uint8)},
    "x_fewer_rows": lambda a, n: {**a, "x": a["x"][:-1]},
    "x_flat": lambda a, n: {**a, "x": a["x"].reshape(len(a["x"]), -1)},
    "keep_negative": lambda a, n: {**a, "keep": a["keep"] - 1},
    "keep_repeated": lambda a, n: {**a, "keep": np.zeros_like(a["keep"])},
    "keep_float": lambda a, n: {**a, "keep": a["keep"].astype(float)},
    "keep_shorter": lambda a, n: {**a, "keep": a["keep"][:-1], "x": a["x"][:-1]},
    "no_x": lambda a, n: {k: v for k, v in a.items() if k != "x"},
}


def _arrays(path: Path) -> tuple[dict, list]:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    skipped = list(zip(arrays.pop("skipped_path").tolist(), arrays.pop("skipped_reason").tolist()))
    return arrays, skipped


@pytest.mark.parametrize("damage", PREPROCESS_DAMAGE)
def test_foreign_preprocess_cache_is_recomputed_and_replaced(bmp_table, tmp_path, damage):
    config = Preprocess.default()
    good = preprocess_dataset(bmp_table, config, cache_dir=tmp_path, progress=False)
    arrays, skipped = _arrays(good.cache_path)
    save_cache(good.cache_path, skipped, **PREPROCESS_DAMAGE[damage](arrays, len(bmp_table)))
    again = preprocess_dataset(bmp_table, config, cache_dir=tmp_path, progress=False)
    assert not again.from_cache
    assert again.x.dtype == np.uint8 and again.x.shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(again.x, good.x)
    # The foreign file was replaced by a good one.
    third = preprocess_dataset(bmp_table, config, cache_dir=tmp_path, progress=False)
    assert third.from_cache
    np.testing.assert_array_equal(third.x, good.x)


def test_preprocess_cache_with_skipped_rows_still_loads(bmp_table, tmp_path):
    Path(bmp_table["path"][0]).write_bytes(b"\xff\xd8\xff\xe0 not really")
    first = preprocess_dataset(bmp_table, cache_dir=tmp_path, progress=False)
    again = preprocess_dataset(bmp_table, cache_dir=tmp_path, progress=False)
    assert again.from_cache and len(again.x) == 3 and again.skipped["path"].tolist() == [bmp_table["path"][0]]
    np.testing.assert_array_equal(again.x, first.x)
    # A cache that forgets the skipped file does not account for every row: recomputed.
    arrays, _ = _arrays(first.cache_path)
    save_cache(first.cache_path, [], **arrays)
    assert not preprocess_dataset(bmp_table, cache_dir=tmp_path, progress=False).from_cache


SIGNATURE_DAMAGE = {
    "digests_int": lambda a: {**a, "digests": a["digests"].astype(np.int64)},
    "h64_short": lambda a: {**a, "h64": a["h64"][:, :4]},
    "h256_float": lambda a: {**a, "h256": a["h256"].astype(np.float64)},
    "h64_fewer_rows": lambda a: {**a, "h64": a["h64"][:-1]},
    "keep_negative": lambda a: {**a, "keep": a["keep"] - 1},
    "keep_repeated": lambda a: {**a, "keep": np.zeros_like(a["keep"])},
}


@pytest.mark.parametrize("damage", SIGNATURE_DAMAGE)
def test_foreign_signature_cache_is_recomputed_and_replaced(bmp_table, tmp_path, damage):
    cache = tmp_path / "cache"
    good = image_signatures(bmp_table["path"], cache_dir=cache, progress=False)
    (path,) = cache.iterdir()
    arrays, skipped = _arrays(path)
    save_cache(path, skipped, **SIGNATURE_DAMAGE[damage](arrays))
    again = image_signatures(bmp_table["path"], cache_dir=cache, progress=False)
    assert not again.from_cache and again.paths == good.paths
    np.testing.assert_array_equal(again.h256, good.h256)
    third = image_signatures(bmp_table["path"], cache_dir=cache, progress=False)
    assert third.from_cache
    np.testing.assert_array_equal(third.h64, good.h64)
