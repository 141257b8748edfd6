"""Preprocessing speed: the original one-image-at-a-time loop against preprocess_dataset.

    python benchmarks/preprocess.py [FOLDER] [--limit N] [--workers W]

FOLDER defaults to ../shared/data/isic2020/train (512x512 JPEGs). Both sides run the
original pipeline (grayscale, 28x28 bilinear resize, contour cleaning, bilateral
filter) on the same files in this session, best of --repeat runs each.
preprocess_dataset runs in parallel threads; its fast variant also computes the
bilateral filter as a matrix product and decodes JPEGs at reduced scale. The mean
absolute difference of its outputs from the original loop's says what that costs
in grey levels (target: within 2 on average).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from skinlib import Preprocess, preprocess_dataset  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "isic2020" / "train"


def original_loop(paths: list[str]) -> np.ndarray:
    """The original project's loop, as published: one full-size decode at a time."""
    out = []
    for p in paths:
        img = cv2.imread(p, 0)
        img = cv2.resize(img, (28, 28))
        _, thresh = cv2.threshold(img, 127, 255, cv2.THRESH_BINARY_INV)
        contours, _ = cv2.findContours(thresh, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        mask = np.zeros(img.shape, np.uint8)
        cv2.drawContours(mask, contours, -1, 255, 4)
        img = cv2.inpaint(img, mask, 3, cv2.INPAINT_TELEA)
        out.append(cv2.bilateralFilter(img, -1, 50, 50))
    return np.stack(out)[..., None]


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N images")
    ap.add_argument("--workers", type=int, default=None, help="threads (default: one per core)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not args.folder.is_dir():
        ap.error(f"{args.folder}: no such folder of images")
    paths = sorted(str(p) for p in args.folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    paths = paths[: args.limit] if args.limit else paths
    if not paths:
        ap.error(f"{args.folder}: no .jpg or .png images found")
    df = pd.DataFrame({"path": paths, "label": 0})
    shape = cv2.imread(paths[0], 0).shape
    print(f"{len(paths)} images from {args.folder} (first is {shape[1]}x{shape[0]}), "
          f"{os.cpu_count()} cores, workers={args.workers or os.cpu_count()}, best of {args.repeat}")

    t_orig, ref = best_of(args.repeat, lambda: original_loop(paths))
    rate_orig = len(paths) / t_orig
    print(f"\n{'variant':44s} {'img/s':>9s} {'ratio':>7s} {'mean |diff|':>12s} {'max |diff|':>11s}")
    print(f"{'original loop (1 process, full decode)':44s} {rate_orig:9.0f} {1:7.2f} {0:12.2f} {0:11d}")
    rows = []
    for label, cfg in (
        ("preprocess_dataset, Preprocess.seed() (exact)", Preprocess.seed()),
        ("  + matrix bilateral", Preprocess.seed().with_params("bilateral", method="matrix")),
        ("  + reduced decode = Preprocess.seed(fast=True)", Preprocess.seed(fast=True)),
    ):
        t, res = best_of(args.repeat, lambda: preprocess_dataset(df, cfg, workers=args.workers, progress=False))
        diff = np.abs(res.x.astype(int) - ref.astype(int))
        rate = len(paths) / t
        rows.append((label, rate, rate / rate_orig, diff.mean()))
        print(f"{label:44s} {rate:9.0f} {rate / rate_orig:7.2f} {diff.mean():12.2f} {diff.max():11d}")
    ok = [r for r in rows if r[3] <= 2.0]
    if ok:
        best = max(ok, key=lambda r: r[2])
        print(f"\nfastest variant within 2 grey levels on average: {best[0]}: "
              f"{best[2]:.1f}x the original loop (target: 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
