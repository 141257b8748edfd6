"""Preprocessing at scale: speed and peak memory of load_dataset + preprocess_dataset.

    python benchmarks/scale.py [--n 30000] [--folder /tmp/skinlib-scale] [--ratio 10]
                               [--workers W] [--config default|seed|seed_fast]

Generates (or reuses) N synthetic 1024x768 JPEG dermoscopy images in FOLDER/images
(drawn by skinlib.data.draw_lesion_image at 192x192 and enlarged; generation runs
in one process per core and resumes where it stopped). Then, for N/ratio images and
for N images, a fresh child process loads a class-folder dataset of exactly that
many images (symbolic links into FOLDER/images) and runs preprocess_dataset over it
without a cache. Each run reports images per second of preprocess_dataset and the
peak resident memory of the whole run, two ways: the child's getrusage maxrss (and
its own children's, should preprocessing ever use processes) and, with psutil, the
sum of RSS over the child's process tree sampled every 20 ms. Memory should be flat
in N: the output array (784 bytes an image) is all that grows with it.

Disk: about 76 KB an image (2.2 GB for 30,000). Nothing is written outside FOLDER.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from child import run_child  # noqa: E402  (benchmarks/child.py, beside this script)

WIDTH, HEIGHT = 1024, 768
MALIGNANT_SHARE = 0.25
SEED = 2020


def _label(i: int) -> int:
    import numpy as np

    return int(np.random.default_rng([SEED, i, 1]).random() < MALIGNANT_SHARE)


def _image_path(folder: Path, i: int) -> Path:
    return folder / "images" / f"{i:06d}.jpg"


def _make_images(args: tuple[str, int, int]) -> int:
    """Draw images lo..hi-1 that do not exist yet; each written to a temporary name, then renamed."""
    import cv2
    import numpy as np

    from skinlib.data import draw_lesion_image

    cv2.setNumThreads(1)
    folder, lo, hi = Path(args[0]), args[1], args[2]
    made = 0
    for i in range(lo, hi):
        path = _image_path(folder, i)
        if path.exists() and path.stat().st_size > 0:
            continue
        rng = np.random.default_rng([SEED, i])
        img = draw_lesion_image(rng, bool(_label(i)), size=192)
        img = cv2.resize(img, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        buf.tofile(tmp)
        os.replace(tmp, path)
        made += 1
    return made


def generate(folder: Path, n: int, workers: int) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(n) if not _image_path(folder, i).exists()]
    if not missing:
        print(f"reusing {n} images in {folder / 'images'}")
        return
    print(f"generating {len(missing)} of {n} images ({WIDTH}x{HEIGHT} JPEG) in {folder / 'images'} "
          f"with {workers} processes...", flush=True)
    t0 = time.perf_counter()
    step = 250
    chunks = [(str(folder), lo, min(lo + step, n)) for lo in range(missing[0], n, step)]
    done = 0
    with get_context("spawn").Pool(workers) as pool:
        for made in pool.imap_unordered(_make_images, chunks):
            done += made
            if done and done % 5000 < made:
                print(f"  {done} made, {done / (time.perf_counter() - t0):.0f} images/s", flush=True)
    print(f"  done: {done} images in {time.perf_counter() - t0:.0f} s", flush=True)


def dataset_for(folder: Path, n: int) -> Path:
    """A class-folder dataset of images 0..n-1: symbolic links, made once."""
    root = folder / "datasets" / f"n{n}"
    if (root / ".complete").exists():
        return root
    for cls in ("benign", "malignant"):
        (root / cls).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        link = root / ("malignant" if _label(i) else "benign") / f"{i:06d}.jpg"
        if not link.is_symlink():
            link.symlink_to(_image_path(folder, i))
    (root / ".complete").write_text(str(n))
    return root


def child(dataset: Path, config_name: str, workers: int | None) -> None:
    """One measured run, in a fresh process: load the dataset, preprocess it, report JSON."""
    import numpy as np

    import skinlib
    from skinlib import Preprocess

    config = {"default": Preprocess.default(), "seed": Preprocess.seed(), "seed_fast": Preprocess.seed(fast=True)}[config_name]
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    df = skinlib.load_dataset(dataset)
    t1 = time.perf_counter()
    res = skinlib.preprocess_dataset(df, config, workers=workers, progress=False)
    t2 = time.perf_counter()
    assert res.x.shape == (len(df),) + config.output_shape and res.skipped.empty, res.skipped.head()
    assert 20 < float(np.mean(res.x)) < 235  # real images came out, not zeros
    print(json.dumps({
        "n": len(df),
        "load_s": t1 - t0,
        "preprocess_s": t2 - t1,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "maxrss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "maxrss_after_imports_mb": rss_start / 1024,
        "output_mb": res.x.nbytes / 2**20,
    }))


def measure(dataset: Path, config_name: str, workers: int | None) -> dict:
    cmd = [sys.executable, __file__, "--child", str(dataset), "--config", config_name]
    if workers:
        cmd += ["--workers", str(workers)]
    return run_child(cmd, "measured run")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30000, help="images in the large run (default 30000)")
    ap.add_argument("--folder", type=Path, default=Path("/tmp/skinlib-scale"), help="where images are made or reused")
    ap.add_argument("--ratio", type=int, default=10, help="the small run has n/ratio images (default 10)")
    ap.add_argument("--workers", type=int, default=None, help="preprocess_dataset workers (default: one per core)")
    ap.add_argument("--gen-workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--config", choices=["default", "seed", "seed_fast"], default="default")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.config, args.workers)
        return 0

    folder = args.folder.expanduser().resolve()
    generate(folder, args.n, args.gen_workers)
    sizes = [max(1, args.n // args.ratio), args.n]
    print(f"\n{os.cpu_count()} cores, Preprocess.{args.config}(), workers={args.workers or os.cpu_count()}, "
          f"{WIDTH}x{HEIGHT} JPEGs")
    print(f"{'images':>8s} {'load_dataset s':>15s} {'preprocess s':>13s} {'images/s':>9s} "
          f"{'peak RSS MB':>12s} {'tree peak MB':>13s} {'output MB':>10s}")
    results = []
    for n in sizes:
        r = measure(dataset_for(folder, n), args.config, args.workers)
        peak = max(r["maxrss_mb"], r["maxrss_children_mb"])
        r["rate"] = r["n"] / r["preprocess_s"]
        r["peak_mb"] = peak
        results.append(r)
        print(f"{r['n']:8d} {r['load_s']:15.1f} {r['preprocess_s']:13.1f} {r['rate']:9.0f} "
              f"{peak:12.0f} {r['tree_peak_mb']:13.0f} {r['output_mb']:10.1f}", flush=True)
    small, large = results
    growth = large["peak_mb"] - small["peak_mb"]
    per_1000 = growth / max(1, large["n"] - small["n"]) * 1000
    worst = max(large["peak_mb"], large["tree_peak_mb"] if large["tree_peak_mb"] == large["tree_peak_mb"] else 0)
    print(f"\nratio {large['n'] // small['n']}x images: peak RSS x{large['peak_mb'] / small['peak_mb']:.2f} "
          f"(+{growth:.0f} MB, {per_1000:.2f} MB per 1000 images; the output array alone is "
          f"{(large['output_mb'] - small['output_mb']) / max(1, large['n'] - small['n']) * 1000:.2f}), "
          f"speed x{large['rate'] / small['rate']:.2f}")
    print(f"peak memory of the {large['n']}-image run: {worst:.0f} MB "
          f"({'under' if worst < 2048 else 'OVER'} the 2 GB target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
