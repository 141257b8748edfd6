"""Local features of dermoscopy images, and the geometric check of a pair of images.

:func:`local_features` (a pure function on an array) takes SIFT keypoints of the grey image
at a working size (longer side :data:`WORK_SIZE`), after CLAHE, with the dermatoscope's dark
vignette and the image border masked out (:func:`lesion_mask`), as RootSIFT descriptors;
an image under :data:`MIN_SIDE` pixels high or wide, in its file or at the working size, has
none to give (a ``ValueError`` saying so). :func:`image_local_features` computes them for a
table of files, in threads, cached; a file it cannot use is skipped with the reason.
:func:`match_pair` matches two images' features (Lowe's ratio test) and fits a rotation,
scale and shift with RANSAC: the number of matches that agree is the evidence that two
photographs show one scene. :func:`skinlib.audit.find_same_lesion` is built on them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial

import cv2
import numpy as np

from skinlib._shared.filemap import Skip, map_files
from skinlib._shared.files import cached_array
from skinlib.preprocessing import ImageReadError, max_image_pixels, read_image

__all__ = ["local_features", "lesion_mask", "image_local_features", "LocalFeatures", "match_pair", "Match",
           "WORK_SIZE", "N_FEATURES", "MIN_SIDE", "too_small"]

#: Longer side, in pixels, at which features are computed (HAM10000's public copy is 200x150).
WORK_SIZE = 200
#: At most this many SIFT keypoints per image (the strongest).
N_FEATURES = 400
#: Pixels an image needs on each side, in its file and at the working size: an 8x8 image
#: blown up to 200x200 gives no SIFT keypoint, a 16x16 one a few dozen; a strip a few
#: pixels high leaves nothing inside the mask (and a 1-pixel one resizes to nothing).
MIN_SIDE = 16

_FEATURE_VERSION = 1
_CLAHE = dict(clipLimit=2.0, tileGridSize=(8, 8))


def lesion_mask(gray: np.ndarray, *, margin: float = 0.03, dark: int = 20) -> np.ndarray:
    """Where features may be taken: inside an ellipse, away from the dark vignette.

    Parameters
    ----------
    gray : numpy.ndarray
        A (H, W) uint8 image.
    margin : float
        Share of each half-axis cut off the inscribed ellipse (image borders, ruler marks).
    dark : int
        Grey levels below this are the dermatoscope's vignette; they and a few pixels around
        them are masked.

    Returns
    -------
    numpy.ndarray
        A (H, W) uint8 mask, 255 where features may be taken.

    Examples
    --------
    >>> m = lesion_mask(np.full((150, 200), 128, np.uint8))
    >>> m.shape, int(m[75, 100]), int(m[0, 0])
    ((150, 200), 255, 0)
    """
    h, w = gray.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, h // 2), (int(w * (0.5 - margin)), int(h * (0.5 - margin))), 0, 0, 360, 255, -1)
    mask[gray < dark] = 0
    return cv2.erode(mask, np.ones((5, 5), np.uint8))


def too_small(shape: tuple[int, ...], size: int = WORK_SIZE) -> str:
    """``''`` when an image of ``shape`` has :data:`MIN_SIDE` pixels on each side, in the file and at ``size``, else why not.

    Parameters
    ----------
    shape : tuple of int
        The image's ``(height, width, ...)``.
    size : int
        The working size: the longer side once resized.

    Returns
    -------
    str
        The reason, naming the image's width x height (and the working size's); ``''`` if it will do.

    Examples
    --------
    >>> too_small((150, 200)), too_small((1, 500))
    ('', 'image too small for local features: 500 x 1 pixels (width x height), need at least 16 on each side')
    >>> too_small((20, 1200))
    'image too small for local features: 1200 x 20 pixels (width x height) is 200 x 3 at the working size, need at least 16 on each side'
    """
    h, w = int(shape[0]), int(shape[1])
    need = f"need at least {MIN_SIDE} on each side"
    if min(h, w) < MIN_SIDE:
        return f"image too small for local features: {w} x {h} pixels (width x height), {need}"
    scale = size / max(h, w)
    # cv2.resize's rounding of fx, fy to a size.
    ws, hs = int(round(w * scale)), int(round(h * scale))
    if min(ws, hs) < MIN_SIDE:
        return (f"image too small for local features: {w} x {h} pixels (width x height) is {ws} x {hs} at the "
                f"working size, {need}")
    return ""


def local_features(img: np.ndarray, *, size: int = WORK_SIZE, n_features: int = N_FEATURES) -> tuple[np.ndarray, np.ndarray]:
    """SIFT keypoints and RootSIFT descriptors of one image, at a working size.

    Parameters
    ----------
    img : numpy.ndarray
        A uint8 image, grey (H, W) or BGR (H, W, 3).
    size : int
        The image is resized so that its longer side is ``size`` pixels.
    n_features : int
        At most this many keypoints (the strongest).

    Returns
    -------
    points : numpy.ndarray
        (n, 2) float32 keypoint positions in the resized image (n may be 0).
    descriptors : numpy.ndarray
        (n, 128) uint8 RootSIFT descriptors (the square root of the L1-normalised SIFT
        descriptor, times 255).

    Raises
    ------
    ValueError
        When the image has fewer than :data:`MIN_SIDE` pixels on a side, in ``img`` or at
        ``size`` (:func:`too_small` says which).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = cv2.GaussianBlur(rng.integers(0, 255, (150, 200), dtype=np.uint8), (5, 5), 0)
    >>> points, desc = local_features(img)
    >>> desc.dtype, desc.shape[1], len(points) == len(desc) > 50
    (dtype('uint8'), 128, True)
    """
    small = too_small(img.shape, size)
    if small:
        raise ValueError(small)
    gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    scale = size / max(gray.shape[:2])
    if scale != 1:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    mask = lesion_mask(gray)
    gray = cv2.createCLAHE(**_CLAHE).apply(gray)
    # A low contrast threshold: dermoscopy is low in texture (the default 0.04 finds ~20
    # keypoints on a 200x150 HAM10000 image, 0.01 about 300).
    sift = cv2.SIFT_create(nfeatures=n_features, contrastThreshold=0.01)
    keypoints, desc = sift.detectAndCompute(gray, mask)
    if desc is None or not keypoints:
        return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8)
    root = np.sqrt(desc / (desc.sum(axis=1, keepdims=True) + 1e-7))
    points = np.array([k.pt for k in keypoints], np.float32)
    return points, np.round(root * 255).astype(np.uint8)


@dataclass
class LocalFeatures:
    """The local features of the images of a table: what :func:`image_local_features` returns."""

    paths: list[str]
    points: np.ndarray  # (N, 2) float32, all images' keypoints one after another
    descriptors: np.ndarray  # (N, 128) uint8
    offsets: np.ndarray  # (n + 1,) image i owns rows offsets[i]:offsets[i + 1]
    skipped: list = field(default_factory=list)
    from_cache: bool = False

    def of(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Points and descriptors of image ``i``.

        Parameters
        ----------
        i : int
            The image's position in :attr:`paths`.

        Returns
        -------
        points : numpy.ndarray
            (n, 2) float32: its keypoint positions in the resized image (n may be 0).
        descriptors : numpy.ndarray
            (n, 128) uint8: their descriptors, in the same order.
        """
        s, e = self.offsets[i], self.offsets[i + 1]
        return self.points[s:e], self.descriptors[s:e]


def _check_features(arrays: dict, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points, descriptors and offsets of ``n`` images, after checking that they fit (else ``ValueError``)."""
    offsets = cached_array(arrays, "offsets", np.int64, (n + 1,))
    total = int(offsets[-1])
    if offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise ValueError("cached 'offsets' do not increase from 0")
    return (cached_array(arrays, "points", np.float32, (total, 2)),
            cached_array(arrays, "descriptors", np.uint8, (total, 128)), offsets)


def _stack_features(feats: list) -> dict[str, np.ndarray]:
    offsets = np.zeros(len(feats) + 1, np.int64)
    offsets[1:] = np.cumsum([len(p) for p, _ in feats])
    return {
        "offsets": offsets,
        "points": np.concatenate([p for p, _ in feats]) if feats else np.zeros((0, 2), np.float32),
        "descriptors": np.concatenate([d for _, d in feats]) if feats else np.zeros((0, 128), np.uint8),
    }


def _features_of_file(path: str, size: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        img = read_image(path)
    except ImageReadError as exc:
        raise Skip(str(exc).removeprefix(f"{path}: ")) from None
    small = too_small(img.shape, size)
    if small:
        raise Skip(small)
    try:
        return local_features(img, size=size, n_features=n_features)
    except cv2.error as exc:  # an image OpenCV cannot take features of is one skipped file, not a stopped audit
        raise Skip(f"cannot take local features: {str(exc).strip().splitlines()[-1]}") from None


def image_local_features(
    paths, *, size: int = WORK_SIZE, n_features: int = N_FEATURES, cache_dir: str | os.PathLike | None = None,
    workers: int | None = None, progress: bool = True,
) -> LocalFeatures:
    """:func:`local_features` of every file in ``paths``, in threads, cached.

    A file that cannot be read, or is under :data:`MIN_SIDE` pixels high or wide (in the file
    or at ``size``), is skipped and listed in ``.skipped`` with the reason. With
    ``cache_dir``, the features are stored under a key made of the settings, the paths and
    each file's :func:`skinlib._shared.files.file_stamp`, written atomically; a cache whose arrays do
    not fit is recomputed.

    >>> feats = image_local_features(skinlib.load_dataset("data/ham10000")["path"])  # doctest: +SKIP
    """
    paths = [str(p) for p in paths]
    max_image_pixels()
    settings = {"version": _FEATURE_VERSION, "size": size, "n_features": n_features, "clahe": str(_CLAHE),
                "opencv": cv2.__version__, "max_pixels": max_image_pixels(), "min_side": MIN_SIDE}
    mapped = map_files(paths, partial(_features_of_file, size=size, n_features=n_features), stack=_stack_features,
                       build=_check_features, cache_dir=cache_dir, cache_name="lesion-features", key=settings,
                       workers=max(1, workers or os.cpu_count() or 1), progress=progress, desc="local features")
    return LocalFeatures([paths[i] for i in mapped.keep], *mapped.results, mapped.skipped, mapped.from_cache)


@dataclass(frozen=True)
class Match:
    """The geometric check of one pair: what :func:`match_pair` returns."""

    inliers: int  # matches that agree with the fitted rotation, scale and shift
    matches: int  # matches that pass the ratio test
    rotation: float  # degrees, of the fitted transform (NaN without one)
    scale: float  # of the fitted transform (NaN without one)
    spread: float = 0.0  # pixels: the smaller standard deviation of the inliers' positions, in the image where it is smaller


_NO_MATCH = Match(0, 0, float("nan"), float("nan"))


def match_pair(
    points_a: np.ndarray, desc_a: np.ndarray, points_b: np.ndarray, desc_b: np.ndarray, *, ratio: float = 0.8,
    reprojection: float = 4.0, seed: int = 0,
) -> Match:
    """Match two images' local features and fit a rotation, scale and shift with RANSAC.

    Parameters
    ----------
    points_a, desc_a, points_b, desc_b : numpy.ndarray
        What :func:`local_features` returns for each image.
    ratio : float
        Lowe's ratio test: a match is kept when its distance is below ``ratio`` times that of
        the second-nearest descriptor.
    reprojection : float
        Pixels (at the working size) within which a match agrees with the transform.
    seed : int
        Seeds RANSAC, so that the same pair always gives the same count.

    Returns
    -------
    Match

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> img = cv2.GaussianBlur(rng.integers(0, 255, (150, 200), dtype=np.uint8), (5, 5), 0)
    >>> turned = cv2.warpAffine(img, cv2.getRotationMatrix2D((100, 75), 30, 1.1), (200, 150),
    ...                         borderMode=cv2.BORDER_REFLECT)
    >>> m = match_pair(*local_features(img), *local_features(turned))
    >>> m.inliers > 20, round(m.rotation / 10) * 10, round(m.scale, 1), m.spread > 6
    (True, -30, 1.1, True)
    """
    if len(desc_a) < 2 or len(desc_b) < 2:
        return _NO_MATCH
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(desc_a.astype(np.float32), desc_b.astype(np.float32), k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < ratio * m[1].distance]
    if len(good) < 3:
        return Match(0, len(good), float("nan"), float("nan"))
    src = points_a[[m.queryIdx for m in good]]
    dst = points_b[[m.trainIdx for m in good]]
    cv2.setRNGSeed(seed)  # OpenCV's generator is per thread: each pair starts from the seed
    transform, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=reprojection)
    if transform is None or inliers is None:
        return Match(0, len(good), float("nan"), float("nan"))
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    rotation = float(np.degrees(np.arctan2(transform[1, 0], transform[0, 0])))
    agree = inliers.ravel() == 1
    # Matches along one hair or ruler edge agree with many transforms: their positions lie on
    # a line (in either image), and the smaller axis of their spread says so.
    spread = min(_narrow_spread(src[agree]), _narrow_spread(dst[agree]))
    return Match(int(agree.sum()), len(good), rotation, scale, spread)


def _narrow_spread(points: np.ndarray) -> float:
    """The smaller standard deviation of 2-D points (0 for fewer than 3)."""
    if len(points) < 3:
        return 0.0
    return float(np.sqrt(max(np.linalg.eigvalsh(np.cov(points.T))[0], 0.0)))


