"""Crafted and damaged DermaMNIST files: every problem a DatasetError naming the file, found from the
.npy headers before an array is read; a PNG file gone from the written folder is written again."""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from skinlib import DatasetError, load_dataset, skipped_files
from skinlib.data import materialise
from conftest import dermamnist_arrays


def _member(array: np.ndarray, header: dict | None) -> bytes:
    """The bytes of ``array`` as a .npy member; with ``header``, that header over the array's own data."""
    buf = io.BytesIO()
    if header is None:
        np.save(buf, array, allow_pickle=True)
    else:
        full = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": array.shape}
        np.lib.format.write_array_header_2_0(buf, {**full, **header})
        buf.write(array.tobytes())
    return buf.getvalue()


def write_npz(path: Path, headers: dict | None = None, stored: bool = False, **changes) -> Path:
    """A DermaMNIST file of :func:`dermamnist_arrays` with ``changes`` (arrays) and ``headers`` (header fields) made."""
    arrays = {**dermamnist_arrays(), **changes}
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", method) as zf:
        for key, array in arrays.items():
            zf.writestr(f"{key}.npy", _member(array, (headers or {}).get(key)))
    return path


def _refused(path: Path, tmp_path: Path, *words: str) -> str:
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match=re.escape(str(path))) as info:
        load_dataset(path, cache_dir=cache)
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert not cache.exists() or not any(cache.iterdir())  # refused before anything was written
    return message


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize("headers", [
    {"train_labels": {"shape": (10**12, 1)}},
    {"val_labels": {"shape": (10**12,), "descr": "<i8"}},
    {"test_images": {"shape": (10**12, 28, 28, 3)}, "test_labels": {"shape": (10**12, 1)}},
    {"train_labels": {"shape": (20, 1)}, "train_images": {"shape": (20, 28, 28, 3)}},  # more than the data holds
    {"val_images": {"shape": (4, 28, 27, 3)}},  # fewer
])
def test_header_declaring_other_bytes_than_the_member_holds_is_refused(tmp_path, headers):
    path = write_npz(tmp_path / "dermamnist.npz", headers)
    _refused(path, tmp_path, "declares", "bytes")


def test_member_claiming_more_than_its_compressed_bytes_hold_is_refused(tmp_path):
    """A zip directory that claims 1 GiB of labels for a few stored bytes, with a header to match."""
    n = 2**30
    path = write_npz(tmp_path / "dermamnist.npz", {"train_labels": {"shape": (n, 1)}}, stored=True)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("train_labels.npy")
        with zf.open(info) as fh:
            np.lib.format.read_magic(fh)
            np.lib.format.read_array_header_2_0(fh)
            start = fh.tell()
    claimed = struct.pack("<I", start + n)
    # The uncompressed size in the local header (offset 22) and in the central directory's entry (offset 24).
    data[info.header_offset + 22:info.header_offset + 26] = claimed
    entry = data.index(b"PK\x01\x02")
    while data[entry + 46:entry + 46 + len(info.filename)] != info.filename.encode():
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 24:entry + 28] = claimed
    path.write_bytes(bytes(data))
    _refused(path, tmp_path, "train_labels", "compressed")


@pytest.mark.parametrize("shape", [(10, 0, 28, 3), (10, 28, 0, 3), (10, 0, 0), (10, 0, 28, 1)])
def test_images_of_no_height_or_width_are_refused(tmp_path, shape):
    images = np.zeros(shape, np.uint8)
    path = write_npz(tmp_path / "dermamnist.npz", train_images=images)
    _refused(path, tmp_path, "train_images", "at least 1 x 1")


@pytest.mark.parametrize("labels", [
    np.array([[i % 7] for i in range(10)], dtype=object),
    np.array([(i % 7,) for i in range(10)], dtype=[("label", "O")]),
    np.array([str(i % 7) for i in range(10)], dtype=object),
])
def test_object_arrays_are_refused_naming_the_file(tmp_path, labels):
    path = write_npz(tmp_path / "dermamnist.npz", train_labels=labels)
    _refused(path, tmp_path, "train_labels", "objects")


@pytest.mark.parametrize("key,raw", [
    ("val_labels", b"NOTNPY" + bytes(60)),             # no .npy magic
    ("train_images", b"\x93NUMPY\x02\x00" + struct.pack("<I", 10**6) + b"{"),  # a header longer than the member
    ("test_labels", b""),
])
def test_member_that_is_no_npy_array_is_refused_naming_the_file(tmp_path, key, raw):
    path = write_npz(tmp_path / "dermamnist.npz")
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members[f"{key}.npy"] = raw
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    _refused(path, tmp_path, key)


# --------------------------------------------------------------------------- the written PNG folder


def _png_pixels(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


@pytest.mark.parametrize("damage", ["delete", "empty", "split folder"])
def test_png_gone_from_the_folder_is_written_again(dermamnist_npz, tmp_path, damage):
    cache = tmp_path / "cache"
    folder = materialise(dermamnist_npz, cache)
    png = folder / "test" / "test_00004.png"
    others = {p: os.stat(p).st_mtime_ns for p in folder.rglob("*.png") if p.parent.name != "test"}
    if damage == "delete":
        png.unlink()
    elif damage == "empty":
        png.write_bytes(b"")
    else:
        for p in png.parent.iterdir():
            p.unlink()
        png.parent.rmdir()
    df = load_dataset(dermamnist_npz, cache_dir=cache)
    assert len(df) == 20 and skipped_files(df).empty
    np.testing.assert_array_equal(_png_pixels(png), dermamnist_arrays()["test_images"][4])
    assert {p: os.stat(p).st_mtime_ns for p in others} == others  # the others left as they were
    assert len(list(folder.rglob("*.png"))) == 20 and not list(folder.rglob("*.tmp"))
