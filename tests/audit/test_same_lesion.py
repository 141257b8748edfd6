"""find_same_lesion: other photographs of one lesion found, unrelated lesions never paired."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

import skinlib
from skinlib.audit._local_features import image_local_features, lesion_mask, local_features, match_pair
from skinlib.audit import MIN_INLIERS, candidate_pairs, find_same_lesion
from skinlib.data import merge_pairs


def _photo_again(img: np.ndarray, angle: float, zoom: float, shift: tuple[float, float], gain: float) -> np.ndarray:
    """Another photograph of the lesion in ``img``: turned, zoomed, moved and relit."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
    m[:, 2] += (shift[0] * w, shift[1] * h)
    out = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    return np.clip(out.astype(np.float32) * gain, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def lesions(tmp_path_factory):
    """24 drawn lesions, 4 of them photographed a second time under another name."""
    root = tmp_path_factory.mktemp("lesions")
    rng = np.random.default_rng(7)
    rows, planted = [], []
    for i in range(24):
        img = cv2.resize(skinlib.data.draw_lesion_image(rng, bool(i % 3 == 0)), (200, 150))
        path = root / f"lesion_{i:02d}.jpg"
        cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        rows.append({"path": str(path), "label": int(i % 3 == 0), "age": 40 + i, "sex": "male", "site": "back"})
        if i < 4:
            again = _photo_again(img, angle=25 + 10 * i, zoom=1.1 + 0.04 * i, shift=(0.03, -0.02), gain=0.85 + 0.1 * i)
            other = root / f"again_{i:02d}.jpg"
            cv2.imwrite(str(other), again, [cv2.IMWRITE_JPEG_QUALITY, 88])
            rows.append({"path": str(other), "label": int(i % 3 == 0), "age": 40 + i, "sex": "male", "site": "back"})
            planted.append(tuple(sorted((str(path), str(other)))))
    return pd.DataFrame(rows), set(planted)


def _found(pairs: pd.DataFrame) -> set:
    return {tuple(sorted(p)) for p in zip(pairs["path_a"], pairs["path_b"])}


def test_planted_photographs_are_found_and_nothing_else(lesions):
    df, planted = lesions
    pairs = find_same_lesion(df, metadata=False, progress=False)
    assert _found(pairs) == planted
    assert (pairs["kind"] == "same lesion").all()
    assert (pairs["inliers"] >= MIN_INLIERS).all()
    # The fitted transforms are the planted turns (25-55 degrees; OpenCV's angle is counter-clockwise).
    assert pairs["rotation"].abs().between(20, 60).all()
    assert pairs["similarity"].between(0, 1).all()
    # Where the time went, and how many candidates were checked to find them.
    assert set(pairs.attrs["seconds"]) == {"features", "candidates", "verification"}
    assert all(s >= 0 for s in pairs.attrs["seconds"].values())
    assert pairs.attrs["candidates_verified"] >= len(pairs)


def test_the_copy_finder_does_not_see_them(lesions):
    df, planted = lesions
    copies = skinlib.find_duplicates(df, progress=False)
    assert not (_found(copies) & planted)


def test_same_seed_same_pairs_and_the_cache_gives_the_same(lesions, tmp_path):
    df, _ = lesions
    first = find_same_lesion(df, progress=False, cache_dir=tmp_path)
    assert list(tmp_path.glob("lesion-features-*.npz"))
    again = find_same_lesion(df, progress=False, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(first, again)


def test_metadata_lowers_the_bar_but_never_makes_a_pair_alone(lesions):
    df, planted = lesions
    # Every image has the same sex and site; ages differ except within a planted pair.
    strict = find_same_lesion(df, min_inliers=10_000, min_inliers_metadata=10_000, progress=False)
    assert strict.empty  # the metadata agree for the planted pairs, but the images must match too
    loose = find_same_lesion(df, min_inliers=10_000, min_inliers_metadata=8, progress=False)
    assert _found(loose) == planted and loose["metadata_agree"].all()
    assert loose["evidence"].str.contains("age, sex and site agree").all()
    unknown = find_same_lesion(df.assign(site=""), min_inliers=10_000, min_inliers_metadata=8, progress=False)
    assert unknown.empty  # an unknown site is no agreement


def test_pairs_across_two_tables_name_one_image_of_each(lesions):
    df, planted = lesions
    again = df[df["path"].str.contains("again_")]
    first = df[~df["path"].str.contains("again_")]
    pairs = find_same_lesion(again, first, progress=False)
    assert _found(pairs) == planted
    assert pairs["path_a"].str.contains("again_").all() and pairs["path_b"].str.contains("lesion_").all()


def test_pairs_work_with_splits_and_leakage_checks(lesions):
    df, planted = lesions
    pairs = merge_pairs(skinlib.find_duplicates(df, progress=False), find_same_lesion(df, progress=False))
    split = skinlib.split_dataset(df.assign(group=df["path"]), duplicates=pairs, seed=0)
    fold = dict(zip(split["path"], split["fold"]))
    assert all(fold[a] == fold[b] for a, b in planted)
    assert skinlib.check_leakage(split, pairs).empty
    naive = skinlib.split_dataset(df.assign(group=df["path"]), seed=0)
    leaks = skinlib.check_leakage(naive, pairs)
    assert len(leaks) == sum(dict(zip(naive["path"], naive["fold"]))[a] != dict(zip(naive["path"], naive["fold"]))[b]
                             for a, b in planted)


def test_an_unreadable_image_is_skipped_and_listed(lesions, tmp_path):
    df, planted = lesions
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.warns(UserWarning, match="skipped 1 image"):
        pairs = find_same_lesion(pd.concat([df, pd.DataFrame({"path": [str(bad)]})]), progress=False)
    assert _found(pairs) == planted
    assert skinlib.skipped_files(pairs)["path"].tolist() == [str(bad)]


def test_bad_arguments_name_the_value(lesions):
    df, _ = lesions
    with pytest.raises(ValueError, match="'path' column"):
        find_same_lesion(df.drop(columns="path"))
    with pytest.raises(ValueError, match="candidates must be a whole number >= 1, got 0"):
        find_same_lesion(df, candidates=0)


def test_match_pair_recovers_a_known_turn_and_rejects_an_unrelated_image():
    rng = np.random.default_rng(3)
    img = cv2.resize(skinlib.data.draw_lesion_image(rng, True), (200, 150))
    other = cv2.resize(skinlib.data.draw_lesion_image(rng, True), (200, 150))
    turned = _photo_again(img, angle=40, zoom=1.2, shift=(0, 0), gain=1.1)
    m = match_pair(*local_features(img), *local_features(turned))
    assert m.inliers >= 3 * MIN_INLIERS
    assert abs(m.rotation) == pytest.approx(40, abs=3) and m.scale == pytest.approx(1.2, abs=0.05)
    assert match_pair(*local_features(img), *local_features(other)).inliers < MIN_INLIERS


def test_the_mask_keeps_the_vignette_out():
    img = np.full((150, 200), 140, np.uint8)
    cv2.circle(img, (100, 75), 60, 90, -1)
    img[:, :15] = 0  # a dark vignette edge
    mask = lesion_mask(img)
    assert mask[:, :16].max() == 0 and mask[75, 100] == 255 and mask[0, 100] == 0


def test_candidates_point_to_the_other_photograph(lesions):
    df, planted = lesions
    feats = image_local_features(df["path"], progress=False)
    cands = candidate_pairs(feats, candidates=2, progress=False)
    found = {tuple(sorted((feats.paths[i], feats.paths[j]))) for i, j in zip(cands["i"], cands["j"])}
    assert planted <= found
    assert (cands["i"] < cands["j"]).all() and len(cands) <= 2 * len(feats.paths)


def test_merge_pairs_keeps_the_first_kind_and_checks_columns():
    copies = pd.DataFrame({"path_a": ["a", "x"], "path_b": ["b", "y"], "kind": ["identical", "near"]})
    same = pd.DataFrame({"path_a": ["y", "c"], "path_b": ["x", "d"], "kind": ["same lesion"] * 2, "inliers": [9, 12]})
    merged = merge_pairs(copies, same)
    assert merged[["path_a", "path_b", "kind"]].values.tolist() == [["a", "b", "identical"], ["x", "y", "near"],
                                                                    ["c", "d", "same lesion"]]
    with pytest.raises(ValueError, match="table 1 lacks"):
        merge_pairs(copies, pd.DataFrame({"a": [1]}))
