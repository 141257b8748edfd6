"""skinlib.audit._label_issues: planted label errors come out first; in-sample predictions are refused."""

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from conftest import lesion_image, write_jpeg
from skinlib import Preprocess
from skinlib.audit import find_label_issues
from skinlib.plotting import plot_label_issues
from skinlib.runs import Run, fold_dir


def fake_run(folder, rows: pd.DataFrame, threshold: float = 0.5):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"preprocess": Preprocess.default().to_dict(),
                                                    "threshold": threshold}))
    rows.to_csv(folder / "predictions.csv", index=False)
    return folder


def planted(n=400, flips_per_class=4, seed=0):
    """Out-of-fold probabilities of a separable synthetic problem, with a few labels flipped.

    The score separates the classes (benign around -3, malignant around +3); the flipped
    images are clear-cut ones (a score beyond their class's median): a melanoma labelled
    benign that any model scores high. Returns the table and the flipped rows.
    """
    rng = np.random.default_rng(seed)
    truth = rng.permutation(np.repeat([0, 1], n // 2))
    score = np.where(truth == 1, 3.0, -3.0) + rng.normal(0, 1.0, n)
    probability = 1 / (1 + np.exp(-score))
    flipped = []
    for k in (0, 1):
        clear = np.flatnonzero((truth == k) & (np.abs(score) > np.median(np.abs(score[truth == k]))))
        flipped += rng.choice(clear, flips_per_class, replace=False).tolist()
    label = truth.copy()
    label[flipped] = 1 - label[flipped]
    table = pd.DataFrame({"path": [f"/data/ISIC_{i:04d}.jpg" for i in range(n)], "label": label,
                          "probability": probability})
    return table, sorted(flipped)


def test_planted_label_flips_are_ranked_first_and_flagged():
    table, flipped = planted()
    issues = find_label_issues(table)
    assert len(issues) == len(table)  # nothing dropped
    top = issues.head(len(flipped))
    assert sorted(top["path"]) == sorted(table.loc[flipped, "path"])
    assert top["flagged"].all()
    assert top["rank"].tolist() == list(range(1, len(flipped) + 1))
    # Beyond them, at most a borderline image or two looks wrong, and ranks after them.
    assert issues.attrs["n_flagged"] == int(issues["flagged"].sum())
    assert len(flipped) <= issues.attrs["n_flagged"] <= len(flipped) + 2
    assert issues["flagged"].iloc[len(flipped):].sum() == issues.attrs["n_flagged"] - len(flipped)
    # Given labels are the flipped ones, the probability is the model's; quality rises down the table.
    row = issues.set_index("path").loc[table.loc[flipped[0], "path"]]
    assert row["label"] == table.loc[flipped[0], "label"] and row["given"] == ("benign", "malignant")[row["label"]]
    assert issues["quality"].is_monotonic_increasing
    # self_confidence: the probability of the given label.
    np.testing.assert_allclose(issues["quality"], np.where(issues["label"] == 1, issues["probability"],
                                                           1 - issues["probability"]))


@pytest.mark.parametrize("filter_by, adjust", [("prune_by_class", False), ("both", True), ("confident_learning", True)])
def test_planted_flips_with_other_cleanlab_rules(filter_by, adjust):
    table, flipped = planted(seed=1)
    issues = find_label_issues(table, filter_by=filter_by, method="normalized_margin", adjust=adjust)
    assert issues.attrs["adjust"] is adjust
    assert set(table.loc[flipped, "path"]) <= set(issues.loc[issues["flagged"], "path"])
    assert sorted(issues.head(len(flipped))["path"]) == sorted(table.loc[flipped, "path"])


def test_from_a_cross_validation_folder_with_the_datasets_label_columns(tmp_path):
    table, flipped = planted(n=200, flips_per_class=2)
    dataset = table[["path", "label"]].assign(dx=np.where(table["label"] == 1, "mel", "nv"), dx_type="histo",
                                             group=[f"HAM_{i // 2}" for i in range(200)], age=50.0)
    cv = tmp_path / "cv"
    for k, rows in ((1, table.iloc[:100]), (2, table.iloc[100:])):
        train = rows.assign(path=[f"/train/{i}.jpg" for i in range(len(rows))], fold="train")
        fake_run(fold_dir(cv, k), pd.concat([train, rows.assign(fold="test")]).assign(probability_uncalibrated=0.5))
    issues = find_label_issues(cv, dataset)
    assert len(issues) == 200 and set(issues["cv_fold"]) == {1, 2}
    assert {"dx", "dx_type", "group"} <= set(issues.columns) and "age" not in issues.columns
    assert sorted(issues.head(4)["path"]) == sorted(table.loc[flipped, "path"])
    assert issues.head(4)["flagged"].all()
    chosen = find_label_issues(cv, dataset, columns=["dx"])
    assert "dx_type" not in chosen.columns and "dx" in chosen.columns
    with pytest.raises(ValueError, match=r"columns \['nope'\] are not in the dataset table"):
        find_label_issues(cv, dataset, columns=["nope"])


def test_in_sample_predictions_are_refused(tmp_path):
    table, _ = planted(n=100, flips_per_class=1)
    run = fake_run(tmp_path / "run", pd.concat([table.assign(fold="train"), table.assign(fold="test")]))
    with pytest.raises(ValueError, match=r"100 prediction\(s\) are not out of fold \(100 'train'\)"):
        find_label_issues(Run(run).predictions("train"))
    with pytest.raises(ValueError, match="not out of fold"):
        find_label_issues(Run(run).predictions())
    with pytest.raises(ValueError, match="a single run folder"):
        find_label_issues(run)
    with pytest.raises(ValueError, match="scored more than once"):
        find_label_issues(pd.concat([table, table.iloc[:3]]))
    with pytest.raises(ValueError, match="needs benign and malignant"):
        find_label_issues(table.assign(label=1))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        find_label_issues(table.assign(probability=table["probability"] * 2))


def test_plot_label_issues_shows_the_top_suspects(tmp_path):
    paths = [str(write_jpeg(tmp_path / f"{i}.jpg", lesion_image(seed=i))) for i in range(3)]
    issues = pd.DataFrame({"rank": [1, 2, 3], "path": paths, "given": ["benign", "malignant", "benign"],
                           "probability": [0.98, 0.03, 0.4], "quality": [0.02, 0.03, 0.6],
                           "flagged": [True, True, False], "dx": ["nv", "mel", "nv"]})
    fig = plot_label_issues(issues)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["#1 given benign (nv)\np(malignant) 0.98",
                                                   "#2 given malignant (mel)\np(malignant) 0.03"]
    assert all(len(ax.images) == 1 for ax in fig.axes)
    everything = plot_label_issues(issues.assign(path=[paths[0], str(tmp_path / "gone.jpg"), paths[2]]),
                                   flagged_only=False, columns=2)
    assert len(everything.axes) == 3 and everything.axes[1].get_title().endswith("unreadable")
    none = plot_label_issues(issues.assign(flagged=False))
    assert none.axes[0].get_title() == "no image flagged"
    with pytest.raises(ValueError, match="find_label_issues"):
        plot_label_issues(issues.drop(columns="given"))
