"""skinlib.audit._report and DatasetAudit.save: a report folder is written whole or not at all, only where
nothing else is (a folder holding a file no report wrote is refused, never emptied), and never under an
audited dataset; the command line checks its --out before any work."""

import contextlib
import io
import os
import threading
import warnings
from pathlib import Path

import pandas as pd
import pytest

import skinlib
from conftest import lesion_image, tree_digest, write_jpeg
from skinlib.__main__ import main
from skinlib.audit import (MANIFEST_FILE, REPORT_FILE, Check, DatasetAudit, audit_dataset, load_audit, register,
                           unregister, write_audit_report)

QUIET = dict(progress=False, same_lesion=False, quality=False)


def load(path, **options):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*skipped \d+ file")
        return skinlib.load_dataset(path, **options)


def class_folders(root: Path) -> Path:
    """train/ and test/ class folders of 8 small drawn lesions, and a file of garbage bytes (unreadable)."""
    for i in range(8):
        split, cls = ("train" if i < 6 else "test"), ("benign", "malignant")[i % 2]
        write_jpeg(root / split / cls / f"{i}.jpg", lesion_image(size=64, radius=8 + 2 * i, seed=i))
    (root / "train" / "benign" / "garbage.jpg").write_bytes(b"\xff\xd8\xff not an image")
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return class_folders(tmp_path_factory.mktemp("safety") / "mvb")


@pytest.fixture(scope="module")
def audit(dataset) -> DatasetAudit:
    """An audit whose report writes copies, leakage, summary and unreadable (the garbage file)."""
    return audit_dataset(load(dataset), **QUIET)


@pytest.fixture(scope="module")
def other(audit) -> DatasetAudit:
    """Another audit of the same dataset: no unreadable table, another summary."""
    summary = audit.summary.assign(count=audit.summary["count"] + 1000)
    return DatasetAudit("other", audit.dataset, {**audit.tables, "unreadable": None, "summary": summary},
                        settings=audit.settings)


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def snapshot(folder: Path) -> dict:
    """Every file's bytes, modification time and inode, and the folder's own inode."""
    files = {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
             for p in folder.rglob("*") if p.is_file()}
    return {"folder": folder.stat().st_ino, "files": files}


def listed(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_a_users_own_files_beside_a_report_html_are_kept_and_the_write_refused(audit, dataset, tmp_path):
    # A folder of the user's, with a page of its own named report.html and CSV files named like the tables.
    mine = tmp_path / "mine"
    mine.mkdir()
    for name, text in (("report.html", "<p>my notes</p>"), ("diagnoses.csv", "dx,n\nmel,3\n"),
                       ("label_issues.csv", "path\nx.jpg\n"), ("notes.txt", "keep me")):
        (mine / name).write_text(text)
    before = tree_digest(mine)
    with pytest.raises(FileExistsError, match=r"is not empty and is not a report folder.*holds diagnoses\.csv"):
        write_audit_report(audit, mine)
    assert tree_digest(mine) == before

    # A report folder this code wrote, to which the user added files: refused, naming the first of them.
    report = tmp_path / "report"
    write_audit_report(audit, report)
    (report / "diagnoses.csv").write_text("dx,n\nmel,3\n")
    (report / "notes.txt").write_text("keep me")
    before = tree_digest(report)
    with pytest.raises(FileExistsError, match=r"holds diagnoses\.csv, which the report written there did not write "
                                              r"\(expected only the files it lists: copies\.csv, "):
        write_audit_report(audit, report)
    assert tree_digest(report) == before

    # The command line: exit 2, one line, before any work, nothing touched.
    for folder in (mine, report):
        code, out, err = cli("audit", str(dataset), "--out", str(folder), "--no-quality", "--no-same-lesion")
        assert code == 2 and out == "" and err.startswith(f"error: --out {folder}") and err.count("\n") == 1
        assert "diagnoses.csv" in err and "Traceback" not in err
    assert tree_digest(report) == before


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the dataset is read or the copies searched: a bad --out must be reported before."""
    import skinlib.audit._checks
    import skinlib.data

    def refuse(*args, **kwargs):
        raise AssertionError("the audit did work before --out was checked")

    # The command line imports load_dataset from skinlib.data when it runs, and the copies check calls the
    # find_duplicates its module imported: patch both there.
    monkeypatch.setattr(skinlib.data, "load_dataset", refuse)
    monkeypatch.setattr(skinlib.audit._checks, "find_duplicates", refuse)


def test_out_inside_the_dataset_is_refused_before_any_work(tmp_path, no_work):
    root = class_folders(tmp_path / "mvb")
    before = tree_digest(root)
    for out in (root / "report", root, root / "train" / "benign"):
        code, stdout, err = cli("audit", str(root), "--out", str(out))
        assert code == 2 and stdout == "" and err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith(f"error: --out {out} is inside the audited dataset {root}")
    assert not (root / "report").exists() and tree_digest(root) == before
    # An --against dataset is audited too.
    elsewhere = tmp_path / "other"
    code, _, err = cli("audit", str(elsewhere), "--against", str(root), "--out", str(root / "report"))
    assert code == 2 and f"inside the audited dataset {root}" in err


def test_a_link_to_the_dataset_as_out_is_refused(audit, dataset, tmp_path, no_work):
    before = tree_digest(dataset)
    link = tmp_path / "link"
    link.symlink_to(dataset, target_is_directory=True)
    for out in (link, link / "report"):
        code, _, err = cli("audit", str(dataset), "--out", str(out))
        assert code == 2 and err.startswith(f"error: --out {out} is inside the audited dataset {dataset}")
        assert str(dataset.resolve()) in err
        with pytest.raises(ValueError, match="inside the audited dataset") as caught:
            write_audit_report(audit, out)
        assert str(out) in str(caught.value) and str(dataset) in str(caught.value)
        with pytest.raises(ValueError, match="inside the audited dataset"):
            audit.save(out)
    assert tree_digest(dataset) == before and not (dataset / "report").exists()


def test_a_csv_datasets_label_file_is_never_deleted(tmp_path):
    root = tmp_path / "clinic"
    names = []
    for i in range(6):
        names.append(f"img{i}.jpg")
        write_jpeg(root / names[-1], lesion_image(size=64, radius=8 + 2 * i, seed=i))
    pd.DataFrame({"image": names, "label": [0, 1] * 3}).to_csv(root / "diagnoses.csv", index=False)
    (root / REPORT_FILE).write_text("<p>an earlier page</p>")  # a report.html there, as an earlier write left it
    df = load(root, layout="csv", image_column="image", label_column="label")
    assert Path(df.attrs["root"]) == root
    audit = audit_dataset(df, **QUIET)
    before = tree_digest(root)
    for out in (root, root / "audit"):
        with pytest.raises(ValueError, match="inside the audited dataset") as caught:
            write_audit_report(audit, out)
        assert f"{out} is inside the audited dataset {root}" in str(caught.value)
        with pytest.raises(ValueError, match="inside the audited dataset"):
            audit.save(out)
    assert tree_digest(root) == before and audit.settings["roots"] == [str(root)]
    # A saved audit, loaded back, still knows where its dataset is.
    saved = tmp_path / "saved"
    audit.save(saved)
    with pytest.raises(ValueError, match="inside the audited dataset"):
        write_audit_report(load_audit(saved), root)
    assert tree_digest(root) == before


class Extra(Check):
    """A check whose table only the first of two reports writes."""

    name, tables, anchor, title, nav = "extra", {"extra": "extra.csv"}, "extra", "Extra", "Extra"

    def find(self, found):
        found.tables["extra"] = pd.DataFrame({"path": found.dataset["path"]})


def test_a_second_report_replaces_the_first_whole(audit, dataset, tmp_path):
    out = tmp_path / "report"
    register(Extra)
    try:
        first = audit_dataset(load(dataset), **QUIET)
        write_audit_report(first, out)
    finally:
        unregister("extra")
    assert {"extra.csv", "unreadable.csv", REPORT_FILE} <= listed(out)
    old = snapshot(out)
    write_audit_report(DatasetAudit("second", audit.dataset, {**audit.tables, "unreadable": None},
                                    settings=audit.settings), out)
    # Only the second report's files: none of the first's that it does not write survives.
    assert listed(out) == {"copies.csv", "leakage.csv", "summary.csv", REPORT_FILE}
    assert "Audit of second" in (out / REPORT_FILE).read_text(encoding="utf-8")
    new = snapshot(out)
    assert all(new["files"][name][2] != old["files"][name][2] for name in new["files"])  # every file is new
    assert not [p for p in tmp_path.iterdir() if p.name != "report"]  # no temporary or replaced folder left


def test_an_interruption_while_writing_leaves_the_previous_report_as_it_was(audit, other, tmp_path, monkeypatch):
    out = tmp_path / "report"
    write_audit_report(audit, out)
    before, around = snapshot(out), listed(tmp_path)
    import skinlib.audit._report as report

    write_csv, calls = report.write_csv, []

    def csv_interrupted(path, table):
        calls.append(path)
        if len(calls) == 2:  # the second table: the first one is written
            raise KeyboardInterrupt
        write_csv(path, table)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    for target, replacement in (("skinlib.plotting.plot_pairs", interrupted),  # a figure, before any file
                                ("skinlib.audit._report.write_csv", csv_interrupted),  # between two tables
                                ("skinlib.audit._report._write_text", interrupted)):  # the page, after the tables
        with monkeypatch.context() as patch:
            patch.setattr(target, replacement)
            with pytest.raises(KeyboardInterrupt):
                write_audit_report(other, out)
        assert snapshot(out) == before, target
        assert listed(tmp_path) == around, target  # no temporary folder left beside it
    assert calls  # the tables were being written when the interruption came
    write_audit_report(other, out)
    assert "Audit of other" in (out / REPORT_FILE).read_text(encoding="utf-8")


def test_two_writers_at_once_leave_one_whole_report(audit, other, tmp_path, monkeypatch):
    expected = {}
    for name, which in (("a", audit), ("b", other)):  # each report on its own, to compare with
        page = write_audit_report(which, tmp_path / f"alone-{name}")
        expected[name] = {p.name: p.read_bytes() for p in page.parent.iterdir() if p.name != REPORT_FILE}
    import skinlib.audit._report as report

    write_csv = report.write_csv
    started = threading.Barrier(2, timeout=60)
    a_tables_written = threading.Event()
    counts = {"a": 0, "b": 0}

    def racing(path, table):
        """Both writers begin their tables together; b writes its tables once a has written all of its own."""
        me = threading.current_thread().name
        counts[me] += 1
        if counts[me] == 1:
            started.wait()
        if me == "b":
            a_tables_written.wait(60)
        write_csv(path, table)
        if me == "a" and counts[me] == len(expected["a"]):
            a_tables_written.set()

    monkeypatch.setattr("skinlib.audit._report.write_csv", racing)
    out = tmp_path / "report"
    errors = []

    def writer(which):
        try:
            write_audit_report(which, out)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(which,), name=name) for name, which in (("a", audit),
                                                                                              ("b", other))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    page = (out / REPORT_FILE).read_text(encoding="utf-8")
    winner = "b" if "Audit of other" in page else "a"
    found = {p.name: p.read_bytes() for p in out.iterdir() if p.name != REPORT_FILE}
    assert found == expected[winner]  # one report, whole: its page and its tables, nothing of the other's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone-a", "alone-b", "report"]


def test_save_follows_the_same_rules(audit, other, tmp_path):
    folder = tmp_path / "saved"
    register(Extra)
    try:
        audit_dataset(load(Path(audit.dataset.attrs["root"])), **QUIET).save(folder)
    finally:
        unregister("extra")
    assert (folder / "extra.csv").is_file()
    other.save(folder)  # replaces the earlier save whole
    assert not (folder / "extra.csv").exists()
    assert load_audit(folder).name == "other"
    (folder / "my-notes.txt").write_text("keep me")
    before = tree_digest(folder)
    with pytest.raises(FileExistsError, match=r"holds my-notes\.txt, which the saved audit written there did not"):
        audit.save(folder)
    assert tree_digest(folder) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.csv").write_text("my,own\n")
    with pytest.raises(FileExistsError, match=rf"not a saved audit folder \(no {MANIFEST_FILE}\).*summary\.csv"):
        audit.save(mine)
    assert (mine / "summary.csv").read_text() == "my,own\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "saved"]
    assert os.listdir(mine) == ["summary.csv"]
