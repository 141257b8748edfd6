"""How well find_same_lesion finds other photographs of one lesion, measured on HAM10000.

HAM10000's ``lesion_id`` is the truth; the finder never sees it. Prints the recall of the
same-lesion pairs and the number of reported pairs of two lesion ids (false pairs, or pairs
of one lesion that HAM10000 files under two ids), on images alone and with age, sex and site;
writes the 20 highest-scored pairs of two lesion ids side by side. Needs ``../shared/data``.

    python benchmarks/same_lesion.py [--data ../shared/data] [--out runs/same-lesion]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

import skinlib
from skinlib.audit import find_same_lesion


def true_pairs(df: pd.DataFrame, column: str = "lesion_id") -> set[tuple[str, str]]:
    """Every unordered pair of paths that share ``column``."""
    out = set()
    for paths in df.groupby(column)["path"]:
        p = sorted(paths[1].astype(str))
        out |= {(a, b) for n, a in enumerate(p) for b in p[n + 1:]}
    return out


def score(pairs: pd.DataFrame, truth: set, n_images: int) -> dict:
    found = {tuple(sorted(p)) for p in zip(pairs["path_a"], pairs["path_b"])}
    hit = len(found & truth)
    cross = len(found) - hit
    return {"pairs": len(found), "recall": hit / max(1, len(truth)), "cross_lesion": cross,
            "cross_per_100_images": 100 * cross / n_images}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/same-lesion"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ham = skinlib.load_dataset(args.data / "ham10000")
    truth = true_pairs(ham)
    print(f"HAM10000: {len(ham)} images, {ham['lesion_id'].nunique()} lesions, {len(truth)} same-lesion pairs")
    # Images only: metadata=False (no candidates or verdicts from age, sex and site); then the default.
    start = time.perf_counter()
    image_only = find_same_lesion(ham, metadata=False, cache_dir=args.out / "cache", progress=False)
    seconds = time.perf_counter() - start
    pairs = find_same_lesion(ham, cache_dir=args.out / "cache", progress=False)
    pairs.to_csv(args.out / "ham10000_pairs.csv", index=False)
    image_only.to_csv(args.out / "ham10000_pairs_image_only.csv", index=False)
    rows = [{"evidence": "image only", **score(image_only, truth, len(ham))},
            {"evidence": "with age, sex, site", **score(pairs, truth, len(ham))}]
    for threshold in (10, 12, 15, 20):
        rows.append({"evidence": f"image only, >= {threshold} inliers",
                     **score(image_only[image_only["inliers"] >= threshold], truth, len(ham))})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"find_same_lesion, images only: {seconds:.0f} s (candidates and verification, features cached "
          "after the first run; not timed alone)")
    lesion = dict(zip(ham["path"].astype(str), ham["lesion_id"]))
    cross = pairs[[lesion[a] != lesion[b] for a, b in zip(pairs["path_a"], pairs["path_b"])]]
    cross.head(20).to_csv(args.out / "ham10000_cross_lesion_top20.csv", index=False)
    table.to_csv(args.out / "ham10000_recall.csv", index=False)
    mvb_check(args.data, ham, args.out)


def mvb_check(data: Path, ham: pd.DataFrame, out: Path) -> None:
    """mvb's test images with another photograph of their lesion in train/, against the truth.

    mvb has no lesion ids, but most of its images are HAM10000's (resized): the copies
    (``find_duplicates`` against HAM10000) give them HAM10000's ``lesion_id``.
    """
    mvb = skinlib.load_dataset(data / "mvb")
    copies = skinlib.find_duplicates(mvb, ham, cache_dir=out / "cache", progress=False)
    lesion_of_ham = dict(zip(ham["path"].astype(str), ham["lesion_id"]))
    best = copies.drop_duplicates("path_a")  # most similar first
    lesion = dict(zip(best["path_a"], (lesion_of_ham[p] for p in best["path_b"])))
    test = mvb[mvb["source_split"] == "test"]
    train = mvb[mvb["source_split"] == "train"]
    train_lesions: dict[str, set] = {}
    for p in train["path"].astype(str):
        if p in lesion:
            train_lesions.setdefault(lesion[p], set()).add(p)
    known = [p for p in test["path"].astype(str) if p in lesion]
    truth = {p for p in known if lesion[p] in train_lesions}
    same = find_same_lesion(test, train, cache_dir=out / "cache", progress=False)
    copies_tt = skinlib.find_duplicates(test, train, cache_dir=out / "cache", progress=False)
    flagged = set(same["path_a"])
    flagged_copies = set(copies_tt["path_a"])
    wrong = [(a, b) for a, b in zip(same["path_a"], same["path_b"])
             if a in lesion and b in lesion and lesion[a] != lesion[b]]
    print(f"mvb: {len(test)} test images, {len(known)} traced to a HAM10000 lesion; "
          f"{len(truth)} of those have another image of their lesion in train/")
    print(f"  find_same_lesion flags {len(flagged)} test images ({len(flagged & truth)} of the {len(truth)}; "
          f"{len(wrong)} pairs join two HAM10000 lesions); find_duplicates flags {len(flagged_copies)} "
          f"({len(flagged_copies & truth)} of the {len(truth)})")
    clean = skinlib.drop_leaked(mvb, skinlib.merge_pairs(copies_tt, same), column="source_split")
    print(f"  test images left without same-lesion leaks: {(clean['source_split'] == 'test').sum()} of {len(test)}")
    same.to_csv(out / "mvb_test_train_pairs.csv", index=False)


if __name__ == "__main__":
    main()
