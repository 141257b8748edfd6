"""Finding different photographs of one lesion, filed under different ids.

:func:`skinlib.find_duplicates` finds copies of one photograph. A lesion photographed
twice (another angle, zoom, light or moment) is not a copy, but a model tested on one
photograph and trained on the other is rewarded for memory all the same, and a split is
only as good as the dataset's ``lesion_id`` or ``patient_id`` column. :func:`find_same_lesion`
finds such pairs from the images, the classical image-retrieval way:

1. **Local features** (:func:`skinlib.audit._local_features.local_features`): RootSIFT keypoints
   of the grey image at a working size, the dermatoscope's vignette masked out.
2. **Candidates by descriptor votes** (:func:`candidate_pairs`): every descriptor's nearest
   descriptors among all images (a faiss index of PCA-reduced descriptors: exact for small
   sets, inverted lists with 4-bit product quantisation scanned with SIMD for large ones); each image keeps the
   :data:`CANDIDATES` images its descriptors point to most often.
3. **Geometric verification** (:func:`skinlib.audit._local_features.match_pair`): ratio-test matches, then a rotation,
   scale and shift fitted by RANSAC; the pair's score is its number of inlier matches.
   Pairs that join two verified pairs (A-B and B-C give A-C) are verified too.

Age, sex and body site, where a dataset has them, are evidence: a pair whose three agree
needs fewer inliers (:data:`MIN_INLIERS_METADATA`), but never none. Measured on HAM10000
with ``lesion_id`` as the truth (see ``benchmarks/same_lesion.py`` and the audit page of the
documentation).
"""

from __future__ import annotations

import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from skinlib._shared.checks import check_whole_number
from skinlib.data import METADATA_COLUMNS
from skinlib._shared.files import bounded_map
from skinlib.audit._local_features import N_FEATURES, WORK_SIZE, LocalFeatures, Match, image_local_features, match_pair

__all__ = ["find_same_lesion", "candidate_pairs", "CANDIDATES", "METADATA_CANDIDATES", "NEIGHBOURS",
           "MIN_INLIERS", "MIN_INLIERS_METADATA", "MIN_VOTES", "MIN_SPREAD", "SCALE_RANGE", "METADATA_COLUMNS"]
#: Candidate images kept per image from the descriptor votes.
CANDIDATES = 5
#: More candidates kept per image among the images of its age, sex and site, when known.
METADATA_CANDIDATES = 20
#: Nearest descriptors looked up per descriptor.
NEIGHBOURS = 10
#: RANSAC inliers that make a pair: on HAM10000, from the images alone, 8 found 0.81 of the
#: same-lesion pairs at 0.49 pairs of two lesion ids per 100 images (benchmarks/same_lesion.py).
MIN_INLIERS = 8
#: Inliers that suffice when age, sex and body site all agree (same-lesion pairs share them
#: 99.9% of the time on HAM10000, 1% of the candidate pairs of two lesions do). On HAM10000,
#: 6 and 7 inliers with agreement added 2.7% of the same-lesion pairs and 9 of two lesion ids;
#: 5 would add 0.9% more and 44 of two lesion ids.
MIN_INLIERS_METADATA = 6
#: Candidates with fewer descriptor votes are not verified: on HAM10000, 4 of the 1,814
#: same-lesion pairs found had fewer than 3.
MIN_VOTES = 3
#: Pixels (at :data:`WORK_SIZE`) the inliers must spread across, along their narrower axis:
#: matches along one hair or ruler edge line up, those of one lesion cover an area.
MIN_SPREAD = 6.0
#: Scales a pair's fitted transform may have: one lesion is photographed at other
#: magnifications (HAM10000's same-lesion pairs reach 3.2x), but a transform that shrinks
#: one image to a point is RANSAC explaining repeated texture, not a second photograph.
SCALE_RANGE = (0.25, 4.0)

_PCA_DIMS = 64
_FLAT_LIMIT = 50_000  # descriptors up to which the nearest-neighbour search is exact
_NPROBE = 8  # inverted lists searched per descriptor (4-bit codes are coarser: 8 lists match 4 of 8-bit codes)


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

    Exact below :data:`_FLAT_LIMIT` vectors. Above, inverted lists (about 4 sqrt(n) of them, at most
    8,192; :data:`_NPROBE` searched per query) found through an HNSW graph of the lists' centroids,
    holding 4-bit product-quantised codes of ``dims // 2`` parts (16 bytes a vector) that faiss scans
    with SIMD ("fast scan"). Measured on the 2-core machine, alone: at 30,000 images (8.9 million
    descriptors) 150,000 queries took 7.8 s with 8-bit codes (IVF8192_HNSW32,PQ16, 4 lists) and
    2.1 s with these (4 lists); on HAM10000 the
    candidates (3 votes or more) held 0.844 of the same-lesion pairs, against 0.830 (docs: benchmarks).
    """
    import faiss

    if n <= _FLAT_LIMIT:
        index = faiss.IndexFlatL2(dims)
    else:
        # faiss's advice: about 4 sqrt(n) lists, trained on 30-256 points each. The cap keeps
        # training to a minute at 30,000 images; beyond it, lists grow longer.
        nlist = min(int(4 * np.sqrt(n)), 8192)
        rng = np.random.default_rng(seed)
        train = _gather(vectors_of, np.sort(rng.choice(n, min(n, 40 * nlist, 250_000), replace=False)))
        kmeans = faiss.Kmeans(dims, nlist, niter=10, seed=seed)
        kmeans.train(train)
        quantizer = faiss.IndexHNSWFlat(dims, 32)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # the graph is built in one thread: the same centroids give the same graph
        try:
            quantizer.add(kmeans.centroids)
        finally:
            faiss.omp_set_num_threads(threads)
        quantizer.hnsw.efSearch = 16
        index = faiss.IndexIVFPQFastScan(quantizer, dims, nlist, dims // 2, 4)
        index.pq.cp.seed = seed
        index.train(train)  # the product quantiser only: the centroids are in place
        index.nprobe = _NPROBE
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
    # Query images per chunk: whole images, so each chunk's votes are final. Measured at 10,000
    # images: chunks of 2,000 peaked at 2.3 GB in all, chunks of 500 at 1.6 GB (the same pairs).
    step = 500
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


# --------------------------------------------------------------------------- the finder


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


def _accepted(i: np.ndarray, j: np.ndarray, matches: list[Match], *, groups_a, groups_b, min_spread: float,
              min_inliers: int, min_inliers_metadata: int) -> tuple[np.ndarray, np.ndarray]:
    """Which verified pairs are the same lesion, and which of them agree on age, sex and site.

    A pair is accepted when its inliers spread over ``min_spread`` pixels at a plausible scale
    (:data:`SCALE_RANGE`) and number ``min_inliers``, or ``min_inliers_metadata`` when both images
    sit in one known metadata group.
    """
    agree = (np.zeros(len(i), bool) if groups_a is None
             else (groups_a[i] >= 0) & (groups_a[i] == groups_b[j]))
    inliers = np.array([m.inliers for m in matches], np.int64)
    spread = np.array([m.spread for m in matches], float) >= min_spread
    scale = np.array([m.scale for m in matches], float)
    spread &= (scale >= SCALE_RANGE[0]) & (scale <= SCALE_RANGE[1])  # NaN: no transform, False
    return spread & ((inliers >= min_inliers) | (agree & (inliers >= min_inliers_metadata))), agree


def _pair_table(fa: LocalFeatures, fb: LocalFeatures, i: np.ndarray, j: np.ndarray, matches: list[Match],
                ok: np.ndarray, agree: np.ndarray, votes: dict) -> pd.DataFrame:
    """The accepted pairs as :func:`find_same_lesion` returns them, most inliers first."""
    n_a, n_b = np.diff(fa.offsets), np.diff(fb.offsets)
    rows = []
    for k in np.flatnonzero(ok):
        m, x, y = matches[k], int(i[k]), int(j[k])
        evidence = f"{m.inliers} of {m.matches} matches fit a turn of {m.rotation:.0f} deg at scale {m.scale:.2f}"
        if agree[k]:
            evidence += "; age, sex and site agree"
        rows.append((fa.paths[x], fb.paths[y], min(1.0, m.inliers / max(1, min(n_a[x], n_b[y]))), m.inliers,
                     votes.get((x, y), 0), m.rotation, m.scale, m.spread, bool(agree[k]), evidence))
    pairs = pd.DataFrame(rows, columns=["path_a", "path_b", "similarity", "inliers", "votes", "rotation", "scale",
                                        "spread", "metadata_agree", "evidence"])
    pairs.insert(3, "kind", "same lesion")
    pairs = pairs.astype({"path_a": str, "path_b": str, "similarity": float, "kind": str, "inliers": np.int64,
                          "votes": np.int64, "metadata_agree": bool, "evidence": str})
    pairs = pairs.sort_values(["inliers", "path_a", "path_b"], ascending=[False, True, True], kind="stable")
    return pairs.reset_index(drop=True)


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
        Go to :func:`skinlib.audit._local_features.local_features`.
    cache_dir : path-like, optional
        Caches each table's features (:func:`skinlib.audit._local_features.image_local_features`).
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
        transform), ``spread`` (of the inliers, in pixels), ``metadata_agree`` and ``evidence`` (the same in
        words). The pairs work
        wherever :func:`skinlib.find_duplicates`' do (``split_dataset(duplicates=...)``,
        ``check_leakage``, ``drop_leaked``, ``cross_validate``); :func:`merge_pairs` joins
        the two tables. Images that cannot be read, or are too small for local features
        (:data:`skinlib.audit._local_features.MIN_SIDE`), are skipped and listed in
        ``skinlib.skipped_files(pairs)``. ``attrs["seconds"]`` says where the time went
        (``features``, ``candidates``, ``verification``) and ``attrs["candidates_verified"]``
        how many pairs were checked.

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
        check_whole_number(name, value, minimum=1)
    min_inliers_metadata = min(min_inliers_metadata, min_inliers)  # agreement never raises the bar
    workers = max(1, workers or os.cpu_count() or 1)
    common = dict(size=size, n_features=n_features, cache_dir=cache_dir, workers=workers, progress=progress)
    clock = [time.perf_counter()]
    fa = image_local_features(df["path"], **common)
    fb = None if other is None else image_local_features(other["path"], **common)
    b = fa if fb is None else fb
    clock.append(time.perf_counter())
    groups_a = groups_b = None
    if metadata:
        groups_a, groups_b = _metadata_groups(df, other, fa, b)
    cands = candidate_pairs(fa, fb, candidates=candidates, groups_a=groups_a, groups_b=groups_b,
                            group_candidates=METADATA_CANDIDATES if groups_a is not None else 0, seed=seed,
                            progress=progress)
    clock.append(time.perf_counter())
    votes = dict(zip(zip(cands["i"].tolist(), cands["j"].tolist()), cands["votes"].tolist()))
    cands = cands[cands["votes"] >= MIN_VOTES]
    i, j = cands["i"].to_numpy(), cands["j"].to_numpy()
    matches = _verify(fa, b, i, j, workers, seed, progress, "verify pairs")
    rule = dict(groups_a=groups_a, groups_b=groups_b, min_spread=min_spread, min_inliers=min_inliers,
                min_inliers_metadata=min_inliers_metadata)
    ok, agree = _accepted(i, j, matches, **rule)
    if other is None and ok.any():  # close the groups: A-B and B-C verified, check A-C
        ci, cj = _closing_pairs(i[ok], j[ok], set(zip(i.tolist(), j.tolist())))
        if len(ci):
            more = _verify(fa, b, ci, cj, workers, seed, progress, "verify groups")
            more_ok, more_agree = _accepted(ci, cj, more, **rule)
            i, j = np.r_[i, ci], np.r_[j, cj]
            matches, ok, agree = matches + more, np.r_[ok, more_ok], np.r_[agree, more_agree]

    clock.append(time.perf_counter())
    pairs = _pair_table(fa, b, i, j, matches, ok, agree, votes)
    skipped = fa.skipped + ([] if fb is None else fb.skipped)
    pairs.attrs["skipped"] = [(str(p), str(r)) for p, r in skipped]
    pairs.attrs["seconds"] = dict(zip(("features", "candidates", "verification"), np.diff(clock).tolist()))
    pairs.attrs["candidates_verified"] = len(i)
    if skipped:
        warnings.warn(f"find_same_lesion: skipped {len(skipped)} image(s) that could not be used; "
                      "see skinlib.skipped_files(pairs) for paths and reasons", stacklevel=2)
    return pairs
