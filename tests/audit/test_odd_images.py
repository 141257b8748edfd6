"""Odd files in a dataset: every per-file step skips what it cannot use, with a reason, and goes on.

One folder holds a few drawn lesions (one photographed a second time, one copied byte for
byte) and each kind of odd file: images a few pixels high or wide, a 16-bit, a grayscale, an
RGBA and a LAB-mode image, an empty file, a truncated JPEG, and paths that are not regular
files (a FIFO, a link to /dev/null and a folder, all named ``*.jpg``). Each finder (same
lesion, copies, image quality, the training pipeline) must return, list what it could not
use with a reason saying why, and still find the planted pairs among the rest.

Opening a FIFO for reading blocks until a writer comes. Each call runs in a thread while
this one checks whether anything opened the FIFO (a non-blocking open for writing succeeds
only then); if so it lets the reader go on (an empty file) and the test fails, never hangs.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import skinlib
from skinlib import Preprocess, preprocess_dataset, read_image
from skinlib._shared.filemap import map_files
from skinlib.audit import find_duplicates, find_quality_issues, find_same_lesion
from skinlib.audit._local_features import local_features

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo"),
    pytest.mark.filterwarnings("ignore:find_same_lesion. skipped", "ignore:find_duplicates. skipped"),
]

#: Images of degenerate shape, by name: (height, width).
TINY = {"1x1.jpg": (1, 1), "1x500.jpg": (1, 500), "500x1.jpg": (500, 1), "2x300.jpg": (2, 300), "3x3.jpg": (3, 3),
        "300x2.jpg": (300, 2), "1x400.png": (1, 400)}
#: Wide enough to hash, but 3 pixels high once its longer side is the 200 of the local features.
NARROW = "20x1200.jpg"
#: Images every step can use (bar CleanVision the LAB one); the flat one has no local features at all.
UNUSUAL = ("16bit.png", "gray.png", "rgba.png", "lab.tiff", "flat.jpg")
BROKEN = {"empty.jpg": "empty", "truncated.jpg": "not a decodable image"}
NOT_FILES = {"fifo.jpg": "not a regular file (a FIFO)", "null.jpg": "not a regular file (a character device)",
             "folder.jpg": "not a regular file (a folder)"}


def _photo_again(img: np.ndarray) -> np.ndarray:
    """Another photograph of the lesion in ``img``: turned, zoomed, moved and relit."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.15)
    m[:, 2] += (0.03 * w, -0.02 * h)
    out = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    return np.clip(out.astype(np.float32) * 0.9, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The table of every file, the planted same-lesion pair and copy, and the FIFO's path."""
    root = tmp_path_factory.mktemp("odd")
    rng = np.random.default_rng(11)
    drawn = [cv2.resize(skinlib.data.draw_lesion_image(rng, i % 2 == 1), (200, 150)) for i in range(9)]
    paths = []
    for i in range(5):
        assert cv2.imwrite(str(root / f"lesion_{i}.jpg"), drawn[i], [cv2.IMWRITE_JPEG_QUALITY, 92])
        paths.append(str(root / f"lesion_{i}.jpg"))
    assert cv2.imwrite(str(root / "again_1.jpg"), _photo_again(drawn[1]), [cv2.IMWRITE_JPEG_QUALITY, 88])
    shutil.copyfile(root / "lesion_2.jpg", root / "copy_2.jpg")
    paths += [str(root / "again_1.jpg"), str(root / "copy_2.jpg")]
    for name, (h, w) in {**TINY, NARROW: (20, 1200)}.items():
        assert cv2.imwrite(str(root / name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    assert cv2.imwrite(str(root / "16bit.png"), drawn[5].astype(np.uint16) * 257)
    assert cv2.imwrite(str(root / "gray.png"), cv2.cvtColor(drawn[6], cv2.COLOR_BGR2GRAY))
    assert cv2.imwrite(str(root / "rgba.png"), np.dstack([drawn[7], np.linspace(0, 255, 200 * 150, dtype=np.uint8)
                                                          .reshape(150, 200)]))
    Image.fromarray(drawn[8][:, :, ::-1]).convert("LAB").save(root / "lab.tiff")
    assert cv2.imwrite(str(root / "flat.jpg"), np.full((150, 200, 3), 160, np.uint8))
    (root / "empty.jpg").write_bytes(b"")
    whole = (root / "lesion_3.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    os.mkfifo(root / "fifo.jpg")
    os.symlink(os.devnull, root / "null.jpg")
    (root / "folder.jpg").mkdir()
    paths += [str(root / name) for name in [*TINY, NARROW, *UNUSUAL, *BROKEN, *NOT_FILES]]
    df = pd.DataFrame({"path": paths, "label": [i % 2 for i in range(len(paths))]})
    again = tuple(sorted((str(root / "lesion_1.jpg"), str(root / "again_1.jpg"))))
    copy = tuple(sorted((str(root / "lesion_2.jpg"), str(root / "copy_2.jpg"))))
    return {"root": root, "df": df, "again": again, "copy": copy, "fifo": str(root / "fifo.jpg")}


def watching(fifo: str, fn, timeout: float = 120.0):
    """``fn()`` run in a thread; fails if it opened ``fifo`` (then set free) or is still running after ``timeout``."""
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            out["error"] = exc

    worker = threading.Thread(target=run, daemon=True)  # daemon: a stuck call cannot keep pytest from ending
    worker.start()
    opened = 0
    deadline = time.monotonic() + timeout
    while worker.is_alive() and time.monotonic() < deadline:
        worker.join(0.02)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO unless someone has it open to read
        except OSError:
            continue
        opened += 1
        os.close(fd)  # the reader sees an empty file and goes on
    assert not worker.is_alive(), f"still running after {timeout} s"
    assert not opened, f"the FIFO {fifo} was opened {opened} time(s): reading it would have hung"
    if "error" in out:
        raise out["error"]
    return out["value"]


def reasons(skipped) -> dict[str, str]:
    return {os.path.basename(p): r for p, r in skipped}


def check_skipped(got: dict[str, str], tiny: list[str], others: dict[str, str]) -> None:
    """``got`` lists exactly ``tiny`` (as too small, with their size) and ``others`` (each with its reason)."""
    assert set(got) == set(tiny) | set(others), sorted(got)
    for name in tiny:
        h, w = TINY.get(name, (20, 1200))
        assert "too small" in got[name] and f"{w} x {h} pixels" in got[name], (name, got[name])
    if NARROW in tiny:
        assert "200 x 3 at the working size" in got[NARROW], got[NARROW]
    for name, why in others.items():
        assert why in got[name], (name, got[name])


def pairs_of(pairs: pd.DataFrame) -> set:
    return {tuple(sorted(p)) for p in zip(pairs["path_a"], pairs["path_b"])}


def test_same_lesion_skips_what_it_cannot_use_and_finds_the_planted_pairs(folder):
    flat = folder["df"]["path"].str.endswith("flat.jpg")
    assert len(local_features(read_image(folder["df"]["path"][flat].item()))[0]) == 0
    pairs = watching(folder["fifo"], lambda: find_same_lesion(folder["df"], progress=False))
    check_skipped(reasons(pairs.attrs["skipped"]), [*TINY, NARROW], {**BROKEN, **NOT_FILES})
    assert pairs_of(pairs) == {folder["again"], folder["copy"]}


def test_copies_skip_what_they_cannot_use_and_find_the_copy(folder):
    pairs = watching(folder["fifo"], lambda: find_duplicates(folder["df"], progress=False))
    # A line of pixels stretched to a square matches any other: those are skipped, not paired.
    check_skipped(reasons(pairs.attrs["skipped"]), list(TINY), {**BROKEN, **NOT_FILES})
    assert pairs_of(pairs) == {folder["copy"]}
    assert pairs["kind"].tolist() == ["identical"]


def test_quality_scores_every_decodable_image_and_skips_the_rest(folder):
    issues = watching(folder["fifo"], lambda: find_quality_issues(folder["df"], progress=False))
    # Degenerate shapes are what the check is for: scored and flagged, not skipped.
    broken = {"empty.jpg": "cannot identify image file", "truncated.jpg": "image file is truncated"}  # Pillow's words
    check_skipped(reasons(issues.attrs["skipped"]), [], {**broken, **NOT_FILES, "lab.tiff": "image mode LAB cannot be scored"})
    odd = set(issues.loc[issues["issue"] == "odd_aspect_ratio", "path"].map(os.path.basename))
    assert {"1x500.jpg", "500x1.jpg", "2x300.jpg", "300x2.jpg", "1x400.png", NARROW} <= odd
    assert issues.attrs["checked"] == len(folder["df"]) - len(BROKEN) - len(NOT_FILES) - 1


@pytest.mark.parametrize("config", [Preprocess.default(), Preprocess.for_model("v3"), Preprocess.seed(fast=True),
                                    Preprocess(steps=(("remove_hair", {}), ("crop_to_lesion", {}),
                                                      ("resize", {"size": 32})), color=True)],
                         ids=["default", "v3", "seed", "hair_crop"])
def test_preprocessing_uses_every_decodable_image_and_skips_the_rest(folder, config):
    res = watching(folder["fifo"], lambda: preprocess_dataset(folder["df"], config, workers=2, progress=False))
    check_skipped(reasons(zip(res.skipped["path"], res.skipped["reason"])), [], {**BROKEN, **NOT_FILES})
    assert res.x.shape == (len(folder["df"]) - len(BROKEN) - len(NOT_FILES),) + config.output_shape


def test_read_image_refuses_what_is_not_a_regular_file_without_opening_it(folder):
    root = folder["root"]
    for name, why in NOT_FILES.items():
        with pytest.raises(skinlib.ImageReadError, match=f"{name}: {why.replace('(', '[(]').replace(')', '[)]')}"):
            watching(folder["fifo"], lambda: read_image(root / name))
    # A link to an image is the image.
    os.symlink(root / "lesion_0.jpg", root / "link.jpg")
    try:
        np.testing.assert_array_equal(read_image(root / "link.jpg"), read_image(root / "lesion_0.jpg"))
    finally:
        os.unlink(root / "link.jpg")


def test_map_files_skips_what_is_not_a_regular_file_before_computing(folder, tmp_path):
    """Any per-file function, even one that opens what it is given: never called for those paths."""
    target = tmp_path / "number.txt"
    target.write_text("7")
    os.symlink(target, tmp_path / "link.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    paths = [str(target), str(tmp_path / "link.txt"), str(tmp_path / "pipe.txt"), os.devnull, str(tmp_path)]
    seen = []

    def number(path: str) -> int:
        seen.append(path)
        return len(Path(path).read_text())

    out = watching(str(tmp_path / "pipe.txt"), lambda: map_files(paths, number, workers=2, progress=False))
    assert out.results == [1, 1] and out.keep.tolist() == [0, 1]
    assert out.skipped == [(paths[2], "not a regular file (a FIFO)"), (paths[3], "not a regular file (a character device)"),
                           (paths[4], "not a regular file (a folder)")]
    assert sorted(seen) == sorted(paths[:2])
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe.txt").st_mode)  # left as it was
