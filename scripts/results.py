"""Real-data results: duplicates, the cross-validated ablation, cross-dataset checks, the figures.

    python scripts/results.py [--data-root ../shared/data] [--folds 5] [--out runs/results]

1. Duplicates: within HAM10000, ISIC 2020 and the malignant-vs-benign set (mvb), and mvb
   against HAM10000 (``skinlib.find_duplicates``, default threshold).
2. The HAM10000 ablation by 5-fold cross-validation grouped by lesion, with duplicate
   pairs merged into the groups (``skinlib.cross_validate``, split seed 0, one training
   seed per fold): every image is tested once, by a model that never saw its lesion or a
   copy of it; tables give the mean and standard deviation over the folds. Every
   preprocessing is measured corrected; "as published" only for the original pipeline
   and the default (its integer division blanks the inputs, so its ROC AUC is 0.5 in
   every row: measured on all five preprocessings in earlier versions of this table).
3. The default configuration (v2, corrected) on ISIC 2020 (5-fold cross-validation
   grouped by patient, duplicates merged) and on mvb (trained on its train/ folder,
   3 seeds; tested on its own test/ folder as published, and on the test images that
   have no duplicate in train/).

Each run is a run folder under --out; a run folder that already exists is reused, so an
interrupted call resumes where it stopped. Then writes:

- ``results/duplicates.md``: pair counts by kind;
- ``results/ablation.csv`` / ``.md`` (one row per cell: mean and sd over folds) and
  ``results/ablation_runs.csv`` (one row per fold run);
- ``results/external.csv`` / ``.md``: the other datasets;
- ``results/summary.md``: the tables quoted in README.md (a test checks that they agree);
- ``Images/``: accuracy.png, loss.png (v1), accuracy_2.png, loss_2.png (v2) of fold 1 of
  the corrected default runs, roc.png (out-of-fold predictions of v1 and v2) and
  ablation.png. This script is the only thing that writes ``Images/``.

Setups: "as published" = the original's integer division of the pixels and no
class weights; "corrected" = division by 255.0 and balanced class weights.
Run 1 (v1): 10 epochs, batch 128. Run 2 (v2): up to 100 epochs, batch 32, early
stopping when validation ROC AUC has not improved for 10 epochs (best weights kept;
the epochs run are reported).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

import skinlib  # noqa: E402
from skinlib import Preprocess  # noqa: E402
from skinlib._shared.files import atomic_write  # noqa: E402
from skinlib.models import RECIPES  # noqa: E402
from skinlib.evaluation import markdown_table, out_of_fold, run_metrics, summarise  # noqa: E402
from skinlib.data import source_split  # noqa: E402
from _common import add_common_arguments, load_datasets, run_name  # noqa: E402
from skinlib.runs import Run, fold_dir  # noqa: E402

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
#: The published epochs and batch sizes (the models' recipes); v2 stops early here.
MODELS = {name: dict(epochs=RECIPES[name]["epochs"], batch_size=RECIPES[name]["batch_size"], early_stopping=stop)
          for name, stop in (("v1", None), ("v2", 10))}
SETUPS = {"as published": True, "corrected": False}  # value: faithful
#: "As published" is measured on these rows only (see the module docstring).
PUBLISHED_ROWS = ("original pipeline", "resize only (area)")
DEFAULT = "resize only (area)"
assert PREPROCESSING[DEFAULT] == Preprocess.default()
SPLIT_SEED = 0


def run_one(run_dir: Path, data, model: str, faithful: bool, seed: int, max_epochs: int | None = None) -> None:
    if Run(run_dir).complete:
        return  # done in an earlier call (run folders are written whole or not at all)
    skinlib.train(model, data, seed=seed, faithful=faithful, run_dir=run_dir, progress=False,
                  **settings_for(model, max_epochs))


def settings_for(model: str, max_epochs: int | None) -> dict:
    settings = dict(MODELS[model])
    if max_epochs:
        settings["epochs"] = min(settings["epochs"], max_epochs)
    return settings


def ablation_markdown(table: pd.DataFrame) -> str:
    """The HAM10000 table quoted in README.md: as published beside corrected, mean ± sd over folds."""
    lines = [
        "| preprocessing | model | ROC AUC, as published | ROC AUC, corrected | per fold | balanced accuracy | "
        "sensitivity | specificity | epochs |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for (prep, model), g in table.groupby(["preprocessing", "model"], sort=False):
        pub = g[g["setup"] == "as published"]
        cor = g[g["setup"] == "corrected"].iloc[0]
        published = f"{pub.test_auc_mean.iloc[0]:.3f} ± {pub.test_auc_sd.iloc[0]:.3f}" if len(pub) else "not run"
        lines.append(
            f"| {prep} | {model} | {published} | **{cor.test_auc_mean:.3f}** ± {cor.test_auc_sd:.3f} | "
            f"{cor.test_auc_per_run} | {cor.balanced_accuracy:.3f} | {cor.sensitivity:.3f} | "
            f"{cor.specificity:.3f} | {cor.epochs_run:.0f} |"
        )
    return "\n".join(lines) + "\n"


def external_markdown(isic: pd.DataFrame | None, mvb: pd.DataFrame | None, seeds: int) -> str:
    lines = []
    if isic is not None:
        r = isic.iloc[0]
        lines += [
            "| dataset | evaluation | images | malignant | test ROC AUC | per fold | balanced accuracy | sensitivity | specificity |",
            "|---|---|---:|---:|---:|---|---:|---:|---:|",
            f"| isic2020 | {r.runs}-fold cross-validation grouped by patient_id, duplicates merged | {r.n_images} | "
            f"{r.n_malignant} | **{r.test_auc_mean:.3f}** ± {r.test_auc_sd:.3f} | {r.test_auc_per_run} | "
            f"{r.balanced_accuracy:.3f} | {r.sensitivity:.3f} | {r.specificity:.3f} |",
        ]
    if mvb is not None:
        lines += [
            "" if lines else None,
            f"| mvb test images | images | malignant | test ROC AUC (mean ± sd over {seeds} seeds) | per seed | "
            "balanced accuracy | sensitivity | specificity |",
            "|---|---:|---:|---:|---|---:|---:|---:|",
        ]
        for _, r in mvb.iterrows():
            lines.append(
                f"| {r.test_set} | {r.n_images} | {r.n_malignant} | **{r.test_auc_mean:.3f}** ± {r.test_auc_sd:.3f} | "
                f"{r.test_auc_per_run} | {r.balanced_accuracy:.3f} | {r.sensitivity:.3f} | {r.specificity:.3f} |"
            )
    return "\n".join(line for line in lines if line is not None) + "\n"


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text), mode="w")


def count_pairs(name: str, pairs: pd.DataFrame, note: str = "") -> dict:
    kinds = pairs["kind"].value_counts()
    return {"pairs": name, "identical": int(kinds.get("identical", 0)), "near": int(kinds.get("near", 0)),
            "total": len(pairs), "of which": note}


def find_all_duplicates(args, cache: Path) -> tuple[dict, pd.DataFrame]:
    """Duplicate pairs of every dataset (cached signatures), and the counts table."""
    tables, pairs = load_datasets(args.data_root, ("ham10000", "isic2020", "mvb"), cache)
    counts = []
    if "ham10000" in pairs:
        ham, p = tables["ham10000"], pairs["ham10000"]
        lesion = dict(zip(ham["path"], ham["lesion_id"]))
        other = sum(lesion[a] != lesion[b] for a, b in zip(p["path_a"], p["path_b"]))
        counts.append(count_pairs("within HAM10000", p, f"{other} with different lesion_id"))
    if "isic2020" in pairs:
        isic, p = tables["isic2020"], pairs["isic2020"]
        patient = dict(zip(isic["path"], isic["group"]))
        other = sum(patient[a] != patient[b] for a, b in zip(p["path_a"], p["path_b"]))
        counts.append(count_pairs("within ISIC 2020", p, f"{other} with different patient_id"))
    if "mvb" in pairs:
        leaks = skinlib.check_leakage(tables["mvb"], pairs["mvb"])
        counts.append(count_pairs("within mvb", pairs["mvb"], f"{len(leaks)} between its train/ and test/ folders"))
    if "mvb" in tables and "ham10000" in tables:
        cross = skinlib.find_duplicates(tables["mvb"], tables["ham10000"], cache_dir=cache, progress=False)
        counts.append(count_pairs("mvb against HAM10000", cross,
                                  f"{cross['path_a'].nunique()} of {len(tables['mvb'])} mvb images have a HAM10000 copy"))
    return {"tables": tables, "pairs": pairs}, pd.DataFrame(counts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args = add_common_arguments(ap, ROOT).parse_args()
    ham_root = args.data_root / "ham10000"
    if not ham_root.is_dir():
        ap.error(f"{ham_root}: HAM10000 not found (expected HAM10000_metadata.csv and images/ there)")
    started = time.perf_counter()
    cache = args.out / "cache"

    found, dup_counts = find_all_duplicates(args, cache)
    write_text(args.tables / "duplicates.md", markdown_table(dup_counts))
    print("duplicates (results/duplicates.md):\n" + markdown_table(dup_counts), flush=True)
    ham, ham_pairs = found["tables"]["ham10000"], found["pairs"]["ham10000"]
    merged = skinlib.merge_groups(ham, ham_pairs)
    print(f"HAM10000: {len(ham)} images, {ham['label'].sum()} malignant, {ham['group'].nunique()} lesions, "
          f"{merged.nunique()} groups after merging duplicates", flush=True)

    cells = [(p, m, s) for p in PREPROCESSING for m in MODELS for s in SETUPS
             if s == "corrected" or p in PUBLISHED_ROWS]
    rows = []
    for prep, model, setup in tqdm(cells, desc="ablation", unit="cell"):
        run_dir = args.out / "ham10000" / run_name(prep, model, setup)
        skinlib.cross_validate(ham, PREPROCESSING[prep], model, folds=args.folds, seed=SPLIT_SEED,
                               duplicates=ham_pairs, val_size=0.1, run_dir=run_dir, cache_dir=cache, progress=False,
                               faithful=SETUPS[setup], **settings_for(model, args.max_epochs))
        for k in range(1, args.folds + 1):
            rows.append({"preprocessing": prep, "model": model, "setup": setup, "fold": k,
                         **run_metrics(fold_dir(run_dir, k))})
    runs = pd.DataFrame(rows)
    table = summarise(runs, ["preprocessing", "model", "setup"])
    write_text(args.tables / "ablation_runs.csv", runs.to_csv(index=False))
    write_text(args.tables / "ablation.csv", table.to_csv(index=False))
    write_text(args.tables / "ablation.md", markdown_table(table))

    corrected = table[table["setup"] == "corrected"]
    best_prep = corrected.groupby("preprocessing")["val_auc_mean"].mean().idxmax()
    print(f"best preprocessing by mean validation ROC AUC (v1 and v2, corrected): {best_prep}", flush=True)
    print(f"project default, Preprocess.default(): {DEFAULT}"
          + (" (the best measured)" if DEFAULT == best_prep else "; NOT the best measured: change the default"),
          flush=True)

    isic = external_isic(args, found, cache)
    mvb = external_mvb(args, found, cache)
    parts = [part for part in (isic, mvb) if part is not None]
    if parts:
        ext = pd.concat(parts, ignore_index=True)
        write_text(args.tables / "external.csv", ext.to_csv(index=False))
        write_text(args.tables / "external.md", markdown_table(ext))

    summary = "\n".join([markdown_table(dup_counts), ablation_markdown(table), external_markdown(isic, mvb, args.seeds)])
    write_text(args.tables / "summary.md", summary)
    publish_figures(args, table)
    minutes = (time.perf_counter() - started) / 60
    print(f"\nHAM10000, {args.folds}-fold cross-validation, mean ± sd over folds (results/summary.md):\n")
    print(summary)
    print(f"total time: {minutes:.1f} min", flush=True)
    return 0


def external_isic(args, found: dict, cache: Path) -> pd.DataFrame | None:
    """v2 with the default preprocessing on ISIC 2020: grouped cross-validation, duplicates merged."""
    if "isic2020" not in found["tables"]:
        print(f"{args.data_root / 'isic2020'}: not found, skipped", flush=True)
        return None
    df, pairs = found["tables"]["isic2020"], found["pairs"]["isic2020"]
    run_dir = args.out / "isic2020" / run_name(DEFAULT, "v2", "corrected")
    skinlib.cross_validate(df, PREPROCESSING[DEFAULT], "v2", folds=args.folds, seed=SPLIT_SEED, duplicates=pairs,
                           val_size=0.1, run_dir=run_dir, cache_dir=cache, progress=False,
                           **settings_for("v2", args.max_epochs))
    rows = [{"dataset": "isic2020", "test_set": "cross-validation", "fold": k, **run_metrics(fold_dir(run_dir, k))}
            for k in range(1, args.folds + 1)]
    out = summarise(pd.DataFrame(rows), ["dataset", "test_set"])
    out["n_images"], out["n_malignant"] = len(df), int(df["label"].sum())
    return out


def external_mvb(args, found: dict, cache: Path) -> pd.DataFrame | None:
    """v2 on mvb: trained on train/, tested on test/ as published and without the copies of training images."""
    if "mvb" not in found["tables"]:
        print(f"{args.data_root / 'mvb'}: not found, skipped", flush=True)
        return None
    # Its train/ folder (10% of it validating, grouped with its copies) and test/ folder.
    split, clean_test = source_split(found["tables"]["mvb"], found["pairs"]["mvb"], val_size=0.1, seed=SPLIT_SEED)
    data = skinlib.preprocess_dataset(split, PREPROCESSING[DEFAULT], cache_dir=cache, progress=False)
    rows = []
    for seed in range(args.seeds):
        run_dir = args.out / "mvb" / run_name(DEFAULT, "v2", "corrected", f"seed{seed}")
        run_one(run_dir, data, "v2", False, seed, args.max_epochs)
        rows.append({"dataset": "mvb", "test_set": "its test/ folder, as published", "seed": seed,
                     **run_metrics(run_dir)})
        rows.append({"dataset": "mvb", "test_set": "test/ without copies of train/ images", "seed": seed,
                     **run_metrics(run_dir, paths=clean_test)})
    runs = pd.DataFrame(rows)
    out = summarise(runs, ["dataset", "test_set"], unit="seed")
    firsts = runs.groupby("test_set", sort=False).first()
    out["n_images"] = out["test_set"].map(firsts["test_n"]).astype(int)
    out["n_malignant"] = out["test_set"].map(firsts["test_n_malignant"]).astype(int)
    return out


def publish_figures(args, table: pd.DataFrame) -> None:
    """The original README's four figures from the real runs, ROC curves and the ablation chart."""
    import matplotlib

    matplotlib.use("Agg")
    from skinlib import plots

    staging = args.out / "figures"
    staging.mkdir(parents=True, exist_ok=True)
    curves = {}
    for model, suffix in (("v1", ""), ("v2", "_2")):
        cell = args.out / "ham10000" / run_name(DEFAULT, model, "corrected")
        history = Run(fold_dir(cell, 1)).history()
        plots.plot_history(history, path=staging, suffix=suffix, metrics=("accuracy", "loss"),
                           baseline=float(table["majority_accuracy"].iloc[0]))
        # Out-of-fold predictions: every image once, scored by the model that did not train on it.
        curves[f"{model} ({DEFAULT}, corrected)"] = out_of_fold(cell, args.folds)
    title = f"ROC curve, HAM10000, out-of-fold predictions ({args.folds}-fold cross-validation)"
    plots.save_figure(plots.plot_roc(curves, title=title), staging / "roc.png")
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
    ax.set_ylabel("test ROC AUC (mean, sd over folds)")
    ax.set_ylim(0.3, 1.0)
    ax.set_title("HAM10000, cross-validation grouped by lesion, duplicates merged")
    ax.legend(fontsize=8, ncols=3)
    return fig


if __name__ == "__main__":
    sys.exit(main())
