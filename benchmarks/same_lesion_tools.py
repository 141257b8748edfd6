"""How well two outside tools find other photographs of one lesion, measured on HAM10000.

The same HAM10000 images, with ``lesion_id`` as the truth (neither tool sees it), go to:

* fastdup (Visual Layer), the tool a published HAM10000 duplicate study used: its default
  embedding model (shipped inside its wheel, so it runs offline) with 10 nearest neighbours
  per image, then its similarity table cut at cosine similarity 0.80, 0.85, 0.90, 0.93, 0.96.
  fastdup's licence is non-commercial: it is a comparison here and never a dependency of
  skinlib. It runs in another Python environment (its wheel is for CPython 3.11), given by
  ``--fastdup-python``, in a child process; without it, or when that interpreter cannot import
  fastdup, this part is skipped with a message.
* CleanVision's ``near_duplicates`` (equal perceptual hashes, phash of 8x8) and
  ``exact_duplicates`` (equal MD5 of the file) checks, in this environment. A set of k images
  counts as all its k(k-1)/2 pairs.

For each tool and setting it prints the number of reported pairs, the recall of the
same-lesion pairs and the number of reported pairs of two different lesion ids (false pairs,
or pairs of one lesion that HAM10000 files under two ids), also per 100 images, and the
seconds the tool took (wall clock, on whatever else the machine is doing). Beside them, when
the file exists, the results of skinlib's own ``find_same_lesion`` as written by
``benchmarks/same_lesion.py`` (``--reference``; not run here). Writes the table as
``<out>/same_lesion_tools.csv`` and fastdup's similarity table as ``<out>/fastdup_similarity.csv``.
Needs ``../shared/data``.

    python3.11 -m venv /tmp/fastdup-venv && /tmp/fastdup-venv/bin/pip install fastdup
    python benchmarks/same_lesion_tools.py [--data ../shared/data] [--out runs/same-lesion-tools] \\
        [--fastdup-python /tmp/fastdup-venv/bin/python] [--reference runs/same-lesion/ham10000_recall.csv]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import time
from pathlib import Path

import pandas as pd

import skinlib

THRESHOLDS = (0.80, 0.85, 0.90, 0.93, 0.96)
NEAREST_NEIGHBORS = 10

# Runs inside the fastdup environment: argv = input folder, work folder, output CSV, k, threshold.
FASTDUP_CHILD = r"""
import json, sys, time
import fastdup
input_dir, work_dir, out_csv, k, threshold = sys.argv[1:6]
start = time.perf_counter()
fd = fastdup.create(work_dir=work_dir, input_dir=input_dir)
fd.run(nearest_neighbors_k=int(k), threshold=float(threshold), overwrite=True, run_sentry=False)
sim = fd.similarity()
seconds = time.perf_counter() - start
sim[["filename_from", "filename_to", "distance"]].to_csv(out_csv, index=False)
print("FASTDUP_RESULT " + json.dumps({"version": fastdup.__version__, "seconds": seconds, "rows": len(sim)}))
"""


def true_pairs(df: pd.DataFrame) -> set[tuple[str, str]]:
    """Every unordered pair of image ids that share a ``lesion_id``."""
    out = set()
    for _, ids in df.groupby("lesion_id")["image_id"]:
        p = sorted(ids.astype(str))
        out |= {(a, b) for n, a in enumerate(p) for b in p[n + 1:]}
    return out


def score(found: set[tuple[str, str]], truth: set, n_images: int) -> dict:
    hit = len(found & truth)
    cross = len(found) - hit
    return {"pairs": len(found), "recall": hit / max(1, len(truth)), "cross_lesion": cross,
            "cross_per_100_images": 100 * cross / n_images}


def set_pairs(sets: list[list[str]], image_id_of: dict[str, str]) -> set[tuple[str, str]]:
    """All k(k-1)/2 unordered pairs of image ids of each set of paths."""
    out = set()
    for group in sets:
        ids = sorted(image_id_of[str(p)] for p in group)
        out |= {(a, b) for n, a in enumerate(ids) for b in ids[n + 1:]}
    return out


def run_fastdup(python: str, ham: pd.DataFrame, out: Path, thresholds: tuple[float, ...]
                ) -> tuple[pd.DataFrame, dict] | None:
    """fastdup's similarity table (image_a, image_b, similarity; each pair once), and its run's facts."""
    check = subprocess.run([python, "-c", "import fastdup; print(fastdup.__version__)"],
                           capture_output=True, text=True, env={**os.environ, "SENTRY_OPT_OUT": "1"})
    if check.returncode != 0:
        print(f"fastdup: skipped, {python} cannot import fastdup:\n{check.stderr.strip()[-500:]}")
        return None
    # A folder of links to exactly the table's images, so that fastdup sees what the truth covers.
    input_dir = out / "fastdup_input"
    input_dir.mkdir(parents=True, exist_ok=True)
    for old in input_dir.iterdir():
        old.unlink()
    for path, image_id in zip(ham["path"], ham["image_id"]):
        (input_dir / f"{image_id}{Path(path).suffix}").symlink_to(Path(path).resolve())
    out_csv = out / "fastdup_similarity_raw.csv"
    start = time.perf_counter()
    child = subprocess.run(
        [python, "-c", FASTDUP_CHILD, str(input_dir.resolve()), str((out / "fastdup_work").resolve()),
         str(out_csv.resolve()), str(NEAREST_NEIGHBORS), str(min(thresholds))],
        capture_output=True, text=True, env={**os.environ, "SENTRY_OPT_OUT": "1"}, cwd=out)
    seconds = time.perf_counter() - start
    (out / "fastdup_log.txt").write_text(child.stdout + child.stderr)
    result = [line for line in child.stdout.splitlines() if line.startswith("FASTDUP_RESULT ")]
    if child.returncode != 0 or not result:
        print(f"fastdup: failed (exit {child.returncode}), see {out / 'fastdup_log.txt'}:\n"
              f"{child.stderr.strip()[-1000:]}")
        return None
    facts = json.loads(result[-1].split(" ", 1)[1])
    facts["wall_seconds"] = seconds
    sim = pd.read_csv(out_csv)
    a = sim["filename_from"].map(lambda f: Path(f).stem)
    b = sim["filename_to"].map(lambda f: Path(f).stem)
    pairs = pd.DataFrame({"image_a": a.where(a < b, b), "image_b": b.where(a < b, a),
                          "similarity": sim["distance"]})
    pairs = pairs[pairs["image_a"] != pairs["image_b"]]
    pairs = (pairs.sort_values("similarity", ascending=False)
             .drop_duplicates(["image_a", "image_b"]).reset_index(drop=True))
    lesion = dict(zip(ham["image_id"].astype(str), ham["lesion_id"]))
    pairs["same_lesion"] = [lesion[x] == lesion[y] for x, y in zip(pairs["image_a"], pairs["image_b"])]
    pairs.to_csv(out / "fastdup_similarity.csv", index=False)
    out_csv.unlink()
    return pairs, facts


def run_cleanvision(ham: pd.DataFrame, check: str) -> tuple[list[list[str]], float]:
    from cleanvision import Imagelab

    start = time.perf_counter()
    lab = Imagelab(filepaths=[str(p) for p in ham["path"]])
    with contextlib.redirect_stderr(io.StringIO()):  # its progress bars
        lab.find_issues({check: {}}, verbose=False)
    return lab.info[check]["sets"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("runs/same-lesion-tools"))
    parser.add_argument("--fastdup-python", help="a Python interpreter that can import fastdup")
    parser.add_argument("--reference", type=Path, default=Path("runs/same-lesion/ham10000_recall.csv"),
                        help="find_same_lesion's results from benchmarks/same_lesion.py, shown beside")
    parser.add_argument("--limit", type=int, help="only the first N images (a quick check)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ham = skinlib.load_dataset(args.data / "ham10000")
    if args.limit:
        ham = ham.head(args.limit).reset_index(drop=True)
    ham["image_id"] = ham["image_id"].astype(str)
    truth = true_pairs(ham)
    n = len(ham)
    print(f"HAM10000: {n} images, {ham['lesion_id'].nunique()} lesions, {len(truth)} same-lesion pairs")
    rows = []

    if args.fastdup_python:
        done = run_fastdup(args.fastdup_python, ham, args.out, THRESHOLDS)
        if done is not None:
            pairs, facts = done
            print(f"fastdup {facts['version']}: {facts['rows']} similarity rows, "
                  f"{facts['seconds']:.0f} s in fastdup ({facts['wall_seconds']:.0f} s with the child's start)")
            for threshold in THRESHOLDS:
                kept = pairs[pairs["similarity"] >= threshold - 1e-9]
                found = set(zip(kept["image_a"], kept["image_b"]))
                rows.append({"tool": f"fastdup {facts['version']}",
                             "setting": f"default model, k={NEAREST_NEIGHBORS}, similarity >= {threshold:.2f}",
                             **score(found, truth, n), "seconds": facts["wall_seconds"]})
    else:
        print("fastdup: skipped (no --fastdup-python given; it must not be installed in this environment)")

    import cleanvision

    image_id_of = dict(zip(ham["path"].astype(str), ham["image_id"]))
    for check, setting in (("near_duplicates", "near_duplicates (equal phash, hash_size 8)"),
                           ("exact_duplicates", "exact_duplicates (equal MD5)")):
        sets, seconds = run_cleanvision(ham, check)
        found = set_pairs(sets, image_id_of)
        rows.append({"tool": f"CleanVision {cleanvision.__version__}", "setting": setting,
                     **score(found, truth, n), "seconds": seconds})
        lesion = dict(zip(ham["image_id"], ham["lesion_id"]))
        cross = sorted(p for p in found if lesion[p[0]] != lesion[p[1]])
        if cross:
            print(f"CleanVision {check}, pairs of two lesion ids: "
                  + ", ".join(f"{a} ({lesion[a]}) - {b} ({lesion[b]})" for a, b in cross[:10]))

    if args.reference.is_file() and not args.limit:
        reference = pd.read_csv(args.reference)
        for _, r in reference.iterrows():
            rows.append({"tool": "skinlib find_same_lesion", "setting": r["evidence"], "pairs": r["pairs"],
                         "recall": r["recall"], "cross_lesion": r["cross_lesion"],
                         "cross_per_100_images": r["cross_per_100_images"], "seconds": float("nan")})
        print(f"find_same_lesion: read from {args.reference} (not run here)")
    elif not args.limit:
        print(f"find_same_lesion: no {args.reference} (run benchmarks/same_lesion.py first to show it beside)")

    table = pd.DataFrame(rows, columns=["tool", "setting", "pairs", "recall", "cross_lesion",
                                        "cross_per_100_images", "seconds"])
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(table.to_string(index=False, na_rep="-", formatters={
            "recall": "{:.3f}".format, "cross_per_100_images": "{:.2f}".format,
            "seconds": lambda v: "-" if pd.isna(v) else f"{v:.0f}"}))
    print("seconds: wall clock of each tool's run, not timed alone (the machine was shared)")
    table.to_csv(args.out / "same_lesion_tools.csv", index=False)


if __name__ == "__main__":
    main()
