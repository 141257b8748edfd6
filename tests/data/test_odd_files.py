"""Files a researcher's folders may hold that are not plain images in plain places: FIFOs, sockets
and devices named like images, one file listed under two names, links that lead into the other
class's folder. None of them hangs a load, loads one file twice or gives an image the other
class's label."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import threading
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from skinlib import DatasetError, load_dataset, skipped_files
from skinlib.data import materialise
from conftest import lesion_image, write_jpeg

#: Seconds a load of a tiny dataset may take before it counts as hung (on a FIFO it waits forever).
PATIENCE = 20.0


# --------------------------------------------------------------------------- helpers


def _release_fifos(root: Path) -> None:
    """Open every FIFO under ``root`` for writing and close it: a reader blocked on one gets end-of-file."""
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                if stat.S_ISFIFO(os.stat(path).st_mode):
                    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader waiting on it, or gone
                pass


def briefly(call, root: Path):
    """``call()`` in a thread, and the warnings it gave; a failure (not a hang) when it does not end in time."""
    out: dict = {}

    def run():
        try:
            out["value"] = call()
        except BaseException as exc:  # re-raised in the test's thread
            out["error"] = exc

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(PATIENCE)
        hung = worker.is_alive()
        deadline = time.monotonic() + 10
        while worker.is_alive() and time.monotonic() < deadline:
            _release_fifos(root)  # let the blocked open() return, so the thread ends
            worker.join(0.05)
    if hung:
        pytest.fail(f"the call did not return within {PATIENCE:g} s: it opened a FIFO and waited on it")
    if "error" in out:
        raise out["error"]
    return out["value"], [str(w.message) for w in caught]


def make_odd(path: Path, kind: str, elsewhere: Path) -> str:
    """A file at ``path`` that is no regular file; the word its reason gives for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
        return "a FIFO"
    if kind == "fifo_link":  # a link to a FIFO kept elsewhere: what matters is what the link leads to
        elsewhere.mkdir(parents=True, exist_ok=True)
        fifo = elsewhere / f"{path.stem}.fifo"
        os.mkfifo(fifo)
        path.symlink_to(fifo)
        return "a FIFO"
    if kind == "socket":
        # A socket's path is limited to about 100 bytes: bind from its folder by a short name.
        cwd = os.getcwd()
        os.chdir(path.parent)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.bind(path.name)
        finally:
            os.chdir(cwd)
        return "a socket"
    if kind == "device":
        path.symlink_to("/dev/null")
        return "a character device"
    raise ValueError(kind)


ODD_KINDS = ["fifo", "fifo_link", "socket", "device"]
#: A layout's fixture and the image in it that is replaced (a relative path), or added (class folders).
LAYOUT_IMAGES = {
    "class_tree": "train/benign/odd.jpg",
    "isic_tree": "train/ISIC_0000003.jpg",
    "ham_tree": "HAM10000_images_part_2/ISIC_0000107.jpg",
    "isic2019_tree": "ISIC_2019_Training_Input/ISIC_0000002.jpg",
    "isic2018_tree": "ISIC2018_Task3_Training_Input/ISIC_0024307.jpg",
    "pad_tree": "images/imgs_part_1/PAT_1_101_201.png",
    "csv_tree": "photos/p3.jpg",
}
CSV_OPTIONS = {"image_column": "file", "label_column": "diagnosis", "malignant": ["melanoma", "bcc"]}


def _load(root: Path, fixture: str, **options) -> pd.DataFrame:
    if fixture == "csv_tree":
        return load_dataset(root / "labels.csv", **CSV_OPTIONS, **options)
    return load_dataset(root, **options)


# --------------------------------------------------------------------------- A. not regular files


@pytest.mark.parametrize("kind", ODD_KINDS)
@pytest.mark.parametrize("fixture", list(LAYOUT_IMAGES))
def test_file_that_is_not_regular_is_skipped_without_being_opened(fixture, kind, request, tmp_path):
    root = request.getfixturevalue(fixture)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n = len(_load(root, fixture))
    odd = root / LAYOUT_IMAGES[fixture]
    replaced = odd.exists()
    word = make_odd(odd, kind, tmp_path / "elsewhere")
    df, _ = briefly(lambda: _load(root, fixture), tmp_path)
    assert len(df) == (n - 1 if replaced else n)
    assert str(odd) not in set(df["path"])
    reasons = dict(zip(skipped_files(df)["path"], skipped_files(df)["reason"]))
    assert reasons[str(odd)] == f"not a regular file ({word})"


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_label_file_that_is_not_regular_is_an_error(csv_tree, ham_tree, kind, tmp_path):
    csv = csv_tree / "labels.csv"
    word = make_odd(csv, kind, tmp_path / "elsewhere")
    with pytest.raises(DatasetError, match=f"{csv}: not a regular file \\({word}\\)"):
        briefly(lambda: load_dataset(csv, **CSV_OPTIONS), tmp_path)
    ham_csv = ham_tree / "HAM10000_metadata.csv"
    make_odd(ham_csv, kind, tmp_path / "elsewhere")
    with pytest.raises(DatasetError, match=f"{ham_csv}: not a regular file"):
        briefly(lambda: load_dataset(ham_tree, layout="ham10000"), tmp_path)


@pytest.mark.parametrize("kind", ["fifo", "fifo_link", "socket"])
def test_dermamnist_file_that_is_not_regular_is_an_error(tmp_path, kind):
    npz = tmp_path / "dermamnist.npz"
    make_odd(npz, kind, tmp_path / "elsewhere")
    with pytest.raises(DatasetError, match=f"{npz}: not a regular file"):
        briefly(lambda: load_dataset(npz, cache_dir=tmp_path / "cache"), tmp_path)


@pytest.mark.parametrize("kind", ["fifo", "fifo_link", "socket"])
def test_dermamnist_png_replaced_by_a_fifo_is_written_again(dermamnist_npz, tmp_path, kind):
    folder = materialise(dermamnist_npz, tmp_path / "cache")
    png = folder / "val" / "val_00002.png"
    make_odd(png, kind, tmp_path / "elsewhere")
    df, _ = briefly(lambda: load_dataset(dermamnist_npz, cache_dir=tmp_path / "cache"), tmp_path)
    assert len(df) == 20 and skipped_files(df).empty
    assert png.is_file() and not png.is_symlink() and png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("kind", ["fifo", "fifo_link", "socket"])
def test_image_files_for_predict_skip_files_that_are_not_regular(tmp_path, kind):
    from skinlib.models import image_files

    folder = tmp_path / "photos"
    good = [write_jpeg(folder / f"{i}.jpg", lesion_image(seed=i)) for i in range(2)]
    inside = folder / "sub" / "odd.jpg"
    word = make_odd(inside, kind, tmp_path / "elsewhere")
    given = tmp_path / "given.png"
    make_odd(given, kind, tmp_path / "elsewhere2")
    files, messages = briefly(lambda: image_files([folder, given, good[0]]), tmp_path)
    assert files == good + [good[0]]
    for odd in (inside, given):
        assert any(str(odd) in m and f"not a regular file ({word})" in m for m in messages), messages


# --------------------------------------------------------------------------- B. one file under two names


def _add_rows(csv: Path, rows: list[dict]) -> None:
    meta = pd.read_csv(csv, dtype=str, keep_default_na=False)
    pd.concat([meta, pd.DataFrame(rows)], ignore_index=True).fillna("").to_csv(csv, index=False)


@pytest.mark.parametrize("spelling", ["ISIC_0000100.jpg", "./ISIC_0000100", "link"])
def test_ham_image_listed_twice_under_two_names_is_one_row(ham_tree, spelling):
    if spelling == "link":  # a second name made by a link to the same file
        (ham_tree / "HAM10000_images_part_1" / "ISIC_9000100.jpg").symlink_to("ISIC_0000100.jpg")
        spelling = "ISIC_9000100"
    csv = ham_tree / "HAM10000_metadata.csv"
    first = pd.read_csv(csv, dtype=str, keep_default_na=False).iloc[0].to_dict()
    _add_rows(csv, [{**first, "image_id": spelling, "lesion_id": "HAM_other"}])
    with pytest.warns(UserWarning, match="skipped 1"):
        df = load_dataset(ham_tree)
    assert len(df) == 10 and df["path"].map(os.path.realpath).is_unique
    kept = df[df["image_id"] == "ISIC_0000100"]
    assert len(kept) == 1 and kept["group"].iloc[0] == "HAM_0000000"  # the first row's group
    (reason,) = skipped_files(df)["reason"]
    assert "line 12" in reason and "line 2" in reason and "HAM_other" in reason


@pytest.mark.parametrize("spelling", ["ISIC_0000100.jpg", "./ISIC_0000100"])
def test_ham_image_listed_twice_with_two_labels_is_an_error_naming_both_rows(ham_tree, spelling):
    csv = ham_tree / "HAM10000_metadata.csv"
    first = pd.read_csv(csv, dtype=str, keep_default_na=False).iloc[0].to_dict()
    assert first["dx"] == "nv"
    _add_rows(csv, [{**first, "image_id": spelling, "dx": "mel"}])
    with pytest.raises(DatasetError, match="line 2 .*'ISIC_0000100'.* and line 12 .*" + spelling.replace(".", r"\.")):
        load_dataset(ham_tree)


@pytest.mark.parametrize("names", [
    ["photos/p0.jpg", "photos/./p0.jpg"],
    ["photos/p0.jpg", "./photos/p0"],
    ["photos/p0.jpg", "photos/../photos/p0.jpg", "{root}/photos/p0.jpg"],
    ["photos/p0.jpg", "photos/link.jpg"],
])
def test_csv_file_named_in_several_spellings_is_one_row(csv_tree, names):
    (csv_tree / "photos" / "link.jpg").symlink_to("p0.jpg")
    names = [n.format(root=csv_tree) for n in names]
    rows = [{"file": n, "diagnosis": "melanoma", "patient": f"Q{i}"} for i, n in enumerate(names)]
    pd.DataFrame(rows).to_csv(csv_tree / "labels.csv", index=False)
    write_jpeg(csv_tree / "photos" / "x.jpg", lesion_image(seed=9))
    _add_rows(csv_tree / "labels.csv", [{"file": "photos/x.jpg", "diagnosis": "naevus", "patient": "Q9"}])
    with pytest.warns(UserWarning, match=f"skipped {len(names) - 1}"):
        df = load_dataset(csv_tree / "labels.csv", **CSV_OPTIONS, group_column="patient")
    assert df["file"].tolist() == ["photos/p0.jpg", "photos/x.jpg"] and df["group"].tolist() == ["Q0", "Q9"]
    reasons = skipped_files(df)["reason"].tolist()
    assert all("line 2" in r and f"line {i + 2}" in r for i, r in enumerate(reasons, 1)), reasons


@pytest.mark.parametrize("second", ["photos/./p0.jpg", "./photos/p0", "photos/link.jpg"])
def test_csv_file_named_twice_with_two_labels_is_an_error_naming_both_rows(csv_tree, second):
    (csv_tree / "photos" / "link.jpg").symlink_to("p0.jpg")
    rows = [{"file": "photos/p0.jpg", "diagnosis": "melanoma"}, {"file": "photos/p1.jpg", "diagnosis": "naevus"},
            {"file": second, "diagnosis": "naevus"}]
    pd.DataFrame(rows).to_csv(csv_tree / "labels.csv", index=False)
    with pytest.raises(DatasetError, match=r"line 2 .*'photos/p0\.jpg'.* and line 4 .*" + second.replace(".", r"\.")):
        load_dataset(csv_tree / "labels.csv", **CSV_OPTIONS)


def test_isic_image_listed_twice_with_two_labels_is_an_error(isic_tree):
    csv = isic_tree / "ISIC_2020_Training_GroundTruth.csv"
    first = pd.read_csv(csv, dtype=str, keep_default_na=False).iloc[1].to_dict()
    assert first["target"] == "0"
    _add_rows(csv, [{**first, "image_name": "ISIC_0000001.jpg", "target": "1", "benign_malignant": "malignant"}])
    with pytest.raises(DatasetError, match=r"line 3 .*ISIC_0000001.* and line 14 .*ISIC_0000001\.jpg"):
        load_dataset(isic_tree)


def test_class_folders_one_file_in_both_classes_is_an_error(class_tree, tmp_path):
    store = write_jpeg(tmp_path / "store" / "shared.jpg", lesion_image(seed=7))
    (class_tree / "train" / "benign" / "a.jpg").symlink_to(store)
    os.link(store, class_tree / "train" / "malignant" / "b.jpg")  # a hard link: the same file again
    with pytest.raises(DatasetError, match="train/benign/a.jpg.* and .*train/malignant/b.jpg"):
        load_dataset(class_tree)


# --------------------------------------------------------------------------- C. links between class folders


def _class_root(tmp_path: Path, splits=("",)) -> Path:
    root = tmp_path / "mvb"
    for split in splits:
        for cls in ("benign", "malignant"):
            for i in range(3):
                write_jpeg(root / split / cls / f"{cls[0]}{i}.jpg", lesion_image(radius=10 + 5 * i, seed=i))
    return root


@pytest.mark.parametrize("link,target", [
    ("benign/up", "."),                       # the dataset folder itself
    ("benign/up", ".."),                      # above it
    ("benign/other", "malignant"),            # the other class's folder
    ("benign/deep/other", "malignant"),       # the same, one folder down
    ("benign/m0.jpg", "malignant/m0.jpg"),    # a file of the other class
    ("malignant/b.jpg", "benign/b1.jpg"),
])
def test_link_into_another_class_folder_or_above_is_skipped(tmp_path, link, target):
    root = _class_root(tmp_path)
    outside = tmp_path / "outside"
    for i in range(2):
        write_jpeg(outside / f"o{i}.jpg", lesion_image(seed=30 + i))
    (root / "benign" / "ext").symlink_to(outside, target_is_directory=True)  # links elsewhere keep working
    (root / "malignant" / "ext.jpg").symlink_to(write_jpeg(tmp_path / "outside2" / "q.jpg", lesion_image(seed=40)))
    (root / link).parent.mkdir(parents=True, exist_ok=True)
    real = (root / target).resolve()
    (root / link).symlink_to(real, target_is_directory=real.is_dir())
    with pytest.warns(UserWarning, match="skipped 1"):
        df = load_dataset(root)
    labels = dict(zip(df["path"].map(lambda p: os.path.relpath(p, root)), df["label"]))
    assert labels == {"benign/b0.jpg": 0, "benign/b1.jpg": 0, "benign/b2.jpg": 0, "benign/ext/o0.jpg": 0,
                      "benign/ext/o1.jpg": 0, "malignant/ext.jpg": 1,
                      "malignant/m0.jpg": 1, "malignant/m1.jpg": 1, "malignant/m2.jpg": 1}
    ((path, reason),) = skipped_files(df).itertuples(index=False)
    assert path == str(root / link) and str(real) in reason


def test_link_into_the_other_splits_class_folder_is_skipped(tmp_path):
    root = _class_root(tmp_path, ("train", "test"))
    (root / "train" / "benign" / "more").symlink_to(root / "test" / "benign", target_is_directory=True)
    (root / "train" / "malignant" / "t.jpg").symlink_to(root / "test" / "malignant" / "m0.jpg")
    with pytest.warns(UserWarning, match="skipped 2"):
        df = load_dataset(root)
    assert df.groupby("source_split").size().to_dict() == {"test": 6, "train": 6}
    reasons = dict(zip(skipped_files(df)["path"], skipped_files(df)["reason"]))
    assert "test/benign" in reasons[str(root / "train" / "benign" / "more")]
    assert "test/malignant" in reasons[str(root / "train" / "malignant" / "t.jpg")]


@pytest.mark.parametrize("link,target", [("benign", "malignant"), ("malignant", "benign")])
def test_class_folder_that_is_a_link_to_the_other_is_an_error(tmp_path, link, target):
    root = _class_root(tmp_path)
    shutil.rmtree(root / link)
    (root / link).symlink_to(root / target, target_is_directory=True)
    with pytest.raises(DatasetError, match="are one folder") as info:
        load_dataset(root)
    assert str(root / "benign") in str(info.value) and str(root / "malignant") in str(info.value)


def test_one_folder_linked_from_both_classes_is_an_error(tmp_path):
    root = _class_root(tmp_path)
    outside = tmp_path / "outside"
    write_jpeg(outside / "o0.jpg", lesion_image(seed=30))
    (root / "benign" / "ext").symlink_to(outside, target_is_directory=True)
    (root / "malignant" / "ext").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DatasetError, match="benign/ext.* and .*malignant/ext"):
        load_dataset(root)
