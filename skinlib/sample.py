"""A synthetic dermoscopy dataset, so that everything runs without a download.

The images are drawn, not photographed: skin of varying tone, a dark vignette, a
pigmented lesion and a few dark hairs. Malignant lesions follow the ABCD rule of
dermoscopy (Asymmetric, irregular Border, several Colours, larger Diameter);
benign ones are rounder, even and smaller. The data set is small and easy on
purpose: it checks that the pipeline runs and learns, it measures nothing clinical.
A few images are planted copies of others (see :func:`make_sample`), so that duplicate
finding and leakage checks have something to find.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

__all__ = ["make_sample", "draw_lesion_image", "PLANTED_KINDS"]

# Skin tones (BGR), light to dark.
_SKIN = np.array([[196, 205, 238], [170, 185, 226], [140, 160, 205], [110, 135, 180], [80, 100, 140]], float)
# Lesion pigments (BGR): light brown, brown, dark brown, black, blue-grey, red.
_PIGMENT = np.array([[90, 120, 170], [50, 75, 120], [30, 45, 75], [25, 25, 30], [120, 100, 90], [80, 70, 160]], float)


def _smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    noise = rng.standard_normal((size, size)).astype(np.float32)
    k = int(size * scale) | 1
    noise = cv2.GaussianBlur(noise, (k, k), 0)
    return noise / (noise.std() + 1e-6)


def _lesion_mask(rng: np.random.Generator, size: int, malignant: bool) -> np.ndarray:
    """Soft mask in [0, 1] of a lesion whose border is a radius function of angle."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = size / 2 + rng.normal(0, size * 0.05, 2)
    radius = size * (rng.uniform(0.18, 0.32) if malignant else rng.uniform(0.10, 0.22))
    theta = np.arctan2(yy - cy, xx - cx)
    dist = np.hypot(yy - cy, xx - cx)
    # Border: a few harmonics. Malignant: large low harmonics (asymmetry) and
    # strong high ones (irregular, notched border). Benign: almost a circle.
    r = np.ones_like(theta)
    harmonics = range(1, 9) if malignant else range(2, 4)
    for k in harmonics:
        amp = (rng.uniform(0.05, 0.16) if malignant else rng.uniform(0.0, 0.04)) / (1 + 0.15 * k)
        r += amp * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    stretch = rng.uniform(1.0, 1.5) if malignant else rng.uniform(1.0, 1.15)
    angle = rng.uniform(0, np.pi)
    r *= 1 + (stretch - 1) * np.cos(2 * (theta - angle)) ** 2
    edge = size * (0.01 if malignant else 0.03)
    return np.clip((radius * r - dist) / edge + 0.5, 0, 1).astype(np.float32)


def draw_lesion_image(rng: np.random.Generator, malignant: bool, skin: int | None = None, size: int = 256) -> np.ndarray:
    """Draw one synthetic dermoscopy image (uint8 BGR, ``size`` x ``size``)."""
    skin_bgr = _SKIN[rng.integers(len(_SKIN)) if skin is None else skin]
    img = np.empty((size, size, 3), np.float32)
    img[:] = skin_bgr
    img += 8 * _smooth_noise(rng, size, 0.15)[..., None]

    mask = _lesion_mask(rng, size, malignant)
    if malignant:
        # Several pigments in patches: blue-grey, black, dark and light brown, red.
        chosen = rng.choice(len(_PIGMENT), size=rng.integers(3, 5), replace=False)
        fields = np.stack([_smooth_noise(rng, size, 0.18) for _ in chosen])
        weights = np.exp(1.5 * fields)
        weights /= weights.sum(0)
        lesion = np.tensordot(weights, _PIGMENT[chosen], axes=(0, 0))
    else:
        pigment = _PIGMENT[rng.integers(0, 3)]
        lesion = pigment + 10 * _smooth_noise(rng, size, 0.2)[..., None]
    img = img * (1 - mask[..., None]) + lesion * mask[..., None]

    # Dark hairs: thin curved lines across the field.
    for _ in range(rng.integers(0, 5)):
        p0, p1, p2 = rng.uniform(-0.1, 1.1, (3, 2)) * size
        t = np.linspace(0, 1, 60)[:, None]
        curve = ((1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2).astype(np.int32)
        colour = tuple(float(c) for c in rng.uniform(15, 45, 3))
        cv2.polylines(img, [curve], False, colour, thickness=int(rng.integers(1, 3)), lineType=cv2.LINE_AA)

    # Vignette: the dermatoscope's round field of view, dark towards the corners.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.hypot(yy - size / 2, xx - size / 2) / (size / 2)
    fall = rng.uniform(1.0, 1.35)
    img *= np.clip(1.6 - (r / fall) ** 4 * 1.6, 0.05, 1)[..., None]
    img += rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


#: The copies :func:`make_sample` plants, in this order: how each is made from its source.
PLANTED_KINDS = ("identical", "flip", "resized", "rot90", "crop", "colour")


def _planted_copy(kind: str, img: np.ndarray, jpeg: bytes) -> bytes:
    """The JPEG bytes of a copy of ``img`` (whose file is ``jpeg``) made the ``kind`` way."""
    if kind == "identical":
        return jpeg  # the same file under another name
    if kind == "flip":
        img = img[:, ::-1]
    elif kind == "resized":
        img = cv2.resize(img, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    elif kind == "rot90":
        img = np.rot90(img)
    elif kind == "crop":
        m = int(round(img.shape[0] * 0.05))
        img = img[m:-m, m:-m]
    elif kind == "colour":
        img = np.clip(img.astype(np.int16) + np.array([-8, 4, 12], np.int16), 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"unknown planted copy {kind!r}; known: {PLANTED_KINDS}")
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return buf.tobytes()


#: Body sites of the sample's lesions (ISIC 2020's ``anatom_site_general_challenge`` values).
SITES = ("torso", "lower extremity", "upper extremity", "head/neck", "palms/soles")


def _patient_metadata(rng: np.random.Generator, patients: list[str], labels: np.ndarray) -> dict[str, list]:
    """Sex and approximate age per patient, body site per image, some of each missing.

    Malignant lesions come from older patients and more often from the head and neck,
    as in real collections, so metadata carries a weak signal of its own. Drawn with
    their own generator: the images are the same with or without these columns.
    """
    ages, sexes, sites = {}, {}, []
    for pid, label in zip(patients, labels):
        if pid not in ages:
            ages[pid] = float(np.clip(5 * np.round(rng.normal(62 if label else 45, 12) / 5), 15, 90))
            sexes[pid] = str(rng.choice(["male", "female"]))
        weights = np.array([4, 2, 2, 3 if label else 1, 0.5])
        sites.append(str(rng.choice(SITES, p=weights / weights.sum())))
    n = len(patients)
    age = [ages[p] for p in patients]
    sex = [sexes[p] for p in patients]
    for column in (age, sex, sites):  # about 5% missing, as in ISIC 2020
        for i in np.flatnonzero(rng.random(n) < 0.05):
            column[i] = np.nan if column is age else ""
    return {"sex": sex, "age_approx": age, "anatom_site_general_challenge": sites}


def make_sample(
    path: str | os.PathLike,
    n: int = 200,
    seed: int = 0,
    malignant_share: float = 0.25,
    duplicates: int | None = None,
) -> Path:
    """Write a synthetic dataset of ``n`` images in the ISIC 2020 layout.

    ``path/ISIC_2020_Training_GroundTruth.csv`` (``image_name``, ``patient_id``,
    ``sex``, ``age_approx``, ``anatom_site_general_challenge``, ``benign_malignant``,
    ``target``) and ``path/train/<image_name>.jpg``. Patients
    have one to four images each; ``malignant_share`` of the images are malignant.
    The same ``seed`` gives the same files. The folder is built beside ``path`` and
    renamed into place, so an interrupted call leaves nothing half-written; an
    existing ``path`` is never overwritten.

    Like real collections, the sample holds copies of some images under another name and
    another patient: ``duplicates`` of them (default ``min(6, n // 30)``: 6 in the
    built-in 200-image sample), made in the ways of :data:`PLANTED_KINDS` (a byte copy, a
    mirror image, a resized, turned, cropped and colour-shifted copy), each of an image
    of the same class, so the class balance is unchanged. They are listed in
    ``path/planted_duplicates.csv`` (``image_a``: the source, ``image_b``: the copy,
    ``kind``), so that duplicate finding can be checked against the truth.

    >>> folder = make_sample("/tmp/skin-sample", n=20)  # doctest: +SKIP
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists; make_sample never overwrites a folder")
    if n < 2:
        raise ValueError(f"n must be at least 2 (one image per class), got {n}")
    n_dup = min(len(PLANTED_KINDS), n // 30) if duplicates is None else int(duplicates)
    if not 0 <= n_dup <= min(len(PLANTED_KINDS), n // 4):
        raise ValueError(
            f"duplicates must be between 0 and {min(len(PLANTED_KINDS), n // 4)} for n={n}, got {duplicates}"
        )
    rng = np.random.default_rng(seed)
    n_malignant = max(1, int(round(malignant_share * n)))
    labels = np.zeros(n, dtype=int)
    labels[rng.choice(n, n_malignant, replace=False)] = 1

    patients, tones = [], []
    while len(patients) < n:
        pid = f"IP_{len(set(patients)):05d}"
        tone = int(rng.integers(len(_SKIN)))
        for _ in range(rng.integers(1, 5)):
            patients.append(pid)
            tones.append(tone)
    patients, tones = patients[:n], tones[:n]

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        (tmp / "train").mkdir()
        names = [f"ISIC_{9000000 + i:07d}" for i in range(n)]
        images, files = [], []
        for label, tone in zip(labels, tones):
            img = draw_lesion_image(rng, bool(label), skin=tone)
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            assert ok
            images.append(img)
            files.append(buf.tobytes())
        # Planted copies: drawn with their own generator, so the other images stay as
        # they were; each replaces an image of the same class and another patient.
        planted = []
        pick = np.random.default_rng([seed, 1])
        used: set[int] = set()
        for kind in PLANTED_KINDS[:n_dup]:
            target = int(pick.choice([i for i in range(n) if i not in used]))
            sources = [i for i in range(n) if i not in used and i != target
                       and labels[i] == labels[target] and patients[i] != patients[target]]
            source = int(pick.choice(sources))
            used |= {source, target}
            files[target] = _planted_copy(kind, images[source], files[source])
            planted.append((names[source], names[target], kind))
        for name, data in zip(names, files):
            (tmp / "train" / f"{name}.jpg").write_bytes(data)
        pd.DataFrame(planted, columns=["image_a", "image_b", "kind"]).to_csv(tmp / "planted_duplicates.csv", index=False)
        pd.DataFrame(
            {
                "image_name": names,
                "patient_id": patients,
                **_patient_metadata(np.random.default_rng([seed, 2]), patients, labels),
                "benign_malignant": np.where(labels == 1, "malignant", "benign"),
                "target": labels,
            }
        ).to_csv(tmp / "ISIC_2020_Training_GroundTruth.csv", index=False)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
