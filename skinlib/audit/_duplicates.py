"""Finding duplicate images: identical files and near copies, within a table or across two.

Dermoscopy collections re-publish one another's images (resized, re-encoded, cropped,
flipped), and hold the same photograph under two names. A model tested on a copy of a
training image is rewarded for memory. :func:`find_duplicates` lists such pairs so that
:func:`skinlib.split_dataset` can keep every copy in one fold and
:func:`skinlib.check_leakage` can check a split.

How an image is summarised (:func:`image_signature`, a pure function on an array):

- a digest of its decoded pixels (equal digests: ``kind="identical"``);
- perceptual hashes (``imagehash.phash``, a DCT hash) of its grey levels, 64-bit to find
  candidates fast and 256-bit to score them, in the 8 orientations (flips and quarter
  turns) and for a few centre crops (a copy with a margin cut off).

An image under :data:`MIN_SIDE` pixels high or wide is skipped with the reason: a line
or a dot stretched to a square has the hashes of any other. All pairs are compared in
blocks of rows (never an N x N matrix in memory), threaded; the signatures of a table are
cached on disk like preprocessed arrays.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pandas as pd

from skinlib.preprocessing.filters import DIHEDRAL, dihedral
from skinlib._shared.filemap import Skip, map_files
from skinlib._shared.files import cached_array
from skinlib.preprocessing import ImageReadError, max_image_pixels, read_image

__all__ = ["find_duplicates", "image_signature", "image_signatures", "Signatures", "phash", "candidate_bits",
           "DEFAULT_THRESHOLD", "CANDIDATE_BITS", "MIN_SIDE",
           "CROP_MARGINS", "TRANSFORMS"]

#: Centre crops hashed besides the full frame: a share of each side cut off.
CROP_MARGINS = (0.02, 0.04, 0.06, 0.08, 0.10)
#: The variants hashed per image, in order: 8 orientations of the full frame, then centre crops.
TRANSFORMS = DIHEDRAL + tuple(
    f"crop {m:.0%}" for m in CROP_MARGINS
)
_N_ORIENT = 8
_N_VAR = len(TRANSFORMS)

#: Default minimum ``similarity`` (1 - Hamming distance / 256 of the 256-bit hashes) of a
#: reported pair. Measured on the real datasets (HAM10000, 6,964 images; the
#: malignant-vs-benign set, 1,300, which re-publishes HAM10000 resized to 224x224): of the
#: 959 mvb images whose 64-bit hash is within 4 bits of a HAM10000 image, 99% score >= 0.95
#: with their closest match; the closest HAM10000 pair of two different lesions among such
#: candidates scores 0.867 (1,236 candidate pairs of different lesions); 3-5% centre crops
#: in benchmarks/duplicates.py score >= 0.922. 0.875 (32 of 256 bits) sits between.
DEFAULT_THRESHOLD = 0.875
#: Candidate pairs must have 64-bit hashes within this many bits (in some variant) at the
#: default threshold: true copies measured at <= 4, and it keeps the candidates to a small
#: share of all pairs. Lower thresholds widen it (:func:`candidate_bits`).
CANDIDATE_BITS = 4


def candidate_bits(threshold: float) -> int:
    """Bits by which the 64-bit hashes of a candidate pair may differ, for ``threshold``.

    The search scores only candidate pairs: :data:`CANDIDATE_BITS` at the default
    threshold, else 4 bits per 0.125 of similarity below 1, whichever is larger: a lower
    threshold reaches further (and searches longer).

    Parameters
    ----------
    threshold : float
        The minimum ``similarity`` of a reported pair (:data:`DEFAULT_THRESHOLD` by default in
        :func:`find_duplicates`).

    Returns
    -------
    int
        The largest Hamming distance of two candidates' 64-bit hashes: ``ceil((1 - threshold) * 32)``,
        at least :data:`CANDIDATE_BITS`.

    Examples
    --------
    >>> candidate_bits(DEFAULT_THRESHOLD), candidate_bits(0.75)
    (4, 8)
    """
    return max(CANDIDATE_BITS, int(np.ceil((1 - threshold) * 32 - 1e-9)))
_SIGNATURE_VERSION = 2  # 2: the flips in skinlib.preprocessing.filters.dihedral's order
#: Pixels an image needs on each side to be compared: thinner, its square base (128 pixels a
#: side, stretched from one or two rows or columns) is a pattern of stripes that any other
#: such image matches (1x500 and 1x1 images of unrelated noise scored as near copies).
MIN_SIDE = 8
#: Side of the square grey base image that crops and thumbnails are taken from.
_BASE = 128


def phash(thumbs: np.ndarray, hash_size: int = 8) -> np.ndarray:
    """Perceptual hashes (pHash) of a stack of square grey thumbnails, packed in uint64 words.

    The algorithm of ``imagehash.phash`` (Buchner's ImageHash), batched: a 2-D DCT-II of
    each ``4 * hash_size`` square thumbnail (uint8, shape (N, 4h, 4h)), its lowest
    ``hash_size`` x ``hash_size`` frequencies, each bit set where a coefficient exceeds their
    median. For one image it gives the bits of ``imagehash.phash(Image.fromarray(t),
    hash_size)`` exactly (a test checks), at a fraction of the cost: one call for all the
    variants of an image instead of one per variant.

    Parameters
    ----------
    thumbs : numpy.ndarray
        Square grey thumbnails of shape (N, 4 * hash_size, 4 * hash_size).
    hash_size : int
        The side of the hash in bits (default 8: a 64-bit hash; 16: a 256-bit one).

    Returns
    -------
    numpy.ndarray
        (N, hash_size**2 // 64) uint64: each thumbnail's bits, packed big-endian in 64-bit words.

    Raises
    ------
    ValueError
        When ``thumbs`` is not of shape (N, 4 * hash_size, 4 * hash_size).

    Examples
    --------
    >>> t = np.random.default_rng(0).integers(0, 255, (2, 32, 32), dtype=np.uint8)
    >>> phash(t).shape
    (2, 1)
    """
    from scipy import fft

    thumbs = np.asarray(thumbs)
    side = 4 * hash_size
    if thumbs.ndim != 3 or thumbs.shape[1:] != (side, side):
        raise ValueError(f"expected thumbnails of shape (N, {side}, {side}), got {thumbs.shape}")
    # The same transforms in the same order as imagehash (scipy.fftpack.dct along axis 0, then 1).
    coeffs = fft.dct(fft.dct(thumbs.astype(np.float64), axis=1), axis=2)[:, :hash_size, :hash_size]
    coeffs = coeffs.reshape(len(thumbs), -1)
    bits = coeffs > np.median(coeffs, axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").astype(np.uint64)


def _centre_crop(img: np.ndarray, margin: float) -> np.ndarray:
    h, w = img.shape[:2]
    dy, dx = int(round(h * margin)), int(round(w * margin))
    return img[dy : h - dy, dx : w - dx]


def _orientations(thumb: np.ndarray) -> list[np.ndarray]:
    """The 8 flips and quarter turns, in the order of :data:`TRANSFORMS`."""
    return [dihedral(thumb, k, axes=(0, 1)) for k in range(8)]


def image_signature(img: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The duplicate-finding summary of one decoded image (grey or BGR, uint8).

    Pure: the same array gives the same signature.

    Parameters
    ----------
    img : numpy.ndarray
        uint8, (H, W) grey or (H, W, C) with C 1 (grey), 3 (BGR) or 4 (BGRA).

    Returns
    -------
    digest : bytes
        A 16-byte BLAKE2b digest of the pixels (shape and values).
    hash64 : numpy.ndarray
        64-bit pHashes, shape ``(len(TRANSFORMS),)`` uint64, one per variant in :data:`TRANSFORMS`.
    hash256 : numpy.ndarray
        256-bit pHashes, shape ``(len(TRANSFORMS), 4)`` (uint64 words), one per variant.

    Raises
    ------
    ValueError
        When ``img`` is not a uint8 image of one of those shapes.

    Examples
    --------
    >>> img = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    >>> digest, h64, h256 = image_signature(img)
    >>> h64.shape, h256.shape
    ((13,), (13, 4))
    >>> bool(image_signature(img[:, ::-1])[1][0] == h64[4])   # a mirror image: the 'flip' variant
    True
    """
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or min(img.shape[:2]) < 1 or (
        img.ndim == 3 and img.shape[2] not in (1, 3, 4)
    ):
        raise ValueError(f"expected a uint8 image of shape (H, W) or (H, W, C) with C 1, 3 or 4, got {img.dtype} {img.shape}")
    digest = hashlib.blake2b(repr(img.shape).encode() + np.ascontiguousarray(img).tobytes(), digest_size=16).digest()
    if img.ndim == 3:
        if img.shape[2] == 1:
            img = img[..., 0]
        else:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    # An area-averaged square base: every source pixel counts, a resized copy gives the
    # same base, and the aspect ratio is dropped as by collections that squash images
    # to 224x224. Crops and thumbnails come from it, so cost does not grow with the image.
    base = cv2.resize(img, (_BASE, _BASE), interpolation=cv2.INTER_AREA)
    frames = [base] + [_centre_crop(base, m) for m in CROP_MARGINS]
    small = [cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in frames]
    large = [cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in frames]
    h64 = phash(np.stack(_orientations(small[0]) + small[1:]), 8)[:, 0]
    h256 = phash(np.stack(_orientations(large[0]) + large[1:]), 16)
    return digest, h64, h256


# --------------------------------------------------------------------------- a table's signatures


class Signatures:
    """Signatures of the images of a table: what :func:`image_signatures` returns.

    ``len()`` is the number of readable images. V is ``len(TRANSFORMS)``, the variants hashed.

    Parameters
    ----------
    paths : iterable of str
        The readable images, in table order (kept as a list).
    digests : numpy.ndarray
        (N, 16) uint8: each image's pixel digest (:func:`image_signature`).
    h64 : numpy.ndarray
        (N, V) uint64: each image's 64-bit hashes.
    h256 : numpy.ndarray
        (N, V, 4) uint64: each image's 256-bit hashes.
    skipped : iterable of tuple
        ``(path, reason)`` of each file that could not be used (kept as a list).
    from_cache : bool
        Whether the signatures were read from the cache (default False).
    """

    def __init__(self, paths, digests, h64, h256, skipped, from_cache=False):
        self.paths, self.digests, self.h64, self.h256 = list(paths), digests, h64, h256
        self.skipped, self.from_cache = list(skipped), from_cache

    def __len__(self) -> int:
        return len(self.paths)


def _signature_of_file(path: str) -> tuple[bytes, np.ndarray, np.ndarray]:
    try:
        img = read_image(path, color=True)
    except ImageReadError as exc:
        raise Skip(str(exc).removeprefix(f"{path}: ")) from None
    h, w = img.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise Skip(f"image too small to compare: {w} x {h} pixels (width x height), need at least {MIN_SIDE} on each side")
    try:
        return image_signature(img)
    except (cv2.error, ValueError) as exc:
        raise Skip(f"cannot hash the image: {str(exc).strip().splitlines()[-1]}") from None


def _stack_signatures(sigs: list) -> dict[str, np.ndarray]:
    n = len(sigs)
    digests = np.zeros((n, 16), np.uint8)
    h64 = np.zeros((n, _N_VAR), np.uint64)
    h256 = np.zeros((n, _N_VAR, 4), np.uint64)
    for i, (digest, sig64, sig256) in enumerate(sigs):
        digests[i] = np.frombuffer(digest, np.uint8)
        h64[i], h256[i] = sig64, sig256
    return {"digests": digests, "h64": h64, "h256": h256}


def _check_signatures(arrays: dict, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The digests, h64 and h256 of ``n`` images, after checking that they fit.

    A foreign or damaged cache file raises ``ValueError``: :func:`skinlib._shared.files.load_cache`
    then reports no cache, and the signatures are recomputed and the file replaced.
    """
    return (cached_array(arrays, "digests", np.uint8, (n, 16)), cached_array(arrays, "h64", np.uint64, (n, _N_VAR)),
            cached_array(arrays, "h256", np.uint64, (n, _N_VAR, 4)))


def image_signatures(
    paths, *, cache_dir: str | os.PathLike | None = None, workers: int | None = None, progress: bool = True
) -> Signatures:
    """:func:`image_signature` of every file in ``paths``, in threads, cached.

    A file that cannot be read or decoded, holds more pixels than the limit of
    :func:`skinlib.read_image` (100 megapixels by default) or is under :data:`MIN_SIDE`
    pixels high or wide, is skipped and listed in
    ``.skipped`` with the reason; it never stops the run. Images are decoded at full
    size: the pixel digest that makes a pair ``"identical"`` is of the full image. With
    ``cache_dir``, the signatures are stored under a key made of the settings, the paths and
    each file's :func:`skinlib._shared.files.file_stamp` (size, modification time, inode,
    status-change time; written atomically): the same call again reads them instantly.
    A cache file whose arrays do not fit (dtype, shape, indices) counts as missing:
    recomputed and replaced.

    Parameters
    ----------
    paths : iterable of path-like
        The image files (read as strings).
    cache_dir : path-like, optional
        The folder of the ``.npz`` cache (default None: no cache).
    workers : int, optional
        Threads (default: one per core).
    progress : bool
        Show a progress bar (default True).

    Returns
    -------
    Signatures
        The signatures of the readable files, in the order of ``paths``, and the skipped ones.

    Raises
    ------
    ValueError
        When ``SKINLIB_MAX_IMAGE_PIXELS`` is invalid.
    """
    paths = [str(p) for p in paths]
    max_image_pixels()  # a bad SKINLIB_MAX_IMAGE_PIXELS is one error now, not a reason for skipping every image
    settings = {"version": _SIGNATURE_VERSION, "transforms": TRANSFORMS, "hash": "imagehash.phash 8 and 16",
                "max_pixels": max_image_pixels(), "min_side": MIN_SIDE}  # the limits decide which images are skipped
    mapped = map_files(paths, _signature_of_file, stack=_stack_signatures, build=_check_signatures,
                       cache_dir=cache_dir, cache_name="signatures", key=settings,
                       workers=max(1, workers or os.cpu_count() or 1), progress=progress, desc="hash images")
    return Signatures([paths[i] for i in mapped.keep], *mapped.results, mapped.skipped, mapped.from_cache)


# --------------------------------------------------------------------------- search


def _popcount256(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a ^ b).sum(axis=-1, dtype=np.int64)


def _variant_pairs() -> list[tuple[int, int]]:
    """(variant of a, variant of b) compared for a pair: every orientation of a against b
    as it is, and each centre crop of one side against the other side's full frame.
    """
    crops = range(_N_ORIENT, _N_VAR)
    return [(k, 0) for k in range(_N_ORIENT)] + [(c, 0) for c in crops] + [(0, c) for c in crops]


def _candidates(a64: np.ndarray, b64: np.ndarray, start: int, same: bool, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices (into a and b) of pairs within ``bits`` in some variant.

    ``a64`` is a block of rows starting at row ``start``; within one table (``same``) only
    the columns after each row are compared: each unordered pair once, never an image
    with itself.
    """
    offset = start + 1 if same else 0
    b64 = b64[offset:]
    shape = (len(a64), len(b64))
    best = np.full(shape, 255, np.uint8)
    xor = np.empty(shape, np.uint64)
    count = np.empty(shape, np.uint8)
    for va, vb in _variant_pairs():  # preallocated buffers: no temporaries per variant
        np.bitwise_xor(a64[:, va, None], b64[None, :, vb], out=xor)
        np.bitwise_count(xor, out=count, casting="unsafe")
        np.minimum(best, count, out=best)
    rows, cols = np.nonzero(best <= bits)
    cols = cols + offset
    if same:
        keep = cols > rows + start
        rows, cols = rows[keep], cols[keep]
    return rows + start, cols


def _score(a256: np.ndarray, b256: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest 256-bit distance over the compared variants, and which variant gave it."""
    variants = _variant_pairs()
    dist = np.stack([_popcount256(a256[rows, va], b256[cols, vb]) for va, vb in variants], axis=1)
    best = dist.argmin(axis=1)
    return dist[np.arange(len(rows)), best], best


def _search(a: Signatures, b: Signatures | None, threshold: float, workers: int, progress: bool) -> pd.DataFrame:
    same = b is None
    b = a if same else b
    n_a, n_b = len(a), len(b)
    # Rows per block: its uint64 and uint8 buffers of rows x n_b stay near 100 MB per thread.
    block = max(1, min(n_a, (1 << 23) // max(1, n_b)))
    starts = list(range(0, n_a, block))
    max_bits = int(np.floor((1 - threshold) * 256 + 1e-9))
    bits = candidate_bits(threshold)
    variants = _variant_pairs()

    def work(start: int):
        rows, cols = _candidates(a.h64[start : start + block], b.h64, start, same, bits)
        dist, which = _score(a.h256, b.h256, rows, cols)
        keep = dist <= max_bits
        return rows[keep], cols[keep], dist[keep], which[keep]

    from tqdm.auto import tqdm

    parts = []
    with tqdm(total=n_a, desc="compare", unit="img", disable=not progress or n_a == 0) as bar:
        with ThreadPoolExecutor(workers) as pool:
            for start, part in zip(starts, pool.map(work, starts)):
                parts.append(part)
                bar.update(min(block, n_a - start))
    rows = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, int)
    cols = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, int)
    dist = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, int)
    which = np.concatenate([p[3] for p in parts]) if parts else np.zeros(0, int)

    def describe(w: int) -> str:
        va, vb = variants[w]
        if va < _N_ORIENT and vb == 0:
            return TRANSFORMS[va]
        return f"{TRANSFORMS[va]} of a" if va else f"{TRANSFORMS[vb]} of b"

    near = pd.DataFrame({
        "path_a": [a.paths[i] for i in rows],
        "path_b": [b.paths[j] for j in cols],
        "similarity": 1 - dist / 256,
        "kind": "near",
        "transform": [describe(int(w)) for w in which],
    })
    # Identical pixels: equal digests, whatever the hashes say.
    ident = _identical_pairs(a, None if same else b)
    pairs = pd.concat([ident, near], ignore_index=True).drop_duplicates(["path_a", "path_b"], keep="first")
    # A path listed twice (or in both tables) is one file, not a pair of copies.
    pairs = pairs[pairs["path_a"] != pairs["path_b"]]
    return pairs.astype({"path_a": str, "path_b": str, "similarity": float, "kind": str, "transform": str})


def _identical_pairs(a: Signatures, b: Signatures | None) -> pd.DataFrame:
    key_a = [d.tobytes() for d in a.digests]
    if b is None:
        by_digest: dict[bytes, list[int]] = {}
        for i, k in enumerate(key_a):
            by_digest.setdefault(k, []).append(i)
        pairs = [(a.paths[i], a.paths[j]) for idx in by_digest.values() for n, i in enumerate(idx) for j in idx[n + 1 :]]
    else:
        index: dict[bytes, list[int]] = {}
        for j, d in enumerate(b.digests):
            index.setdefault(d.tobytes(), []).append(j)
        pairs = [(a.paths[i], b.paths[j]) for i, k in enumerate(key_a) for j in index.get(k, [])]
    return pd.DataFrame({
        "path_a": [p for p, _ in pairs], "path_b": [q for _, q in pairs],
        "similarity": 1.0, "kind": "identical", "transform": "",
    })


def find_duplicates(
    df: pd.DataFrame,
    other: pd.DataFrame | None = None,
    *,
    threshold: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Pairs of images that are the same picture: identical files and near copies.

    Pairs at or above ``threshold`` are reported among the candidate pairs, those whose 64-bit
    hashes differ by at most :func:`candidate_bits` bits; the lowest-ranked ones are the
    borderline pairs a person should look at.

    Different photographs of one lesion taken moments apart often match too: they are
    as good as copies for a model. Images that fail to decode, or are under
    :data:`MIN_SIDE` pixels high or wide, are skipped and listed in
    ``skinlib.skipped_files(pairs)`` with the reason, with a warning; they never stop the
    run.

    Parameters
    ----------
    df : pandas.DataFrame
        A table with a ``path`` column (:func:`skinlib.load_dataset`). Without ``other``,
        every pair within ``df``.
    other : pandas.DataFrame, optional
        A second table with a ``path`` column: then only pairs of one image of ``df`` and one
        of ``other`` (for example HAM10000 against a set that re-publishes it).
    threshold : float, optional
        The minimum ``similarity`` of a reported pair, in (0, 1] (default
        :data:`DEFAULT_THRESHOLD`, measured on real data: see its comment).
    cache_dir : path-like, optional
        Caches each table's signatures (see :func:`image_signatures`).
    workers : int, optional
        Threads (default: one per core).
    progress : bool
        Show progress bars (default True).

    Returns
    -------
    pandas.DataFrame
        One row per pair, most similar first (at equal similarity, identical before near):
        ``path_a`` (from ``df``), ``path_b``,
        ``similarity`` (1 - the Hamming distance of the 256-bit perceptual hashes / 256, in
        the best-matching variant; 1.0 for identical pixels, and for near copies the hash
        cannot tell apart), ``kind`` (``"identical"``: the same decoded pixels; ``"near"``:
        the same picture resized, re-encoded, with a margin cropped, flipped or turned by
        quarter turns, or with a small shift of brightness or colour) and ``transform`` (the
        variant that matched: ``"rot90"``, ``"flip"``, ``"crop 4% of b"``...; ``""`` for
        identical pixels). ``attrs["skipped"]`` lists ``(path, reason)`` of the skipped files.

    Raises
    ------
    ValueError
        When ``threshold`` is not in (0, 1], or ``df`` or ``other`` has no ``path`` column.

    Examples
    --------
    >>> pairs = find_duplicates(skinlib.load_dataset("data/mvb"))  # doctest: +SKIP
    >>> pairs["kind"].value_counts()  # doctest: +SKIP
    """
    threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be a similarity in (0, 1], got {threshold}")
    for name, table in (("df", df), ("other", other)):
        if table is not None and "path" not in getattr(table, "columns", ()):
            raise ValueError(f"{name} lacks a 'path' column; expected a table from load_dataset")
    workers = max(1, workers or os.cpu_count() or 1)
    sig_a = image_signatures(df["path"], cache_dir=cache_dir, workers=workers, progress=progress)
    sig_b = None if other is None else image_signatures(other["path"], cache_dir=cache_dir, workers=workers, progress=progress)
    pairs = _search(sig_a, sig_b, threshold, workers, progress)
    # Most similar first; at equal similarity, identical pixels before near copies.
    pairs = pairs.assign(_near=pairs["kind"] != "identical")
    pairs = pairs.sort_values(["similarity", "_near", "path_a", "path_b"], ascending=[False, True, True, True],
                              kind="stable").drop(columns="_near").reset_index(drop=True)
    skipped = sig_a.skipped + ([] if sig_b is None else sig_b.skipped)
    pairs.attrs["skipped"] = [(str(p), str(r)) for p, r in skipped]
    if skipped:
        warnings.warn(
            f"find_duplicates: skipped {len(skipped)} image(s) that could not be used; "
            "see skinlib.skipped_files(pairs) for paths and reasons",
            stacklevel=2,
        )
    return pairs
