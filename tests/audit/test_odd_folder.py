"""One folder holding every odd file at once: the audit from the shell writes its report (exit 0), with every
check run, and lists each file it skipped with its reason; nothing under the dataset changes."""

import csv
import os
import shutil

import cv2
import numpy as np
import pytest

from conftest import lesion_image, tree_digest, write_jpeg
from skinlib.__main__ import main
from skinlib.audit import REPORT_FILE

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX feature")

NOT_UTF8 = os.fsdecode(b"caf\xe9-latin1.jpg")  # a name written by an old Windows tool: not valid UTF-8
MATH = "$\\frac{1$ and 50$.jpg"
FORMULA = "=HYPERLINK(1).jpg"


@pytest.fixture
def odd_folder(tmp_path):
    """Class folders of twelve usable images, three of them under odd names, beside every kind of file
    the audit must skip; returns (root, {name: the word its reason must hold})."""
    root = tmp_path / "clinic"
    names = {"benign": ["b0.jpg", "b1.jpg", "b2.jpg", NOT_UTF8, MATH], "malignant": ["m0.jpg", "m1.jpg", FORMULA]}
    for cls, files in names.items():
        for i, name in enumerate(files):
            write_jpeg(root / cls / name, lesion_image(size=128, radius=18 + 12 * (cls == "malignant"), seed=i))
    shutil.copyfile(root / "benign" / "b0.jpg", root / "malignant" / "copy-of-b0.jpg")
    benign, malignant = root / "benign", root / "malignant"
    # What must be skipped, each with the word its reason holds:
    cv2.imwrite(str(benign / "sliver.png"), np.full((1, 400, 3), 120, np.uint8))   # 1 pixel high
    cv2.imwrite(str(malignant / "thread.png"), np.full((300, 2, 3), 90, np.uint8))  # 2 pixels wide
    (benign / "empty.jpg").write_bytes(b"")
    (benign / "garbage.jpg").write_bytes(os.urandom(300))
    (malignant / "truncated.jpg").write_bytes((benign / "b1.jpg").read_bytes()[:300])
    os.mkfifo(benign / "pipe.jpg")
    os.symlink(malignant, benign / "into-malignant")  # would read malignant images as benign
    os.symlink(root, malignant / "up-to-root")
    os.symlink(malignant / "m0.jpg", benign / "m0-as-benign.jpg")
    skipped = {"sliver.png": "too small", "thread.png": "too small", "empty.jpg": "empty", "garbage.jpg": "not an image",
               "truncated.jpg": "not a decodable image", "pipe.jpg": "not a regular file (a FIFO)",
               "into-malignant": "link leads to", "up-to-root": "link leads to", "m0-as-benign.jpg": "link leads to"}
    return root, skipped


def read_rows(path):
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return list(csv.DictReader(fh))


def test_a_folder_of_every_odd_file_is_audited_whole_and_each_skip_is_listed(odd_folder, tmp_path, capsys):
    root, skipped = odd_folder
    before = tree_digest(root / "malignant") | {"benign": sorted(os.listdir(os.fsencode(root / "benign")))}
    out = tmp_path / "report"
    code = main(["audit", str(root), "--out", str(out), "--n-boot", "0", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 0, err
    page = (out / REPORT_FILE).read_text(encoding="utf-8")
    for section in ("copies", "quality", "unreadable"):
        assert f'id="{section}"' in page or section in page
    # Every figure made it into the page (none dropped for a name matplotlib could not draw).
    assert page.count('src="data:image/png;base64,') >= 3
    assert "\\xe9" in page and "$\\frac{1$ and 50$.jpg" in page
    unreadable = {os.path.basename(row["path"]): row for row in read_rows(out / "unreadable.csv")}
    for name, word in skipped.items():
        assert name in unreadable, (name, sorted(unreadable))
        assert unreadable[name]["reason"] and word in unreadable[name]["reason"], unreadable[name]
    # The three odd names are audited images, not skips; the formula name is escaped in the CSV.
    for name in (NOT_UTF8, MATH, FORMULA):
        assert name not in unreadable
    summary = {(row["check"], row["issue"]): int(row["count"]) for row in read_rows(out / "summary.csv")}
    assert summary["images", "audited"] == 12 and summary["unreadable", "files"] == len(skipped)
    copies = read_rows(out / "copies.csv")
    assert any(row["path_a"].endswith("b0.jpg") or row["path_b"].endswith("b0.jpg") for row in copies)
    assert tree_digest(root / "malignant") | {"benign": sorted(os.listdir(os.fsencode(root / "benign")))} == before
