"""One error family: every error skinlib raises for bad input is a SkinlibError and a ValueError."""

import pickle

import pytest

import skinlib

HOMES = {"DatasetError": "skinlib.data", "ImageReadError": "skinlib.preprocessing",
         "RunFolderError": "skinlib.runs", "FoldRunMismatch": "skinlib.models"}


@pytest.mark.parametrize("name", sorted(HOMES))
def test_each_error_is_one_class_under_skinlib_error(name):
    import importlib

    error = getattr(skinlib, name)
    assert issubclass(error, skinlib.SkinlibError) and issubclass(error, ValueError)
    assert getattr(importlib.import_module(HOMES[name]), name) is error
    assert f"{error.__module__}.{error.__qualname__}" == f"{HOMES[name]}.{name}"  # as tracebacks print it
    assert type(pickle.loads(pickle.dumps(error("x")))) is error


def test_bad_input_is_caught_as_a_skinlib_error(tmp_path):
    with pytest.raises(skinlib.SkinlibError, match=str(tmp_path)):
        skinlib.load_dataset(tmp_path)  # an empty folder is no dataset
    (tmp_path / "x.jpg").write_bytes(b"not an image")
    with pytest.raises(skinlib.SkinlibError, match="x.jpg"):
        skinlib.read_image(tmp_path / "x.jpg")
    with pytest.raises(skinlib.SkinlibError, match="run"):
        skinlib.load_run(tmp_path)
