"""Real-data results: the ablation table, cross-dataset checks and the published figures.

    python scripts/results.py [--data-root ../shared/data] [--seeds 3] [--out runs/results]

Trains every combination of preprocessing x model x setup x seed on HAM10000 with a
split grouped by lesion (test 20%, validation 10%, split seed 0), then the best
preprocessing (highest mean validation ROC AUC) on ISIC 2020 (grouped by patient)
and on the malignant-vs-benign set (its own train/test folders). Each run is a run
folder under --out; a run folder that already exists is reused, so an interrupted
call resumes where it stopped. Then writes:

- ``results/ablation.csv`` and ``results/ablation.md``: one row per cell, test ROC
  AUC mean over seeds and each seed's 95% bootstrap interval, balanced accuracy,
  sensitivity and specificity at the threshold chosen on validation (and
  ``results/ablation_runs.csv``, one row per run);
- ``results/external.csv`` / ``.md``: the best configuration on the other datasets;
- ``results/summary.md``: the tables quoted in README.md;
- ``Images/``: accuracy.png, loss.png (v1), accuracy_2.png, loss_2.png (v2) of the
  seed-0 corrected runs with the default preprocessing, roc.png (v1 and v2) and
  ablation.png. This script is the only thing that writes ``Images/``.

Setups: "as published" = the original's integer division of the pixels and no
class weights; "corrected" = division by 255.0 and balanced class weights.
Run 1 (v1): 10 epochs, batch 128. Run 2 (v2): up to 100 epochs, batch 32, early
stopping when validation ROC AUC has not improved for 10 epochs (best weights kept;
the epochs run are reported).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

import skinlib  # noqa: E402
from skinlib import Preprocess  # noqa: E402
from skinlib.evaluate import load_predictions  # noqa: E402

PREPROCESSING = {
    "original pipeline": Preprocess.seed(),
    "resize only (area)": Preprocess(steps=(("resize", {"size": 28, "interpolation": "area"}),), decode_min_side=112),
    "bilateral only": Preprocess(
        steps=(
            ("resize", {"size": 28, "interpolation": "area"}),
            ("bilateral", {"d": -1, "sigma_color": 50, "sigma_space": 50, "method": "matrix"}),
        ),
        decode_min_side=112,
    ),
    "hair + crop + bilateral": Preprocess(
        steps=(
            ("remove_hair", {}),
            ("crop_to_lesion", {"margin": 0.15}),
            ("resize", {"size": 28, "interpolation": "area"}),
            ("bilateral", {"d": -1, "sigma_color": 50, "sigma_space": 50, "method": "matrix"}),
        ),
        decode_min_side=224,
    ),
    "crop + resize": Preprocess(
        steps=(("crop_to_lesion", {"margin": 0.15}), ("resize", {"size": 28, "interpolation": "area"})),
        decode_min_side=224,
    ),
}
MODELS = {"v1": dict(epochs=10, batch_size=128, early_stopping=None), "v2": dict(epochs=100, batch_size=32, early_stopping=10)}
SETUPS = {"as published": True, "corrected": False}  # value: faithful


def slug(*parts: str) -> str:
    return "__".join(p.replace(" ", "-").replace("+", "and").replace("(", "").replace(")", "") for p in parts)


def run_one(run_dir: Path, data, model: str, faithful: bool, seed: int, max_epochs: int | None = None) -> None:
    if (run_dir / "config.json").is_file():
        return  # done in an earlier call (run folders are written atomically)
    settings = dict(MODELS[model])
    if max_epochs:
        settings["epochs"] = min(settings["epochs"], max_epochs)
    skinlib.train(model, data, seed=seed, faithful=faithful, run_dir=run_dir, progress=None, **settings)


def metrics_row(run_dir: Path) -> dict:
    config = json.loads((run_dir / "config.json").read_text())
    preds = load_predictions(run_dir)
    out = {"epochs_run": config["epochs_run"]}
    for fold in ("val", "test"):
        part = preds[preds["fold"] == fold]
        m = skinlib.evaluate(part["label"], part["probability"], threshold=config["threshold"], n_bootstrap=1000, seed=0)
        for key in ("roc_auc", "roc_auc_low", "roc_auc_high", "balanced_accuracy", "sensitivity", "specificity",
                    "accuracy", "majority_accuracy"):
            out[f"{fold}_{key}"] = m[key]
    return out


def summarise(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    def fmt_seeds(g):
        return "; ".join(f"{a:.3f} [{l:.3f}, {h:.3f}]" for a, l, h in zip(g["test_roc_auc"], g["test_roc_auc_low"], g["test_roc_auc_high"]))

    agg = rows.groupby(keys, sort=False).agg(
        seeds=("seed", "count"),
        test_auc_mean=("test_roc_auc", "mean"),
        test_auc_sd=("test_roc_auc", "std"),
        val_auc_mean=("val_roc_auc", "mean"),
        balanced_accuracy=("test_balanced_accuracy", "mean"),
        sensitivity=("test_sensitivity", "mean"),
        specificity=("test_specificity", "mean"),
        accuracy=("test_accuracy", "mean"),
        majority_accuracy=("test_majority_accuracy", "mean"),
        epochs_run=("epochs_run", "mean"),
    )
    agg["test_auc_per_seed"] = rows.groupby(keys, sort=False).apply(fmt_seeds, include_groups=False)
    return agg.reset_index()


def to_markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in r]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_markdown(table: pd.DataFrame, external: pd.DataFrame | None) -> str:
    """The tables quoted in README.md: as published beside corrected, then other datasets."""
    lines = [
        "| preprocessing | model | ROC AUC, as published | ROC AUC, corrected | balanced accuracy | sensitivity | specificity | epochs |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (prep, model), g in table.groupby(["preprocessing", "model"], sort=False):
        pub = g[g["setup"] == "as published"].iloc[0]
        cor = g[g["setup"] == "corrected"].iloc[0]
        lines.append(
            f"| {prep} | {model} | {pub.test_auc_mean:.3f} ± {pub.test_auc_sd:.3f} | **{cor.test_auc_mean:.3f}** ± "
            f"{cor.test_auc_sd:.3f} | {cor.balanced_accuracy:.3f} | {cor.sensitivity:.3f} | {cor.specificity:.3f} | "
            f"{cor.epochs_run:.0f} |"
        )
    if external is not None:
        lines += [
            "",
            "| dataset | split | test ROC AUC (mean) | per seed [95% interval] | balanced accuracy | sensitivity | specificity |",
            "|---|---|---:|---|---:|---:|---:|",
        ]
        for _, r in external.iterrows():
            lines.append(f"| {r.dataset} | {r.split} | {r.test_auc_mean:.3f} | {r.test_auc_per_seed} | "
                         f"{r.balanced_accuracy:.3f} | {r.sensitivity:.3f} | {r.specificity:.3f} |")
    return "\n".join(lines) + "\n"


def write_text(path: Path, text: str) -> None:
    skinlib.preprocess.atomic_write(path, lambda fh: fh.write(text), mode="w")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "results")
    ap.add_argument("--images", type=Path, default=ROOT / "Images", help="where the published figures go")
    ap.add_argument("--tables", type=Path, default=ROOT / "results", help="where the result tables go")
    ap.add_argument("--max-epochs", type=int, default=None, help="cap every run's epochs (a quick check of the script)")
    args = ap.parse_args()
    ham = args.data_root / "ham10000"
    if not ham.is_dir():
        ap.error(f"{ham}: HAM10000 not found (expected HAM10000_metadata.csv and images/ there)")
    started = time.perf_counter()
    cache = args.out / "cache"

    df = skinlib.split_dataset(skinlib.load_dataset(ham), test_size=0.2, val_size=0.1, seed=0)
    print(f"HAM10000: {len(df)} images, {df['label'].sum()} malignant, {df['group'].nunique()} lesions; "
          + ", ".join(f"{k} {v}" for k, v in df["fold"].value_counts().sort_index().items()), flush=True)
    jobs = [(p, m, s, seed) for p in PREPROCESSING for m in MODELS for s in SETUPS for seed in range(args.seeds)]
    rows = []
    data_by_prep = {}
    with tqdm(total=len(jobs), desc="ablation", unit="run") as bar:
        for prep, model, setup, seed in jobs:
            if prep not in data_by_prep:
                data_by_prep = {prep: skinlib.preprocess_dataset(df, PREPROCESSING[prep], cache_dir=cache, progress=False)}
            run_dir = args.out / "ham10000" / slug(prep, model, setup, f"seed{seed}")
            run_one(run_dir, data_by_prep[prep], model, SETUPS[setup], seed, args.max_epochs)
            rows.append({"preprocessing": prep, "model": model, "setup": setup, "seed": seed, **metrics_row(run_dir)})
            bar.update(1)
    runs = pd.DataFrame(rows)
    table = summarise(runs, ["preprocessing", "model", "setup"])
    write_text(args.tables / "ablation_runs.csv", runs.to_csv(index=False))
    write_text(args.tables / "ablation.csv", table.to_csv(index=False))
    write_text(args.tables / "ablation.md", to_markdown(table))

    corrected = table[table["setup"] == "corrected"]
    best_prep = corrected.groupby("preprocessing")["val_auc_mean"].mean().idxmax()
    print(f"best preprocessing by mean validation ROC AUC (v1 and v2, corrected): {best_prep}", flush=True)
    default_prep = next(k for k, v in PREPROCESSING.items() if v == Preprocess.default())
    print(f"project default, Preprocess.default(): {default_prep}"
          + (" (the best measured)" if default_prep == best_prep else "; NOT the best measured: change the default"),
          flush=True)

    # The best configuration on the other two datasets (v2, corrected).
    external = []
    for name, split in (("isic2020", "grouped by patient_id"), ("mvb", "its own train/test folders")):
        folder = args.data_root / name
        if not folder.is_dir():
            print(f"{folder}: not found, skipped", flush=True)
            continue
        d = skinlib.load_dataset(folder)
        if name == "mvb":
            test = d["source_split"] == "test"
            inner = skinlib.split_dataset(d[~test], test_size=0, val_size=0.1, seed=0)
            d = pd.concat([inner, d[test].assign(fold="test")], ignore_index=True)
        else:
            d = skinlib.split_dataset(d, test_size=0.2, val_size=0.1, seed=0)
        data = skinlib.preprocess_dataset(d, PREPROCESSING[best_prep], cache_dir=cache, progress=False)
        for seed in tqdm(range(args.seeds), desc=name, unit="run"):
            run_dir = args.out / name / slug(best_prep, "v2", "corrected", f"seed{seed}")
            run_one(run_dir, data, "v2", False, seed, args.max_epochs)
            external.append({"dataset": name, "split": split, "preprocessing": best_prep, "model": "v2",
                             "setup": "corrected", "seed": seed, **metrics_row(run_dir)})
    if external:
        ext = summarise(pd.DataFrame(external), ["dataset", "split", "preprocessing", "model", "setup"])
        write_text(args.tables / "external.csv", ext.to_csv(index=False))
        write_text(args.tables / "external.md", to_markdown(ext))

    write_text(args.tables / "summary.md", summary_markdown(table, ext if external else None))
    publish_figures(args, table)
    minutes = (time.perf_counter() - started) / 60
    print(f"\nHAM10000, test fold, mean ± sd over {args.seeds} seeds (results/summary.md):\n")
    print(summary_markdown(table, ext if external else None))
    print(f"total time: {minutes:.1f} min", flush=True)
    return 0


def publish_figures(args, table: pd.DataFrame) -> None:
    """The original README's four figures from the real runs, ROC curves and the ablation chart."""
    import matplotlib

    matplotlib.use("Agg")
    from skinlib import plots

    default = next(k for k, v in PREPROCESSING.items() if v == Preprocess.default())  # the figures show the default
    staging = args.out / "figures"
    staging.mkdir(parents=True, exist_ok=True)
    curves = {}
    for model, suffix in (("v1", ""), ("v2", "_2")):
        run_dir = args.out / "ham10000" / slug(default, model, "corrected", "seed0")
        history = pd.read_csv(run_dir / "history.csv")
        plots.plot_history(history, path=staging, suffix=suffix, metrics=("accuracy", "loss"),
                           baseline=float(table["majority_accuracy"].iloc[0]))
        preds = pd.read_csv(run_dir / "predictions.csv")
        test = preds[preds["fold"] == "test"]
        curves[f"{model} ({default}, corrected)"] = (test["label"].to_numpy(), test["probability"].to_numpy())
    plots.save_figure(plots.plot_roc(curves, title="ROC curve, HAM10000 test fold (seed 0)"), staging / "roc.png")
    plots.save_figure(ablation_chart(table), staging / "ablation.png")
    args.images.mkdir(parents=True, exist_ok=True)
    for name in ("accuracy.png", "loss.png", "accuracy_2.png", "loss_2.png", "roc.png", "ablation.png"):
        tmp = args.images / f".{name}.tmp"
        shutil.copyfile(staging / name, tmp)
        os.replace(tmp, args.images / name)
    print(f"figures written to {args.images}", flush=True)


def ablation_chart(table: pd.DataFrame):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.add_subplot()
    labels = list(dict.fromkeys(table["preprocessing"]))
    combos = [(m, s) for m in MODELS for s in SETUPS]
    width = 0.8 / len(combos)
    for i, (m, s) in enumerate(combos):
        part = table[(table["model"] == m) & (table["setup"] == s)].set_index("preprocessing").reindex(labels)
        xs = np.arange(len(labels)) + (i - (len(combos) - 1) / 2) * width
        ax.bar(xs, part["test_auc_mean"], width, yerr=part["test_auc_sd"].fillna(0), label=f"{m}, {s}", capsize=2)
    ax.axhline(0.5, color="k", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(np.arange(len(labels)), labels, rotation=15)
    ax.set_ylabel("test ROC AUC (mean, sd over seeds)")
    ax.set_ylim(0.3, 1.0)
    ax.set_title("HAM10000, split grouped by lesion")
    ax.legend(fontsize=8, ncols=3)
    return fig


if __name__ == "__main__":
    sys.exit(main())
