"""skinlib.plotting: every text a figure draws from data is plain text. A "$" in a file name, a
diagnosis or a group is a dollar sign, never mathtext (which fails to draw, or draws another text),
and a file name that is not valid UTF-8 is drawn with its undecodable bytes written out (``\\xff``)."""

import io
import os
import re
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")  # headless: before anything imports pyplot

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import skinlib.models  # noqa: E402
from conftest import lesion_image, write_jpeg  # noqa: E402
from skinlib import Preprocess  # noqa: E402
from skinlib.plotting import (  # noqa: E402
    display_text,
    plot_calibration,
    plot_confusion,
    plot_confusion_grid,
    plot_diagnoses,
    plot_duplicates,
    plot_gradcam,
    plot_history,
    plot_label_issues,
    plot_operating_points,
    plot_pairs,
    plot_pr,
    plot_quality_issues,
    plot_roc,
    plot_samples,
    plot_stages,
    plot_subgroups,
)

#: Names matplotlib would read as mathtext (valid or not), and names that are not valid UTF-8.
NAMES = ["a$x$b.jpg", "$\\frac{1$.jpg", "50$ and 60$.jpg", "x$^^$", os.fsdecode(b"bad\xff.jpg"),
         os.fsdecode(b"caf\xe9 $x$.jpg")]
SURROGATE = re.compile("[\ud800-\udfff]")


def shown(name: str) -> str:
    """The name as it should be drawn: undecodable bytes written as Python writes them."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def blank(path) -> np.ndarray:
    return np.zeros((8, 8, 3), np.uint8)


def drawn_texts(fig: Figure) -> list[Text]:
    """Draw ``fig`` to a PNG (it must draw) and return its visible texts."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    assert buffer.getvalue().startswith(b"\x89PNG")
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def assert_plain(fig: Figure, names=NAMES) -> list[Text]:
    """Each name is drawn, literally, in a text read as plain text; no text holds a surrogate."""
    texts = drawn_texts(fig)
    for name in names:
        hits = [t for t in texts if shown(name) in t.get_text()]
        assert hits, (name, [t.get_text() for t in texts])
        assert not any(t.get_parse_math() for t in hits), name
    assert not [t.get_text() for t in texts if SURROGATE.search(t.get_text())]
    return texts


def test_display_text_writes_undecodable_bytes_out_and_leaves_other_text_alone():
    for name in NAMES:
        assert display_text(name) == shown(name)
        assert display_text(display_text(name)) == display_text(name)
        display_text(name).encode("utf-8")  # always encodable
    assert display_text(os.fsdecode(b"\xff\xfe.jpg")) == "\\xff\\xfe.jpg"
    assert display_text("lone \ud800 high") == "lone \\ud800 high"
    assert display_text("<b>$x$</b> café") == "<b>$x$</b> café"
    assert display_text(0.5) == "0.5" and display_text(None) == "None"


def pairs(names) -> pd.DataFrame:
    return pd.DataFrame({"path_a": [f"/d/{n}" for n in names], "path_b": [f"/e/{n}" for n in reversed(names)],
                         "similarity": 0.9, "kind": "near $k$", "transform": "flip $t$", "evidence": "same $e$"})


def test_pair_and_duplicate_figures_draw_file_names_as_text():
    assert_plain(plot_pairs(pairs(NAMES), n=len(NAMES), read=blank), NAMES + ["near $k$", "same $e$"])
    assert_plain(plot_duplicates(pairs(NAMES), n=len(NAMES), read=blank), NAMES + ["near $k$, flip $t$"])


def test_label_and_quality_figures_draw_names_labels_and_diagnoses_as_text():
    issues = pd.DataFrame({"rank": range(1, len(NAMES) + 1), "path": NAMES, "given": "$g$", "probability": 0.9,
                           "flagged": True, "dx": [f"dx {n}" for n in NAMES]})
    texts = assert_plain(plot_label_issues(issues, n=len(NAMES), read=blank), ["$g$", *NAMES])
    assert any(t.get_text().startswith("#1 given $g$ (dx a$x$b.jpg)") for t in texts)
    quality = pd.DataFrame({"path": [f"/d/{n}" for n in NAMES], "issue": ["$dark$", "blur$r$y"] * 3, "score": 0.1})
    assert_plain(plot_quality_issues(quality, n=3, read=blank), NAMES + ["$dark$", "blur$r$y"])


def test_error_analysis_figures_draw_diagnoses_groups_and_points_as_text():
    n = len(NAMES)
    diagnoses = pd.DataFrame({"diagnosis": NAMES, "class": ["malignant", "benign"] * 3, "n": 30,
                              "metric": ["sensitivity", "specificity"] * 3, "value": 0.7, "low": 0.5, "high": 0.8,
                              "roc_auc": 0.8, "roc_auc_low": 0.7, "roc_auc_high": 0.9})
    fig = plot_diagnoses(diagnoses)
    assert_plain(fig)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][0] == "a$x$b.jpg (mal., n=30)"
    subgroups = pd.DataFrame({"feature": ["all"] + ["$site$"] * n, "group": ["all", *NAMES], "n": 20,
                              "n_malignant": 5, "roc_auc": 0.8, "roc_auc_low": 0.7, "roc_auc_high": 0.9})
    fig = plot_subgroups(subgroups, metrics=["roc_auc"])
    assert_plain(fig)
    assert "$site$: a$x$b.jpg (n=20, 5 mal.)" in [t.get_text() for t in fig.axes[0].get_yticklabels()]
    points = pd.DataFrame({"threshold": [0.5, 0.3], "sensitivity": [0.8, 0.9], "specificity": [0.7, 0.6]},
                          index=[NAMES[0], NAMES[4]])
    assert_plain(plot_operating_points([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9], points),
                 [NAMES[0], NAMES[4]])


def test_curves_name_their_runs_as_text_and_leave_a_users_other_axes_alone():
    y, p = [0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9]
    curves = {name: (y, p) for name in NAMES}
    assert_plain(plot_roc(curves, title="$\\frac{1$ roc"), NAMES + ["$\\frac{1$ roc"])
    assert_plain(plot_pr(curves))
    assert_plain(plot_calibration(y, {name: p for name in NAMES}, n_bins=2))
    # On a user's axes: what skinlib drew there is plain; the user's mathtext elsewhere is theirs.
    fig = Figure()
    mine, theirs = fig.subplots(1, 2)
    theirs.set_title("$\\alpha$")
    plot_roc(curves, ax=mine)
    assert_plain(fig)
    assert theirs.title.get_parse_math() and not mine.title.get_parse_math()


def test_confusion_matrices_and_history_draw_names_as_text():
    assert_plain(plot_confusion([[3, 1], [0, 2]], labels=NAMES[:2], title=NAMES[4]), [*NAMES[:2], NAMES[4]])
    table = pd.DataFrame({"tn": 5, "fp": 1, "fn": 1, "tp": 3}, index=NAMES)
    assert_plain(plot_confusion_grid(table, columns=3))
    history = pd.DataFrame({"a$x$b": [0.5, 0.6], "val_a$x$b": [0.4, 0.5]})
    assert_plain(plot_history(history, metrics=["a$x$b"])["a$x$b"], ["a$x$b"])


def test_image_grids_draw_class_names_and_titles_as_text(tmp_path, monkeypatch):
    df = pd.DataFrame({"path": ["a.jpg", "b.jpg"], "label": [0, 1]})
    assert_plain(plot_samples(df, n=1, read=blank, classes=NAMES[4:]), NAMES[4:])
    images = [lesion_image(size=32, seed=i) for i in range(2)]
    assert_plain(plot_stages(Preprocess.default(), images, titles=NAMES[:2]), NAMES[:2])
    # Grad-CAM panels are titled with their file names.
    paths = [write_jpeg(tmp_path / name, lesion_image(size=32, seed=i)) for i, name in enumerate(NAMES[3:5])]
    # What explain_run gives, without a model (nor TensorFlow): set in the module's dict, so that
    # the lazily loaded real function is never imported.
    explained = SimpleNamespace(paths=paths, maps=np.zeros((2, 4, 4), np.float32), probabilities=np.array([0.2, 0.9]),
                                method="gradcam", preprocess=Preprocess.default())
    monkeypatch.setitem(vars(skinlib.models), "explain_run", lambda *args, **kwargs: explained)
    assert_plain(plot_gradcam(tmp_path / "run", paths), NAMES[3:5])
