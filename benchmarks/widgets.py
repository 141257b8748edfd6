"""Responsiveness of the preprocessing tuner: time per update as sliders move.

    python benchmarks/widgets.py [FOLDER] [--images 3] [--per-slider 10]

Builds a PreprocessTuner on the first images of FOLDER (default: the built-in
synthetic sample) with Preprocess.seed(), then moves each slider through
--per-slider values in turn (50 updates by default), timing each assignment: the
observer's update, the pipeline on every image and the PNG. The baseline redoes the
same configurations the naive way, in this process, on the same (shrunk) images:
the pipeline with OpenCV's bilateral filter and the view drawn with matplotlib
(skinlib.plotting.plot_stages saved to PNG). Prints median and 90th percentile in ms,
overall and per slider, and the ratio. The target is a median under 200 ms.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import matplotlib  # noqa: E402

matplotlib.use("Agg")  # a script, not a notebook: never open a window

from skinlib import Preprocess, load_dataset, read_image, sample_dir  # noqa: E402
from skinlib.plotting import plot_stages  # noqa: E402
from skinlib.preprocessing import PreprocessTuner  # noqa: E402


def sweep(per_slider: int) -> list[tuple[str, int]]:
    """(slider, value) moves, each slider in turn; consecutive values differ, so each fires an update."""
    n = per_slider
    values = {
        "d": [1, 3, 5, 7, 9, 11, 13, 15, 0, -1],
        "sigmaColor": np.linspace(10, 200, n),
        "sigmaSpace": np.linspace(10, 200, n),
        "threshold": np.linspace(60, 240, n),
        "thickness": [1, 2, 3, 5, 6, 7, 8, 6, 5, 4],
    }
    moves = []
    for name, vals in values.items():
        vals = [int(round(v)) for v in vals]
        moves += [(name, vals[i % len(vals)]) for i in range(n)]
    return moves


def naive_update(config: Preprocess, images: list[np.ndarray]) -> bytes:
    """The straightforward view: OpenCV bilateral filter and a matplotlib grid, as PNG bytes."""
    fig = plot_stages(config, images)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    return buf.getvalue()


def stats(ms: list[float]) -> tuple[float, float]:
    return float(np.median(ms)), float(np.percentile(ms, 90))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", type=Path, default=None, help="dataset folder (default: the sample)")
    ap.add_argument("--images", type=int, default=3, help="images in the view (default 3)")
    ap.add_argument("--per-slider", type=int, default=10, help="updates per slider (default 10: 50 in all)")
    args = ap.parse_args()

    folder = args.folder or sample_dir()
    df = load_dataset(folder)
    images = [read_image(p, color=True) for p in df["path"][: args.images]]
    print(f"{len(images)} images from {folder}, {images[0].shape[1]}x{images[0].shape[0]} px")

    t0 = time.perf_counter()
    tuner = PreprocessTuner(images, Preprocess.seed())
    print(f"tuner built in {(time.perf_counter() - t0) * 1000:.0f} ms (first update included)")
    naive_update(tuner.config, tuner.originals)  # warm up matplotlib's fonts and caches

    moves = sweep(args.per_slider)
    tuner_ms, configs = [], []
    for name, value in moves:
        t0 = time.perf_counter()
        tuner.sliders[name].value = value
        tuner_ms.append((time.perf_counter() - t0) * 1000)
        configs.append(tuner.config)
        if tuner.error:
            print(f"  {name}={value}: {tuner.error}")

    naive_ms = []
    for config in configs:
        t0 = time.perf_counter()
        naive_update(config, tuner.originals)
        naive_ms.append((time.perf_counter() - t0) * 1000)

    print(f"\n{len(moves)} updates, Preprocess.seed(), view of {len(images)} images\n")
    print(f"{'variant':<44}{'median ms':>10}{'p90 ms':>9}")
    tm, tp = stats(tuner_ms)
    nm, np90 = stats(naive_ms)
    print(f"{'naive (OpenCV bilateral, matplotlib view)':<44}{nm:>10.1f}{np90:>9.1f}")
    print(f"{'PreprocessTuner (matrix bilateral, cv2 PNG)':<44}{tm:>10.1f}{tp:>9.1f}")
    print(f"ratio (naive / tuner): median {nm / tm:.1f}x, p90 {np90 / tp:.1f}x")

    print(f"\n{'slider':<12}{'tuner median':>13}{'tuner max':>11}{'naive median':>14}{'naive max':>11}")
    names = [m[0] for m in moves]
    for name in dict.fromkeys(names):
        idx = [i for i, n in enumerate(names) if n == name]
        t = [tuner_ms[i] for i in idx]
        n = [naive_ms[i] for i in idx]
        print(f"{name:<12}{np.median(t):>13.1f}{max(t):>11.1f}{np.median(n):>14.1f}{max(n):>11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
