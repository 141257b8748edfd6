"""The audit from the shell and from Python, on inputs a researcher's own folders hold: every number checked
before any work, caches never under a dataset, every layout readable from the command line, predictions of
other images refused, and CSV tables that a spreadsheet opens as text."""

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import lesion_image, tree_digest, write_jpeg
from skinlib.__main__ import main
from skinlib.audit import REPORT_FILE, DatasetAudit, audit_dataset, load_audit, write_audit_report
from skinlib.data import load_dataset
from test_audit import cross_validation

QUICK = ("--no-quality", "--no-same-lesion", "--n-boot", "0")
FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "'quoted"]


@pytest.fixture
def clinic(tmp_path):
    """A CSV dataset as a clinic keeps it: its own column names, diagnoses, patients and ages."""
    root = tmp_path / "clinic"
    rows = []
    for i in range(8):
        dx = ("melanoma", "naevus")[i % 2]
        write_jpeg(root / "img" / f"lesion{i}.jpg", lesion_image(radius=12 + 10 * (i % 2 == 0), seed=i))
        rows.append({"file": f"img/lesion{i}.jpg", "diagnosis": dx, "patient": f"p{i // 2}", "Alter": 40 + i})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


def quietly_load(path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(path, **options)


@pytest.mark.parametrize("given", [["--n-boot", "-1"], ["--n-boot", "1.5"], ["--n-boot", "many"]])
def test_a_bad_number_on_the_command_line_is_refused_before_any_work(clinic, tmp_path, capsys, given):
    with pytest.raises(SystemExit) as stop:
        main(["audit", str(clinic / "labels.csv"), "--out", str(tmp_path / "out"), *given])
    assert stop.value.code == 2
    assert f"--n-boot: expected a whole number >= 0, got {given[1]!r}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option,value", [("n_boot", -1), ("n_boot", 2.5), ("seed", -3), ("n_boot", True)])
def test_audit_dataset_checks_its_numbers_before_reading_an_image(option, value):
    never_read = pd.DataFrame({"path": ["/no/such/a.jpg", "/no/such/b.jpg"], "label": [0, 1]})
    with pytest.raises(ValueError, match=f"{option} must be a whole number >= 0, got {value!r}"):
        audit_dataset(never_read, progress=False, same_lesion=False, quality=False, **{option: value})


def test_a_cache_dir_that_is_a_file_or_inside_a_dataset_is_refused_first(clinic, tmp_path, capsys):
    afile = tmp_path / "cache-file"
    afile.write_text("mine")
    before = tree_digest(clinic)
    for cache, expected in ((afile, f"{afile} is a file, not a folder"),
                            (afile / "sub", f"{afile} is a file, not a folder"),
                            (clinic / "cache", f"is inside the audited dataset {clinic}")):
        code = main(["audit", str(clinic), "--out", str(tmp_path / "out"), "--cache-dir", str(cache),
                     "--image-column", "file", "--label-column", "diagnosis", "--malignant", "melanoma", *QUICK])
        err = capsys.readouterr().err
        assert code == 2 and f"error: --cache-dir {cache}" in err and expected in err, err
        assert "preprocessing" not in err
    assert afile.read_text() == "mine" and tree_digest(clinic) == before and not (tmp_path / "out").exists()
    # From Python too, with the roots known once the table is read (a CSV file given, its folder is the root).
    df = quietly_load(clinic / "labels.csv", image_column="file", label_column="diagnosis", malignant=["melanoma"])
    with pytest.raises(ValueError, match="cache_dir .* is inside the audited dataset"):
        audit_dataset(df, cache_dir=clinic / "img" / "cache", progress=False)
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        audit_dataset(df, cache_dir=afile, progress=False)
    assert tree_digest(clinic) == before


def test_a_csv_dataset_is_audited_from_the_shell_with_its_own_columns(clinic, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["audit", str(clinic / "labels.csv"), "--image-column", "file", "--label-column", "diagnosis",
                 "--malignant", "melanoma", "--group-column", "patient", "--metadata", "age=Alter",
                 "--out", str(out), *QUICK])
    assert code == 0, capsys.readouterr().err
    summary = pd.read_csv(out / "summary.csv").set_index(["check", "issue"])["count"]
    assert summary["images", "audited"] == 8
    # Without the columns, the same CSV is an error that says what to pass.
    code = main(["audit", str(clinic / "labels.csv"), "--out", str(tmp_path / "out2"), *QUICK])
    assert code == 2 and "image_column=" in capsys.readouterr().err
    code = main(["audit", str(clinic / "labels.csv"), "--image-column", "file", "--label-column", "diagnosis",
                 "--malignant", "melanoma", "--metadata", "Alter", "--out", str(tmp_path / "out3"), *QUICK])
    assert code == 2 and "--metadata 'Alter': expected NAME=COLUMN" in capsys.readouterr().err


def test_dermamnist_is_audited_from_the_shell_with_its_png_folder_chosen(dermamnist_npz, tmp_path, capsys):
    pngs = tmp_path / "pngs"
    code = main(["audit", str(dermamnist_npz), "--png-dir", str(pngs), "--out", str(tmp_path / "out"), *QUICK])
    assert code == 0, capsys.readouterr().err
    written = list(pngs.rglob("*.png"))
    assert len(written) == 20  # the fixture's 10 + 4 + 6 images, under the folder given
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index(["check", "issue"])["count"]
    assert summary["images", "audited"] == 20


def test_predictions_of_another_dataset_are_refused_and_of_some_other_images_left_out(clinic, tmp_path, capsys):
    df = quietly_load(clinic / "labels.csv", image_column="file", label_column="diagnosis", malignant=["melanoma"])
    other = tmp_path / "other"
    for i in range(8):
        write_jpeg(other / f"x{i}.jpg", lesion_image(seed=50 + i))
    elsewhere = df.assign(path=[str(other / f"x{i}.jpg") for i in range(8)])
    cv_other = cross_validation(elsewhere, tmp_path / "cv-other", flipped=(0,))
    code = main(["audit", str(clinic / "labels.csv"), "--image-column", "file", "--label-column", "diagnosis",
                 "--malignant", "melanoma", "--runs", str(cv_other), "--out", str(tmp_path / "out"), *QUICK])
    err = capsys.readouterr().err
    assert code == 2 and str(cv_other) in err and "8 of its 8 predictions are of images that are not rows" in err
    assert not (tmp_path / "out").exists()
    # Two of eight predictions of other images: those two are left out, with a note, and never shown.
    mixed = df.copy()
    mixed.loc[[3, 6], "path"] = [str(other / "x3.jpg"), str(other / "x6.jpg")]
    cv_mixed = cross_validation(mixed, tmp_path / "cv-mixed", flipped=(3, 6))
    audit = audit_dataset(df, runs=[cv_mixed], progress=False, same_lesion=False, quality=False, n_boot=0)
    assert any(str(cv_mixed) in n and "2 of its 8 predictions" in n and "left out" in n for n in audit.notes)
    shown = set(audit.label_issues["path"]) | set(audit.errors[str(cv_mixed)].scored["path"])
    assert shown and shown <= set(df["path"]) and not any(str(other) in p for p in shown)
    page = write_audit_report(audit, tmp_path / "report").read_text(encoding="utf-8")
    assert page.count(str(other)) == 1 and "left out" in page  # the note's example, never an image or a row


def test_rows_outside_the_dataset_folder_are_said_in_the_report(tmp_path):
    root, elsewhere = tmp_path / "clinic", tmp_path / "elsewhere"
    write_jpeg(elsewhere / "far.jpg", lesion_image(seed=3))
    for i in range(3):
        write_jpeg(root / f"n{i}.jpg", lesion_image(seed=i))
    pd.DataFrame({"file": ["n0.jpg", "n1.jpg", "n2.jpg", "../elsewhere/far.jpg"], "y": [0, 1, 0, 1]}).to_csv(
        root / "labels.csv", index=False)
    df = quietly_load(root / "labels.csv", image_column="file", label_column="y")
    audit = audit_dataset(df, progress=False, same_lesion=False, quality=False)
    assert any("1 row(s) of the dataset name images outside its folder" in n and "far.jpg" in n for n in audit.notes)


def cells(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


def test_csv_tables_cannot_run_as_spreadsheet_formulas_and_load_back_as_they_were(tmp_path):
    n = len(FORMULAS)
    dataset = pd.DataFrame({"path": [f"/data/{i}.jpg" for i in range(n)], "label": [0, 1] * (n // 2) + [0] * (n % 2),
                            "dx": FORMULAS, "site": pd.Categorical(FORMULAS[::-1]), "age": -np.arange(n, dtype=float)})
    copies = pd.DataFrame({"path_a": FORMULAS[:2], "path_b": ["b", "c"], "similarity": [-0.5, 1.0],
                           "kind": ["=cmd|' /C calc'!A0", "near"], "against": ["", "@x"]})
    audit = DatasetAudit("=evil", dataset, {"copies": copies})
    folder = audit.save(tmp_path / "saved").parent
    report = write_audit_report(audit, tmp_path / "report").parent
    for written in [*folder.glob("*.csv"), *report.glob("*.csv")]:
        texts = cells(written)
        assert not [c for c in texts if c[:1] in ("=", "+", "@", "\t", "\r")], written
        # A leading '-' is left only on numbers, which a spreadsheet reads as numbers.
        for c in texts:
            if c.startswith("-"):
                float(c)
    assert "'=HYPERLINK(\"http://x\",\"y\")" in cells(folder / "dataset.csv")
    assert "''quoted" in cells(folder / "dataset.csv")
    loaded = load_audit(folder)
    pd.testing.assert_frame_equal(loaded.dataset, dataset)
    pd.testing.assert_frame_equal(loaded.copies, copies)
    assert (report / REPORT_FILE).exists()


def test_a_png_folder_that_cannot_be_written_names_the_option_not_the_report(dermamnist_npz, tmp_path, capsys):
    afile = tmp_path / "a-file"
    afile.write_text("mine")
    code = main(["audit", str(dermamnist_npz), "--png-dir", str(afile / "pngs"), "--out", str(tmp_path / "out"),
                 *QUICK])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write DermaMNIST's PNG folder" in err and "--png-dir" in err
    assert "cannot write the report" not in err and afile.read_text() == "mine"
