"""Training speed: the original project's input pipeline against skinlib's cached arrays.

    python benchmarks/train.py [FOLDER] [--epochs N]

FOLDER holds benign/ and malignant/ image folders (default:
../shared/data/mvb/train, 1,000 images). Both sides train the v2 model (27,521
parameters) on the same images, grayscale 28x28, batch 32, in this process:

- original: ``ImageDataGenerator(rescale=1/255).flow_from_directory(...)``, which
  decodes and resizes every image with PIL again in every epoch. Keras 3 keeps
  this legacy API as ``keras.src.legacy.preprocessing.image.ImageDataGenerator``,
  reached here as ``tf.keras.preprocessing.image.ImageDataGenerator``.
- skinlib: ``preprocess_dataset`` once (cached uint8 arrays), then ``train``.

Prints the median time per epoch of each, their ratio, and skinlib's one-off
preprocessing time. The first epoch of each side is a warm-up and not counted.

Then run 3 (v3, 64x64 colour, its full recipe) on the same images, against v2's epochs of
this run: seconds per epoch, the estimate for the 4,874 training images and 25 epochs of
the README's HAM10000 split (target: 20 minutes on 2 cores), and test-time augmentation's
throughput (images per second with the eight views and with one). ``--skip-v3`` leaves it out.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import keras  # noqa: E402

import skinlib  # noqa: E402
from skinlib.models import set_determinism  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mvb" / "train"


class EpochTimes(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times = getattr(self, "times", []) + [time.perf_counter() - self.t0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--epochs", type=int, default=4, help="epochs per side, the first is a warm-up")
    ap.add_argument("--skip-v3", action="store_true", help="leave out run 3's figures")
    args = ap.parse_args()
    if not args.folder.is_dir():
        ap.error(f"{args.folder}: no such folder (expected benign/ and malignant/ inside)")

    import tensorflow as tf

    set_determinism(0)
    gen = tf.keras.preprocessing.image.ImageDataGenerator(rescale=1 / 255).flow_from_directory(
        str(args.folder), target_size=(28, 28), color_mode="grayscale", batch_size=32, class_mode="binary", seed=0
    )
    model = skinlib.build_model("v2")
    original = EpochTimes()
    model.fit(gen, epochs=args.epochs, callbacks=[original], verbose=0)

    df = skinlib.load_dataset(args.folder)
    df["fold"] = "train"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        data = skinlib.preprocess_dataset(df, skinlib.Preprocess.default(), cache_dir=cache, progress=False)
    t_pre = time.perf_counter() - t0
    ours = EpochTimes()
    skinlib.train("v2", data, epochs=args.epochs, batch_size=32, progress=None, callbacks=[ours])

    t_orig = float(np.median(original.times[1:]))
    t_ours = float(np.median(ours.times[1:]))
    print(f"{gen.samples} images from {args.folder}, v2, batch 32, {os.cpu_count()} cores, "
          f"median of {args.epochs - 1} epochs after a warm-up")
    print(f"{'pipeline':58s} {'s/epoch':>8s}")
    print(f"{'original: ImageDataGenerator.flow_from_directory':58s} {t_orig:8.3f}")
    print(f"{'skinlib: cached arrays + train()':58s} {t_ours:8.3f}")
    print(f"ratio: skinlib epochs are {t_orig / t_ours:.1f}x faster (target: 5x)")
    print(f"skinlib's one-off preprocessing of the {len(data.x)} images: {t_pre:.2f} s")
    if not args.skip_v3:
        benchmark_v3(df, args.epochs, t_ours)
    return 0


def benchmark_v3(df, epochs: int, v2_epoch: float) -> None:
    """Run 3's seconds per epoch, its estimate for the README's split, and TTA throughput."""
    from skinlib.models import predict_arrays, scale_pixels

    with tempfile.TemporaryDirectory() as cache:
        data = skinlib.preprocess_dataset(df, skinlib.Preprocess.for_model("v3"), cache_dir=cache, progress=False)
    times = EpochTimes()
    skinlib.train("v3", data, epochs=epochs, progress=None, callbacks=[times])
    per_epoch = float(np.median(times.times[1:]))
    estimate = per_epoch * 4874 / len(data.x) * 25 / 60
    print(f"\nv3 ({skinlib.build_model('v3').count_params():,} parameters, 64x64 colour, batch 64, full augmentation)")
    print(f"{'v3 train(), s/epoch':58s} {per_epoch:8.3f}   ({per_epoch / v2_epoch:.1f}x v2's epoch above)")
    print(f"estimate for 4,874 images x 25 epochs: {estimate:.1f} min (target: 20 min on 2 cores)")

    model = skinlib.build_model("v3")
    x = scale_pixels(data.x)
    predict_arrays(model, x[:64], tta=True)  # warm-up: trace the inference function once
    rates = {}
    for tta in (False, True):
        t0 = time.perf_counter()
        predict_arrays(model, x, tta=tta)
        rates[tta] = len(x) / (time.perf_counter() - t0)
    print(f"{'predict, one view':58s} {rates[False]:8.0f} images/s")
    print(f"{'predict, test-time augmentation (8 views)':58s} {rates[True]:8.0f} images/s   "
          f"({rates[False] / rates[True]:.1f}x slower)")


if __name__ == "__main__":
    sys.exit(main())
