"""Keeping copies of an image on one side of a split, and checking that a split does.

The pairs of :func:`skinlib.find_duplicates` join groups (:func:`merge_groups`), so
that :func:`skinlib.split_dataset` and :func:`skinlib.cross_validate` put every copy of
an image, and every image of a patient or lesion, in one fold. :func:`check_leakage`
lists the pairs a split separates; :func:`drop_leaked` filters out the test images that
have a copy in training, for datasets that come with their own test folder.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["merge_groups", "merge_pairs", "check_leakage", "drop_leaked"]


def _pair_columns(duplicates: pd.DataFrame) -> None:
    missing = {"path_a", "path_b"} - set(getattr(duplicates, "columns", ()))
    if missing:
        raise ValueError(f"duplicates lacks column(s) {sorted(missing)}; expected the table from find_duplicates")


def merge_groups(df: pd.DataFrame, duplicates: pd.DataFrame | None) -> pd.Series:
    """The ``group`` column with groups joined through duplicate pairs (union-find).

    Two images end up in one group when they share a group (patient, lesion) or are
    linked by a chain of duplicate pairs. Pairs naming images not in ``df`` are ignored.
    Each merged group is named after its smallest original group name, so the result
    does not depend on the order of the pairs.

    Parameters
    ----------
    df : pandas.DataFrame
        A table with ``path`` and ``group`` columns (:func:`skinlib.load_dataset`); both are
        compared as strings.
    duplicates : pandas.DataFrame or None
        Pairs of images with ``path_a`` and ``path_b`` columns (:func:`skinlib.find_duplicates`,
        :func:`skinlib.find_same_lesion`, :func:`merge_pairs`). ``None`` or an empty table
        leaves the groups as they are.

    Returns
    -------
    pandas.Series
        The group of each row of ``df``, as a string, with ``df``'s index; named ``group``.

    Raises
    ------
    ValueError
        When ``df`` lacks ``path`` or ``group``, or a non-empty ``duplicates`` lacks
        ``path_a`` or ``path_b``.

    Examples
    --------
    >>> df = pd.DataFrame({"path": ["a", "b", "c", "d"], "group": ["1", "1", "2", "3"]})
    >>> pairs = pd.DataFrame({"path_a": ["b"], "path_b": ["d"]})
    >>> merge_groups(df, pairs).tolist()
    ['1', '1', '2', '1']
    """
    for col in ("path", "group"):
        if col not in df.columns:
            raise ValueError(f"df lacks column {col!r}; expected the table from load_dataset")
    groups = df["group"].astype(str)
    if duplicates is None or len(duplicates) == 0:
        return groups.copy()
    _pair_columns(duplicates)
    names = sorted(set(groups))
    index = {g: i for i, g in enumerate(names)}
    parent = np.arange(len(names))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    group_of_path = dict(zip(df["path"].astype(str), groups))
    for a, b in zip(duplicates["path_a"].astype(str), duplicates["path_b"].astype(str)):
        if a in group_of_path and b in group_of_path:
            ra, rb = find(index[group_of_path[a]]), find(index[group_of_path[b]])
            if ra != rb:
                # The smaller index (the smaller name, names are sorted) becomes the root.
                parent[max(ra, rb)] = min(ra, rb)
    root_name = [names[find(i)] for i in range(len(names))]
    return pd.Series([root_name[index[g]] for g in groups], index=df.index, name="group")


def _split_column(df: pd.DataFrame, column: str | None) -> str:
    if column is not None:
        if column not in df.columns:
            raise ValueError(f"df has no column {column!r}")
        return column
    if "fold" in df.columns:
        return "fold"
    if "source_split" in df.columns and (df["source_split"].astype(str) != "").any():
        return "source_split"
    raise ValueError("df has no 'fold' column (split_dataset adds one) and no train/test folders (source_split)")


def check_leakage(df: pd.DataFrame, duplicates: pd.DataFrame, *, column: str | None = None) -> pd.DataFrame:
    """The duplicate pairs whose two images sit in different folds.

    ``column`` names the split: by default ``fold`` (from :func:`skinlib.split_dataset`),
    else ``source_split`` (a class-folder dataset's own ``train/`` and ``test/``). Returns
    the leaking pairs with their ``fold_a`` and ``fold_b``, most similar first; its
    ``attrs["summary"]`` is a one-line summary (also ``str(leaks.attrs["summary"])``
    for printing). Pairs naming images not in ``df`` are ignored.

    Parameters
    ----------
    df : pandas.DataFrame
        A table with a ``path`` column and the split's column.
    duplicates : pandas.DataFrame
        Pairs of images with ``path_a`` and ``path_b`` columns (:func:`skinlib.find_duplicates`,
        :func:`skinlib.find_same_lesion`).
    column : str, optional
        The column that holds each row's fold. Default ``None``: ``fold`` when ``df`` has it,
        else ``source_split`` when it holds a value other than ``""``; with neither, a
        ``ValueError``.

    Returns
    -------
    pandas.DataFrame
        The rows of ``duplicates`` (all their columns) whose two images are in ``df`` and in
        different folds, with ``fold_a`` and ``fold_b`` added; sorted by ``similarity``,
        highest first, when there is such a column; index reset. ``attrs["summary"]`` reads
        ``"<leaks> of <pairs> duplicate pairs cross folds (<fold>-<fold> <count>, ...)"``,
        counting the pairs with both images in ``df``, and says ``<column> values`` instead
        of ``folds`` for a column other than ``fold``.

    Examples
    --------
    >>> leaks = check_leakage(split, pairs)  # doctest: +SKIP
    >>> print(leaks.attrs["summary"])  # doctest: +SKIP
    3 of 16 duplicate pairs cross folds (test-train 3)
    """
    _pair_columns(duplicates)
    column = _split_column(df, column)
    fold_of = dict(zip(df["path"].astype(str), df[column].astype(str)))
    pairs = duplicates[duplicates["path_a"].astype(str).isin(fold_of) & duplicates["path_b"].astype(str).isin(fold_of)].copy()
    pairs["fold_a"] = [fold_of[p] for p in pairs["path_a"].astype(str)]
    pairs["fold_b"] = [fold_of[p] for p in pairs["path_b"].astype(str)]
    leaks = pairs[pairs["fold_a"] != pairs["fold_b"]]
    if "similarity" in leaks.columns:
        leaks = leaks.sort_values("similarity", ascending=False, kind="stable")
    leaks = leaks.reset_index(drop=True)
    if len(leaks):
        kinds = leaks.apply(lambda r: "-".join(sorted((r["fold_a"], r["fold_b"]))), axis=1).value_counts().sort_index()
        detail = " (" + ", ".join(f"{k} {v}" for k, v in kinds.items()) + ")"
    else:
        detail = ""
    what = "folds" if column == "fold" else f"{column} values"
    leaks.attrs["summary"] = f"{len(leaks)} of {len(pairs)} duplicate pairs cross {what}{detail}"
    return leaks


def drop_leaked(
    df: pd.DataFrame,
    duplicates: pd.DataFrame,
    *,
    column: str | None = None,
    test: str = "test",
) -> pd.DataFrame:
    """The table without the ``test`` images that have a duplicate outside the test split.

    For a dataset published with its own ``train/`` and ``test/`` folders (``column``
    defaults as in :func:`check_leakage`): its test score counts copies of training
    images; this filtered table measures on the rest. Copies are followed through
    chains (a test image whose copy in test has a copy in training is dropped too), as
    :func:`merge_groups` joins them. Files are never touched: this is a new table, and
    ``attrs["dropped"]`` lists the paths left out.

    Parameters
    ----------
    df : pandas.DataFrame
        A table with a ``path`` column and the split's column.
    duplicates : pandas.DataFrame
        Pairs of images with ``path_a`` and ``path_b`` columns (:func:`skinlib.find_duplicates`,
        :func:`skinlib.find_same_lesion`).
    column : str, optional
        The column that holds each row's split; default as in :func:`check_leakage`.
    test : str, default "test"
        The value of ``column`` that marks the test images; a ``ValueError`` when no row has it.

    Returns
    -------
    pandas.DataFrame
        A copy of the rows of ``df`` that are kept, with their index labels;
        ``attrs["dropped"]`` is the sorted list of the paths dropped.

    Examples
    --------
    >>> clean = drop_leaked(mvb, pairs)  # doctest: +SKIP
    >>> (clean["source_split"] == "test").sum()  # doctest: +SKIP
    """
    column = _split_column(df, column)
    if test not in set(df[column].astype(str)):
        raise ValueError(f"no rows with {column} == {test!r}; values are {sorted(set(df[column].astype(str)))}")
    _pair_columns(duplicates)
    # Components of the duplicate graph alone (each image its own group to start with).
    paths = df["path"].astype(str)
    component = merge_groups(pd.DataFrame({"path": paths.to_numpy(), "group": paths.to_numpy()}), duplicates)
    is_test = (df[column].astype(str) == test).to_numpy()
    outside = set(component.to_numpy()[~is_test])
    dropped = {p for p, c, t in zip(paths, component, is_test) if t and c in outside}
    out = df[~df["path"].astype(str).isin(dropped)].copy()
    out.attrs["dropped"] = sorted(dropped)
    return out


def merge_pairs(*tables: pd.DataFrame) -> pd.DataFrame:
    """One table of pairs from several (copies, same-lesion pairs...), each pair once.

    A pair listed again in a later table (in either order of its two paths) is dropped:
    pass the copies first to keep a copy's ``kind``. Columns missing from a table are left
    empty; ``attrs["skipped"]`` joins the tables' skipped files.

    Parameters
    ----------
    *tables : pandas.DataFrame
        Pair tables with ``path_a`` and ``path_b`` columns (:func:`skinlib.find_duplicates`,
        :func:`skinlib.find_same_lesion`), the one whose rows are kept first.

    Returns
    -------
    pandas.DataFrame
        The rows of the tables, in order, each pair once; index reset. With no table: an
        empty table with the columns ``path_a``, ``path_b`` and ``kind``.

    Raises
    ------
    ValueError
        When a table lacks ``path_a`` or ``path_b``.

    Examples
    --------
    >>> copies = pd.DataFrame({"path_a": ["a"], "path_b": ["b"], "kind": ["near"]})
    >>> same = pd.DataFrame({"path_a": ["b", "c"], "path_b": ["a", "d"], "kind": ["same lesion"] * 2})
    >>> merge_pairs(copies, same)[["path_a", "path_b", "kind"]].values.tolist()
    [['a', 'b', 'near'], ['c', 'd', 'same lesion']]
    """
    for n, table in enumerate(tables):
        if not {"path_a", "path_b"} <= set(getattr(table, "columns", ())):
            raise ValueError(f"table {n} lacks the 'path_a' and 'path_b' columns of a pair table")
    if not tables:
        return pd.DataFrame(columns=["path_a", "path_b", "kind"])
    merged = pd.concat(tables, ignore_index=True)
    key = [tuple(sorted(p)) for p in zip(merged["path_a"].astype(str), merged["path_b"].astype(str))]
    merged = merged[~pd.Series(key).duplicated().to_numpy()].reset_index(drop=True)
    merged.attrs["skipped"] = [s for t in tables for s in t.attrs.get("skipped", [])]
    return merged
