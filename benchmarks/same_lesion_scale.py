"""find_same_lesion at scale: time and peak memory from 3,000 to 30,000 images.

    python benchmarks/same_lesion_scale.py [--sizes 3000 10000 30000] [--folder /tmp/skinlib-same-lesion]
                                           [--data ../shared/data]

Images: HAM10000's (from ``--data``), each written once as it is and then as other
"photographs" (turned, zoomed, relit, moved: ``variant``) until there are enough, 200x150
JPEGs in FOLDER (about 10 KB each); without the data, lesions drawn by
``skinlib.data.draw_lesion_image``. For each size, a fresh child process runs
``find_same_lesion`` on the first N files without a cache and prints its wall time and
peak resident memory (getrusage), and the seconds of each stage (features,
candidates, verification: ``pairs.attrs["seconds"]``). The ratio of times between sizes says how the time
grows: 10x the images should take about 10x, not 100x.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import cv2
import numpy as np


def variant(img: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Another photograph of ``img``: turned, zoomed, moved and relit (k = 0: the image)."""
    if k == 0:
        return img
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-180, 180)), float(rng.uniform(0.9, 1.25)))
    m[:, 2] += rng.uniform(-0.05, 0.05, 2) * (w, h)
    out = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    gain = rng.uniform(0.85, 1.15, 3)
    return np.clip(out.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def make_images(folder: Path, n: int, data: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = sorted(folder.glob("*.jpg"))
    if len(files) >= n:
        return files[:n]
    rng = np.random.default_rng(0)
    sources = sorted((data / "ham10000" / "images").glob("*.jpg"))
    if not sources:
        from skinlib.data import draw_lesion_image
        sources = [None] * 2000
    for m in range(n):
        path = folder / f"img_{m:06d}.jpg"
        if path.exists():
            continue
        i, k = m % len(sources), m // len(sources)
        src = sources[i]
        img = (cv2.resize(draw_lesion_image(np.random.default_rng(i), bool(i % 4 == 0)), (200, 150))
               if src is None else cv2.imread(str(src)))
        cv2.imwrite(str(path), variant(img, k, rng), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return sorted(folder.glob("*.jpg"))[:n]


def child(folder: Path, n: int) -> None:
    import pandas as pd

    from skinlib.audit import find_same_lesion

    files = sorted(folder.glob("*.jpg"))[:n]
    start = time.perf_counter()
    pairs = find_same_lesion(pd.DataFrame({"path": [str(f) for f in files]}), progress=False)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"images": n, "seconds": seconds, "peak_mb": peak_mb, "pairs": len(pairs),
                      "stages": pairs.attrs["seconds"], "verified": pairs.attrs["candidates_verified"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 10000, 30000])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/skinlib-same-lesion"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.folder, args.child)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from child import run_child

    make_images(args.folder, max(args.sizes), args.data)
    results = []
    for n in args.sizes:
        r = run_child([sys.executable, __file__, "--folder", str(args.folder), "--child", str(n)], f"{n} images")
        results.append(r)
        stages = ", ".join(f"{k} {v:.0f} s" for k, v in r["stages"].items())
        print(f"{n:>6} images: {r['seconds']:7.1f} s ({stages}), peak {r['peak_mb']:6.0f} MB, "
              f"{r['verified']} candidate pairs verified, {r['pairs']} pairs", flush=True)
    for a, b in zip(results, results[1:]):
        print(f"{a['images']} -> {b['images']} images ({b['images'] / a['images']:.1f}x): "
              f"time {b['seconds'] / a['seconds']:.1f}x; "
              + ", ".join(f"{k} {b['stages'][k] / a['stages'][k]:.1f}x" for k in a["stages"]))


if __name__ == "__main__":
    main()
