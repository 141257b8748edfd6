"""Dataset loading in the public download layouts, grouped splits, class balance.

:func:`load_dataset` turns a dataset (a folder in one of the layouts of
:data:`skinlib.data.LAYOUTS`, a DermaMNIST ``.npz`` file or any CSV of image
names and labels) into a table, one row per image. It only reads: nothing under
the dataset folder is ever written, moved or deleted. The layouts' loaders are in
:mod:`skinlib.data._layouts`, the checks they share in :mod:`skinlib.data._reading`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib.data._layouts import LAYOUT_RECORDS, LAYOUTS, detect_layouts, load_layout
from skinlib.data._reading import DatasetError, require_regular_file

__all__ = [
    "load_dataset",
    "split_dataset",
    "undersample",
    "class_weights",
    "source_split",
]


def _unknown_layout(root: Path) -> DatasetError:
    known = "\n".join(f"  - {k}: {v}" for k, v in LAYOUTS.items())
    return DatasetError(f"{root}: not a dataset in a supported layout. Supported layouts:\n{known}")


def load_dataset(
    path: str | os.PathLike,
    layout: str | None = None,
    *,
    image_column: str | None = None,
    label_column: str | None = None,
    group_column: str | None = None,
    malignant=None,
    benign=None,
    metadata: dict[str, str] | None = None,
    missing_images: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Load a dermoscopy dataset as a table, one row per usable image.

    Parameters
    ----------
    path
        A dataset folder in one of the layouts of :data:`skinlib.data.LAYOUTS`
        (ISIC 2020, HAM10000, ISIC 2019, ISIC 2018 task 3, PAD-UFES-20, class
        folders), recognised by its files (:func:`skinlib.data.detect_layouts`);
        a DermaMNIST ``.npz`` file or a folder holding one; a layout's own label
        file (its folder is read); or, with ``image_column`` and ``label_column``,
        any CSV file of image names and labels (or a folder holding one CSV).
    layout
        Force a layout by name, when a folder matches two (HAM10000 and ISIC 2018
        side by side, say: an error without it) or to read a CSV as ``"csv"``.
    image_column, label_column, group_column, malignant, benign, metadata, missing_images
        The ``csv`` layout's options (giving one implies it): see
        :func:`skinlib.data.load_csv`.
    cache_dir
        DermaMNIST only: the folder under which its images are written once as PNG
        files (default: the project's ``data/dermamnist/``; never beside the
        ``.npz`` unless this says so). See :func:`skinlib.data.materialise`.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``label`` (0 benign, 1 malignant), ``group`` (patient or lesion id
        where the layout has one, else an image id: images of one group must stay in
        one fold), ``source_split`` (the layout's own split, else ``""``), and the
        columns of the layout's CSV as read: the diagnosis among them (``dx``,
        ``diagnostic``, the one-hot columns), which
        :func:`skinlib.check_metadata_columns` refuses as a model input.
        ``df.attrs`` holds ``layout``, ``root``, ``outside`` and the skipped files.

    Notes
    -----
    Patient metadata comes under common names (:data:`skinlib.data._reading.METADATA_SOURCES`):
    ``age`` (float), ``sex``, ``site`` (the body site: HAM10000 ``localization``,
    ISIC 2020 ``anatom_site_general_challenge``, ISIC 2019 ``anatom_site_general``,
    PAD-UFES-20 ``region``) and, for PAD-UFES-20, ``skin_type`` (Fitzpatrick 1-6,
    from ``fitspatrick``); strings lower-cased and stripped, blank, ``"unknown"``
    and the other words of :data:`skinlib.data._reading.MISSING_WORDS` (any case) as NaN.
    An age that is present but not a number (``"abc"``, ``"45 years"``) raises
    :class:`DatasetError` naming the CSV, the row's image and the value: a typo must
    not quietly become a missing age. An age outside
    :data:`skinlib.data._reading.AGE_RANGE` (0-120 years; 999 and -1 are common codes for
    "unknown") is treated as missing, with a warning that counts such ages and names
    the column. The source columns stay as read, except that same-named ones
    (HAM10000's ``age`` and ``sex``) are replaced. Class folders, ISIC 2018 and
    DermaMNIST have no patient metadata.

    Bad files (missing, empty, not an image, listed twice, not listed) and rows
    without a usable label (ISIC 2019's UNK) are skipped and reported: a warning, and
    the table ``skipped_files(df)``. A path that is no regular file (a FIFO, a socket
    or a device named like an image) is skipped too, without being opened: reading a
    FIFO would wait forever. A label file or ``.npz`` that is no regular file is a
    :class:`DatasetError`.

    One row per file: rows whose names lead to one file (HAM10000's ``ISIC_1`` and
    ``ISIC_1.jpg``; a CSV's ``img/x.jpg``, ``img/./x.jpg`` and ``./img/x``; also two
    symlinks or hard links to one file) are one row, the first, with the first row's
    columns and group (the others are reported, with the group they gave where it
    differs); one file given two labels is a :class:`DatasetError` naming both rows
    (their lines in the CSV, or their paths). A path in no known layout, in two (without
    ``layout``), a CSV without the needed columns or a label that is not
    benign/malignant or 0/1 (or a known diagnosis) raises :class:`DatasetError`.
    Only reads the dataset (DermaMNIST's PNG files go to ``cache_dir``).

    Paths outside the folder: a CSV row may name an image outside the dataset folder
    (an absolute ``image_name``, or ``../other/x``). Such images are used, read from
    where they are (and, like every image, never written), since researchers keep
    images elsewhere; but they are reported: a warning, and their absolute, normalised
    paths in ``df.attrs["outside"]`` (empty when every image is inside). In class-folder
    datasets, symlinks (to image files or to folders of images kept elsewhere) are
    followed and count as inside the folder; a folder reached twice through links is
    read once. A link that leads into another class folder, or to the dataset folder
    or above it, is not followed but skipped and reported (its images would get the
    wrong label); see :func:`skinlib.data.load_class_folders`.

    Examples
    --------
    >>> df = load_dataset("data/sample")  # doctest: +SKIP
    >>> df["label"].mean()  # share of malignant images  # doctest: +SKIP
    >>> df = load_dataset("~/data/ISIC2019")  # doctest: +SKIP
    >>> df = load_dataset("~/data/clinic.csv", image_column="file", label_column="dx",
    ...                   malignant=["mel", "bcc"])  # doctest: +SKIP
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: dataset folder does not exist")
    if not root.is_dir():
        require_regular_file(root, "a dataset folder, a DermaMNIST .npz or a CSV file")
    options = {
        "image_column": image_column, "label_column": label_column, "group_column": group_column,
        "malignant": malignant, "benign": benign, "metadata": metadata, "missing_images": missing_images,
        "cache_dir": cache_dir,
    }
    options = {k: v for k, v in options.items() if v is not None}
    if layout is None and set(options) & set(LAYOUT_RECORDS["csv"].options):
        layout = "csv"  # a column option implies the csv layout
    if layout is None:
        found = detect_layouts(root)
        if found == ["csv"]:
            raise DatasetError(
                f"{root}: a CSV file in no public layout; to read it as a table of images, pass "
                f"image_column= and label_column= (and malignant= for diagnosis names)"
            )
        if not found:
            if root.is_file():
                raise DatasetError(f"{root}: expected a dataset folder, got a file")
            raise _unknown_layout(root)
        if len(found) > 1:
            raise DatasetError(
                f"{root}: matches the layouts {', '.join(found)}; pass layout= with the one to load"
            )
        layout = found[0]
    df = load_layout(root, layout, **options)
    df["label"] = df["label"].astype(np.int64)
    df["group"] = df["group"].astype(str)
    return df


# --------------------------------------------------------------------------- splits


def _group_fold(df: pd.DataFrame, size: float, seed: int, what: str) -> np.ndarray:
    # ``what`` names the user's parameter in errors, e.g. "val_size=0.1".
    """Boolean mask of a grouped, label-stratified share ``size`` of ``df``."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = max(2, int(round(1 / size)))
    n_groups = df["group"].nunique()
    if n_groups < n_splits:
        raise ValueError(
            f"{what} needs at least {n_splits} groups (patients or lesions) to split from, "
            f"the data has {n_groups}"
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # sklearn warns when a class has fewer members than folds; we handle it below.
        warnings.simplefilter("ignore", UserWarning)
        _, idx = next(splitter.split(np.zeros(len(df)), df["label"], df["group"]))
    mask = np.zeros(len(df), dtype=bool)
    mask[idx] = True
    return mask


def split_dataset(
    df: pd.DataFrame,
    test_size: float = 0.2,
    val_size: float = 0.1,
    seed: int = 0,
    grouped: bool = True,
    duplicates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Add a ``fold`` column (``train``, ``val``, ``test``): stratified by label, grouped.

    No ``group`` appears in two folds (images of one patient or lesion would leak
    between training and test otherwise), each fold keeps about the dataset's share
    of malignant images, and the same ``seed`` and data give the same split.
    Sizes are shares of the whole table; they are realised as one fold of a
    ``round(1/size)``-fold grouped split, so ``0.2`` is exact and ``0.3`` becomes
    about 1/3. ``val_size=0`` makes no validation fold.

    ``duplicates`` (the pairs of :func:`skinlib.find_duplicates`) joins the groups of
    every pair (:func:`skinlib.merge_groups`), so all copies of an image land in one
    fold too; :func:`skinlib.check_leakage` then finds no pair across folds.

    Parameters
    ----------
    df : pandas.DataFrame
        A table with ``label`` and ``group`` columns (:func:`skinlib.load_dataset`).
    test_size : float, default 0.2
        The share of the table in the test fold, in [0, 1); 0 makes no test fold.
    val_size : float, default 0.1
        The share of the table in the validation fold, in [0, 1), with ``test_size + val_size``
        below 1. It is split off the rows left after the test fold, as the share
        ``val_size / (1 - test_size)`` of them; 0 makes no validation fold.
    seed : int, default 0
        Seeds the test split (the validation split uses ``seed + 1``): the same seed and
        table give the same folds.
    grouped : bool, default True
        ``False`` makes each row its own group (the ``group`` column is then ignored, and
        images of one patient or lesion may fall in two folds); ``duplicates`` still joins
        the rows of each pair.
    duplicates : pandas.DataFrame, optional
        Pairs of images with ``path_a`` and ``path_b`` columns (:func:`skinlib.find_duplicates`,
        :func:`skinlib.find_same_lesion`), whose groups are joined. Default ``None``: the
        groups as they are.

    Returns
    -------
    pandas.DataFrame
        A new table: a copy of ``df`` with a ``fold`` column (``"train"``, ``"val"`` or
        ``"test"``); its ``group`` column unchanged (the groups joined through ``duplicates``
        are used for the split, not kept).

    Raises
    ------
    ValueError
        When a size is outside [0, 1) or the two add up to 1 or more, when ``df`` lacks
        ``label`` or ``group``, or when there are fewer groups than the folds a size needs
        (``round(1/size)``, at least 2).

    Examples
    --------
    >>> split = split_dataset(df, seed=0)  # doctest: +SKIP
    >>> split["fold"].value_counts()  # doctest: +SKIP
    """
    for name, value in (("test_size", test_size), ("val_size", val_size)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if test_size + val_size >= 1:
        raise ValueError(f"test_size + val_size must be below 1, got {test_size + val_size}")
    for col in ("label", "group"):
        if col not in df.columns:
            raise ValueError(f"df lacks column {col!r}; expected the table from load_dataset")
    out = df.copy()
    if not grouped:
        out["group"] = np.arange(len(out)).astype(str)
    if duplicates is not None:
        from skinlib.data._leakage import merge_groups

        out["group"] = merge_groups(out, duplicates)
    fold = np.full(len(out), "train", dtype=object)
    if test_size > 0:
        test = _group_fold(out, test_size, seed, f"test_size={test_size}")
        fold[test] = "test"
    rest = np.flatnonzero(fold == "train")
    if val_size > 0:
        share = val_size / (1 - test_size)
        val = _group_fold(out.iloc[rest], share, seed + 1, f"val_size={val_size}")
        fold[rest[val]] = "val"
    out["fold"] = fold
    out["group"] = df["group"]
    return out


def undersample(df: pd.DataFrame, ratio: float = 1.0, seed: int = 0, fold: str | None = "train") -> pd.DataFrame:
    """Drop benign images at random so that there are ``ratio`` benign per malignant.

    The original project balanced its second run this way. Only rows of ``fold``
    are thinned (other folds keep their real class balance; pass ``fold=None`` to
    thin the whole table).

    Parameters
    ----------
    df : pandas.DataFrame
        A table with a ``label`` column (0 benign, 1 malignant), and a ``fold`` column
        unless ``fold`` is ``None`` (:func:`split_dataset`).
    ratio : float, default 1.0
        Benign images kept per malignant image of the thinned rows; must be positive. The
        number kept is ``round(ratio * n_malignant)``, at most the benign images there are:
        a ratio above the rows' own balance drops nothing.
    seed : int, default 0
        Seeds the choice of the benign images dropped.
    fold : str or None, default "train"
        The fold whose rows are thinned (``df["fold"] == fold``); ``None``: every row.

    Returns
    -------
    pandas.DataFrame
        A new table: the rows of ``df`` that are kept, in the original row order and with
        their index labels (not reset).

    Raises
    ------
    ValueError
        When ``ratio`` is not positive.
    """
    if ratio <= 0:
        raise ValueError(f"ratio must be positive, got {ratio}")
    scope = np.ones(len(df), dtype=bool) if fold is None else (df["fold"] == fold).to_numpy()
    labels = df["label"].to_numpy()
    benign = np.flatnonzero(scope & (labels == 0))
    n_keep = min(len(benign), int(round(ratio * int((scope & (labels == 1)).sum()))))
    rng = np.random.default_rng(seed)
    drop = rng.choice(benign, size=len(benign) - n_keep, replace=False)
    keep = np.ones(len(df), dtype=bool)
    keep[drop] = False
    return df[keep].copy()


def class_weights(y) -> dict[int, float]:
    """Weights that make both classes count equally in the loss (scikit-learn's "balanced").

    Parameters
    ----------
    y : array-like of int
        The labels (0 benign, 1 malignant), converted with ``np.asarray(y).astype(int)``.

    Returns
    -------
    dict of int to float
        ``{class: weight}`` for each class present in ``y``: the number of labels divided by
        the number of classes times the class's count.

    Examples
    --------
    >>> class_weights([0, 0, 0, 1])
    {0: 0.6666666666666666, 1: 2.0}
    """
    from sklearn.utils.class_weight import compute_class_weight

    y = np.asarray(y).astype(int)
    classes = np.unique(y)
    weights = compute_class_weight("balanced", classes=classes, y=y)
    return {int(c): float(w) for c, w in zip(classes, weights)}


def source_split(df: pd.DataFrame, pairs: pd.DataFrame, val_size: float = 0.1, seed: int = 0,
                 ) -> tuple[pd.DataFrame, set[str]]:
    """A dataset's own train/test split, and its test images that have no copy in train.

    Parameters
    ----------
    df : pandas.DataFrame
        A table with a ``source_split`` column (``train`` / ``test`` folders).
    pairs : pandas.DataFrame
        Its duplicate pairs: validation rows are split off the train folder grouped
        with their copies.
    val_size : float
        The share of the train folder that validates.
    seed : int
        Seeds the validation split.

    Returns
    -------
    (pandas.DataFrame, set of str)
        The table with a ``fold`` column, and the paths of the test images that
        :func:`skinlib.drop_leaked` keeps.
    """
    from skinlib.data import split_dataset
    from skinlib.data import drop_leaked

    test = df["source_split"] == "test"
    inner = split_dataset(df[~test], test_size=0, val_size=val_size, seed=seed, duplicates=pairs)
    split = pd.concat([inner, df[test].assign(fold="test")], ignore_index=True)
    clean = drop_leaked(df, pairs)
    return split, set(clean.loc[clean["source_split"] == "test", "path"])
