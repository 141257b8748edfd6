"""The dataset layouts :func:`skinlib.load_dataset` reads, each as its download leaves it.

Each layout is one :class:`Layout` record of :data:`LAYOUT_RECORDS` (as MedMNIST keeps one
``INFO`` entry per dataset): the files that recognise it, its loader and the options it takes,
its malignant and benign diagnoses, the dataset's licence and link, and a one-line description.
:data:`LAYOUTS` (name: description), :func:`detect_layouts` (which layouts a folder or file is
in), :func:`load_layout` (read it with its loader) and :func:`layouts_table` (the table of
``docs/data.md``) all read the records. Each loader returns a table with ``path``, ``label``,
``group``, ``source_split``, the layout's own columns as read (its diagnosis among them, as a
``dx``-like column that :func:`skinlib.check_metadata_columns` refuses as a model input) and the
common metadata columns (``age``, ``sex``, ``site``, ``skin_type``) where the layout records
them. Loaders only read: bad files are skipped and reported (:func:`skinlib.skipped_files`), bad
labels are errors.
"""

from __future__ import annotations

import fnmatch
import inspect
import os
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib.data._csv_layout import load_csv
from skinlib.data._dermamnist import CLASSES, MALIGNANT, NPZ_PATTERN, load_dermamnist
from skinlib.data._reading import (
    LABEL_NAMES,
    COLUMNS,
    IMAGE_EXTENSIONS,
    DatasetError,
    add_patient_metadata,
    csv_rows,
    diagnosis_labels,
    drop_duplicate_rows,
    finish_table,
    find_image,
    is_system_file,
    parse_label,
    read_table,
    report_unlisted,
)

__all__ = [
    "Layout",
    "LAYOUT_RECORDS",
    "LAYOUTS",
    "SIGNATURES",
    "ISIC2019_CLASSES",
    "ISIC2018_CLASSES",
    "PAD_MALIGNANT",
    "detect_layouts",
    "load_layout",
    "layouts_table",
    "load_isic2020",
    "load_ham10000",
    "load_isic2019",
    "load_isic2018",
    "load_pad_ufes_20",
    "load_class_folders",
    "one_hot_diagnoses",
]


ISIC_CSV = "ISIC_2020_Training_GroundTruth.csv"
HAM_CSV = "HAM10000_metadata.csv"
ISIC2019_CSV = "ISIC_2019_Training_GroundTruth.csv"
ISIC2019_METADATA = "ISIC_2019_Training_Metadata.csv"
ISIC2019_INPUT = "ISIC_2019_Training_Input"
ISIC2018_CSV = "ISIC2018_Task3_Training_GroundTruth.csv"
ISIC2018_GROUPINGS = "ISIC2018_Task3_Training_LesionGroupings.csv"
ISIC2018_INPUT = "ISIC2018_Task3_Training_Input"
PAD_CSV = "metadata.csv"

#: HAM10000's diagnosis codes are DermaMNIST's classes (:data:`skinlib.data.CLASSES`), malignant as there.
HAM_MALIGNANT = MALIGNANT
HAM_BENIGN = frozenset(CLASSES) - MALIGNANT
#: ISIC 2019's one-hot diagnosis columns; malignant: MEL, BCC, AK, SCC. UNK rows are skipped.
ISIC2019_CLASSES = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK")
ISIC2019_MALIGNANT = frozenset({"mel", "bcc", "ak", "scc"})
#: ISIC 2018 task 3's one-hot diagnosis columns (HAM10000's classes); malignant: MEL, BCC, AKIEC.
ISIC2018_CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
#: PAD-UFES-20's malignant diagnoses: BCC, MEL, SCC, and ACK (actinic keratosis) as HAM10000 counts ``akiec``.
PAD_MALIGNANT = frozenset({"bcc", "mel", "scc", "ack"})
PAD_BENIGN = frozenset({"nev", "sek"})
#: Class folder names (any case: on macOS and Windows ``Benign/`` always matched ``benign``).
CLASS_NAMES = {name: label for label, name in enumerate(LABEL_NAMES)}
CLASS_SPLITS = ("train", "valid", "val", "validation", "test")


# --------------------------------------------------------------------------- the record


@dataclass(frozen=True)
class Layout:
    """One dataset layout :func:`skinlib.load_dataset` reads: how it is recognised, read and licensed.

    A frozen dataclass: each parameter is also the record's attribute of the same name.

    Parameters
    ----------
    name : str
        Its key in :data:`LAYOUT_RECORDS` and :data:`LAYOUTS`, and ``layout=`` of ``load_dataset``.
    title : str
        The dataset, as the docs name it (Markdown).
    description : str
        One line (Markdown code spans allowed): what a download in this layout holds. :data:`LAYOUTS`
        and the error for a folder in no layout show it without the backticks.
    loader : callable
        Reads it: ``loader(path, **options)`` returns the table.
    options : tuple of str, default ()
        The keyword options the loader takes (its parameters after the path); ``()`` for none.
    signatures : tuple of str, default ()
        The file names (or glob patterns) that recognise the layout in a folder.
    signature_columns : tuple of str, default ()
        Columns a signature CSV's header must name too (PAD-UFES-20's generic ``metadata.csv``).
    file_suffix : str, optional
        Its loader reads a file of this suffix itself (or a folder holding one), and a file of
        this suffix that is no layout's signature is detected as this layout (lower case, with
        the dot: ``".npz"``, ``".csv"``).
    recognise : callable, optional
        For a layout without a signature file: ``recognise(folder)`` says whether a folder is in
        it (used instead of ``signatures``).
    malignant : frozenset of str, optional
        The diagnoses (lower case, as in ``dx``) counted malignant; ``None`` where the layout gives
        the label itself or the caller says (``csv``).
    benign : frozenset of str, optional
        The diagnoses counted benign (``None`` likewise); a diagnosis in neither (ISIC 2019's
        ``unk``) is skipped or an error.
    licence : str, optional
        The dataset's licence, as ``docs/data.md`` states it; ``None`` where it states none.
    link : str, optional
        Where to download it.
    """

    name: str
    title: str
    description: str
    loader: Callable[..., pd.DataFrame]
    options: tuple[str, ...] = ()
    signatures: tuple[str, ...] = ()
    signature_columns: tuple[str, ...] = ()
    file_suffix: str | None = None
    recognise: Callable[[Path], bool] | None = None
    malignant: frozenset[str] | None = None
    benign: frozenset[str] | None = None
    licence: str | None = None
    link: str | None = None

    @property
    def plain_description(self) -> str:
        """The description without Markdown's backticks, as :data:`LAYOUTS` shows it."""
        return self.description.replace("`", "")


def _options(loader: Callable) -> tuple[str, ...]:
    """The keyword options of ``loader``: its parameters after the path."""
    return tuple(inspect.signature(loader).parameters)[1:]


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


# --------------------------------------------------------------------------- detection


def _has_columns(csv: Path, columns: tuple[str, ...]) -> bool:
    """Whether ``csv``'s header names all of ``columns`` (e.g. PAD-UFES-20's ``img_id`` and ``diagnostic``)."""
    if not columns:
        return True
    try:
        with open(csv, encoding="utf-8", errors="replace") as fh:
            header = {c.strip().strip('"') for c in fh.readline().split(",")}
    except OSError:
        return False
    return set(columns) <= header


def _in_folder(layout: Layout, folder: Path) -> bool:
    """Whether ``folder`` holds a download in ``layout``: its signature file, or what its ``recognise`` looks for."""
    if layout.recognise is not None:
        return layout.recognise(folder)
    for name in layout.signatures:
        if _is_pattern(name):
            if any(folder.glob(name)):
                return True
        elif (folder / name).is_file() and _has_columns(folder / name, layout.signature_columns):
            return True
    return False


def detect_layouts(path: str | os.PathLike) -> list[str]:
    """The layouts of :data:`LAYOUTS` whose files ``path`` has, in the order of :data:`LAYOUTS`.

    A folder matches a layout by its signature file (:attr:`Layout.signatures`; for
    ``pad_ufes_20`` a ``metadata.csv`` whose header has ``img_id`` and
    ``diagnostic``), a ``dermamnist*.npz`` file, or ``benign/`` and ``malignant/``
    folders. A file matches the layout whose signature it is, ``dermamnist`` for any
    ``.npz`` and ``csv`` for any other ``.csv``. ``csv`` is never detected in a
    folder: it needs ``image_column=`` and ``label_column=``.

    Parameters
    ----------
    path : str or os.PathLike
        A folder or a file (``~`` expanded); a path that does not exist matches no layout.

    Returns
    -------
    list of str
        The names of the layouts matched, in the order of :data:`LAYOUTS`; empty when none
        matches. For a file: the layouts whose signature its name matches (and whose
        :attr:`Layout.signature_columns` its header names), else those that read files of its
        suffix (:attr:`Layout.file_suffix`).

    Examples
    --------
    >>> detect_layouts("/no/such/folder")
    []
    """
    path = Path(path).expanduser()
    if path.is_file():
        named = [layout.name for layout in LAYOUT_RECORDS.values()
                 if any(fnmatch.fnmatchcase(path.name, s) for s in layout.signatures)
                 and _has_columns(path, layout.signature_columns)]
        if named:
            return named
        suffix = path.suffix.lower()
        return [layout.name for layout in LAYOUT_RECORDS.values() if layout.file_suffix == suffix]
    if not path.is_dir():
        return []
    return [layout.name for layout in LAYOUT_RECORDS.values() if _in_folder(layout, path)]


def load_layout(path: str | os.PathLike, layout: str, **options) -> pd.DataFrame:
    """``path`` read with the loader of ``layout`` (a name of :data:`LAYOUTS`).

    ``options`` go to the loaders that take them (:attr:`Layout.options`): ``cache_dir`` to
    :func:`skinlib.data.load_dermamnist`, the column options to
    :func:`skinlib.data.load_csv`; any other combination is a
    :class:`DatasetError`, as is an unknown layout name (the known ones are listed).
    A folder layout given its signature file reads the file's folder.

    Parameters
    ----------
    path : str or os.PathLike
        The dataset folder (``~`` expanded). For a layout that reads files
        (:attr:`Layout.file_suffix`: ``dermamnist``, ``csv``) also such a file; for any other
        layout also its signature file (any other file is a :class:`DatasetError`).
    layout : str
        The layout's name, a key of :data:`LAYOUTS`.
    **options
        The loader's keyword options (:attr:`Layout.options`): ``cache_dir`` for
        ``dermamnist``; ``image_column``, ``label_column``, ``group_column``, ``malignant``,
        ``benign``, ``metadata`` and ``missing_images`` for ``csv``. Other layouts take none;
        an option the layout does not take is a :class:`DatasetError`.

    Returns
    -------
    pandas.DataFrame
        The loader's table, as it returns it: ``path``, ``label``, ``group``,
        ``source_split``, then the layout's own columns (see :func:`skinlib.load_dataset`,
        which also makes ``label`` int64 and ``group`` str).

    Examples
    --------
    >>> df = load_layout("~/data/both", "isic2018")  # doctest: +SKIP
    """
    if layout not in LAYOUT_RECORDS:
        raise DatasetError(f"unknown layout {layout!r}; known layouts: {', '.join(LAYOUT_RECORDS)}")
    record = LAYOUT_RECORDS[layout]
    path = Path(path).expanduser()
    extra = sorted(set(options) - set(record.options))
    if extra:
        owners = [other.name for other in LAYOUT_RECORDS.values() if set(extra) & set(other.options)]
        raise DatasetError(
            f"{', '.join(k + '=' for k in extra)} {'is' if len(extra) == 1 else 'are'} for layout "
            f"{' or '.join(repr(o) for o in owners) or 'none'}, not {layout!r}"
        )
    if record.file_suffix is None and path.is_file():
        if path.name not in record.signatures:
            raise DatasetError(f"{path}: expected a dataset folder, got a file")
        path = path.parent
    return record.loader(path, **options)


# --------------------------------------------------------------------------- shared pieces


def _folders(root: Path, names: list[str], what: str, csv: str) -> list[Path]:
    """The image folders among ``names`` (relative to ``root``, glob patterns allowed) that exist."""
    found = []
    for name in names:
        for folder in sorted(root.glob(name)) if any(c in name for c in "*?[") else [root / name]:
            if folder.is_dir() and folder not in found:
                found.append(folder)
    if not found:
        raise DatasetError(f"{root}: found {csv} but no {what} folder with the images")
    return found


def _groups(ids: pd.Series, names: pd.Series) -> list[str]:
    """The group of each row: its id, or its image name where the id is blank."""
    return [str(g).strip() or n for g, n in zip(ids.fillna(""), names)]


def _with_table(meta: pd.DataFrame, csv: Path, key: str, skipped: list) -> pd.DataFrame:
    """``meta`` joined (by ``key``) with the optional CSV ``csv``'s columns it lacks; blank where it has no row."""
    if not csv.is_file():
        return meta
    extra = drop_duplicate_rows(read_table(csv, [key]), key, csv, skipped)
    columns = [key] + [c for c in extra.columns if c not in meta.columns]
    return meta.merge(extra[columns], on=key, how="left").fillna("")


def one_hot_diagnoses(meta: pd.DataFrame, classes: list[str], csv: Path, key: str = "image") -> pd.Series:
    """The diagnosis of each row of a one-hot ground-truth table, lower-cased (``"mel"``).

    Each of the ``classes`` columns must hold 0 or 1 (``0.0``, ``1.0``) and each row
    exactly one 1; else :class:`DatasetError` naming ``csv``, the row's image
    (column ``key``) and the values.

    Parameters
    ----------
    meta : pandas.DataFrame
        The ground-truth table as strings (:func:`skinlib.data._reading.read_table`), one row
        per image.
    classes : list of str
        The one-hot diagnosis columns of ``meta``.
    csv : pathlib.Path
        The file ``meta`` was read from, named in errors.
    key : str, default "image"
        The column of image names, quoted in errors.

    Returns
    -------
    pandas.Series
        The lower-cased name of the column that holds the 1, one per row, with ``meta``'s index.

    Examples
    --------
    >>> t = pd.DataFrame({"image": ["a", "b"], "MEL": ["1.0", "0.0"], "NV": ["0.0", "1.0"]})
    >>> one_hot_diagnoses(t, ["MEL", "NV"], Path("gt.csv")).tolist()
    ['mel', 'nv']
    """
    values = {}
    for c in classes:
        numbers = pd.to_numeric(meta[c].str.strip(), errors="coerce")
        bad = np.flatnonzero(~numbers.isin([0.0, 1.0]).to_numpy())
        if bad.size:
            i = int(bad[0])
            raise DatasetError(
                f"{csv}: image {meta[key].iloc[i]!r} has {c}={meta[c].iloc[i]!r}; expected 0 or 1 in the one-hot "
                f"diagnosis columns {', '.join(classes)}"
            )
        values[c] = numbers.to_numpy()
    onehot = np.stack([values[c] for c in classes], axis=1)
    count = onehot.sum(axis=1)
    bad = np.flatnonzero(count != 1)
    if bad.size:
        i = int(bad[0])
        more = f" ({bad.size - 1} more row(s) like it)" if bad.size > 1 else ""
        raise DatasetError(
            f"{csv}: image {meta[key].iloc[i]!r} has {int(count[i])} of the diagnosis columns {', '.join(classes)} "
            f"set to 1; expected exactly one{more}"
        )
    return pd.Series(np.array([c.lower() for c in classes])[onehot.argmax(axis=1)], index=meta.index)


def _table(meta: pd.DataFrame, key: str, folders: list[Path], labels, group: list[str]) -> pd.DataFrame:
    """The first four columns for the rows of ``meta``, then ``meta``'s columns as read."""
    df = pd.DataFrame({
        "path": [str(find_image(folders, n)) for n in meta[key]],
        "label": labels,
        "group": group,
        "source_split": "",
    })
    for col in meta.columns:
        if col not in COLUMNS:
            df[col] = meta[col].to_numpy()
    return df


# --------------------------------------------------------------------------- CSV layouts


def load_isic2020(root: Path) -> pd.DataFrame:
    """ISIC 2020: ``ISIC_2020_Training_GroundTruth.csv`` with ``train/<image_name>.jpg``; group ``patient_id``.

    Parameters
    ----------
    root : pathlib.Path
        The dataset folder, holding ``ISIC_2020_Training_GroundTruth.csv`` (with ``image_name``,
        and ``target`` or ``benign_malignant``) and ``train/``; ``~`` is not expanded here.

    Returns
    -------
    pandas.DataFrame
        ``path`` (the image in ``train/``), ``label`` (from ``target``, else
        ``benign_malignant``: 0/1 or benign/malignant), ``group`` (``patient_id``, else the
        image name; a blank id is the image name), ``source_split`` (``""``), the CSV's
        columns as read but ``target``, and ``age``, ``sex`` (replacing the CSV's) and ``site``
        from ``age_approx``, ``sex`` and ``anatom_site_general_challenge`` where the CSV has them. ``df.attrs`` as
        :func:`skinlib.load_dataset` describes.

    Examples
    --------
    >>> df = load_isic2020(Path("~/data/ISIC2020").expanduser())  # doctest: +SKIP
    """
    csv = root / ISIC_CSV
    meta = read_table(csv, ["image_name"], any_of=["target", "benign_malignant"])
    skipped: list[tuple[str, str]] = []
    meta = drop_duplicate_rows(meta, "image_name", csv, skipped)
    label_col = "target" if "target" in meta.columns else "benign_malignant"
    labels = [parse_label(v, f"{csv}, image {n}") for v, n in zip(meta[label_col], meta["image_name"])]
    folder = root / "train"
    if not folder.is_dir():
        raise DatasetError(f"{root}: found {ISIC_CSV} but no train/ folder with the images")
    ids = meta["patient_id"] if "patient_id" in meta.columns else meta["image_name"]
    df = _table(meta.drop(columns=["target"], errors="ignore"), "image_name", [folder], labels,
                _groups(ids, meta["image_name"]))
    add_patient_metadata(df, meta, "isic2020", csv, "image_name")
    report_unlisted(folder, set(meta["image_name"]), csv, skipped)
    return finish_table(df, skipped, root, "isic2020", csv_rows(meta, "image_name", csv))


def load_ham10000(root: Path) -> pd.DataFrame:
    """HAM10000: ``HAM10000_metadata.csv`` with ``images/`` or the two-part folders; group ``lesion_id``.

    Parameters
    ----------
    root : pathlib.Path
        The dataset folder, holding ``HAM10000_metadata.csv`` (with ``image_id`` and ``dx``) and
        ``images/``, ``HAM10000_images_part_1/`` or ``HAM10000_images_part_2/`` (each one
        present is searched, in that order); ``~`` is not expanded here.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``label`` (1 for the ``dx`` codes ``akiec``, ``bcc`` and ``mel``; 0 for
        ``bkl``, ``df``, ``nv`` and ``vasc``), ``group`` (``lesion_id``, else the image id),
        ``source_split`` (``""``), the CSV's columns as read (``dx`` among them), with ``age``
        and ``sex`` replaced by their cleaned values and ``site`` from ``localization``.
        ``df.attrs`` as :func:`skinlib.load_dataset` describes.

    Examples
    --------
    >>> df = load_ham10000(Path("~/data/HAM10000").expanduser())  # doctest: +SKIP
    """
    csv = root / HAM_CSV
    meta = read_table(csv, ["image_id", "dx"])
    skipped: list[tuple[str, str]] = []
    meta = drop_duplicate_rows(meta, "image_id", csv, skipped)
    labels = diagnosis_labels(meta["dx"], HAM_MALIGNANT, HAM_BENIGN, str(csv), "dx")
    folders = _folders(root, ["images", "HAM10000_images_part_1", "HAM10000_images_part_2"],
                       "images/ or HAM10000_images_part_1/", HAM_CSV)
    ids = meta["lesion_id"] if "lesion_id" in meta.columns else meta["image_id"]
    df = _table(meta, "image_id", folders, labels, _groups(ids, meta["image_id"]))
    add_patient_metadata(df, meta, "ham10000", csv, "image_id")
    for folder in folders:
        report_unlisted(folder, set(meta["image_id"]), csv, skipped)
    return finish_table(df, skipped, root, "ham10000", csv_rows(meta, "image_id", csv))


def _load_one_hot(root: Path, layout: str, csv_name: str, classes: tuple[str, ...], malignant: set[str],
                  input_name: str, extra_name: str) -> pd.DataFrame:
    """ISIC 2018 and 2019: a one-hot ground truth, an input folder, an optional table by image."""
    csv = root / csv_name
    required = [c for c in classes if c != "UNK"]
    meta = read_table(csv, ["image"] + required)
    skipped: list[tuple[str, str]] = []
    meta = drop_duplicate_rows(meta, "image", csv, skipped)
    folders = _folders(root, [input_name, f"{input_name}/{input_name}"], f"{input_name}/", csv_name)
    listed = set(meta["image"])
    dx = one_hot_diagnoses(meta, [c for c in classes if c in meta.columns], csv)
    for name in meta.loc[dx == "unk", "image"]:
        skipped.append((str(find_image(folders, name)),
                        f"diagnosis UNK (unknown) in {csv_name}: neither benign nor malignant; not used"))
    rows = csv_rows(meta[dx != "unk"], "image", csv)  # before the index, which gives the lines, is reset
    meta = meta[dx != "unk"].assign(dx=dx[dx != "unk"]).reset_index(drop=True)
    meta = _with_table(meta, root / extra_name, "image", skipped)
    ids = meta["lesion_id"] if "lesion_id" in meta.columns else meta["image"]
    labels = meta["dx"].isin(malignant).astype(int).to_numpy()
    df = _table(meta, "image", folders, labels, _groups(ids, meta["image"]))
    if layout == "isic2019":
        add_patient_metadata(df, meta, layout, csv, "image")
    for folder in folders:
        report_unlisted(folder, listed, csv, skipped)
    return finish_table(df, skipped, root, layout, rows)


def load_isic2019(root: Path) -> pd.DataFrame:
    """ISIC 2019: ``ISIC_2019_Training_GroundTruth.csv`` (one-hot) with ``ISIC_2019_Training_Input/``.

    Malignant: MEL, BCC, AK, SCC; benign: NV, BKL, DF, VASC; UNK rows are skipped
    and reported (unknown is not benign). The diagnosis is kept as ``dx``. The
    optional ``ISIC_2019_Training_Metadata.csv`` adds ``age_approx``,
    ``anatom_site_general``, ``lesion_id`` and ``sex`` (and the common ``age``,
    ``sex``, ``site``); the group is ``lesion_id`` where present, else the image.
    The ``*_downsampled`` images are copies of others: :func:`skinlib.find_duplicates`
    finds them.

    Parameters
    ----------
    root : pathlib.Path
        The dataset folder, holding ``ISIC_2019_Training_GroundTruth.csv`` (``image`` and the
        one-hot columns of :data:`ISIC2019_CLASSES`; ``UNK`` may be absent),
        ``ISIC_2019_Training_Input/`` (or ``ISIC_2019_Training_Input/ISIC_2019_Training_Input/``)
        and optionally ``ISIC_2019_Training_Metadata.csv``; ``~`` is not expanded here.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``label``, ``group``, ``source_split`` (``""``), the ground truth's columns
        as read (``image`` and the one-hot columns), ``dx`` (the diagnosis, lower case), the
        metadata CSV's columns (blank for an image it has no row for) and the common ``age``,
        ``sex`` and ``site``. ``df.attrs`` as :func:`skinlib.load_dataset` describes.

    Examples
    --------
    >>> df = load_isic2019(Path("~/data/ISIC2019").expanduser())  # doctest: +SKIP
    >>> df["dx"].value_counts()  # doctest: +SKIP
    """
    return _load_one_hot(root, "isic2019", ISIC2019_CSV, ISIC2019_CLASSES, ISIC2019_MALIGNANT,
                         ISIC2019_INPUT, ISIC2019_METADATA)


def load_isic2018(root: Path) -> pd.DataFrame:
    """ISIC 2018 task 3: ``ISIC2018_Task3_Training_GroundTruth.csv`` (one-hot) with its input folder.

    Malignant as HAM10000 (MEL, BCC, AKIEC); the diagnosis is kept as ``dx``. The
    optional ``ISIC2018_Task3_Training_LesionGroupings.csv`` adds ``lesion_id`` (the
    group; else the image) and ``diagnosis_confirm_type``. No patient metadata.
    Its images are HAM10000's: do not combine the two.

    Parameters
    ----------
    root : pathlib.Path
        The dataset folder, holding ``ISIC2018_Task3_Training_GroundTruth.csv`` (``image`` and
        the one-hot columns of :data:`ISIC2018_CLASSES`), ``ISIC2018_Task3_Training_Input/``
        (or the same folder inside it) and optionally
        ``ISIC2018_Task3_Training_LesionGroupings.csv``; ``~`` is not expanded here.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``label``, ``group``, ``source_split`` (``""``), the ground truth's columns
        as read (``image`` and the one-hot columns), ``dx`` (the diagnosis, lower case) and the
        groupings CSV's columns (blank for an image it has no row for). ``df.attrs`` as
        :func:`skinlib.load_dataset` describes.

    Examples
    --------
    >>> df = load_isic2018(Path("~/data/ISIC2018").expanduser())  # doctest: +SKIP
    """
    return _load_one_hot(root, "isic2018", ISIC2018_CSV, ISIC2018_CLASSES, HAM_MALIGNANT,
                         ISIC2018_INPUT, ISIC2018_GROUPINGS)


def load_pad_ufes_20(root: Path) -> pd.DataFrame:
    """PAD-UFES-20: ``metadata.csv`` with the images under ``images/`` or the download's ``imgs_part_*/``.

    Malignant: BCC, MEL, SCC and ACK (actinic keratosis, malignant as HAM10000's
    ``akiec``); benign: NEV, SEK. ``dx`` is ``diagnostic`` lower-cased. Group
    ``patient_id``; ``gender`` and ``region`` give ``sex`` and ``site``, and
    ``fitspatrick`` the Fitzpatrick ``skin_type`` (1-6).

    Parameters
    ----------
    root : pathlib.Path
        The dataset folder, holding ``metadata.csv`` (with ``img_id`` and ``diagnostic``) and
        the images in ``images/``, ``imgs_part_*/``, ``imgs_part_*/imgs_part_*/`` or the last
        two under ``images/`` (each one present is searched); ``~`` is not expanded here.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``label``, ``group`` (``patient_id``, else the image id), ``source_split``
        (``""``), the CSV's columns as read, ``dx``, and the common ``age`` (replacing the
        CSV's), ``sex``, ``site`` and ``skin_type`` where the CSV has their columns (``age``,
        ``gender``, ``region``, ``fitspatrick``). ``df.attrs`` as :func:`skinlib.load_dataset` describes.

    Examples
    --------
    >>> df = load_pad_ufes_20(Path("~/data/PAD-UFES-20").expanduser())  # doctest: +SKIP
    >>> df.groupby("skin_type")["label"].mean()  # doctest: +SKIP
    """
    csv = root / PAD_CSV
    meta = read_table(csv, ["img_id", "diagnostic"])
    skipped: list[tuple[str, str]] = []
    meta = drop_duplicate_rows(meta, "img_id", csv, skipped)
    labels = diagnosis_labels(meta["diagnostic"], PAD_MALIGNANT, PAD_BENIGN, str(csv), "diagnostic")
    meta = meta.assign(dx=meta["diagnostic"].str.strip().str.lower())
    parts = ["imgs_part_*", "imgs_part_*/imgs_part_*"]
    folders = _folders(root, ["images"] + parts + [f"images/{p}" for p in parts], "images/ or imgs_part_*/", PAD_CSV)
    ids = meta["patient_id"] if "patient_id" in meta.columns else meta["img_id"]
    df = _table(meta, "img_id", folders, labels, _groups(ids, meta["img_id"]))
    add_patient_metadata(df, meta, "pad_ufes_20", csv, "img_id")
    listed = {os.path.splitext(n)[0] for n in meta["img_id"]}
    for folder in folders:
        report_unlisted(folder, listed, csv, skipped)
    return finish_table(df, skipped, root, "pad_ufes_20", csv_rows(meta, "img_id", csv))


# --------------------------------------------------------------------------- class folders


def _subfolders(base: Path) -> list[os.DirEntry]:
    try:
        return sorted((e for e in os.scandir(base) if e.is_dir()), key=lambda e: e.name)
    except OSError:
        return []


def _class_dirs(base: Path) -> list[tuple[int, Path]]:
    """(label, folder) of the class folders directly under ``base``, benign first; names in any case."""
    found = [(CLASS_NAMES[e.name.lower()], e.name, Path(e.path)) for e in _subfolders(base)
             if e.name.lower() in CLASS_NAMES]
    return [(label, path) for label, _, path in sorted(found)]


def _class_folder_roots(root: Path) -> list[tuple[Path, str]]:
    """(folder holding benign/ and malignant/, split name) pairs."""
    if _class_dirs(root):
        return [(root, "")]
    found = []
    for entry in _subfolders(root):
        if entry.name.lower() in CLASS_SPLITS and _class_dirs(Path(entry.path)):
            found.append((Path(entry.path), entry.name.lower()))
    return found


def _holds_images(folder: str) -> bool:
    return any(
        True
        for _, _, files in os.walk(folder)
        for name in files
        if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS and not is_system_file(name)
    )


def _inside(path: str, folder: str) -> bool:
    """Whether the resolved ``path`` is ``folder`` or lies under it (both resolved)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class _ClassFolders:
    """The class folders of a dataset, resolved before any is read: which one a resolved path lies in."""

    def __init__(self, root: Path, folders: list[tuple[int, Path, str]]):
        self.folders = folders
        self.reals = [os.path.realpath(folder) for _, folder, _ in folders]
        for a in range(len(folders)):
            for b in range(a):
                if self.reals[a] == self.reals[b]:
                    raise DatasetError(
                        f"{root}: the class folders {folders[b][1]} and {folders[a][1]} are one folder "
                        f"({self.reals[a]}, through a symlink); its images would be read under both; make them "
                        f"two folders"
                    )

    def owner(self, real: str) -> int | None:
        """The class folder ``real`` lies in (the innermost, should one lie in another), or ``None``."""
        found = [k for k, folder in enumerate(self.reals) if _inside(real, folder)]
        return max(found, key=lambda k: len(self.reals[k])) if found else None

    def problem(self, real: str, k: int) -> str:
        """Why a link met while reading class folder ``k`` that leads to ``real`` is not followed, or ``''``."""
        owner = self.owner(real)
        if owner is not None and owner != k:
            other = self.folders[owner][1]
            return (f"link leads to {real}, in the class folder {other}; not followed, so that its images keep "
                    f"that folder's label ({LABEL_NAMES[self.folders[owner][0]]})")
        if owner is None and any(_inside(folder, real) for folder in self.reals):
            return (f"link leads to {real}, which holds the class folders (the dataset folder, or one above "
                    f"it); not followed, so that no class's images are read under another's label")
        return ""


def load_class_folders(root: Path) -> pd.DataFrame:
    """``benign/`` and ``malignant/`` folders (any case), optionally under ``train/``, ``valid/`` or ``test/``.

    The split folder becomes ``source_split``; each image is its own group (the file's
    path under ``root``). Symlinks to files and folders kept elsewhere are followed; a
    folder reached twice is read once. The class folders are resolved first: a link
    inside one that leads into another class folder (of either class, of any split), or
    to the dataset folder or a folder above it, is not followed but skipped and
    reported (naming where it leads): its images would get this folder's label. Two
    class folders that are one folder (one a link to the other), and one folder reached
    from a benign and a malignant folder, are :class:`DatasetError`.

    Parameters
    ----------
    root : pathlib.Path
        The dataset folder, holding ``benign/`` and ``malignant/`` (either is enough), or
        split folders that hold them: ``train/``, ``valid/``, ``val/``, ``validation/`` or
        ``test/`` (any case; the split folders are only looked for when ``root`` itself has
        no class folder). ``~`` is not expanded here.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``label`` (0 from ``benign/``, 1 from ``malignant/``), ``group`` (the
        file's path under ``root`` without its suffix, with ``/``: ``train/benign/img_1``) and
        ``source_split`` (the split folder's name in lower case, ``""`` without one).
        Files without an image suffix (system files such as ``.DS_Store`` aside, which are
        ignored) and folders of images beside the class folders are skipped and reported.
        One row per file (two links to one file in one class are one row, the first; in
        both classes they are a :class:`DatasetError`). ``df.attrs`` as
        :func:`skinlib.load_dataset` describes.

    Examples
    --------
    >>> df = load_class_folders(Path("~/data/mvb").expanduser())  # doctest: +SKIP
    """
    bases = _class_folder_roots(root)
    if not bases:
        raise DatasetError(f"{root}: no benign/ and malignant/ folders here, nor under train/, valid/ or test/")
    rows, skipped = [], []
    for base, split in bases:
        # A folder of images beside the class folders under no class name ("melanoma",
        # a typo) is reported: dropping it silently would lose data unnoticed.
        for entry in _subfolders(base):
            name = entry.name
            if name.lower() in CLASS_NAMES or name.startswith(".") or name == "__MACOSX":
                continue
            if _holds_images(entry.path):
                skipped.append(
                    (entry.path, "folder is not a class folder (expected benign/ or malignant/); its files are not used")
                )
    classes = _ClassFolders(root, [(label, folder, split) for base, split in bases
                                   for label, folder in _class_dirs(base)])
    # Resolved folder -> (the path it was read through, its label).
    seen: dict[str, tuple[str, int]] = {}
    for k, (label, folder, split) in enumerate(classes.folders):
        # Symlinked files and folders are followed (a common way to build a dataset from
        # images kept elsewhere); a folder reached twice (a link loop) is read once.
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen:
                first, first_label = seen[real]
                if first_label != label:
                    raise DatasetError(
                        f"{root}: {first} and {dirpath} lead to one folder ({real}), from a "
                        f"{LABEL_NAMES[first_label]} and a {LABEL_NAMES[label]} class folder; its images would have "
                        f"both labels"
                    )
                dirnames[:] = []
                skipped.append((dirpath, "folder already read through another path (a symlink loop or a "
                                         "second link to it); not read again"))
                continue
            seen[real] = (dirpath, label)
            kept = []
            for name in sorted(dirnames):
                sub = os.path.join(dirpath, name)
                problem = classes.problem(os.path.realpath(sub), k)
                if problem:
                    skipped.append((sub, problem))
                else:
                    kept.append(name)
            dirnames[:] = kept
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if is_system_file(name):
                    continue
                if path.suffix.lower() not in IMAGE_EXTENSIONS:
                    skipped.append((str(path), f"not an image file name (expected {sorted(IMAGE_EXTENSIONS)})"))
                    continue
                problem = classes.problem(os.path.realpath(path), k) if path.is_symlink() else ""
                if problem:
                    skipped.append((str(path), problem))
                    continue
                rel = path.relative_to(root)
                rows.append((str(path), label, rel.with_suffix("").as_posix(), split, rel.as_posix()))
    df = pd.DataFrame([r[:4] for r in rows], columns=COLUMNS)
    if df.empty:
        raise DatasetError(f"{root}: the benign/ and malignant/ folders hold no images")
    return finish_table(df, skipped, root, "class_folders", [r[4] for r in rows])


# --------------------------------------------------------------------------- the records


def _recognise_class_folders(folder: Path) -> bool:
    return bool(_class_folder_roots(folder))


def _one_hot_benign(classes: tuple[str, ...], malignant: frozenset[str]) -> frozenset[str]:
    """The benign diagnoses of one-hot columns: every class but the malignant ones and UNK (unknown)."""
    return frozenset(c.lower() for c in classes if c != "UNK") - malignant


_RECORDS = (
    Layout(
        name="isic2020",
        title="ISIC 2020 (SIIM-ISIC Melanoma Classification)",
        description=f"`{ISIC_CSV}` with `train/<image_name>.jpg` (label: `target` or `benign_malignant`; "
                    "group: `patient_id`)",
        loader=load_isic2020,
        signatures=(ISIC_CSV,),
        licence="CC BY-NC 4.0",
        link="https://challenge2020.isic-archive.com/",
    ),
    Layout(
        name="ham10000",
        title="HAM10000",
        description=f"`{HAM_CSV}` with `images/` or `HAM10000_images_part_1/` and `_part_2/` "
                    "(label from `dx`; group: `lesion_id`)",
        loader=load_ham10000,
        signatures=(HAM_CSV,),
        malignant=HAM_MALIGNANT,
        benign=HAM_BENIGN,
        licence="CC BY-NC-SA 4.0",
        link="https://doi.org/10.7910/DVN/DBW86T",
    ),
    Layout(
        name="isic2019",
        title="ISIC 2019 (ISIC Archive)",
        description=f"`{ISIC2019_CSV}` with `{ISIC2019_INPUT}/`, optionally `{ISIC2019_METADATA}` "
                    "(malignant: MEL, BCC, AK, SCC; UNK skipped; group: `lesion_id`, else the image)",
        loader=load_isic2019,
        signatures=(ISIC2019_CSV,),
        malignant=ISIC2019_MALIGNANT,
        benign=_one_hot_benign(ISIC2019_CLASSES, ISIC2019_MALIGNANT),
        licence="CC BY-NC 4.0",
        link="https://challenge.isic-archive.com/data/#2019",
    ),
    Layout(
        name="isic2018",
        title="ISIC 2018, task 3 (ISIC Archive)",
        description=f"`{ISIC2018_CSV}` with `{ISIC2018_INPUT}/`, optionally `{ISIC2018_GROUPINGS}` "
                    "(malignant: MEL, BCC, AKIEC; group: `lesion_id`, else the image)",
        loader=load_isic2018,
        signatures=(ISIC2018_CSV,),
        malignant=HAM_MALIGNANT,
        benign=_one_hot_benign(ISIC2018_CLASSES, HAM_MALIGNANT),
        licence="CC BY-NC 4.0",
        link="https://challenge.isic-archive.com/data/#2018",
    ),
    Layout(
        name="pad_ufes_20",
        title="PAD-UFES-20 (smartphone clinical images; Mendeley Data)",
        description=f"`{PAD_CSV}` (`img_id`, `diagnostic`) with `images/` or `imgs_part_*/` "
                    "(malignant: BCC, MEL, SCC, ACK; group: `patient_id`)",
        loader=load_pad_ufes_20,
        signatures=(PAD_CSV,),
        signature_columns=("img_id", "diagnostic"),
        malignant=PAD_MALIGNANT,
        benign=PAD_BENIGN,
        licence="CC BY 4.0",
        link="https://doi.org/10.17632/zr7vgbcyr2.1",
    ),
    Layout(
        name="dermamnist",
        title="DermaMNIST (MedMNIST v2; Yang et al. 2023, *Scientific Data* 10:41)",
        description=f"a `{NPZ_PATTERN}` file (MedMNIST), or a folder holding one; images written once as PNG "
                    "files (malignant: `akiec`, `bcc`, `mel`; `source_split`: train/val/test)",
        loader=load_dermamnist,
        options=_options(load_dermamnist),
        signatures=(NPZ_PATTERN,),
        file_suffix=".npz",
        malignant=MALIGNANT,
        benign=frozenset(CLASSES) - MALIGNANT,
        licence="CC BY-NC 4.0",
        link="https://medmnist.com/",
    ),
    Layout(
        name="class_folders",
        title="Skin Cancer: Malignant vs. Benign (ISIC archive images)",
        description="`benign/` and `malignant/` folders of images (any case), optionally under `train/`, "
                    "`valid/` or `test/`",
        loader=load_class_folders,
        recognise=_recognise_class_folders,
        licence="ISIC archive terms (CC BY-NC)",
        link="https://www.kaggle.com/datasets/fanconic/skin-cancer-malignant-vs-benign",
    ),
    Layout(
        name="csv",
        title="your own table",
        description="any CSV of image file names and labels: "
                    "`load_dataset(csv, image_column=..., label_column=...)`",
        loader=load_csv,
        options=_options(load_csv),
        file_suffix=".csv",
    ),
)
#: Every layout's :class:`Layout`, by name, in the order :func:`detect_layouts` tries them (read-only).
LAYOUT_RECORDS: Mapping[str, Layout] = types.MappingProxyType({layout.name: layout for layout in _RECORDS})
#: Each layout's name and one-line description (``load_dataset``'s error for a folder in no layout lists them).
LAYOUTS = {name: layout.plain_description for name, layout in LAYOUT_RECORDS.items()}
#: The file each layout is recognised by, for the layouts recognised by one named CSV file (from the records).
SIGNATURES = {name: layout.signatures[0] for name, layout in LAYOUT_RECORDS.items()
              if layout.signatures and not _is_pattern(layout.signatures[0])}


def _cell(text: str | None) -> str:
    return "-" if text is None else text


def layouts_table() -> str:
    """The table of layouts in ``docs/data.md`` (Markdown), one row per record of :data:`LAYOUT_RECORDS`.

    Columns: the dataset, where to download it, the layout :func:`detect_layouts` recognises,
    its malignant diagnoses (as in ``dx``) and its licence (``-`` where none is stated).

    Returns
    -------
    str
        The Markdown table: a header line, a separator line and one line per layout, in
        the order of :data:`LAYOUT_RECORDS`, joined by newlines (no newline at the end).

    Examples
    --------
    >>> print(layouts_table().splitlines()[0])
    | dataset | download | layout recognised | malignant | licence |
    """
    lines = ["| dataset | download | layout recognised | malignant | licence |", "| --- | --- | --- | --- | --- |"]
    for layout in LAYOUT_RECORDS.values():
        link = f"<{layout.link}>" if layout.link else None
        malignant = ", ".join(f"`{d}`" for d in sorted(layout.malignant)) if layout.malignant else None
        cells = [layout.title, _cell(link), layout.description, _cell(malignant), _cell(layout.licence)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
