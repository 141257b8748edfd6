from pathlib import Path

import pandas as pd
import pytest

import skinlib
from conftest import tree_digest
from skinlib.sample import PLANTED_KINDS


def test_sample_layout_and_balance(tmp_path):
    folder = skinlib.make_sample(tmp_path / "s", n=60, seed=0)
    df = skinlib.load_dataset(folder)
    assert df.attrs["layout"] == "isic2020" and len(df) == 60
    assert 0.2 <= df["label"].mean() <= 0.3
    assert df["group"].nunique() < 60  # some patients have several images
    assert set(df["benign_malignant"]) == {"benign", "malignant"}


def test_sample_is_deterministic(tmp_path):
    a = skinlib.make_sample(tmp_path / "a", n=10, seed=5)
    b = skinlib.make_sample(tmp_path / "b", n=10, seed=5)
    c = skinlib.make_sample(tmp_path / "c", n=10, seed=6)
    strip = lambda d, root: {k.replace(str(root), ""): v for k, v in d.items()}
    assert strip(tree_digest(a), a) == strip(tree_digest(b), b)
    assert strip(tree_digest(a), a) != strip(tree_digest(c), c)


def test_sample_never_overwrites(tmp_path):
    (tmp_path / "s").mkdir()
    with pytest.raises(FileExistsError):
        skinlib.make_sample(tmp_path / "s", n=4)
    assert list(tmp_path.iterdir()) == [tmp_path / "s"]  # no leftovers


def test_sample_classes_differ_as_abcd_says(tmp_path):
    """Malignant lesions are larger and darker on average: a learnable signal."""
    df = skinlib.load_dataset(skinlib.make_sample(tmp_path / "s", n=80, seed=0))
    x, y = skinlib.preprocess_dataset(df, skinlib.Preprocess.default(), progress=False)
    dark = (x[:, 6:22, 6:22, 0] < 100).mean(axis=(1, 2))
    assert dark[y == 1].mean() > dark[y == 0].mean() + 0.1


def test_sample_plants_copies_that_the_duplicate_finder_finds(tmp_path):
    folder = skinlib.make_sample(tmp_path / "s", n=200, seed=0)
    planted = pd.read_csv(folder / "planted_duplicates.csv")
    assert list(planted["kind"]) == list(PLANTED_KINDS)
    df = skinlib.load_dataset(folder).set_index("image_name")
    # Each copy keeps its source's class and belongs to another patient: a leak waiting to happen.
    assert (df.loc[planted["image_a"], "label"].to_numpy() == df.loc[planted["image_b"], "label"].to_numpy()).all()
    assert (df.loc[planted["image_a"], "patient_id"].to_numpy() != df.loc[planted["image_b"], "patient_id"].to_numpy()).all()
    assert ((folder / "train" / f"{planted['image_a'][0]}.jpg").read_bytes()
            == (folder / "train" / f"{planted['image_b'][0]}.jpg").read_bytes())  # the identical copy
    pairs = skinlib.find_duplicates(df.reset_index(), progress=False)
    found = {frozenset(Path(p).stem for p in pair) for pair in zip(pairs["path_a"], pairs["path_b"])}
    assert found == {frozenset(pair) for pair in zip(planted["image_a"], planted["image_b"])}
    assert dict(zip(pairs["kind"], pairs["similarity"]))["identical"] == 1.0


def test_sample_duplicates_setting(tmp_path):
    small = skinlib.make_sample(tmp_path / "a", n=20, seed=0)
    assert pd.read_csv(small / "planted_duplicates.csv").empty  # default: n // 30 copies
    two = skinlib.make_sample(tmp_path / "b", n=20, seed=0, duplicates=2)
    assert list(pd.read_csv(two / "planted_duplicates.csv")["kind"]) == ["identical", "flip"]
    with pytest.raises(ValueError, match="duplicates must be between 0 and 5 for n=20"):
        skinlib.make_sample(tmp_path / "c", n=20, duplicates=6)
    assert not (tmp_path / "c").exists()
