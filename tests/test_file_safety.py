"""Files that lie: replaced images with restored times, foreign caches, decompression bombs,
bad output paths, paths outside the dataset folder, symlinked datasets, bad configs.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import skinlib
from skinlib import Preprocess, preprocess_dataset
from skinlib.audit import image_signatures
from skinlib._shared.files import file_stamp, save_cache
from conftest import lesion_image, write_jpeg


def write_bmp(path: Path, img: np.ndarray) -> Path:
    """An uncompressed BMP: images of one shape give files of one size, whatever the pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".bmp", img)
    assert ok
    buf.tofile(path)
    return path


def replace_keeping_size_and_mtime(path: Path, img: np.ndarray, how: str) -> None:
    """Put other pixels into ``path``: same size, same modification time, as ``cp -p`` or ``rsync -a`` leave it."""
    st = os.stat(path)
    if how == "in_place":  # cp -p, tar: the file is rewritten, its times set back
        ok, buf = cv2.imencode(".bmp", img)
        with open(path, "r+b") as fh:
            fh.write(buf.tobytes())
    else:  # rsync -a: a new file renamed over the old one
        tmp = write_bmp(path.with_name(f".{path.name}.part"), img)
        os.replace(tmp, path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


@pytest.fixture
def bmp_table(tmp_path) -> pd.DataFrame:
    paths = [write_bmp(tmp_path / "img" / f"{i}.bmp", lesion_image(size=64, radius=8 + 3 * i, seed=i)) for i in range(4)]
    return pd.DataFrame({"path": [str(p) for p in paths], "label": [0, 1, 0, 1], "group": list("abcd")})


# --------------------------------------------------------------------------- stale caches


def test_file_stamp_records_inode_and_ctime(tmp_path):
    path = write_bmp(tmp_path / "a.bmp", lesion_image(size=32))
    st = os.stat(path)
    assert file_stamp(path) == f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"
    assert file_stamp(tmp_path / "gone.bmp") == "missing"


@pytest.mark.parametrize("how", ["in_place", "renamed_over"])
def test_preprocess_cache_notices_a_same_size_image_with_restored_mtime(bmp_table, tmp_path, how):
    cache = tmp_path / "cache"
    config = Preprocess.default()
    first = preprocess_dataset(bmp_table, config, cache_dir=cache, progress=False)
    path = Path(bmp_table["path"][1])
    replace_keeping_size_and_mtime(path, lesion_image(size=64, radius=28, lesion=20, seed=50), how)
    again = preprocess_dataset(bmp_table, config, cache_dir=cache, progress=False)
    assert not again.from_cache
    np.testing.assert_array_equal(again.x[1], config.load(path))
    assert not np.array_equal(again.x[1], first.x[1])
    np.testing.assert_array_equal(again.x[[0, 2, 3]], first.x[[0, 2, 3]])


@pytest.mark.parametrize("how", ["in_place", "renamed_over"])
def test_signature_cache_notices_a_same_size_image_with_restored_mtime(bmp_table, tmp_path, how):
    cache = tmp_path / "cache"
    first = image_signatures(bmp_table["path"], cache_dir=cache, progress=False)
    replace_keeping_size_and_mtime(Path(bmp_table["path"][2]), lesion_image(size=64, radius=28, lesion=20, seed=50), how)
    again = image_signatures(bmp_table["path"], cache_dir=cache, progress=False)
    fresh = image_signatures(bmp_table["path"], progress=False)
    assert not again.from_cache
    np.testing.assert_array_equal(again.digests, fresh.digests)
    assert not np.array_equal(again.digests[2], first.digests[2])


# Each entry: how a cache file's arrays are spoiled (given the good arrays and the number of rows).
PREPROCESS_DAMAGE = {
    "x_float": lambda a, n: {**a, "x": a["x"].astype(np.float32)},
    "x_other_size": lambda a, n: {**a, "x": np.zeros((len(a["x"]), 20, 20, 1), np.uint8)},
    "x_colour": lambda a, n: {**a, "x": np.zeros(a["x"].shape[:3] + (3,), np.uint8)},
    "x_fewer_rows": lambda a, n: {**a, "x": a["x"][:-1]},
    "x_flat": lambda a, n: {**a, "x": a["x"].reshape(len(a["x"]), -1)},
    "keep_negative": lambda a, n: {**a, "keep": a["keep"] - 1},
    "keep_repeated": lambda a, n: {**a, "keep": np.zeros_like(a["keep"])},
    "keep_float": lambda a, n: {**a, "keep": a["keep"].astype(float)},
    "keep_shorter": lambda a, n: {**a, "keep": a["keep"][:-1], "x": a["x"][:-1]},
    "no_x": lambda a, n: {k: v for k, v in a.items() if k != "x"},
}


def _arrays(path: Path) -> tuple[dict, list]:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    skipped = list(zip(arrays.pop("skipped_path").tolist(), arrays.pop("skipped_reason").tolist()))
    return arrays, skipped


@pytest.mark.parametrize("damage", PREPROCESS_DAMAGE)
def test_foreign_preprocess_cache_is_recomputed_and_replaced(bmp_table, tmp_path, damage):
    config = Preprocess.default()
    good = preprocess_dataset(bmp_table, config, cache_dir=tmp_path, progress=False)
    arrays, skipped = _arrays(good.cache_path)
    save_cache(good.cache_path, skipped, **PREPROCESS_DAMAGE[damage](arrays, len(bmp_table)))
    again = preprocess_dataset(bmp_table, config, cache_dir=tmp_path, progress=False)
    assert not again.from_cache
    assert again.x.dtype == np.uint8 and again.x.shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(again.x, good.x)
    # The foreign file was replaced by a good one.
    third = preprocess_dataset(bmp_table, config, cache_dir=tmp_path, progress=False)
    assert third.from_cache
    np.testing.assert_array_equal(third.x, good.x)


def test_preprocess_cache_with_skipped_rows_still_loads(bmp_table, tmp_path):
    Path(bmp_table["path"][0]).write_bytes(b"\xff\xd8\xff\xe0 not really")
    first = preprocess_dataset(bmp_table, cache_dir=tmp_path, progress=False)
    again = preprocess_dataset(bmp_table, cache_dir=tmp_path, progress=False)
    assert again.from_cache and len(again.x) == 3 and again.skipped["path"].tolist() == [bmp_table["path"][0]]
    np.testing.assert_array_equal(again.x, first.x)
    # A cache that forgets the skipped file does not account for every row: recomputed.
    arrays, _ = _arrays(first.cache_path)
    save_cache(first.cache_path, [], **arrays)
    assert not preprocess_dataset(bmp_table, cache_dir=tmp_path, progress=False).from_cache


SIGNATURE_DAMAGE = {
    "digests_int": lambda a: {**a, "digests": a["digests"].astype(np.int64)},
    "h64_short": lambda a: {**a, "h64": a["h64"][:, :4]},
    "h256_float": lambda a: {**a, "h256": a["h256"].astype(np.float64)},
    "h64_fewer_rows": lambda a: {**a, "h64": a["h64"][:-1]},
    "keep_negative": lambda a: {**a, "keep": a["keep"] - 1},
    "keep_repeated": lambda a: {**a, "keep": np.zeros_like(a["keep"])},
}


@pytest.mark.parametrize("damage", SIGNATURE_DAMAGE)
def test_foreign_signature_cache_is_recomputed_and_replaced(bmp_table, tmp_path, damage):
    cache = tmp_path / "cache"
    good = image_signatures(bmp_table["path"], cache_dir=cache, progress=False)
    (path,) = cache.iterdir()
    arrays, skipped = _arrays(path)
    save_cache(path, skipped, **SIGNATURE_DAMAGE[damage](arrays))
    again = image_signatures(bmp_table["path"], cache_dir=cache, progress=False)
    assert not again.from_cache and again.paths == good.paths
    np.testing.assert_array_equal(again.h256, good.h256)
    third = image_signatures(bmp_table["path"], cache_dir=cache, progress=False)
    assert third.from_cache
    np.testing.assert_array_equal(third.h64, good.h64)


# --------------------------------------------------------------------------- decompression bombs and image headers


def png_bomb(width: int, height: int) -> bytes:
    """A valid all-black 8-bit grey PNG, compressed row by row: kilobytes that decode to width x height bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    z = zlib.compressobj(9)
    row = bytes(1 + width)  # filter byte 0, then black pixels
    data = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_png_bomb_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(12_000, 10_000))  # 120 megapixels in about 100 kB
    assert bomb.stat().st_size < 500_000
    with pytest.raises(skinlib.ImageReadError) as info:
        skinlib.read_image(bomb)
    msg = str(info.value)
    assert str(bomb) in msg and "12000 x 10000" in msg and "limit of 100 megapixels" in msg
    assert "SKINLIB_MAX_IMAGE_PIXELS" in msg


def test_png_bomb_is_skipped_with_its_reason_by_preprocess_dataset(bmp_table, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(12_000, 10_000))
    df = pd.concat([bmp_table, pd.DataFrame({"path": [str(bomb)], "label": [1], "group": ["z"]})], ignore_index=True)
    res = preprocess_dataset(df, workers=2, progress=False)
    assert len(res.x) == 4 and res.skipped["path"].tolist() == [str(bomb)]
    assert "more than the limit of 100 megapixels" in res.skipped["reason"][0]


def encoded(ext: str, img: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".tiff"])
@pytest.mark.parametrize("channels", [1, 3])
def test_header_sizes_match_the_decoded_image(ext, channels):
    from skinlib.preprocessing import image_size

    img = lesion_image(size=64)[:48, :]  # 48 x 64: height and width differ
    img = np.ascontiguousarray(cv2.resize(img, (301, 203)))
    img = img if channels == 3 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    buf = encoded(ext, img)
    kind, size = image_size(buf)
    assert size == cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).shape[:2] == (203, 301)
    assert kind == {".jpg": "jpeg", ".tiff": "tiff"}.get(ext, ext[1:])


def test_top_down_bmp_size():
    from skinlib.preprocessing import image_size

    buf = bytearray(encoded(".bmp", lesion_image(size=32)[:20]).tobytes())
    buf[22:26] = (-20).to_bytes(4, "little", signed=True)  # negative height: rows stored top-down
    assert image_size(np.frombuffer(bytes(buf), np.uint8)) == ("bmp", (20, 32))


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".tiff"])
def test_the_limit_applies_to_every_format_by_keyword_and_environment(tmp_path, monkeypatch, ext):
    path = tmp_path / f"a{ext}"
    encoded(ext, np.ascontiguousarray(cv2.resize(lesion_image(size=64), (300, 200)))).tofile(path)
    assert skinlib.read_image(path, max_pixels=60_000).shape == (200, 300)
    with pytest.raises(skinlib.ImageReadError, match="300 x 200 pixels"):
        skinlib.read_image(path, max_pixels=59_999)
    monkeypatch.setenv("SKINLIB_MAX_IMAGE_PIXELS", "50000")
    with pytest.raises(skinlib.ImageReadError, match="limit of 0.05 megapixels"):
        skinlib.read_image(path)
    assert skinlib.read_image(path, max_pixels=60_000).shape == (200, 300)  # the keyword wins


def test_environment_limit_skips_large_images_and_is_in_the_cache_key(bmp_table, tmp_path, monkeypatch):
    big = tmp_path / "big.png"
    encoded(".png", np.ascontiguousarray(cv2.resize(lesion_image(size=64), (400, 300)))).tofile(big)
    df = pd.concat([bmp_table, pd.DataFrame({"path": [str(big)], "label": [1], "group": ["z"]})], ignore_index=True)
    cache = tmp_path / "cache"
    monkeypatch.setenv("SKINLIB_MAX_IMAGE_PIXELS", "100000")
    small = preprocess_dataset(df, cache_dir=cache, progress=False)
    assert small.skipped["path"].tolist() == [str(big)] and "limit" in small.skipped["reason"][0]
    monkeypatch.delenv("SKINLIB_MAX_IMAGE_PIXELS")
    full = preprocess_dataset(df, cache_dir=cache, progress=False)
    assert not full.from_cache and len(full.x) == 5 and full.skipped.empty  # not the cache that skipped it


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1.5"])
def test_a_bad_environment_limit_is_one_clear_error(bmp_table, monkeypatch, value):
    monkeypatch.setenv("SKINLIB_MAX_IMAGE_PIXELS", value)
    for run in (lambda: preprocess_dataset(bmp_table, progress=False),
                lambda: image_signatures(bmp_table["path"], progress=False)):
        with pytest.raises(ValueError, match=f"SKINLIB_MAX_IMAGE_PIXELS={value!r}: expected a whole number"):
            run()


def test_find_duplicates_skips_images_over_the_limit(tmp_path, monkeypatch):
    a = write_bmp(tmp_path / "a.bmp", cv2.resize(lesion_image(size=64), (400, 300)))
    shutil.copyfile(a, tmp_path / "b.bmp")
    small = write_bmp(tmp_path / "c.bmp", lesion_image(size=64))
    monkeypatch.setenv("SKINLIB_MAX_IMAGE_PIXELS", "100000")
    df = pd.DataFrame({"path": [str(a), str(tmp_path / "b.bmp"), str(small)]})
    with pytest.warns(UserWarning, match="skipped 2"):
        pairs = skinlib.find_duplicates(df, progress=False)
    report = skinlib.skipped_files(pairs)
    assert sorted(report["path"]) == [str(a), str(tmp_path / "b.bmp")]
    assert all("more than the limit" in r for r in report["reason"])


def jpeg_with_big_app_segments(img: np.ndarray, total: int = 120_000) -> bytes:
    """A JPEG with ``total`` bytes of APP2 segments (as an ICC profile) before its frame header.

    The payload is full of 0xFF bytes and fake frame markers: only the segment lengths
    tell where the real frame header is.
    """
    data = encoded(".jpg", img).tobytes()
    assert data[:2] == b"\xff\xd8"
    rng = np.random.default_rng(0)
    segments = b""
    while total > 0:
        n = min(total, 60_000)
        payload = bytearray(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        payload[100:109] = b"\xff\xc0\x00\x11\x08\x00\x10\x00\x10"  # a fake 16 x 16 SOF0 inside the data
        segments += b"\xff\xe2" + (n + 2).to_bytes(2, "big") + bytes(payload)
        total -= n
    return data[:2] + segments + data[2:]


def test_jpeg_size_probe_walks_past_large_app_segments(tmp_path):
    from skinlib.preprocessing._images import _jpeg_size

    big = np.ascontiguousarray(cv2.resize(lesion_image(size=100, radius=30), (800, 600)))
    path = tmp_path / "icc.jpg"
    path.write_bytes(jpeg_with_big_app_segments(big))
    data = np.fromfile(path, np.uint8)
    assert data.size > 120_000
    assert _jpeg_size(data) == (600, 800)
    assert skinlib.read_image(path).shape == (600, 800)
    # The reduced decode is used: 1/4 scale keeps the shorter side >= 150.
    assert skinlib.read_image(path, min_side=150).shape == (150, 200)
    plain = tmp_path / "plain.jpg"
    encoded(".jpg", big).tofile(plain)
    np.testing.assert_array_equal(skinlib.read_image(path, min_side=150), skinlib.read_image(plain, min_side=150))


def test_jpeg_without_a_frame_header_before_its_scan_is_not_sized():
    from skinlib.preprocessing._images import _jpeg_size

    assert _jpeg_size(np.frombuffer(b"\xff\xd8\xff\xda\x00\x04\xff\xc0" + bytes(40), np.uint8)) is None
    assert _jpeg_size(np.frombuffer(b"\x89PNG\r\n\x1a\n" + bytes(40), np.uint8)) is None


# --------------------------------------------------------------------------- python -m skinlib predict: --out and exit codes


def _separable(n: int = 60) -> skinlib.PreprocessResult:
    rng = np.random.default_rng(0)
    y = (np.arange(n) % 3 == 0).astype(np.int64)
    x = rng.integers(60, 120, (n, 28, 28, 1)).astype(np.uint8)
    x[y == 1, 10:16, 10:16] = 230
    fold = np.where(np.arange(n) % 10 < 6, "train", np.where(np.arange(n) % 10 < 8, "val", "test"))
    rows = pd.DataFrame({"path": [f"img{i}.png" for i in range(n)], "label": y, "group": np.arange(n).astype(str),
                         "fold": fold})
    return skinlib.PreprocessResult(x, y, rows, pd.DataFrame(columns=["path", "reason"]), config=Preprocess.default())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "v1"
    skinlib.train("v1", _separable(), epochs=1, run_dir=run, progress=False)
    return run


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "imgs"
    write_jpeg(folder / "good.jpg", lesion_image(size=64))
    (folder / "bad.jpg").write_bytes(b"\xff\xd8\xff junk")
    return folder


def cli(*argv: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from skinlib.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def no_prediction(monkeypatch):
    """Fail the test if a prediction is computed: a bad --out must be reported before."""
    import skinlib.models

    def refuse(*args, **kwargs):
        raise AssertionError("predictions were computed before --out was checked")

    # The command line takes predict from skinlib.models, whose lazy loader keeps the name once
    # read: patch it there, so that the real function is what the package holds afterwards.
    monkeypatch.setattr(skinlib.models, "predict", refuse)


def test_out_pointing_at_a_folder_is_an_error_before_predicting(run_dir, images, tmp_path, no_prediction):
    folder = tmp_path / "results"
    folder.mkdir()
    code, out, err = cli("predict", str(run_dir), str(images), "--out", str(folder))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and str(folder) in err and "is a folder" in err and "Traceback" not in err
    assert list(folder.iterdir()) == []


def test_out_under_a_regular_file_is_an_error_before_predicting(run_dir, images, tmp_path, no_prediction):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    code, _, err = cli("predict", str(run_dir), str(images), "--out", str(blocker / "sub" / "pred.csv"))
    assert code == 2 and f"{blocker} is a file, not a folder" in err and "Traceback" not in err
    assert blocker.read_text() == "keep me"


def test_out_in_missing_folders_is_written(run_dir, images, tmp_path):
    out = tmp_path / "new" / "deeper" / "pred.csv"
    code, _, err = cli("predict", str(run_dir), str(images), "--out", str(out))
    assert code == 0  # one image of two failed: still success, with a warning
    assert "warning: " in err and "bad.jpg" in err
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == 2 and (table["error"] != "").sum() == 1


def test_every_image_failing_exits_1(run_dir, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("a.jpg", "b.png"):
        (folder / name).write_bytes(b"\xff\xd8\xff junk")
    code, out, err = cli("predict", str(run_dir), str(folder))
    assert code == 1
    assert "none of the 2 image(s) could be read" in err and err.count("warning: ") == 2
    assert len(pd.read_csv(__import__("io").StringIO(out))) == 2  # the table still says why


def test_a_folder_without_images_exits_1(run_dir, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("no images here")
    code, out, err = cli("predict", str(run_dir), str(folder))
    assert code == 1 and out == ""
    assert "no image files in" in err and str(folder) in err and ".jpg" in err


# --------------------------------------------------------------------------- paths outside the dataset folder, symlinks


def _isic_row_outside(isic_tree: Path, name: str) -> None:
    csv = isic_tree / "ISIC_2020_Training_GroundTruth.csv"
    meta = pd.read_csv(csv, dtype=str, keep_default_na=False)
    row = {**meta.iloc[0].to_dict(), "image_name": name, "patient_id": "IP_out", "target": "1",
           "benign_malignant": "malignant"}
    pd.concat([meta, pd.DataFrame([row])], ignore_index=True).to_csv(csv, index=False)


@pytest.mark.parametrize("how", ["absolute", "dotdot"])
def test_isic_row_outside_the_folder_is_used_and_reported(isic_tree, tmp_path, how):
    elsewhere = write_jpeg(tmp_path / "elsewhere" / "ISIC_9000000.jpg", lesion_image(seed=5))
    name = str(elsewhere.with_suffix("")) if how == "absolute" else "../../elsewhere/ISIC_9000000"
    _isic_row_outside(isic_tree, name)
    with pytest.warns(UserWarning, match="1 image.*outside the dataset folder") as caught:
        df = skinlib.load_dataset(isic_tree)
    assert len(df) == 13 and df["label"].iloc[-1] == 1
    assert df.attrs["outside"] == [str(elsewhere)]  # absolute and normalised, '..' resolved
    assert str(elsewhere) in str(caught[0].message)
    assert os.path.samefile(df["path"].iloc[-1], elsewhere)
    res = preprocess_dataset(df, progress=False)
    np.testing.assert_array_equal(res.x[-1], Preprocess.default().load(elsewhere))


def test_dotdot_that_stays_inside_is_not_reported(isic_tree):
    src = isic_tree / "train" / "ISIC_0000000.jpg"
    shutil.copyfile(src, isic_tree / "ISIC_8000000.jpg")
    _isic_row_outside(isic_tree, "../ISIC_8000000")  # train/../ is the dataset folder itself
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = skinlib.load_dataset(isic_tree)
    assert len(df) == 13 and df.attrs["outside"] == []


def test_ham_row_outside_the_folder_is_reported(ham_tree, tmp_path):
    elsewhere = write_jpeg(tmp_path / "other" / "ISIC_7000000.jpg", lesion_image(seed=6))
    csv = ham_tree / "HAM10000_metadata.csv"
    meta = pd.read_csv(csv, dtype=str, keep_default_na=False)
    row = {**meta.iloc[0].to_dict(), "image_id": "../../other/ISIC_7000000", "lesion_id": "HAM_out"}
    pd.concat([meta, pd.DataFrame([row])], ignore_index=True).to_csv(csv, index=False)
    with pytest.warns(UserWarning, match="outside the dataset folder"):
        df = skinlib.load_dataset(ham_tree)
    assert df.attrs["outside"] == [str(elsewhere)] and len(df) == 11


def test_datasets_inside_their_folder_report_nothing_outside(isic_tree, ham_tree, class_tree):
    for root in (isic_tree, ham_tree, class_tree):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert skinlib.load_dataset(root).attrs["outside"] == []


@pytest.fixture
def linked_tree(tmp_path) -> tuple[Path, dict[str, Path]]:
    """Class folders whose files are symlinks to images kept in another folder."""
    store = tmp_path / "store"
    targets = {}
    for i in range(6):
        targets[f"img{i}"] = write_jpeg(store / f"img{i}.jpg", lesion_image(radius=10 + 3 * i, seed=i))
    root = tmp_path / "linked"
    for i, (name, target) in enumerate(targets.items()):
        folder = root / ("malignant" if i % 2 else "benign")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.jpg").symlink_to(target)
    return root, targets


def test_class_folders_of_symlinks_load_and_preprocess(linked_tree, tmp_path):
    from conftest import tree_digest

    root, targets = linked_tree
    before = tree_digest(tmp_path / "store")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = skinlib.load_dataset(root)
    assert len(df) == 6 and skinlib.skipped_files(df).empty and df.attrs["outside"] == []
    assert df["label"].tolist() == [0, 0, 0, 1, 1, 1]
    assert all(Path(p).is_symlink() and Path(p).parent.parent == root for p in df["path"])
    res = preprocess_dataset(df, cache_dir=tmp_path / "cache", progress=False)
    for path, x in zip(res.rows["path"], res.x):
        np.testing.assert_array_equal(x, Preprocess.default().load(targets[Path(path).stem]))
    assert tree_digest(tmp_path / "store") == before
    assert all(Path(p).is_symlink() for p in df["path"])  # links left as they were


def test_symlinked_folder_inside_a_class_folder_is_read(linked_tree, tmp_path):
    root, _ = linked_tree
    batch = tmp_path / "batch"
    for i in range(3):
        write_jpeg(batch / f"b{i}.jpg", lesion_image(seed=20 + i))
    (root / "malignant" / "batch").symlink_to(batch, target_is_directory=True)
    df = skinlib.load_dataset(root)
    assert len(df) == 9 and (df["label"] == 1).sum() == 6
    assert {p for p in df["path"] if "/batch/" in p} == {str(root / "malignant" / "batch" / f"b{i}.jpg") for i in range(3)}


def test_symlink_loop_and_dangling_link_are_reported_not_followed_forever(linked_tree, tmp_path):
    root, _ = linked_tree
    (root / "benign" / "loop").symlink_to(root / "benign", target_is_directory=True)
    (root / "benign" / "gone.jpg").symlink_to(tmp_path / "no_such.jpg")
    with pytest.warns(UserWarning, match="skipped 2"):
        df = skinlib.load_dataset(root)
    assert len(df) == 6
    report = skinlib.skipped_files(df)
    reasons = dict(zip(report["path"], report["reason"]))
    assert reasons[str(root / "benign" / "loop")].startswith("folder already read")
    assert reasons[str(root / "benign" / "gone.jpg")] == "image file is missing"


# --------------------------------------------------------------------------- preprocessing configs


@pytest.mark.parametrize("step,param,value,expected", [
    ("resize", "size", 10**6, "a whole number from 1 to 4096"),
    ("resize", "size", 0, "a whole number from 1 to 4096"),
    ("resize", "size", "28", "a whole number from 1 to 4096"),
    ("resize", "size", 28.0, "a whole number from 1 to 4096"),
    ("resize", "size", True, "a whole number from 1 to 4096"),
    ("resize", "size", None, "a whole number from 1 to 4096"),
    ("resize", "interpolation", "bicubic", "one of ['area', 'linear', 'nearest', 'cubic']"),
    ("resize", "interpolation", 1, "one of ['area', 'linear', 'nearest', 'cubic']"),
    ("bilateral", "sigma_color", "50", "a number from 0 to 1000"),
    ("bilateral", "sigma_space", float("nan"), "a number from 0 to 300"),
    ("bilateral", "sigma_space", 10**5, "a number from 0 to 300"),
    ("bilateral", "d", 2.5, "a whole number from -1 to 64"),
    ("seed_contour", "thickness", 0, "a whole number from 1 to 64"),
    ("seed_contour", "threshold", [127], "a number from 0 to 255"),
    ("remove_hair", "kernel_size", 10**4, "a whole number from 1 to 101"),
    ("crop_to_lesion", "margin", -0.1, "a number from 0 to 5"),
    ("color_constancy", "power", 0, "a number from 1 to 32"),
])
def test_from_dict_checks_types_and_bounds_naming_step_parameter_and_value(step, param, value, expected):
    steps = [[step, {param: value}]] + ([] if step == "resize" else [["resize", {"size": 28}]])
    with pytest.raises(ValueError) as info:
        Preprocess.from_dict({"steps": steps})
    msg = str(info.value)
    assert f"step {step!r}" in msg and f"parameter {param!r}" in msg and repr(value) in msg and expected in msg
    with pytest.raises(ValueError, match=f"parameter {param!r}"):  # construction checks too
        Preprocess(steps=tuple((n, p) for n, p in steps))


def test_with_params_and_replace_are_checked():
    with pytest.raises(ValueError, match="'size' must be a whole number"):
        Preprocess.default().with_params("resize", size=10**6)
    with pytest.raises(ValueError, match="decode_min_side"):
        Preprocess.default().replace(decode_min_side="big")
    with pytest.raises(ValueError, match="color must be True or False, got 'false'"):
        Preprocess.from_dict({"steps": [["resize", {"size": 28}]], "color": "false"})


@pytest.mark.parametrize("config,expected", [
    ({"steps": [["blur", {}], ["resize", {}]]}, "unknown preprocessing step 'blur'"),
    ({"steps": [["resize", {"size": 28}]], "colour": True}, "unknown key(s) ['colour']"),
    ({"steps": "resize"}, "'steps' must be a list"),
    ({"steps": [["resize"]]}, "expected a (name, {parameter: value}) pair"),
    ({"steps": [["resize", 28]]}, "expected a (name, {parameter: value}) pair"),
    ({"color": True}, "no 'steps'"),
    (["resize"], "expected a dict"),
])
def test_from_dict_rejects_malformed_configs_with_a_value_error(config, expected):
    with pytest.raises(ValueError) as info:
        Preprocess.from_dict(config)
    assert expected in str(info.value)


def test_every_step_parameter_has_a_rule_and_good_configs_still_load():
    from skinlib.preprocessing import PARAMETERS, STEPS

    for name, fn in STEPS.items():
        params = fn.__code__.co_varnames[1 : fn.__code__.co_argcount + fn.__code__.co_kwonlyargcount]
        assert set(PARAMETERS[name]) == set(params), name
    for config in (Preprocess.seed(), Preprocess.seed(fast=True), Preprocess.default(), Preprocess.for_model("v3"),
                   Preprocess(steps=(("remove_hair", {}), ("crop_to_lesion", {"margin": 0.15}),
                                     ("resize", {"size": 28}), ("bilateral", {"d": 5}))),
                   Preprocess.default().with_params("resize", size=np.int64(32))):
        again = Preprocess.from_json(config.to_json())  # NumPy integers became Python ones: JSON works
        assert again == config
