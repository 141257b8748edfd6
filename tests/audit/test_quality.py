"""find_quality_issues: planted bad images are flagged with their issue, normal ones with none.

A class-folder dataset is generated under tmp_path: 20 normal textured colour images (a
skin-coloured noisy background with a darker lesion) and one planted image per issue type (black,
white, heavily blurred, flat, a 10:1 strip, grayscale; and the blurred image's sharp original,
not blurry); a corrupt JPEG is added to the table.
CleanVision's thresholds are absolute (only odd_size compares images), so the verdicts do not
depend on the other images.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import skinlib
from skinlib import find_quality_issues
from skinlib.audit import ISSUE_TYPES, UNREADABLE
from skinlib.plotting import plot_quality_issues


def textured(seed: int, h: int = 120, w: int = 160) -> np.ndarray:
    """A normal colour image (BGR): noisy skin-coloured background, a darker round lesion."""
    rng = np.random.default_rng(seed)
    img = np.array([150.0, 170.0, 210.0]) + rng.normal(0, 25, (h, w, 3))
    yy, xx = np.mgrid[:h, :w]
    img[(yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 3) ** 2] *= 0.5
    return np.clip(img, 0, 255).astype(np.uint8)


def spots(seed: int) -> np.ndarray:
    """Sharp dark spots on smooth radial shading (BGR)."""
    yy, xx = np.mgrid[:120, :160]
    r = np.hypot(yy - 60, xx - 80)
    r = 255 * (1 - r / r.max())
    img = np.dstack([r * 0.8, r * 0.9, r])
    rng = np.random.default_rng(seed)
    for _ in range(12):
        cy, cx, rad = rng.integers(10, 110), rng.integers(10, 150), rng.integers(5, 14)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < rad ** 2] *= 0.35
    return np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)


PLANTED = {
    "dark": np.zeros((120, 160, 3), np.uint8),
    "light": np.full((120, 160, 3), 255, np.uint8),
    "blurry": cv2.GaussianBlur(spots(0), (0, 0), 10),  # CleanVision looks for edges at 64 px
    "low_information": np.full((120, 160, 3), (120, 140, 180), np.uint8),
    "odd_aspect_ratio": textured(5, 20, 200),
    "grayscale": cv2.cvtColor(textured(6), cv2.COLOR_BGR2GRAY),
}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality") / "data"
    for label in ("benign", "malignant"):
        (root / label).mkdir(parents=True)
    for i in range(20):
        assert cv2.imwrite(str(root / ("benign" if i % 2 else "malignant") / f"normal_{i:02d}.jpg"), textured(100 + i))
    for issue, img in PLANTED.items():
        assert cv2.imwrite(str(root / "benign" / f"{issue}.png"), img)
    assert cv2.imwrite(str(root / "malignant" / "sharp_spots.png"), spots(0))  # the blurry one, not blurred
    df = skinlib.load_dataset(root)
    corrupt = root / "malignant" / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not a JPEG after all")
    df = pd.concat([df, pd.DataFrame({"path": [str(corrupt)], "label": [1]})], ignore_index=True)
    before = snapshot(root)
    issues = find_quality_issues(df, progress=False)
    return root, df, issues, before


def flagged(issues: pd.DataFrame) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path, issue in zip(issues["path"], issues["issue"]):
        out.setdefault(Path(path).stem, set()).add(issue)
    return out


def test_every_planted_image_is_flagged_with_its_issue(dataset):
    _, _, issues, _ = dataset
    found = flagged(issues)
    for issue in PLANTED:
        assert issue in found.get(issue, set()), f"{issue}.png not flagged {issue}: {found.get(issue)}"
    assert "blurry" not in found.get("sharp_spots", set())  # the blurry image before it was blurred


def test_normal_images_are_flagged_with_nothing(dataset):
    _, df, issues, _ = dataset
    found = flagged(issues)
    normal = [Path(p).stem for p in df["path"] if Path(p).stem.startswith("normal_")]
    assert len(normal) == 20
    assert {n: found[n] for n in normal if n in found} == {}


def test_the_corrupt_file_is_listed_as_unreadable_and_nothing_else(dataset):
    _, df, issues, _ = dataset
    rows = issues[issues["path"].str.endswith("corrupt.jpg")]
    assert rows["issue"].tolist() == [UNREADABLE]
    assert rows["score"].isna().all()
    assert [path for path, _ in issues.attrs["skipped"]] == rows["path"].tolist()
    assert skinlib.skipped_files(issues)["path"].tolist() == rows["path"].tolist()
    assert issues.attrs["checked"] == len(df) - 1


def test_table_and_summary(dataset):
    _, df, issues, _ = dataset
    assert list(issues.columns) == ["path", "issue", "score"]
    assert set(issues["path"]) <= set(df["path"])  # the paths as the dataset table gives them
    assert not issues.duplicated(["path", "issue"]).any()
    summary = issues.attrs["summary"]
    assert list(summary) == [*ISSUE_TYPES, UNREADABLE]
    assert summary == {k: int((issues["issue"] == k).sum()) for k in summary}
    scored = issues[issues["issue"] != UNREADABLE]
    assert scored["score"].between(0, 1).all()


def test_nothing_is_written_under_the_dataset_folder(dataset):
    root, _, _, before = dataset
    assert snapshot(root) == before


def test_issue_types_and_thresholds_can_be_chosen(dataset):
    _, df, _, _ = dataset
    only = find_quality_issues(df, issue_types=["dark"], progress=False)
    assert set(only["issue"]) == {"dark", UNREADABLE}
    assert list(only.attrs["summary"]) == ["dark", UNREADABLE]
    # A dark threshold above every image's score flags them all.
    strict = find_quality_issues(df, issue_types={"dark": {"threshold": 1.01}}, progress=False)
    assert strict.attrs["summary"]["dark"] == len(df) - 1
    with pytest.raises(ValueError, match="unknown issue type"):
        find_quality_issues(df, issue_types=["smudged"])


def test_a_table_of_unreadable_files_only(tmp_path):
    bad = tmp_path / "empty.jpg"
    bad.write_bytes(b"")
    issues = find_quality_issues(pd.DataFrame({"path": [str(bad), str(tmp_path / "missing.jpg")]}), progress=False)
    assert issues["issue"].tolist() == [UNREADABLE, UNREADABLE]
    assert issues.attrs["checked"] == 0


def test_plot_shows_examples_per_issue_type(dataset):
    _, _, issues, _ = dataset
    fig = plot_quality_issues(issues, n=2)
    titles = [ax.get_title() for ax in fig.axes]
    assert {t.split("\n")[0] for t in titles} == set(issues["issue"])
    assert any("corrupt.jpg" in t for t in titles)  # an unreadable file is a titled blank cell
    assert type(fig).__module__ == "matplotlib.figure"
    empty = plot_quality_issues(issues.iloc[:0])
    assert [ax.get_title() for ax in empty.axes] == ["no image flagged"]
