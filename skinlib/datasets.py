"""Dataset loading in the public download layouts, grouped splits, class balance.

:func:`load_dataset` turns a folder into a table, one row per image. It only
reads: nothing under the dataset folder is ever written, moved or deleted.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "DatasetError",
    "load_dataset",
    "skipped_files",
    "split_dataset",
    "undersample",
    "class_weights",
    "patient_metadata",
    "is_system_file",
    "AGE_RANGE",
    "LAYOUTS",
    "IMAGE_EXTENSIONS",
]

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
#: Files that operating systems leave in folders; never images, never reported.
SYSTEM_FILES = {".ds_store", "thumbs.db", "desktop.ini", ".directory"}
#: Class folder names (any case: on macOS and Windows ``Benign/`` always matched ``benign``).
CLASS_NAMES = {"benign": 0, "malignant": 1}
HAM_MALIGNANT = {"mel", "bcc", "akiec"}
HAM_BENIGN = {"nv", "bkl", "df", "vasc"}
ISIC_CSV = "ISIC_2020_Training_GroundTruth.csv"
HAM_CSV = "HAM10000_metadata.csv"
CLASS_SPLITS = ("train", "valid", "val", "validation", "test")

LAYOUTS = {
    "isic2020": f"{ISIC_CSV} with train/<image_name>.jpg (label: target or benign_malignant; group: patient_id)",
    "ham10000": f"{HAM_CSV} with images/ or HAM10000_images_part_1/ and _part_2/ (label from dx; group: lesion_id)",
    "class_folders": "benign/ and malignant/ folders of images (any case), optionally under train/, valid/ or test/",
}

_MAGIC = {
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG": "png",
    b"BM": "bmp",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}

COLUMNS = ["path", "label", "group", "source_split"]
#: Patient metadata under common names, and the CSV column each comes from per layout.
METADATA_SOURCES = {
    "ham10000": {"age": "age", "sex": "sex", "site": "localization"},
    "isic2020": {"age": "age_approx", "sex": "sex", "site": "anatom_site_general_challenge"},
}
#: Metadata values (after lower-casing and stripping) that mean "not recorded".
MISSING_WORDS = {"", "unknown", "nan", "na", "n/a", "none", "null"}


class DatasetError(ValueError):
    """A dataset folder or its label file is unusable; the message says why."""


# --------------------------------------------------------------------------- labels


_LABEL_WORDS = {"benign": 0, "malignant": 1, "0": 0, "1": 1}


def _parse_label(value: object, where: str) -> int:
    """0/1 from 0, 1, 0.0, 1.0, '0', '1', 'benign', 'malignant' (any case)."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and not (
        isinstance(value, float) and math.isnan(value)
    ):
        if float(value) in (0.0, 1.0):
            return int(value)
    elif isinstance(value, str):
        word = value.strip().lower()
        if word in _LABEL_WORDS:
            return _LABEL_WORDS[word]
        try:
            if float(word) in (0.0, 1.0):
                return int(float(word))
        except ValueError:
            pass
    raise DatasetError(f"{where}: label {value!r} is not benign/malignant or 0/1")


# --------------------------------------------------------------------------- file checks


def is_system_file(name: str) -> bool:
    """Whether a file name is an operating system's bookkeeping file (``Thumbs.db``, ``._x.jpg``), not data.

    >>> is_system_file(".DS_Store"), is_system_file("._ISIC_0001.jpg"), is_system_file("ISIC_0001.jpg")
    (True, True, False)
    """
    return name.lower() in SYSTEM_FILES or name.startswith("._")


def _check_image_file(path: Path) -> str:
    """'' if the file looks like an image, else the reason it does not."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        return "image file is missing"
    except OSError as exc:
        return f"cannot read file ({exc.strerror or exc})"
    if not head:
        return "file is empty (0 bytes)"
    if not any(head.startswith(m) for m in _MAGIC):
        return "not an image (content is not JPEG, PNG, BMP or TIFF)"
    return ""


def _outside(paths, root: Path) -> list[str]:
    """The paths that lie outside ``root`` as written (absolute, or through ``..``), made absolute and normal.

    Lexical, symlinks not followed: an image reached through a symlink inside the
    folder is inside it, as the user built the folder that way.

    >>> _outside(["/data/d/train/a.jpg", "/data/d/train/../../b.jpg", "/elsewhere/c.jpg"], Path("/data/d"))
    ['/data/b.jpg', '/elsewhere/c.jpg']
    """
    base = os.path.normpath(os.path.abspath(root))
    out = []
    for p in paths:
        full = os.path.normpath(os.path.abspath(p))
        try:
            inside = os.path.commonpath([base, full]) == base
        except ValueError:  # another drive on Windows
            inside = False
        if not inside:
            out.append(full)
    return out


def _finish(df: pd.DataFrame, skipped: list[tuple[str, str]], root: Path, layout: str) -> pd.DataFrame:
    """Drop rows whose file is not an image, attach the skipped table and the paths outside ``root``, warn."""
    reasons = [_check_image_file(Path(p)) for p in df["path"]]
    bad = np.array([bool(r) for r in reasons], dtype=bool)
    skipped = skipped + [(p, r) for p, r, b in zip(df["path"], reasons, bad) if b]
    df = df[~bad].reset_index(drop=True)
    if df.empty:
        raise DatasetError(f"{root}: no usable images found in the {layout} layout ({len(skipped)} skipped)")
    df.attrs["layout"] = layout
    df.attrs["root"] = str(root)
    outside = _outside(df["path"], root)
    df.attrs["outside"] = outside
    if outside:
        warnings.warn(
            f"{root}: {len(outside)} image(s) named in the label file lie outside the dataset folder "
            f"(absolute paths or '..'), e.g. {outside[0]}; they are read from there (never written); "
            f"the list is in df.attrs['outside']",
            stacklevel=3,
        )
    # A plain list, not a DataFrame: pandas compares attrs when concatenating tables,
    # and a DataFrame there would make pd.concat of loaded datasets fail.
    df.attrs["skipped"] = [(str(p), str(r)) for p, r in skipped]
    if skipped:
        warnings.warn(
            f"{root}: skipped {len(skipped)} file(s) or row(s); see skipped_files(df) for paths and reasons",
            stacklevel=3,
        )
    labels = set(int(v) for v in df["label"])
    if len(labels) == 1:
        # Loadable (a test split may hold one class), but nothing can be learned
        # from it and ROC AUC is undefined on it: say so now, not at evaluation.
        word = "malignant" if labels == {1} else "benign"
        warnings.warn(
            f"{root}: only {word} images ({len(df)}); training and evaluation need benign and malignant images",
            stacklevel=3,
        )
    return df


def skipped_files(df: pd.DataFrame) -> pd.DataFrame:
    """The files and rows :func:`load_dataset` skipped: columns ``path`` and ``reason``."""
    return pd.DataFrame(df.attrs.get("skipped", []), columns=["path", "reason"], dtype=str)


def _read_csv(path: Path, required: list[str], any_of: list[str] | None = None) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding_errors="replace")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a readable CSV file ({exc})") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if any_of and not any(c in df.columns for c in any_of):
        missing.append(" or ".join(any_of))
    if missing:
        raise DatasetError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(df.columns) or 'none'}"
        )
    return df


def _dedupe(df: pd.DataFrame, key: str, csv: Path, skipped: list) -> pd.DataFrame:
    dup = df.duplicated(subset=[key], keep="first")
    for value in df.loc[dup, key]:
        skipped.append((str(csv), f"duplicate row for image {value!r} (first one kept)"))
    return df[~dup]


def _unlisted(folder: Path, listed: set[str], csv: Path, skipped: list) -> None:
    """Report image files present in ``folder`` that the CSV does not list."""
    if not folder.is_dir():
        return
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name = entry.name
        if not entry.is_file() or is_system_file(name):
            continue
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS and stem not in listed:
            skipped.append((entry.path, f"image has no row in {csv.name}; not used"))


def _find_image(folders: list[Path], stem: str) -> Path:
    for folder in folders:
        for ext in (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"):
            candidate = folder / f"{stem}{ext}"
            if candidate.exists():
                return candidate
    return folders[0] / f"{stem}.jpg"


# --------------------------------------------------------------------------- patient metadata


#: Ages (years) outside this range are codes for "unknown" (999, -1) or typos: treated as missing, with a warning.
AGE_RANGE = (0.0, 120.0)
#: Columns that name a row's image, in the order :func:`patient_metadata` looks for one to quote in errors.
IMAGE_COLUMNS = ("image_name", "image_id", "path", "file", "image")


def _metadata_text(values: pd.Series) -> pd.Series:
    """Lower-cased, stripped strings; missing values and the words of MISSING_WORDS become NaN."""
    text = values.astype(str).str.strip().str.lower()
    return text.where(~(text.isin(MISSING_WORDS) | values.isna()), np.nan).astype(object)


def _clean_age(values: pd.Series, column: str, where: str, images: pd.Series | None) -> np.ndarray:
    """Ages as floats: missing words become NaN, ages outside :data:`AGE_RANGE` NaN with a warning.

    A value that is present but not a number raises :class:`DatasetError` naming
    ``where`` (the file), the image of its row and the value.
    """
    text = _metadata_text(values)
    numbers = pd.to_numeric(text, errors="coerce").astype(float)
    bad = np.flatnonzero(numbers.isna().to_numpy() & text.notna().to_numpy())
    if bad.size:
        i = int(bad[0])
        row = f"image {str(images.iloc[i])!r}" if images is not None else f"row {i + 1}"
        more = f" ({bad.size - 1} more row(s) like it)" if bad.size > 1 else ""
        raise DatasetError(
            f"{where}: {row} has age {str(values.iloc[i]).strip()!r} in column {column!r}, not a number{more}; "
            f"expected an age in years, or blank or 'unknown' when not recorded"
        )
    ages = numbers.to_numpy(copy=True)
    low, high = AGE_RANGE
    outside = ~np.isnan(ages) & ~((ages >= low) & (ages <= high))
    if outside.any():
        examples = ", ".join(f"{v:g}" for v in sorted(set(ages[outside].tolist()))[:3])
        warnings.warn(
            f"{where}: {int(outside.sum())} age(s) in column {column!r} outside {low:g}-{high:g} years "
            f"({examples}) treated as missing (999 and -1 are common codes for 'unknown')",
            stacklevel=4,
        )
        ages[outside] = np.nan
    return ages


def _clean_metadata(
    table: pd.DataFrame, sources: dict[str, str], where: str, images: pd.Series | None
) -> dict[str, np.ndarray]:
    """The common metadata columns of ``table``: {name: cleaned values} for each (name, source column) of ``sources``.

    The one cleaning of :func:`load_dataset` and :func:`patient_metadata`: ``age``
    through :func:`_clean_age` (a number of years, or NaN), other columns lower-cased
    and stripped strings, the words of :data:`MISSING_WORDS` NaN.

    >>> out = _clean_metadata(pd.DataFrame({"a": ["45", "Unknown"], "s": [" Back", ""]}),
    ...                       {"age": "a", "site": "s"}, "m.csv", None)
    >>> out["age"].tolist()[0], out["site"].tolist()
    (45.0, ['back', nan])
    """
    out = {}
    for name, source in sources.items():
        if name == "age":
            out[name] = _clean_age(table[source], source, where, images)
        else:
            out[name] = _metadata_text(table[source]).to_numpy()
    return out


def _add_patient_metadata(df: pd.DataFrame, meta: pd.DataFrame, layout: str, csv: Path, image_column: str) -> None:
    """Add ``age`` (float), ``sex`` and ``site`` from the layout's CSV columns, in place.

    A common column whose source column the CSV lacks is not added. ``age`` and
    ``sex`` replace same-named CSV columns (HAM10000 ``age``, ``sex``); every other
    CSV column (``localization``, ``age_approx``...) stays as read.
    """
    sources = {name: source for name, source in METADATA_SOURCES[layout].items() if source in meta.columns}
    for name, values in _clean_metadata(meta, sources, str(csv), meta[image_column]).items():
        df[name] = values


def patient_metadata(
    table: pd.DataFrame, *, source: str | os.PathLike | None = None, image_column: str | None = None
) -> pd.DataFrame:
    """A copy of ``table`` with ``age``, ``sex`` and ``site`` under the common names.

    Each is taken from the first column present among its names in the layouts of
    :data:`METADATA_SOURCES` (``site``: ``site``, ``localization``, then
    ``anatom_site_general_challenge``; ``age``: ``age``, then ``age_approx``), and
    cleaned as :func:`load_dataset` does: strings lower-cased and stripped, blank,
    ``"unknown"`` and the other words of :data:`MISSING_WORDS` (any case) as NaN,
    ages as numbers. An age that is present but not a number (``"abc"``) raises
    :class:`DatasetError` naming ``source`` (the file the table was read from), the
    row's image (from ``image_column``, default the first of :data:`IMAGE_COLUMNS`
    present) and the value; an age outside :data:`AGE_RANGE` (0-120 years: 999 and -1
    are common codes for "unknown") becomes NaN with a warning that counts them and
    names the column. For a metadata CSV made outside :func:`load_dataset`, such as the
    one ``python -m skinlib predict --metadata`` reads.

    >>> t = patient_metadata(pd.DataFrame({"age_approx": ["45", ""], "localization": [" Back", "unknown"]}))
    >>> t["age"].tolist()[0], t["site"].tolist()
    (45.0, ['back', nan])
    """
    out = table.copy()
    sources = {}
    for name in ("age", "sex", "site"):
        names = [name] + [layout[name] for layout in METADATA_SOURCES.values() if layout[name] != name]
        column = next((c for c in names if c in table.columns), None)
        if column is not None:
            sources[name] = column
    if image_column is None:
        image_column = next((c for c in IMAGE_COLUMNS if c in table.columns), None)
    images = table[image_column] if image_column is not None else None
    where = str(source) if source is not None else "metadata table"
    for name, values in _clean_metadata(table, sources, where, images).items():
        out[name] = values
    return out


# --------------------------------------------------------------------------- layouts


def _load_isic2020(root: Path) -> pd.DataFrame:
    csv = root / ISIC_CSV
    meta = _read_csv(csv, ["image_name"], any_of=["target", "benign_malignant"])
    skipped: list[tuple[str, str]] = []
    meta = _dedupe(meta, "image_name", csv, skipped)
    label_col = "target" if "target" in meta.columns else "benign_malignant"
    labels = [_parse_label(v, f"{csv}, image {n}") for v, n in zip(meta[label_col], meta["image_name"])]
    folder = root / "train"
    if not folder.is_dir():
        raise DatasetError(f"{root}: found {ISIC_CSV} but no train/ folder with the images")
    paths = [str(_find_image([folder], n)) for n in meta["image_name"]]
    group = meta["patient_id"] if "patient_id" in meta.columns else meta["image_name"]
    group = [g if g else n for g, n in zip(group, meta["image_name"])]
    df = pd.DataFrame({"path": paths, "label": labels, "group": group, "source_split": ""})
    for col in meta.columns:
        if col not in ("target",):
            df[col] = meta[col].to_numpy()
    _add_patient_metadata(df, meta, "isic2020", csv, "image_name")
    _unlisted(folder, set(meta["image_name"]), csv, skipped)
    return _finish(df, skipped, root, "isic2020")


def _load_ham10000(root: Path) -> pd.DataFrame:
    csv = root / HAM_CSV
    meta = _read_csv(csv, ["image_id", "dx"])
    skipped: list[tuple[str, str]] = []
    meta = _dedupe(meta, "image_id", csv, skipped)
    dx = meta["dx"].str.strip().str.lower()
    unknown = sorted(set(dx) - HAM_MALIGNANT - HAM_BENIGN)
    if unknown:
        raise DatasetError(
            f"{csv}: dx value(s) {unknown} are not HAM10000 diagnoses; expected one of "
            f"{sorted(HAM_MALIGNANT | HAM_BENIGN)}"
        )
    folders = [root / "images", root / "HAM10000_images_part_1", root / "HAM10000_images_part_2"]
    folders = [f for f in folders if f.is_dir()]
    if not folders:
        raise DatasetError(
            f"{root}: found {HAM_CSV} but no images/ or HAM10000_images_part_1/ folder with the images"
        )
    paths = [str(_find_image(folders, n)) for n in meta["image_id"]]
    group = meta["lesion_id"] if "lesion_id" in meta.columns else meta["image_id"]
    df = pd.DataFrame(
        {
            "path": paths,
            "label": dx.isin(HAM_MALIGNANT).astype(int).to_numpy(),
            "group": [g if g else n for g, n in zip(group, meta["image_id"])],
            "source_split": "",
        }
    )
    for col in meta.columns:
        df[col] = meta[col].to_numpy()
    _add_patient_metadata(df, meta, "ham10000", csv, "image_id")
    listed = set(meta["image_id"])
    for folder in folders:
        _unlisted(folder, listed, csv, skipped)
    return _finish(df, skipped, root, "ham10000")


def _subfolders(base: Path) -> list[os.DirEntry]:
    try:
        return sorted((e for e in os.scandir(base) if e.is_dir()), key=lambda e: e.name)
    except OSError:
        return []


def _class_dirs(base: Path) -> list[tuple[int, Path]]:
    """(label, folder) of the class folders directly under ``base``, benign first; names in any case."""
    found = [(CLASS_NAMES[e.name.lower()], e.name, Path(e.path)) for e in _subfolders(base) if e.name.lower() in CLASS_NAMES]
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


def _load_class_folders(root: Path, bases: list[tuple[Path, str]]) -> pd.DataFrame:
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
    return _finish(df, skipped, root, "class_folders")


def load_dataset(path: str | os.PathLike) -> pd.DataFrame:
    """Load a dermoscopy dataset folder as a table, one row per usable image.

    Recognises the layouts in :data:`LAYOUTS` by their files. Columns: ``path``,
    ``label`` (0 benign, 1 malignant), ``group`` (patient or lesion id where the
    layout has one, else an image id: images of one group must stay in one fold),
    ``source_split`` (the layout's own train/test folder, else ``""``), and the
    metadata columns of the layout's CSV.

    The CSV layouts also get patient metadata under common names
    (:data:`METADATA_SOURCES`): ``age`` (float), ``sex`` and ``site`` (the body
    site: HAM10000 ``localization``, ISIC 2020 ``anatom_site_general_challenge``),
    strings lower-cased and stripped, blank, ``"unknown"`` and the other words of
    :data:`MISSING_WORDS` (any case) as NaN. An age that is present but not a number
    (``"abc"``, ``"45 years"``) raises :class:`DatasetError` naming the CSV, the
    row's image and the value: a typo must not quietly become a missing age. An age
    outside :data:`AGE_RANGE` (0-120 years; 999 and -1 are common codes for
    "unknown") is treated as missing, with a warning that counts such ages and names
    the column. The source columns stay as read, except that HAM10000's own ``age``
    and ``sex`` are the ones replaced. Class-folder datasets have no metadata columns.

    Bad files (missing, empty, not an image, listed twice, not listed) are skipped
    and reported: a warning, and the table ``skipped_files(df)``. A folder in no
    known layout, a CSV without the needed columns or a label that is not
    benign/malignant or 0/1 raises :class:`DatasetError`. Only reads the folder.

    Paths outside the folder: a CSV row may name an image outside the dataset folder
    (an absolute ``image_name``, or ``../other/x``). Such images are used, read from
    where they are (and, like every image, never written), since researchers keep
    images elsewhere; but they are reported: a warning, and their absolute, normalised
    paths in ``df.attrs["outside"]`` (empty when every image is inside). In class-folder
    datasets, symlinks (to image files or to folders of images kept elsewhere) are
    followed and count as inside the folder; a folder reached twice through links is
    read once.

    >>> df = load_dataset("data/sample")  # doctest: +SKIP
    >>> df["label"].mean()  # share of malignant images  # doctest: +SKIP
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: dataset folder does not exist")
    if not root.is_dir():
        raise DatasetError(f"{root}: expected a dataset folder, got a file")
    if (root / ISIC_CSV).is_file():
        df = _load_isic2020(root)
    elif (root / HAM_CSV).is_file():
        df = _load_ham10000(root)
    elif bases := _class_folder_roots(root):
        df = _load_class_folders(root, bases)
    else:
        known = "\n".join(f"  - {k}: {v}" for k, v in LAYOUTS.items())
        raise DatasetError(f"{root}: not a dataset in a supported layout. Supported layouts:\n{known}")
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
    about 1/3. ``val_size=0`` makes no validation fold. Returns a new table (its
    ``group`` column unchanged).

    ``duplicates`` (the pairs of :func:`skinlib.find_duplicates`) joins the groups of
    every pair (:func:`skinlib.merge_groups`), so all copies of an image land in one
    fold too; :func:`skinlib.check_leakage` then finds no pair across folds.

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
        from skinlib.leakage import merge_groups

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
    thin the whole table). Returns a new table in the original row order.
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

    >>> class_weights([0, 0, 0, 1])
    {0: 0.6666666666666666, 1: 2.0}
    """
    from sklearn.utils.class_weight import compute_class_weight

    y = np.asarray(y).astype(int)
    classes = np.unique(y)
    weights = compute_class_weight("balanced", classes=classes, y=y)
    return {int(c): float(w) for c, w in zip(classes, weights)}
