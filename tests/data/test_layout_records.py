"""One record per dataset layout (skinlib.data.LAYOUT_RECORDS): what LAYOUTS, detect_layouts and
load_layout read from it, that the records agree with their loaders, and that the layout table of
docs/data.md is the one skinlib.data.layouts_table() generates (so the docs cannot go stale)."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import skinlib
from skinlib.data import (
    CLASSES,
    LABEL_NAMES,
    LAYOUT_RECORDS,
    LAYOUTS,
    MALIGNANT,
    PAD_MALIGNANT,
    SIGNATURES,
    DatasetError,
    Layout,
    detect_layouts,
    layouts_table,
    load_layout,
)

ROOT = Path(__file__).resolve().parents[2]
DATA_PAGE = ROOT / "docs" / "data.md"

#: The layouts, in the order detect_layouts tries them and errors list them (unchanged by the records).
ORDER = ["isic2020", "ham10000", "isic2019", "isic2018", "pad_ufes_20", "dermamnist", "class_folders", "csv"]
FIXTURES = {"isic2020": "isic_tree", "ham10000": "ham_tree", "isic2019": "isic2019_tree",
            "isic2018": "isic2018_tree", "pad_ufes_20": "pad_tree", "dermamnist": "dermamnist_npz",
            "class_folders": "class_tree"}


def tables(text: str) -> list[str]:
    """Markdown tables (runs of lines starting with '|'), each as one string."""
    return [m.strip() for m in re.findall(r"(?:^\|.*(?:\n|$))+", text, flags=re.M)]


def section(text: str, heading: str) -> str:
    """The text under a heading line (exactly ``heading``) up to the next heading of its level or above."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if re.match(rf"^#{{1,{level}}} ", lines[i])), len(lines))
    return "\n".join(lines[start:end])


# --------------------------------------------------------------------------- the docs


def test_docs_layout_table_is_the_generated_one():
    found = tables(section(DATA_PAGE.read_text(), "## Real datasets"))
    assert found, "docs/data.md has no table under '## Real datasets'"
    assert found[0] == layouts_table(), (
        "docs/data.md's layout table differs from skinlib.data.layouts_table(); replace it with the output of\n"
        "  .venv/bin/python -c 'import skinlib.data; print(skinlib.data.layouts_table())'"
    )


def test_layouts_table_has_one_row_per_record_and_no_stray_pipes():
    lines = layouts_table().splitlines()
    assert len(lines) == 2 + len(LAYOUT_RECORDS)
    assert {line.count("|") for line in lines} == {6}
    for line, layout in zip(lines[2:], LAYOUT_RECORDS.values()):
        assert layout.title in line and (layout.licence or "-") in line


def test_licences_are_the_docs_and_none_is_invented():
    licences = {name: layout.licence for name, layout in LAYOUT_RECORDS.items()}
    assert licences == {
        "isic2020": "CC BY-NC 4.0", "ham10000": "CC BY-NC-SA 4.0", "isic2019": "CC BY-NC 4.0",
        "isic2018": "CC BY-NC 4.0", "pad_ufes_20": "CC BY 4.0", "dermamnist": "CC BY-NC 4.0",
        "class_folders": "ISIC archive terms (CC BY-NC)", "csv": None,
    }
    for layout in LAYOUT_RECORDS.values():
        assert layout.link is None or layout.link.startswith("https://"), layout.name


# --------------------------------------------------------------------------- the records


def test_records_are_frozen_and_ordered():
    assert list(LAYOUT_RECORDS) == ORDER
    assert all(isinstance(r, Layout) and r.name == n for n, r in LAYOUT_RECORDS.items())
    layout = LAYOUT_RECORDS["ham10000"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        layout.licence = "CC0"
    with pytest.raises(TypeError):
        LAYOUT_RECORDS["mine"] = layout


def test_layouts_and_signatures_come_from_the_records():
    assert list(LAYOUTS) == ORDER and skinlib.LAYOUTS is LAYOUTS
    for name, layout in LAYOUT_RECORDS.items():
        assert LAYOUTS[name] == layout.description.replace("`", "") == layout.plain_description
        assert "\n" not in layout.description and "|" not in layout.description
    assert LAYOUTS["isic2020"] == ("ISIC_2020_Training_GroundTruth.csv with train/<image_name>.jpg "
                                   "(label: target or benign_malignant; group: patient_id)")
    assert SIGNATURES == {"isic2020": "ISIC_2020_Training_GroundTruth.csv", "ham10000": "HAM10000_metadata.csv",
                          "isic2019": "ISIC_2019_Training_GroundTruth.csv",
                          "isic2018": "ISIC2018_Task3_Training_GroundTruth.csv", "pad_ufes_20": "metadata.csv"}


def test_options_are_the_loaders_keyword_parameters():
    for layout in LAYOUT_RECORDS.values():
        assert layout.options == tuple(inspect.signature(layout.loader).parameters)[1:], layout.name
    assert LAYOUT_RECORDS["dermamnist"].options == ("cache_dir",)
    assert "missing_images" in LAYOUT_RECORDS["csv"].options


def test_malignant_and_benign_diagnoses_agree_with_the_descriptions():
    for layout in LAYOUT_RECORDS.values():
        if layout.malignant is None:
            assert layout.benign is None, layout.name
            continue
        assert not layout.malignant & layout.benign, layout.name
        assert all(d == d.lower() for d in layout.malignant | layout.benign), layout.name
        said = re.search(r"malignant: ([^;)]+)", layout.plain_description)
        if said:  # a description that names the malignant diagnoses names the record's
            assert {d.strip().lower() for d in said.group(1).split(",")} == layout.malignant, layout.name
    assert LAYOUT_RECORDS["dermamnist"].malignant is MALIGNANT
    assert LAYOUT_RECORDS["ham10000"].malignant == MALIGNANT == LAYOUT_RECORDS["isic2018"].malignant
    assert LAYOUT_RECORDS["ham10000"].benign == set(CLASSES) - MALIGNANT == {"nv", "bkl", "df", "vasc"}
    assert LAYOUT_RECORDS["isic2019"].benign == {"nv", "bkl", "df", "vasc"}  # UNK is neither
    assert LAYOUT_RECORDS["pad_ufes_20"].malignant == PAD_MALIGNANT == {"bcc", "mel", "scc", "ack"}


def test_label_names_are_the_class_folder_names():
    assert LABEL_NAMES == ("benign", "malignant")
    assert LABEL_NAMES is not CLASSES  # DermaMNIST's seven classes keep their name


# --------------------------------------------------------------------------- detection and dispatch


@pytest.mark.parametrize("layout", sorted(FIXTURES))
def test_each_record_detects_and_loads_its_download(request, layout, tmp_path):
    root = request.getfixturevalue(FIXTURES[layout])
    record = LAYOUT_RECORDS[layout]
    options = {"cache_dir": tmp_path / "cache"} if layout == "dermamnist" else {}
    assert detect_layouts(root) == [layout]
    df = load_layout(root, layout, **options)
    assert df.attrs["layout"] == layout and len(df) > 0
    for name in record.signatures:  # a signature file is detected as its layout, and loads its folder
        files = sorted(root.glob(name)) if root.is_dir() else [root]
        assert files and detect_layouts(files[0]) == [layout]
        if record.file_suffix is None:
            assert load_layout(files[0], layout)["path"].tolist() == df["path"].tolist()


def test_files_by_suffix_and_csv_never_in_a_folder(csv_tree, tmp_path):
    assert detect_layouts(csv_tree) == []
    assert detect_layouts(csv_tree / "labels.csv") == ["csv"]
    other = tmp_path / "x.npz"
    other.write_bytes(b"")
    assert detect_layouts(other) == ["dermamnist"]
    pad_like = tmp_path / "metadata.csv"
    pad_like.write_text("file,label\na.jpg,1\n")  # PAD-UFES-20's name without its columns: any CSV
    assert detect_layouts(pad_like) == ["csv"] and detect_layouts(tmp_path) == []


def test_load_layout_refuses_unknown_names_options_and_files(ham_tree):
    with pytest.raises(DatasetError, match="unknown layout 'x'; known layouts: " + ", ".join(ORDER) + "$"):
        load_layout(ham_tree, "x")
    with pytest.raises(DatasetError, match="^cache_dir=, image_column= are for layout 'dermamnist' or 'csv', "
                                           "not 'ham10000'$"):
        load_layout(ham_tree, "ham10000", cache_dir="c", image_column="f")
    with pytest.raises(DatasetError, match="^foo= is for layout none, not 'ham10000'$"):
        load_layout(ham_tree, "ham10000", foo=1)
    for layout in ("isic2020", "class_folders"):
        with pytest.raises(DatasetError, match="expected a dataset folder, got a file"):
            load_layout(ham_tree / "HAM10000_metadata.csv", layout)
