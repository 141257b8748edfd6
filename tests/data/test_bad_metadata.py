"""Bad patient metadata: ages that are not numbers are errors, coded ages are missing with a warning.

The same cleaning runs in both places metadata enters: load_dataset (the ISIC 2020 and
HAM10000 CSVs) and patient_metadata (the CSV of ``python -m skinlib predict --metadata``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import skinlib
import skinlib.data._reading
from skinlib import DatasetError, Preprocess, load_dataset
from skinlib.data import patient_metadata

ISIC_CSV = "ISIC_2020_Training_GroundTruth.csv"
HAM_CSV = "HAM10000_metadata.csv"


def set_ages(root, layout: str, ages: dict[int, str]):
    """Write ``ages`` (row: text) into the layout's CSV; returns the CSV path and the image names of the rows."""
    csv = root / (ISIC_CSV if layout == "isic" else HAM_CSV)
    meta = pd.read_csv(csv, dtype=str, keep_default_na=False)
    column = "age_approx" if layout == "isic" else "age"
    for row, text in ages.items():
        meta.loc[row, column] = text
    meta.to_csv(csv, index=False)
    return csv, meta["image_name" if layout == "isic" else "image_id"].tolist(), column


@pytest.fixture(params=["isic", "ham"])
def layout_tree(request):
    return request.param, request.getfixturevalue(f"{request.param}_tree")


def load_quietly(root):
    """load_dataset, with the warnings it gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_dataset(root)
    return df, [str(w.message) for w in caught]


# --------------------------------------------------------------------------- load_dataset


@pytest.mark.parametrize("value", ["abc", "45 years", "forty", "4O"])
def test_age_that_is_not_a_number_is_an_error_naming_file_image_and_value(layout_tree, value):
    layout, root = layout_tree
    csv, images, column = set_ages(root, layout, {3: value})
    with pytest.raises(DatasetError) as info:
        load_dataset(root)
    msg = str(info.value)
    assert str(csv) in msg and repr(images[3]) in msg and repr(value) in msg and repr(column) in msg


def test_several_bad_ages_name_the_first_and_count_the_rest(isic_tree):
    csv, images, _ = set_ages(isic_tree, "isic", {2: "x", 5: "y", 7: "z"})
    with pytest.raises(DatasetError, match="2 more row") as info:
        load_dataset(isic_tree)
    assert repr(images[2]) in str(info.value) and "'x'" in str(info.value)


@pytest.mark.parametrize("value", ["", "  ", "unknown", "Unknown", "UNKNOWN", "NA", "n/a", "None", "null", "NaN"])
def test_missing_words_stay_missing_without_a_word(layout_tree, value):
    layout, root = layout_tree
    set_ages(root, layout, {1: value})
    df, messages = load_quietly(root)
    assert np.isnan(df["age"][1]) and df["age"].drop(index=1).notna().all()
    assert not [m for m in messages if "age" in m]


def test_ages_outside_0_to_120_are_missing_with_a_warning_naming_the_column(layout_tree):
    layout, root = layout_tree
    _, _, column = set_ages(root, layout, {0: "999", 1: "-1", 2: "150", 3: "0", 4: "120", 5: "37.5"})
    df, messages = load_quietly(root)
    assert np.isnan(df["age"][:3]).all()
    assert df["age"][3:6].tolist() == [0.0, 120.0, 37.5]  # the ends of the range are real ages
    warned = [m for m in messages if "outside" in m]
    assert len(warned) == 1
    assert "3 age(s)" in warned[0] and repr(column) in warned[0] and "999" in warned[0]
    assert skinlib.data._reading.AGE_RANGE == (0.0, 120.0)  # documented in load_dataset


def test_good_ages_give_no_warning(isic_tree):
    df, messages = load_quietly(isic_tree)
    assert df["age"].tolist() == [50.0] * 12 and messages == []


# --------------------------------------------------------------------------- patient_metadata (one cleaning for both)


def test_patient_metadata_cleans_exactly_as_load_dataset(isic_tree):
    set_ages(isic_tree, "isic", {0: "999", 1: "Unknown", 2: " 61 "})
    df, _ = load_quietly(isic_tree)
    raw = pd.read_csv(isic_tree / ISIC_CSV, dtype=str, keep_default_na=False)
    with pytest.warns(UserWarning, match="1 age"):
        out = patient_metadata(raw, source="meta.csv")
    np.testing.assert_array_equal(out["age"].to_numpy(), df["age"].to_numpy())
    assert out["sex"].tolist() == df["sex"].tolist()


def test_patient_metadata_error_names_source_image_and_value():
    table = pd.DataFrame({"image_id": ["ISIC_1", "ISIC_2"], "age": ["40", "abc"]})
    with pytest.raises(DatasetError) as info:
        patient_metadata(table, source="my/meta.csv")
    msg = str(info.value)
    assert msg.startswith("my/meta.csv: ") and "'ISIC_2'" in msg and "'abc'" in msg
    # Without an image column the row is named by its number.
    with pytest.raises(DatasetError, match="row 2 has age 'abc'"):
        patient_metadata(table.drop(columns="image_id"))
    assert isinstance(info.value, ValueError)  # callers that catch ValueError keep working


def test_patient_metadata_numbers_and_nan_from_a_numeric_column():
    """A CSV read without dtype=str gives floats and NaN: still cleaned the same way."""
    table = pd.DataFrame({"image": ["a", "b", "c"], "age_approx": [45.0, np.nan, 999.0]})
    with pytest.warns(UserWarning, match="1 age.*'age_approx'"):
        out = patient_metadata(table)
    assert out["age"][0] == 45.0 and out["age"][1:].isna().all()


# --------------------------------------------------------------------------- python -m skinlib predict --metadata


@pytest.fixture(scope="module")
def meta_run(tmp_path_factory):
    folder = skinlib.make_sample(tmp_path_factory.mktemp("s") / "sample", n=40, seed=2)
    table = skinlib.split_dataset(load_dataset(folder), test_size=0.25, val_size=0.25, seed=0)
    data = skinlib.preprocess_dataset(table, Preprocess.for_model("v3").with_params("resize", size=16), progress=False)
    run = tmp_path_factory.mktemp("runs") / "meta"
    skinlib.train("v3", data, epochs=1, metadata=["age", "sex", "site"], run_dir=run, progress=None)
    return run, table


def write_metadata_csv(path, table, ages):
    names = [p.rsplit("/", 1)[-1][:-4] for p in table["path"]]
    pd.DataFrame({"image_name": names, "age_approx": ages, "sex": "male", "anatom_site_general_challenge": "torso"}
                 ).to_csv(path, index=False)
    return names


def test_predict_with_a_non_numeric_age_exits_2_naming_the_file_image_and_value(meta_run, tmp_path, capsys):
    from skinlib.__main__ import main

    run, table = meta_run
    images = table["path"].head(3).tolist()
    csv = tmp_path / "m.csv"
    names = write_metadata_csv(csv, table.head(3), ["50", "abc", "60"])
    assert main(["predict", str(run), *images, "--metadata", str(csv)]) == 2
    err = capsys.readouterr().err
    assert str(csv) in err and repr(names[1]) in err and "'abc'" in err


def test_predict_with_coded_ages_warns_and_predicts(meta_run, tmp_path, capsys):
    from skinlib.__main__ import main

    run, table = meta_run
    images = table["path"].head(3).tolist()
    csv = tmp_path / "m.csv"
    write_metadata_csv(csv, table.head(3), ["999", "unknown", "60"])
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run), *images, "--metadata", str(csv), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and "1 age(s) in column 'age_approx' outside 0-120" in err
    # 999 is predicted as a missing age, not as a 999-year-old.
    got = pd.read_csv(out)["probability"].to_numpy()
    missing = skinlib.predict(run, table.head(3).assign(age=[np.nan, np.nan, 60.0], sex="male", site="torso"))["probability"].to_numpy()
    np.testing.assert_allclose(got, missing, rtol=1e-5)


def test_a_bad_age_in_a_row_not_predicted_does_not_matter(meta_run, tmp_path, capsys):
    from skinlib.__main__ import main

    run, table = meta_run
    csv = tmp_path / "m.csv"
    write_metadata_csv(csv, table.head(3), ["50", "55", "abc"])
    assert main(["predict", str(run), *table["path"].head(2), "--metadata", str(csv)]) == 0
    assert "abc" not in capsys.readouterr().err
