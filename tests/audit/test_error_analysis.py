"""skinlib.audit._error_analysis: per diagnosis, per subgroup and operating-point metrics, checked on
tables small enough to compute by hand, and read from run and cross-validation folders."""

import json
import os
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from skinlib import Preprocess
from skinlib.plotting import plot_diagnoses, plot_error_analysis, plot_operating_points, plot_subgroups
from skinlib.audit import UNKNOWN, age_band, diagnosis_metrics, analyse_errors, scored_predictions, subgroup_metrics
from skinlib.evaluation import operating_points
from skinlib.runs import fold_dir


def scored(label, probability, threshold=0.5, **columns):
    table = pd.DataFrame({"path": [f"img{i}.jpg" for i in range(len(label))], "label": label,
                          "probability": probability, **columns})
    return scored_predictions(table, threshold=threshold)


def fake_run(folder, rows: pd.DataFrame, threshold: float):
    """A run folder with what the readers need: a checked config and the predictions."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"preprocess": Preprocess.default().to_dict(),
                                                    "threshold": threshold, "epochs_run": 1}))
    rows.to_csv(folder / "predictions.csv", index=False)
    return folder


# --------------------------------------------------------------------------- per diagnosis


def test_diagnosis_metrics_by_hand():
    # mel: 0.9, 0.8, 0.55 (all >= 0.5: sensitivity 1); bcc: 0.3, 0.6 (sensitivity 1/2)
    # nv: 0.1, 0.2, 0.45 (specificity 1); bkl: 0.7, 0.4 (specificity 1/2)
    table = scored([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [0.9, 0.8, 0.55, 0.3, 0.6, 0.1, 0.2, 0.45, 0.7, 0.4],
                   dx=["mel", "mel", "mel", "bcc", "bcc", "nv", "nv", "nv", "bkl", "bkl"])
    out = diagnosis_metrics(table, n_boot=0, min_images=1).set_index("diagnosis")
    assert list(out.index) == ["mel", "bcc", "nv", "bkl"]  # malignant first, most images first
    assert out.loc["mel", "metric"] == "sensitivity" and out.loc["nv", "metric"] == "specificity"
    assert out["value"].to_dict() == {"mel": 1.0, "bcc": 0.5, "nv": 1.0, "bkl": 0.5}
    # mel against the 5 benign: 0.9 and 0.8 beat all 5; 0.55 beats 0.1, 0.2, 0.45, 0.4 -> 14/15
    assert out.loc["mel", "roc_auc"] == pytest.approx(14 / 15)
    # bcc: 0.3 beats 0.1, 0.2 (2); 0.6 beats 0.1, 0.2, 0.45, 0.4 (4) -> 6/10
    assert out.loc["bcc", "roc_auc"] == pytest.approx(6 / 10)
    # all 5 malignant against nv (0.1, 0.2, 0.45): only 0.3 loses to 0.45 -> 14/15
    assert out.loc["nv", "roc_auc"] == pytest.approx(14 / 15)
    # against bkl (0.7, 0.4): 0.9, 0.8 beat both; 0.55, 0.6 beat 0.4; 0.3 none -> 6/10
    assert out.loc["bkl", "roc_auc"] == pytest.approx(6 / 10)
    assert out.loc["mel", "against"] == "all benign" and out.loc["bkl", "against"] == "all malignant"
    assert out.attrs["column"] == "dx"


def test_diagnosis_metrics_small_missing_and_both_classes():
    rng = np.random.default_rng(1)
    n = 60
    label = np.r_[np.ones(30, int), np.zeros(30, int)]
    dx = np.array(["mel"] * 25 + ["unknown"] * 5 + ["nv"] * 20 + [None] * 5 + ["unknown"] * 5, dtype=object)
    table = scored(label, np.clip(0.3 + 0.4 * label + rng.normal(0, 0.2, n), 0, 1), diagnosis=dx)
    out = diagnosis_metrics(table, n_boot=50, seed=0, min_images=10)
    pairs = list(zip(out["diagnosis"], out["class"]))
    # A diagnosis found in both classes has a row per class; missing diagnoses are "unknown" (benign: 5 + 5).
    assert ("unknown", "malignant") in pairs and ("unknown", "benign") in pairs
    counts = dict(zip(pairs, out["n"]))
    assert counts[("unknown", "benign")] == 10 and counts[("unknown", "malignant")] == 5
    small = out[out["small"]]
    assert list(zip(small["diagnosis"], small["class"])) == [("unknown", "malignant")]
    assert small[["value", "low", "high", "roc_auc", "roc_auc_low", "roc_auc_high"]].isna().all(axis=None)
    big = out[~out["small"]]
    assert (big["low"] <= big["value"]).all() and (big["value"] <= big["high"]).all()
    assert (big["roc_auc_low"] <= big["roc_auc"]).all() and (big["roc_auc"] <= big["roc_auc_high"]).all()
    # Seeded: the same seed gives the same intervals, another seed others.
    again = diagnosis_metrics(table, n_boot=50, seed=0, min_images=10)
    pd.testing.assert_frame_equal(out, again)
    other = diagnosis_metrics(table, n_boot=50, seed=1, min_images=10)
    assert not np.allclose(out["low"].fillna(0), other["low"].fillna(0))


def test_diagnosis_metrics_needs_a_diagnosis_column():
    with pytest.raises(ValueError, match="no diagnosis column"):
        diagnosis_metrics(scored([0, 1], [0.2, 0.8]), n_boot=0)
    with pytest.raises(ValueError, match="named 'dxx'"):
        diagnosis_metrics(scored([0, 1], [0.2, 0.8], dx=["nv", "mel"]), diagnosis="dxx", n_boot=0)


# --------------------------------------------------------------------------- per subgroup


def test_subgroup_metrics_by_hand():
    # women: benign 0.1, 0.4, 0.6; malignant 0.5, 0.9 -> AUC (2 + 3) / 6, sensitivity 1, specificity 2/3
    # men: benign 0.2, 0.3; malignant 0.25, 0.7, 0.8 -> AUC (1 + 2 + 2) / 6, sensitivity 2/3, specificity 1
    label = [0, 0, 0, 1, 1, 0, 0, 1, 1, 1]
    prob = [0.1, 0.4, 0.6, 0.5, 0.9, 0.2, 0.3, 0.25, 0.7, 0.8]
    sex = ["female"] * 5 + ["male"] * 5
    table = scored(label, prob, sex=sex)
    out = subgroup_metrics(table, features=["sex"], n_boot=0, min_malignant=1, min_benign=1).set_index("group")
    assert list(out.index) == ["all", "female", "male"]
    assert out.loc["female", "roc_auc"] == pytest.approx(5 / 6)
    assert out.loc["female", "sensitivity"] == 1.0 and out.loc["female", "specificity"] == pytest.approx(2 / 3)
    assert out.loc["male", "roc_auc"] == pytest.approx(5 / 6)
    assert out.loc["male", "sensitivity"] == pytest.approx(2 / 3) and out.loc["male", "specificity"] == 1.0
    assert out.loc["all", "roc_auc"] == pytest.approx(roc_auc_score(label, prob))
    # all: 4 of 5 malignant called, 4 of 5 benign cleared
    assert out.loc["all", "sensitivity"] == 0.8 and out.loc["all", "specificity"] == 0.8
    assert out[["n", "n_malignant", "n_benign"]].loc["male"].tolist() == [5, 3, 2]


def test_subgroup_metrics_small_groups_age_bands_and_intervals():
    rng = np.random.default_rng(0)
    n = 400
    label = rng.integers(0, 2, n)
    prob = np.clip(0.3 + 0.4 * label + rng.normal(0, 0.25, n), 0, 1)
    age = rng.choice([20, 35, 50, 65, 80], n).astype(float)
    age[:5] = np.nan
    site = np.where(np.arange(n) < 12, "ear", rng.choice(["back", "face"], n)).astype(object)
    site[12:20] = None
    table = scored(label, prob, age=age, site=site)
    with pytest.warns(UserWarning, match=r"no column\(s\) \['sex'\]"):
        out = subgroup_metrics(table, n_boot=40, seed=0)
    assert out.attrs["missing"] == ["sex"]
    ages = out[out["feature"] == "age"]
    assert ages["group"].tolist() == ["<30", "30-44", "45-59", "60-74", "75+", UNKNOWN]
    assert ages["n"].sum() == n and ages.set_index("group").loc[UNKNOWN, "n"] == 5
    sites = out[out["feature"] == "site"].set_index("group")
    assert sites.index[-1] == UNKNOWN and sites.loc[UNKNOWN, "n"] == 8
    # The 12 ear images have fewer than 10 of each class: kept, counted, NaN metrics.
    ear = sites.loc["ear"]
    assert ear["small"] and ear["n"] == 12 and ear["n_malignant"] + ear["n_benign"] == 12
    assert np.isnan(ear["roc_auc"]) and np.isnan(ear["sensitivity_low"]) and np.isnan(ear["specificity_high"])
    big = out[~out["small"]]
    for metric in ("roc_auc", "sensitivity", "specificity"):
        assert (big[f"{metric}_low"] <= big[metric]).all() and (big[metric] <= big[f"{metric}_high"]).all()
        assert (big[f"{metric}_high"] - big[f"{metric}_low"] > 0).all()
    # Seeded: the same seed gives the same intervals.
    again = subgroup_metrics(table, features=["age", "site"], n_boot=40, seed=0)
    pd.testing.assert_frame_equal(out, again)


def test_subgroup_sensitivity_uses_each_rows_threshold():
    # Two folds with their own thresholds: 0.6 calls at 0.3 threshold malignant, at 0.7 benign.
    table = pd.DataFrame({"path": list("abcd"), "label": [1, 1, 0, 0], "probability": [0.6, 0.6, 0.2, 0.2],
                          "threshold": [0.3, 0.7, 0.3, 0.7], "sex": ["f", "m", "f", "m"]})
    out = subgroup_metrics(scored_predictions(table), features=["sex"], n_boot=0, min_malignant=1,
                           min_benign=1).set_index("group")
    assert out.loc["f", "sensitivity"] == 1.0 and out.loc["m", "sensitivity"] == 0.0
    assert out.loc["all", "sensitivity"] == 0.5


def test_age_band():
    bands = age_band([0, 29.9, 30, 44, 45, 59, 60, 74, 75, 110, np.nan])
    assert bands.tolist() == ["<30", "<30", "30-44", "30-44", "45-59", "45-59", "60-74", "60-74", "75+", "75+",
                              UNKNOWN]
    assert age_band([50], edges=(40.5,)).tolist() == ["40.5+"]
    assert age_band([20, 45], edges=(30, 40.5)).tolist() == ["<30", "40.5+"]
    with pytest.raises(ValueError, match="increasing"):
        age_band([20], edges=(50, 40))
    with pytest.raises(ValueError, match="increasing"):
        age_band([20], edges=())


# --------------------------------------------------------------------------- operating points


def test_operating_points_on_a_hand_made_roc():
    # 10 benign, 4 malignant. At 0.9: one benign (0.95) and one malignant above -> sens 1/4, spec 9/10.
    # Needing 3 of 4 malignant: threshold 0.65 calls benign 0.7, 0.8, 0.85, 0.95 -> spec 6/10.
    y = [0] * 10 + [1] * 4
    p = [.1, .2, .3, .4, .5, .6, .7, .8, .85, .95, .9, .75, .65, .3]
    points = operating_points(y, p, specificities=[0.9, 0.95], sensitivities=[0.75, 1.0], threshold=0.5)
    assert list(points.index) == ["sensitivity at 90% specificity", "sensitivity at 95% specificity",
                                  "specificity at 75% sensitivity", "specificity at 100% sensitivity",
                                  "at the run's threshold"]
    assert points.loc["sensitivity at 90% specificity", ["sensitivity", "specificity", "threshold"]].tolist() == \
        [0.25, 0.9, 0.9]
    # 95% specificity allows no benign above the threshold: nothing above 0.95 -> sensitivity 0, no image called.
    assert points.loc["sensitivity at 95% specificity", "sensitivity"] == 0.0
    assert points.loc["sensitivity at 95% specificity", "threshold"] == np.inf
    assert points.loc["specificity at 75% sensitivity", ["sensitivity", "specificity", "threshold"]].tolist() == \
        [0.75, pytest.approx(0.6), 0.65]
    # All four malignant needs the threshold down to 0.3: benign 0.3 and above are called -> spec 2/10.
    assert points.loc["specificity at 100% sensitivity", ["specificity", "threshold"]].tolist() == \
        [pytest.approx(0.2), 0.3]
    # At 0.5: malignant 0.9, 0.75, 0.65 (3/4); benign 0.5 ... 0.95 called (6 of 10) -> spec 0.4.
    assert points.loc["at the run's threshold", ["sensitivity", "specificity", "threshold"]].tolist() == \
        [0.75, pytest.approx(0.4), 0.5]


def test_operating_points_keep_collinear_points():
    # (fpr 0.1, tpr 0.5) sits on the segment from (0, 0.25) to (0.2, 0.75): a curve with
    # intermediate points dropped would miss it and answer 0.25 at 90% specificity.
    y = [1, 0, 1, 0, 1] + [0] * 8 + [1]
    p = [0.99, 0.98, 0.97, 0.96, 0.95] + [0.1] * 8 + [0.05]
    points = operating_points(y, p, specificities=[0.9], sensitivities=[])
    assert points["sensitivity"].tolist() == [0.5] and points["specificity"].tolist() == [0.9]


def test_operating_points_thresholds_give_what_they_claim():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.35 + 0.3 * y + rng.normal(0, 0.2, 500), 0, 1)
    points = operating_points(y, p)
    for name, row in points.iterrows():
        called = p >= row["threshold"]
        assert called[y == 1].mean() == pytest.approx(row["sensitivity"])
        assert 1 - called[y == 0].mean() == pytest.approx(row["specificity"])
        assert row[row["fixed"]] >= row["target"]
    with pytest.raises(ValueError, match="one class only"):
        operating_points([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        operating_points(y, p, specificities=[90])


# --------------------------------------------------------------------------- reading predictions


def cv_folder(tmp_path):
    """A two-fold cross-validation folder of 40 images with their own thresholds, and its dataset table."""
    rng = np.random.default_rng(0)
    images = tmp_path / "data"
    images.mkdir()
    paths = [images / f"ISIC_{i:03d}.jpg" for i in range(40)]
    for path in paths:
        path.write_bytes(b"")
    label = np.tile([0, 1], 20)
    prob = np.clip(0.3 + 0.4 * label + rng.normal(0, 0.15, 40), 0, 1)
    dx = np.where(label == 1, np.where(np.arange(40) % 4 == 1, "mel", "bcc"), "nv")
    dataset = pd.DataFrame({"path": [str(p) for p in paths], "label": label, "dx": dx, "dx_type": "histo",
                            "age": np.linspace(20, 85, 40), "sex": np.where(np.arange(40) < 20, "male", "female"),
                            "site": "back"})
    cv = tmp_path / "cv"
    for k, (rows, threshold) in enumerate(((slice(0, 20), 0.4), (slice(20, 40), 0.6)), 1):
        test = pd.DataFrame({"path": [str(p) for p in paths[rows]], "fold": "test", "label": label[rows],
                             "probability": prob[rows], "probability_uncalibrated": prob[rows] / 2})
        train = test.assign(fold="train", path=[f"/elsewhere/{i}.jpg" for i in range(20)])
        fake_run(fold_dir(cv, k), pd.concat([train, test]), threshold)
    return cv, dataset, prob, label


def test_scored_predictions_from_a_cross_validation_folder(tmp_path):
    cv, dataset, prob, label = cv_folder(tmp_path)
    table = scored_predictions(cv)
    assert table.attrs["source"] == "cross-validation"
    assert len(table) == 40 and set(table["fold"]) == {"test"}  # the test folds only
    assert table["cv_fold"].tolist() == [1] * 20 + [2] * 20
    assert table["threshold"].tolist() == [0.4] * 20 + [0.6] * 20
    np.testing.assert_array_equal(table["predicted"], (prob >= np.repeat([0.4, 0.6], 20)).astype(int))
    uncalibrated = scored_predictions(cv, column="probability_uncalibrated")
    np.testing.assert_allclose(uncalibrated["probability"], prob / 2)
    one = scored_predictions(fold_dir(cv, 2))
    assert one.attrs["source"] == "run" and len(one) == 20 and set(one["threshold"]) == {0.6}
    assert len(scored_predictions(fold_dir(cv, 2), fold="train")) == 20


def test_scored_predictions_join_the_dataset_by_resolved_path(tmp_path, monkeypatch):
    cv, dataset, prob, label = cv_folder(tmp_path)
    # The dataset read through another spelling of the folder: relative, and through a symlink.
    (tmp_path / "link").symlink_to(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    other = dataset.assign(path=[os.path.join("link", os.path.basename(p)) for p in dataset["path"]])
    table = scored_predictions(cv, other)
    assert table["dx"].notna().all() and table["dx_type"].eq("histo").all()
    assert table["path"].tolist()[:2] == dataset["path"].tolist()[:2]  # the predictions' paths kept
    with pytest.warns(UserWarning, match="5 of 40 predictions have no row in the dataset"):
        partial = scored_predictions(cv, dataset.iloc[5:])
    assert partial["dx"].isna().sum() == 5
    with pytest.warns(UserWarning, match="1 prediction.* label that differs"):
        scored_predictions(cv, dataset.assign(label=np.r_[1 - label[:1], label[1:]]))


def test_scored_predictions_refuse_bad_tables(tmp_path):
    good = pd.DataFrame({"path": ["a", "b"], "label": [0, 1], "probability": [0.1, 0.9]})
    with pytest.raises(ValueError, match="pass threshold="):
        scored_predictions(good)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['probability'\]"):
        scored_predictions(good.drop(columns="probability"), threshold=0.5)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        scored_predictions(good.assign(probability=[0.1, 3.0]), threshold=0.5)
    with pytest.raises(ValueError, match="0 \\(benign\\) and 1"):
        scored_predictions(good.assign(label=[0, 2]), threshold=0.5)
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\]"):
        scored_predictions(good, threshold=2)
    with pytest.raises(Exception, match="not a run folder"):
        scored_predictions(tmp_path / "nothing")


# --------------------------------------------------------------------------- all of it, and figures


def test_error_analysis_of_a_cross_validation(tmp_path):
    cv, dataset, prob, label = cv_folder(tmp_path)
    audit = analyse_errors(cv, dataset, n_boot=20, min_malignant=5, min_benign=5)
    assert set(audit.diagnoses["diagnosis"]) == {"mel", "bcc", "nv"}
    assert audit.subgroups.iloc[0]["n"] == 40
    assert audit.subgroups.iloc[0]["roc_auc"] == pytest.approx(roc_auc_score(label, prob))
    run_point = audit.operating_points.loc["at the run's threshold"]
    assert np.isnan(run_point["threshold"])  # two folds, two thresholds
    called = prob >= np.repeat([0.4, 0.6], 20)
    assert run_point["sensitivity"] == pytest.approx(called[label == 1].mean())
    figures = plot_error_analysis(audit)
    assert set(figures) == {"diagnoses", "subgroups", "roc"}
    assert all(isinstance(f, Figure) for f in figures.values())
    # Without a dataset: no diagnoses, and the subgroup table is the whole table only.
    bare = analyse_errors(cv, n_boot=0)
    assert bare.diagnoses is None and bare.subgroups["feature"].tolist() == ["all"]
    assert set(plot_error_analysis(bare)) == {"subgroups", "roc"}


def test_figures_draw_what_the_tables_hold():
    table = pd.DataFrame({"diagnosis": ["mel", "bcc", "nv"], "class": ["malignant", "malignant", "benign"],
                          "n": [30, 4, 90], "metric": ["sensitivity", "sensitivity", "specificity"],
                          "value": [0.7, np.nan, 0.8], "low": [0.5, np.nan, 0.7], "high": [0.85, np.nan, 0.9],
                          "roc_auc": [0.85, np.nan, 0.8], "roc_auc_low": [0.8, np.nan, 0.75],
                          "roc_auc_high": [0.9, np.nan, 0.85]})
    fig = plot_diagnoses(table)
    left, right = fig.axes
    assert [t.get_text() for t in left.get_yticklabels()] == ["mel (mal., n=30)", "bcc (mal., n=4)",
                                                              "nv (ben., n=90)"]
    assert [round(b.get_width(), 3) for b in right.patches] == [0.85, 0.0, 0.8]
    assert any(t.get_text() == "too few images" for t in left.texts)
    with pytest.raises(ValueError, match="diagnosis_metrics"):
        plot_diagnoses(table.drop(columns="roc_auc"))
    sub = pd.DataFrame({"feature": ["all", "sex", "sex"], "group": ["all", "female", "male"], "n": [100, 50, 50],
                        "n_malignant": [20, 10, 10], "roc_auc": [0.8, 0.75, np.nan], "roc_auc_low": [0.7, 0.6, np.nan],
                        "roc_auc_high": [0.9, 0.85, np.nan]})
    fig = plot_subgroups(sub, metrics=["roc_auc"])
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["all images (n=100, 20 mal.)", "sex: female (n=50, 10 mal.)",
                                                           "sex: male (n=50, 10 mal.)"]
    assert any(line.get_xdata()[0] == 0.8 for line in ax.lines)  # the whole table's value
    y, p = [0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9]
    fig = plot_operating_points(y, p, operating_points(y, p, threshold=0.5))
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert len(labels) == 6 and labels[0].startswith("ROC (AUC")


def test_no_pyplot():
    # Building the figures never imports pyplot (the plots module's rule), in a fresh interpreter.
    import subprocess

    code = ("import sys; from skinlib.plotting._errors import plot_operating_points; "
            "plot_operating_points([0, 1, 0, 1], [0.1, 0.8, 0.3, 0.6]); print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_import_skinlib_stays_light():
    import subprocess

    # fairlearn and cleanlab take seconds to import: only the functions that use them do.
    code = "import sys, skinlib; print(sorted(m for m in ('fairlearn', 'cleanlab') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_skin_type_is_broken_down_by_default_where_the_dataset_has_it():
    rng = np.random.default_rng(0)
    n = 80
    label = rng.integers(0, 2, n)
    scored = pd.DataFrame({"path": [f"{i}.jpg" for i in range(n)], "label": label,
                           "probability": np.clip(0.3 + 0.4 * label + rng.normal(0, 0.2, n), 0, 1),
                           "threshold": 0.5, "age": rng.integers(20, 80, n).astype(float),
                           "sex": rng.choice(["male", "female"], n), "site": rng.choice(["back", "face"], n),
                           "skin_type": rng.choice([2, 3], n)})
    scored["predicted"] = scored["probability"] >= scored["threshold"]
    table = subgroup_metrics(scored, n_boot=0, min_malignant=1, min_benign=1)
    assert "skin_type" in set(table["feature"])
    without = subgroup_metrics(scored.drop(columns="skin_type"), n_boot=0, min_malignant=1, min_benign=1)
    assert "skin_type" not in set(without["feature"])
