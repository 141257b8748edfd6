"""skinlib.audit._audit and skinlib.audit._report: the one-command dataset audit finds what was planted, and its
HTML report is one self-contained file that shows every file name as text."""

import json
import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skinlib
from conftest import tree_digest
from skinlib import Preprocess
from skinlib.__main__ import main
from skinlib.audit import SUMMARY_COLUMNS, UNREADABLE_COLUMNS, audit_dataset
from skinlib.audit import REPORT_FILE, html_table, write_audit_report
from skinlib.runs import fold_dir

NASTY = "<img src=x onerror=alert(1)>.jpg"
QUIET = dict(progress=False, same_lesion=False)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A 60-image synthetic dataset with its planted copies (planted_duplicates.csv)."""
    return skinlib.make_sample(tmp_path_factory.mktemp("audit") / "sample", n=60, seed=4)


def load(path):
    """The dataset table; the files it skips (garbage.jpg) are the audit's to list."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*skipped \d+ file")
        return skinlib.load_dataset(path)


@pytest.fixture(scope="module")
def class_folders(sample, tmp_path_factory):
    """train/ and test/ class folders of sample images: one under a name that is HTML, a byte copy of
    it in test (a leak), a file of garbage bytes and a truncated JPEG (both unreadable)."""
    images = sorted((sample / "train").glob("*.jpg"))[:10]
    planted = set(pd.read_csv(sample / "planted_duplicates.csv")[["image_a", "image_b"]].to_numpy().ravel())
    images = [p for p in images if p.stem not in planted][:8]
    root = tmp_path_factory.mktemp("audit") / "mvb"
    for i, src in enumerate(images):
        split, cls = ("train" if i < 6 else "test"), ("benign", "malignant")[i % 2]
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, root / split / cls / (NASTY if i == 0 else src.name))
    shutil.copyfile(root / "train" / "benign" / NASTY, root / "test" / "benign" / "copy.jpg")
    (root / "test" / "malignant" / "garbage.jpg").write_bytes(os.urandom(500))
    (root / "test" / "malignant" / "truncated.jpg").write_bytes(images[1].read_bytes()[:400])
    return root


def planted_pairs(folder):
    planted = pd.read_csv(folder / "planted_duplicates.csv")
    return {frozenset(pair) for pair in planted[["image_a", "image_b"]].itertuples(index=False)}


def stems(pairs):
    return {frozenset((Path(a).stem, Path(b).stem)) for a, b in zip(pairs["path_a"], pairs["path_b"])}


def test_the_audit_finds_the_planted_copies_and_writes_one_self_contained_page(sample, tmp_path):
    df = load(sample)
    audit = audit_dataset(df, quality=False, cache_dir=tmp_path / "cache", **QUIET)
    truth = planted_pairs(sample)
    assert len(truth) >= 2 and truth <= stems(audit.copies)
    assert (audit.copies["against"] == "").all()
    assert audit.leakage is None and any("no train/test split" in n for n in audit.notes)  # ISIC 2020: no test folder
    counts = audit.summary.set_index(["check", "issue"])["count"]
    assert counts["images", "audited"] == len(df)
    assert sum(counts[("copies", k)] for k in audit.copies["kind"].unique()) == len(audit.copies)
    assert list(tmp_path.joinpath("cache").glob("signatures-*.npz"))  # cached like preprocessing

    page = write_audit_report(audit, tmp_path / "report")
    assert page == tmp_path / "report" / REPORT_FILE
    text = page.read_text(encoding="utf-8")
    images = re.findall(r"<img\b[^>]*>", text)
    assert images and all(re.search(r'\bsrc="data:image/png;base64,[A-Za-z0-9+/=]+"', tag) for tag in images)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|file:|//|[\w./-]+\.(png|jpg|css|js))""", text)
    assert "<script" not in text and "<link" not in text
    written = sorted(p.name for p in page.parent.iterdir())
    assert written == ["copies.csv", "report.html", "summary.csv"]  # no quality, runs, split: no such tables
    copies = pd.read_csv(page.parent / "copies.csv", keep_default_na=False)
    assert list(copies.columns) == ["path_a", "path_b", "similarity", "kind", "transform", "against"]
    assert truth <= stems(copies) and copies["similarity"].between(0, 1).all()
    assert list(pd.read_csv(page.parent / "summary.csv").columns) == SUMMARY_COLUMNS


def test_a_file_named_like_html_shows_as_text_and_the_split_leak_is_counted(class_folders, tmp_path):
    before = tree_digest(class_folders)
    df = load(class_folders)
    audit = audit_dataset(df, **QUIET)
    copy = str(class_folders / "test" / "benign" / "copy.jpg")
    nasty = str(class_folders / "train" / "benign" / NASTY)
    # The byte copy in test of a training image is the one leak, and drop_leaked would remove it.
    assert stems(audit.leakage) == {frozenset(("copy", Path(NASTY).stem))}
    assert set(audit.leakage[["fold_a", "fold_b"]].to_numpy().ravel()) == {"train", "test"}
    assert audit.leaked_test == [copy]
    counts = audit.summary.set_index(["check", "issue"])["count"]
    assert counts["leakage", "pairs across the split"] == 1
    assert counts["leakage", "test images with a copy or lesion outside test"] == 1
    # Unreadable files are listed with their reason, never a crash: garbage at loading, truncated on decoding.
    unreadable = audit.unreadable.set_index("path")
    assert {Path(p).name for p in unreadable.index} == {"garbage.jpg", "truncated.jpg"}
    assert unreadable.loc[str(class_folders / "test" / "malignant" / "garbage.jpg"), "found_by"] == "load"
    assert "copies" in unreadable.loc[str(class_folders / "test" / "malignant" / "truncated.jpg"), "found_by"]
    assert counts["unreadable", "files"] == 2
    assert audit.quality is not None and audit.quality.attrs["checked"] == len(df) - 1

    page = write_audit_report(audit, tmp_path / "out")
    text = page.read_text(encoding="utf-8")
    assert "<img src=x" not in text and "onerror=alert(1)>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in text
    assert all(tag.startswith('<img alt="') for tag in re.findall(r"<img\b[^>]*>", text))
    leakage = pd.read_csv(page.parent / "leakage.csv", keep_default_na=False)
    assert {"path_a", "path_b", "similarity", "kind", "fold_a", "fold_b"} <= set(leakage.columns)
    assert set(leakage[["path_a", "path_b"]].to_numpy().ravel()) == {copy, nasty}  # the CSV keeps the real name
    table = pd.read_csv(page.parent / "unreadable.csv")
    assert list(table.columns) == UNREADABLE_COLUMNS and len(table) == 2
    quality = pd.read_csv(page.parent / "quality.csv")
    assert list(quality.columns) == ["path", "issue", "score"] and "truncated.jpg" in " ".join(quality["path"])
    assert tree_digest(class_folders) == before  # the images are only read


def fake_run(folder, rows: pd.DataFrame, threshold: float = 0.5):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"preprocess": Preprocess.default().to_dict(),
                                                    "threshold": threshold}))
    rows.to_csv(folder / "predictions.csv", index=False)
    return folder


def cross_validation(df, folder, flipped=(0, 1)):
    """A two-fold cross-validation folder scoring every image of ``df`` once, separably, except the
    ``flipped`` rows, whose probability contradicts their label."""
    rng = np.random.default_rng(0)
    label = df["label"].to_numpy()
    probability = np.clip(np.where(label == 1, 0.85, 0.15) + rng.normal(0, 0.05, len(df)), 0.01, 0.99)
    probability[list(flipped)] = np.where(label[list(flipped)] == 1, 0.02, 0.98)
    half = len(df) // 2
    for k, rows in enumerate((slice(0, half), slice(half, None)), 1):
        fake_run(fold_dir(folder, k), pd.DataFrame({
            "path": df["path"].to_numpy()[rows], "fold": "test", "label": label[rows],
            "probability": probability[rows], "probability_uncalibrated": probability[rows]}))
    return folder


def test_runs_give_label_issues_and_an_error_analysis(sample, tmp_path):
    df = load(sample)
    df = df.assign(dx=np.where(df["label"] == 1, "mel", "nv"))
    cv = cross_validation(df, tmp_path / "cv")
    audit = audit_dataset(df, runs=[cv, fold_dir(cv, 1)], quality=False, n_boot=0, **QUIET)
    # The cross-validation's out-of-fold predictions rank the two contradicted labels first; the run
    # folder alone has none and is skipped, with a note, for label issues only.
    issues = audit.label_issues
    assert set(issues["run"]) == {str(cv)}
    assert set(issues.head(2)["path"]) == set(df["path"].iloc[[0, 1]]) and issues.head(2)["flagged"].all()
    assert any(str(fold_dir(cv, 1)) in n and "run folder" in n for n in audit.notes)
    assert set(audit.errors) == {str(cv), str(fold_dir(cv, 1))}
    points = audit.operating_points
    assert {"run", "point", "sensitivity", "specificity"} <= set(points.columns)
    assert set(audit.diagnoses["diagnosis"]) == {"mel", "nv"}
    counts = audit.summary.set_index(["check", "issue"])["count"]
    assert counts[f"label issues of {cv}", "flagged"] == int(issues["flagged"].sum()) >= 2

    out = tmp_path / "report"
    write_audit_report(audit, out)
    for name in ("label_issues", "diagnoses", "subgroups", "operating_points"):
        table = pd.read_csv(out / f"{name}.csv")
        assert table.columns[0] == "run" and len(table) == len(getattr(audit, name))
    text = (out / REPORT_FILE).read_text()
    assert text.count('src="data:image/png;base64,') >= 1 + 1 + 2 * 3  # copies, suspects, 3 figures per run
    # A later report without runs removes the tables that no longer apply.
    write_audit_report(audit_dataset(df, quality=False, **QUIET), out)
    assert not (out / "label_issues.csv").exists() and not (out / "operating_points.csv").exists()


def test_a_bad_run_folder_is_refused_before_any_image_is_read(sample, tmp_path):
    df = load(sample)
    with pytest.raises(FileNotFoundError, match="no-such-cv"):
        audit_dataset(df, runs=[tmp_path / "no-such-cv"], **QUIET)
    (tmp_path / "empty").mkdir()
    with pytest.raises(skinlib.RunFolderError, match="config.json"):
        audit_dataset(df, runs=[tmp_path / "empty"], **QUIET)


def test_copies_against_another_dataset(sample, class_folders):
    audit = audit_dataset(load(sample), against={"mvb": load(class_folders)}, quality=False, **QUIET)
    across = audit.copies[audit.copies["against"] == "mvb"]
    # Every readable class-folder image (8, and the copy in test) is a byte copy of a sample image.
    assert len(across) == 9 and (across["kind"] == "identical").all()
    assert all(Path(p).is_relative_to(class_folders) for p in across["path_b"])
    counts = audit.summary.set_index(["check", "issue"])["count"]
    assert counts["copies in mvb", "identical"] == 9
    assert "truncated.jpg" in " ".join(audit.unreadable["path"])


def test_an_interrupted_report_leaves_the_previous_one(sample, tmp_path, monkeypatch):
    audit = audit_dataset(load(sample), quality=False, **QUIET)
    page = write_audit_report(audit, tmp_path)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("skinlib.plotting.plot_pairs", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_audit_report(audit, tmp_path)
    # Nothing was replaced (the figures are drawn before any file is written), no temporary file is left.
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()} == before
    assert page.read_text().endswith("</html>\n")


def test_the_audit_finds_the_planted_photographs_of_one_lesion(sample, tmp_path):
    audit = audit_dataset(load(sample), quality=False, progress=False)
    lesions = audit.same_lesion
    assert {"path_a", "path_b", "similarity", "kind", "inliers", "evidence", "against"} <= set(lesions.columns)
    assert (lesions["kind"] == "same lesion").all() and lesions["similarity"].between(0, 1).all()
    assert not stems(lesions) & stems(audit.copies)  # a copy is listed once, as a copy
    truth = sample / "planted_same_lesion.csv"
    if truth.exists():  # the sample plants second photographs of some lesions: each is found
        planted = pd.read_csv(truth)
        assert len(planted) and {frozenset(p) for p in planted[["image_a", "image_b"]].itertuples(index=False)} <= \
            stems(lesions)
        counts = audit.summary.set_index(["check", "issue"])["count"]
        assert counts["same lesion", "pairs"] == len(lesions)
    write_audit_report(audit, tmp_path)
    table = pd.read_csv(tmp_path / "same_lesion.csv")
    assert {"path_a", "path_b", "inliers", "evidence"} <= set(table.columns) and len(table) == len(lesions)


def test_html_table_escapes_headers_and_values_and_says_where_the_rest_is():
    table = pd.DataFrame({"<th>": ['"><script>x</script>', "b"], "n": [1, 2]})
    text = html_table(table, max_rows=1, csv_name="a&b.csv")
    assert "<script>" not in text and "&lt;script&gt;" in text and "&lt;th&gt;" in text
    assert "The first 1 of 2 rows; all of them are in a&amp;b.csv." in text


def test_command_line(class_folders, tmp_path, capsys):
    missing = tmp_path / "no-such-dataset"
    assert main(["audit", str(missing), "--out", str(tmp_path / "out")]) == 2
    assert f"dataset {missing} not found" in capsys.readouterr().err
    afile = tmp_path / "a-file"
    afile.write_text("")
    assert main(["audit", str(class_folders), "--out", str(afile), "--no-quality"]) == 2
    assert f"{afile} is a file, not a folder" in capsys.readouterr().err
    assert main(["audit", str(class_folders), "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "nope"),
                 "--no-quality", "--no-same-lesion"]) == 2
    assert "nope" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="skipped"):  # the garbage file, at loading
        code = main(["audit", str(class_folders), "--out", str(tmp_path / "out"), "--no-quality", "--no-same-lesion",
                     "--layout", "class_folders", "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    assert f"wrote the audit report to {tmp_path / 'out' / REPORT_FILE}" in capsys.readouterr().out
    assert {"report.html", "copies.csv", "leakage.csv", "summary.csv", "unreadable.csv"} == {
        p.name for p in (tmp_path / "out").iterdir()}
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in (tmp_path / "out" / REPORT_FILE).read_text()
