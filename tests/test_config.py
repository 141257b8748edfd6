from pathlib import Path

import pytest

import skinlib
from skinlib.config import RunConfig, project_dir


def test_defaults_and_environment(monkeypatch, tmp_path):
    for var in ("SKINLIB_DATA", "SKINLIB_RUN", "SKINLIB_EPOCHS_V1", "SKINLIB_EPOCHS_V2", "SKINLIB_EPOCHS_V3", "SKINLIB_SEED",
                "SKINLIB_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    cfg = RunConfig.from_env(data=tmp_path)  # an override: no sample is generated for this test
    assert (cfg.epochs_v1, cfg.batch_v1, cfg.epochs_v2, cfg.batch_v2, cfg.seed) == (10, 128, 100, 32, 0)
    from skinlib.models import RECIPES

    assert cfg.epochs_v3 == RECIPES["v3"]["epochs"]
    monkeypatch.setenv("SKINLIB_DATA", str(tmp_path / "ham"))
    monkeypatch.setenv("SKINLIB_PROFILE", "quick")
    monkeypatch.setenv("SKINLIB_EPOCHS_V2", "7")
    monkeypatch.setenv("SKINLIB_SEED", "3")
    cfg = RunConfig.from_env()
    assert cfg.data == tmp_path / "ham" and cfg.run_dir == project_dir() / "runs" / "ham-quick"
    assert (cfg.epochs_v1, cfg.epochs_v2, cfg.epochs_v3, cfg.seed) == (3, 7, 2, 3)
    monkeypatch.setenv("SKINLIB_EPOCHS_V3", "4")
    assert RunConfig.from_env().epochs_v3 == 4
    assert RunConfig.from_env(seed=9).seed == 9  # explicit values win over the environment
    monkeypatch.setenv("SKINLIB_EPOCHS_V1", "ten")
    with pytest.raises(ValueError, match="SKINLIB_EPOCHS_V1='ten': expected a whole number"):
        RunConfig.from_env()
    monkeypatch.setenv("SKINLIB_EPOCHS_V1", "10")
    monkeypatch.setenv("SKINLIB_PROFILE", "fast")
    with pytest.raises(ValueError, match="'full' or 'quick'"):
        RunConfig.from_env()


def test_prepared_dataset_round_trip_and_missing_inputs(isic_tree, tmp_path):
    cfg = RunConfig.from_env(data=isic_tree, run_dir=tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="run notebooks/01_preprocess.ipynb first"):
        cfg.load_prepared()
    with pytest.raises(FileNotFoundError, match="run notebooks/02_train_v1.ipynb first"):
        cfg.run("v1", made_by="02_train_v1")
    df = skinlib.split_dataset(skinlib.load_dataset(isic_tree), test_size=0.5, val_size=0, seed=0)
    config = skinlib.Preprocess.seed(fast=True)
    cfg.save_prepared(df, config)
    again, config_again = cfg.load_prepared()
    assert config_again == config
    assert again[["path", "label", "group", "fold"]].equals(df[["path", "label", "group", "fold"]].astype(again[["path", "label", "group", "fold"]].dtypes))
    assert again.attrs["layout"] == "isic2020" and again.attrs["root"] == str(isic_tree)
    # the cache key depends on paths and labels only: the reloaded table hits the same cache
    first = skinlib.preprocess_dataset(df, config, cache_dir=tmp_path / "c", progress=False)
    second = skinlib.preprocess_dataset(again, config, cache_dir=tmp_path / "c", progress=False)
    assert second.from_cache and second.cache_path == first.cache_path


def test_describe_shows_project_paths_relative():
    cfg = RunConfig.from_env(data=project_dir() / "data" / "x", run_dir=Path("/elsewhere/run"))
    text = cfg.describe()
    assert "dataset: data/x" in text and "run folder: /elsewhere/run" in text
