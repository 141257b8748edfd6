"""Training speed with malloc's defaults against ``skinlib.models._allocator.keep_freed_memory``.

    python benchmarks/allocator.py [--images 1000] [--epochs 3] [--rounds 2]

Trains v3 (its recipe, 64x64 colour, no test-time augmentation) on the same random
images in fresh processes, alternately with ``SKINLIB_KEEP_FREED_MEMORY=0`` (malloc's
defaults) and without it (what ``train`` does), ``--rounds`` times each. Prints, per
side, the median over rounds of the per-epoch medians: wall seconds, CPU seconds in
user and in kernel mode, and minor page faults; then the ratios. The first epoch of
each process is a warm-up and not counted. CPU seconds say more than wall seconds on
a shared machine; both sides must also give the same predictions, which is checked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(images: int, epochs: int) -> dict:
    """One training in this process: per-epoch wall/user/system seconds and page faults."""
    import numpy as np
    import pandas as pd

    from skinlib import Preprocess, PreprocessResult
    from skinlib._shared.tensorflow import import_keras

    keras = import_keras()
    from skinlib.models import train

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 64, 64, 3), dtype=np.uint8)
    n_val = images // 10
    rows = pd.DataFrame({"path": [f"{i}.jpg" for i in range(images)], "label": rng.integers(0, 2, images),
                         "fold": ["train"] * (images - n_val) + ["val"] * n_val})
    data = PreprocessResult(x, rows["label"].to_numpy(), rows, pd.DataFrame(columns=["path", "reason"]),
                            config=Preprocess.for_model("v3"))
    epochs_seen = []

    class Usage(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = (time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF))

        def on_epoch_end(self, epoch, logs=None):
            t0, r0 = self.start
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            epochs_seen.append({"wall": time.perf_counter() - t0, "user": r1.ru_utime - r0.ru_utime,
                                "system": r1.ru_stime - r0.ru_stime, "faults": r1.ru_minflt - r0.ru_minflt})

    with tempfile.TemporaryDirectory() as tmp:
        train("v3", data, epochs=epochs, tta=False, run_dir=Path(tmp) / "run", progress=None, callbacks=[Usage()])
        digest = hashlib.sha256((Path(tmp) / "run" / "predictions.csv").read_bytes()).hexdigest()
    counted = pd.DataFrame(epochs_seen[1:])
    return {**counted.median().to_dict(), "predictions": digest}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per process, the first is a warm-up")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.epochs < 2:
        ap.error("--epochs must be at least 2 (the first is a warm-up)")
    if args.child:
        print(json.dumps(child(args.images, args.epochs)))
        return 0

    sides = {"malloc defaults": "0", "keep_freed_memory": "1"}
    results: dict[str, list[dict]] = {name: [] for name in sides}
    for round_ in range(args.rounds):
        for name, flag in sides.items():
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--images", str(args.images), "--epochs", str(args.epochs)],
                env={**os.environ, "SKINLIB_KEEP_FREED_MEMORY": flag}, capture_output=True, text=True, check=True)
            results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {round_ + 1}, {name}: {results[name][-1]['wall']:.2f} s per epoch", flush=True)

    import pandas as pd

    table = pd.DataFrame({name: pd.DataFrame(runs).drop(columns="predictions").median()
                          for name, runs in results.items()}).T
    print(f"\nv3, {args.images} random 64x64 colour images, median of {args.rounds} processes per side "
          f"(per epoch, after a warm-up epoch):")
    print(table.to_string(float_format=lambda v: f"{v:,.2f}"))
    base, kept = table.loc["malloc defaults"], table.loc["keep_freed_memory"]
    cpu_base, cpu_kept = base.user + base.system, kept.user + kept.system
    print(f"\nwall time:    {base.wall / kept.wall:.2f}x faster with keep_freed_memory")
    print(f"CPU time:     {cpu_base / cpu_kept:.2f}x less ({cpu_base:.2f} s against {cpu_kept:.2f} s per epoch)")
    print(f"page faults:  {base.faults / max(kept.faults, 1):.0f}x fewer")
    digests = {r["predictions"] for runs in results.values() for r in runs}
    print(f"predictions:  {'identical' if len(digests) == 1 else 'DIFFERENT'} across all {2 * args.rounds} trainings")
    return 0 if len(digests) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
