"""Figures: training curves, ROC, precision-recall and calibration curves, confusion matrices, images.

Every function builds a :class:`matplotlib.figure.Figure` directly (or draws on the
``ax`` it is given) and returns the figure. Nothing here imports ``pyplot``, so no
global backend is chosen or changed and no figure is kept alive by pyplot's
registry: the functions work the same in a notebook, a script and a headless test.
In a notebook the returned figure displays itself; ``save_figure`` writes it to disk.
Every text a figure draws (file names, run and class names, titles) is plain text, a ``$`` a dollar
sign and an undecodable byte of a file name written ``\\xNN`` (:mod:`skinlib.plotting._text`).

>>> fig = plot_confusion(np.array([[50, 10], [5, 15]]))
>>> save_figure(fig, "runs/sample/figures/confusion.png")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from skinlib.data import LABEL_NAMES
from skinlib.plotting._text import plain_text
from skinlib.preprocessing import filters
from skinlib.evaluation import check_predictions, expected_calibration_error
from skinlib.preprocessing import read_image
from skinlib.preprocessing import Preprocess, output_image

__all__ = [
    "show_image",
    "thumbnail",
    "plot_history",
    "plot_roc",
    "plot_pr",
    "plot_calibration",
    "plot_confusion",
    "plot_confusion_grid",
    "plot_samples",
    "plot_stages",
    "plot_gradcam",
    "save_figure",
]

CLASSES = LABEL_NAMES


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 100) -> Path:
    """Save ``fig`` as a PNG at ``path``, atomically; returns the path.

    The image is written to a temporary file in the same folder and renamed over
    ``path``: an interrupted save leaves the previous file (or none), never a
    truncated PNG that a later report would embed. Missing folders are created.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, saved with ``bbox_inches="tight"``.
    path : str or path-like
        The PNG file to write (replaced if it exists); always written as PNG, whatever its suffix.
    dpi : int
        The resolution, in dots per inch (default 100).

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> save_figure(plot_roc({"cnn": ([0, 1, 1], [0.2, 0.7, 0.9])}), "/tmp/roc.png")  # doctest: +SKIP
    PosixPath('/tmp/roc.png')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its files are private (0600), and a figure should get the
    # usual permissions (0666 less the umask) like any file a user saves.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            # format="png" explicitly: matplotlib cannot tell it from the ".tmp" name.
            fig.savefig(fh, format="png", dpi=dpi, bbox_inches="tight")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure of ``figsize`` inches with one axes.

    Parameters
    ----------
    ax : matplotlib.axes.Axes or None
        Where to draw, or None for a new figure.
    figsize : (float, float)
        The new figure's size in inches.

    Returns
    -------
    (matplotlib.figure.Figure, matplotlib.axes.Axes)

    Examples
    --------
    >>> fig, ax = new_axes(None, (3, 2))
    >>> new_axes(ax, (9, 9)) == (fig, ax)
    True
    """
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


# --------------------------------------------------------------------------- training


def _history_frame(history: Any) -> pd.DataFrame:
    # Accept a Keras History (its .history dict), a dict of lists or a DataFrame.
    df = pd.DataFrame(getattr(history, "history", history))
    if "epoch" not in df.columns:
        df = df.assign(epoch=np.arange(1, len(df) + 1))
    return df


def _history_paths(path: str | os.PathLike, metrics: Sequence[str], suffix: str) -> dict[str, Path]:
    path = Path(path)
    if path.suffix.lower() == ".png":  # a file name stem: runs/v1/history.png -> history_accuracy.png
        return {m: path.with_name(f"{path.stem}_{m}{suffix}.png") for m in metrics}
    return {m: path / f"{m}{suffix}.png" for m in metrics}


def plot_history(
    history: Any,
    path: str | os.PathLike | None = None,
    metrics: Sequence[str] = ("accuracy", "loss", "auc"),
    *,
    baseline: float | None = None,
    suffix: str = "",
    dpi: int = 100,
) -> dict[str, Figure]:
    """One figure per metric: its training and validation value by epoch.

    ``history`` has one row per epoch: a column ``epoch`` (1-based; numbered from 1
    when absent) and, for each metric ``m``, columns ``m`` and ``val_m`` (a Keras
    ``History`` or its ``.history`` dict works too). Metrics with neither column are
    skipped. Titles and labels follow the original project's figures: "Model
    accuracy", x "epoch", y "accuracy", legend "train" / "validation".

    ``baseline`` draws the accuracy of always answering the majority class as a
    dashed line on the accuracy figure (label "always benign"): an accuracy at that
    line means the model learned nothing.

    With ``path``, each figure is also saved (atomically) as a PNG: in the folder
    ``path`` as ``<metric><suffix>.png``, or, when ``path`` ends in ``.png``, beside
    it as ``<stem>_<metric><suffix>.png``. ``suffix="_2"`` gives the original's
    second-run names ``accuracy_2.png``, ``loss_2.png``.

    Parameters
    ----------
    history : pandas.DataFrame, dict or keras.callbacks.History
        The metrics by epoch, as above.
    path : str or path-like, optional
        A folder, or a ``.png`` file name whose stem and folder name the files; the
        default None saves nothing.
    metrics : sequence of str
        The metrics to draw, one figure each, in this order (default ``("accuracy", "loss", "auc")``).
    baseline : float, optional
        The majority-class accuracy drawn on the accuracy figure; None draws no line.
    suffix : str
        Added to each saved file's name before ``.png`` (default ``""``).
    dpi : int
        The resolution of the saved PNGs, in dots per inch (default 100).

    Returns
    -------
    dict of str to matplotlib.figure.Figure
        One figure per metric drawn, keyed by the metric's name, in the order of ``metrics``.

    Examples
    --------
    >>> h = pd.DataFrame({"epoch": [1, 2], "accuracy": [0.7, 0.8], "val_accuracy": [0.7, 0.75]})
    >>> figs = plot_history(h, baseline=0.75)
    >>> list(figs)
    ['accuracy']
    """
    df = _history_frame(history)
    epochs = df["epoch"].to_numpy()
    # Markers only when there are few epochs: a single-epoch line is otherwise invisible.
    marker = "o" if len(df) <= 20 else None
    figures: dict[str, Figure] = {}
    for m in metrics:
        columns = [(c, label) for c, label in ((m, "train"), (f"val_{m}", "validation")) if c in df.columns]
        if not columns:
            continue
        fig, ax = new_axes(None, (6, 4))
        for column, label in columns:
            ax.plot(epochs, df[column].to_numpy(dtype=float), marker=marker, markersize=3, label=label)
        if m == "accuracy" and baseline is not None:
            ax.axhline(float(baseline), color="grey", linestyle="--", linewidth=1, label="always benign")
        ax.set_title(f"Model {'AUC' if m == 'auc' else m}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(m)
        ax.legend(loc="best")
        figures[m] = plain_text(fig)
    if path is not None:
        for m, p in _history_paths(path, list(figures), suffix).items():
            save_figure(figures[m], p, dpi=dpi)
    return figures


# --------------------------------------------------------------------------- evaluation


def _curve_data(name: str, data: tuple[Any, Any]) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_prob = (np.asarray(a).ravel() for a in data)
    if len(y_true) != len(y_prob):
        raise ValueError(f"curve {name!r}: {len(y_true)} labels but {len(y_prob)} probabilities")
    if len(np.unique(y_true)) != 2:
        raise ValueError(f"curve {name!r}: y_true needs both classes (0 and 1) for a curve; got {np.unique(y_true)}")
    return y_true, y_prob


def plot_roc(
    curves: Mapping[str, tuple[Any, Any]], ax: Axes | None = None, *, title: str = "ROC curve"
) -> Figure:
    """ROC curves of several models on one axes, each labelled with its AUC.

    ``curves`` maps a name to ``(y_true, y_prob)``: labels 0/1 and the predicted
    probability of class 1 (malignant). The dashed diagonal is a classifier that
    guesses (AUC 0.5).

    Parameters
    ----------
    curves : mapping of str to (array-like, array-like)
        A curve's legend name to its ``(y_true, y_prob)``: labels 0/1 (both present) and as
        many predicted probabilities of malignancy (or any score).
    ax : matplotlib.axes.Axes, optional
        Draw on it; the default None draws on a new 5 x 5 inch figure.
    title : str
        The axes' title (default ``"ROC curve"``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (``ax``'s, when given).

    Raises
    ------
    ValueError
        When a curve's labels and probabilities differ in length, or its labels are not two classes.

    Examples
    --------
    >>> fig = plot_roc({"v1": ([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])})
    >>> fig.axes[0].get_legend().get_texts()[0].get_text()
    'v1 (AUC = 0.750)'
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = new_axes(ax, (5, 5))
    for name, data in curves.items():
        y_true, y_prob = _curve_data(name, data)
        fpr, tpr, _ = roc_curve(y_true, y_prob)
        ax.plot(fpr, tpr, label=f"{name} (AUC = {roc_auc_score(y_true, y_prob):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return plain_text(ax)


def plot_pr(
    curves: Mapping[str, tuple[Any, Any]], ax: Axes | None = None, *, title: str = "Precision-recall curve"
) -> Figure:
    """Precision-recall curves on one axes, each labelled with its average precision.

    The dashed horizontal line is the prevalence (share of malignant images): the
    precision of a classifier that guesses. With imbalanced classes it says more
    than the ROC diagonal. Curves with different label sets each get their line.

    Parameters
    ----------
    curves : mapping of str to (array-like, array-like)
        A curve's legend name to its ``(y_true, y_prob)``: labels 0/1 (both present) and as
        many predicted probabilities of malignancy (or any score).
    ax : matplotlib.axes.Axes, optional
        Draw on it; the default None draws on a new 5 x 5 inch figure.
    title : str
        The axes' title (default ``"Precision-recall curve"``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (``ax``'s, when given).

    Raises
    ------
    ValueError
        When a curve's labels and probabilities differ in length, or its labels are not two classes.

    Examples
    --------
    >>> fig = plot_pr({"v1": ([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])})
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['v1 (AP = 0.833)', 'prevalence (0.500)']
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig, ax = new_axes(ax, (5, 5))
    prevalences: dict[float, list[str]] = {}
    for name, data in curves.items():
        y_true, y_prob = _curve_data(name, data)
        precision, recall, _ = precision_recall_curve(y_true, y_prob)
        ap = average_precision_score(y_true, y_prob)
        # Steps, as average precision sums them: straight lines would overstate it.
        ax.plot(recall, precision, drawstyle="steps-post", label=f"{name} (AP = {ap:.3f})")
        prevalences.setdefault(round(float(np.mean(y_true == 1)), 6), []).append(name)
    for p, names in prevalences.items():
        label = f"prevalence ({p:.3f})" if len(prevalences) == 1 else f"prevalence, {', '.join(names)} ({p:.3f})"
        ax.axhline(p, color="grey", linestyle="--", linewidth=1, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.legend(loc="lower left")
    return plain_text(ax)


def plot_calibration(
    y_true: Any,
    probs: Any,
    *,
    n_bins: int = 10,
    ax: Axes | None = None,
    strategy: str = "uniform",
    title: str = "Reliability diagram",
) -> Figure:
    """Reliability diagram: observed share of malignant images against predicted probability.

    ``probs`` is one array of probabilities for the labels ``y_true`` (0/1), or a
    dict mapping a name to one, e.g. ``{"before": p, "after temperature scaling":
    q}``: one line with markers per entry, its points those of
    ``sklearn.calibration.calibration_curve`` (``n_bins`` bins, ``strategy``
    ``"uniform"`` for equal widths or ``"quantile"`` for equal counts; empty bins
    are skipped). A calibrated model follows the dashed diagonal; a point below it
    overstates the risk of malignancy, above it understates it (an overconfident
    model draws a flat S: above on the left, below on the right). Each legend entry carries the curve's
    expected calibration error over ``n_bins`` equal-width bins (whatever the
    ``strategy``), see :func:`skinlib.evaluation.expected_calibration_error`.

    Without ``ax``, a histogram of the predicted probabilities (``n_bins`` equal
    bins) is drawn on a second, smaller axes below: it shows which points rest on
    many images. With ``ax``, only the diagram is drawn, on ``ax``.

    Parameters
    ----------
    y_true : array-like
        Labels, 0 (benign) or 1 (malignant), one per image.
    probs : array-like or mapping of str to array-like
        Predicted probabilities of malignancy, in [0, 1], as many as ``y_true``; or a name
        for each curve to its probabilities (one array gives one curve without a name).
    n_bins : int
        The number of bins of the curves, the ECE and the histogram (default 10).
    ax : matplotlib.axes.Axes, optional
        Draw the diagram on it, without the histogram; the default None draws on a new
        figure.
    strategy : {"uniform", "quantile"}
        How the curves' bins are cut: equal widths (the default) or equal counts.
    title : str
        The diagram's title (default ``"Reliability diagram"``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (``ax``'s, when given).

    Raises
    ------
    ValueError
        When ``strategy`` is neither, ``probs`` is an empty mapping, or an array of
        probabilities fails :func:`skinlib.evaluation.check_predictions` (the message then
        names its entry).

    Examples
    --------
    >>> fig = plot_calibration([0, 0, 1, 1], {"v1": [0.1, 0.3, 0.6, 0.8]}, n_bins=2)
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['v1 (ECE 0.250)', 'perfectly calibrated']
    """
    from sklearn.calibration import calibration_curve

    if strategy not in ("uniform", "quantile"):
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    curves = dict(probs) if isinstance(probs, Mapping) else {"": probs}
    if not curves:
        raise ValueError("probs is an empty dict; expected at least one array of probabilities")
    checked = {}
    for name, p in curves.items():
        try:
            checked[name] = check_predictions(y_true, p)
        except ValueError as exc:
            raise ValueError(f"probs[{name!r}]: {exc}" if name else str(exc)) from None

    if ax is None:
        fig = Figure(figsize=(5, 6.5), layout="constrained")
        ax, hist_ax = fig.subplots(2, 1, gridspec_kw={"height_ratios": (3, 1)})
    else:
        fig, hist_ax = ax.figure, None
    for name, (yt, p) in checked.items():
        ece = expected_calibration_error(yt, p, n_bins=n_bins)
        observed, predicted = calibration_curve(yt, p, n_bins=n_bins, strategy=strategy, pos_label=1)
        label = f"{name} (ECE {ece:.3f})" if name else f"ECE {ece:.3f}"
        (line,) = ax.plot(predicted, observed, marker="o", markersize=4, label=label)
        if hist_ax is not None:
            hist_ax.hist(p, bins=np.linspace(0, 1, n_bins + 1), histtype="step", color=line.get_color(), label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed fraction malignant")
    ax.set_title(title)
    ax.legend(loc="upper left")
    if hist_ax is not None:
        hist_ax.set_xlim(0, 1)
        hist_ax.set_xlabel("predicted probability")
        hist_ax.set_ylabel("images")
    return plain_text(ax if hist_ax is None else fig)


def plot_confusion(
    cm: Any,
    labels: Sequence[str] = CLASSES,
    ax: Axes | None = None,
    title: str | None = None,
    *,
    cmap: str = "Blues",
) -> Figure:
    """A confusion matrix with the count and the row percentage in each cell.

    ``cm[i, j]`` counts images of true class ``i`` predicted as ``j`` (as
    ``sklearn.metrics.confusion_matrix`` returns it). Row percentages are the
    share of each true class: for the malignant row, sensitivity and the miss
    rate. Each cell holds two texts, the count (gid ``"count"``) and the
    percentage (gid ``"percent"``). Cells are coloured by their row percentage.

    Parameters
    ----------
    cm : array-like
        A square matrix of counts, none negative.
    labels : sequence of str
        The class names, one per row, shown on both axes (default ``("benign", "malignant")``).
    ax : matplotlib.axes.Axes, optional
        Draw on it; the default None draws on a new 4 x 3.6 inch figure.
    title : str, optional
        The axes' title; the default None (or ``""``) sets none.
    cmap : str
        The matplotlib colormap of the cells, from a row share of 0 to 1 (default ``"Blues"``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on (``ax``'s, when given).

    Raises
    ------
    ValueError
        When ``cm`` is not square, has negative entries, or ``labels`` does not have one
        name per row.

    Examples
    --------
    >>> fig = plot_confusion(np.array([[50, 10], [5, 15]]), title="v1, test")
    >>> sorted(t.get_text() for t in fig.axes[0].texts if t.get_gid() == "count")
    ['10', '15', '5', '50']
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square matrix, got shape {cm.shape}")
    if len(labels) != cm.shape[0]:
        raise ValueError(f"{len(labels)} labels for a {cm.shape[0]}x{cm.shape[0]} matrix")
    if (cm < 0).any():
        raise ValueError("cm holds counts; it has negative entries")
    fig, ax = new_axes(ax, (4, 3.6))
    totals = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(totals > 0, cm / totals, np.nan)
    # Colour by row share, not count: with imbalanced classes counts make the
    # minority row look empty whatever the model does.
    ax.imshow(np.nan_to_num(share), cmap=cmap, vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            colour = "white" if np.nan_to_num(share[i, j]) > 0.5 else "black"
            count = cm[i, j]
            text = f"{count:g}" if np.issubdtype(cm.dtype, np.floating) else str(int(count))
            ax.text(j, i - 0.08, text, ha="center", va="center", color=colour, fontsize=13, gid="count")
            pct = "-" if np.isnan(share[i, j]) else f"{100 * share[i, j]:.1f}%"
            ax.text(j, i + 0.22, pct, ha="center", va="center", color=colour, fontsize=9, gid="percent")
    ticks = np.arange(cm.shape[0])
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    return plain_text(ax)


# --------------------------------------------------------------------------- images



def plot_confusion_grid(table: pd.DataFrame, *, columns: int = 4) -> Figure:
    """One confusion matrix per run of a comparison table, side by side.

    Parameters
    ----------
    table : pandas.DataFrame
        A :func:`skinlib.compare` table: one row per run with ``tn``, ``fp``, ``fn``, ``tp``.
    columns : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> table = pd.DataFrame({"tn": [50, 40], "fp": [10, 20], "fn": [5, 2], "tp": [15, 18]}, index=["v1", "v2"])
    >>> [ax.get_title() for ax in plot_confusion_grid(table).axes]
    ['v1', 'v2']
    """
    missing = [c for c in ("tn", "fp", "fn", "tp") if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks column(s) {missing}; expected a skinlib.compare table")
    if len(table) == 0:
        raise ValueError("table has no runs")
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    rows, cols = -(-len(table) // columns), min(len(table), columns)
    fig = Figure(figsize=(4 * cols, 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(table):]:
        ax.remove()
    for ax, (name, row) in zip(axes, table.iterrows()):
        plot_confusion([[row["tn"], row["fp"]], [row["fn"], row["tp"]]], ax=ax, title=str(name))
    return plain_text(fig)

def show_image(ax: Axes, img: np.ndarray | None) -> None:
    """Draw a uint8 image on ``ax`` without rescaling its grey levels, without ticks or frame.

    The image is gray, or BGR as OpenCV gives it; ``None`` leaves an empty panel. Gray
    levels are drawn from 0 (black) to 255 (white), pixels as squares (nearest neighbour).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    img : numpy.ndarray or None
        A ``(H, W)`` or ``(H, W, 1)`` gray image, or a ``(H, W, 3)`` BGR one (a fourth,
        alpha channel is dropped); None draws no image.
    """
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if img is None:
        return
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    # Nearest neighbour: a 28x28 input should look like 28x28 pixels, not a blur.
    if img.ndim == 2:
        # Fixed 0..255: imshow would otherwise stretch each image's contrast and
        # hide what a step did to the grey levels.
        ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(img[:, :, 2::-1], interpolation="nearest")  # BGR(A) -> RGB


def plot_samples(
    df: pd.DataFrame,
    n: int = 4,
    seed: int = 0,
    read: Callable[[str], np.ndarray] | None = None,
    *,
    classes: Sequence[str] = CLASSES,
) -> Figure:
    """A grid of ``n`` randomly chosen images per class: one row per class.

    ``df`` is a dataset table with ``path`` and ``label`` (0 benign, 1 malignant)
    columns, as :func:`skinlib.load_dataset` returns. Images are read in colour with
    ``read`` (default :func:`skinlib.read_image` with ``color=True``) and shown in
    RGB. The same ``seed`` picks the same images. A class with fewer than ``n``
    images leaves blank cells; a file that cannot be read is a blank cell titled
    "unreadable". Each row is labelled with its class name and the class's number of images.

    Parameters
    ----------
    df : pandas.DataFrame
        The dataset table.
    n : int
        Images per class, at least 1 (default 4).
    seed : int
        Seeds the choice of images (default 0).
    read : callable, optional
        Reads a path to a uint8 array (default :func:`skinlib.read_image` in colour, BGR).
    classes : sequence of str
        The row names: row ``k`` shows images whose ``label`` is ``k`` or this name
        (default ``("benign", "malignant")``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_samples(skinlib.load_dataset(skinlib.sample_dir()), n=4)  # doctest: +SKIP
    """
    missing = {"path", "label"} - set(df.columns)
    if missing:
        raise ValueError(f"df lacks column(s) {sorted(missing)}; expected the table from load_dataset")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    read = read or (lambda p: read_image(p, color=True))
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(1.8 * n, 1.9 * len(classes)), layout="constrained")
    axes = fig.subplots(len(classes), n, squeeze=False)
    labels = df["label"].to_numpy()
    for k, name in enumerate(classes):
        idx = np.flatnonzero((labels == k) | (labels.astype(str) == name))
        chosen = np.sort(rng.choice(idx, size=min(n, len(idx)), replace=False)) if len(idx) else []
        for j, ax in enumerate(axes[k]):
            img = None
            if j < len(chosen):
                path = str(df["path"].iloc[chosen[j]])
                try:
                    img = read(path)
                except (OSError, ValueError):  # ImageReadError is a ValueError
                    ax.set_title("unreadable", fontsize=8)
            show_image(ax, img)
        axes[k, 0].set_ylabel(f"{name} ({len(idx)})")
    return plain_text(fig)


def thumbnail(img: np.ndarray, side: int) -> np.ndarray:
    """``img`` shrunk (area averaging) so that its longer side is at most ``side``.

    A figure of full-size photographs would weigh megabytes and show no more.

    Parameters
    ----------
    img : numpy.ndarray
        An image, ``(H, W)`` or ``(H, W, C)``.
    side : int
        The longest side allowed, in pixels.

    Returns
    -------
    numpy.ndarray
        ``img`` itself when its longer side is at most ``side``; else a resized copy, its
        aspect ratio kept (each side rounded, at least 1 pixel).
    """
    import cv2

    h, w = img.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _stage_images(config: Preprocess, img: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(name, image)`` after reading and after each step, then ``("output", input to the model)``.

    Runs the steps once and finishes as :meth:`Preprocess.apply` does, so the last
    image is exactly what ``config.apply(img)`` returns (as a 2-D image if gray).
    """
    if not config.color and img.ndim == 3:
        img = filters.to_gray(img)  # what read(gray) would have given
    stages = list(config.stages(img))
    return stages + [("output", output_image(config, stages[-1][1]))]


def plot_stages(config: Preprocess, images: Sequence[np.ndarray], titles: Sequence[str] | None = None) -> Figure:
    """Before/after grid of a preprocessing pipeline: one row per image, one column per stage.

    Columns are ``read`` (the image as the config reads it: grayscale unless
    ``config.color``), one per step of ``config`` titled with the step's name, and
    ``output``, the model's input (as :meth:`Preprocess.apply` returns it).
    ``images`` are decoded uint8 images (grayscale or BGR); ``titles`` label the
    rows. Grey levels are shown as they are (0 black, 255 white), small images
    with visible pixels.

    Parameters
    ----------
    config : Preprocess
        The preprocessing pipeline.
    images : sequence of numpy.ndarray
        At least one decoded image; a colour image goes to gray first when the pipeline
        reads grayscale.
    titles : sequence of str, optional
        One label per image, shown left of its row; the default None labels no row.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When ``images`` is empty or ``titles`` does not have one label per image.

    Examples
    --------
    >>> fig = plot_stages(Preprocess.seed(), [read_image(p, color=True) for p in paths[:3]])  # doctest: +SKIP
    """
    images = list(images)
    if not images:
        raise ValueError("plot_stages needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    rows = [_stage_images(config, np.asarray(img)) for img in images]
    ncols = len(rows[0])
    fig = Figure(figsize=(1.7 * ncols, 1.8 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for i, stages in enumerate(rows):
        for j, (name, img) in enumerate(stages):
            show_image(axes[i, j], img)
            if i == 0:
                axes[i, j].set_title(name, fontsize=9)
        if titles is not None:
            axes[i, 0].set_ylabel(str(titles[i]), fontsize=8)
    return plain_text(fig)


# --------------------------------------------------------------------------- explanations


def _cropped_view(config: Preprocess, path: str | os.PathLike) -> np.ndarray:
    """The image as the pipeline's last ``crop_to_lesion`` step left it: the region the model saw."""
    img = read_image(path, color=config.color, min_side=config.decode_min_side)
    shown = img
    for name, out in config.stages(img):
        if name == "crop_to_lesion":
            shown = out
    return shown


def plot_gradcam(
    run: str | os.PathLike,
    images: str | os.PathLike | Sequence[str | os.PathLike] | pd.DataFrame,
    *,
    metadata: Any = None,
    method: str | None = None,
    alpha: float = 0.45,
    titles: Sequence[str] | None = None,
    ncols: int = 4,
) -> Figure:
    """Where a run's model looks: a heat map over each image, titled with its probability.

    ``run`` is a run folder (read with :func:`skinlib.load_run`: its ``model.keras``,
    and the ``preprocess`` and ``faithful`` entries of its ``config.json``). Each file
    of ``images`` goes through the run's :class:`Preprocess` and pixel scaling, as
    :func:`skinlib.predict` does, and is explained with ``method``:

    - ``"gradcam"`` (:func:`skinlib.models.gradcam`; the default when the model's
      input is 32 pixels or more, e.g. v3's 64x64): where the evidence for
      "malignant" is, 0 to 1 per image, colormap ``"jet"``;
    - ``"occlusion"`` (:func:`skinlib.models.occlusion_map`; the default for the
      28x28 models v1 and v2, too small for a useful Grad-CAM grid): the drop in
      probability when a region is hidden, colormap ``"RdBu_r"`` centred at 0 (red:
      the region supported "malignant", blue: "benign") on one symmetric scale for
      all panels, so they compare.

    The map covers the whole image the model's input was made from; it is stretched
    back to that image's resolution (the pipeline's resize stretched it the other
    way) and drawn over it with transparency ``alpha``. That image is the file, read
    in colour at full size, or, when the pipeline has a ``crop_to_lesion`` step, the
    cropped region as that step left it (grayscale if the pipeline reads grayscale):
    the model never saw the rest. Each panel is titled with the file name (or
    ``titles[i]``) and ``p=``, the run's probability for the image, as
    :func:`skinlib.predict` gives it (with the run's test-time augmentation and
    temperature). ``images`` may be a table with a ``path`` column (from
    :func:`skinlib.load_dataset`): for a run trained with metadata, its metadata
    columns are encoded as the run stored; or pass ``metadata`` ``(N, k)``, already
    encoded, one row per image. Images larger than 512 pixels are shown shrunk to
    512. A file that cannot be read raises :class:`skinlib.ImageReadError` naming it.

    Parameters
    ----------
    run : str or path-like
        The run folder.
    images : path, sequence of paths, or pandas.DataFrame
        The image files, or a table with a ``path`` column.
    metadata : array-like, optional
        Encoded metadata ``(N, k)``, one row per image, instead of a table's columns.
    method : {"gradcam", "occlusion", None}
        The explanation; the default None picks by the model's input size, as above.
    alpha : float
        The heat map's opacity, from 0 (invisible) to 1 (opaque) (default 0.45).
    titles : sequence of str, optional
        One title per image, instead of the file names.
    ncols : int
        Panels per row, at least 1 (default 4).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per image, and a colour bar of the maps' scale.

    Examples
    --------
    >>> fig = plot_gradcam("runs/sample/v2", ["lesion1.jpg", "lesion2.jpg"])  # doctest: +SKIP
    """
    if titles is not None and not isinstance(images, pd.DataFrame):
        count = 1 if isinstance(images, (str, os.PathLike)) else len(images)
        if len(titles) != count:
            raise ValueError(f"{len(titles)} titles for {count} images")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if ncols < 1:
        raise ValueError(f"ncols must be at least 1, got {ncols}")
    # TensorFlow loads here, on first use, not when skinlib.plotting._plots is imported.
    from skinlib.models import explain_run

    explained = explain_run(run, images, metadata=metadata, method=method)
    if titles is not None and len(titles) != len(explained.paths):
        raise ValueError(f"{len(titles)} titles for {len(explained.paths)} images")
    return _draw_heat_maps(explained, alpha=alpha, titles=titles, ncols=ncols)


def _heat_map_scale(explained) -> tuple[str, Any, str]:
    """Colormap, normalisation and colour-bar label of Grad-CAM (0 to 1) or occlusion maps (signed)."""
    from matplotlib.colors import Normalize

    if explained.method == "gradcam":
        return "jet", Normalize(0.0, 1.0), "Grad-CAM (0 to 1 per image)"
    lim = float(np.abs(explained.maps).max()) or 1e-3
    return "RdBu_r", Normalize(-lim, lim), "drop in p when hidden"


def _shown_image(preprocess: Preprocess, path: Path) -> np.ndarray:
    """What a heat map is drawn over: the file (or the crop the model saw), at most 512 pixels."""
    crop = "crop_to_lesion" in preprocess.step_names()
    shown = _cropped_view(preprocess, path) if crop else read_image(path, color=True)
    return thumbnail(shown, 512)  # a 6000x4000 photograph needs no more on a 2.6-inch panel


def _draw_heat_maps(explained, *, alpha: float, titles: Sequence[str] | None, ncols: int) -> Figure:
    import cv2
    from matplotlib.cm import ScalarMappable

    cmap, norm, label = _heat_map_scale(explained)
    paths = explained.paths
    rows, cols = -(-len(paths) // ncols), min(ncols, len(paths))
    fig = Figure(figsize=(2.6 * cols + 0.9, 2.8 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(paths) :]:
        ax.remove()
    panels = list(axes[: len(paths)])
    for i, (ax, path) in enumerate(zip(panels, paths)):
        shown = _shown_image(explained.preprocess, path)
        h, w = shown.shape[:2]
        show_image(ax, shown)
        heat = cv2.resize(explained.maps[i], (w, h), interpolation=cv2.INTER_LINEAR)
        ax.imshow(heat, cmap=cmap, norm=norm, alpha=alpha, gid="heatmap")
        name = path.name if titles is None else str(titles[i])
        ax.set_title(f"{name}\np={explained.probabilities[i]:.2f}", fontsize=8)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=panels, shrink=0.8, label=label)
    return plain_text(fig)
