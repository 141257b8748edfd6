"""Patient metadata as model inputs: check_metadata_columns, fit_metadata, encode_metadata.

Hand-made tables for the encoding itself, the conftest layouts with missing values
written into their CSVs for load_dataset, and the real datasets (skipped without them).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from skinlib import load_dataset, split_dataset
from skinlib.models import (
    LABEL_COLUMNS,
    METADATA_COLUMNS,
    check_metadata_columns,
    encode_metadata,
    fit_metadata,
    n_features,
    unseen_categories,
)
from conftest import SHARED_DATA


def table() -> pd.DataFrame:
    return pd.DataFrame({
        "age": [30.0, 50.0, np.nan, 70.0],
        "sex": ["male", "female", None, "female"],
        "site": ["back", np.nan, "face", "back"],
        "dx": ["nv", "mel", "nv", "bcc"],
        "label": [0, 1, 0, 1],
    })


def column(x: np.ndarray, enc: dict, name: str) -> np.ndarray:
    return x[:, enc["features"].index(name)]


# --------------------------------------------------------------------------- check_metadata_columns


@pytest.mark.parametrize("name", LABEL_COLUMNS + ("Target", " DX "))
def test_label_columns_are_refused_by_name(name):
    df = table().assign(**{name: 0})
    with pytest.raises(ValueError, match="leaks the answer") as err:
        check_metadata_columns(df, ["age", name])
    assert repr(name) in str(err.value) and "label / diagnosis" in str(err.value)
    with pytest.raises(ValueError, match="leaks the answer"):
        fit_metadata(df, ["age", name])  # fit_metadata checks too


def test_missing_empty_and_repeated_columns():
    df = table()
    with pytest.raises(ValueError) as err:
        check_metadata_columns(df, ["age", "localization"])
    msg = str(err.value)
    assert "'localization'" in msg and "available columns" in msg and "'site'" in msg
    with pytest.raises(ValueError, match="no metadata columns"):
        check_metadata_columns(df, [])
    with pytest.raises(ValueError, match="more than once"):
        check_metadata_columns(df, ["age", "age"])
    assert check_metadata_columns(df, METADATA_COLUMNS) == ["age", "sex", "site"]
    assert check_metadata_columns(df, "sex") == ["sex"]


# --------------------------------------------------------------------------- fit / encode


def test_features_in_order_and_shape():
    df = table()
    enc = fit_metadata(df)
    assert enc["version"] == 1 and enc["columns"] == ["age", "sex", "site"]
    assert enc["features"] == [
        "age", "age_missing", "sex=female", "sex=male", "sex_missing", "site=back", "site=face", "site_missing",
    ]
    x = encode_metadata(df, enc)
    assert x.dtype == np.float32 and x.shape == (4, 8) == (len(df), n_features(enc))
    assert np.isfinite(x).all()


def test_missing_values_get_indicator_and_zero():
    df = table()
    enc = fit_metadata(df)
    x = encode_metadata(df, enc)
    # Row 2: age missing -> imputed with the mean, i.e. 0 after standardising, indicator 1.
    assert column(x, enc, "age")[2] == 0 and column(x, enc, "age_missing").tolist() == [0, 0, 1, 0]
    assert column(x, enc, "sex_missing").tolist() == [0, 0, 1, 0]
    assert column(x, enc, "site_missing").tolist() == [0, 1, 0, 0]
    assert x[2, 2:4].tolist() == [0, 0]  # no sex one-hot for the missing sex
    # Present ages are standardised with the mean and population std of present values.
    ages = np.array([30.0, 50.0, 70.0])
    assert enc["numeric"]["age"] == pytest.approx({"mean": 50.0, "std": ages.std()})
    np.testing.assert_allclose(column(x, enc, "age")[[0, 1, 3]], (ages - 50) / ages.std(), rtol=1e-6)


def test_unseen_category_is_encoded_as_missing():
    enc = fit_metadata(table())
    new = pd.DataFrame({"age": [40.0], "sex": ["female"], "site": ["torso"]})
    x = encode_metadata(new, enc)
    assert column(x, enc, "site_missing")[0] == 1
    assert column(x, enc, "site=back")[0] == 0 and column(x, enc, "site=face")[0] == 0
    assert column(x, enc, "sex=female")[0] == 1 and column(x, enc, "sex_missing")[0] == 0
    assert unseen_categories(new, enc) == {"sex": [], "site": ["torso"]}


def test_encoding_round_trips_through_json():
    df = table()
    enc = fit_metadata(df)
    text = json.dumps(enc, allow_nan=False)
    back = json.loads(text)
    assert back == enc
    assert np.array_equal(encode_metadata(df, back), encode_metadata(df, enc))


def test_fitted_only_on_the_rows_given():
    df = table()
    train, test = df.iloc[:2], df.iloc[2:].assign(age=[1000.0, 2000.0], site=["scalp", "scalp"])
    enc = fit_metadata(train)
    assert enc["numeric"]["age"] == {"mean": 40.0, "std": 10.0}  # from 30 and 50 only
    assert enc["categories"] == {"sex": ["female", "male"], "site": ["back"]}
    assert enc["n_rows"] == 2
    # Encoding the test rows does not change what the train rows become.
    before = encode_metadata(train, enc)
    encode_metadata(test, enc)
    assert np.array_equal(encode_metadata(train, enc), before)
    assert column(encode_metadata(test, enc), enc, "age").tolist() == [96.0, 196.0]


def test_fit_is_reproducible_and_order_free():
    df = table()
    enc = fit_metadata(df)
    assert fit_metadata(df.iloc[::-1]) == enc
    assert json.dumps(fit_metadata(df)) == json.dumps(enc)


def test_constant_and_all_missing_numeric_columns():
    df = pd.DataFrame({"age": [50.0, 50.0], "bmi": [np.nan, np.nan]})
    enc = fit_metadata(df, ["age", "bmi"])
    assert enc["numeric"] == {"age": {"mean": 50.0, "std": 1.0}, "bmi": {"mean": 0.0, "std": 1.0}}
    json.dumps(enc, allow_nan=False)
    x = encode_metadata(pd.DataFrame({"age": [52.0], "bmi": [20.0]}), enc)
    assert x.tolist() == [[2.0, 0.0, 20.0, 0.0]]


def test_encode_needs_the_trained_columns():
    enc = fit_metadata(table())
    with pytest.raises(ValueError) as err:
        encode_metadata(table().drop(columns=["site"]), enc)
    msg = str(err.value)
    assert "'site'" in msg and "same metadata columns the run was trained with" in msg
    with pytest.raises(ValueError, match="non-numeric"):
        encode_metadata(table().assign(age=["forty", 1, 2, 3]), enc)
    with pytest.raises(ValueError, match="version"):
        encode_metadata(table(), {**enc, "version": 2})
    with pytest.raises(ValueError, match="no rows"):
        fit_metadata(table().iloc[:0])
    assert encode_metadata(table().iloc[:0], enc).shape == (0, n_features(enc))


# --------------------------------------------------------------------------- load_dataset


def test_ham_loader_metadata_with_missing_values(ham_tree):
    csv = ham_tree / "HAM10000_metadata.csv"
    meta = pd.read_csv(csv, dtype=str, keep_default_na=False)
    meta.loc[0, ["age", "sex", "localization"]] = ["", "unknown", "unknown"]
    meta.loc[1, ["age", "sex", "localization"]] = ["55", " Male ", "Lower Extremity "]
    meta.to_csv(csv, index=False)
    df = load_dataset(ham_tree)
    assert df["age"].dtype == float and np.isnan(df["age"][0]) and df["age"][1] == 55.0
    assert df["sex"].isna().tolist()[:2] == [True, False] and df["sex"][1] == "male"
    assert pd.isna(df["site"][0])
    assert df["site"][1] == "lower extremity" and df["site"][2] == "back"
    assert df["localization"].tolist()[:2] == ["unknown", "Lower Extremity "]  # original kept as read
    enc = fit_metadata(split_dataset(df, test_size=0.2, val_size=0).query("fold == 'train'"))
    x = encode_metadata(df, enc)
    assert x.shape == (10, n_features(enc)) and column(x, enc, "age_missing")[0] == 1


def test_isic_loader_metadata_with_blanks(isic_tree):
    csv = isic_tree / "ISIC_2020_Training_GroundTruth.csv"
    meta = pd.read_csv(csv, dtype=str, keep_default_na=False)
    meta["anatom_site_general_challenge"] = ["torso", " Head/Neck"] + [""] * 10
    meta.loc[0, ["age_approx", "sex"]] = ["", ""]
    meta.to_csv(csv, index=False)
    df = load_dataset(isic_tree)
    assert pd.isna(df["age"][0]) and df["age"][1] == 50.0 and df["age"].dtype == float
    assert pd.isna(df["sex"][0]) and df["sex"][1] == "male"
    assert df["site"][:2].tolist() == ["torso", "head/neck"] and df["site"][2:].isna().all()
    assert df["age_approx"][0] == "" and "anatom_site_general_challenge" in df.columns
    assert {"image_name", "patient_id", "benign_malignant"} <= set(df.columns)


def test_loader_without_site_column_adds_no_site(isic_tree):
    # The conftest ISIC CSV has no anatom_site_general_challenge: no made-up column.
    df = load_dataset(isic_tree)
    assert {"age", "sex"} <= set(df.columns) and "site" not in df.columns


def test_class_folders_have_no_metadata(class_tree):
    df = load_dataset(class_tree)
    assert not set(METADATA_COLUMNS) & set(df.columns)
    with pytest.raises(ValueError, match="lacks metadata column"):
        fit_metadata(df)


# --------------------------------------------------------------------------- real data


def real(name: str):
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.skip(f"{folder} not present (real data lives only beside the development checkout)")
    return load_dataset(folder)


@pytest.mark.realdata
def test_real_ham10000_metadata():
    df = real("ham10000")
    assert df["age"].dtype == float and df["age"].isna().any() and df["age"].notna().mean() > 0.99
    assert set(df["sex"].dropna()) == {"male", "female"} and df["sex"].isna().any()
    sites = set(df["site"].dropna())
    assert {"back", "lower extremity", "trunk", "face"} <= sites and "unknown" not in sites
    assert df["site"].isna().sum() == (df["localization"] == "unknown").sum() > 0
    assert {"localization", "dx", "dx_type", "lesion_id"} <= set(df.columns)
    enc = fit_metadata(df)
    assert n_features(enc) == len(enc["features"]) and "site=back" in enc["features"]


@pytest.mark.realdata
def test_real_isic2020_metadata():
    df = real("isic2020")
    assert df["age"].dtype == float and df["age"].notna().all()
    assert set(df["sex"].dropna()) <= {"male", "female"}
    assert {"torso", "lower extremity", "upper extremity", "head/neck"} <= set(df["site"].dropna())
    assert df["site"].isna().sum() == (df["anatom_site_general_challenge"] == "").sum()
    assert {"anatom_site_general_challenge", "age_approx", "diagnosis", "benign_malignant"} <= set(df.columns)
    ham = fit_metadata(real("ham10000"))
    assert "torso" in unseen_categories(df, ham)["site"]  # HAM10000 says "trunk"
