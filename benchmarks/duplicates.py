"""Duplicate finding at scale: speed, peak memory and recall of skinlib.find_duplicates.

    python benchmarks/duplicates.py [--n 30000] [--folder /tmp/skinlib-duplicates]
                                    [--size 300x225] [--workers W] [--per-kind 100]

Generates (or reuses) a set of N synthetic dermoscopy JPEGs (drawn by
skinlib.data.draw_lesion_image at --draw-size square and squashed to --size; quality
90; one process per core), of which PER_KIND x 8 are planted copies of other images of
the set, of each kind:

    identical    a byte copy of the file
    reencode     decoded and encoded again at JPEG quality 60
    resize_half  resized to half width and height (INTER_AREA)
    squash_224   squashed to 224x224, as collections that re-publish HAM10000 do
    crop         a centre crop, 3-5% of each side cut off
    hflip        mirrored left to right
    rot90        a quarter turn, clockwise or not
    colour       per-channel gains 0.88-1.12 and a brightness offset of -20..+20

Every copy except the byte copy is encoded again at quality 90. The sources of the
copies are drawn from a pool smaller than the number of copies, so some images have
copies of several kinds, and the copies of one image are copies of one another too
("chains"). Everything follows from --seed: the same arguments give the same files.
Drawn images are shared by all sets of one size (FOLDER/originals-...), the copies
and the lists live in FOLDER/set-... with a manifest (manifest.json, images.csv: the
'path' of every image; planted.csv: path_a, path_b, kind of every planted pair).

Then two fresh child processes read images.csv into a DataFrame with a 'path' column:

- total: skinlib.find_duplicates(df, cache_dir=None, progress=False), end to end: the
  headline seconds, the peak resident memory (getrusage maxrss of the child, and with
  psutil the RSS of its process tree sampled every 20 ms) and the reported pairs;
- split: skinlib.audit.image_signatures(paths, cache_dir=TMP) timed alone
  (hashing: decode + signature of every image, plus writing the signature cache, a few
  MB), then find_duplicates(df, cache_dir=TMP) on those cached signatures, then
  image_signatures again (the cache load alone). search = the second minus the third:
  the all-pairs comparison, scoring and building the sorted table.

Recall per kind counts a planted pair found when it is reported in either order. A
reported pair whose two images are not linked by planted pairs is a false pair; one
linked only through other planted pairs (two copies of one image) is a chain pair.
Targets: 30,000 images in under 2 minutes (end to end, on this machine's cores), peak
memory under 1 GB, every planted identical and resized (resize_half, squash_224) pair
found.

Disk: about 14 KB an image at 300x225 (0.4 GB for 30,000). Nothing is written outside
FOLDER and the system temporary folder (the signature cache, removed after the run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from child import run_child  # noqa: E402  (benchmarks/child.py, beside this script)

MALIGNANT_SHARE = 0.25
KINDS = ("identical", "reencode", "resize_half", "squash_224", "crop", "hflip", "rot90", "colour")
MUST_FIND = ("identical", "resize_half", "squash_224")
TARGET_SECONDS_30K = 120
TARGET_MB = 1024
FORMAT = 1  # bump when the way images or copies are made changes


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 300x225, got {text!r}") from None
    if min(w, h) < 32:
        raise argparse.ArgumentTypeError(f"images must be at least 32 pixels a side, got {text!r}")
    return w, h


# --------------------------------------------------------------------------- generation


def originals_dir(folder: Path, size: tuple[int, int], draw: int, seed: int) -> Path:
    return folder / f"originals-{size[0]}x{size[1]}-d{draw}-seed{seed}-v{FORMAT}"


def set_dir(folder: Path, n: int, size: tuple[int, int], draw: int, per_kind: int, seed: int) -> Path:
    return folder / f"set-n{n}-{size[0]}x{size[1]}-d{draw}-k{per_kind}-seed{seed}-v{FORMAT}"


def _write_atomic(path: Path, buf) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    buf.tofile(tmp)
    os.replace(tmp, path)


def _make_originals(args: tuple[str, int, int, int, int, int, int]) -> int:
    """Draw images lo..hi-1 that do not exist yet (image i depends on seed and i only)."""
    import cv2
    import numpy as np

    from skinlib.data import draw_lesion_image

    cv2.setNumThreads(1)
    folder, w, h, draw, seed, lo, hi = args
    made = 0
    for i in range(lo, hi):
        path = Path(folder) / f"{i:06d}.jpg"
        if path.exists() and path.stat().st_size > 0:
            continue
        malignant = bool(np.random.default_rng([seed, i, 1]).random() < MALIGNANT_SHARE)
        img = draw_lesion_image(np.random.default_rng([seed, i]), malignant, size=draw)
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if draw > max(w, h) else cv2.INTER_LINEAR)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        _write_atomic(path, buf)
        made += 1
    return made


def _make_copies(tasks: list[dict]) -> int:
    """Write planted copies: each task names its source, destination, kind and parameters."""
    import cv2
    import numpy as np

    cv2.setNumThreads(1)
    made = 0
    for t in tasks:
        dst = Path(t["path_b"])
        if dst.exists() and dst.stat().st_size > 0:
            continue
        data = np.fromfile(t["path_a"], np.uint8)
        if t["kind"] == "identical":
            _write_atomic(dst, data)
            made += 1
            continue
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
        h, w = img.shape[:2]
        quality = 90
        kind = t["kind"]
        if kind == "reencode":
            quality = 60
        elif kind == "resize_half":
            img = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        elif kind == "squash_224":
            img = cv2.resize(img, (224, 224), interpolation=cv2.INTER_AREA)
        elif kind == "crop":
            m = t["param"]
            dy, dx = int(round(h * m)), int(round(w * m))
            img = img[dy : h - dy, dx : w - dx]
        elif kind == "hflip":
            img = img[:, ::-1]
        elif kind == "rot90":
            img = cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE if t["param"] > 0 else cv2.ROTATE_90_COUNTERCLOCKWISE)
        elif kind == "colour":
            gains = np.array(json.loads(t["gains"]), np.float32)
            img = np.clip(img.astype(np.float32) * gains + np.float32(t["param"]), 0, 255).astype(np.uint8)
        else:
            raise ValueError(kind)
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img), [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        _write_atomic(dst, buf)
        made += 1
    return made


def plan(n: int, per_kind: int, seed: int, orig: Path, copies: Path):
    """The drawn images, the planted copies (path_a: source, path_b: copy, kind, parameters)
    and the order of the image list, all from the seed."""
    import numpy as np
    import pandas as pd

    n_copies = per_kind * len(KINDS)
    n_orig = n - n_copies
    if n_orig < 2 * n_copies:
        raise SystemExit(f"--n {n} is too small for {n_copies} planted copies (--per-kind {per_kind}); "
                         f"need n >= {3 * n_copies}")
    rng = np.random.default_rng([seed, n, per_kind, 7])
    # Sources come from a pool of 3/4 as many images as copies: about a third of them get
    # copies of two or more kinds, which makes chains (copy to copy) to check.
    pool = rng.choice(n_orig, max(per_kind, (3 * n_copies) // 4), replace=False)
    rows = []
    for kind in KINDS:
        for src in rng.choice(pool, per_kind, replace=False):
            param, gains = 0.0, "[]"
            if kind == "crop":
                param = float(rng.uniform(0.03, 0.05))
            elif kind == "rot90":
                param = float(rng.choice([-1, 1]))
            elif kind == "colour":
                gains = json.dumps([round(float(g), 4) for g in rng.uniform(0.88, 1.12, 3)])
                param = float(rng.uniform(-20, 20))
            j = len(rows)
            rows.append({"path_a": str(orig / f"{int(src):06d}.jpg"), "path_b": str(copies / f"{j:05d}.jpg"),
                         "kind": kind, "param": param, "gains": gains})
    planted = pd.DataFrame(rows)
    paths = [str(orig / f"{i:06d}.jpg") for i in range(n_orig)] + planted["path_b"].tolist()
    order = rng.permutation(len(paths))
    return n_orig, planted, [paths[i] for i in order]


def _run_pool(fn, chunks: list, workers: int, label: str, total: int) -> float:
    t0 = time.perf_counter()
    done = 0
    next_report = 5000
    with get_context("spawn").Pool(workers) as pool:
        for made in pool.imap_unordered(fn, chunks):
            done += made
            if done >= next_report:
                print(f"  {label}: {done} of {total} made, {done / (time.perf_counter() - t0):.0f} images/s", flush=True)
                next_report += 5000
    return time.perf_counter() - t0


def generate(folder: Path, n: int, size: tuple[int, int], draw: int, per_kind: int, seed: int, workers: int) -> Path:
    import pandas as pd

    orig = originals_dir(folder, size, draw, seed)
    root = set_dir(folder, n, size, draw, per_kind, seed)
    copies = root / "copies"
    settings = {"n": n, "size": list(size), "draw_size": draw, "per_kind": per_kind, "seed": seed, "format": FORMAT,
                "kinds": list(KINDS)}
    manifest = root / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        if m.get("settings") == settings and m.get("complete"):
            paths = pd.read_csv(root / "images.csv")["path"]
            if all(os.path.exists(p) for p in paths):
                print(f"reusing {n} images ({m['n_planted']} planted copies) listed in {root} "
                      f"(generated in {m['generation_s']:.0f} s)", flush=True)
                return root
    orig.mkdir(parents=True, exist_ok=True)
    copies.mkdir(parents=True, exist_ok=True)
    n_orig, planted, order = plan(n, per_kind, seed, orig, copies)
    missing = sum(1 for i in range(n_orig) if not (orig / f"{i:06d}.jpg").exists())
    print(f"generating {n} images in {root}: {missing} of {n_orig} drawn images to draw "
          f"({size[0]}x{size[1]} JPEG, drawn at {draw}x{draw}), {len(planted)} planted copies, "
          f"{workers} processes...", flush=True)
    t0 = time.perf_counter()
    step = 200
    chunks = [(str(orig), size[0], size[1], draw, seed, lo, min(lo + step, n_orig)) for lo in range(0, n_orig, step)]
    t_draw = _run_pool(_make_originals, chunks, workers, "drawn", missing)
    tasks = planted.to_dict("records")
    t_copy = _run_pool(_make_copies, [tasks[i : i + 50] for i in range(0, len(tasks), 50)], workers, "copies",
                       len(tasks))
    pd.DataFrame({"path": order}).to_csv(root / "images.csv", index=False)
    planted.to_csv(root / "planted.csv", index=False)
    elapsed = time.perf_counter() - t0
    manifest.write_text(json.dumps({"settings": settings, "complete": True, "n_drawn": n_orig,
                                    "n_planted": len(planted), "drawn_now": missing, "draw_s": t_draw,
                                    "copies_s": t_copy, "generation_s": elapsed}, indent=1))
    print(f"  done in {elapsed:.0f} s ({missing} drawn in {t_draw:.0f} s, "
          f"{missing / max(t_draw, 1e-9):.0f} images/s; {len(planted)} copies in {t_copy:.1f} s)", flush=True)
    return root


# --------------------------------------------------------------------------- measured runs


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(root: Path, mode: str, workers: int | None, out: Path) -> None:
    """One measured run, in a fresh process; prints a JSON line, writes the pairs to ``out``."""
    import pandas as pd

    import skinlib
    from skinlib.audit import image_signatures

    rss_imports = _maxrss_mb()
    df = pd.read_csv(root / "images.csv")
    result = {"n": len(df), "maxrss_after_imports_mb": rss_imports}
    if mode == "total":
        c0, t0 = _cpu_s(), time.perf_counter()
        pairs = skinlib.find_duplicates(df, cache_dir=None, workers=workers, progress=False)
        result["total_s"], result["total_cpu_s"] = time.perf_counter() - t0, _cpu_s() - c0
    else:
        cache = Path(tempfile.mkdtemp(prefix="skinlib-dup-sig-"))
        try:
            c0, t0 = _cpu_s(), time.perf_counter()
            sig = image_signatures(df["path"], cache_dir=cache, workers=workers, progress=False)
            c1, t1 = _cpu_s(), time.perf_counter()
            result["maxrss_after_hashing_mb"] = _maxrss_mb()
            pairs = skinlib.find_duplicates(df, cache_dir=cache, workers=workers, progress=False)
            c2, t2 = _cpu_s(), time.perf_counter()
            again = image_signatures(df["path"], cache_dir=cache, workers=workers, progress=False)
            t3 = time.perf_counter()
            assert again.from_cache and len(again) == len(sig)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        result.update(hashing_s=t1 - t0, hashing_cpu_s=c1 - c0, cached_find_cpu_s=c2 - c1, cached_find_s=t2 - t1, cache_load_s=t3 - t2,
                      search_s=(t2 - t1) - (t3 - t2), hashed=len(sig), skipped=len(sig.skipped))
    result["maxrss_mb"] = _maxrss_mb()
    result["pairs"] = len(pairs)
    pairs.to_csv(out, index=False)
    print(json.dumps(result))


def measure(root: Path, mode: str, workers: int | None, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", str(root), "--mode", mode, "--out", str(out)]
    if workers:
        cmd += ["--workers", str(workers)]
    return run_child(cmd, f"measured run ({mode})")


# --------------------------------------------------------------------------- evaluation


def evaluate(planted, pairs) -> dict:
    """Recall per kind, chain pairs and false pairs of a find_duplicates table."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(planted["path_a"], planted["path_b"]):
        parent[find(a)] = find(b)
    reported = {}
    for row in pairs.itertuples(index=False):
        reported[frozenset((row.path_a, row.path_b))] = row
    planted_keys = set()
    per_kind = {}
    missed = []
    for row in planted.itertuples(index=False):
        key = frozenset((row.path_a, row.path_b))
        planted_keys.add(key)
        hit = reported.get(key)
        k = per_kind.setdefault(row.kind, {"planted": 0, "found": 0, "min_sim": 1.0, "as_identical": 0})
        k["planted"] += 1
        if hit is None:
            missed.append((row.kind, row.path_a, row.path_b))
        else:
            k["found"] += 1
            k["min_sim"] = min(k["min_sim"], float(hit.similarity))
            k["as_identical"] += hit.kind == "identical"
    chain, false = 0, []
    for key, row in reported.items():
        if key in planted_keys:
            continue
        a, b = tuple(key)
        if find(a) == find(b):
            chain += 1
        else:
            false.append(row)
    # Chain pairs that could be found: pairs within a group of linked images, not planted.
    groups: dict[str, int] = {}
    for x in list(parent):
        groups[find(x)] = groups.get(find(x), 0) + 1
    chains_possible = sum(s * (s - 1) // 2 for s in groups.values()) - len(planted_keys)
    return {"per_kind": per_kind, "missed": missed, "chain": chain, "chains_possible": chains_possible,
            "false": false}


def _commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %ci"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "skinlib"], capture_output=True,
                               text=True).stdout.strip()
        return out.stdout.strip() + (" (skinlib/ modified)" if dirty else "")
    except OSError:
        return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30000, help="images in the set, planted copies included (default 30000)")
    ap.add_argument("--folder", type=Path, default=Path("/tmp/skinlib-duplicates"),
                    help="where images are made or reused")
    ap.add_argument("--size", type=parse_size, default=(300, 225), help="image size WxH (default 300x225)")
    ap.add_argument("--draw-size", type=int, default=192, help="side of the square drawing that is resized (default 192)")
    ap.add_argument("--per-kind", type=int, default=100, help="planted pairs of each kind (default 100)")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--workers", type=int, default=None, help="find_duplicates workers (default: one per core)")
    ap.add_argument("--gen-workers", type=int, default=os.cpu_count() or 1, help="processes drawing images")
    ap.add_argument("--skip-split", action="store_true", help="only the end-to-end run")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--mode", choices=["total", "split"], default="total", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.mode, args.workers, args.out)
        return 0

    import pandas as pd

    folder = args.folder.expanduser().resolve()
    root = generate(folder, args.n, args.size, args.draw_size, args.per_kind, args.seed, args.gen_workers)
    planted = pd.read_csv(root / "planted.csv")
    workers = args.workers or os.cpu_count() or 1

    commit = _commit()
    total = measure(root, "total", args.workers, root / "pairs-total.csv")
    split = None if args.skip_split else measure(root, "split", args.workers, root / "pairs-split.csv")
    pairs = pd.read_csv(root / "pairs-total.csv")
    ev = evaluate(planted, pairs)

    n = total["n"]
    peak = max(total["maxrss_mb"], total["tree_peak_mb"] if total["tree_peak_mb"] == total["tree_peak_mb"] else 0)
    w, h = args.size
    print(f"\nn = {n} images ({n - len(planted)} drawn + {len(planted)} planted copies), {w}x{h} JPEG, "
          f"{os.cpu_count()} cores, workers={workers}")
    print(f"{'run':44s} {'seconds':>8s} {'images/s':>9s} {'peak RSS MB':>12s} {'CPU s':>7s}")
    print(f"{'find_duplicates(cache_dir=None), end to end':44s} {total['total_s']:8.1f} "
          f"{n / total['total_s']:9.0f} {peak:12.0f} {total['total_cpu_s']:7.0f}")
    if split:
        print(f"{'  hashing: image_signatures (+cache write)':44s} {split['hashing_s']:8.1f} "
              f"{split['hashed'] / split['hashing_s']:9.0f} {split['maxrss_after_hashing_mb']:12.0f} "
              f"{split['hashing_cpu_s']:7.0f}")
        print(f"{'  search: find_duplicates on cached sigs':44s} {split['search_s']:8.1f} {'':9s} "
              f"{split['maxrss_mb']:12.0f} {split['cached_find_cpu_s']:7.0f}")
        print(f"{'    (cache load, subtracted from search)':44s} {split['cache_load_s']:8.2f}")
        split_pairs = pd.read_csv(root / "pairs-split.csv")
        def pair_set(t):
            return set(map(frozenset, zip(t["path_a"], t["path_b"])))

        if pair_set(split_pairs) != pair_set(pairs):
            print(f"  WARNING: the split run reported other pairs than the end-to-end run "
                  f"({len(split_pairs)} against {len(pairs)})")
    print(f"  (CPU s: user + system time of the child; load average {os.getloadavg()[0]:.1f} after the runs. "
          f"peak RSS: getrusage maxrss of the child {total['maxrss_mb']:.0f} MB, psutil tree peak "
          f"{total['tree_peak_mb']:.0f} MB, after imports {total['maxrss_after_imports_mb']:.0f} MB)")
    changed = "" if _commit() == commit else f"; WARNING: now {_commit()}, the code changed during the runs"
    print(f"  skinlib at commit {commit}{changed}")

    kinds = pairs["kind"].value_counts().to_dict()
    n_found = sum(k["found"] for k in ev["per_kind"].values())
    print(f"\nreported pairs: {len(pairs)} ({kinds.get('identical', 0)} identical, {kinds.get('near', 0)} near): "
          f"{n_found} planted, {ev['chain']} chains of planted pairs (of {ev['chains_possible']} possible), "
          f"{len(ev['false'])} false")
    print(f"{'kind':12s} {'found/planted':>13s} {'recall':>7s} {'min similarity':>15s}")
    for kind in KINDS:
        k = ev["per_kind"][kind]
        extra = f"  ({k['as_identical']} reported as 'identical')" if kind == "identical" else ""
        print(f"{kind:12s} {k['found']:6d}/{k['planted']:<6d} {k['found'] / k['planted']:7.2f} "
              f"{k['min_sim'] if k['found'] else float('nan'):15.3f}{extra}")
    for kind, a, b in ev["missed"][:5]:
        print(f"  missed {kind}: {a} {b}")
    if ev["false"]:
        sims = sorted(float(r.similarity) for r in ev["false"])
        print(f"  false pairs: similarity {sims[0]:.3f}..{sims[-1]:.3f}; e.g.")
        for r in sorted(ev["false"], key=lambda r: -r.similarity)[:3]:
            print(f"    {r.similarity:.3f} {r.kind} {r.transform!r}: {r.path_a} {r.path_b}")

    must = all(ev["per_kind"][k]["found"] == ev["per_kind"][k]["planted"] for k in MUST_FIND)
    if n >= 30000:
        verdict = "MET" if total["total_s"] < TARGET_SECONDS_30K else "MISSED"
    else:
        verdict = "n/a (the target is for 30,000 images; the search grows as n squared)"
    print(f"\ntargets: time {verdict}: {total['total_s']:.0f} s for {n} images, "
          f"target 30,000 in under {TARGET_SECONDS_30K} s on {os.cpu_count()} cores")
    print(f"         memory {'MET' if peak < TARGET_MB else 'MISSED'}: peak {peak:.0f} MB, target under {TARGET_MB} MB")
    print(f"         recall {'MET' if must else 'MISSED'}: every planted {', '.join(MUST_FIND)} pair found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
