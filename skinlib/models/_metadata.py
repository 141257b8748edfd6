"""Patient metadata (age, sex, body site) as model inputs, encoded reproducibly.

:func:`fit_metadata` learns an encoding from the rows it is given (the training
fold: statistics of validation or test rows must not shape the inputs), as a plain
JSON-serialisable dict that a run saves beside its model. :func:`encode_metadata`
applies it to any table, so training, evaluation and prediction see the same
features in the same order:

- a numeric column (``age``) gives its standardised value, missing values imputed
  with the training mean (0 after standardising), plus a 0/1 ``<column>_missing``
  feature;
- a categorical column (``sex``, ``site``) gives one 0/1 feature per category seen
  at fit time (``sex=female``, ``sex=male``), plus ``<column>_missing``, which is 1
  for a missing value and for a category the training rows never had.

Columns that carry the label (``dx``, ``target``...) are refused: as inputs they
would hand the model the answer (:func:`check_metadata_columns`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from skinlib.data import METADATA_COLUMNS

__all__ = [
    "METADATA_COLUMNS",
    "LABEL_COLUMNS",
    "check_metadata_columns",
    "fit_metadata",
    "encode_metadata",
    "n_features",
    "unseen_categories",
]

#: Columns that hold the label or the diagnosis; never model inputs. Besides the label and HAM10000's
#: ``dx``: ISIC 2020's ``target``, the one-hot diagnosis columns of ISIC 2018 and 2019, how a diagnosis
#: was confirmed (``dx_type``, ``diagnosis_confirm_type``), PAD-UFES-20's ``diagnostic`` and ``biopsed``
#: (its cancers were all biopsied).
LABEL_COLUMNS = (
    "label", "dx", "dx_type", "diagnosis", "benign_malignant", "target",
    "mel", "nv", "bcc", "ak", "akiec", "bkl", "df", "vasc", "scc", "unk",
    "diagnosis_confirm_type", "diagnostic", "biopsed",
)
#: The version of the encoding dict that :func:`fit_metadata` writes.
ENCODING_VERSION = 1


def check_metadata_columns(df: pd.DataFrame, columns) -> list[str]:
    """The metadata column names as a list, after checking that they may be model inputs.

    Raises ``ValueError`` for an empty selection, for a column that carries the
    label or diagnosis (:data:`LABEL_COLUMNS`, any case), for a name given twice and
    for columns ``df`` does not have (the message lists the ones it has).

    Parameters
    ----------
    df : pandas.DataFrame
        The table the columns must be in.
    columns : str or iterable of str
        The metadata column names; one name alone is taken as a list of one.

    Returns
    -------
    list of str
        ``columns``, in the order given.

    Raises
    ------
    ValueError
        For an empty selection, a name that is not a string, a label or diagnosis
        column, a name given twice, or a column ``df`` lacks.

    Examples
    --------
    >>> df = pd.DataFrame({"age": [40.0], "sex": ["male"], "dx": ["mel"]})
    >>> check_metadata_columns(df, ("age", "sex"))
    ['age', 'sex']
    >>> check_metadata_columns(df, ["dx"])
    Traceback (most recent call last):
    ...
    ValueError: metadata column 'dx' carries the label / diagnosis: using it as a model input leaks the answer; use patient metadata such as ('age', 'sex', 'site')
    """
    if isinstance(columns, str):
        columns = [columns]
    columns = list(columns)
    if not columns:
        raise ValueError(f"no metadata columns given; expected one or more, such as {METADATA_COLUMNS}")
    bad = [c for c in columns if not isinstance(c, str)]
    if bad:
        raise ValueError(f"metadata column names must be strings, got {bad!r}")
    leaks = [c for c in columns if c.strip().lower() in LABEL_COLUMNS]
    if leaks:
        names = ", ".join(repr(c) for c in leaks)
        verb = "carries" if len(leaks) == 1 else "carry"
        it = "it" if len(leaks) == 1 else "them"
        raise ValueError(
            f"metadata column {names} {verb} the label / diagnosis: using {it} as a model input "
            f"leaks the answer; use patient metadata such as {METADATA_COLUMNS}"
        )
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise ValueError(f"metadata column(s) {twice} given more than once")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"df lacks metadata column(s) {missing}; available columns: {list(map(str, df.columns))}"
        )
    return columns


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _as_float(values: pd.Series, column: str) -> np.ndarray:
    """Float values with NaN for missing and non-finite; text that is no number is an error."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        examples = sorted({str(v) for v in values[bad]})[:5]
        raise ValueError(
            f"metadata column {column!r} holds non-numeric value(s) {examples}; it was numeric "
            f"when the encoding was fitted"
        )
    out = numbers.to_numpy(dtype=float, na_value=np.nan, copy=True)
    out[~np.isfinite(out)] = np.nan
    return out


def _as_text(values: pd.Series) -> list:
    """Each value as a string, or None where missing."""
    return [None if pd.isna(v) else str(v) for v in values]


def fit_metadata(df: pd.DataFrame, columns=METADATA_COLUMNS) -> dict:
    """A metadata encoding fitted on the rows of ``df`` (normally the training fold).

    Numeric columns (by dtype, e.g. ``age``) keep the ``mean`` and ``std``
    (population; 1 when 0 or undefined) of their present values; other columns keep
    the sorted categories seen. Returns a dict that ``json.dumps`` accepts, with
    ``"version"``, ``"columns"``, ``"numeric"`` ({column: {"mean", "std"}}),
    ``"categories"`` ({column: [...]}), ``"n_rows"`` and ``"features"``: the names of
    the columns :func:`encode_metadata` produces, in order. The columns are checked
    with :func:`check_metadata_columns`.

    Parameters
    ----------
    df : pandas.DataFrame
        The rows to fit on, normally the training fold; at least one row.
    columns : str or iterable of str
        The metadata columns of ``df`` (default :data:`METADATA_COLUMNS`: ``age``,
        ``sex``, ``site``); label-carrying columns are refused.

    Returns
    -------
    dict
        The encoding: ``"version"`` (``ENCODING_VERSION``), ``"columns"`` (as
        checked), ``"numeric"`` (``{column: {"mean": ..., "std": ...}}``),
        ``"categories"`` (``{column: [sorted categories as strings]}``), ``"n_rows"``
        (``len(df)``) and ``"features"``: per numeric column ``<column>`` and
        ``<column>_missing``, per categorical column ``<column>=<category>`` for each
        category and ``<column>_missing``.

    Raises
    ------
    ValueError
        When :func:`check_metadata_columns` refuses the columns or ``df`` has no rows.

    Examples
    --------
    >>> train = pd.DataFrame({"age": [30.0, 50.0, None], "sex": ["male", "female", None]})
    >>> enc = fit_metadata(train, ["age", "sex"])
    >>> enc["features"]
    ['age', 'age_missing', 'sex=female', 'sex=male', 'sex_missing']
    >>> enc["numeric"]["age"]
    {'mean': 40.0, 'std': 10.0}
    """
    columns = check_metadata_columns(df, columns)
    if len(df) == 0:
        raise ValueError("df has no rows; fit the metadata encoding on the training rows")
    numeric: dict[str, dict[str, float]] = {}
    categories: dict[str, list[str]] = {}
    features: list[str] = []
    for col in columns:
        values = df[col]
        if _is_numeric(values):
            x = _as_float(values, col)
            present = x[~np.isnan(x)]
            mean = float(present.mean()) if present.size else 0.0
            std = float(present.std()) if present.size else 1.0
            if not math.isfinite(std) or std == 0:
                std = 1.0
            numeric[col] = {"mean": mean, "std": std}
            features += [col, f"{col}_missing"]
        else:
            seen = sorted({v for v in _as_text(values) if v is not None})
            categories[col] = seen
            features += [f"{col}={v}" for v in seen] + [f"{col}_missing"]
    return {
        "version": ENCODING_VERSION,
        "columns": columns,
        "numeric": numeric,
        "categories": categories,
        "n_rows": int(len(df)),
        "features": features,
    }


def _check_encoding(encoding) -> None:
    keys = {"version", "columns", "numeric", "categories", "features"}
    if not isinstance(encoding, dict) or not keys <= set(encoding):
        raise ValueError(f"encoding must be the dict from fit_metadata (with keys {sorted(keys)}), got {type(encoding).__name__}")
    if encoding["version"] != ENCODING_VERSION:
        raise ValueError(
            f"metadata encoding version {encoding['version']!r} is not supported; expected {ENCODING_VERSION}"
        )
    for col in encoding["columns"]:
        if col not in encoding["numeric"] and col not in encoding["categories"]:
            raise ValueError(f"encoding lists column {col!r} but has no numeric or categories entry for it")


def n_features(encoding: dict) -> int:
    """How many features :func:`encode_metadata` makes with ``encoding``.

    Parameters
    ----------
    encoding : dict
        An encoding from :func:`fit_metadata` (as a run's ``config.json`` stores it).

    Returns
    -------
    int
        ``len(encoding["features"])``: the length of a v3 model's metadata input.

    Raises
    ------
    ValueError
        When ``encoding`` is not such an encoding (missing keys, another version, a
        column with neither a numeric nor a categories entry).

    Examples
    --------
    >>> n_features(fit_metadata(pd.DataFrame({"sex": ["male", "female"]}), ["sex"]))
    3
    """
    _check_encoding(encoding)
    return len(encoding["features"])


def _check_df(df: pd.DataFrame, encoding: dict) -> None:
    missing = [c for c in encoding["columns"] if c not in df.columns]
    if missing:
        raise ValueError(
            f"df lacks metadata column(s) {missing}; predict needs the same metadata columns the run "
            f"was trained with ({encoding['columns']}); available columns: {list(map(str, df.columns))}"
        )


def encode_metadata(df: pd.DataFrame, encoding: dict) -> np.ndarray:
    """The metadata of ``df`` as a float32 array of shape ``(len(df), n_features(encoding))``.

    Columns follow ``encoding["features"]``. Missing values, and categories the
    fitted rows never had, set the ``<column>_missing`` feature to 1 (a missing
    numeric value is imputed with the fitted mean: 0 after standardising; an unseen
    category has all its one-hot features 0). Raises ``ValueError`` if ``df`` lacks
    a column the encoding was fitted on.

    Parameters
    ----------
    df : pandas.DataFrame
        Any table with the encoding's ``columns`` (other columns are ignored).
    encoding : dict
        An encoding from :func:`fit_metadata`.

    Returns
    -------
    numpy.ndarray
        float32 ``(len(df), n_features(encoding))``, one row per row of ``df`` in its
        order, the columns named by ``encoding["features"]``: a numeric column's
        standardised value (0 where missing), else 0 or 1 (the one-hot categories and
        the ``_missing`` features).

    Raises
    ------
    ValueError
        When ``encoding`` is not valid, ``df`` lacks one of its columns, or a numeric
        column holds a value that is not a number.

    Examples
    --------
    >>> train = pd.DataFrame({"age": [30.0, 50.0], "sex": ["male", "female"]})
    >>> enc = fit_metadata(train, ["age", "sex"])
    >>> test = pd.DataFrame({"age": [60.0, None], "sex": ["female", "other"]})
    >>> encode_metadata(test, enc)
    array([[2., 0., 1., 0., 0.],
           [0., 1., 0., 0., 1.]], dtype=float32)
    """
    _check_encoding(encoding)
    _check_df(df, encoding)
    blocks = []
    for col in encoding["columns"]:
        if col in encoding["numeric"]:
            stats = encoding["numeric"][col]
            x = _as_float(df[col], col)
            missing = np.isnan(x)
            z = np.where(missing, 0.0, (x - stats["mean"]) / stats["std"])
            blocks += [z, missing.astype(float)]
        else:
            cats = encoding["categories"][col]
            index = {c: i for i, c in enumerate(cats)}
            codes = np.array([index.get(v, -1) if v is not None else -1 for v in _as_text(df[col])], dtype=int)
            onehot = (codes[:, None] == np.arange(len(cats))[None, :]).astype(float)
            blocks += list(onehot.T) + [(codes < 0).astype(float)]
    out = np.stack(blocks, axis=1) if blocks else np.zeros((len(df), 0))
    return out.astype(np.float32).reshape(len(df), len(encoding["features"]))


def unseen_categories(df: pd.DataFrame, encoding: dict) -> dict[str, list[str]]:
    """Per categorical column, the values of ``df`` the fitted rows never had (sorted).

    :func:`encode_metadata` encodes them as missing; this says which they are, e.g.
    ISIC 2020 ``torso`` against a HAM10000 encoding that knows ``trunk``.

    Parameters
    ----------
    df : pandas.DataFrame
        Any table with the encoding's ``columns``.
    encoding : dict
        An encoding from :func:`fit_metadata`.

    Returns
    -------
    dict of str to list of str
        Every categorical column of the encoding, with the sorted values (as strings)
        of ``df`` that the fitted rows never had; an empty list when there are none.
        Missing values are not counted.

    Raises
    ------
    ValueError
        When ``encoding`` is not valid or ``df`` lacks one of its columns.

    Examples
    --------
    >>> enc = fit_metadata(pd.DataFrame({"site": ["back", "trunk"]}), ["site"])
    >>> unseen_categories(pd.DataFrame({"site": ["torso", "back", None]}), enc)
    {'site': ['torso']}
    """
    _check_encoding(encoding)
    _check_df(df, encoding)
    out = {}
    for col, cats in encoding["categories"].items():
        known = set(cats)
        out[col] = sorted({v for v in _as_text(df[col]) if v is not None and v not in known})
    return out
