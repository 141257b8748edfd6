"""Any table of image files and labels as a dataset: ``load_dataset(csv, image_column=..., label_column=...)``.

For collections in no public layout: a CSV file with one row per image, a column of
file names (relative to the CSV's folder, or absolute) and a column of labels, either
0/1 (or ``benign``/``malignant``) or diagnoses that ``malignant=`` (and optionally
``benign=``) sort into the two classes. Every mistake is a :class:`DatasetError` that
says what was expected: a missing column (the ones present are listed), a label value
no list covers (the values are named), file names that match no file (how many, and
the first few).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib.data._reading import (
    COLUMNS,
    IMAGE_EXTENSIONS,
    METADATA_NAMES,
    MISSING_WORDS,
    DatasetError,
    clean_metadata,
    csv_rows,
    drop_duplicate_rows,
    finish_table,
    find_image,
    parse_label,
    metadata_columns,
    read_table,
)

__all__ = ["find_csv", "csv_labels", "load_csv", "MISSING_IMAGES"]

#: What ``missing_images=`` may say to do with rows whose file does not exist.
MISSING_IMAGES = ("error", "skip")


def find_csv(path: Path) -> Path:
    """``path`` if it is a file, else the one ``.csv`` file in the folder ``path``.

    Parameters
    ----------
    path : pathlib.Path
        A CSV file, or a folder holding exactly one ``.csv`` file (the suffix in any case; the
        folder's subfolders are not searched). A path that is not a folder is returned as it is,
        whether it exists or not.

    Returns
    -------
    pathlib.Path
        ``path`` itself when it is not a folder, else the one ``.csv`` file in it.

    Raises
    ------
    DatasetError
        When the folder holds no ``.csv`` file, or more than one (their names are listed).

    Examples
    --------
    >>> find_csv(Path("/data/my.csv"))
    PosixPath('/data/my.csv')
    """
    if not path.is_dir():
        return path
    found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise DatasetError(f"{path}: expected one .csv file of image names and labels here, found {names}; "
                           f"pass the CSV file itself")
    return found[0]


def _words(values, name: str) -> set[str]:
    if values is None:
        return set()
    if isinstance(values, (str, int, float)):
        values = [values]
    out = {str(v).strip().lower() for v in values}
    if not out:
        raise DatasetError(f"{name}= is empty; expected the label values that mean {name}")
    return out


def csv_labels(
    values: pd.Series, malignant=None, benign=None, where: str = "CSV", column: str = "label", images=None
) -> np.ndarray:
    """0/1 labels of a label column; rows with no label get -1.

    Without ``malignant``: each value must be 0/1 or benign/malignant
    (:func:`skinlib.data._reading.parse_label`). With it: values (stripped, any case) in
    ``malignant`` are 1; in ``benign`` 0; with ``benign`` not given, every other value
    is 0. A value in neither list (when ``benign`` is given), a value in both, or no
    row with a ``malignant`` value raises :class:`DatasetError` naming the values
    (and, for a bad 0/1 label, the row's image from ``images``).

    Parameters
    ----------
    values : pandas.Series
        The label column, one value per row, read as strings and stripped. A value among
        :data:`skinlib.data._reading.MISSING_WORDS` (blank, ``"unknown"``, ``"nan"``..., any
        case) is no label.
    malignant : str or iterable of str, optional
        The values that mean malignant, compared stripped and in any case (a single str, int
        or float is one value; an empty list is a :class:`DatasetError`). A value of it that
        occurs in no row gives a warning. Default ``None``: each value must be 0/1 or
        benign/malignant.
    benign : str or iterable of str, optional
        The values that mean benign, compared likewise; only with ``malignant`` (alone it is
        a :class:`DatasetError`). Default ``None``: every value not in ``malignant`` is benign.
    where : str, default "CSV"
        The file the column comes from, named in errors and warnings.
    column : str, default "label"
        The column's name, quoted in errors and warnings.
    images : pandas.Series, optional
        The image of each row, in the order of ``values``, quoted in the error for a bad 0/1
        label. Default ``None``: the error gives the row's number (from 1).

    Returns
    -------
    numpy.ndarray
        One int64 label per row of ``values``: 1 malignant, 0 benign, -1 where the row has no label.

    Examples
    --------
    >>> csv_labels(pd.Series(["MEL", "nv", "bcc", ""]), malignant=["mel", "bcc"]).tolist()
    [1, 0, 1, -1]
    >>> csv_labels(pd.Series(["1", "0", "benign"])).tolist()
    [1, 0, 0]
    """
    text = values.astype(str).str.strip()
    words = text.str.lower()
    blank = words.isin(MISSING_WORDS).to_numpy()
    labels = np.full(len(values), -1, dtype=np.int64)
    if malignant is None:
        if benign is not None:
            raise DatasetError("benign= needs malignant= too: the values that mean malignant")
        for i in np.flatnonzero(~blank):
            row = f"image {str(images.iloc[i])!r}" if images is not None else f"row {i + 1}"
            labels[i] = parse_label(text.iloc[i], f"{where}, {row}, column {column!r}")
        return labels
    mal, ben = _words(malignant, "malignant"), _words(benign, "benign")
    both = sorted(mal & ben)
    if both:
        raise DatasetError(f"value(s) {both} are in both malignant= and benign=")
    present = set(words[~blank])
    if not present & mal:
        raise DatasetError(
            f"{where}: no row of column {column!r} has a malignant= value ({sorted(mal)}); the column holds "
            f"{sorted(present)[:12]}"
        )
    unused = sorted(mal - present)
    if unused:
        warnings.warn(f"{where}: malignant= value(s) {unused} occur in no row of column {column!r}", stacklevel=3)
    if benign is not None:
        uncovered = words[~blank & ~words.isin(mal | ben)]
        if len(uncovered):
            counts = uncovered.value_counts()
            shown = ", ".join(f"{v!r} ({n} rows)" for v, n in counts.head(10).items())
            raise DatasetError(
                f"{where}: column {column!r} has value(s) in neither malignant= nor benign=: {shown}"
                f"{' ...' if len(counts) > 10 else ''}; add each to one of them"
            )
    labels[~blank] = words[~blank].isin(mal).astype(int).to_numpy()
    return labels


def _check_metadata(metadata) -> dict[str, str] | None:
    """The ``metadata=`` option after checking it: None, or {common name: CSV column}."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise DatasetError(f"metadata= must be a dict such as {{'age': 'age_years', 'sex': 'sex'}}, got {metadata!r}")
    unknown = sorted(set(metadata) - set(METADATA_NAMES))
    if unknown:
        raise DatasetError(
            f"metadata= names {unknown} are not common metadata names; expected some of {list(METADATA_NAMES)}"
        )
    return dict(metadata)


def _image_path(base: Path, name: str) -> Path:
    """The file of a CSV's image name: relative to ``base`` unless absolute; extensions tried when it has none."""
    path = Path(name)
    if not path.is_absolute():
        path = base / path
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return path
    return find_image([path.parent], path.name)


def load_csv(
    path: str | os.PathLike,
    image_column: str | None = None,
    label_column: str | None = None,
    group_column: str | None = None,
    malignant=None,
    benign=None,
    metadata: dict[str, str] | None = None,
    missing_images: str = "error",
) -> pd.DataFrame:
    """A CSV file of image file names and labels as a table (see :func:`skinlib.load_dataset`).

    Parameters
    ----------
    path
        The CSV file, or a folder holding exactly one.
    image_column
        The column of image file names: relative to the CSV's folder, or absolute;
        with an extension, or without one (``.jpg``, ``.jpeg`` and ``.png`` are tried).
    label_column
        The column of labels: 0/1 or benign/malignant, or diagnoses (then give
        ``malignant``). Rows with a blank label are skipped and reported.
    group_column
        The patient or lesion of each row (images of one group stay in one fold);
        default: each image its own group.
    malignant, benign
        The diagnoses of ``label_column`` that are malignant and benign (any case).
        Without ``benign``, every value not in ``malignant`` is benign.
    metadata
        ``{"age": column, "sex": column, "site": column, "skin_type": column}`` (any
        of them), cleaned as every layout's metadata; default: the columns of those
        names or of the public layouts' names (``age_approx``, ``localization``...);
        ``{}`` for none.
    missing_images
        ``"error"`` (default): file names that match no file are a
        :class:`DatasetError` (saying how many, and the first few); ``"skip"``:
        those rows are skipped and reported. When no name matches a file (a wrong
        column or folder), it is an error either way.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``label``, ``group``, ``source_split`` (``""``), the common
        metadata columns, and the CSV's own columns as read (except ones named like
        the first four). One row per file: rows whose names lead to one file
        (``img/x.jpg``, ``img/./x.jpg``, ``./img/x``, an absolute path, a link to it)
        are one row, the first (the others are reported, see
        :func:`skinlib.skipped_files`); one file given two labels is a
        :class:`DatasetError` naming both rows by their line in the CSV.

    Examples
    --------
    >>> df = load_csv("~/data/clinic/labels.csv", image_column="file", label_column="diagnosis",
    ...               malignant=["melanoma", "bcc"], group_column="patient")  # doctest: +SKIP
    """
    if image_column is None or label_column is None:
        raise DatasetError("a CSV dataset needs image_column= (the file names) and label_column= (the labels)")
    if missing_images not in MISSING_IMAGES:
        raise DatasetError(f"missing_images={missing_images!r}: expected one of {MISSING_IMAGES}")
    csv = find_csv(Path(path).expanduser())
    if csv.suffix.lower() != ".csv":
        raise DatasetError(f"{csv}: expected a .csv file of image names and labels")
    metadata = _check_metadata(metadata)
    columns = [image_column, label_column] + ([group_column] if group_column else [])
    columns += [c for c in (metadata or {}).values() if c not in columns]
    table = read_table(csv, columns)
    skipped: list[tuple[str, str]] = []
    names = table[image_column].str.strip()
    blank = names == ""
    for i in np.flatnonzero(blank.to_numpy()):
        skipped.append((str(csv), f"row {i + 2} has no image name in column {image_column!r}"))
    table, names = table[~blank], names[~blank]
    table = drop_duplicate_rows(table.assign(**{image_column: names}), image_column, csv, skipped)
    names = table[image_column]
    labels = csv_labels(table[label_column], malignant, benign, str(csv), label_column, names)
    for name in names[labels < 0]:
        skipped.append((str(csv), f"image {name!r} has no label in column {label_column!r}; not used"))
    keep = labels >= 0
    rows = csv_rows(table[keep], image_column, csv)  # before the index, which gives the lines, is reset
    table, names, labels = table[keep].reset_index(drop=True), names[keep].reset_index(drop=True), labels[keep]

    base = csv.parent
    paths = [_image_path(base, n) for n in names]
    missing = [n for n, p in zip(names, paths) if not p.exists()]
    if missing and (missing_images == "error" or len(missing) == len(paths)):
        shown = ", ".join(repr(n) for n in missing[:5])
        hint = "; pass missing_images='skip' to skip those rows" if len(missing) < len(paths) else ""
        raise DatasetError(
            f"{csv}: {len(missing)} of {len(paths)} image name(s) in column {image_column!r} match no file "
            f"(names are relative to {base}, or absolute), e.g. {shown}{hint}"
        )
    if group_column:
        group = [g.strip() or n for g, n in zip(table[group_column], names)]
    else:
        group = list(names)
    df = pd.DataFrame({"path": [str(p) for p in paths], "label": labels, "group": group, "source_split": ""})
    for col in table.columns:
        if col not in COLUMNS:
            df[col] = table[col].to_numpy()
    if metadata is None:  # the columns of known names, other than the ones already used
        used = {image_column, label_column, group_column}
        metadata = metadata_columns(c for c in table.columns if c not in used)
    for name, values in clean_metadata(table, metadata, str(csv), names).items():
        df[name] = values
    df = finish_table(df, skipped, base, "csv", rows)
    df.attrs["csv"] = str(csv)
    return df
