"""Bad inputs in every supported layout, through load_dataset and preprocess_dataset.

README, "What happens to bad files", promises three outcomes and one invariant:
every file is decoded correctly, or skipped and reported with its path and the
reason, or the load stops with a DatasetError that names the file and what was
expected; and nothing under the dataset folder is ever written, moved or deleted.
Each case below is generated in code (no binary fixtures), put into the ISIC 2020,
HAM10000 and class-folder fixtures of conftest.py, and run through both functions
with a cache folder outside the dataset.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pandas as pd
import pytest

from skinlib import DatasetError, Preprocess, load_dataset, preprocess_dataset, skipped_files
from conftest import lesion_image, tree_digest

LAYOUTS = ("isic", "ham", "class")
CSV_LAYOUTS = ("isic", "ham")
#: Images the fixtures hold: isic_tree 12, ham_tree 10, class_tree 12.
BASE_COUNT = {"isic": 12, "ham": 10, "class": 12}
CONFIG = Preprocess.default()


# --------------------------------------------------------------------------- building datasets


def encode(ext: str, img: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok, ext
    return buf.tobytes()


def csv_path(layout: str, root: Path) -> Path:
    return root / ("ISIC_2020_Training_GroundTruth.csv" if layout == "isic" else "HAM10000_metadata.csv")


def image_folder(layout: str, root: Path, label: int = 1) -> Path:
    """Where the layout keeps images (of class ``label`` for class folders)."""
    if layout == "isic":
        return root / "train"
    if layout == "ham":
        return root / "HAM10000_images_part_1"
    return root / "train" / ("malignant" if label else "benign")


def add_csv_row(layout: str, root: Path, stem: str, label: int | str, **extra: str) -> None:
    """Append one row for image ``stem`` to the layout's CSV (labels as given, as text)."""
    csv = csv_path(layout, root)
    meta = pd.read_csv(csv, dtype=str, keep_default_na=False)
    if layout == "isic":
        row = {"image_name": stem, "patient_id": f"IP_{stem}", "sex": "male", "age_approx": "50.0",
               "benign_malignant": "", "target": str(label)}
    else:
        dx = {1: "mel", 0: "nv"}.get(label, label) if not isinstance(label, str) else label
        row = {"lesion_id": f"HAM_{stem}", "image_id": stem, "dx": dx, "dx_type": "histo",
               "age": "40.0", "sex": "female", "localization": "back"}
    row.update(extra)
    pd.concat([meta, pd.DataFrame([row])], ignore_index=True).to_csv(csv, index=False)


def add_image(layout: str, root: Path, stem: str, data: bytes, ext: str = ".jpg", label: int = 1) -> Path:
    """Put a file into the dataset as a listed image of class ``label``; returns its path."""
    folder = image_folder(layout, root, label)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}{ext}"
    path.write_bytes(data)
    if layout in CSV_LAYOUTS:
        add_csv_row(layout, root, stem, label)
    return path


def write_bytes_name(folder: Path, name: bytes, data: bytes) -> str:
    """Create a file whose name is raw bytes (not valid UTF-8); returns its path as str."""
    path = os.path.join(os.fsencode(folder), name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return os.fsdecode(path)


@pytest.fixture(params=LAYOUTS)
def layout(request):
    return request.param


@pytest.fixture
def tree(request, layout) -> Path:
    """The conftest fixture dataset of the current layout."""
    return request.getfixturevalue(f"{layout}_tree")


@pytest.fixture(scope="session")
def huge_jpeg() -> bytes:
    """An 8000x6000 JPEG: flat skin with one dark lesion, encoded once per session.

    A flat field encodes in well under a second and compresses to under a megabyte,
    yet decodes to 48 million pixels: the size of a full-resolution dermatoscope image.
    """
    img = np.full((6000, 8000, 3), 190, np.uint8)
    cv2.circle(img, (4000, 3000), 1500, (60, 60, 60), -1)
    return encode(".jpg", img, cv2.IMWRITE_JPEG_QUALITY, 80)


def cmyk_jpeg(img_bgr: np.ndarray) -> bytes:
    """A CMYK JPEG of ``img_bgr``. OpenCV cannot write one; Pillow can."""
    # Pillow comes with matplotlib, a dependency; without it only this case is skipped.
    Image = pytest.importorskip("PIL.Image", reason="writing a CMYK JPEG needs Pillow")
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img_bgr[:, :, ::-1])).convert("CMYK").save(out, "JPEG", quality=95)
    data = out.getvalue()
    sof = data.find(b"\xff\xc0")
    assert sof > 0 and data[sof + 9] == 4, "not a four-component (CMYK) JPEG"
    return data


# --------------------------------------------------------------------------- running both functions


def snapshot(root: Path) -> tuple[dict, dict]:
    """Contents (sha256) of every file, plus name, type, mode and mtime of every entry."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            entries[os.path.join(dirpath, name)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    return tree_digest(root), entries


# An audit hook sees every open() for writing, mkdir, rename, remove, chmod...
# made from Python, whoever the user is: as root, a read-only folder stops no write,
# so the hook is what proves that loading and preprocessing only read.
_WATCHED: list[str] = []
_WRITES: list[tuple[str, str]] = []
_WRITE_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.chmod", "os.chown", "os.utime",
                 "os.truncate", "os.link", "os.symlink", "shutil.rmtree", "shutil.move", "shutil.copyfile"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _audit(event: str, args: tuple) -> None:
    if not _WATCHED:
        return
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        paths = [path] if writing else []
    elif event in _WRITE_EVENTS:
        paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
    else:
        return
    for p in paths:
        if isinstance(p, int):
            continue
        full = os.path.abspath(os.fsdecode(os.fspath(p)))
        if any(full == w or full.startswith(w + os.sep) for w in _WATCHED):
            _WRITES.append((event, full))


sys.addaudithook(_audit)


@contextlib.contextmanager
def no_writes_under(root: Path):
    """Fail if any file-system change is made under ``root`` inside the block."""
    _WRITES.clear()
    _WATCHED.append(os.path.abspath(root))
    try:
        yield
    finally:
        _WATCHED.clear()
    assert not _WRITES, f"wrote under the dataset folder: {_WRITES}"


@dataclass
class Run:
    df: pd.DataFrame
    res: object
    warnings: list[str]

    @property
    def load_skipped(self) -> dict[str, str]:
        report = skipped_files(self.df)
        return dict(zip(report["path"], report["reason"]))

    @property
    def preprocess_skipped(self) -> dict[str, str]:
        return dict(zip(self.res.skipped["path"], self.res.skipped["reason"]))

    def output_for(self, path: Path | str) -> np.ndarray:
        """The preprocessed (28, 28) image of ``path``."""
        rows = self.res.rows["path"].tolist()
        assert str(path) in rows, f"{path} was not preprocessed"
        return self.res.x[rows.index(str(path))][:, :, 0]


def run_both(root: Path, cache_dir: Path, config: Preprocess = CONFIG) -> Run:
    """load_dataset then preprocess_dataset (twice: computed, then from the cache).

    Checks the invariants every case shares: nothing under ``root`` changes, the
    output has the documented shape and dtype, every input row is either in the
    output or reported, and the cached result equals the computed one.
    """
    assert not str(cache_dir).startswith(str(root) + os.sep)
    before = snapshot(root)
    with no_writes_under(root), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_dataset(root)
        res = preprocess_dataset(df, config, cache_dir=cache_dir, progress=False)
        again = preprocess_dataset(df, config, cache_dir=cache_dir, progress=False)
    assert snapshot(root) == before
    assert res.x.dtype == np.uint8 and res.x.shape == (len(res.rows),) + config.output_shape
    assert len(res.rows) + len(res.skipped) == len(df)
    assert set(res.rows["path"]).isdisjoint(res.skipped["path"])
    assert again.from_cache and not res.from_cache
    np.testing.assert_array_equal(again.x, res.x)
    pd.testing.assert_frame_equal(again.skipped, res.skipped)
    return Run(df, res, [str(w.message) for w in caught])


def assert_lesion_like(out: np.ndarray) -> None:
    """A dark lesion in the middle of light skin, as every generated image has."""
    centre = out[12:16, 12:16].mean()
    corners = [out[1, 1], out[1, -2], out[-2, 1], out[-2, -2]]
    assert centre < 100 and min(corners) > 150, (centre, corners)


# --------------------------------------------------------------------------- one bad file at a time


def _lesion(**kw) -> np.ndarray:
    return lesion_image(size=96, radius=20, **kw)


def _check_close_to_bgr(out: np.ndarray, reference_bgr: np.ndarray, tol: float) -> None:
    expected = CONFIG.apply(reference_bgr)[:, :, 0].astype(int)
    assert np.abs(out.astype(int) - expected).max() <= tol


@dataclass
class Case:
    id: str
    make: Callable[[bytes], bytes]  # receives the session's huge JPEG, returns the file's bytes
    ext: str
    outcome: str  # "decoded", "load_skipped" or "preprocess_skipped"
    check: Callable[[np.ndarray], None] | str  # decoded: checks the 28x28 output; skipped: reason text


_TINY = np.full((5, 5, 3), 120, np.uint8)
_GOOD = encode(".jpg", _lesion(seed=7), cv2.IMWRITE_JPEG_QUALITY, 92)
_ALPHA = np.dstack([_lesion(seed=8), np.linspace(0, 255, 96 * 96).reshape(96, 96).astype(np.uint8)])

CASES = [
    Case("truncated_jpeg", lambda huge: _GOOD[: len(_GOOD) // 2], ".jpg", "preprocess_skipped", "not a decodable image"),
    Case("jpeg_header_then_garbage", lambda huge: b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, ".jpg",
         "preprocess_skipped", "not a decodable image"),
    Case("truncated_png", lambda huge: encode(".png", _lesion(seed=9))[:300], ".png", "preprocess_skipped",
         "not a decodable image"),
    Case("zero_bytes", lambda huge: b"", ".jpg", "load_skipped", "file is empty (0 bytes)"),
    Case("text_named_jpg", lambda huge: b"this is a note, not a picture\n", ".jpg", "load_skipped",
         "not an image (content is not JPEG, PNG, BMP or TIFF)"),
    # Alpha is dropped: the colour channels are used as they are, whatever the transparency.
    Case("png_with_alpha", lambda huge: encode(".png", _ALPHA), ".png", "decoded",
         lambda out: _check_close_to_bgr(out, _ALPHA[:, :, :3], 1)),
    # 16-bit PNG: scaled to 8 bits (v * 257 becomes v again), not clipped to white.
    Case("png_16bit", lambda huge: encode(".png", _lesion(seed=10).astype(np.uint16) * 257), ".png", "decoded",
         lambda out: _check_close_to_bgr(out, _lesion(seed=10), 1)),
    Case("grayscale_jpeg", lambda huge: encode(".jpg", cv2.cvtColor(_lesion(seed=11), cv2.COLOR_BGR2GRAY)),
         ".jpg", "decoded", lambda out: _check_close_to_bgr(out, _lesion(seed=11), 4)),
    Case("tiny_5x5", lambda huge: encode(".jpg", _TINY, cv2.IMWRITE_JPEG_QUALITY, 95), ".jpg", "decoded",
         lambda out: np.testing.assert_allclose(out, 120, atol=2)),
    Case("huge_8000x6000", lambda huge: huge, ".jpg", "decoded", assert_lesion_like),
    Case("cmyk_jpeg", lambda huge: cmyk_jpeg(_lesion(seed=12)), ".jpg", "decoded",
         lambda out: (assert_lesion_like(out), _check_close_to_bgr(out, _lesion(seed=12), 8))),
    Case("bmp", lambda huge: encode(".bmp", _lesion(seed=13)), ".bmp", "decoded",
         lambda out: _check_close_to_bgr(out, _lesion(seed=13), 0)),
    Case("tiff", lambda huge: encode(".tiff", _lesion(seed=14)), ".tiff", "decoded",
         lambda out: _check_close_to_bgr(out, _lesion(seed=14), 0)),
]


def applies(case: Case, layout: str) -> bool:
    # CSV layouts name images without extension and look for .jpg, .jpeg or .png
    # (the published downloads are JPEG); BMP and TIFF come in class folders only.
    return layout == "class" or case.ext in (".jpg", ".png")


@pytest.mark.parametrize(
    "layout,case",
    [pytest.param(layout, case, id=f"{layout}-{case.id}") for case in CASES for layout in LAYOUTS if applies(case, layout)],
)
def test_one_bad_file(case, layout, tree, tmp_path, huge_jpeg):
    """Each file is decoded correctly, or skipped and reported; the rest always loads."""
    path = add_image(layout, tree, "ISIC_bad_case", case.make(huge_jpeg), case.ext)
    run = run_both(tree, tmp_path / "cache")
    n = BASE_COUNT[layout]
    if case.outcome == "load_skipped":
        assert run.load_skipped == {str(path): case.check}
        assert str(path) not in set(run.df["path"]) and len(run.df) == n
        assert any("skipped 1 file" in w for w in run.warnings)
        assert run.res.skipped.empty and len(run.res.x) == n
    elif case.outcome == "preprocess_skipped":
        # The header looks like an image, so load_dataset (which reads 8 bytes) keeps
        # it; decoding fails, and preprocess_dataset reports it instead.
        assert run.load_skipped == {} and len(run.df) == n + 1
        assert list(run.preprocess_skipped) == [str(path)]
        assert case.check in run.preprocess_skipped[str(path)]
        assert len(run.res.x) == n
    else:
        assert run.load_skipped == {} and run.res.skipped.empty
        assert len(run.res.x) == n + 1
        assert not [w for w in run.warnings if "skipped" in w]
        case.check(run.output_for(path))
    for p in run.res.rows["path"]:  # the good images are all there and look right
        if p != str(path):
            assert_lesion_like(run.output_for(p))


@pytest.mark.parametrize("name", [".DS_Store", "Thumbs.db", "desktop.ini", "._ISIC_0000001.jpg"])
def test_system_files_are_ignored_silently(name, layout, tree, tmp_path):
    folder = image_folder(layout, tree)
    # ._ files are AppleDouble resource forks: their own magic number, never an image.
    (folder / name).write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X" if name.startswith("._") else b"junk")
    run = run_both(tree, tmp_path / "cache")
    assert run.load_skipped == {} and run.res.skipped.empty
    assert not [w for w in run.warnings if "skipped" in w]
    assert len(run.res.x) == BASE_COUNT[layout]
    assert not any(os.path.basename(p) == name for p in run.df["path"])


# --------------------------------------------------------------------------- CSV problems


@pytest.mark.parametrize("layout", CSV_LAYOUTS)
def test_csv_row_without_image_is_skipped(layout, tree, tmp_path):
    add_csv_row(layout, tree, "ISIC_no_such_file", 1)
    run = run_both(tree, tmp_path / "cache")
    expected = str(image_folder(layout, tree) / "ISIC_no_such_file.jpg")
    assert run.load_skipped == {expected: "image file is missing"}
    assert len(run.df) == len(run.res.x) == BASE_COUNT[layout]


@pytest.mark.parametrize("layout", CSV_LAYOUTS)
def test_image_without_csv_row_is_skipped(layout, tree, tmp_path):
    path = image_folder(layout, tree) / "ISIC_unlisted.jpg"
    path.write_bytes(_GOOD)
    run = run_both(tree, tmp_path / "cache")
    assert list(run.load_skipped) == [str(path)]
    assert f"no row in {csv_path(layout, tree).name}" in run.load_skipped[str(path)]
    assert str(path) not in set(run.df["path"]) and len(run.res.x) == BASE_COUNT[layout]


@pytest.mark.parametrize("layout", CSV_LAYOUTS)
def test_a_csv_row_repeated_whole_is_skipped_and_one_giving_another_label_is_an_error(layout, tree, tmp_path):
    # A row listed twice as it is: one image, the repeat reported.
    stem = "ISIC_dup"
    add_image(layout, tree, stem, _GOOD, label=1)
    add_csv_row(layout, tree, stem, 1)
    run = run_both(tree, tmp_path / "cache")
    csv = str(csv_path(layout, tree))
    report = skipped_files(run.df)
    assert report["path"].tolist() == [csv]
    assert report["reason"].tolist() == [f"duplicate row for image '{stem}' (first one kept)"]
    row = run.df[run.df["path"].str.contains(stem)]
    assert len(row) == 1 and row["label"].iloc[0] == 1
    assert len(run.res.x) == BASE_COUNT[layout] + 1
    # The same image under another label: which row is right is the researcher's to say.
    add_csv_row(layout, tree, stem, 0)
    with pytest.raises(DatasetError, match=f"name one file .*{stem}.* but give it different labels"):
        load_dataset(tree)


@pytest.mark.parametrize("column", ["target", "benign_malignant"])
@pytest.mark.parametrize("value,label", [("Malignant", 1), ("MALIGNANT", 1), ("1.0", 1), ("1", 1), (" benign ", 0), ("0.0", 0)])
def test_isic_label_spellings_accepted(isic_tree, tmp_path, column, value, label):
    csv = csv_path("isic", isic_tree)
    meta = pd.read_csv(csv, dtype=str)
    if column == "benign_malignant":
        meta = meta.drop(columns=["target"])
    meta.loc[3, column] = value
    meta.to_csv(csv, index=False)
    run = run_both(isic_tree, tmp_path / "cache")
    assert run.df.loc[3, "label"] == label and len(run.res.x) == 12


@pytest.mark.parametrize("value", ["yes", "no", "2", "-1", "melanoma", ""])
def test_isic_unknown_label_is_an_error_naming_file_and_image(isic_tree, value):
    csv = csv_path("isic", isic_tree)
    meta = pd.read_csv(csv, dtype=str)
    meta.loc[3, "target"] = value
    meta.to_csv(csv, index=False)
    before = snapshot(isic_tree)
    with pytest.raises(DatasetError) as info:
        load_dataset(isic_tree)
    message = str(info.value)
    assert str(csv) in message and "ISIC_0000003" in message
    assert f"label {value!r} is not benign/malignant or 0/1" in message
    assert snapshot(isic_tree) == before


def test_ham_dx_codes(ham_tree, tmp_path):
    """HAM10000 labels are diagnosis codes: any case and spacing, but only known codes."""
    csv = csv_path("ham", ham_tree)
    meta = pd.read_csv(csv, dtype=str)
    meta.loc[0, "dx"] = " MEL "
    meta.to_csv(csv, index=False)
    run = run_both(ham_tree, tmp_path / "cache")
    assert run.df.loc[0, "label"] == 1
    for value in ("Malignant", "yes", "1.0"):
        meta.loc[0, "dx"] = value
        meta.to_csv(csv, index=False)
        with pytest.raises(DatasetError) as info:
            load_dataset(ham_tree)
        message = str(info.value)
        assert str(csv) in message and repr(value.strip().lower()) in message
        assert "expected one of" in message and "'mel'" in message


def test_class_folder_names_in_any_case(tmp_path):
    """Benign/ and MALIGNANT/ are class folders too (on macOS and Windows they always were)."""
    root = tmp_path / "mvb"
    for i, cls in enumerate(["Benign", "MALIGNANT", "benign"]):
        (root / "train" / cls).mkdir(parents=True)
        (root / "train" / cls / f"{i}.jpg").write_bytes(_GOOD)
    run = run_both(root, tmp_path / "cache")
    labels = dict(zip(run.df["path"].map(lambda p: Path(p).parent.name), run.df["label"]))
    assert labels == {"Benign": 0, "MALIGNANT": 1, "benign": 0}
    assert len(run.res.x) == 3


def test_unknown_folder_beside_class_folders_is_reported(class_tree, tmp_path):
    """A folder named for no class (a typo, "yes", "melanoma") is reported, not silently dropped."""
    for name in ("yes", "melanoma"):
        (class_tree / "train" / name).mkdir()
        (class_tree / "train" / name / "a.jpg").write_bytes(_GOOD)
    (class_tree / "train" / ".hidden").mkdir()  # hidden folders (.git, .ipynb_checkpoints) are not data
    (class_tree / "train" / "__MACOSX").mkdir()  # left by unzipping an archive made on macOS
    run = run_both(class_tree, tmp_path / "cache")
    assert len(run.df) == 12
    assert run.load_skipped == {
        str(class_tree / "train" / name): "folder is not a class folder (expected benign/ or malignant/); its files are not used"
        for name in ("melanoma", "yes")
    }


def test_non_image_name_in_class_folder_is_reported(class_tree, tmp_path):
    path = class_tree / "train" / "malignant" / "notes.txt"
    path.write_text("biopsy pending")
    run = run_both(class_tree, tmp_path / "cache")
    assert list(run.load_skipped) == [str(path)]
    assert run.load_skipped[str(path)].startswith("not an image file name")


# --------------------------------------------------------------------------- dataset-level problems


def test_empty_class_folder(class_tree, tmp_path):
    """An empty malignant/ beside full benign/ folders: the benign images load, with a warning."""
    for split in ("train", "test"):
        for p in (class_tree / split / "malignant").iterdir():
            p.unlink()
    run = run_both(class_tree, tmp_path / "cache")
    assert len(run.df) == len(run.res.x) == 6 and (run.df["label"] == 0).all()
    assert any("only benign" in w for w in run.warnings)


def test_all_class_folders_empty_is_an_error(class_tree):
    for p in list(class_tree.rglob("*")):
        if p.is_file():
            p.unlink()
    with pytest.raises(DatasetError, match="hold no images") as info:
        load_dataset(class_tree)
    assert str(class_tree) in str(info.value)


@pytest.mark.parametrize("layout", CSV_LAYOUTS)
def test_empty_image_folder_is_an_error(layout, tree):
    folder = image_folder(layout, tree)
    for p in folder.iterdir():
        p.unlink()
    if layout == "ham":  # the fixture splits its images over two part folders
        for p in (tree / "HAM10000_images_part_2").iterdir():
            p.unlink()
    with pytest.raises(DatasetError, match="no usable images") as info:
        load_dataset(tree)
    assert str(tree) in str(info.value)


def test_one_class_only(layout, tree, tmp_path):
    """A dataset of one class loads (it may be a test split) but warns: nothing can be learned from it."""
    if layout == "isic":
        csv = csv_path(layout, tree)
        meta = pd.read_csv(csv, dtype=str)
        meta["target"], meta["benign_malignant"] = "0", "benign"
        meta.to_csv(csv, index=False)
        expected = "benign"
    elif layout == "ham":
        csv = csv_path(layout, tree)
        meta = pd.read_csv(csv, dtype=str)
        meta["dx"] = "mel"
        meta.to_csv(csv, index=False)
        expected = "malignant"
    else:
        for split in ("train", "test"):
            for p in (tree / split / "benign").iterdir():
                p.unlink()
            (tree / split / "benign").rmdir()
        expected = "malignant"
    run = run_both(tree, tmp_path / "cache")
    assert run.df["label"].nunique() == 1
    assert any(f"only {expected} images" in w for w in run.warnings), run.warnings
    assert len(run.res.x) == len(run.df)


def test_non_utf8_file_name(layout, tree, tmp_path):
    """A file name that is not valid UTF-8 (a Latin-1 archive unpacked on Linux)."""
    folder = image_folder(layout, tree)
    good = write_bytes_name(folder, b"\xff\xfe.jpg", _GOOD)
    bad = write_bytes_name(folder, b"caf\xe9.jpg", _GOOD[:200])  # and a truncated one
    run = run_both(tree, tmp_path / "cache")
    if layout == "class":
        # Decoded: the path keeps the undecodable bytes (surrogate escapes) and reads back.
        assert os.fsencode(good).endswith(b"/\xff\xfe.jpg")
        assert_lesion_like(run.output_for(good))
        assert list(run.preprocess_skipped) == [bad]
        assert "not a decodable image" in run.preprocess_skipped[bad]
    else:
        # No CSV row can name them: reported as unlisted, with paths that open the files.
        assert set(run.load_skipped) == {good, bad}
        assert all("no row" in r for r in run.load_skipped.values())
        for p in run.load_skipped:
            assert os.path.exists(os.fsencode(p))


def test_read_only_dataset_folder(layout, tree, tmp_path, huge_jpeg):
    """A dataset on a read-only share, full of bad files: both functions work and write nothing.

    Tests may run as root, for whom a read-only mode stops no write; the audit hook
    in run_both and the before/after snapshot are what show that nothing is written.
    """
    folder = image_folder(layout, tree)
    for case in CASES:
        if applies(case, layout):
            add_image(layout, tree, f"ISIC_{case.id}", case.make(huge_jpeg), case.ext)
    (folder / ".DS_Store").write_bytes(b"junk")
    modes = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            modes[p] = os.stat(p).st_mode
            os.chmod(p, stat.S_IMODE(modes[p]) & ~0o222)
    os.chmod(tree, 0o555)
    try:
        run = run_both(tree, tmp_path / "cache", Preprocess.seed())
    finally:
        os.chmod(tree, 0o755)
        for p, mode in modes.items():
            os.chmod(p, stat.S_IMODE(mode))
    decoded = [c for c in CASES if c.outcome == "decoded" and applies(c, layout)]
    assert len(run.res.x) == BASE_COUNT[layout] + len(decoded)
    assert len(run.load_skipped) == 2 and len(run.preprocess_skipped) == 3


def test_everything_at_once(layout, tree, tmp_path, huge_jpeg):
    """All the bad inputs in one dataset: one bad file never stops a run, every one is accounted for."""
    paths = {}
    for case in CASES:
        if not applies(case, layout):
            continue
        paths[case.id] = add_image(layout, tree, f"ISIC_{case.id}", case.make(huge_jpeg), case.ext)
    folder = image_folder(layout, tree)
    for name in (".DS_Store", "Thumbs.db"):
        (folder / name).write_bytes(b"junk")
    unicode_name = write_bytes_name(folder, b"\xff\xfe.jpg", _GOOD)
    if layout in CSV_LAYOUTS:
        add_csv_row(layout, tree, "ISIC_missing", 0)
        repeated = "ISIC_0000000" if layout == "isic" else "ISIC_0000100"
        add_csv_row(layout, tree, repeated, 1 if layout == "isic" else 0)  # again, its label, other fields
        (folder / "ISIC_unlisted.jpg").write_bytes(_GOOD)
    run = run_both(tree, tmp_path / "cache")
    reported = {**run.load_skipped, **run.preprocess_skipped}
    for case in CASES:
        if case.id not in paths:
            continue
        p = str(paths[case.id])
        if case.outcome == "decoded":
            case.check(run.output_for(p))
        else:
            assert case.check in reported[p], (case.id, reported.get(p))
    if layout in CSV_LAYOUTS:
        csv = str(csv_path(layout, tree))
        assert csv not in reported
        assert "names the same file as line 2" in reported[str(folder / f"{repeated}.jpg")]
        assert reported[str(folder / "ISIC_missing.jpg")] == "image file is missing"
        assert "no row" in reported[str(folder / "ISIC_unlisted.jpg")]
        assert "no row" in reported[unicode_name]
        assert len(run.load_skipped) == 6  # empty, text, missing, duplicate, unlisted, non-UTF-8 name
    else:
        assert_lesion_like(run.output_for(unicode_name))
        assert len(run.load_skipped) == 2
    assert len(run.preprocess_skipped) == 3
    assert sum(f"skipped {len(run.load_skipped)} file" in w for w in run.warnings) == 1
