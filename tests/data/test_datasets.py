import os

import numpy as np
import pandas as pd
import pytest

from skinlib import DatasetError, class_weights, load_dataset, skipped_files, split_dataset, undersample
from conftest import lesion_image, tree_digest, write_jpeg


def test_isic_layout(isic_tree):
    before = tree_digest(isic_tree)
    df = load_dataset(isic_tree)
    assert list(df.columns[:4]) == ["path", "label", "group", "source_split"]
    assert len(df) == 12 and df["label"].sum() == 4
    assert df["group"].nunique() == 6 and df["group"][0] == "IP_0"
    assert (df["source_split"] == "").all()
    assert {"sex", "age_approx", "image_name"} <= set(df.columns)
    assert df.attrs["layout"] == "isic2020" and skipped_files(df).empty
    assert tree_digest(isic_tree) == before


def test_isic_benign_malignant_words_without_target(isic_tree):
    csv = isic_tree / "ISIC_2020_Training_GroundTruth.csv"
    meta = pd.read_csv(csv).drop(columns=["target"])
    meta["benign_malignant"] = meta["benign_malignant"].str.capitalize()
    meta.to_csv(csv, index=False)
    df = load_dataset(isic_tree)
    assert df["label"].sum() == 4


def test_ham_layout_two_parts(ham_tree):
    df = load_dataset(ham_tree)
    assert len(df) == 10
    assert df["label"].tolist() == [0, 1, 0, 1, 1, 0, 0, 0, 0, 1]
    assert df["group"].nunique() == 5
    assert all(os.path.exists(p) for p in df["path"])
    assert df.attrs["layout"] == "ham10000"
    # Patient metadata under common names; the source column stays.
    assert df["age"].tolist() == [40.0] * 10 and set(df["sex"]) == {"female"} and set(df["site"]) == {"back"}
    assert set(df["localization"]) == {"back"}


def test_class_folder_layout(class_tree):
    df = load_dataset(class_tree)
    assert len(df) == 12
    assert df.groupby(["source_split", "label"]).size().to_dict() == {
        ("test", 0): 2, ("test", 1): 2, ("train", 0): 4, ("train", 1): 4}
    assert df["group"].is_unique  # 0.jpg exists in four folders: ids include the folder
    assert skipped_files(df).empty  # .DS_Store is silently ignored
    assert not {"age", "sex", "site"} & set(df.columns)  # no metadata in this layout


def test_loaded_tables_concatenate(class_tree, isic_tree):
    """Metadata in attrs must not break ordinary pandas work such as concat."""
    (isic_tree / "train" / "ISIC_0000001.jpg").unlink()
    with pytest.warns(UserWarning):
        a = load_dataset(isic_tree)
    both = pd.concat([a, load_dataset(class_tree)], ignore_index=True)
    assert len(both) == 11 + 12
    assert list(skipped_files(a)["reason"]) == ["image file is missing"]


def test_class_folders_at_root(tmp_path):
    for cls in ("benign", "malignant"):
        write_jpeg(tmp_path / cls / "a.jpg", lesion_image())
    df = load_dataset(tmp_path)
    assert df["label"].tolist() == [0, 1] and (df["source_split"] == "").all()


def test_missing_and_unknown_paths(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "cats").mkdir()
    with pytest.raises(DatasetError, match="supported layout") as info:
        load_dataset(tmp_path)
    for name in ("isic2020", "ham10000", "class_folders"):
        assert name in str(info.value)


def test_csv_missing_columns_named(isic_tree, ham_tree):
    csv = isic_tree / "ISIC_2020_Training_GroundTruth.csv"
    pd.read_csv(csv).drop(columns=["target", "benign_malignant"]).to_csv(csv, index=False)
    with pytest.raises(DatasetError, match="target or benign_malignant"):
        load_dataset(isic_tree)
    hcsv = ham_tree / "HAM10000_metadata.csv"
    pd.read_csv(hcsv).drop(columns=["dx"]).to_csv(hcsv, index=False)
    with pytest.raises(DatasetError, match="missing column.*dx"):
        load_dataset(ham_tree)


@pytest.mark.parametrize("value,ok", [("Malignant", 1), ("1.0", 1), ("0", 0), (" benign ", 0), ("yes", None), ("2", None)])
def test_label_values(isic_tree, value, ok):
    csv = isic_tree / "ISIC_2020_Training_GroundTruth.csv"
    meta = pd.read_csv(csv, dtype=str)
    meta.loc[0, "target"] = value
    meta.to_csv(csv, index=False)
    if ok is None:
        with pytest.raises(DatasetError, match=f"label '{value}' is not benign/malignant or 0/1") as info:
            load_dataset(isic_tree)
        assert "ISIC_0000000" in str(info.value)
    else:
        assert load_dataset(isic_tree)["label"][0] == ok


def test_bad_files_are_skipped_and_reported(isic_tree):
    train = isic_tree / "train"
    (train / "ISIC_0000001.jpg").unlink()  # row without image
    (train / "ISIC_0000002.jpg").write_bytes(b"")  # zero bytes
    (train / "ISIC_0000003.jpg").write_text("hello")  # text named .jpg
    write_jpeg(train / "ISIC_9999999.jpg", lesion_image())  # image without row
    (train / ".DS_Store").write_bytes(b"junk")
    (train / "Thumbs.db").write_bytes(b"junk")
    csv = isic_tree / "ISIC_2020_Training_GroundTruth.csv"
    meta = pd.read_csv(csv)
    pd.concat([meta, meta.iloc[[4]]]).to_csv(csv, index=False)  # duplicated row
    before = tree_digest(isic_tree)
    with pytest.warns(UserWarning, match="skipped 5"):
        df = load_dataset(isic_tree)
    assert len(df) == 9
    report = skipped_files(df)
    reasons = dict(zip(report["path"].map(os.path.basename), report["reason"]))
    assert reasons["ISIC_0000001.jpg"] == "image file is missing"
    assert "empty" in reasons["ISIC_0000002.jpg"]
    assert "not an image" in reasons["ISIC_0000003.jpg"]
    assert "no row" in reasons["ISIC_9999999.jpg"]
    assert any("duplicate" in r for r in report["reason"])
    assert tree_digest(isic_tree) == before


def test_empty_dataset_is_an_error(tmp_path):
    (tmp_path / "benign").mkdir()
    (tmp_path / "malignant").mkdir()
    with pytest.raises(DatasetError, match="hold no images"):
        load_dataset(tmp_path)


def _groups_frame(n_groups=60, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        label = int(rng.random() < 0.3)
        for _ in range(rng.integers(1, 5)):
            rows.append({"path": f"{g}_{len(rows)}.jpg", "label": label, "group": f"P{g}"})
    return pd.DataFrame(rows)


def test_split_grouped_stratified_deterministic():
    df = _groups_frame()
    a = split_dataset(df, test_size=0.2, val_size=0.1, seed=3)
    b = split_dataset(df, test_size=0.2, val_size=0.1, seed=3)
    c = split_dataset(df, test_size=0.2, val_size=0.1, seed=4)
    assert a["fold"].tolist() == b["fold"].tolist()
    assert a["fold"].tolist() != c["fold"].tolist()
    assert (a.groupby("group")["fold"].nunique() == 1).all()  # no group in two folds
    share = a["fold"].value_counts(normalize=True)
    assert 0.12 < share["test"] < 0.28 and 0.05 < share["val"] < 0.16
    overall = df["label"].mean()
    for fold in ("train", "val", "test"):
        assert abs(a.loc[a["fold"] == fold, "label"].mean() - overall) < 0.15
    assert "fold" not in df.columns  # input untouched


def test_split_without_val_and_bad_sizes():
    df = _groups_frame()
    assert set(split_dataset(df, val_size=0)["fold"]) == {"train", "test"}
    with pytest.raises(ValueError, match="test_size"):
        split_dataset(df, test_size=1.5)
    with pytest.raises(ValueError, match="groups"):
        split_dataset(df.iloc[:3].assign(group="one"))


def test_undersample_and_class_weights():
    df = split_dataset(_groups_frame(200), seed=0)
    small = undersample(df, ratio=1.0, seed=0)
    train = small[small["fold"] == "train"]
    assert (train["label"] == 0).sum() == (train["label"] == 1).sum()
    assert len(small[small["fold"] == "test"]) == len(df[df["fold"] == "test"])
    assert undersample(df, seed=0).index.tolist() == small.index.tolist()
    w = class_weights([0] * 8 + [1] * 2)
    assert w == {0: 10 / 16, 1: 10 / 4}
    # weighted class totals are equal
    assert w[0] * 8 == pytest.approx(w[1] * 2)


def test_a_folder_in_two_layouts_needs_layout(ham_tree):
    """HAM10000 files beside benign/ and malignant/ folders: which one is meant is the user's to say."""
    for cls in ("benign", "malignant"):
        write_jpeg(ham_tree / cls / "x.jpg", lesion_image())
    with pytest.raises(DatasetError, match="matches the layouts ham10000, class_folders; pass layout="):
        load_dataset(ham_tree)
    assert len(load_dataset(ham_tree, layout="ham10000")) == 10
    with pytest.warns(UserWarning, match="skipped 2"):  # HAM10000's image folders are no class folders
        assert len(load_dataset(ham_tree, layout="class_folders")) == 2
    with pytest.raises(DatasetError, match="unknown layout 'HAM'; known layouts: isic2020, ham10000"):
        load_dataset(ham_tree, layout="HAM")


def test_existing_layouts_by_their_label_file_and_forced(isic_tree, class_tree):
    assert load_dataset(isic_tree / "ISIC_2020_Training_GroundTruth.csv").attrs["root"] == str(isic_tree)
    assert load_dataset(isic_tree, layout="isic2020")["path"].tolist() == load_dataset(isic_tree)["path"].tolist()
    with pytest.raises(DatasetError, match="no benign/ and malignant/ folders"):
        load_dataset(isic_tree, layout="class_folders")
    with pytest.raises(DatasetError, match="expected a dataset folder, got a file"):
        load_dataset(class_tree / "train" / "benign" / "0.jpg")
