"""skinlib.audit._checks: every audit check has one contract and sits in one registry, which the audit, the
summary, the report and the command line walk; an audit saved to a folder loads back whole."""

import re

import numpy as np
import pandas as pd
import pytest

from skinlib.__main__ import main
from skinlib.audit import (CHECKS, MANIFEST_FILE, REPORT_FILE, TABLE_FILES, Check, audit_dataset, load_audit,
                           register, summary_table, unregister, write_audit_report)
from skinlib.runs import fold_dir
import test_audit
from test_audit import cross_validation, load

# test_audit's datasets: the sample, and its class folders (a split of its own, an HTML file name, unreadable files).
sample, class_folders = test_audit.sample, test_audit.class_folders

#: The report's CSV files, as they were named before the registry.
FILES = {"summary": "summary.csv", "copies": "copies.csv", "same_lesion": "same_lesion.csv", "leakage": "leakage.csv",
         "label_issues": "label_issues.csv", "quality": "quality.csv", "diagnoses": "diagnoses.csv",
         "subgroups": "subgroups.csv", "operating_points": "operating_points.csv", "unreadable": "unreadable.csv"}


@pytest.fixture(scope="module")
def full_audit(class_folders, tmp_path_factory):
    """An audit where every check applies: a split of its own, unreadable files, quality, same-lesion
    pairs and a cross-validation (label issues) that is a run list with a run folder too."""
    df = load(class_folders)
    df = df.assign(dx=np.where(df["label"] == 1, "mel", "nv"))
    cv = cross_validation(df, tmp_path_factory.mktemp("checks") / "cv", flipped=(0,))
    return audit_dataset(df, runs=[cv, fold_dir(cv, 1)], progress=False, n_boot=0)


def without_date(page):
    return re.sub(r"written [^<]*?\. ", "written (date). ", page.read_text(encoding="utf-8"))


def test_the_registry_lists_every_check_in_order_and_their_files():
    assert list(CHECKS) == ["copies", "same_lesion", "leakage", "label_issues", "quality", "error_analysis",
                            "unreadable"]
    assert all(isinstance(check, Check) and check.name == name for name, check in CHECKS.items())
    assert list(TABLE_FILES.items()) == list(FILES.items())  # the same files, in the same order, as before
    assert [name for name, check in CHECKS.items() if check.skip_help] == ["same_lesion", "quality"]


def test_each_check_gives_its_tables_a_summary_line_and_a_section(full_audit):
    audit = full_audit
    from skinlib.audit._report import _Page

    for name, check in CHECKS.items():
        for table in check.tables:
            assert isinstance(audit.tables[table], pd.DataFrame), (name, table)
            assert getattr(audit, table) is audit.tables[table]
        rows = check.summary(audit)
        # Every check counts what it found, but the error analysis, whose tables are metrics (as before).
        assert (rows == []) == (name == "error_analysis"), name
        assert all(isinstance(c, str) and isinstance(i, str) and isinstance(n, int) for c, i, n in rows)
        section = check.section(audit, _Page(max_rows=5, shown=2))
        assert section.startswith(f'<section id="{check.anchor}"><h2>'), name
    assert audit.summary.equals(summary_table(audit))
    assert audit.summary["check"].iloc[0] == "images" and audit.summary["check"].iloc[-1] == "unreadable"


def test_a_check_registered_later_shows_in_the_summary_the_report_the_files_and_the_command_line(class_folders,
                                                                                                 tmp_path):
    @register
    class Lengths(Check):
        """The length of each file's name: a check no other code names."""

        name, tables, step = "name_lengths", {"name_lengths": "name_lengths.csv"}, "name lengths"
        anchor, title, nav = "name-lengths", "Name <lengths>", "Lengths"
        skip_help = "skip the name lengths"

        def find(self, found):
            paths = found.dataset["path"].astype(str)
            found.tables["name_lengths"] = pd.DataFrame({"path": paths, "length": paths.str.len()})

        def summary(self, audit):
            lengths = audit.tables.get("name_lengths")
            return [] if lengths is None else [("name lengths", "names longer than 20 <chars>",
                                                int((lengths["length"] > 20).sum()))]

        def section(self, audit, page):
            if audit.tables.get("name_lengths") is None:
                return None
            return page.section(self, page.note("the <b>lengths</b>"), page.table(audit.tables["name_lengths"],
                                                                                  self.tables["name_lengths"]))

    try:
        assert list(CHECKS)[-1] == "name_lengths" and TABLE_FILES["name_lengths"] == "name_lengths.csv"
        audit = audit_dataset(load(class_folders), quality=False, same_lesion=False, progress=False)
        assert audit.summary.iloc[-1].tolist()[:2] == ["name lengths", "names longer than 20 <chars>"]
        text = write_audit_report(audit, tmp_path / "report").read_text(encoding="utf-8")
        assert '<section id="name-lengths"><h2>Name &lt;lengths&gt;</h2>' in text
        assert '<a href="#name-lengths">Lengths</a>' in text and "the &lt;b&gt;lengths&lt;/b&gt;" in text
        assert "<b>" not in text
        table = pd.read_csv(tmp_path / "report" / "name_lengths.csv")
        assert table["length"].tolist() == audit.tables["name_lengths"]["length"].tolist()
        loaded = load_audit(audit.save(tmp_path / "saved").parent)
        pd.testing.assert_frame_equal(loaded.tables["name_lengths"], audit.tables["name_lengths"])

        # The command line has its --no- option, and skips it.
        with pytest.warns(UserWarning, match="skipped"):
            assert main(["audit", str(class_folders), "--out", str(tmp_path / "cli"), "--no-quality",
                         "--no-same-lesion", "--no-name-lengths"]) == 0
        assert not (tmp_path / "cli" / "name_lengths.csv").exists()
        skipped = audit_dataset(load(class_folders), skip=["name_lengths", "quality", "same_lesion"], progress=False)
        assert skipped.tables["name_lengths"] is None and "name lengths" not in set(skipped.summary["check"])
    finally:
        unregister("name_lengths")
    assert "name_lengths" not in TABLE_FILES and list(TABLE_FILES) == list(FILES)


def test_only_a_check_that_can_be_skipped_is_skipped(class_folders):
    with pytest.raises(ValueError, match="cannot skip 'copies'.*same_lesion, quality"):
        audit_dataset(load(class_folders), skip=["copies"], progress=False)
    with pytest.raises(ValueError, match="cannot skip 'nothing'"):
        audit_dataset(load(class_folders), skip=["nothing"], progress=False)


def test_a_saved_audit_loads_back_whole_and_redraws_the_same_report(full_audit, tmp_path):
    audit = full_audit
    manifest = audit.save(tmp_path / "saved")
    assert manifest == tmp_path / "saved" / MANIFEST_FILE
    assert not list((tmp_path / "saved").rglob("*.tmp")) and not list((tmp_path / "saved").rglob(".*"))
    loaded = load_audit(tmp_path / "saved")
    assert (loaded.name, loaded.notes, loaded.leaked_test, loaded.settings) == (
        audit.name, audit.notes, audit.leaked_test, audit.settings)
    assert loaded.notes and loaded.leaked_test and set(loaded.settings) >= {"runs", "n_boot", "seed", "skip"}
    assert set(loaded.tables) == set(audit.tables)
    for name, table in audit.tables.items():
        pd.testing.assert_frame_equal(loaded.tables[name], table, obj=name)
    pd.testing.assert_frame_equal(loaded.dataset, audit.dataset)
    assert loaded.dataset.attrs["root"] == audit.dataset.attrs["root"]
    assert loaded.quality.attrs["checked"] == audit.quality.attrs["checked"]
    assert list(loaded.errors) == list(audit.errors)
    for run, analysis in audit.errors.items():
        for part in ("scored", "diagnoses", "subgroups", "operating_points"):
            pd.testing.assert_frame_equal(getattr(loaded.errors[run], part), getattr(analysis, part), obj=part)

    first = write_audit_report(audit, tmp_path / "first")
    again = write_audit_report(loaded, tmp_path / "again")
    files = sorted(p.name for p in first.parent.iterdir())
    assert files == sorted(p.name for p in again.parent.iterdir())
    assert {"leakage.csv", "label_issues.csv", "operating_points.csv", "unreadable.csv"} <= set(files)
    for name in files:
        if name != REPORT_FILE:
            assert (first.parent / name).read_bytes() == (again.parent / name).read_bytes(), name
    assert without_date(first) == without_date(again)  # the same sections, tables and figures


def test_a_later_save_removes_the_tables_that_no_longer_apply(class_folders, tmp_path):
    audit = audit_dataset(load(class_folders), same_lesion=False, progress=False)
    audit.save(tmp_path)
    assert (tmp_path / "quality.csv").is_file()
    audit_dataset(load(class_folders), same_lesion=False, quality=False, progress=False).save(tmp_path)
    assert not (tmp_path / "quality.csv").exists() and load_audit(tmp_path).quality is None


def test_load_audit_refuses_a_folder_that_holds_no_saved_audit(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved audit"):
        load_audit(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a saved audit"):
        load_audit(tmp_path)
