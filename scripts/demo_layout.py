"""Run the demo (``python -m skinlib demo``: the five notebooks, headless) on a dataset in the ISIC 2019 layout.

Checks that the notebooks run on a layout other than the built-in sample's: the script draws a
synthetic dataset with skinlib's sample generator (:func:`skinlib.make_sample`), rewrites it in
the ISIC 2019 download layout (``ISIC_2019_Training_GroundTruth.csv`` with one-hot diagnoses,
``ISIC_2019_Training_Metadata.csv`` with lesion ids for two patients in three,
``ISIC_2019_Training_Input/``, two ``*_downsampled`` copies as in the real download) in a temporary
folder, and runs the demo on it with ``SKINLIB_PROFILE=quick`` and a temporary ``SKINLIB_RUN``. It
prints the demo's output, then the time it took and whether it succeeded; the exit code is the
demo's. Nothing is written in the checkout. A few minutes on two cores::

    .venv/bin/python scripts/demo_layout.py            # 120 images, temporary folders removed after
    .venv/bin/python scripts/demo_layout.py --keep     # keep the dataset and the run folder to look at
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import pandas as pd

import skinlib

CLASSES = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK")
#: The diagnoses given to the sample's malignant and benign images, in turn.
MALIGNANT_DX = ("MEL", "MEL", "BCC", "AK", "SCC")
BENIGN_DX = ("NV", "NV", "NV", "BKL", "DF", "VASC")
#: ISIC 2020's body sites (the sample's) as ISIC 2019 names them.
SITES = {"torso": "anterior torso"}


def isic2019_from_sample(sample: Path, root: Path, downsampled: int = 2) -> Path:
    """Write the sample at ``sample`` (ISIC 2020 layout) into ``root`` in the ISIC 2019 layout."""
    meta = pd.read_csv(sample / "ISIC_2020_Training_GroundTruth.csv", dtype=str, keep_default_na=False)
    images = root / "ISIC_2019_Training_Input"
    images.mkdir(parents=True)
    truth, rows = [], []
    counts = {0: 0, 1: 0}
    for _, row in meta.iterrows():
        label = int(row["target"])
        cycle = MALIGNANT_DX if label else BENIGN_DX
        dx = cycle[counts[label] % len(cycle)]
        counts[label] += 1
        patient = int(row["patient_id"].split("_")[1])
        shutil.copyfile(sample / "train" / f"{row['image_name']}.jpg", images / f"{row['image_name']}.jpg")
        truth.append({"image": row["image_name"], **{c: float(c == dx) for c in CLASSES}})
        rows.append({"image": row["image_name"], "age_approx": row["age_approx"],
                     "anatom_site_general": SITES.get(row["anatom_site_general_challenge"],
                                                      row["anatom_site_general_challenge"]),
                     "lesion_id": f"BCN_{patient:07d}" if patient % 3 else "", "sex": row["sex"]})
    # The real download holds 2,074 '_downsampled' copies of other images: a few here, for the duplicate finder.
    for source_truth, source_row in list(zip(truth, rows))[:downsampled]:
        name = f"{source_truth['image']}_downsampled"
        img = cv2.imread(str(images / f"{source_truth['image']}.jpg"))
        cv2.imwrite(str(images / f"{name}.jpg"), cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
        truth.append({**source_truth, "image": name})
        rows.append({**source_row, "image": name, "lesion_id": ""})
    pd.DataFrame(truth).to_csv(root / "ISIC_2019_Training_GroundTruth.csv", index=False)
    pd.DataFrame(rows).to_csv(root / "ISIC_2019_Training_Metadata.csv", index=False)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=120, help="images drawn by the sample generator (default 120)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample generator (default 0)")
    parser.add_argument("--keep", action="store_true", help="keep the dataset and run folders (their path is printed)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="skinlib-isic2019-demo-"))
    try:
        sample = skinlib.make_sample(work / "sample", n=args.n, seed=args.seed)
        data = isic2019_from_sample(sample, work / "ISIC2019")
        shutil.rmtree(sample)
        df = skinlib.load_dataset(data)
        print(f"{data}: {df.attrs['layout']} layout, {len(df)} images ({int(df['label'].sum())} malignant) "
              f"of {df['group'].nunique()} lesions or images; diagnoses "
              f"{df['dx'].value_counts().to_dict()}", flush=True)
        env = {**os.environ, "SKINLIB_DATA": str(data), "SKINLIB_PROFILE": "quick", "SKINLIB_RUN": str(work / "run")}
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", "skinlib", "demo"], env=env)
        minutes = (time.perf_counter() - started) / 60
        outcome = "succeeded" if code == 0 else f"failed (exit code {code})"
        print(f"\nThe demo on the ISIC 2019 layout {outcome} in {minutes:.1f} minutes.", flush=True)
        if args.keep:
            print(f"Dataset: {data}\nRun folder: {work / 'run'}")
        return code
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
