import pytest

import skinlib
from conftest import tree_digest


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
