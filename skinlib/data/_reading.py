"""Reading a dataset's files: the checks, labels and metadata cleaning every layout shares.

The loaders of :mod:`skinlib.data._layouts` build their tables from these pieces, so that
every layout treats a bad file, a bad label and a bad age alike: a file that cannot be
used is skipped and reported (:func:`skipped_files`); a label, diagnosis or age that
makes no sense is a :class:`DatasetError` naming the file, the row's image and the
value. Nothing here writes a file.

What :func:`finish_table` promises of every layout's table: each ``path`` is a regular file
(or a link to one) whose first bytes are an image's (a FIFO, socket or device named like an
image is skipped without being opened: opening a FIFO waits forever), and no two rows are one
file. Rows are one file when they lead to the same file on disk, however their names are spelled
(``ISIC_1`` and ``ISIC_1.jpg``, ``img/./x.jpg``, an absolute path) and also through symlinks and
hard links; such rows collapse into the first, which keeps all its columns (its group too: a later
row's different group is named in the report, not merged), and rows of one file with two labels
are a :class:`DatasetError` naming both.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib._shared.errors import DatasetError
from skinlib._shared.files import file_kind

__all__ = [
    "DatasetError",
    "LABEL_NAMES",
    "METADATA_COLUMNS",
    "DIAGNOSIS_COLUMNS",
    "IMAGE_EXTENSIONS",
    "SYSTEM_FILES",
    "COLUMNS",
    "MISSING_WORDS",
    "AGE_RANGE",
    "SKIN_TYPES",
    "IMAGE_COLUMNS",
    "METADATA_SOURCES",
    "METADATA_NAMES",
    "is_system_file",
    "require_regular_file",
    "parse_label",
    "diagnosis_labels",
    "check_image_file",
    "outside_paths",
    "finish_table",
    "skipped_files",
    "read_table",
    "drop_duplicate_rows",
    "csv_rows",
    "report_unlisted",
    "find_image",
    "metadata_columns",
    "clean_metadata",
    "add_patient_metadata",
    "patient_metadata",
]

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
#: Files that operating systems leave in folders; never images, never reported.
SYSTEM_FILES = {".ds_store", "thumbs.db", "desktop.ini", ".directory"}
#: The first columns of every table :func:`skinlib.load_dataset` returns.
COLUMNS = ["path", "label", "group", "source_split"]
#: Metadata values (after lower-casing and stripping) that mean "not recorded".
MISSING_WORDS = {"", "unknown", "nan", "na", "n/a", "none", "null"}
#: Ages (years) outside this range are codes for "unknown" (999, -1) or typos: treated as missing, with a warning.
AGE_RANGE = (0.0, 120.0)
#: Fitzpatrick skin types, as the numbers 1-6 of the ``skin_type`` column; Roman numerals are read too.
SKIN_TYPES = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6}
#: Columns that name a row's image, in the order :func:`patient_metadata` looks for one to quote in errors.
IMAGE_COLUMNS = ("image_name", "image_id", "img_id", "path", "file", "image")
#: The two classes by label: ``LABEL_NAMES[0]`` is benign (label 0), ``LABEL_NAMES[1]`` malignant (label 1).
LABEL_NAMES = ("benign", "malignant")
#: The patient metadata every layout that records it gives under these names (HAM10000, ISIC 2019
#: and 2020, PAD-UFES-20): what models take as inputs, the audit compares and breaks results down by.
METADATA_COLUMNS = ("age", "sex", "site")
#: Columns that hold a diagnosis, in the order they are looked for (HAM10000 ``dx``, ISIC 2020
#: ``diagnosis``, PAD-UFES-20 ``diagnostic``).
DIAGNOSIS_COLUMNS = ("dx", "diagnosis", "diagnostic")
#: The common metadata names, in the order they are added to a table.
METADATA_NAMES = ("age", "sex", "site", "skin_type")
#: Patient metadata under common names, and the CSV column each comes from per layout.
METADATA_SOURCES = {
    "ham10000": {"age": "age", "sex": "sex", "site": "localization"},
    "isic2020": {"age": "age_approx", "sex": "sex", "site": "anatom_site_general_challenge"},
    "isic2019": {"age": "age_approx", "sex": "sex", "site": "anatom_site_general"},
    "pad_ufes_20": {"age": "age", "sex": "gender", "site": "region", "skin_type": "fitspatrick"},
}

_MAGIC = {
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG": "png",
    b"BM": "bmp",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}
_LABEL_WORDS = {LABEL_NAMES[0]: 0, LABEL_NAMES[1]: 1, "0": 0, "1": 1}
# A regular file opened this way can never block, should it be swapped for a FIFO after the
# stat that found it regular; binary, so that Windows reads the bytes as they are.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


# --------------------------------------------------------------------------- labels


def parse_label(value: object, where: str) -> int:
    """0 or 1 from 0, 1, 0.0, 1.0, ``'0'``, ``'1'``, ``'benign'``, ``'malignant'`` (any case).

    Anything else raises :class:`DatasetError` naming ``where`` (the file and row).

    >>> parse_label(" Malignant", "x.csv"), parse_label("0.0", "x.csv")
    (1, 0)
    """
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


def diagnosis_labels(codes: pd.Series, malignant, benign, where: str, column: str) -> np.ndarray:
    """0/1 labels of diagnosis codes: 1 for the codes of ``malignant``, 0 for those of ``benign``.

    Codes are compared stripped and lower-cased. A code in neither set raises
    :class:`DatasetError` naming ``where``, the column and every unknown code.

    >>> diagnosis_labels(pd.Series(["MEL", "nv"]), {"mel"}, {"nv"}, "x.csv", "dx").tolist()
    [1, 0]
    """
    dx = codes.astype(str).str.strip().str.lower()
    unknown = sorted(set(dx) - set(malignant) - set(benign))
    if unknown:
        raise DatasetError(
            f"{where}: {column} value(s) {unknown} are not diagnoses of this layout; expected one of "
            f"{sorted(set(malignant) | set(benign))} (malignant: {sorted(malignant)})"
        )
    return dx.isin(set(malignant)).astype(int).to_numpy()


# --------------------------------------------------------------------------- file checks


def is_system_file(name: str) -> bool:
    """Whether a file name is an operating system's bookkeeping file (``Thumbs.db``, ``._x.jpg``), not data.

    Parameters
    ----------
    name : str
        A file name, without its folder.

    Returns
    -------
    bool
        ``True`` for the names of :data:`SYSTEM_FILES` (any case: ``.DS_Store``, ``Thumbs.db``,
        ``desktop.ini``, ``.directory``) and for names that start with ``._`` (macOS's
        AppleDouble files).

    Examples
    --------
    >>> is_system_file(".DS_Store"), is_system_file("._ISIC_0001.jpg"), is_system_file("ISIC_0001.jpg")
    (True, True, False)
    """
    return name.lower() in SYSTEM_FILES or name.startswith("._")


def require_regular_file(path: Path, what: str) -> None:
    """Raise :class:`DatasetError` when ``path`` exists but is no regular file (or link to one); ``what`` it should be.

    A label file or an ``.npz`` that is a FIFO would make reading it wait forever; it is
    refused from its ``os.stat``, never opened. A path that does not exist passes: the
    reader says it is missing.

    >>> require_regular_file(Path("."), "a CSV file")
    Traceback (most recent call last):
    ...
    skinlib.data.DatasetError: .: not a regular file (a folder); expected a CSV file
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise DatasetError(f"{path}: not a regular file ({file_kind(mode)}); expected {what}")


def _inspect_image(path: Path) -> tuple[str, object]:
    """``(reason, identity)``: why the file is no usable image (``''`` if it is one), and which file it is.

    The identity is equal for two paths to one file (device and inode: through any
    spelling, symlink or hard link); ``None`` for a file that is not usable.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "image file is missing", None
    except OSError as exc:
        return f"cannot read file ({exc.strerror or exc})", None
    if not stat.S_ISREG(st.st_mode):
        return f"not a regular file ({file_kind(st.st_mode)})", None
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return "image file is missing", None
    except OSError as exc:
        return f"cannot read file ({exc.strerror or exc})", None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            return f"not a regular file ({file_kind(mode)})", None
        head = os.read(fd, 8)
    except OSError as exc:
        return f"cannot read file ({exc.strerror or exc})", None
    finally:
        os.close(fd)
    if not head:
        return "file is empty (0 bytes)", None
    if not any(head.startswith(m) for m in _MAGIC):
        return "not an image (content is not JPEG, PNG, BMP or TIFF)", None
    # Some file systems give no inode numbers (0): the resolved path identifies the file there.
    identity = (st.st_dev, st.st_ino) if st.st_ino else os.path.normcase(os.path.realpath(path))
    return "", identity


def check_image_file(path: Path) -> str:
    """``''`` if the file looks like an image (by its first bytes), else the reason it does not.

    A path that is no regular file (a FIFO, a socket, a device, a folder; a symlink counts
    as what it leads to) is never opened: its reason is ``"not a regular file (a FIFO)"``
    and the like.

    >>> check_image_file(Path("/no/such/image.jpg"))
    'image file is missing'
    >>> check_image_file(Path("."))
    'not a regular file (a folder)'
    """
    return _inspect_image(path)[0]


def outside_paths(paths, root: Path) -> list[str]:
    """The paths that lie outside ``root`` as written (absolute, or through ``..``), made absolute and normal.

    Lexical, symlinks not followed: an image reached through a symlink inside the
    folder is inside it, as the user built the folder that way.

    >>> outside_paths(["/data/d/train/a.jpg", "/data/d/train/../../b.jpg", "/elsewhere/c.jpg"], Path("/data/d"))
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


def _one_row_per_file(df: pd.DataFrame, identities: list, rows: list[str], root: Path,
                      skipped: list[tuple[str, str]]) -> pd.DataFrame:
    """``df`` with one row per file: a later row of a file already listed is dropped and reported.

    Two rows of one file with different labels raise :class:`DatasetError` naming both.
    """
    first: dict[object, int] = {}
    keep = np.ones(len(df), dtype=bool)
    labels = df["label"].to_numpy()
    groups = df["group"].astype(str).to_numpy() if "group" in df.columns else None
    paths = df["path"].astype(str).to_numpy()
    for i, identity in enumerate(identities):
        j = first.setdefault(identity, i)
        if j == i:
            continue
        if int(labels[i]) != int(labels[j]):
            raise DatasetError(
                f"{root}: {rows[j]} and {rows[i]} name one file ({paths[j]}) but give it different labels "
                f"({LABEL_NAMES[int(labels[j])]} and {LABEL_NAMES[int(labels[i])]}); keep one of the rows"
            )
        keep[i] = False
        note = ""
        if groups is not None and groups[i] != groups[j]:
            note = f" (its group {groups[i]!r} is not kept: the first row's group {groups[j]!r} is)"
        skipped.append((paths[i], f"{rows[i]} names the same file as {rows[j]}; the first row is used{note}"))
    return df[keep].reset_index(drop=True)


def finish_table(df: pd.DataFrame, skipped: list[tuple[str, str]], root: Path, layout: str,
                 rows: list[str] | None = None) -> pd.DataFrame:
    """The loaded table, ready: rows whose file is not an image dropped, one row per file, the report attached.

    Checks each ``path`` (:func:`check_image_file`: a FIFO, socket or device is skipped
    unopened), moves the bad ones to ``skipped``, then keeps one row per file: rows that
    lead to one file (any spelling of its path, a symlink or a hard link to it) collapse
    into the first, the others reported in ``skipped``, and a file given two labels is a
    :class:`DatasetError` naming both rows (``rows``: how errors name each row of ``df``,
    such as :func:`csv_rows`; default the paths). Sets ``df.attrs``: ``layout``, ``root``,
    ``outside`` (the images outside ``root``, with a warning) and ``skipped`` (a warning
    with the count; the table is :func:`skipped_files`). Warns when only one class is
    left; raises :class:`DatasetError` when no image is.
    """
    if rows is None:
        rows = [str(p) for p in df["path"]]
    inspected = [_inspect_image(Path(p)) for p in df["path"]]
    bad = np.array([bool(r) for r, _ in inspected], dtype=bool)
    skipped = skipped + [(p, r) for p, (r, _), b in zip(df["path"], inspected, bad) if b]
    good = np.flatnonzero(~bad)
    df = _one_row_per_file(df[~bad].reset_index(drop=True), [inspected[i][1] for i in good],
                           [rows[i] for i in good], root, skipped)
    if df.empty:
        raise DatasetError(f"{root}: no usable images found in the {layout} layout ({len(skipped)} skipped)")
    df.attrs["layout"] = layout
    df.attrs["root"] = str(root)
    outside = outside_paths(df["path"], root)
    df.attrs["outside"] = outside
    if outside:
        warnings.warn(
            f"{root}: {len(outside)} image(s) named in the label file lie outside the dataset folder "
            f"(absolute paths or '..'), e.g. {outside[0]}; they are read from there (never written); "
            f"the list is in df.attrs['outside']",
            stacklevel=4,
        )
    # A plain list, not a DataFrame: pandas compares attrs when concatenating tables,
    # and a DataFrame there would make pd.concat of loaded datasets fail.
    df.attrs["skipped"] = [(str(p), str(r)) for p, r in skipped]
    if skipped:
        warnings.warn(
            f"{root}: skipped {len(skipped)} file(s) or row(s); see skipped_files(df) for paths and reasons",
            stacklevel=4,
        )
    labels = set(int(v) for v in df["label"])
    if len(labels) == 1:
        # Loadable (a test split may hold one class), but nothing can be learned
        # from it and ROC AUC is undefined on it: say so now, not at evaluation.
        word = "malignant" if labels == {1} else "benign"
        warnings.warn(
            f"{root}: only {word} images ({len(df)}); training and evaluation need benign and malignant images",
            stacklevel=4,
        )
    return df


def skipped_files(df: pd.DataFrame) -> pd.DataFrame:
    """The files and rows :func:`skinlib.load_dataset` skipped: columns ``path`` and ``reason``.

    Parameters
    ----------
    df : pandas.DataFrame
        A table whose ``attrs["skipped"]`` lists ``(path, reason)`` pairs: one from
        :func:`skinlib.load_dataset`, or the pairs of :func:`skinlib.find_duplicates` or
        :func:`skinlib.find_same_lesion`. A table without it gives an empty result.

    Returns
    -------
    pandas.DataFrame
        One row per skipped file, folder or row, in the order they were met: ``path`` (the
        file or folder, or the label file for a bad row) and ``reason``, both strings.

    Examples
    --------
    >>> skipped_files(pd.DataFrame()).columns.tolist()
    ['path', 'reason']
    """
    return pd.DataFrame(df.attrs.get("skipped", []), columns=["path", "reason"], dtype=str)


# --------------------------------------------------------------------------- label files


def read_table(path: Path, required: list[str], any_of: list[str] | None = None) -> pd.DataFrame:
    """A CSV file as strings (blank cells ``''``), after checking it has the ``required`` columns.

    ``any_of``: at least one of these columns too. A missing file, an unreadable one, one
    that is no regular file (a FIFO: never opened) and missing columns raise
    :class:`DatasetError`; the last names the missing columns and lists the ones the file has.
    """
    require_regular_file(path, "a CSV file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding_errors="replace")
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
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


def drop_duplicate_rows(df: pd.DataFrame, key: str, csv: Path, skipped: list) -> pd.DataFrame:
    """``df`` without the rows that repeat an earlier row whole; each dropped row is reported.

    A row that repeats an image's name with other values is kept: :func:`finish_table` then keeps
    one row per file, and a file given two labels is an error naming both rows (the first row
    is not silently the true one).
    """
    dup = df.duplicated(keep="first") & df.duplicated(subset=[key], keep="first")
    for value in df.loc[dup, key]:
        skipped.append((str(csv), f"duplicate row for image {value!r} (first one kept)"))
    return df[~dup]


def csv_rows(table: pd.DataFrame, key: str, csv: Path) -> list[str]:
    """How errors name each row of ``table``, a label file as :func:`read_table` read it (its index kept).

    The line is the file's (its header is line 1), the image the row's ``key`` column.

    >>> csv_rows(pd.DataFrame({"image_id": ["ISIC_1", "ISIC_2"]}, index=[0, 3]), "image_id", Path("m.csv"))
    ["line 2 of m.csv (image_id 'ISIC_1')", "line 5 of m.csv (image_id 'ISIC_2')"]
    """
    return [f"line {int(i) + 2} of {csv.name} ({key} {str(v)!r})" for i, v in zip(table.index, table[key])]


def report_unlisted(folder: Path, listed: set[str], csv: Path, skipped: list) -> None:
    """Report the image files directly in ``folder`` whose stem is not in ``listed`` (the CSV's images)."""
    if not folder.is_dir():
        return
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name = entry.name
        if not entry.is_file() or is_system_file(name):
            continue
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS and stem not in listed:
            skipped.append((entry.path, f"image has no row in {csv.name}; not used"))


def find_image(folders: list[Path], name: str) -> Path:
    """The file of the image ``name`` in the first of ``folders`` that has it.

    A name with an image extension (``PAT_1_2_3.png``) is looked up as it is; a
    name without one (``ISIC_0000000``) with ``.jpg``, ``.jpeg`` or ``.png`` (either
    case). When no folder has it: the path it would have in the first folder, which
    :func:`finish_table` reports as missing.
    """
    if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
        for folder in folders:
            candidate = folder / name
            if candidate.exists():
                return candidate
        return folders[0] / name
    for folder in folders:
        for ext in (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"):
            candidate = folder / f"{name}{ext}"
            if candidate.exists():
                return candidate
    return folders[0] / f"{name}.jpg"


# --------------------------------------------------------------------------- patient metadata


def _metadata_text(values: pd.Series) -> pd.Series:
    """Lower-cased, stripped strings; missing values and the words of MISSING_WORDS become NaN."""
    text = values.astype(str).str.strip().str.lower()
    return text.where(~(text.isin(MISSING_WORDS) | values.isna()), np.nan).astype(object)


def _row_name(images: pd.Series | None, i: int) -> str:
    return f"image {str(images.iloc[i])!r}" if images is not None else f"row {i + 1}"


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
        more = f" ({bad.size - 1} more row(s) like it)" if bad.size > 1 else ""
        raise DatasetError(
            f"{where}: {_row_name(images, i)} has age {str(values.iloc[i]).strip()!r} in column {column!r}, "
            f"not a number{more}; expected an age in years, or blank or 'unknown' when not recorded"
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


def _clean_skin_type(values: pd.Series, column: str, where: str, images: pd.Series | None) -> np.ndarray:
    """Fitzpatrick skin types as floats 1-6 (from ``3``, ``3.0`` or ``III``), NaN where not recorded.

    Any other value raises :class:`DatasetError` naming ``where``, the row's image and the value.
    """
    text = _metadata_text(values)
    numbers = pd.to_numeric(text, errors="coerce").astype(float)
    numbers = numbers.where(numbers.notna(), text.map(SKIN_TYPES)).astype(float)
    valid = numbers.isin([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    bad = np.flatnonzero(~valid.to_numpy() & text.notna().to_numpy())
    if bad.size:
        i = int(bad[0])
        more = f" ({bad.size - 1} more row(s) like it)" if bad.size > 1 else ""
        raise DatasetError(
            f"{where}: {_row_name(images, i)} has skin type {str(values.iloc[i]).strip()!r} in column "
            f"{column!r}{more}; expected a Fitzpatrick type 1-6 (or I-VI), or blank when not recorded"
        )
    return numbers.to_numpy(copy=True)


def clean_metadata(
    table: pd.DataFrame, sources: dict[str, str], where: str, images: pd.Series | None
) -> dict[str, np.ndarray]:
    """The common metadata columns of ``table``: {name: cleaned values} for each (name, source column) of ``sources``.

    The one cleaning of :func:`skinlib.load_dataset` and :func:`patient_metadata`:
    ``age`` a number of years or NaN (a value that is no number is a
    :class:`DatasetError`; one outside :data:`AGE_RANGE` NaN with a warning),
    ``skin_type`` a Fitzpatrick type 1-6 or NaN, other columns lower-cased and
    stripped strings; the words of :data:`MISSING_WORDS` are NaN. ``where`` (the
    file) and ``images`` (the rows' image names) are quoted in errors.

    >>> out = clean_metadata(pd.DataFrame({"a": ["45", "Unknown"], "s": [" Back", ""], "f": ["2.0", "IV"]}),
    ...                      {"age": "a", "site": "s", "skin_type": "f"}, "m.csv", None)
    >>> out["age"].tolist()[0], out["site"].tolist(), out["skin_type"].tolist()
    (45.0, ['back', nan], [2.0, 4.0])
    """
    out = {}
    for name, source in sources.items():
        if name == "age":
            out[name] = _clean_age(table[source], source, where, images)
        elif name == "skin_type":
            out[name] = _clean_skin_type(table[source], source, where, images)
        else:
            out[name] = _metadata_text(table[source]).to_numpy()
    return out


def add_patient_metadata(df: pd.DataFrame, meta: pd.DataFrame, layout: str, csv: Path, image_column: str) -> None:
    """Add the common metadata columns from the layout's CSV columns (:data:`METADATA_SOURCES`), in place.

    A common column whose source column the CSV lacks is not added. The common
    names replace same-named CSV columns (HAM10000 ``age``, ``sex``); every other
    CSV column (``localization``, ``age_approx``, ``fitspatrick``...) stays as read.
    """
    sources = {name: source for name, source in METADATA_SOURCES[layout].items() if source in meta.columns}
    for name, values in clean_metadata(meta, sources, str(csv), meta[image_column]).items():
        df[name] = values


def _source_names(name: str) -> list[str]:
    """The columns a common metadata name is taken from: the name itself, then each layout's column for it."""
    names = [name]
    for layout in METADATA_SOURCES.values():
        if name in layout and layout[name] not in names:
            names.append(layout[name])
    return names


def metadata_columns(columns) -> dict[str, str]:
    """{common name: column} for each common metadata name with a column among ``columns``.

    The column is the first present of the name itself and the layouts' columns for it
    (:data:`METADATA_SOURCES`).

    >>> metadata_columns(["img_id", "gender", "age", "region", "fitspatrick"])
    {'age': 'age', 'sex': 'gender', 'site': 'region', 'skin_type': 'fitspatrick'}
    """
    columns = list(columns)
    out = {}
    for name in METADATA_NAMES:
        column = next((c for c in _source_names(name) if c in columns), None)
        if column is not None:
            out[name] = column
    return out


def patient_metadata(
    table: pd.DataFrame, *, source: str | os.PathLike | None = None, image_column: str | None = None
) -> pd.DataFrame:
    """A copy of ``table`` with ``age``, ``sex``, ``site`` and ``skin_type`` under the common names.

    Each is taken from the first column present among its names in the layouts of
    :data:`METADATA_SOURCES` (``site``: ``site``, ``localization``,
    ``anatom_site_general_challenge``, ``anatom_site_general``, then ``region``;
    ``age``: ``age``, then ``age_approx``; ``sex``: ``sex``, then ``gender``;
    ``skin_type``: ``skin_type``, then ``fitspatrick``), and cleaned as
    :func:`skinlib.load_dataset` does (:func:`clean_metadata`): strings lower-cased
    and stripped, blank, ``"unknown"`` and the other words of :data:`MISSING_WORDS`
    (any case) as NaN, ages as numbers, skin types as 1-6. An age that is present
    but not a number (``"abc"``) raises :class:`DatasetError` naming ``source`` (the
    file the table was read from), the row's image (from ``image_column``, default
    the first of :data:`IMAGE_COLUMNS` present) and the value; an age outside
    :data:`AGE_RANGE` (0-120 years: 999 and -1 are common codes for "unknown")
    becomes NaN with a warning that counts them and names the column. For a metadata
    CSV made outside :func:`skinlib.load_dataset`, such as the one
    ``python -m skinlib predict --metadata`` reads.

    Parameters
    ----------
    table : pandas.DataFrame
        Any table with one row per image; its columns of the names above are read.
    source : str or os.PathLike, optional
        The file ``table`` was read from, named in errors and warnings. Default ``None``:
        they say ``metadata table``.
    image_column : str, optional
        The column of image names quoted in errors. Default ``None``: the first of
        :data:`IMAGE_COLUMNS` that ``table`` has; with none, errors give the row's number.

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with ``age`` (float, years), ``sex`` and ``site`` (lower-case
        strings) and ``skin_type`` (float, 1-6) added or replaced, NaN where not recorded;
        each only where ``table`` has a column for it. The other columns are as they were.

    Examples
    --------
    >>> t = patient_metadata(pd.DataFrame({"age_approx": ["45", ""], "localization": [" Back", "unknown"]}))
    >>> t["age"].tolist()[0], t["site"].tolist()
    (45.0, ['back', nan])
    """
    out = table.copy()
    sources = metadata_columns(table.columns)
    if image_column is None:
        image_column = next((c for c in IMAGE_COLUMNS if c in table.columns), None)
    images = table[image_column] if image_column is not None else None
    where = str(source) if source is not None else "metadata table"
    for name, values in clean_metadata(table, sources, where, images).items():
        out[name] = values
    return out
