"""find_duplicates: planted copies of every kind are found, unrelated lesions are not.

The images are drawn with skinlib.data._sample.draw_lesion_image (small, 128-200 px) and
written as JPEG under tmp_path; each planted copy is made from a source image with one
transform (re-encoding, resizing, a centre crop, a flip, a quarter turn, a shift of
brightness or colour), so the expected pairs, kinds and transforms are known.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import skinlib
from skinlib import find_duplicates, skipped_files
from skinlib.audit import (
    CANDIDATE_BITS,
    candidate_bits,
    CROP_MARGINS,
    DEFAULT_THRESHOLD,
    TRANSFORMS,
    image_signature,
    image_signatures,
    phash,
)
from skinlib.data import draw_lesion_image


def write(path: Path, img: np.ndarray, quality: int = 92) -> str:
    ok, buf = cv2.imencode(path.suffix, img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    buf.tofile(path)
    return str(path)


def source_image(seed: int, malignant: bool) -> np.ndarray:
    """A non-square (176 x 200) drawn lesion: a squashed copy changes its aspect ratio."""
    return np.ascontiguousarray(draw_lesion_image(np.random.default_rng(seed), malignant, size=200)[12:188])


def centre_crop(img: np.ndarray, margin: float) -> np.ndarray:
    h, w = img.shape[:2]
    dy, dx = int(round(h * margin)), int(round(w * margin))
    return np.ascontiguousarray(img[dy : h - dy, dx : w - dx])


def shift(img: np.ndarray, delta) -> np.ndarray:
    return np.clip(img.astype(np.int16) + np.asarray(delta, np.int16), 0, 255).astype(np.uint8)


# name: (make the copy from the source, JPEG quality, expected transform: a string or a regex)
VARIANTS = {
    "q60": (lambda x: x, 60, ""),
    "half": (lambda x: cv2.resize(x, (x.shape[1] // 2, x.shape[0] // 2), interpolation=cv2.INTER_AREA), 92, ""),
    "squashed224": (lambda x: cv2.resize(x, (224, 224), interpolation=cv2.INTER_AREA), 92, ""),
    "crop3": (lambda x: centre_crop(x, 0.03), 92, re.compile(r"crop (\d+)% of a")),
    "crop5": (lambda x: centre_crop(x, 0.05), 92, re.compile(r"crop (\d+)% of a")),
    "flip": (lambda x: np.ascontiguousarray(x[:, ::-1]), 92, "flip"),
    "rot90": (lambda x: np.ascontiguousarray(np.rot90(x, 1)), 92, "rot90"),
    "rot180": (lambda x: np.ascontiguousarray(np.rot90(x, 2)), 92, "rot180"),
    "rot270": (lambda x: np.ascontiguousarray(np.rot90(x, 3)), 92, "rot270"),
    "bright15": (lambda x: shift(x, 15), 92, ""),
    "colour": (lambda x: shift(x, [-8, 0, 10]), 92, ""),
}
PLANTED_MARGIN = {"crop3": 3, "crop5": 5}
SOURCES = [(11, True), (12, False), (13, True)]


def plant(folder: Path) -> tuple[pd.DataFrame, dict]:
    """Sources, each followed by its copies; returns the table and {source path: {name: copy path}}."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, copies = [], {}
    for s, (seed, malignant) in enumerate(SOURCES):
        src = source_image(seed, malignant)
        src_path = write(folder / f"src{s}.jpg", src)
        paths.append(src_path)
        copies[src_path] = {}
        byte_copy = folder / f"src{s}_renamed_copy.jpg"
        shutil.copyfile(src_path, byte_copy)
        copies[src_path]["bytes"] = str(byte_copy)
        for name, (make, quality, _) in VARIANTS.items():
            copies[src_path][name] = write(folder / f"src{s}_{name}.jpg", make(src), quality)
        paths += list(copies[src_path].values())
    return pd.DataFrame({"path": paths, "label": 0, "group": [Path(p).stem for p in paths]}), copies


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    df, copies = plant(tmp_path_factory.mktemp("planted"))
    return df, copies, find_duplicates(df, progress=False)


def pair_index(pairs: pd.DataFrame) -> dict:
    return {(a, b): row for (a, b), row in zip(zip(pairs["path_a"], pairs["path_b"]), pairs.itertuples())}


# --------------------------------------------------------------------------- phash


def _imagehash_words(thumb: np.ndarray, hash_size: int) -> np.ndarray:
    imagehash = pytest.importorskip("imagehash")
    from PIL import Image

    bits = imagehash.phash(Image.fromarray(thumb), hash_size=hash_size).hash.flatten()
    return np.packbits(bits).view(">u8").astype(np.uint64)


@pytest.mark.parametrize("hash_size", [8, 16])
def test_phash_bit_identical_to_imagehash(hash_size):
    side = 4 * hash_size
    rng = np.random.default_rng(hash_size)
    noise = rng.integers(0, 256, (40, side, side), dtype=np.uint8)
    lesions = np.stack([
        cv2.resize(cv2.cvtColor(draw_lesion_image(rng, bool(i % 2), size=128), cv2.COLOR_BGR2GRAY), (side, side),
                   interpolation=cv2.INTER_AREA)
        for i in range(12)
    ])
    ramp = np.tile(np.linspace(0, 255, side).astype(np.uint8), (side, 1))
    special = np.stack([np.full((side, side), 0, np.uint8), np.full((side, side), 200, np.uint8), ramp, ramp.T])
    thumbs = np.concatenate([noise, lesions, special])
    ours = phash(thumbs, hash_size)
    assert ours.dtype == np.uint64 and ours.shape == (len(thumbs), hash_size**2 // 64)
    theirs = np.stack([_imagehash_words(t, hash_size) for t in thumbs])
    np.testing.assert_array_equal(ours, theirs)
    # Not trivially equal: the hashes tell the images apart.
    assert len({tuple(h) for h in ours[:52]}) == 52


def test_phash_rejects_wrong_thumbnail_shape():
    with pytest.raises(ValueError, match=r"\(N, 32, 32\)"):
        phash(np.zeros((2, 64, 64), np.uint8), 8)
    with pytest.raises(ValueError, match="shape"):
        phash(np.zeros((32, 32), np.uint8), 8)


# --------------------------------------------------------------------------- planted copies


def test_every_kind_of_planted_copy_is_found(planted):
    df, copies, pairs = planted
    found = pair_index(pairs)
    assert list(pairs.columns) == ["path_a", "path_b", "similarity", "kind", "transform"]
    for src, made in copies.items():
        for name, copy in made.items():
            assert (src, copy) in found, f"{name} copy of {Path(src).name} not found"
            row = found[(src, copy)]
            assert DEFAULT_THRESHOLD <= row.similarity <= 1.0, name
            if name == "bytes":
                assert (row.kind, row.similarity, row.transform) == ("identical", 1.0, ""), name
                continue
            assert row.kind == "near", name
            expected = VARIANTS[name][2]
            if isinstance(expected, str):
                assert row.transform == expected, (name, row.transform)
            else:  # a centre crop: matched by a hashed crop of the source next to the planted margin
                m = expected.fullmatch(row.transform)
                assert m, (name, row.transform)
                assert int(m.group(1)) / 100 in CROP_MARGINS
                assert abs(int(m.group(1)) - PLANTED_MARGIN[name]) <= 1, (name, row.transform)


def test_only_the_byte_copy_is_identical_and_no_cross_source_pairs(planted):
    df, copies, pairs = planted
    ident = pairs[pairs["kind"] == "identical"]
    assert set(zip(ident["path_a"], ident["path_b"])) == {(s, m["bytes"]) for s, m in copies.items()}
    assert set(pairs["kind"]) == {"identical", "near"}
    source_of = {p: s for s, m in copies.items() for p in [s, *m.values()]}
    assert all(source_of[a] == source_of[b] for a, b in zip(pairs["path_a"], pairs["path_b"]))
    # Within one table: each unordered pair once, in table order, never an image with itself.
    order = {p: i for i, p in enumerate(df["path"])}
    assert all(order[a] < order[b] for a, b in zip(pairs["path_a"], pairs["path_b"]))
    assert not pairs.duplicated(["path_a", "path_b"]).any()


def test_same_pixels_in_another_file_format_are_identical(tmp_path):
    img = source_image(21, False)
    jpg = write(tmp_path / "a.jpg", img)
    png = tmp_path / "a_lossless.png"
    ok, buf = cv2.imencode(".png", skinlib.read_image(jpg, color=True))
    assert ok
    buf.tofile(png)
    pairs = find_duplicates(pd.DataFrame({"path": [jpg, str(png)]}), progress=False)
    assert pairs[["path_a", "path_b", "kind", "similarity"]].values.tolist() == [[jpg, str(png), "identical", 1.0]]


def test_unrelated_lesions_are_not_paired(tmp_path):
    rng = np.random.default_rng(2024)
    paths = [
        write(tmp_path / f"u{i:02d}.jpg", draw_lesion_image(rng, bool(i % 3 == 0), skin=i % 5, size=int(rng.integers(128, 161))))
        for i in range(40)
    ]
    pairs = find_duplicates(pd.DataFrame({"path": paths}), progress=False)
    assert len(pairs) == 0, pairs
    assert list(pairs.columns) == ["path_a", "path_b", "similarity", "kind", "transform"]
    # The same set with one planted copy: exactly that pair (the search is not just empty).
    shutil.copyfile(paths[7], tmp_path / "copy.jpg")
    write(tmp_path / "flip.jpg", cv2.imread(paths[20])[:, ::-1].copy(), 80)
    pairs = find_duplicates(pd.DataFrame({"path": paths + [str(tmp_path / "copy.jpg"), str(tmp_path / "flip.jpg")]}),
                            progress=False)
    assert set(zip(pairs["path_a"], pairs["path_b"], pairs["kind"])) == {
        (paths[7], str(tmp_path / "copy.jpg"), "identical"), (paths[20], str(tmp_path / "flip.jpg"), "near")}


def test_other_returns_only_cross_pairs(planted):
    _, copies, _ = planted
    (s0, m0), (s1, m1) = list(copies.items())[:2]
    df = pd.DataFrame({"path": [s0, m0["flip"], s1]})
    other = pd.DataFrame({"path": [m0["bytes"], m0["rot90"], m1["half"], m1["q60"], list(copies)[2]]})
    pairs = find_duplicates(df, other, progress=False)
    assert set(pairs["path_a"]) <= set(df["path"]) and set(pairs["path_b"]) <= set(other["path"])
    got = set(zip(pairs["path_a"], pairs["path_b"]))
    assert got == {
        (s0, m0["bytes"]), (s0, m0["rot90"]), (m0["flip"], m0["bytes"]), (m0["flip"], m0["rot90"]),
        (s1, m1["half"]), (s1, m1["q60"]),
    }
    # The pairs within each table are real duplicates, but not asked for.
    within = find_duplicates(df, progress=False), find_duplicates(other, progress=False)
    assert (s0, m0["flip"]) in set(zip(within[0]["path_a"], within[0]["path_b"]))
    assert (m1["half"], m1["q60"]) in set(zip(within[1]["path_a"], within[1]["path_b"]))
    assert kind_of(pairs, s0, m0["bytes"]) == "identical"
    assert kind_of(pairs, m0["flip"], m0["rot90"]) == "near"


def kind_of(pairs, a, b):
    return pairs.loc[(pairs["path_a"] == a) & (pairs["path_b"] == b), "kind"].item()


def test_ranking_and_threshold(planted):
    df, _, pairs = planted
    sim = pairs["similarity"].to_numpy()
    assert (np.diff(sim) <= 0).all()
    # Most similar first; at equal similarity identical pixels first, then by path.
    expected_order = pairs.assign(near=pairs["kind"] != "identical").sort_values(
        ["similarity", "near", "path_a", "path_b"], ascending=[False, True, True, True]).drop(columns="near")
    assert pairs.index.tolist() == list(range(len(pairs)))
    pd.testing.assert_frame_equal(pairs, expected_order.reset_index(drop=True))
    first_near = (pairs["kind"] == "near").idxmax()
    assert (pairs.loc[: first_near - 1, "kind"] == "identical").all() and (pairs["similarity"][:first_near] == 1).all()
    assert (sim >= DEFAULT_THRESHOLD).all()
    previous = pairs
    sizes = [len(pairs)]
    for threshold in (0.93, 0.96, 0.99, 1.0):
        higher = find_duplicates(df, threshold=threshold, progress=False)
        assert (higher["similarity"] >= threshold).all()
        assert (np.diff(higher["similarity"].to_numpy()) <= 0).all()
        merged = higher.merge(previous, on=["path_a", "path_b"], how="left", suffixes=("", "_prev"), indicator=True)
        assert (merged["_merge"] == "both").all(), "a higher threshold returned a pair a lower one did not"
        assert (merged["similarity"] == merged["similarity_prev"]).all()
        # Exactly the pairs of the lower threshold that reach this one.
        assert len(higher) == int((previous["similarity"] >= threshold).sum())
        previous = higher
        sizes.append(len(higher))
    assert sizes[0] > sizes[-1] > 0  # the thresholds did cut (crops score lower than exact copies)
    assert set(previous["kind"]) >= {"identical"}


def brute_force(paths: list[str]) -> dict[tuple[str, str], tuple[float, int]]:
    """Every pair's (similarity, 64-bit distance) by the documented rule, with no search
    shortcut: 1 - the smallest Hamming distance / 256 of the 256-bit hashes over the
    compared variants (each orientation of a against b as it is; each centre crop of one
    side against the other's full frame), and the smallest 64-bit distance over the same."""
    sigs = [image_signature(skinlib.read_image(p, color=True)) for p in paths]
    h64 = np.stack([s[1] for s in sigs])
    h256 = np.stack([s[2] for s in sigs])
    n_orient = TRANSFORMS.index("flip+rot270") + 1
    crops = range(n_orient, len(TRANSFORMS))
    variants = [(k, 0) for k in range(n_orient)] + [(c, 0) for c in crops] + [(0, c) for c in crops]
    i, j = np.triu_indices(len(paths), 1)
    dist = np.min([np.bitwise_count(h256[i, va] ^ h256[j, vb]).sum(axis=1) for va, vb in variants], axis=0)
    d64 = np.min([np.bitwise_count(h64[i, va] ^ h64[j, vb]) for va, vb in variants], axis=0)
    return {(paths[a], paths[b]): (1 - d / 256, int(e)) for a, b, d, e in zip(i, j, dist, d64)}


def brute_force_similarity(paths: list[str]) -> dict[tuple[str, str], float]:
    return {k: v for k, (v, _) in brute_force(paths).items()}


def test_search_equals_brute_force_at_default_threshold(planted):
    df, _, pairs = planted
    brute = brute_force_similarity(list(df["path"]))
    want = {k: v for k, v in brute.items() if v >= DEFAULT_THRESHOLD}
    got = dict(zip(zip(pairs["path_a"], pairs["path_b"]), pairs["similarity"]))
    assert set(got) == set(want)
    assert got == pytest.approx(want)


@pytest.mark.parametrize("threshold", [0.8, 0.72])
def test_lower_threshold_reports_every_candidate_pair_above_it(planted, threshold):
    """Below the default, the candidate filter widens (candidate_bits) and the result is
    exactly the pairs at or above the threshold among the candidates, as documented."""
    df, _, _ = planted
    brute = brute_force(list(df["path"]))
    bits = candidate_bits(threshold)
    assert bits > CANDIDATE_BITS
    want = {k for k, (v, d64) in brute.items() if v >= threshold and d64 <= bits}
    pairs = find_duplicates(df, threshold=threshold, progress=False)
    assert set(zip(pairs["path_a"], pairs["path_b"])) == want
    at_default = find_duplicates(df, progress=False)
    assert set(zip(at_default["path_a"], at_default["path_b"])) < want  # a lower threshold reaches further


# --------------------------------------------------------------------------- bad input


def test_unreadable_images_are_skipped_and_reported(tmp_path):
    img = source_image(31, True)
    good = write(tmp_path / "good.jpg", img)
    flipped = write(tmp_path / "good_flipped.jpg", np.ascontiguousarray(img[:, ::-1]))
    data = Path(good).read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "note.jpg"
    text.write_bytes(b"this is a note, not a picture\n")
    other_bad = tmp_path / "other_bad.jpg"
    other_bad.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    df = pd.DataFrame({"path": [str(truncated), good, str(empty), str(text), flipped]})
    with pytest.warns(UserWarning, match=r"skipped 3 image\(s\).*skipped_files") as record:
        pairs = find_duplicates(df, progress=False)
    assert any(w.filename == __file__ for w in record), "the warning should point at the caller"
    assert pairs[["path_a", "path_b", "kind", "transform"]].values.tolist() == [[good, flipped, "near", "flip"]]
    report = skipped_files(pairs)
    assert list(report.columns) == ["path", "reason"]
    reasons = dict(zip(report["path"], report["reason"]))
    assert set(reasons) == {str(truncated), str(empty), str(text)}
    assert "not a decodable image" in reasons[str(truncated)]
    assert "empty" in reasons[str(empty)]
    assert "not a decodable image" in reasons[str(text)]
    # Bad files in `other` are reported too; nothing raises.
    with pytest.warns(UserWarning, match=r"skipped 3"):
        cross = find_duplicates(df.iloc[[1, 2]], pd.DataFrame({"path": [flipped, str(other_bad), str(truncated)]}),
                                progress=False)
    assert list(zip(cross["path_a"], cross["path_b"])) == [(good, flipped)]
    assert sorted(skipped_files(cross)["path"]) == sorted([str(empty), str(other_bad), str(truncated)])


def test_only_unreadable_images_give_an_empty_table(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.jpg").write_bytes(b"GIF89a not really")
    with pytest.warns(UserWarning, match="skipped 2"):
        pairs = find_duplicates(pd.DataFrame({"path": [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")]}),
                                progress=False)
    assert len(pairs) == 0 and list(pairs.columns) == ["path_a", "path_b", "similarity", "kind", "transform"]
    assert len(skipped_files(pairs)) == 2


def test_no_warning_and_empty_report_when_all_images_read(planted):
    _, copies, _ = planted
    src, made = next(iter(copies.items()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pairs = find_duplicates(pd.DataFrame({"path": [src, made["rot180"]]}), progress=False)
    assert len(pairs) == 1 and skipped_files(pairs).empty


@pytest.mark.parametrize("threshold", [0, -0.5, 1.0001, 2, float("nan")])
def test_threshold_outside_unit_interval_is_an_error(planted, threshold):
    df = planted[0].iloc[:2]
    with pytest.raises(ValueError, match=r"threshold must be a similarity in \(0, 1\]"):
        find_duplicates(df, threshold=threshold, progress=False)


def test_table_without_path_column_is_an_error(planted):
    df = planted[0].iloc[:2]
    with pytest.raises(ValueError, match="df lacks a 'path' column"):
        find_duplicates(df.rename(columns={"path": "file"}), progress=False)
    with pytest.raises(ValueError, match="other lacks a 'path' column"):
        find_duplicates(df, df.rename(columns={"path": "file"}), progress=False)


# --------------------------------------------------------------------------- cache


def _tmp_files(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if name.endswith(".tmp")]


def test_cache_reuses_signatures_and_notices_changes(tmp_path):
    df, copies = plant(tmp_path / "img")
    df = df.iloc[:13]  # one source and its copies
    src = df["path"][0]
    cache = tmp_path / "cache"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = find_duplicates(df, cache_dir=cache, progress=False)
    files = sorted(os.listdir(cache))
    assert len(files) == 1 and files[0].startswith("signatures-") and files[0].endswith(".npz")
    assert _tmp_files(cache) == []
    sig = image_signatures(df["path"], cache_dir=cache, progress=False)
    assert sig.from_cache
    fresh = image_signatures(df["path"], progress=False)
    assert not fresh.from_cache
    assert sig.paths == fresh.paths
    np.testing.assert_array_equal(sig.digests, fresh.digests)
    np.testing.assert_array_equal(sig.h64, fresh.h64)
    np.testing.assert_array_equal(sig.h256, fresh.h256)
    second = find_duplicates(df, cache_dir=cache, progress=False)
    pd.testing.assert_frame_equal(first, second)
    assert sorted(os.listdir(cache)) == files  # nothing recomputed, nothing new written

    # Touching a file (new modification time) invalidates the cache.
    copy = copies[src]["flip"]
    st = os.stat(copy)
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert not image_signatures(df["path"], cache_dir=cache, progress=False).from_cache

    # Rewriting a file with other content: new signatures and the pair is gone.
    write(Path(copy), draw_lesion_image(np.random.default_rng(99), False, size=150))
    assert not image_signatures(df["path"], cache_dir=cache, progress=False).from_cache
    third = find_duplicates(df, cache_dir=cache, progress=False)
    assert (src, copy) in set(zip(first["path_a"], first["path_b"]))
    assert copy not in set(third["path_a"]) | set(third["path_b"])
    assert image_signatures(df["path"], cache_dir=cache, progress=False).from_cache
    assert _tmp_files(cache) == []


def test_cache_keeps_the_skipped_files(tmp_path):
    good = write(tmp_path / "a.jpg", source_image(41, False))
    shutil.copyfile(good, tmp_path / "b.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"")
    df = pd.DataFrame({"path": [good, str(tmp_path / "bad.jpg"), str(tmp_path / "b.jpg")]})
    runs = []
    for _ in range(2):
        with pytest.warns(UserWarning, match="skipped 1"):
            runs.append(find_duplicates(df, cache_dir=tmp_path / "cache", progress=False))
    assert image_signatures(df["path"], cache_dir=tmp_path / "cache", progress=False).from_cache
    pd.testing.assert_frame_equal(runs[0], runs[1])
    assert skipped_files(runs[1]).values.tolist() == [[str(tmp_path / "bad.jpg"), "file is empty (0 bytes), expected an image"]]
    assert skipped_files(runs[0]).equals(skipped_files(runs[1]))
    assert _tmp_files(tmp_path / "cache") == []


# --------------------------------------------------------------------------- image_signature


def test_image_signature_is_pure_and_shaped():
    img = source_image(51, True)
    before = img.copy()
    a, b = image_signature(img), image_signature(img.copy())
    np.testing.assert_array_equal(img, before)  # input untouched
    assert isinstance(a[0], bytes) and len(a[0]) == 16 and a[0] == b[0]
    assert a[1].shape == (len(TRANSFORMS),) and a[1].dtype == np.uint64
    assert a[2].shape == (len(TRANSFORMS), 4) and a[2].dtype == np.uint64
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    other = image_signature(source_image(52, True))
    assert other[0] != a[0] and not np.array_equal(other[2], a[2])
    # One changed pixel changes the digest (identical means identical).
    img2 = img.copy()
    img2[5, 5, 0] ^= 1
    assert image_signature(img2)[0] != a[0]


def test_image_signature_orientation_variants():
    img = source_image(53, False)
    _, h64, h256 = image_signature(img)
    for k, name in ((1, "rot90"), (2, "rot180"), (3, "rot270")):
        _, r64, r256 = image_signature(np.ascontiguousarray(np.rot90(img, k)))
        assert r64[0] == h64[TRANSFORMS.index(name)]
        np.testing.assert_array_equal(r256[0], h256[TRANSFORMS.index(name)])
    _, f64, _ = image_signature(np.ascontiguousarray(img[:, ::-1]))
    assert f64[0] == h64[TRANSFORMS.index("flip")]


def test_image_signature_accepts_grey_and_bgra():
    img = source_image(54, True)
    _, h64, h256 = image_signature(img)
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    bgra[..., 3] = np.random.default_rng(0).integers(0, 256, bgra.shape[:2], dtype=np.uint8)
    for arr in (grey, grey[..., None], bgra):
        digest, g64, g256 = image_signature(arr)
        np.testing.assert_array_equal(g64, h64)
        np.testing.assert_array_equal(g256, h256)
    # The digest is of the array as given: a grey version is not pixel-identical.
    assert image_signature(grey)[0] != image_signature(img)[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int64, bool])
def test_image_signature_rejects_non_uint8(dtype):
    img = source_image(55, False)
    with pytest.raises(ValueError, match="uint8"):
        image_signature(img.astype(dtype))
    with pytest.raises(ValueError, match="uint8"):
        image_signature(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(dtype))


@pytest.mark.parametrize("shape", [(0, 10, 3), (10, 0), (4, 4, 3, 1), (7,)])
def test_image_signature_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="expected a uint8 image"):
        image_signature(np.zeros(shape, np.uint8))


# --------------------------------------------------------------------------- determinism


def test_deterministic_across_calls_and_workers(planted):
    df, _, pairs = planted
    again = find_duplicates(df, progress=False)
    pd.testing.assert_frame_equal(pairs, again)
    serial = find_duplicates(df, workers=1, progress=False)
    pd.testing.assert_frame_equal(pairs, serial)
    assert pairs.attrs["skipped"] == again.attrs["skipped"] == []


def test_two_channel_images_are_refused_clearly():
    with pytest.raises(ValueError, match="C 1, 3 or 4"):
        image_signature(np.zeros((8, 8, 2), np.uint8))


def test_a_path_listed_twice_is_not_a_pair_with_itself(tmp_path):
    a = write(tmp_path / "a.jpg", source_image(41, False))
    b = write(tmp_path / "b.jpg", np.ascontiguousarray(source_image(41, False)[:, ::-1]))
    pairs = find_duplicates(pd.DataFrame({"path": [a, a, b]}), progress=False)
    assert (pairs["path_a"] != pairs["path_b"]).all()
    assert {(a, b)} <= set(zip(pairs["path_a"], pairs["path_b"]))
    across = find_duplicates(pd.DataFrame({"path": [a]}), pd.DataFrame({"path": [a, b]}), progress=False)
    assert list(zip(across["path_a"], across["path_b"])) == [(a, b)]


def test_all_images_unreadable_gives_an_empty_table_of_the_usual_types(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="skipped 1 image"):
        pairs = find_duplicates(pd.DataFrame({"path": [str(bad)]}), progress=False)
    assert pairs.empty
    assert list(pairs.columns) == ["path_a", "path_b", "similarity", "kind", "transform"]
    assert pd.api.types.is_string_dtype(pairs["path_a"]) and pairs["similarity"].dtype == float
    assert skipped_files(pairs)["path"].tolist() == [str(bad)]
