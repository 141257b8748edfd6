"""skinlib.audit._report: a dataset whose file names, diagnoses and groups hold "$" (mathtext to
matplotlib) or bytes that are not UTF-8 gets its whole report, every figure drawn, every name shown
as it is (undecodable bytes written ``\\xff``)."""

import html
import json
import os
import re
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: before anything imports pyplot

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import skinlib  # noqa: E402
from conftest import lesion_image  # noqa: E402
from skinlib import Preprocess  # noqa: E402
from skinlib.audit import audit_dataset, write_audit_report  # noqa: E402
from skinlib.runs import fold_dir  # noqa: E402

#: File names as bytes: mathtext (valid or not) and not UTF-8; the first is a dark image.
NAMES = [b"bad\xff dark.jpg", b"a$x$b.jpg", b"$\\frac{1$.jpg", b"50$ and 60$.jpg", b"caf\xe9 $x$.jpg",
         b"x$^^$.jpg", b"plain.jpg", b"other.jpg"]
#: Copies of two of them, under names of the same kinds: the copies' figure shows them.
COPIES = {b"a$x$b.jpg": b"c$y$.jpg", b"bad\xff dark.jpg": b"bad2\xfe.jpg"}


def write_image(folder: Path, name: bytes, img: np.ndarray) -> str:
    ok, buffer = cv2.imencode(".jpg", img)
    assert ok
    path = os.path.join(os.fsencode(folder), name)
    with open(path, "wb") as fh:
        fh.write(buffer.tobytes())
    return os.fsdecode(path)


def dataset(root: Path) -> Path:
    for i, name in enumerate(NAMES):
        folder = root / ("benign", "malignant")[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        img = lesion_image(size=64, radius=8 + 2 * i, seed=i)
        write_image(folder, name, img // 12 if i == 0 else img)  # one too dark: a quality issue
        if name in COPIES:
            write_image(folder, COPIES[name], img // 12 if i == 0 else img)
    return root


def is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def cross_validation(df: pd.DataFrame, folder: Path) -> Path:
    """Two folds scoring the images whose names are UTF-8 (a predictions.csv holds text), the first
    two against their labels."""
    scored = df[[is_utf8(p) for p in df["path"]]]
    label = scored["label"].to_numpy()
    probability = np.where(label == 1, 0.85, 0.15) + np.linspace(-0.05, 0.05, len(scored))
    probability[:2] = np.where(label[:2] == 1, 0.02, 0.98)
    half = len(scored) // 2
    for k, rows in enumerate((slice(0, half), slice(half, None)), 1):
        run = fold_dir(folder, k)
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"preprocess": Preprocess.default().to_dict(), "threshold": 0.5}))
        pd.DataFrame({"path": scored["path"].to_numpy()[rows], "fold": "test", "label": label[rows],
                      "probability": probability[rows],
                      "probability_uncalibrated": probability[rows]}).to_csv(run / "predictions.csv", index=False)
    return folder


def test_names_with_dollars_and_undecodable_bytes_get_every_figure_and_are_shown_as_they_are(tmp_path):
    root = dataset(tmp_path / "data")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = skinlib.load_dataset(root)
        df = df.assign(dx=np.where(df["label"] == 1, "mel $x$", "$\\nosuch$ nv"),
                       sex=np.where(np.arange(len(df)) % 2, "$}$", "50$ b 60$"))
        cv = cross_validation(df, tmp_path / "cv$x$")
        audit = audit_dataset(df, runs=[cv], progress=False, same_lesion=False, n_boot=0)
    assert len(audit.copies) and len(audit.quality) and audit.label_issues["flagged"].any()
    assert set(audit.diagnoses["diagnosis"]) == {"mel $x$", "$\\nosuch$ nv"}

    text = write_audit_report(audit, tmp_path / "report").read_text(encoding="utf-8")
    assert "could not be drawn" not in text
    figures = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,', text)
    # Copies, quality, label errors, and the three figures of the error analysis.
    assert len(figures) == 6, figures
    assert {html.unescape(alt) for alt in figures} >= {f"diagnoses of {cv}", f"subgroups of {cv}",
                                                        f"the likeliest label errors of {cv}"}
    # Names as they are, undecodable bytes written out (never a surrogate escape of them).
    for name in [*NAMES, *COPIES.values()]:
        assert html.escape(name.decode("utf-8", "backslashreplace")) in text, name
    assert "\\udc" not in text and "\\xff dark.jpg" in text
