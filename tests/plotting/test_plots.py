"""skinlib.plotting._plots: what each figure draws, and how it is saved."""

import os
import stat

import matplotlib

matplotlib.use("Agg")  # headless: before anything imports pyplot

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve  # noqa: E402

from conftest import lesion_image, write_jpeg  # noqa: E402
from skinlib import Preprocess, read_image  # noqa: E402
from skinlib.evaluation import apply_temperature, fit_temperature  # noqa: E402
from skinlib.evaluation import expected_calibration_error  # noqa: E402
from skinlib.plotting import (  # noqa: E402
    plot_calibration,
    plot_confusion,
    plot_history,
    plot_pr,
    plot_roc,
    plot_duplicates,
    plot_samples,
    plot_stages,
    save_figure,
)

from skinlib.preprocessing import ImageReadError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def history():
    epochs = np.arange(1, 6)
    return pd.DataFrame(
        {
            "epoch": epochs,
            "accuracy": [0.6, 0.7, 0.72, 0.74, 0.75],
            "val_accuracy": [0.65, 0.7, 0.7, 0.71, 0.7],
            "loss": [0.7, 0.6, 0.55, 0.5, 0.48],
            "val_loss": [0.69, 0.62, 0.6, 0.6, 0.61],
        }
    )


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def png_files(folder):
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- history


def test_history_one_figure_per_present_metric(history):
    figs = plot_history(history)
    assert list(figs) == ["accuracy", "loss"]  # no auc columns: skipped
    for metric, fig in figs.items():
        (ax,) = fig.axes
        assert len(ax.get_lines()) == 2
        assert ax.get_title() == f"Model {metric}"
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == metric
        assert legend_texts(ax) == ["train", "validation"]
    train, val = figs["loss"].axes[0].get_lines()
    np.testing.assert_array_equal(train.get_xdata(), history["epoch"])
    np.testing.assert_array_equal(train.get_ydata(), history["loss"])
    np.testing.assert_array_equal(val.get_ydata(), history["val_loss"])


def test_history_numbers_epochs_from_one_when_absent():
    fig = plot_history({"auc": [0.5, 0.6, 0.7]})["auc"]
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3])
    assert fig.axes[0].get_title() == "Model AUC"
    assert legend_texts(fig.axes[0]) == ["train"]


def test_history_baseline_only_on_accuracy(history):
    figs = plot_history(history, baseline=0.75)
    ax = figs["accuracy"].axes[0]
    assert len(ax.get_lines()) == 3
    assert legend_texts(ax) == ["train", "validation", "always benign"]
    line = ax.get_lines()[2]
    assert line.get_linestyle() == "--"
    np.testing.assert_allclose(line.get_ydata(), [0.75, 0.75])
    assert len(figs["loss"].axes[0].get_lines()) == 2


def test_history_saves_pngs_in_folder(tmp_path, history):
    out = tmp_path / "figures"  # does not exist yet
    plot_history(history, out)
    assert png_files(out) == ["accuracy.png", "loss.png"]  # and no temporary files
    for name in png_files(out):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC


def test_history_suffix_names_second_run(tmp_path, history):
    plot_history(history, tmp_path)
    plot_history(history, tmp_path, suffix="_2")
    assert png_files(tmp_path) == ["accuracy.png", "accuracy_2.png", "loss.png", "loss_2.png"]


def test_history_png_path_is_a_stem(tmp_path, history):
    plot_history(history, tmp_path / "v1.png", metrics=("loss",))
    assert png_files(tmp_path) == ["v1_loss.png"]


# --------------------------------------------------------------------------- saving


def test_save_figure_replaces_atomically(tmp_path, history):
    fig = plot_history(history)["loss"]
    target = tmp_path / "loss.png"
    target.write_bytes(b"old")
    assert save_figure(fig, target) == target
    assert target.read_bytes()[:8] == PNG_MAGIC
    assert png_files(tmp_path) == ["loss.png"]


def test_save_figure_gets_ordinary_permissions(tmp_path, history):
    umask = os.umask(0o022)
    os.umask(umask)
    target = save_figure(plot_history(history)["loss"], tmp_path / "sub" / "loss.png")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_save_figure_failure_keeps_old_file_and_no_temp(tmp_path, history, monkeypatch):
    fig = plot_history(history)["loss"]
    target = tmp_path / "loss.png"
    target.write_bytes(b"old")

    def broken(fh, **kwargs):
        fh.write(PNG_MAGIC + b"half a figure")
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(fig, target)
    assert target.read_bytes() == b"old"
    assert png_files(tmp_path) == ["loss.png"]


# --------------------------------------------------------------------------- curves


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    good = np.clip(y * 0.4 + rng.random(200) * 0.6, 0, 1)
    weak = rng.random(200)
    return {"v1": (y, weak), "v2": (y, good)}


def test_roc_labels_carry_sklearn_auc(predictions):
    fig = plot_roc(predictions)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 3  # two models and the chance diagonal
    labels = legend_texts(ax)
    for i, (name, (y, p)) in enumerate(predictions.items()):
        assert labels[i] == f"{name} (AUC = {roc_auc_score(y, p):.3f})"
        fpr, tpr, _ = roc_curve(y, p)
        np.testing.assert_array_equal(lines[i].get_xdata(), fpr)
        np.testing.assert_array_equal(lines[i].get_ydata(), tpr)
    np.testing.assert_array_equal(lines[2].get_xdata(), [0, 1])
    np.testing.assert_array_equal(lines[2].get_ydata(), [0, 1])


def test_pr_labels_carry_average_precision_and_prevalence(predictions):
    fig = plot_pr(predictions)
    (ax,) = fig.axes
    y = predictions["v1"][0]
    labels = legend_texts(ax)
    for i, (name, (yt, p)) in enumerate(predictions.items()):
        assert labels[i] == f"{name} (AP = {average_precision_score(yt, p):.3f})"
    assert labels[2] == f"prevalence ({y.mean():.3f})"
    np.testing.assert_allclose(ax.get_lines()[2].get_ydata(), [y.mean(), y.mean()])


def test_curves_draw_on_given_axes(predictions):
    from matplotlib.figure import Figure

    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert plot_roc(predictions, ax=left) is fig
    assert plot_pr(predictions, ax=right) is fig
    assert len(fig.axes) == 2 and len(left.get_lines()) == 3


def test_curve_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        plot_roc({"v1": ([0, 0, 0], [0.1, 0.2, 0.3])})


# --------------------------------------------------------------------------- calibration


@pytest.fixture
def overconfident():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, 2000)
    y = (rng.random(2000) < p).astype(int)
    q = 1 / (1 + ((1 - p) / p) ** 3)  # sigmoid(3 logit(p)): pushed towards 0 and 1
    return y, q


def test_calibration_one_line_per_entry_with_ece_and_histogram(overconfident):
    from sklearn.calibration import calibration_curve

    y, q = overconfident
    after = apply_temperature(q, fit_temperature(y, q))
    probs = {"before": q, "after temperature scaling": after}
    fig = plot_calibration(y, probs)
    ax, hist_ax = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 3  # two curves and the diagonal
    labels = legend_texts(ax)
    assert labels == [f"{name} (ECE {expected_calibration_error(y, p):.3f})" for name, p in probs.items()] + [
        "perfectly calibrated"]
    assert all("ECE" in t for t in labels[:2])
    for line, p in zip(lines, probs.values()):
        observed, predicted = calibration_curve(y, p, n_bins=10)
        np.testing.assert_allclose(line.get_xdata(), predicted)
        np.testing.assert_allclose(line.get_ydata(), observed)
        assert line.get_marker() == "o"
    assert lines[2].get_linestyle() == "--"
    np.testing.assert_array_equal(lines[2].get_xdata(), [0, 1])
    assert ax.get_xlabel() == "mean predicted probability"
    assert ax.get_ylabel() == "observed fraction malignant"
    assert ax.get_xlim() == (0, 1) and ax.get_ylim() == (0, 1)
    # the overconfident curve is further from the diagonal than the corrected one
    assert float(labels[0].split("ECE ")[1][:-1]) > float(labels[1].split("ECE ")[1][:-1])
    # the histogram counts every prediction of each entry, one outline per entry
    assert len(hist_ax.patches) == 2
    assert hist_ax.get_xlim() == (0, 1)


def test_calibration_single_array_on_given_axes(overconfident):
    from matplotlib.figure import Figure

    y, q = overconfident
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert plot_calibration(y, q, ax=right, n_bins=5, strategy="quantile") is fig
    assert len(fig.axes) == 2  # no histogram added to a given figure
    assert len(right.get_lines()) == 2 and not left.get_lines()
    ece = expected_calibration_error(y, q, n_bins=5)
    assert legend_texts(right) == [f"ECE {ece:.3f}", "perfectly calibrated"]
    assert len(right.get_lines()[0].get_xdata()) == 5  # quantile bins: none empty


def test_calibration_bad_inputs():
    with pytest.raises(ValueError, match="strategy must be 'uniform' or 'quantile', got 'equal'"):
        plot_calibration([0, 1], [0.2, 0.8], strategy="equal")
    with pytest.raises(ValueError, match="probs\\['after'\\]: y_true has 2 values but y_prob has 3"):
        plot_calibration([0, 1], {"before": [0.2, 0.8], "after": [0.2, 0.5, 0.8]})
    with pytest.raises(ValueError, match="empty"):
        plot_calibration([0, 1], {})


# --------------------------------------------------------------------------- confusion


def test_confusion_cells_show_counts_and_row_percentages():
    cm = np.array([[50, 10], [5, 15]])
    fig = plot_confusion(cm, title="v1, test")
    (ax,) = fig.axes
    counts = {(round(t.get_position()[1]), t.get_position()[0]): t.get_text() for t in ax.texts if t.get_gid() == "count"}
    assert counts == {(0, 0): "50", (0, 1): "10", (1, 0): "5", (1, 1): "15"}
    pcts = [t.get_text() for t in ax.texts if t.get_gid() == "percent"]
    assert pcts == ["83.3%", "16.7%", "25.0%", "75.0%"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["benign", "malignant"]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    assert ax.get_title() == "v1, test"


def test_confusion_empty_row_and_bad_input():
    fig = plot_confusion(np.array([[3, 1], [0, 0]]))
    assert [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "percent"][2:] == ["-", "-"]
    with pytest.raises(ValueError, match="square"):
        plot_confusion(np.zeros((2, 3)))


# --------------------------------------------------------------------------- images


@pytest.fixture
def small_dataset(tmp_path):
    rows = []
    for i in range(5):
        label = int(i >= 3)  # 3 benign, 2 malignant
        img = lesion_image(size=64, radius=10 + 8 * label, seed=i)
        img[:, :, 2] = 30 * i  # a distinct red channel per image, to check RGB order
        rows.append({"path": str(write_jpeg(tmp_path / f"{i}.png", img)), "label": label})
    return pd.DataFrame(rows)


def test_samples_grid_rows_per_class_in_rgb(small_dataset):
    fig = plot_samples(small_dataset, n=3, seed=1)
    assert len(fig.axes) == 6
    benign_row, malignant_row = fig.axes[:3], fig.axes[3:]
    assert [len(ax.get_images()) for ax in benign_row] == [1, 1, 1]
    assert [len(ax.get_images()) for ax in malignant_row] == [1, 1, 0]  # only two malignant images
    assert benign_row[0].get_ylabel() == "benign (3)"
    shown = {tuple(ax.get_images()[0].get_array()[0, 0]) for ax in fig.axes if ax.get_images()}
    expected = {tuple(read_image(p, color=True)[0, 0, ::-1]) for p in small_dataset["path"]}
    assert shown == expected


def test_samples_same_seed_same_images(tmp_path):
    df = pd.DataFrame({"path": [f"img{i}" for i in range(20)], "label": [i % 2 for i in range(20)]})
    seen = []

    def read(path):
        seen.append(path)
        return np.zeros((8, 8, 3), np.uint8)

    plot_samples(df, n=3, seed=7, read=read)
    first, seen[:] = list(seen), []
    plot_samples(df, n=3, seed=7, read=read)
    assert seen == first and len(first) == 6


def test_samples_unreadable_file_is_a_titled_blank(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    fig = plot_samples(pd.DataFrame({"path": [str(bad)], "label": [0]}), n=1, classes=("benign",))
    (ax,) = fig.axes
    assert ax.get_title() == "unreadable" and not ax.get_images()


def test_stages_grid_columns_are_step_names():
    config = Preprocess.seed()
    images = [lesion_image(size=96, radius=r, seed=r) for r in (12, 20)]
    fig = plot_stages(config, images, titles=["a", "b"])
    names = ["read", "resize", "seed_contour", "bilateral", "output"]
    assert len(fig.axes) == len(images) * len(names)
    assert [ax.get_title() for ax in fig.axes[: len(names)]] == names
    assert fig.axes[0].get_ylabel() == "a" and fig.axes[len(names)].get_ylabel() == "b"
    for row, img in enumerate(images):
        axes = fig.axes[row * len(names) : (row + 1) * len(names)]
        read = axes[0].get_images()[0]
        assert read.get_array().shape == (96, 96)  # grayscale read, as the config reads
        assert read.get_clim() == (0, 255)  # grey levels not stretched
        out = axes[-1].get_images()[0].get_array()
        np.testing.assert_array_equal(out, config.apply(img)[:, :, 0])
        assert all(isinstance(a.get_images()[0], AxesImage) for a in axes)


def test_stages_colour_pipeline_shows_colour():
    config = Preprocess(steps=(("resize", {"size": 28}),), color=True)
    fig = plot_stages(config, [lesion_image()])
    assert [ax.get_images()[0].get_array().shape for ax in fig.axes] == [(96, 96, 3), (28, 28, 3), (28, 28, 3)]


def test_duplicates_rows_show_each_pair_in_rgb_with_its_score():
    images = {"a": np.full((6, 6, 3), (10, 20, 30), np.uint8), "b": np.full((6, 6, 3), (40, 50, 60), np.uint8),
              "c": np.full((6, 6, 3), (70, 80, 90), np.uint8)}
    pairs = pd.DataFrame({"path_a": ["dir/a", "dir/a", "dir/b"], "path_b": ["dir/b", "dir/c", "dir/c"],
                          "similarity": [1.0, 0.95, 0.9], "kind": ["identical", "near", "near"],
                          "transform": ["", "rot90", "crop 4% of b"]})
    fig = plot_duplicates(pairs, n=2, read=lambda p: images[p.split("/")[-1]])
    assert len(fig.axes) == 4  # two pairs, two images each; the third pair is not shown
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "a", "c"]
    assert fig.axes[0].get_ylabel() == "1.000\nidentical"
    assert fig.axes[2].get_ylabel() == "0.950\nnear, rot90"
    assert tuple(fig.axes[1].get_images()[0].get_array()[0, 0]) == (60, 50, 40)  # BGR shown as RGB


def test_duplicates_empty_table_and_unreadable_files():
    empty = pd.DataFrame(columns=["path_a", "path_b", "similarity", "kind", "transform"])
    fig = plot_duplicates(empty)
    assert fig.axes[0].get_title() == "no duplicate pairs"

    def read(path):
        raise ImageReadError(f"{path}: not a decodable image")

    pairs = pd.DataFrame({"path_a": ["x.jpg"], "path_b": ["y.jpg"], "similarity": [0.9], "kind": ["near"],
                          "transform": [""]})
    fig = plot_duplicates(pairs, read=read)
    assert [ax.get_title() for ax in fig.axes] == ["unreadable", "unreadable"]
    with pytest.raises(ValueError, match="similarity"):
        plot_duplicates(pairs.drop(columns="similarity"))
