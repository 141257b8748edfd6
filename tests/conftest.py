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
