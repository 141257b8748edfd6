"""Shared fixtures: small generated datasets in each supported layout."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_jpeg(path: Path, img: np.ndarray, quality: int = 92) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix or ".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    buf.tofile(path)
    return path


def lesion_image(size: int = 96, radius: int = 20, centre=None, skin: int = 190, lesion: int = 60, seed: int = 0):
    """A light skin field with one dark disc, BGR uint8."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), skin, np.uint8)
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    c = centre or (size // 2, size // 2)
    cv2.circle(img, (c[1], c[0]), radius, (lesion, lesion, lesion), -1)
    return img


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under root (names as bytes, so any file name works)."""
    out = {}
    for dirpath, _, files in os.walk(os.fsencode(root)):
        for name in files:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as fh:
                out[os.fsdecode(p)] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.fixture
def isic_tree(tmp_path: Path) -> Path:
    """ISIC 2020 layout: 12 images of 6 patients, 4 malignant."""
    root = tmp_path / "isic"
    rows = []
    for i in range(12):
        name = f"ISIC_{i:07d}"
        label = int(i % 3 == 0)
        write_jpeg(root / "train" / f"{name}.jpg", lesion_image(radius=12 + 10 * label, seed=i))
        rows.append({"image_name": name, "patient_id": f"IP_{i // 2}", "sex": "male", "age_approx": 50.0,
                     "benign_malignant": "malignant" if label else "benign", "target": label})
    pd.DataFrame(rows).to_csv(root / "ISIC_2020_Training_GroundTruth.csv", index=False)
    return root


@pytest.fixture
def ham_tree(tmp_path: Path) -> Path:
    """HAM10000 layout with the two-part image folders: 10 images, 5 lesions."""
    root = tmp_path / "ham"
    dxs = ["nv", "mel", "bkl", "bcc", "akiec", "df", "vasc", "nv", "nv", "mel"]
    rows = []
    for i, dx in enumerate(dxs):
        image_id = f"ISIC_{100 + i:07d}"
        part = "HAM10000_images_part_1" if i < 5 else "HAM10000_images_part_2"
        write_jpeg(root / part / f"{image_id}.jpg", lesion_image(seed=i))
        rows.append({"lesion_id": f"HAM_{i // 2:07d}", "image_id": image_id, "dx": dx, "dx_type": "histo",
                     "age": 40.0, "sex": "female", "localization": "back"})
    pd.DataFrame(rows).to_csv(root / "HAM10000_metadata.csv", index=False)
    return root


@pytest.fixture
def class_tree(tmp_path: Path) -> Path:
    """Class folders under train/ and test/, with a stray .DS_Store."""
    root = tmp_path / "mvb"
    for split, n in (("train", 4), ("test", 2)):
        for cls in ("benign", "malignant"):
            for i in range(n):
                write_jpeg(root / split / cls / f"{i}.jpg", lesion_image(seed=i))
    (root / "train" / "benign" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return root


@pytest.fixture
def isic2019_tree(tmp_path: Path) -> Path:
    """ISIC 2019 layout: 12 images (5 malignant), one a ``_downsampled`` copy; lesion ids for 8 of them."""
    root = tmp_path / "isic2019"
    classes = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"]
    dxs = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "NV", "NV", "MEL", "NV"]
    truth, meta = [], []
    for i, dx in enumerate(dxs):
        name = f"ISIC_{i:07d}" + ("_downsampled" if i == 11 else "")
        write_jpeg(root / "ISIC_2019_Training_Input" / f"{name}.jpg", lesion_image(seed=i))
        truth.append({"image": name, **{c: float(c == dx) for c in classes}})
        meta.append({"image": name, "age_approx": "" if i == 5 else 30.0 + 5 * i,
                     "anatom_site_general": "anterior torso" if i % 2 else "head/neck",
                     "lesion_id": f"BCN_{i // 2:07d}" if i < 8 else "", "sex": "female" if i % 3 else "male"})
    pd.DataFrame(truth).to_csv(root / "ISIC_2019_Training_GroundTruth.csv", index=False)
    pd.DataFrame(meta).to_csv(root / "ISIC_2019_Training_Metadata.csv", index=False)
    (root / "ISIC_2019_Training_Input" / "LICENSE.txt").write_text("CC BY-NC 4.0")
    return root


@pytest.fixture
def isic2018_tree(tmp_path: Path) -> Path:
    """ISIC 2018 task 3 layout: 9 images of 5 lesions (4 malignant), with the lesion groupings."""
    root = tmp_path / "isic2018"
    classes = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    dxs = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC", "NV", "MEL"]
    truth, groups = [], []
    for i, dx in enumerate(dxs):
        name = f"ISIC_{24306 + i:07d}"
        write_jpeg(root / "ISIC2018_Task3_Training_Input" / f"{name}.jpg", lesion_image(seed=i))
        truth.append({"image": name, **{c: float(c == dx) for c in classes}})
        groups.append({"image": name, "lesion_id": f"HAM_{i // 2:07d}", "diagnosis_confirm_type": "histopathology"})
    pd.DataFrame(truth).to_csv(root / "ISIC2018_Task3_Training_GroundTruth.csv", index=False)
    pd.DataFrame(groups).to_csv(root / "ISIC2018_Task3_Training_LesionGroupings.csv", index=False)
    return root


#: PAD-UFES-20's metadata.csv columns, in the download's order.
PAD_COLUMNS = ["patient_id", "lesion_id", "smoke", "drink", "background_father", "background_mother", "age",
               "pesticide", "gender", "skin_cancer_history", "cancer_history", "has_piped_water",
               "has_sewage_system", "fitspatrick", "region", "diameter_1", "diameter_2", "diagnostic", "itch",
               "grew", "hurt", "changed", "bleed", "elevation", "img_id", "biopsed"]


@pytest.fixture
def pad_tree(tmp_path: Path) -> Path:
    """PAD-UFES-20 layout: 8 PNG images of 4 patients (5 malignant) in images/imgs_part_1/ and _2/."""
    root = tmp_path / "pad"
    dxs = ["ACK", "BCC", "MEL", "NEV", "SCC", "SEK", "NEV", "BCC"]
    rows = []
    for i, dx in enumerate(dxs):
        img_id = f"PAT_{i // 2 + 1}_{100 + i}_{200 + i}.png"
        part = "imgs_part_1" if i < 4 else "imgs_part_2"
        write_jpeg(root / "images" / part / img_id, lesion_image(seed=i))
        row = {c: "" for c in PAD_COLUMNS}
        row.update(patient_id=f"PAT_{i // 2 + 1}", lesion_id=str(100 + i), age=str(40 + 3 * i),
                   gender="FEMALE" if i % 2 else "MALE", fitspatrick="" if i == 3 else f"{1 + i % 6}.0",
                   region="FACE" if i % 2 else "ARM", diagnostic=dx, img_id=img_id,
                   biopsed="True" if dx in ("BCC", "MEL", "SCC") else "False")
        rows.append(row)
    pd.DataFrame(rows, columns=PAD_COLUMNS).to_csv(root / "metadata.csv", index=False)
    return root


def dermamnist_arrays(sizes=(("train", 10), ("val", 4), ("test", 6)), size: int = 28) -> dict[str, np.ndarray]:
    """Arrays as in a DermaMNIST .npz: RGB uint8 images (N, H, W, 3) and labels 0-6 (N, 1)."""
    arrays = {}
    for s, (split, n) in enumerate(sizes):
        images = [lesion_image(size=size, radius=size // 4, seed=10 * s + i)[:, :, ::-1] for i in range(n)]
        for i, img in enumerate(images):
            img[0, 0] = (s, i, 255)  # every image distinct, and colours checkable
        arrays[f"{split}_images"] = np.stack(images).astype(np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n, dtype=np.uint8) % 7).reshape(n, 1)
    return arrays


@pytest.fixture
def dermamnist_npz(tmp_path: Path) -> Path:
    """A DermaMNIST file of 20 images (10 train, 4 val, 6 test), saved compressed as MedMNIST does."""
    path = tmp_path / "medmnist" / "dermamnist.npz"
    path.parent.mkdir()
    np.savez_compressed(path, **dermamnist_arrays())
    return path


@pytest.fixture
def csv_tree(tmp_path: Path) -> Path:
    """A clinic's own table: labels.csv naming images in photos/ by relative path, diagnoses as words."""
    root = tmp_path / "clinic"
    dxs = ["melanoma", "naevus", "naevus", "bcc", "naevus", "seb k", "melanoma", "naevus"]
    rows = []
    for i, dx in enumerate(dxs):
        write_jpeg(root / "photos" / f"p{i}.jpg", lesion_image(seed=i))
        rows.append({"file": f"photos/p{i}.jpg", "diagnosis": dx, "patient": f"P{i // 2}",
                     "age_years": 30 + i, "sex": "F" if i % 2 else "M", "body_site": "back"})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


def separable(n=240, seed=0):
    """28x28 images: malignant ones carry a bright blob at a random spot, benign ones do not."""
    import skinlib
    from skinlib.preprocessing import PreprocessResult

    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    x = rng.integers(60, 120, (n, 28, 28, 1)).astype(np.uint8)
    for i in np.flatnonzero(y):
        r, c = rng.integers(4, 20, 2)
        x[i, r : r + 6, c : c + 6] = 230
    fold = np.where(np.arange(n) % 10 < 6, "train", np.where(np.arange(n) % 10 < 8, "val", "test"))
    rows = pd.DataFrame({"path": [f"img{i}.png" for i in range(n)], "label": y, "group": np.arange(n).astype(str), "fold": fold})
    return PreprocessResult(x, y, rows, pd.DataFrame(columns=["path", "reason"]), config=skinlib.Preprocess.default())
