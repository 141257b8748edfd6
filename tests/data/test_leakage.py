"""Leakage-proof splits: merge_groups, split_dataset(duplicates=...), check_leakage, drop_leaked.

The tables are made by hand (paths need not exist: these functions only join on the
``path`` strings), plus one end-to-end run on images with planted copies across a
dataset's own train/ and test/ folders.
"""

from __future__ import annotations

import itertools
import shutil
import warnings

import cv2
import numpy as np
import pandas as pd
import pytest

from skinlib import check_leakage, drop_leaked, find_duplicates, load_dataset, merge_groups, split_dataset
from skinlib.data import draw_lesion_image

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def pairs_of(*pairs, similarity=None) -> pd.DataFrame:
    out = pd.DataFrame(list(pairs), columns=["path_a", "path_b"])
    if similarity is not None:
        out["similarity"] = similarity
    return out


def components(df: pd.DataFrame, pairs: pd.DataFrame) -> list[set[str]]:
    """Connected components of paths, joined by shared group or a pair (plain BFS)."""
    paths = list(df["path"].astype(str))
    known = set(paths)
    adj = {p: set() for p in paths}
    for _, rows in df.groupby(df["group"].astype(str)):
        members = list(rows["path"].astype(str))
        for p in members[1:]:
            adj[members[0]].add(p)
            adj[p].add(members[0])
    for a, b in zip(pairs["path_a"].astype(str), pairs["path_b"].astype(str)):
        if a in known and b in known:
            adj[a].add(b)
            adj[b].add(a)
    seen, out = set(), []
    for p in paths:
        if p in seen:
            continue
        comp, todo = set(), [p]
        while todo:
            q = todo.pop()
            if q not in comp:
                comp.add(q)
                todo.extend(adj[q] - comp)
        seen |= comp
        out.append(comp)
    return out


# --------------------------------------------------------------------------- merge_groups


def _table():
    return pd.DataFrame({
        "path": [f"p{i}" for i in range(8)],
        "group": ["G3", "G3", "G1", "G4", "G2", "G5", "G6", "G7"],
    })


def test_merge_groups_chains_merge_transitively_named_after_smallest():
    df = _table()
    # p0 (G3) - p3 (G4) - p4 (G2) - p2 (G1): one chain; p5-p6 (G5, G6): another; p7 alone.
    pairs = pairs_of(("p0", "p3"), ("p3", "p4"), ("p4", "p2"), ("p6", "p5"))
    merged = merge_groups(df, pairs)
    assert merged.tolist() == ["G1", "G1", "G1", "G1", "G1", "G5", "G5", "G7"]
    assert merged.index.equals(df.index) and merged.name == "group"
    assert df["group"].tolist() == ["G3", "G3", "G1", "G4", "G2", "G5", "G6", "G7"]  # input untouched
    # p1 joined through its group G3 alone, not through a pair of its own.
    assert merged[1] == "G1"


def test_merge_groups_name_is_smallest_group_not_first_seen():
    df = pd.DataFrame({"path": ["a", "b", "c"], "group": ["zeta", "beta", "alpha"]})
    assert merge_groups(df, pairs_of(("a", "b"), ("b", "c"))).tolist() == ["alpha"] * 3
    assert merge_groups(df, pairs_of(("a", "b"))).tolist() == ["beta", "beta", "alpha"]


def test_merge_groups_order_of_pairs_irrelevant():
    df = _table()
    base = [("p0", "p3"), ("p3", "p4"), ("p4", "p2"), ("p6", "p5"), ("p7", "p7")]
    expected = merge_groups(df, pairs_of(*base)).tolist()
    rng = np.random.default_rng(0)
    for perm in itertools.islice(itertools.permutations(base), 0, None, 7):
        swapped = [(b, a) if rng.random() < 0.5 else (a, b) for a, b in perm]
        assert merge_groups(df, pairs_of(*swapped)).tolist() == expected
    # And the row order of df does not change any image's group.
    shuffled = df.sample(frac=1, random_state=1)
    again = merge_groups(shuffled, pairs_of(*base))
    assert dict(zip(shuffled["path"], again)) == dict(zip(df["path"], expected))
    assert again.index.equals(shuffled.index)


def test_merge_groups_ignores_unknown_paths():
    df = _table()
    pairs = pairs_of(("p0", "elsewhere.jpg"), ("ghost", "p5"), ("ghost", "elsewhere.jpg"), ("p6", "p7"))
    assert merge_groups(df, pairs).tolist() == ["G3", "G3", "G1", "G4", "G2", "G5", "G6", "G6"]
    # Only unknown paths: nothing merges (a link through an absent image does not count).
    pairs = pairs_of(("p0", "x"), ("x", "p2"))
    assert merge_groups(df, pairs).tolist() == df["group"].tolist()


def test_merge_groups_without_pairs_is_unchanged():
    df = _table()
    for pairs in (None, pairs_of(), find_like_empty()):
        out = merge_groups(df, pairs)
        assert out.tolist() == df["group"].tolist()
        out.iloc[0] = "changed"  # a copy, not a view on df
        assert df["group"][0] == "G3"
    numeric = pd.DataFrame({"path": ["a", "b"], "group": [10, 2]})
    assert merge_groups(numeric, None).tolist() == ["10", "2"]  # names are strings, like load_dataset's
    # Numeric ids merge by the smallest *name* (string order), as documented.
    assert merge_groups(numeric, pairs_of(("a", "b"))).tolist() == ["10", "10"]


def find_like_empty() -> pd.DataFrame:
    return pd.DataFrame({"path_a": pd.Series([], dtype=str), "path_b": pd.Series([], dtype=str),
                         "similarity": pd.Series([], dtype=float)})


def test_merge_groups_column_errors():
    df = _table()
    with pytest.raises(ValueError, match="path_b"):
        merge_groups(df, pd.DataFrame({"path_a": ["p0"], "other": ["p1"]}))
    with pytest.raises(ValueError, match="'group'"):
        merge_groups(df.drop(columns="group"), pairs_of(("p0", "p1")))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 40), groups=st.integers(1, 15), data=st.data())
def test_merge_groups_matches_connected_components(n, groups, data):
    df = pd.DataFrame({
        "path": [f"img{i}" for i in range(n)],
        "group": [f"g{data.draw(st.integers(0, groups - 1))}" for _ in range(n)],
    })
    names = list(df["path"]) + ["unknown1", "unknown2"]
    pairs = pairs_of(*data.draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)), max_size=25)))
    merged = merge_groups(df, pairs)
    group_of = dict(zip(df["path"], merged))
    for comp in components(df, pairs):
        assert {group_of[p] for p in comp} == {min(df.loc[df["path"].isin(comp), "group"])}
    assert merged.nunique() == len(components(df, pairs))


# --------------------------------------------------------------------------- split_dataset(duplicates=...)


def random_table(rng: np.random.Generator, n_rows: int, n_groups: int, index_shift: int = 0) -> pd.DataFrame:
    groups = np.concatenate([np.arange(n_groups), rng.integers(0, n_groups, n_rows - n_groups)])
    rng.shuffle(groups)
    malignant = rng.random(n_groups) < 0.3
    malignant[:2] = [True, False]  # both classes present
    df = pd.DataFrame({
        "path": [f"img_{i:03d}.jpg" for i in range(n_rows)],
        "label": malignant[groups].astype(int),
        "group": [f"P{g}" for g in groups],
    })
    df.index = df.index + index_shift  # not always a 0..n-1 index
    return df


def random_pairs(rng: np.random.Generator, df: pd.DataFrame, n_pairs: int) -> pd.DataFrame:
    paths = df["path"].to_numpy()
    a = rng.integers(0, len(paths), n_pairs)
    b = rng.integers(0, len(paths), n_pairs)
    keep = a != b
    sim = np.sort(rng.uniform(0.875, 1, keep.sum()))[::-1]
    return pairs_of(*zip(paths[a[keep]], paths[b[keep]]), similarity=sim)


def no_group_crosses(split: pd.DataFrame, column: str = "group") -> bool:
    return bool((split.groupby(column)["fold"].nunique() == 1).all())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_rows=st.integers(30, 200),
    group_share=st.floats(0.3, 1.0),
    pair_share=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
    split_seed=st.integers(0, 50),
    index_shift=st.sampled_from([0, 100]),
)
def test_split_with_duplicates_never_separates_a_pair_or_chain(n_rows, group_share, pair_share, seed, split_seed,
                                                               index_shift):
    rng = np.random.default_rng(seed)
    # 30 to 80 groups: the split's cost grows with the number of groups.
    n_groups = min(n_rows, max(30, min(80, int(n_rows * group_share))))
    df = random_table(rng, n_rows, n_groups, index_shift)
    # At most n_groups/3 pairs: enough merged groups remain for a 5-fold and an 8-fold split.
    pairs = random_pairs(rng, df, int(pair_share * n_groups / 3))
    before = df.copy()
    split = split_dataset(df, seed=split_seed, duplicates=pairs)
    pd.testing.assert_frame_equal(df, before)  # input untouched
    assert set(split["fold"]) <= {"train", "val", "test"} and "test" in set(split["fold"])
    leaks = check_leakage(split, pairs)
    assert len(leaks) == 0, leaks
    assert leaks.attrs["summary"].startswith(f"0 of {len(pairs)} duplicate pairs")
    assert no_group_crosses(split)  # no original group crosses folds
    for comp in components(df, pairs):  # nor a chain of pairs and groups
        assert split.loc[split["path"].isin(comp), "fold"].nunique() == 1
    pd.testing.assert_series_equal(split["group"], df["group"])  # returned 'group' is the input's
    assert split.index.equals(df.index)
    again = split_dataset(df, seed=split_seed, duplicates=pairs)
    pd.testing.assert_frame_equal(split, again)  # same seed, same split


def _old_split(df: pd.DataFrame, test_size=0.2, val_size=0.1, seed=0) -> np.ndarray:
    """The split before duplicates=: grouped and stratified folds of StratifiedGroupKFold."""
    from sklearn.model_selection import StratifiedGroupKFold

    def one_fold(part, size, s):
        splitter = StratifiedGroupKFold(n_splits=max(2, int(round(1 / size))), shuffle=True, random_state=s)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            _, idx = next(splitter.split(np.zeros(len(part)), part["label"], part["group"]))
        mask = np.zeros(len(part), bool)
        mask[idx] = True
        return mask

    fold = np.full(len(df), "train", dtype=object)
    fold[one_fold(df, test_size, seed)] = "test"
    rest = np.flatnonzero(fold == "train")
    fold[rest[one_fold(df.iloc[rest], val_size / (1 - test_size), seed + 1)]] = "val"
    return fold


@pytest.mark.parametrize("seed", [0, 3, 17])
def test_split_without_duplicates_is_the_old_split(seed):
    df = random_table(np.random.default_rng(seed), 150, 70)
    plain = split_dataset(df, seed=seed)
    pd.testing.assert_frame_equal(plain, split_dataset(df, seed=seed, duplicates=None))
    assert plain["fold"].tolist() == _old_split(df, seed=seed).tolist()
    # Pairs that join nothing (empty, or naming images not in df) change nothing either.
    for pairs in (find_like_empty(), pairs_of(("ghost1.jpg", "ghost2.jpg"), ("img_000.jpg", "ghost1.jpg"))):
        pd.testing.assert_frame_equal(plain, split_dataset(df, seed=seed, duplicates=pairs))


def test_planted_pair_crosses_folds_without_duplicates_but_not_with():
    df = random_table(np.random.default_rng(7), 40, 40)  # every image its own group
    a, b = "img_010.jpg", "img_030.jpg"
    pairs = pairs_of((a, b), similarity=[0.95])
    crossed = []
    for seed in range(8):
        plain = split_dataset(df, seed=seed)
        merged = split_dataset(df, seed=seed, duplicates=pairs)
        folds = plain.set_index("path")["fold"]
        if folds[a] != folds[b]:
            crossed.append(seed)
            leaks = check_leakage(plain, pairs)
            assert leaks[["path_a", "path_b", "fold_a", "fold_b"]].values.tolist() == [[a, b, folds[a], folds[b]]]
        else:
            assert check_leakage(plain, pairs).empty
        m = merged.set_index("path")["fold"]
        assert m[a] == m[b]
        assert check_leakage(merged, pairs).empty
    assert crossed, "the pair never crossed folds without duplicates=: the merged test proves nothing"


def test_split_ungrouped_with_duplicates_keeps_pairs_together():
    df = random_table(np.random.default_rng(1), 100, 10)  # few groups: ungrouped splits them
    pairs = random_pairs(np.random.default_rng(2), df, 20)
    for seed in range(5):
        split = split_dataset(df, seed=seed, grouped=False, duplicates=pairs)
        assert check_leakage(split, pairs).empty
        assert split["group"].equals(df["group"])
    assert not no_group_crosses(split_dataset(df, seed=0, grouped=False, duplicates=pairs))


def test_split_with_numeric_groups_keeps_their_dtype():
    df = random_table(np.random.default_rng(4), 80, 40)
    df["group"] = df["group"].str[1:].astype(int)
    pairs = random_pairs(np.random.default_rng(5), df, 10)
    split = split_dataset(df, seed=2, duplicates=pairs)
    assert split["group"].dtype == df["group"].dtype and split["group"].equals(df["group"])
    assert check_leakage(split, pairs).empty and no_group_crosses(split)


# --------------------------------------------------------------------------- check_leakage


def _folded():
    return pd.DataFrame({
        "path": ["a", "b", "c", "d", "e", "f", "g", "h"],
        "fold": ["train", "train", "test", "val", "test", "test", "test", "val"],
        "source_split": ["train", "train", "train", "test", "test", "test", "train", "test"],
    })


def test_check_leakage_counts_and_summary():
    df = _folded()
    dups = pairs_of(
        ("a", "b"),  # train-train: fine
        ("a", "c"),  # train-test: leak
        ("d", "e"),  # val-test: leak
        ("f", "g"),  # test-test: fine
        ("g", "b"),  # test-train: leak (either order counts the same)
        ("h", "nowhere.jpg"),  # not in df: ignored
        similarity=[1.0, 0.99, 0.97, 0.95, 0.93, 0.9],
    )
    before = dups.copy()
    leaks = check_leakage(df, dups)
    pd.testing.assert_frame_equal(dups, before)
    assert "summary" not in dups.attrs
    assert leaks[["path_a", "path_b", "fold_a", "fold_b"]].values.tolist() == [
        ["a", "c", "train", "test"], ["d", "e", "val", "test"], ["g", "b", "test", "train"]]
    assert list(leaks["similarity"]) == [0.99, 0.97, 0.93]  # most similar first (input order kept)
    assert leaks.index.tolist() == [0, 1, 2]
    assert leaks.attrs["summary"] == "3 of 5 duplicate pairs cross folds (test-train 2, test-val 1)"


def test_check_leakage_without_leaks():
    df = _folded()
    leaks = check_leakage(df, pairs_of(("a", "b"), ("f", "g"), ("x", "y")))
    assert leaks.empty and {"fold_a", "fold_b"} <= set(leaks.columns)
    assert leaks.attrs["summary"] == "0 of 2 duplicate pairs cross folds"


def test_check_leakage_uses_source_split_without_fold():
    df = _folded().drop(columns="fold")
    dups = pairs_of(("a", "b"), ("a", "c"), ("d", "e"), ("f", "g"), ("c", "h"))
    leaks = check_leakage(df, dups)
    assert leaks[["path_a", "path_b"]].values.tolist() == [["f", "g"], ["c", "h"]]
    assert leaks.attrs["summary"] == "2 of 5 duplicate pairs cross source_split values (test-train 2)"
    # An explicit column wins over fold.
    both = _folded()
    assert check_leakage(both, dups, column="source_split")["path_a"].tolist() == ["f", "c"]
    assert check_leakage(both, dups)["path_a"].tolist() == ["a", "d", "c"]


def test_check_leakage_errors():
    df = _folded().drop(columns=["fold", "source_split"])
    with pytest.raises(ValueError, match="no 'fold' column.*source_split"):
        check_leakage(df, pairs_of(("a", "b")))
    # A class-folder dataset without train/test folders has source_split "" everywhere.
    with pytest.raises(ValueError, match="no 'fold' column"):
        check_leakage(df.assign(source_split=""), pairs_of(("a", "b")))
    with pytest.raises(ValueError, match="no column 'split'"):
        check_leakage(_folded(), pairs_of(("a", "b")), column="split")
    with pytest.raises(ValueError, match="path_a"):
        check_leakage(_folded(), pd.DataFrame({"a": ["a"], "path_b": ["b"]}))


# --------------------------------------------------------------------------- drop_leaked


def _published():
    """A dataset with its own train/ and test/ folders."""
    return pd.DataFrame({
        "path": ["tr1", "tr2", "tr3", "te1", "te2", "te3", "te4", "te5", "te6"],
        "label": [0, 1, 0, 1, 0, 1, 0, 1, 0],
        "group": ["tr1", "tr2", "tr3", "te1", "te2", "te3", "te4", "te5", "te6"],
        "source_split": ["train"] * 3 + ["test"] * 6,
    })


def test_drop_leaked_drops_exactly_the_test_side_of_leaks():
    df = _published()
    df.attrs["layout"] = "class_folders"
    before, before_attrs = df.copy(), dict(df.attrs)
    dups = pairs_of(
        ("tr1", "te1"),  # leak, test image second
        ("te4", "tr2"),  # leak, test image first
        ("te2", "te3"),  # both in test: kept
        ("tr1", "tr3"),  # both in train: kept
        ("te5", "tr3"), ("te5", "tr2"),  # one test image, two leaks: dropped once
        ("te6", "outside.jpg"),  # not in df: ignored
    )
    out = drop_leaked(df, dups)
    pd.testing.assert_frame_equal(df, before)  # the input is never modified
    assert df.attrs == before_attrs and "dropped" not in df.attrs
    assert out.attrs["dropped"] == ["te1", "te4", "te5"]
    assert out["path"].tolist() == ["tr1", "tr2", "tr3", "te2", "te3", "te6"]
    pd.testing.assert_frame_equal(out, df.loc[out.index])  # rows as they were, original index
    # Only test rows are ever dropped, and none of those left has a copy outside test.
    assert set(df["path"]) - set(out["path"]) <= set(df.loc[df["source_split"] == "test", "path"])
    assert check_leakage(out, dups).empty
    out.loc[out.index[0], "label"] = 9  # a new table, not a view
    assert df["label"].iloc[0] == 0


def test_drop_leaked_with_fold_column_and_custom_test_name():
    df = _published().drop(columns="source_split")
    df["fold"] = ["train", "val", "train", "holdout", "holdout", "val", "holdout", "train", "holdout"]
    dups = pairs_of(("tr1", "te1"), ("te2", "te4"), ("te3", "te4"), ("tr2", "te3"))
    out = drop_leaked(df, dups, test="holdout")
    # te1 (copy in train) and te4 (copy in val) go, and so does te2: its copy te4 has a
    # copy in val (chains are followed, as merge_groups follows them).
    assert out.attrs["dropped"] == ["te1", "te2", "te4"]
    assert "te3" in set(out["path"])  # te3 is val, never dropped
    direct = drop_leaked(df, pairs_of(("tr1", "te1"), ("te2", "te4")), test="holdout")
    assert direct.attrs["dropped"] == ["te1"]  # te2 and te4 are copies of each other, both in holdout
    assert drop_leaked(df, pairs_of(), test="holdout").attrs["dropped"] == []
    assert len(drop_leaked(df, pairs_of(), test="holdout")) == len(df)


def test_drop_leaked_errors():
    df = _published()
    with pytest.raises(ValueError, match="no rows with source_split == 'test'"):
        drop_leaked(df.assign(source_split="train"), pairs_of(("tr1", "te1")))
    with pytest.raises(ValueError, match=r"no rows with source_split == 'holdout'.*\['test', 'train'\]"):
        drop_leaked(df, pairs_of(("tr1", "te1")), test="holdout")
    with pytest.raises(ValueError, match="no 'fold' column"):
        drop_leaked(df.drop(columns="source_split"), pairs_of(("tr1", "te1")))


# --------------------------------------------------------------------------- end to end


def _write(path, img, quality=92):
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    buf.tofile(path)


def test_end_to_end_planted_copies_across_train_and_test(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "mvb"
    for split, n in (("train", 8), ("test", 4)):
        for cls in ("benign", "malignant"):
            for i in range(n):
                _write(root / split / cls / f"{i}.jpg", draw_lesion_image(rng, cls == "malignant", size=144))
    # Copies of training images published in test/: resized, and flipped + re-encoded; and a byte copy.
    src = cv2.imread(str(root / "train" / "benign" / "3.jpg"))
    _write(root / "test" / "benign" / "copy_resized.jpg", cv2.resize(src, (224, 224)))
    src = cv2.imread(str(root / "train" / "malignant" / "5.jpg"))
    _write(root / "test" / "malignant" / "copy_flipped.jpg", np.ascontiguousarray(src[:, ::-1]), 70)
    shutil.copyfile(root / "train" / "malignant" / "1.jpg", root / "test" / "malignant" / "copy_bytes.jpg")
    # A copy within test: not a leak.
    shutil.copyfile(root / "test" / "benign" / "0.jpg", root / "test" / "benign" / "copy_in_test.jpg")

    df = load_dataset(root)
    pairs = find_duplicates(df, progress=False)
    assert len(pairs) == 4
    leaks = check_leakage(df, pairs)
    assert len(leaks) == 3
    assert leaks.attrs["summary"] == "3 of 4 duplicate pairs cross source_split values (test-train 3)"
    out = drop_leaked(df, pairs)
    assert sorted(p.rsplit("/", 1)[-1] for p in out.attrs["dropped"]) == [
        "copy_bytes.jpg", "copy_flipped.jpg", "copy_resized.jpg"]
    assert len(out) == len(df) - 3
    assert check_leakage(out, pairs).empty
    # Re-splitting the pooled data with the pairs keeps every copy with its original.
    split = split_dataset(df.drop(columns="source_split"), seed=1, test_size=0.25, val_size=0, duplicates=pairs)
    assert check_leakage(split, pairs).empty
