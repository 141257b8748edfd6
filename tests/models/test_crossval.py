"""Grouped k-fold cross-validation: folds disjoint by group and by copies, resumable runs, honest tables."""

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("keras")

import skinlib
from skinlib.models import FOLD_METRICS, FoldRunMismatch, assign_folds, cross_validate


def table(n=120, n_groups=40, seed=0):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, n_groups, n)
    label = (rng.random(n_groups) < 0.3).astype(int)[groups]
    return pd.DataFrame({"path": [f"img{i}.jpg" for i in range(n)], "label": label, "group": groups.astype(str)})


def test_assign_folds_partitions_rows_and_groups():
    df = table()
    fold = assign_folds(df, folds=5, seed=0)
    assert sorted(set(fold)) == [1, 2, 3, 4, 5]
    assert (df.assign(fold=fold).groupby("group")["fold"].nunique() == 1).all()
    # Stratified: every fold holds malignant and benign images.
    assert (df.assign(fold=fold).groupby("fold")["label"].agg(["min", "max"]).to_numpy() == [0, 1]).all()
    np.testing.assert_array_equal(fold, assign_folds(df, folds=5, seed=0))
    assert not np.array_equal(fold, assign_folds(df, folds=5, seed=1))


def test_assign_folds_keeps_duplicates_together():
    df = table(seed=3)
    # Chains of copies across groups: without merging, some pair would cross folds.
    pairs = pd.DataFrame({"path_a": [f"img{i}.jpg" for i in range(0, 60, 3)],
                          "path_b": [f"img{i + 1}.jpg" for i in range(0, 60, 3)]})
    plain = assign_folds(df, folds=5, seed=0)
    fold_of = dict(zip(df["path"], plain))
    assert any(fold_of[a] != fold_of[b] for a, b in zip(pairs["path_a"], pairs["path_b"]))
    merged = assign_folds(df, folds=5, seed=0, duplicates=pairs)
    fold_of = dict(zip(df["path"], merged))
    assert all(fold_of[a] == fold_of[b] for a, b in zip(pairs["path_a"], pairs["path_b"]))
    assert (df.assign(fold=merged).groupby("group")["fold"].nunique() == 1).all()


def test_assign_folds_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        assign_folds(table(), folds=1)
    with pytest.raises(ValueError, match="needs at least 5 groups"):
        assign_folds(table(n=10, n_groups=3), folds=5)
    with pytest.raises(ValueError, match="'group'"):
        assign_folds(table().drop(columns="group"))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    folder = skinlib.make_sample(tmp_path_factory.mktemp("cv") / "sample", n=60, seed=0)
    return skinlib.load_dataset(folder)


def test_cross_validate_tests_every_image_once(sample, tmp_path):
    run = tmp_path / "cv"
    # A planted copy across patients: the folds must keep both images together.
    pair = pd.DataFrame({"path_a": [sample["path"][0]], "path_b": [sample["path"][59]]})
    cv = cross_validate(sample, skinlib.Preprocess.default(), "v1", folds=3, seed=0, duplicates=pair,
                        epochs=2, batch_size=16, run_dir=run, progress=False)
    assert list(cv.index) == ["1", "2", "3", "mean", "sd"]
    assert list(cv.columns) == FOLD_METRICS
    per_fold = cv.loc[["1", "2", "3"]]
    assert per_fold["n_test"].sum() == len(sample)
    assert (per_fold["n_train"] + per_fold["n_val"] + per_fold["n_test"] == len(sample)).all()
    assert cv.loc["mean", "roc_auc"] == pytest.approx(per_fold["roc_auc"].mean())
    assert cv.loc["sd", "roc_auc"] == pytest.approx(per_fold["roc_auc"].std(ddof=1))
    assert "3 grouped folds" in cv.attrs["summary"]

    folds = pd.read_csv(run / "folds.csv")
    np.testing.assert_array_equal(folds["test_fold"], assign_folds(sample, 3, 0, duplicates=pair))
    assert folds.set_index("path").loc[[pair["path_a"][0], pair["path_b"][0]], "test_fold"].nunique() == 1
    group_of = dict(zip(sample["path"], sample["group"]))
    for k in (1, 2, 3):
        preds = pd.read_csv(run / f"fold{k}" / "predictions.csv")
        tested = set(preds.loc[preds["fold"] == "test", "path"])
        assert tested == set(folds.loc[folds["test_fold"] == k, "path"])
        # No patient is both trained (or validated) on and tested.
        seen = {group_of[p] for p in preds.loc[preds["fold"] != "test", "path"]}
        assert not seen & {group_of[p] for p in tested}
    pd.testing.assert_frame_equal(pd.read_csv(run / "cross_validation.csv", index_col="fold", dtype={"fold": str}),
                                  cv, check_dtype=False)


def test_cross_validate_reuses_finished_folds_and_refuses_foreign_ones(sample, tmp_path):
    run = tmp_path / "cv"
    kwargs = dict(folds=3, seed=0, epochs=1, batch_size=16, run_dir=run, progress=False)
    first = cross_validate(sample, skinlib.Preprocess.default(), "v1", **kwargs)
    stamps = {k: (run / f"fold{k}" / "model.keras").stat().st_mtime_ns for k in (1, 2, 3)}
    again = cross_validate(sample, skinlib.Preprocess.default(), "v1", **kwargs)
    pd.testing.assert_frame_equal(first, again)
    assert stamps == {k: (run / f"fold{k}" / "model.keras").stat().st_mtime_ns for k in (1, 2, 3)}
    with pytest.raises(FoldRunMismatch, match="another split"):
        cross_validate(sample, skinlib.Preprocess.default(), "v1", **{**kwargs, "seed": 1})
    with pytest.raises(FoldRunMismatch, match="model 'v1'"):
        cross_validate(sample, skinlib.Preprocess.default(), "v2", **kwargs)
    saved = json.loads((run / "fold1" / "config.json").read_text())
    assert saved["model"] == "v1" and saved["epochs"] == 1


def test_cross_validate_refuses_settings_it_owns(sample):
    with pytest.raises(TypeError, match="overwrite"):
        cross_validate(sample, None, "v1", folds=3, run_dir=None, progress=False, **{"overwrite": True})
    with pytest.raises(TypeError, match="model name"):
        cross_validate(sample, None, object(), folds=3, progress=False)


def test_only_folds_runs_a_subset_of_the_same_split(tmp_path):
    df = skinlib.load_dataset(skinlib.make_sample(tmp_path / "s", n=60, seed=0))
    from skinlib.models import cross_validate

    one = cross_validate(df, skinlib.Preprocess.default(), "v1", folds=3, only_folds=[2], run_dir=tmp_path / "cv",
                         cache_dir=tmp_path / "cache", progress=False, epochs=1)
    assert list(one.index) == ["2", "mean", "sd"]
    assert sorted(p.name for p in (tmp_path / "cv").glob("fold[0-9]*")) == ["fold2"]
    # A subset's table never replaces the table of all folds.
    assert (tmp_path / "cv" / "cross_validation_folds-2.csv").is_file()
    assert not (tmp_path / "cv" / "cross_validation.csv").exists()
    assert "1 of 3 grouped folds" in one.attrs["summary"]
    with pytest.raises(ValueError, match="between 1 and 3"):
        cross_validate(df, skinlib.Preprocess.default(), "v1", folds=3, only_folds=[4], progress=False)


def test_exclude_from_training_leaves_test_folds_whole(sample, tmp_path):
    run, plain_run = tmp_path / "cv", tmp_path / "plain"
    kwargs = dict(folds=3, seed=0, epochs=1, batch_size=16, progress=False)
    # Every third image is a "suspect": out of training and validation, never out of a test fold.
    suspects = sample["path"].iloc[::3].tolist()
    cv = cross_validate(sample, skinlib.Preprocess.default(), "v1", exclude_from_training=suspects, run_dir=run,
                        **kwargs)
    plain = cross_validate(sample, skinlib.Preprocess.default(), "v1", run_dir=plain_run, **kwargs)
    per_fold, plain_fold = cv.loc[["1", "2", "3"]], plain.loc[["1", "2", "3"]]
    # The same folds as without the exclusion: every image tested once, in the same fold.
    pd.testing.assert_frame_equal(pd.read_csv(run / "folds.csv"), pd.read_csv(plain_run / "folds.csv"))
    assert per_fold["n_test"].sum() == len(sample)
    np.testing.assert_array_equal(per_fold["n_test"], plain_fold["n_test"])
    folds = pd.read_csv(run / "folds.csv").set_index("path")["test_fold"]
    for k in (1, 2, 3):
        preds = pd.read_csv(run / f"fold{k}" / "predictions.csv")
        seen = set(preds.loc[preds["fold"] != "test", "path"])
        assert not seen & set(suspects)
        assert set(preds.loc[preds["fold"] == "test", "path"]) == set(folds[folds == k].index)
        n_out = sum(folds[p] != k for p in suspects)
        assert per_fold.loc[str(k), "n_train"] + per_fold.loc[str(k), "n_val"] == (
            plain_fold.loc[str(k), "n_train"] + plain_fold.loc[str(k), "n_val"] - n_out)
    with pytest.raises(ValueError, match="not images of the table.*nowhere.jpg"):
        cross_validate(sample, None, "v1", exclude_from_training=["nowhere.jpg"], **kwargs)
    with pytest.raises(TypeError, match="list of paths"):
        cross_validate(sample, None, "v1", exclude_from_training=suspects[0], **kwargs)
