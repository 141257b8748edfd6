"""The dataset layouts beyond ISIC 2020, HAM10000 and class folders: ISIC 2019, ISIC 2018 task 3,
PAD-UFES-20, DermaMNIST and any CSV; detection, forcing a layout, and what every layout promises
(nothing under the dataset written, bad files skipped and reported, diagnoses refused as inputs)."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import skinlib
import skinlib.data._dermamnist
from skinlib import DatasetError, check_metadata_columns, load_dataset, skipped_files, split_dataset
from skinlib.data import image_folder, materialise
from skinlib.data import patient_metadata
from conftest import dermamnist_arrays, lesion_image, tree_digest, write_jpeg

ISIC2019_CSV = "ISIC_2019_Training_GroundTruth.csv"


def quietly(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` and the messages of the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in caught]


def assert_table(df: pd.DataFrame, layout: str) -> None:
    """What every loaded table promises."""
    assert list(df.columns[:4]) == ["path", "label", "group", "source_split"]
    assert df["label"].dtype == np.int64 and set(df["label"]) <= {0, 1}
    assert df["group"].map(type).eq(str).all()
    assert all(os.path.isfile(p) for p in df["path"])
    assert df.attrs["layout"] == layout and df.attrs["outside"] == []


# --------------------------------------------------------------------------- ISIC 2019


def test_isic2019_layout(isic2019_tree):
    before = tree_digest(isic2019_tree)
    df = load_dataset(isic2019_tree)
    assert_table(df, "isic2019")
    assert len(df) == 12 and skipped_files(df).empty  # LICENSE.txt in the input folder is not an image
    assert df["dx"].tolist()[:8] == ["mel", "nv", "bcc", "ak", "bkl", "df", "vasc", "scc"]
    assert df["label"].tolist() == [1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0]
    # group: lesion_id where present, else the image
    assert df["group"].tolist()[:2] == ["BCN_0000000", "BCN_0000000"]
    assert df["group"].tolist()[8:] == ["ISIC_0000008", "ISIC_0000009", "ISIC_0000010", "ISIC_0000011_downsampled"]
    assert df["group"].nunique() == 4 + 4
    # metadata under the common names; the source columns and the one-hot columns stay
    assert df["age"].tolist()[:3] == [30.0, 35.0, 40.0] and np.isnan(df["age"][5])
    assert set(df["site"]) == {"anterior torso", "head/neck"} and set(df["sex"]) == {"male", "female"}
    assert {"age_approx", "anatom_site_general", "lesion_id", "MEL", "UNK"} <= set(df.columns)
    assert tree_digest(isic2019_tree) == before


def test_isic2019_unknown_rows_are_skipped_with_a_reason(isic2019_tree):
    csv = isic2019_tree / ISIC2019_CSV
    truth = pd.read_csv(csv)
    truth.loc[1, ["NV", "UNK"]] = [0.0, 1.0]
    truth.to_csv(csv, index=False)
    df, warned = quietly(load_dataset, isic2019_tree)
    assert len(df) == 11 and "ISIC_0000001" not in set(df["image"])
    report = skipped_files(df)
    assert report["path"].map(os.path.basename).tolist() == ["ISIC_0000001.jpg"]
    assert "UNK" in report["reason"][0] and "neither benign nor malignant" in report["reason"][0]
    assert any("skipped 1" in w for w in warned)


def test_isic2019_without_metadata_groups_by_image(isic2019_tree):
    (isic2019_tree / "ISIC_2019_Training_Metadata.csv").unlink()
    df = load_dataset(isic2019_tree)
    assert df["group"].tolist() == df["image"].tolist()
    assert not {"age", "sex", "site"} & set(df.columns)


@pytest.mark.parametrize("change,message", [
    ({"MEL": "yes"}, "has MEL='yes'; expected 0 or 1"),
    ({"MEL": "0.0"}, "has 0 of the diagnosis columns"),
    ({"NV": "1.0"}, "has 2 of the diagnosis columns"),
])
def test_isic2019_bad_one_hot_rows_are_errors_naming_the_image(isic2019_tree, change, message):
    csv = isic2019_tree / ISIC2019_CSV
    truth = pd.read_csv(csv, dtype=str)
    for column, value in change.items():
        truth.loc[0, column] = value
    truth.to_csv(csv, index=False)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(isic2019_tree)
    assert "ISIC_0000000" in str(info.value) and str(csv) in str(info.value)


def test_isic2019_bad_files_are_skipped_and_reported(isic2019_tree):
    folder = isic2019_tree / "ISIC_2019_Training_Input"
    (folder / "ISIC_0000002.jpg").unlink()
    (folder / "ISIC_0000003.jpg").write_bytes(b"")
    write_jpeg(folder / "ISIC_9999999.jpg", lesion_image())
    (folder / ".DS_Store").write_bytes(b"junk")
    with pytest.warns(UserWarning, match="skipped 3"):
        df = load_dataset(isic2019_tree)
    reasons = dict(zip(skipped_files(df)["path"].map(os.path.basename), skipped_files(df)["reason"]))
    assert reasons == {"ISIC_0000002.jpg": "image file is missing", "ISIC_0000003.jpg": "file is empty (0 bytes)",
                       "ISIC_9999999.jpg": f"image has no row in {ISIC2019_CSV}; not used"}


def test_isic2019_nested_input_folder(isic2019_tree):
    """Some copies of the download unpack to ISIC_2019_Training_Input/ISIC_2019_Training_Input/."""
    folder = isic2019_tree / "ISIC_2019_Training_Input"
    inner = folder / "ISIC_2019_Training_Input"
    inner.mkdir()
    for image in folder.glob("*.jpg"):
        image.rename(inner / image.name)
    assert len(load_dataset(isic2019_tree)) == 12


# --------------------------------------------------------------------------- ISIC 2018


def test_isic2018_layout(isic2018_tree):
    before = tree_digest(isic2018_tree)
    df = load_dataset(isic2018_tree)
    assert_table(df, "isic2018")
    assert df["dx"].tolist() == ["mel", "nv", "bcc", "akiec", "bkl", "df", "vasc", "nv", "mel"]
    assert df["label"].tolist() == [1, 0, 1, 1, 0, 0, 0, 0, 1]
    assert df["group"].nunique() == 5 and df["group"][0] == "HAM_0000000"
    assert set(df["diagnosis_confirm_type"]) == {"histopathology"}
    assert not {"age", "sex", "site"} & set(df.columns)
    assert tree_digest(isic2018_tree) == before


def test_isic2018_without_groupings_groups_by_image(isic2018_tree):
    (isic2018_tree / "ISIC2018_Task3_Training_LesionGroupings.csv").unlink()
    df = load_dataset(isic2018_tree)
    assert df["group"].is_unique


def test_isic2018_beside_ham10000_needs_a_layout(isic2018_tree, ham_tree):
    """ISIC 2018 task 3 is HAM10000's images: a folder holding both matches two layouts."""
    for item in ham_tree.iterdir():
        shutil.move(str(item), isic2018_tree / item.name)
    with pytest.raises(DatasetError, match="matches the layouts ham10000, isic2018; pass layout="):
        load_dataset(isic2018_tree)
    assert load_dataset(isic2018_tree, layout="isic2018").attrs["layout"] == "isic2018"
    assert load_dataset(isic2018_tree, layout="ham10000").attrs["layout"] == "ham10000"


# --------------------------------------------------------------------------- PAD-UFES-20


def test_pad_ufes_20_layout(pad_tree):
    before = tree_digest(pad_tree)
    df = load_dataset(pad_tree)
    assert_table(df, "pad_ufes_20")
    assert df["dx"].tolist() == ["ack", "bcc", "mel", "nev", "scc", "sek", "nev", "bcc"]
    assert df["label"].tolist() == [1, 1, 1, 0, 1, 0, 0, 1]  # ACK malignant, as HAM10000's akiec
    assert df["group"].tolist() == ["PAT_1", "PAT_1", "PAT_2", "PAT_2", "PAT_3", "PAT_3", "PAT_4", "PAT_4"]
    assert df["sex"].tolist()[:2] == ["male", "female"] and set(df["site"]) == {"arm", "face"}
    assert df["age"].tolist()[:2] == [40.0, 43.0]
    assert df["skin_type"].tolist()[:3] == [1.0, 2.0, 3.0] and np.isnan(df["skin_type"][3])
    assert {"gender", "region", "fitspatrick", "diagnostic", "biopsed"} <= set(df.columns)
    assert tree_digest(pad_tree) == before


@pytest.mark.parametrize("where", ["images", "imgs_part", "nested"])
def test_pad_ufes_20_image_folders_of_the_download(pad_tree, where):
    images = sorted((pad_tree / "images").rglob("*.png"))
    shutil.rmtree(pad_tree / "images") if where != "images" else None
    for i, source in enumerate(images):
        part = f"imgs_part_{1 + i % 3}"
        target = {"images": pad_tree / "images", "imgs_part": pad_tree / part,
                  "nested": pad_tree / "images" / part / part}[where] / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if where == "images":
            source.rename(target)
        else:
            write_jpeg(target, lesion_image(seed=i))
    df = load_dataset(pad_tree)
    assert len(df) == 8 and skipped_files(df).empty


def test_pad_ufes_20_unknown_diagnosis_and_bad_skin_type(pad_tree):
    csv = pad_tree / "metadata.csv"
    meta = pd.read_csv(csv, dtype=str, keep_default_na=False)
    meta.loc[2, "diagnostic"] = "XYZ"
    meta.to_csv(csv, index=False)
    with pytest.raises(DatasetError, match=r"diagnostic value\(s\) \['xyz'\]"):
        load_dataset(pad_tree)
    meta.loc[2, "diagnostic"] = "MEL"
    meta.loc[4, "fitspatrick"] = "7"
    meta.to_csv(csv, index=False)
    with pytest.raises(DatasetError, match="skin type '7' in column 'fitspatrick'") as info:
        load_dataset(pad_tree)
    assert meta["img_id"][4] in str(info.value)


def test_a_metadata_csv_that_is_not_pad_ufes_20_is_no_layout(tmp_path):
    pd.DataFrame({"image": ["a"], "label": [1]}).to_csv(tmp_path / "metadata.csv", index=False)
    with pytest.raises(DatasetError, match="not a dataset in a supported layout"):
        load_dataset(tmp_path)


# --------------------------------------------------------------------------- DermaMNIST


def test_dermamnist_file_and_folder(dermamnist_npz, tmp_path):
    cache = tmp_path / "cache"
    before = tree_digest(dermamnist_npz.parent)
    df = load_dataset(dermamnist_npz, cache_dir=cache)
    assert_table(df.assign(), "dermamnist")
    assert df.groupby("source_split").size().to_dict() == {"test": 6, "train": 10, "val": 4}
    assert df["dx"].tolist()[:7] == ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    assert df["label"].tolist()[:7] == [1, 1, 0, 0, 1, 0, 0]
    assert df["group"].is_unique and df["group"][0] == "train_00000"
    assert df.attrs["npz"] == str(dermamnist_npz)
    # the PNG files are under the cache, never beside the .npz, and hold the arrays' pixels in RGB
    assert all(Path(p).is_relative_to(cache) for p in df["path"])
    assert tree_digest(dermamnist_npz.parent) == before
    arrays = dermamnist_arrays()
    png = cv2.imread(df["path"][df["image"] == "val_00003"].iloc[0], cv2.IMREAD_COLOR)[:, :, ::-1]
    np.testing.assert_array_equal(png, arrays["val_images"][3])
    # a folder holding the file loads the same table, from the same PNG folder
    again = load_dataset(dermamnist_npz.parent, cache_dir=cache)
    assert again["path"].tolist() == df["path"].tolist()


def test_dermamnist_folder_is_content_keyed_and_written_once(dermamnist_npz, tmp_path):
    cache = tmp_path / "cache"
    folder = materialise(dermamnist_npz, cache)
    stamps = {p: os.stat(p).st_mtime_ns for p in folder.rglob("*.png")}
    assert len(stamps) == 20 and materialise(dermamnist_npz, cache) == folder
    assert {p: os.stat(p).st_mtime_ns for p in folder.rglob("*.png")} == stamps  # not rewritten
    copy = tmp_path / "elsewhere" / "dermamnist.npz"
    copy.parent.mkdir()
    shutil.copy(dermamnist_npz, copy)
    assert image_folder(copy, cache) == folder  # same bytes, same folder
    arrays = dermamnist_arrays()
    arrays["test_labels"][0] = 6
    np.savez_compressed(copy, **arrays)
    assert image_folder(copy, cache) != folder  # other bytes, another folder
    assert [p.name for p in cache.iterdir()] == [folder.name]  # no temporary folder left


def test_dermamnist_interrupted_write_leaves_no_folder(dermamnist_npz, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    calls = {"n": 0}
    real = cv2.imencode

    def failing(ext, img, *args):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(ext, img, *args)

    monkeypatch.setattr(cv2, "imencode", failing)
    with pytest.raises(KeyboardInterrupt):
        materialise(dermamnist_npz, cache)
    assert list(cache.iterdir()) == []
    monkeypatch.setattr(cv2, "imencode", real)
    assert len(list(materialise(dermamnist_npz, cache).rglob("*.png"))) == 20


def test_dermamnist_folder_made_meanwhile_by_another_process_is_used(dermamnist_npz, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    final = image_folder(dermamnist_npz, cache)
    real = skinlib.data._dermamnist._write_pngs

    def racing(npz, folder):
        real(npz, folder)
        shutil.copytree(folder, final)  # the other process renames its folder into place first

    monkeypatch.setattr(skinlib.data._dermamnist, "_write_pngs", racing)
    assert materialise(dermamnist_npz, cache) == final
    assert [p.name for p in cache.iterdir()] == [final.name]  # ours removed, theirs kept
    assert len(list(final.rglob("*.png"))) == 20


def test_dermamnist_default_cache_is_the_projects(dermamnist_npz, tmp_path, monkeypatch):
    monkeypatch.setattr(skinlib.data._dermamnist, "project_dir", lambda: tmp_path / "project")
    df = load_dataset(dermamnist_npz)
    assert Path(df.attrs["root"]).parent == tmp_path / "project" / "data" / "dermamnist"


@pytest.mark.parametrize("damage,message", [
    (lambda a: a.pop("val_labels"), "missing val_labels"),
    (lambda a: a.__setitem__("test_labels", a["test_labels"] + 7), r"test_labels\[0\] is 7; expected 0-6"),
    (lambda a: a.__setitem__("train_labels", a["train_labels"][:3]), "expected 10 integer labels"),
    (lambda a: a.__setitem__("train_images", a["train_images"].astype(np.float32)), "expected uint8 images"),
])
def test_dermamnist_bad_files_are_errors_naming_key_and_expectation(tmp_path, damage, message):
    arrays = dermamnist_arrays()
    damage(arrays)
    path = tmp_path / "dermamnist_64.npz"
    np.savez(path, **arrays)
    with pytest.raises(DatasetError, match=message):
        load_dataset(path, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_dermamnist_folder_with_two_sizes_needs_the_file(dermamnist_npz, tmp_path):
    shutil.copy(dermamnist_npz, dermamnist_npz.with_name("dermamnist_64.npz"))
    with pytest.raises(DatasetError, match="holds 2 DermaMNIST files"):
        load_dataset(dermamnist_npz.parent, cache_dir=tmp_path / "cache")
    assert len(load_dataset(dermamnist_npz, cache_dir=tmp_path / "cache")) == 20


# --------------------------------------------------------------------------- any CSV


def test_any_csv_with_diagnosis_words(csv_tree):
    before = tree_digest(csv_tree)
    df = load_dataset(csv_tree / "labels.csv", image_column="file", label_column="diagnosis",
                      group_column="patient", malignant=["Melanoma", "BCC"],
                      metadata={"age": "age_years", "sex": "sex", "site": "body_site"})
    assert_table(df, "csv")
    assert df["label"].tolist() == [1, 0, 0, 1, 0, 0, 1, 0]
    assert df["group"].tolist() == ["P0", "P0", "P1", "P1", "P2", "P2", "P3", "P3"]
    assert df["age"].tolist()[:2] == [30.0, 31.0] and df["sex"].tolist()[:2] == ["m", "f"]
    assert set(df["site"]) == {"back"} and set(df["diagnosis"]) >= {"melanoma", "bcc"}
    assert df.attrs["csv"] == str(csv_tree / "labels.csv")
    assert tree_digest(csv_tree) == before
    # the folder holding the one CSV works too; benign= covering every value is the same
    same = load_dataset(csv_tree, image_column="file", label_column="diagnosis", group_column="patient",
                        malignant=["melanoma", "bcc"], benign=["naevus", "seb k"], metadata={})
    assert same["label"].tolist() == df["label"].tolist() and "age" not in same.columns


def test_any_csv_with_0_1_labels_absolute_paths_and_no_extension(csv_tree, tmp_path):
    table = pd.DataFrame({"image": [str(csv_tree / "photos" / f"p{i}") for i in range(4)],
                          "malignant": [0, 1, "benign", "Malignant"], "age": [40, 50, "", 60]})
    (tmp_path / "tables").mkdir()
    table.to_csv(tmp_path / "tables" / "t.csv", index=False)
    df, warned = quietly(load_dataset, tmp_path / "tables" / "t.csv", image_column="image", label_column="malignant")
    assert df["label"].tolist() == [0, 1, 0, 1] and df["group"].is_unique
    assert df["path"][0] == str(csv_tree / "photos" / "p0.jpg")
    assert np.isnan(df["age"][2])  # found by its name without metadata=
    assert any("outside the dataset folder" in w for w in warned)  # absolute paths elsewhere are reported


def test_any_csv_mistakes_are_clear_errors(csv_tree):
    csv = csv_tree / "labels.csv"
    with pytest.raises(DatasetError, match=r"missing column\(s\) picture; found file, diagnosis, patient"):
        load_dataset(csv, image_column="picture", label_column="diagnosis", malignant=["melanoma"])
    with pytest.raises(DatasetError, match=r"neither malignant= nor benign=: 'seb k' \(1 rows\)"):
        load_dataset(csv, image_column="file", label_column="diagnosis", malignant=["melanoma", "bcc"],
                     benign=["naevus"])
    with pytest.raises(DatasetError, match="no row of column 'diagnosis' has a malignant= value"):
        load_dataset(csv, image_column="file", label_column="diagnosis", malignant=["mel"])
    with pytest.raises(DatasetError, match="label 'melanoma' is not benign/malignant or 0/1") as info:
        load_dataset(csv, image_column="file", label_column="diagnosis")
    assert "photos/p0.jpg" in str(info.value)
    with pytest.raises(DatasetError, match="needs image_column="):
        load_dataset(csv, layout="csv")
    with pytest.raises(DatasetError, match="metadata= names \\['weight'\\]"):
        load_dataset(csv, image_column="file", label_column="diagnosis", malignant=["bcc"], metadata={"weight": "age"})
    with pytest.raises(DatasetError, match="pass image_column= and label_column="):
        load_dataset(csv)


def test_any_csv_names_that_match_no_file(csv_tree):
    csv = csv_tree / "labels.csv"
    for i in (1, 4, 6):
        (csv_tree / "photos" / f"p{i}.jpg").unlink()
    options = dict(image_column="file", label_column="diagnosis", malignant=["melanoma", "bcc"])
    with pytest.raises(DatasetError, match=r"3 of 8 image name\(s\) in column 'file' match no file") as info:
        load_dataset(csv, **options)
    assert "'photos/p1.jpg', 'photos/p4.jpg', 'photos/p6.jpg'" in str(info.value)
    assert "missing_images='skip'" in str(info.value)
    with pytest.warns(UserWarning, match="skipped 3"):
        df = load_dataset(csv, missing_images="skip", **options)
    assert len(df) == 5 and set(skipped_files(df)["reason"]) == {"image file is missing"}
    shutil.rmtree(csv_tree / "photos")
    with pytest.raises(DatasetError, match="8 of 8 image name"):  # none found: an error whatever the option
        load_dataset(csv, missing_images="skip", **options)


def test_any_csv_blank_labels_are_skipped_and_reported(csv_tree):
    csv = csv_tree / "labels.csv"
    table = pd.read_csv(csv)
    table.loc[2, "diagnosis"] = ""
    table.to_csv(csv, index=False)
    df, warned = quietly(load_dataset, csv, image_column="file", label_column="diagnosis", malignant=["melanoma"])
    assert len(df) == 7 and "no label in column 'diagnosis'" in skipped_files(df)["reason"][0]


# --------------------------------------------------------------------------- every layout


LAYOUT_FIXTURES = {"isic2019": "isic2019_tree", "isic2018": "isic2018_tree", "pad_ufes_20": "pad_tree",
                   "dermamnist": "dermamnist_npz"}


@pytest.mark.parametrize("layout", sorted(LAYOUT_FIXTURES))
def test_new_layouts_split_and_refuse_their_diagnosis_as_input(request, layout, tmp_path):
    root = request.getfixturevalue(LAYOUT_FIXTURES[layout])
    options = {"cache_dir": tmp_path / "cache"} if layout == "dermamnist" else {}
    df = load_dataset(root, **options)
    assert skinlib.detect_layouts(root) == [layout]
    assert load_dataset(root, layout=layout, **options)["path"].tolist() == df["path"].tolist()
    folds = split_dataset(df, test_size=0.25, val_size=0, seed=0)
    assert (folds.groupby("group")["fold"].nunique() == 1).all()
    label_like = [c for c in df.columns if c.lower() in ("dx", "diagnostic", "mel", "nv", "bcc", "akiec", "ak",
                                                       "diagnosis_confirm_type", "biopsed")]
    assert label_like
    for column in label_like:
        with pytest.raises(ValueError, match="carries the label"):
            check_metadata_columns(df, [column])


def test_signature_file_loads_its_folder(isic2019_tree, pad_tree):
    assert load_dataset(isic2019_tree / ISIC2019_CSV).attrs["root"] == str(isic2019_tree)
    assert load_dataset(pad_tree / "metadata.csv").attrs["layout"] == "pad_ufes_20"


def test_unknown_layout_name_and_options_of_another_layout(isic2019_tree):
    with pytest.raises(DatasetError, match="unknown layout 'isic2017'; known layouts: isic2020, ham10000, isic2019"):
        load_dataset(isic2019_tree, layout="isic2017")
    with pytest.raises(DatasetError, match="cache_dir= is for layout 'dermamnist', not 'isic2019'"):
        load_dataset(isic2019_tree, cache_dir="x")
    with pytest.raises(DatasetError, match="ISIC2018_Task3_Training_GroundTruth.csv: file not found"):
        load_dataset(isic2019_tree, layout="isic2018")  # a forced layout whose files are missing


def test_unknown_folder_lists_every_layout(tmp_path):
    with pytest.raises(DatasetError, match="supported layout") as info:
        load_dataset(tmp_path)
    for name in skinlib.LAYOUTS:
        assert name in str(info.value)


def test_patient_metadata_knows_the_new_column_names():
    table = pd.DataFrame({"img_id": ["a.png"], "gender": ["FEMALE"], "region": ["FACE"], "fitspatrick": ["3.0"],
                          "age": ["51"]})
    out = patient_metadata(table)
    assert out[["age", "sex", "site", "skin_type"]].iloc[0].tolist() == [51.0, "female", "face", 3.0]
    assert patient_metadata(pd.DataFrame({"anatom_site_general": ["Lower Extremity"]}))["site"][0] == "lower extremity"
