"""Finding different photographs of one lesion, filed under different ids.

:func:`skinlib.find_duplicates` finds copies of one photograph. A lesion photographed
twice (another angle, zoom, light or moment) is not a copy, but a model tested on one
photograph and trained on the other is rewarded for memory all the same, and a split is
only as good as the dataset's ``lesion_id`` or ``patient_id`` column. :func:`find_same_lesion`
finds such pairs from the images, the classical image-retrieval way:

1. **Local features** (:func:`local_features`, a pure function on an array): SIFT keypoints
   of the grey image at a working size (longer side :data:`WORK_SIZE`), after CLAHE, with the
   dermatoscope's dark vignette and the image border masked out (:func:`lesion_mask`), as
   RootSIFT descriptors.
2. **Candidates by descriptor votes** (:func:`candidate_pairs`): every descriptor's nearest
   descriptors among all images (a faiss index of PCA-reduced descriptors: exact for small
   sets, inverted lists with product quantisation for large ones); each image keeps the
   :data:`CANDIDATES` images its descriptors point to most often.
3. **Geometric verification** (:func:`match_pair`): ratio-test matches, then a rotation,
   scale and shift fitted by RANSAC; the pair's score is its number of inlier matches.
   Pairs that join two verified pairs (A-B and B-C give A-C) are verified too.

Age, sex and body site, where a dataset has them, are evidence: a pair whose three agree
needs fewer inliers (:data:`MIN_INLIERS_METADATA`), but never none. Measured on HAM10000
with ``lesion_id`` as the truth (see ``benchmarks/same_lesion.py`` and the audit page of the
documentation).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from skinlib.files import (bounded_map, cached_array, cached_keep, check_cache_writable, file_stamp, load_cache,
                           save_cache)
from skinlib.images import ImageReadError, max_image_pixels, read_image

__all__ = ["find_same_lesion", "merge_pairs", "local_features", "lesion_mask", "image_local_features",
           "LocalFeatures", "candidate_pairs", "match_pair", "Match", "WORK_SIZE", "N_FEATURES", "CANDIDATES",
           "MIN_INLIERS", "MIN_INLIERS_METADATA", "MIN_SPREAD", "SCALE_RANGE", "METADATA_COLUMNS"]

#: Longer side, in pixels, at which features are computed (HAM10000's public copy is 200x150).
WORK_SIZE = 200
#: At most this many SIFT keypoints per image (the strongest).
N_FEATURES = 400
#: Candidate images kept per image from the descriptor votes.
CANDIDATES = 5
#: More candidates kept per image among the images of its age, sex and site, when known.
METADATA_CANDIDATES = 20
#: Nearest descriptors looked up per descriptor.
NEIGHBOURS = 10
#: RANSAC inliers that make a pair: on HAM10000, 8 kept 96% of the same-lesion pairs
#: among the candidates and about 1 pair of two lesion ids per 100 images.
MIN_INLIERS = 8
#: Inliers that suffice when age, sex and body site all agree (same-lesion pairs share them
#: 99.9% of the time on HAM10000, 1% of the candidate pairs of two lesions do).
MIN_INLIERS_METADATA = 5
#: Pixels (at :data:`WORK_SIZE`) the inliers must spread across, along their narrower axis:
#: matches along one hair or ruler edge line up, those of one lesion cover an area.
MIN_SPREAD = 6.0
#: Scales a pair's fitted transform may have: one lesion is photographed at other
#: magnifications (HAM10000's same-lesion pairs reach 3.2x), but a transform that shrinks
#: one image to a point is RANSAC explaining repeated texture, not a second photograph.
SCALE_RANGE = (0.25, 4.0)
#: The metadata compared, in :func:`skinlib.load_dataset`'s names.
METADATA_COLUMNS = ("age", "sex", "site")

_PCA_DIMS = 64
_FLAT_LIMIT = 50_000  # descriptors up to which the nearest-neighbour search is exact
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
        (n, 2) float32 keypoint positions in the resized image.
    descriptors : numpy.ndarray
        (n, 128) uint8 RootSIFT descriptors (the square root of the L1-normalised SIFT
        descriptor, times 255).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = cv2.GaussianBlur(rng.integers(0, 255, (150, 200), dtype=np.uint8), (5, 5), 0)
    >>> points, desc = local_features(img)
    >>> desc.dtype, desc.shape[1], len(points) == len(desc) > 50
    (dtype('uint8'), 128, True)
    """
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
        """Points and descriptors of image ``i``."""
        s, e = self.offsets[i], self.offsets[i + 1]
        return self.points[s:e], self.descriptors[s:e]


def _cache_key(paths: list[str], size: int, n_features: int) -> str:
    h = hashlib.sha256()
    settings = {"version": _FEATURE_VERSION, "size": size, "n_features": n_features, "clahe": str(_CLAHE),
                "opencv": cv2.__version__, "max_pixels": max_image_pixels()}
    h.update(json.dumps(settings, sort_keys=True).encode() + b"\n")
    for path in paths:
        h.update(f"{path}\t{file_stamp(path)}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:24]


def _cached_features(paths: list[str], arrays: dict) -> LocalFeatures:
    keep = cached_keep(arrays, paths)
    offsets = cached_array(arrays, "offsets", np.int64, (len(keep) + 1,))
    n = int(offsets[-1])
    if offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise ValueError("cached 'offsets' do not increase from 0")
    return LocalFeatures([paths[i] for i in keep], cached_array(arrays, "points", np.float32, (n, 2)),
                         cached_array(arrays, "descriptors", np.uint8, (n, 128)), offsets, arrays["skipped"], True)


def _features_of_file(path: str, size: int, n_features: int):
    try:
        return local_features(read_image(path), size=size, n_features=n_features), None
    except ImageReadError as exc:
        return None, str(exc)


def image_local_features(
    paths, *, size: int = WORK_SIZE, n_features: int = N_FEATURES, cache_dir: str | os.PathLike | None = None,
    workers: int | None = None, progress: bool = True,
) -> LocalFeatures:
    """:func:`local_features` of every file in ``paths``, in threads, cached.

    A file that cannot be read is skipped and listed in ``.skipped`` with the reason. With
    ``cache_dir``, the features are stored under a key made of the settings, the paths and
    each file's :func:`skinlib.files.file_stamp`, written atomically; a cache whose arrays do
    not fit is recomputed.

    >>> feats = image_local_features(skinlib.load_dataset("data/ham10000")["path"])  # doctest: +SKIP
    """
    paths = [str(p) for p in paths]
    max_image_pixels()
    cache_path = None
    if cache_dir is not None:
        cache_path = Path(cache_dir) / f"lesion-features-{_cache_key(paths, size, n_features)}.npz"
        cached = load_cache(cache_path, partial(_cached_features, paths))
        if cached is not None:
            return cached
        check_cache_writable(cache_path)

    from tqdm.auto import tqdm

    workers = max(1, workers or os.cpu_count() or 1)
    points, descs, keep, skipped = [], [], [], []
    with tqdm(total=len(paths), desc="local features", unit="img", disable=not progress or not paths) as bar:
        with ThreadPoolExecutor(workers) as pool:
            work = partial(_features_of_file, size=size, n_features=n_features)
            for i, (feats, reason) in enumerate(bounded_map(pool, work, paths, 8 * workers)):
                if feats is None:
                    skipped.append((paths[i], reason))
                else:
                    points.append(feats[0])
                    descs.append(feats[1])
                    keep.append(i)
                bar.update(1)
    offsets = np.zeros(len(keep) + 1, np.int64)
    offsets[1:] = np.cumsum([len(p) for p in points])
    result = LocalFeatures(
        [paths[i] for i in keep],
        np.concatenate(points) if points else np.zeros((0, 2), np.float32),
        np.concatenate(descs) if descs else np.zeros((0, 128), np.uint8),
        offsets, skipped,
    )
    if cache_path is not None:
        save_cache(cache_path, skipped, keep=np.array(keep, np.int64), offsets=offsets, points=result.points,
                   descriptors=result.descriptors)
    return result


# --------------------------------------------------------------------------- candidates


def _owners(feats: LocalFeatures) -> np.ndarray:
    return np.repeat(np.arange(len(feats.paths)), np.diff(feats.offsets))


def _reducer(descriptors: np.ndarray, seed: int):
    """A PCA of the descriptors (fitted on at most 100,000 of them, seeded) and its dimensions."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    sample = descriptors if len(descriptors) <= 100_000 else descriptors[rng.choice(len(descriptors), 100_000, replace=False)]
    dims = min(_PCA_DIMS, len(sample))
    pca = PCA(dims, random_state=seed).fit(sample.astype(np.float32))
    return (lambda d: np.ascontiguousarray(pca.transform(d.astype(np.float32)), dtype=np.float32)), dims


def _index(vectors_of, n: int, dims: int, seed: int):
    """A faiss index of ``n`` vectors (``vectors_of(start, stop)`` gives them in chunks).

    Exact below :data:`_FLAT_LIMIT` vectors; above, inverted lists (about 4 sqrt(n) of them,
    4 searched per query) with 16-byte product-quantised codes, so memory stays small.
    """
    import faiss

    if n <= _FLAT_LIMIT:
        index = faiss.IndexFlatL2(dims)
    else:
        nlist = int(4 * np.sqrt(n))
        index = faiss.IndexIVFPQ(faiss.IndexFlatL2(dims), dims, nlist, 16, 8)
        rng = np.random.default_rng(seed)
        train = np.sort(rng.choice(n, min(n, 40 * nlist), replace=False))
        index.cp.seed = index.pq.cp.seed = seed
        index.train(_gather(vectors_of, train))
        index.nprobe = 4
    for start in range(0, n, 200_000):
        index.add(vectors_of(start, min(n, start + 200_000)))
    return index


def _gather(vectors_of, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (sorted) of the chunked vectors, read chunk by chunk."""
    out = []
    for start in range(0, int(rows[-1]) + 1, 200_000):
        sel = rows[(rows >= start) & (rows < start + 200_000)]
        if len(sel):
            out.append(vectors_of(start, start + 200_000)[sel - start])
    return np.concatenate(out)


def candidate_pairs(
    a: LocalFeatures, b: LocalFeatures | None = None, *, candidates: int = CANDIDATES, neighbours: int = NEIGHBOURS,
    groups_a: np.ndarray | None = None, groups_b: np.ndarray | None = None, group_candidates: int = 0,
    seed: int = 0, progress: bool = True,
) -> pd.DataFrame:
    """Candidate pairs by descriptor votes: each image's most-voted images.

    Parameters
    ----------
    a, b : LocalFeatures
        The features of one table (pairs within it), or of two (pairs of one image of each).
    candidates : int
        Images kept per image of ``a`` (and of ``b``, within one table), most votes first.
    neighbours : int
        Nearest descriptors looked up per descriptor.
    groups_a, groups_b : numpy.ndarray, optional
        An integer per image of ``a`` (and ``b``; -1: unknown), such as a code of age, sex and
        site: besides its ``candidates``, each image keeps its ``group_candidates`` most-voted
        images of its own group.
    group_candidates : int
        See ``groups_a``.
    seed : int
        Seeds the PCA and the index training.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        ``i`` (an image of ``a``), ``j`` (of ``b``, or of ``a`` with ``i < j``), ``votes``.

    Examples
    --------
    >>> cands = candidate_pairs(image_local_features(paths))  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    within = b is None
    b = a if within else b
    empty = pd.DataFrame({"i": np.zeros(0, np.int64), "j": np.zeros(0, np.int64), "votes": np.zeros(0, np.int64)})
    if len(a.descriptors) == 0 or len(b.descriptors) == 0:
        return empty
    reduce, dims = _reducer(b.descriptors if within else np.concatenate([a.descriptors, b.descriptors]), seed)
    index = _index(lambda s, e: reduce(b.descriptors[s:e]), len(b.descriptors), dims, seed)
    owner_b = _owners(b)
    n_b = len(b.paths)
    k = min(neighbours + (1 if within else 0), len(b.descriptors))
    found = []
    step = 2000  # query images per chunk: whole images, so each chunk's votes are final
    with tqdm(total=len(a.paths), desc="candidate pairs", unit="img", disable=not progress) as bar:
        for s in range(0, len(a.paths), step):
            e = min(len(a.paths), s + step)
            lo, hi = a.offsets[s], a.offsets[e]
            if hi > lo:
                _, nn = index.search(reduce(a.descriptors[lo:hi]), k)
                q_img = np.repeat(np.arange(s, e), np.diff(a.offsets[s:e + 1]))
                t_img = np.where(nn >= 0, owner_b[np.clip(nn, 0, None)], -1)
                valid = (t_img >= 0) & ((t_img != q_img[:, None]) if within else True)
                desc = np.broadcast_to(np.arange(hi - lo, dtype=np.int64)[:, None], nn.shape)[valid]
                # One vote per descriptor and target image, then votes per (query, target).
                per_desc = np.unique(desc * n_b + t_img[valid])
                pair = q_img[per_desc // n_b].astype(np.int64) * n_b + per_desc % n_b
                pair, votes = np.unique(pair, return_counts=True)
                qi, tj = pair // n_b, pair % n_b
                order = np.lexsort((tj, -votes, qi))
                qi, tj, votes = qi[order], tj[order], votes[order]
                first = np.r_[0, np.flatnonzero(np.diff(qi)) + 1]
                rank = np.arange(len(qi)) - np.repeat(first, np.diff(np.r_[first, len(qi)]))
                top = rank < candidates
                if group_candidates and groups_a is not None:
                    gb = groups_a if within else groups_b
                    same = (groups_a[qi] >= 0) & (groups_a[qi] == gb[tj])
                    counted = np.cumsum(same)
                    before = np.where(first > 0, counted[np.maximum(first - 1, 0)], 0)  # same-group targets of earlier queries
                    same_rank = counted - np.repeat(before, np.diff(np.r_[first, len(qi)])) - 1
                    top |= same & (same_rank < group_candidates)
                found.append(pd.DataFrame({"i": qi[top], "j": tj[top], "votes": votes[top]}))
            bar.update(e - s)
    if not found:
        return empty
    pairs = pd.concat(found, ignore_index=True)
    if within:
        i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
        pairs = pd.DataFrame({"i": np.minimum(i, j), "j": np.maximum(i, j), "votes": pairs["votes"].to_numpy()})
        # A pair found from both sides: its votes from both added.
        pairs = pairs.groupby(["i", "j"], as_index=False, sort=True)["votes"].sum()
    return pairs.sort_values(["i", "j"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- verification


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
    >>> m.inliers > 20, round(m.rotation / 10) * 10, round(m.scale, 1), m.spread > MIN_SPREAD
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


# --------------------------------------------------------------------------- the finder


def _metadata_agree(df: pd.DataFrame | None, other: pd.DataFrame | None, rows_a, rows_b) -> np.ndarray:
    """Whether age, sex and body site are all known and equal for each pair of rows."""
    tables = (df, df if other is None else other)
    if any(t is None for t in tables) or not all(set(METADATA_COLUMNS) <= set(t.columns) for t in tables):
        return np.zeros(len(rows_a), bool)
    agree = np.ones(len(rows_a), bool)
    for column in METADATA_COLUMNS:
        va = tables[0][column].to_numpy()[rows_a]
        vb = tables[1][column].to_numpy()[rows_b]
        known = pd.notna(va) & pd.notna(vb) & (pd.Series(va).astype(str).str.strip().ne("").to_numpy())
        agree &= known & (pd.Series(va).astype(str).to_numpy() == pd.Series(vb).astype(str).to_numpy())
    return agree


def _metadata_groups(df, other, fa: LocalFeatures, fb: LocalFeatures):
    """A code per image of ``fa`` and ``fb`` for its (age, sex, site), -1 where any is unknown."""
    tables = [df] if other is None else [df, other]
    if not all(set(METADATA_COLUMNS) <= set(t.columns) for t in tables):
        return None, None
    keys = []
    for table in tables:
        cols = [table[c].astype(str).str.strip().where(table[c].notna() & table[c].astype(str).str.strip().ne(""))
                for c in METADATA_COLUMNS]
        key = pd.Series(list(zip(*cols)), index=table["path"].astype(str))
        keys.append(key.where([all(pd.notna(v) for v in k) for k in key], None))
    codes, _ = pd.factorize(pd.concat(keys), use_na_sentinel=True)
    code_of = [dict(zip(k.index, c)) for k, c in zip(keys, np.split(codes, [len(keys[0])]))]
    ga = np.array([code_of[0][p] for p in fa.paths], np.int64)
    gb = ga if other is None else np.array([code_of[1][p] for p in fb.paths], np.int64)
    return ga, gb


def _verify(a: LocalFeatures, b: LocalFeatures, i: np.ndarray, j: np.ndarray, workers: int, seed: int,
            progress: bool, desc: str) -> list[Match]:
    from tqdm.auto import tqdm

    def one(k: int) -> Match:
        return match_pair(*a.of(int(i[k])), *b.of(int(j[k])), seed=seed)

    out = []
    with tqdm(total=len(i), desc=desc, unit="pair", disable=not progress or len(i) == 0) as bar:
        with ThreadPoolExecutor(workers) as pool:
            for m in bounded_map(pool, one, list(range(len(i))), 64 * workers):
                out.append(m)
                bar.update(1)
    return out


def _closing_pairs(i: np.ndarray, j: np.ndarray, checked: set, max_group: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Pairs inside the groups that the accepted pairs join, not yet checked (A-B, B-C: A-C)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    for x, y in zip(i.tolist(), j.tolist()):
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
    groups: dict[int, list[int]] = {}
    for x in set(i.tolist()) | set(j.tolist()):
        groups.setdefault(find(x), []).append(x)
    new = [(x, y) for members in groups.values() if 2 < len(members) <= max_group
           for n, x in enumerate(sorted(members)) for y in sorted(members)[n + 1:] if (x, y) not in checked]
    return (np.array([p[0] for p in new], np.int64), np.array([p[1] for p in new], np.int64))


def find_same_lesion(
    df: pd.DataFrame,
    other: pd.DataFrame | None = None,
    *,
    min_inliers: int = MIN_INLIERS,
    metadata: bool = True,
    min_inliers_metadata: int = MIN_INLIERS_METADATA,
    min_spread: float = MIN_SPREAD,
    candidates: int = CANDIDATES,
    size: int = WORK_SIZE,
    n_features: int = N_FEATURES,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
    seed: int = 0,
) -> pd.DataFrame:
    """Pairs of images that show one lesion: other photographs as well as copies.

    Parameters
    ----------
    df : pandas.DataFrame
        A table with a ``path`` column (:func:`skinlib.load_dataset`); its ``age``, ``sex``
        and ``site`` columns, when present, serve as evidence.
    other : pandas.DataFrame, optional
        A second table: then only pairs of one image of ``df`` (``path_a``) and one of
        ``other`` (``path_b``).
    min_inliers : int
        RANSAC inliers that make a pair (default :data:`MIN_INLIERS`, measured on HAM10000).
    metadata : bool
        Accept pairs whose age, sex and site all agree from ``min_inliers_metadata`` inliers.
        The images are always needed: metadata alone never makes a pair.
    min_inliers_metadata : int
        See ``metadata``.
    min_spread : float
        Pixels the inliers must spread across (:data:`MIN_SPREAD`); 0 turns the check off.
    candidates : int
        Candidate images verified per image (:func:`candidate_pairs`).
    size, n_features : int
        Go to :func:`local_features`.
    cache_dir : path-like, optional
        Caches each table's features (:func:`image_local_features`).
    workers : int, optional
        Threads (default: one per core).
    progress : bool
        Show progress bars.
    seed : int
        Seeds the PCA, the index and RANSAC: the same seed and images give the same pairs.

    Returns
    -------
    pandas.DataFrame
        One row per pair, most inliers first: ``path_a``, ``path_b``, ``similarity`` (the
        share of the smaller image's keypoints that are inliers, at most 1), ``kind``
        (``"same lesion"``), ``inliers``, ``votes``, ``rotation`` and ``scale`` (of the fitted
        transform), ``spread`` (of the inliers, in pixels), ``metadata_agree`` and ``evidence`` (the same in words). The pairs work
        wherever :func:`skinlib.find_duplicates`' do (``split_dataset(duplicates=...)``,
        ``check_leakage``, ``drop_leaked``, ``cross_validate``); :func:`merge_pairs` joins
        the two tables. Unreadable images are skipped and listed in
        ``skinlib.skipped_files(pairs)``.

    Examples
    --------
    >>> pairs = find_same_lesion(skinlib.load_dataset("data/ham10000"))  # doctest: +SKIP
    >>> pairs[["path_a", "path_b", "inliers", "evidence"]].head()  # doctest: +SKIP
    """
    for name, table in (("df", df), ("other", other)):
        if table is not None and "path" not in getattr(table, "columns", ()):
            raise ValueError(f"{name} lacks a 'path' column; expected a table from load_dataset")
    for name, value in (("min_inliers", min_inliers), ("min_inliers_metadata", min_inliers_metadata),
                        ("candidates", candidates), ("size", size), ("n_features", n_features)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    min_inliers_metadata = min(min_inliers_metadata, min_inliers)  # agreement never raises the bar
    workers = max(1, workers or os.cpu_count() or 1)
    common = dict(size=size, n_features=n_features, cache_dir=cache_dir, workers=workers, progress=progress)
    fa = image_local_features(df["path"], **common)
    fb = None if other is None else image_local_features(other["path"], **common)
    b = fa if fb is None else fb
    groups_a = groups_b = None
    if metadata:
        groups_a, groups_b = _metadata_groups(df, other, fa, b)
    cands = candidate_pairs(fa, fb, candidates=candidates, groups_a=groups_a, groups_b=groups_b,
                            group_candidates=METADATA_CANDIDATES if groups_a is not None else 0, seed=seed,
                            progress=progress)
    i, j = cands["i"].to_numpy(), cands["j"].to_numpy()
    votes = dict(zip(zip(i.tolist(), j.tolist()), cands["votes"].tolist()))
    matches = _verify(fa, b, i, j, workers, seed, progress, "verify pairs")

    row_a = {p: r for r, p in enumerate(df["path"].astype(str))}
    row_b = row_a if other is None else {p: r for r, p in enumerate(other["path"].astype(str))}
    rows_of = lambda feats, rows, idx: np.array([rows[feats.paths[k]] for k in idx], np.int64)  # noqa: E731

    def accepted(ii, jj, ms):
        agree = (_metadata_agree(df, other, rows_of(fa, row_a, ii), rows_of(b, row_b, jj)) if metadata
                 else np.zeros(len(ii), bool))
        inl = np.array([m.inliers for m in ms], np.int64)
        spread = np.array([m.spread for m in ms], float) >= min_spread
        scale = np.array([m.scale for m in ms], float)
        spread &= (scale >= SCALE_RANGE[0]) & (scale <= SCALE_RANGE[1])  # NaN: no transform, False
        return spread & ((inl >= min_inliers) | (agree & (inl >= min_inliers_metadata))), agree

    ok, agree = accepted(i, j, matches)
    if other is None and ok.any():  # close the groups: A-B and B-C verified, check A-C
        ci, cj = _closing_pairs(i[ok], j[ok], set(votes))
        if len(ci):
            more = _verify(fa, b, ci, cj, workers, seed, progress, "verify groups")
            more_ok, more_agree = accepted(ci, cj, more)
            i, j = np.r_[i, ci], np.r_[j, cj]
            matches, ok, agree = matches + more, np.r_[ok, more_ok], np.r_[agree, more_agree]

    keep = np.flatnonzero(ok)
    n_a, n_b = np.diff(fa.offsets), np.diff(b.offsets)
    rows = []
    for k in keep:
        m, x, y = matches[k], int(i[k]), int(j[k])
        evidence = f"{m.inliers} of {m.matches} matches fit a turn of {m.rotation:.0f} deg at scale {m.scale:.2f}"
        if agree[k]:
            evidence += "; age, sex and site agree"
        rows.append((fa.paths[x], b.paths[y], min(1.0, m.inliers / max(1, min(n_a[x], n_b[y]))), m.inliers,
                     votes.get((x, y), 0), m.rotation, m.scale, m.spread, bool(agree[k]), evidence))
    pairs = pd.DataFrame(rows, columns=["path_a", "path_b", "similarity", "inliers", "votes", "rotation", "scale",
                                        "spread", "metadata_agree", "evidence"])
    pairs.insert(3, "kind", "same lesion")
    pairs = pairs.astype({"path_a": str, "path_b": str, "similarity": float, "kind": str, "inliers": np.int64,
                          "votes": np.int64, "metadata_agree": bool, "evidence": str})
    pairs = pairs.sort_values(["inliers", "path_a", "path_b"], ascending=[False, True, True], kind="stable")
    pairs = pairs.reset_index(drop=True)
    skipped = fa.skipped + ([] if fb is None else fb.skipped)
    pairs.attrs["skipped"] = [(str(p), str(r)) for p, r in skipped]
    if skipped:
        warnings.warn(f"find_same_lesion: skipped {len(skipped)} image(s) that could not be read; "
                      "see skinlib.skipped_files(pairs) for paths and reasons", stacklevel=2)
    return pairs


def merge_pairs(*tables: pd.DataFrame) -> pd.DataFrame:
    """One table of pairs from several (copies, same-lesion pairs...), each pair once.

    A pair listed again in a later table (in either order of its two paths) is dropped:
    pass the copies first to keep a copy's ``kind``. Columns missing from a table are left
    empty; ``attrs["skipped"]`` joins the tables' skipped files.

    Examples
    --------
    >>> copies = pd.DataFrame({"path_a": ["a"], "path_b": ["b"], "kind": ["near"]})
    >>> same = pd.DataFrame({"path_a": ["b", "c"], "path_b": ["a", "d"], "kind": ["same lesion"] * 2})
    >>> merge_pairs(copies, same)[["path_a", "path_b", "kind"]].values.tolist()
    [['a', 'b', 'near'], ['c', 'd', 'same lesion']]
    """
    for n, table in enumerate(tables):
        if not {"path_a", "path_b"} <= set(getattr(table, "columns", ())):
            raise ValueError(f"table {n} lacks the 'path_a' and 'path_b' columns of a pair table")
    if not tables:
        return pd.DataFrame(columns=["path_a", "path_b", "kind"])
    merged = pd.concat(tables, ignore_index=True)
    key = [tuple(sorted(p)) for p in zip(merged["path_a"].astype(str), merged["path_b"].astype(str))]
    merged = merged[~pd.Series(key).duplicated().to_numpy()].reset_index(drop=True)
    merged.attrs["skipped"] = [s for t in tables for s in t.attrs.get("skipped", [])]
    return merged
