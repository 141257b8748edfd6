"""A synthetic dermoscopy dataset, so that everything runs without a download.

The images are drawn, not photographed: skin of varying tone, a dark vignette, a
pigmented lesion and a few dark hairs. Malignant lesions follow the ABCD rule of
dermoscopy (Asymmetric, irregular Border, several Colours, larger Diameter);
benign ones are rounder, even and smaller. The data set is small and easy on
purpose: it checks that the pipeline runs and learns, it measures nothing clinical.
A few images are planted copies of others, a few are second photographs of another
image's lesion, and a few carry the wrong label (see :func:`make_sample`), so that
duplicate finding, leakage checks and label audits have something to find, and can be
checked against the truth.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from skinlib._shared.checks import is_whole_number
from skinlib.data._reading import LABEL_NAMES

__all__ = ["make_sample", "draw_lesion_image", "PLANTED_KINDS", "SAME_LESION_WAYS"]

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
    """Draw one synthetic dermoscopy image (uint8 BGR, ``size`` x ``size``).

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws every random choice, and is advanced by them: the same generator state gives
        the same image.
    malignant : bool
        Draw a malignant lesion (larger, asymmetric, with an irregular border and three or
        four pigments in patches) rather than a benign one (smaller, nearly round, one brown
        pigment).
    skin : int, optional
        The skin tone, 0 (light) to 4 (dark). Default ``None``: drawn from ``rng``.
    size : int, default 256
        The image's width and height in pixels.

    Returns
    -------
    numpy.ndarray
        The image: uint8, ``size`` x ``size`` x 3, in OpenCV's BGR channel order.
    """
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


#: The second photographs of a lesion :func:`make_sample` plants, in this order: the changes
#: each combines (``rotate``: 20-40 degrees either way, ``zoom``: 1.1-1.25x, ``shift``: 3-6%
#: of the side, ``brightness``, ``gamma``, ``cast``: a colour cast). Every one is turned and
#: rescaled or moved, so that no perceptual hash of the whole frame matches its source.
SAME_LESION_WAYS = (
    ("rotate", "zoom", "brightness"),
    ("rotate", "shift", "gamma", "cast"),
    ("rotate", "zoom", "shift"),
    ("rotate", "zoom", "shift", "brightness", "gamma", "cast"),
)


def _same_lesion_photo(img: np.ndarray, ways: tuple[str, ...], rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Another photograph of the lesion in ``img``: turned, zoomed, moved and relit as ``ways`` say.

    The geometry is one ``cv2.warpAffine`` about the centre (edges reflected, as if the
    skin went on); the light a gain, a gamma and a per-channel cast. Returns the image and
    a description of what was done, with the drawn parameters.
    """
    unknown = set(ways) - {"rotate", "zoom", "shift", "brightness", "gamma", "cast"}
    if unknown:
        raise ValueError(f"unknown change(s) {sorted(unknown)} in a same-lesion photograph; known: "
                         "rotate, zoom, shift, brightness, gamma, cast")
    h, w = img.shape[:2]
    how = []
    angle = float(rng.uniform(20, 40) * rng.choice([-1, 1])) if "rotate" in ways else 0.0
    zoom = float(rng.uniform(1.1, 1.25)) if "zoom" in ways else 1.0
    shift = rng.uniform(0.03, 0.06, 2) * rng.choice([-1, 1], 2) if "shift" in ways else np.zeros(2)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
    matrix[:, 2] += shift * (w, h)
    out = cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if angle:
        how.append(f"turned {angle:+.0f} degrees")
    if zoom != 1:
        how.append(f"zoomed {zoom:.2f}x")
    if shift.any():
        how.append(f"moved {shift[0]:+.0%}, {shift[1]:+.0%} of the side")
    light = out.astype(np.float32) / 255
    if "gamma" in ways:
        gamma = float(rng.choice([rng.uniform(0.7, 0.85), rng.uniform(1.2, 1.4)]))
        light = light**gamma
        how.append(f"gamma {gamma:.2f}")
    if "brightness" in ways:
        gain = float(rng.choice([rng.uniform(0.75, 0.88), rng.uniform(1.12, 1.25)]))
        light = light * gain
        how.append(f"brightness x{gain:.2f}")
    if "cast" in ways:
        cast = rng.uniform(-14, 14, 3)
        light = light + cast / 255
        how.append("colour cast {:+.0f}/{:+.0f}/{:+.0f} (B/G/R)".format(*cast))
    return np.clip(light * 255 + 0.5, 0, 255).astype(np.uint8), ", ".join(how)


def _plant_copies(rng: np.random.Generator, n_dup: int, labels: np.ndarray, patients: list[str],
                  names: list[str], images: list[np.ndarray], files: list[bytes]) -> tuple[list[tuple], set[int]]:
    """Replace ``n_dup`` images with copies of others (in ``files``); the rows of ``planted_duplicates.csv``.

    Each copy replaces an image of the same class and another patient. Returns the rows
    and the indices of the images used (sources and copies).
    """
    planted = []
    used: set[int] = set()
    n = len(labels)
    for kind in PLANTED_KINDS[:n_dup]:
        target = int(rng.choice([i for i in range(n) if i not in used]))
        sources = [i for i in range(n) if i not in used and i != target
                   and labels[i] == labels[target] and patients[i] != patients[target]]
        source = int(rng.choice(sources))
        used |= {source, target}
        files[target] = _planted_copy(kind, images[source], files[source])
        planted.append((names[source], names[target], kind))
    return planted, used


def _plant_same_lesion(rng: np.random.Generator, n_same: int, used: set[int], labels: np.ndarray,
                       patients: list[str], names: list[str], images: list[np.ndarray],
                       files: list[bytes]) -> list[tuple]:
    """Replace ``n_same`` images with second photographs of other images' lesions (in ``files``).

    Made the ways of :data:`SAME_LESION_WAYS`, in order; each replaces an unused image of
    the same class and another patient. ``used`` grows by the images taken. Returns the
    rows of ``planted_same_lesion.csv``.
    """
    planted = []
    n = len(labels)
    for ways in SAME_LESION_WAYS[:n_same]:
        targets = [i for i in range(n) if i not in used]
        target = int(rng.choice(targets))
        sources = [i for i in targets if i != target and labels[i] == labels[target] and patients[i] != patients[target]]
        if not sources:
            raise ValueError(f"no image left to photograph again for a {'malignant' if labels[target] else 'benign'} "
                             f"image of {n}: ask for fewer same-lesion pairs, copies or label flips")
        source = int(rng.choice(sources))
        used |= {source, target}
        img, how = _same_lesion_photo(images[source], ways, rng)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        assert ok
        files[target] = buf.tobytes()
        planted.append((names[source], names[target], how))
    return planted


def _plant_label_flips(rng: np.random.Generator, n_flips: int, used: set[int], labels: np.ndarray) -> np.ndarray:
    """The indices of ``n_flips`` images, none in ``used``, whose given label is to be flipped.

    Alternately a drawn benign and a drawn malignant image, so an even number of flips
    leaves the class balance unchanged.
    """
    free = np.array([i for i in range(len(labels)) if i not in used], dtype=int)
    chosen: list[int] = []
    for k in range(n_flips):
        drawn = k % 2  # 0: a benign image given as malignant, 1: the other way
        pool = [int(i) for i in free[labels[free] == drawn] if i not in chosen]
        if not pool:
            raise ValueError(f"no {'malignant' if drawn else 'benign'} image left to mislabel among {len(labels)}: "
                             "ask for fewer label flips, copies or same-lesion pairs")
        chosen.append(int(rng.choice(pool)))
    return np.array(chosen, dtype=int)


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
    same_lesion: int | None = None,
    label_flips: int | None = None,
) -> Path:
    """Write a synthetic dataset of ``n`` images in the ISIC 2020 layout.

    Like real collections, the sample holds copies of some images, second photographs of
    some lesions under another patient, and some wrong labels, all planted in known places
    and listed in CSV files, so that an audit can be checked against the truth.

    Parameters
    ----------
    path : str or os.PathLike
        The folder to write; it must not exist. The folder is built beside ``path`` and
        renamed into place, so an interrupted call leaves nothing half-written.
    n : int, default 200
        Number of images, planted ones included; at least 2.
    seed : int, default 0
        Seed of every random choice: the same seed gives the same files.
    malignant_share : float, default 0.25
        Share of the images drawn malignant.
    duplicates : int, optional
        Number of images replaced by a copy of another image of the same class and another
        patient, made in the ways of :data:`PLANTED_KINDS` (a byte copy, a mirror image, a
        resized, turned, cropped and colour-shifted copy). Default ``min(6, n // 30)``: 6
        in the built-in 200-image sample; at most ``min(6, n // 4)``.
    same_lesion : int, optional
        Number of images replaced by another photograph of another image's lesion, of the
        same class and under another patient id: the lesion turned by 20-40 degrees,
        zoomed, moved by a few percent and relit, each pair in another combination of
        :data:`SAME_LESION_WAYS`. Unlike the copies, a perceptual hash does not match
        them: they are the leak a patient registered twice makes. Default
        ``min(4, n // 50)``: 4 in the built-in sample; at most ``min(4, n // 10)``.
    label_flips : int, optional
        Number of images, none of them a planted copy or photograph or their source, whose
        given ``target`` and ``benign_malignant`` are the opposite of the class drawn,
        alternately a benign image labelled malignant and a malignant one labelled benign
        (an even number keeps the class balance). Default ``min(4, n // 50)``; at most
        ``n // 10``.

    Returns
    -------
    pathlib.Path
        ``path``, which holds ``ISIC_2020_Training_GroundTruth.csv`` (``image_name``,
        ``patient_id``, ``sex``, ``age_approx``, ``anatom_site_general_challenge``,
        ``benign_malignant``, ``target``), ``train/<image_name>.jpg`` and the truth of
        what was planted: ``planted_duplicates.csv`` (``image_a``: the source,
        ``image_b``: the copy, ``kind``), ``planted_same_lesion.csv`` (``image_a``: the
        source, ``image_b``: the second photograph, ``how``: the changes and their
        parameters) and ``planted_label_flips.csv`` (``image``, ``given``, ``drawn``:
        ``benign`` or ``malignant``).

    Raises
    ------
    FileExistsError
        When ``path`` exists; it is never overwritten.
    ValueError
        When ``n`` or a count of planted images is out of range.

    Notes
    -----
    Patients have one to four images each. Each kind of plant is drawn with its own
    random generator, after the images: asking for none of one kind leaves every other
    file as it is, byte for byte, and the planted images' sources are unchanged. The
    metadata (age, sex, site) follows the class drawn, not the label given.

    Examples
    --------
    >>> folder = make_sample("/tmp/skin-sample", n=20)  # doctest: +SKIP
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists; make_sample never overwrites a folder")
    if n < 2:
        raise ValueError(f"n must be at least 2 (one image per class), got {n}")
    n_dup = _planted_count("duplicates", duplicates, min(len(PLANTED_KINDS), n // 30), min(len(PLANTED_KINDS), n // 4), n)
    n_same = _planted_count("same_lesion", same_lesion, min(len(SAME_LESION_WAYS), n // 50),
                            min(len(SAME_LESION_WAYS), n // 10), n)
    n_flips = _planted_count("label_flips", label_flips, min(4, n // 50), n // 10, n)
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
        # The plants: each kind with its own generator, so the other images stay as they were.
        copies, used = _plant_copies(np.random.default_rng([seed, 1]), n_dup, labels, patients, names, images, files)
        same = _plant_same_lesion(np.random.default_rng([seed, 3]), n_same, used, labels, patients, names,
                                  images, files)
        flipped = _plant_label_flips(np.random.default_rng([seed, 4]), n_flips, used, labels)
        given = labels.copy()
        given[flipped] = 1 - labels[flipped]
        for name, data in zip(names, files):
            (tmp / "train" / f"{name}.jpg").write_bytes(data)
        classes = np.array(LABEL_NAMES)
        pd.DataFrame(copies, columns=["image_a", "image_b", "kind"]).to_csv(tmp / "planted_duplicates.csv", index=False)
        pd.DataFrame(same, columns=["image_a", "image_b", "how"]).to_csv(tmp / "planted_same_lesion.csv", index=False)
        pd.DataFrame({"image": [names[i] for i in flipped], "given": classes[given[flipped]],
                      "drawn": classes[labels[flipped]]}).to_csv(tmp / "planted_label_flips.csv", index=False)
        pd.DataFrame(
            {
                "image_name": names,
                "patient_id": patients,
                **_patient_metadata(np.random.default_rng([seed, 2]), patients, labels),
                "benign_malignant": classes[given],
                "target": given,
            }
        ).to_csv(tmp / "ISIC_2020_Training_GroundTruth.csv", index=False)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _planted_count(name: str, value: int | None, default: int, most: int, n: int) -> int:
    """``value`` (``default`` when None) as a count of planted images, checked to lie in [0, most]."""
    if value is None:
        return default
    if not is_whole_number(value):
        raise ValueError(f"{name} must be a whole number of images, got {value!r}")
    if not 0 <= value <= most:
        raise ValueError(f"{name} must be between 0 and {most} for n={n}, got {value}")
    return int(value)
