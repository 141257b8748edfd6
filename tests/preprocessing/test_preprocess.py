import json
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import skinlib
from skinlib import Preprocess, preprocess_dataset, read_image
from skinlib.preprocessing._images import ImageReadError, _jpeg_size
from conftest import lesion_image, tree_digest, write_jpeg
from test_filters import original_contour


def original_pipeline(path):
    """The original project's per-image code, transcribed."""
    img = cv2.imread(str(path), 0)
    img = cv2.resize(img, (28, 28))
    img = original_contour(img)
    return cv2.bilateralFilter(img, -1, 50, 50)


def test_seed_equals_original_pipeline(isic_tree):
    cfg = Preprocess.seed()
    for path in sorted((isic_tree / "train").glob("*.jpg"))[:5]:
        out = cfg.load(path)
        assert out.shape == (28, 28, 1) and out.dtype == np.uint8
        np.testing.assert_array_equal(out[:, :, 0], original_pipeline(path))


def test_config_round_trips_and_prints():
    for cfg in (Preprocess.seed(), Preprocess.default(), Preprocess.seed().without("seed_contour")):
        again = Preprocess.from_json(cfg.to_json())
        assert again == cfg
        assert json.loads(cfg.to_json())["steps"][0][0] == cfg.steps[0][0]
        assert str(cfg).startswith("read(gray) -> ")
    assert Preprocess.seed().step_names() == ["resize", "seed_contour", "bilateral"]


def test_config_validation():
    with pytest.raises(ValueError, match="unknown preprocessing step 'blur'"):
        Preprocess(steps=(("blur", {}), ("resize", {})))
    with pytest.raises(ValueError, match="no parameter"):
        Preprocess(steps=(("resize", {"sise": 28}),))
    with pytest.raises(ValueError, match="needs a 'resize' step"):
        Preprocess(steps=(("bilateral", {}),))
    with pytest.raises(KeyError):
        Preprocess.default().with_params("bilateral", d=5)


def test_with_params_changes_output():
    img = cv2.cvtColor(lesion_image(size=64, radius=16), cv2.COLOR_BGR2GRAY)
    base = Preprocess.seed()
    changed = base.with_params("bilateral", d=9, sigma_color=150)
    assert changed.steps[2][1] == {"d": 9, "sigma_color": 150, "sigma_space": 50}
    assert base.steps[2][1]["d"] == -1  # the original is unchanged
    assert not np.array_equal(base.apply(img), changed.apply(img))


def test_stages_lists_every_step():
    img = lesion_image(size=64)
    cfg = Preprocess(steps=(("remove_hair", {}), ("crop_to_lesion", {}), ("resize", {"size": 16}), ("bilateral", {})))
    gray = skinlib.preprocessing.filters.to_gray(img)
    names = [n for n, _ in cfg.stages(gray)]
    assert names == ["read", "remove_hair", "crop_to_lesion", "resize", "bilateral"]
    assert cfg.apply(gray).shape == (16, 16, 1)


def test_colour_pipeline_shape(tmp_path):
    path = write_jpeg(tmp_path / "a.jpg", lesion_image(size=80))
    cfg = Preprocess(steps=(("resize", {"size": 32}),), color=True)
    assert cfg.output_shape == (32, 32, 3)
    assert cfg.load(path).shape == (32, 32, 3)


def test_jpeg_size_and_reduced_decoding(tmp_path):
    big = cv2.resize(lesion_image(size=100, radius=30), (800, 600), interpolation=cv2.INTER_LINEAR)
    path = write_jpeg(tmp_path / "big.jpg", big)
    assert _jpeg_size(np.fromfile(path, np.uint8)) == (600, 800)
    assert read_image(path).shape == (600, 800)
    assert read_image(path, min_side=150).shape == (150, 200)  # 1/4 scale keeps >= 150
    assert read_image(path, min_side=70).shape == (75, 100)  # 1/8 scale
    assert read_image(path, min_side=400).shape == (600, 800)  # halving would go below 400
    # reduced decoding changes the final 28x28 input very little
    full = Preprocess.default().replace(decode_min_side=None).load(path).astype(int)
    fast = Preprocess.default().load(path).astype(int)
    assert np.abs(full - fast).mean() < 2


def test_read_image_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "note.jpg"
    text.write_text("not an image")
    for path, match in ((empty, "empty"), (text, "not a decodable image"), (tmp_path / "gone.jpg", "cannot read")):
        with pytest.raises(ImageReadError, match=match) as info:
            read_image(path)
        assert str(path) in str(info.value)


def test_read_image_formats(tmp_path):
    img = lesion_image(size=40)
    png16 = tmp_path / "deep.png"
    cv2.imencode(".png", img.astype(np.uint16) * 257)[1].tofile(png16)
    alpha = tmp_path / "alpha.png"
    cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_BGR2BGRA))[1].tofile(alpha)
    odd = tmp_path / "n\u00e4me \u76ae\u819a.jpg"
    write_jpeg(odd, img)
    for path in (png16, alpha, odd):
        gray = read_image(path)
        assert gray.dtype == np.uint8 and gray.shape == (40, 40)
        assert abs(int(gray[0, 0]) - 190) < 6  # 16-bit scaled back, not clipped to 255
        assert read_image(path, color=True).shape == (40, 40, 3)


def test_preprocess_dataset_matches_per_image_and_skips_bad(isic_tree, tmp_path):
    df = skinlib.load_dataset(isic_tree)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    df = pd.concat([df, pd.DataFrame({"path": [str(bad)], "label": [1], "group": ["x"]})], ignore_index=True)
    cfg = Preprocess.seed()
    res = preprocess_dataset(df, cfg, progress=False)
    x, y = res
    assert x.shape == (12, 28, 28, 1) and x.dtype == np.uint8
    assert list(res.skipped["path"]) == [str(bad)]
    assert "decodable" in res.skipped["reason"][0]
    np.testing.assert_array_equal(y, df["label"][:12])
    for i in (0, 5, 11):
        np.testing.assert_array_equal(x[i], cfg.load(df["path"][i]))


def test_parallel_equals_serial(tmp_path):
    folder = skinlib.make_sample(tmp_path / "s", n=300, seed=1)
    df = skinlib.load_dataset(folder)
    serial = preprocess_dataset(df, Preprocess.default(), workers=1, progress=False)
    parallel = preprocess_dataset(df, Preprocess.default(), workers=2, progress=False)
    np.testing.assert_array_equal(serial.x, parallel.x)
    np.testing.assert_array_equal(serial.y, parallel.y)


def test_cache_hit_miss_invalidation(isic_tree, tmp_path):
    df = skinlib.load_dataset(isic_tree)
    cache = tmp_path / "cache"
    first = preprocess_dataset(df, Preprocess.default(), cache_dir=cache, progress=False)
    assert not first.from_cache and first.cache_path.exists()
    again = preprocess_dataset(df, Preprocess.default(), cache_dir=cache, progress=False)
    assert again.from_cache and again.cache_path == first.cache_path
    np.testing.assert_array_equal(first.x, again.x)
    # a changed parameter is a different key
    other = preprocess_dataset(df, Preprocess.default().with_params("resize", size=20), cache_dir=cache, progress=False)
    assert not other.from_cache and other.x.shape[1:] == (20, 20, 1)
    # a changed file (new content, new mtime) recomputes
    path = Path(df["path"][0])
    write_jpeg(path, lesion_image(seed=99, radius=30))
    os.utime(path, ns=(1, 1))
    changed = preprocess_dataset(df, Preprocess.default(), cache_dir=cache, progress=False)
    assert not changed.from_cache
    assert not np.array_equal(changed.x[0], first.x[0])
    # no temporary files are left behind
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]


def test_damaged_cache_is_recomputed(isic_tree, tmp_path):
    df = skinlib.load_dataset(isic_tree)
    first = preprocess_dataset(df, Preprocess.default(), cache_dir=tmp_path, progress=False)
    first.cache_path.write_bytes(first.cache_path.read_bytes()[:100])  # half-written by a foreign tool
    again = preprocess_dataset(df, Preprocess.default(), cache_dir=tmp_path, progress=False)
    assert not again.from_cache
    np.testing.assert_array_equal(first.x, again.x)


def test_preprocess_never_writes_dataset(isic_tree, tmp_path):
    before = tree_digest(isic_tree)
    df = skinlib.split_dataset(skinlib.load_dataset(isic_tree), test_size=0.5, val_size=0, seed=0)
    res = preprocess_dataset(df, Preprocess.seed(), cache_dir=tmp_path / "c", progress=False)
    assert tree_digest(isic_tree) == before
    xtr, ytr = res.fold("train")
    assert len(xtr) == (res.rows["fold"] == "train").sum()
