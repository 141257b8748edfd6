"""The dataset layouts :func:`skinlib.load_dataset` reads, each as its download leaves it.

:data:`LAYOUTS` names them; :func:`detect_layouts` says which a folder (or file) is
in, by the files each download has; :func:`load_layout` reads it with that layout's
loader. Each loader returns a table with ``path``, ``label``, ``group``,
``source_split``, the layout's own columns as read (its diagnosis among them, as a
``dx``-like column that :func:`skinlib.check_metadata_columns` refuses as a model
input) and the common metadata columns (``age``, ``sex``, ``site``, ``skin_type``)
where the layout records them. Loaders only read: bad files are skipped and reported
(:func:`skinlib.skipped_files`), bad labels are errors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib.data._csv_layout import load_csv
from skinlib.data._dermamnist import NPZ_PATTERN, load_dermamnist
from skinlib.data._reading import (
    COLUMNS,
    IMAGE_EXTENSIONS,
    DatasetError,
    add_patient_metadata,
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
    "LAYOUTS",
    "SIGNATURES",
    "ISIC2019_CLASSES",
    "ISIC2018_CLASSES",
    "PAD_MALIGNANT",
    "detect_layouts",
    "load_layout",
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

HAM_MALIGNANT = {"mel", "bcc", "akiec"}
HAM_BENIGN = {"nv", "bkl", "df", "vasc"}
#: ISIC 2019's one-hot diagnosis columns; malignant: MEL, BCC, AK, SCC. UNK rows are skipped.
ISIC2019_CLASSES = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK")
ISIC2019_MALIGNANT = {"mel", "bcc", "ak", "scc"}
#: ISIC 2018 task 3's one-hot diagnosis columns (HAM10000's classes); malignant: MEL, BCC, AKIEC.
ISIC2018_CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
#: PAD-UFES-20's malignant diagnoses: BCC, MEL, SCC, and ACK (actinic keratosis) as HAM10000 counts ``akiec``.
PAD_MALIGNANT = {"bcc", "mel", "scc", "ack"}
PAD_BENIGN = {"nev", "sek"}
#: Class folder names (any case: on macOS and Windows ``Benign/`` always matched ``benign``).
CLASS_NAMES = {"benign": 0, "malignant": 1}
CLASS_SPLITS = ("train", "valid", "val", "validation", "test")

LAYOUTS = {
    "isic2020": f"{ISIC_CSV} with train/<image_name>.jpg (label: target or benign_malignant; group: patient_id)",
    "ham10000": f"{HAM_CSV} with images/ or HAM10000_images_part_1/ and _part_2/ (label from dx; group: lesion_id)",
    "isic2019": f"{ISIC2019_CSV} with {ISIC2019_INPUT}/, optionally {ISIC2019_METADATA} "
                "(malignant: MEL, BCC, AK, SCC; UNK skipped; group: lesion_id, else the image)",
    "isic2018": f"{ISIC2018_CSV} with {ISIC2018_INPUT}/, optionally {ISIC2018_GROUPINGS} "
                "(malignant: MEL, BCC, AKIEC; group: lesion_id, else the image)",
    "pad_ufes_20": f"{PAD_CSV} (img_id, diagnostic) with images/ or imgs_part_*/ "
                   "(malignant: BCC, MEL, SCC, ACK; group: patient_id)",
    "dermamnist": f"a {NPZ_PATTERN} file (MedMNIST), or a folder holding one; images written once as PNG files "
                  "(malignant: akiec, bcc, mel; source_split: train/val/test)",
    "class_folders": "benign/ and malignant/ folders of images (any case), optionally under train/, valid/ or test/",
    "csv": "any CSV of image file names and labels: load_dataset(csv, image_column=..., label_column=...)",
}
#: The file each layout is recognised by (``csv`` and ``class_folders`` have none).
SIGNATURES = {
    "isic2020": ISIC_CSV,
    "ham10000": HAM_CSV,
    "isic2019": ISIC2019_CSV,
    "isic2018": ISIC2018_CSV,
    "pad_ufes_20": PAD_CSV,
}


# --------------------------------------------------------------------------- detection


def _is_pad_csv(csv: Path) -> bool:
    """Whether ``csv``'s header names PAD-UFES-20's ``img_id`` and ``diagnostic`` columns."""
    try:
        with open(csv, encoding="utf-8", errors="replace") as fh:
            header = {c.strip().strip('"') for c in fh.readline().split(",")}
    except OSError:
        return False
    return {"img_id", "diagnostic"} <= header


def detect_layouts(path: str | os.PathLike) -> list[str]:
    """The layouts of :data:`LAYOUTS` whose files ``path`` has, in the order of :data:`LAYOUTS`.

    A folder matches a layout by its signature file (:data:`SIGNATURES`; for
    ``pad_ufes_20`` a ``metadata.csv`` whose header has ``img_id`` and
    ``diagnostic``), a ``dermamnist*.npz`` file, or ``benign/`` and ``malignant/``
    folders. A file matches the layout whose signature it is, ``dermamnist`` for any
    ``.npz`` and ``csv`` for any other ``.csv``. ``csv`` is never detected in a
    folder: it needs ``image_column=`` and ``label_column=``.

    >>> detect_layouts("/no/such/folder")
    []
    """
    path = Path(path).expanduser()
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return ["dermamnist"]
        named = [name for name, file in SIGNATURES.items() if path.name == file]
        if named == ["pad_ufes_20"] and not _is_pad_csv(path):
            named = []
        if named:
            return named
        return ["csv"] if path.suffix.lower() == ".csv" else []
    if not path.is_dir():
        return []
    found = []
    for name in LAYOUTS:
        if name in SIGNATURES:
            csv = path / SIGNATURES[name]
            if csv.is_file() and (name != "pad_ufes_20" or _is_pad_csv(csv)):
                found.append(name)
        elif name == "dermamnist" and any(path.glob(NPZ_PATTERN)):
            found.append(name)
        elif name == "class_folders" and _class_folder_roots(path):
            found.append(name)
    return found


def load_layout(path: str | os.PathLike, layout: str, **options) -> pd.DataFrame:
    """``path`` read with the loader of ``layout`` (a name of :data:`LAYOUTS`).

    ``options`` go to the loaders that take them: ``cache_dir`` to
    :func:`skinlib.data.load_dermamnist`, the column options to
    :func:`skinlib.data.load_csv`; any other combination is a
    :class:`DatasetError`, as is an unknown layout name (the known ones are listed).
    A folder layout given its signature file reads the file's folder.

    >>> df = load_layout("~/data/both", "isic2018")  # doctest: +SKIP
    """
    if layout not in LAYOUTS:
        raise DatasetError(f"unknown layout {layout!r}; known layouts: {', '.join(LAYOUTS)}")
    path = Path(path).expanduser()
    allowed = {"dermamnist": {"cache_dir"}, "csv": {
        "image_column", "label_column", "group_column", "malignant", "benign", "metadata", "missing_images"}}
    extra = sorted(set(options) - allowed.get(layout, set()))
    if extra:
        owners = [name for name, keys in allowed.items() if set(extra) & keys]
        raise DatasetError(
            f"{', '.join(k + '=' for k in extra)} {'is' if len(extra) == 1 else 'are'} for layout "
            f"{' or '.join(repr(o) for o in owners) or 'none'}, not {layout!r}"
        )
    if layout == "dermamnist":
        return load_dermamnist(path, **options)
    if layout == "csv":
        return load_csv(path, **options)
    if path.is_file():
        if path.name != SIGNATURES.get(layout):
            raise DatasetError(f"{path}: expected a dataset folder, got a file")
        path = path.parent
    loaders = {"isic2020": load_isic2020, "ham10000": load_ham10000, "isic2019": load_isic2019,
               "isic2018": load_isic2018, "pad_ufes_20": load_pad_ufes_20, "class_folders": load_class_folders}
    return loaders[layout](path)


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
    return finish_table(df, skipped, root, "isic2020")


def load_ham10000(root: Path) -> pd.DataFrame:
    """HAM10000: ``HAM10000_metadata.csv`` with ``images/`` or the two-part folders; group ``lesion_id``.

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
    return finish_table(df, skipped, root, "ham10000")


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
    meta = meta[dx != "unk"].assign(dx=dx[dx != "unk"]).reset_index(drop=True)
    meta = _with_table(meta, root / extra_name, "image", skipped)
    ids = meta["lesion_id"] if "lesion_id" in meta.columns else meta["image"]
    labels = meta["dx"].isin(malignant).astype(int).to_numpy()
    df = _table(meta, "image", folders, labels, _groups(ids, meta["image"]))
    if layout == "isic2019":
        add_patient_metadata(df, meta, layout, csv, "image")
    for folder in folders:
        report_unlisted(folder, listed, csv, skipped)
    return finish_table(df, skipped, root, layout)


def load_isic2019(root: Path) -> pd.DataFrame:
    """ISIC 2019: ``ISIC_2019_Training_GroundTruth.csv`` (one-hot) with ``ISIC_2019_Training_Input/``.

    Malignant: MEL, BCC, AK, SCC; benign: NV, BKL, DF, VASC; UNK rows are skipped
    and reported (unknown is not benign). The diagnosis is kept as ``dx``. The
    optional ``ISIC_2019_Training_Metadata.csv`` adds ``age_approx``,
    ``anatom_site_general``, ``lesion_id`` and ``sex`` (and the common ``age``,
    ``sex``, ``site``); the group is ``lesion_id`` where present, else the image.
    The ``*_downsampled`` images are copies of others: :func:`skinlib.find_duplicates`
    finds them.

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
    return finish_table(df, skipped, root, "pad_ufes_20")


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


def load_class_folders(root: Path) -> pd.DataFrame:
    """``benign/`` and ``malignant/`` folders (any case), optionally under ``train/``, ``valid/`` or ``test/``.

    The split folder becomes ``source_split``; each image is its own group (the file's
    path under ``root``). Symlinks are followed; a folder reached twice is read once.

    >>> df = load_class_folders(Path("~/data/mvb").expanduser())  # doctest: +SKIP
    """
    bases = _class_folder_roots(root)
    if not bases:
        raise DatasetError(f"{root}: no benign/ and malignant/ folders here, nor under train/, valid/ or test/")
    rows, skipped = [], []
    seen: set[str] = set()
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
        for label, folder in _class_dirs(base):
            # Symlinked files and folders are followed (a common way to build a dataset from
            # images kept elsewhere); a folder reached twice (a link loop) is read once.
            for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
                real = os.path.realpath(dirpath)
                if real in seen:
                    dirnames[:] = []
                    skipped.append((dirpath, "folder already read through another path (a symlink loop or a "
                                             "second link to it); not read again"))
                    continue
                seen.add(real)
                dirnames.sort()
                for name in sorted(filenames):
                    path = Path(dirpath) / name
                    if is_system_file(name):
                        continue
                    if path.suffix.lower() not in IMAGE_EXTENSIONS:
                        skipped.append((str(path), f"not an image file name (expected {sorted(IMAGE_EXTENSIONS)})"))
                        continue
                    rel = path.relative_to(root).with_suffix("").as_posix()
                    rows.append((str(path), label, rel, split))
    df = pd.DataFrame(rows, columns=COLUMNS)
    if df.empty:
        raise DatasetError(f"{root}: the benign/ and malignant/ folders hold no images")
    return finish_table(df, skipped, root, "class_folders")
