"""The three real datasets beside the checkout load with the right counts (skipped elsewhere)."""

import pytest

from skinlib import load_dataset, skipped_files
from conftest import SHARED_DATA

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize(
    "name,n,malignant,layout",
    [("ham10000", 6964, 1370, "ham10000"), ("isic2020", 727, 27, "isic2020"), ("mvb", 1300, 650, "class_folders")],
)
def test_real_dataset_counts(name, n, malignant, layout):
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.skip(f"{folder} not present (real data lives only beside the development checkout)")
    df = load_dataset(folder)
    assert df.attrs["layout"] == layout
    assert len(df) == n and int(df["label"].sum()) == malignant
    assert skipped_files(df).empty
    assert df["group"].nunique() < n if name != "mvb" else df["group"].is_unique
