"""Real-data results of run 3 (v3): cross-validation with and without metadata, other datasets,
an ablation of the recipe's levers, calibration and Grad-CAM figures.

    python scripts/results_v3.py [--data-root ../shared/data] [--folds 5] [--out runs/results]
                                 [--ablation-folds 1] [--skip-ablation] [--skip-external]
                                 [--only-folds K ... [--image-only]]

1. HAM10000, the same 5-fold cross-validation as ``scripts/results.py`` (grouped by lesion,
   duplicates merged, split seed 0, 10% of the training folds for validation): v3 on images
   only and v3 with age, sex and body site. The same folds as the v1/v2 ablation, so v2's row
   (default preprocessing, from ``scripts/results.py``'s runs) compares fold by fold. Test ROC
   AUC with and without test-time augmentation (the runs predict with it; "one view"
   re-predicts without), Brier score and expected calibration error (ECE) uncalibrated, after a
   temperature alone and after the runs' temperature and shift, training time per fold.
2. ISIC 2020 (5-fold cross-validation grouped by patient, duplicates merged; images only and with
   metadata) and mvb (trained on its train/ folder, 3 seeds; tested on its test/ folder as
   published and without the copies of training images; images only: mvb has no metadata).
3. The levers of v3's recipe, one at a time, on fold 1 of HAM10000 (``--ablation-folds``
   widens it): input size 48 and 96, width 16 and 48, reduce-on-plateau instead of cosine,
   no colour constancy, flips and turns only (no zoom, brightness, contrast). Test-time
   augmentation on and off is measured on every fold in part 1.

``--only-folds 1`` trains part 1's two runs on HAM10000's fold 1 only and stops: a fold-level
look (``scripts/audit_results.py`` reads a folder of some folds too) that the full call reuses.

Run folders go under ``--out`` (shared with ``scripts/results.py``); a finished run is reused,
so an interrupted call resumes. Writes ``results/v3.csv`` (one row per run),
``results/summary_v3.md`` (the tables README.md quotes under "Run 3 on real data"; a test
checks that they agree) and ``Images/roc_v3.png``, ``calibration_v3.png``, ``gradcam_v3.png``,
``loss_3.png``, ``auc_3.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import skinlib  # noqa: E402
from skinlib import Preprocess, plots  # noqa: E402
from skinlib._shared.files import atomic_write  # noqa: E402
from skinlib.evaluation import out_of_fold, outcome_examples, run_metrics, summarise  # noqa: E402
from skinlib.data import source_split  # noqa: E402
from _common import add_common_arguments, load_datasets, run_name  # noqa: E402
from skinlib.runs import Run, fold_dir  # noqa: E402

SPLIT_SEED = 0  # the split seed of scripts/results.py: the same folds
#: v2 with the default preprocessing, corrected: scripts/results.py's run folder under --out.
V2_DEFAULT = run_name("resize only (area)", "v2", "corrected")

V3 = Preprocess.for_model("v3")
METADATA = ["age", "sex", "site"]
#: The two v3 runs of part 1: name -> (run folder name, train() settings).
VARIANTS = {"v3, image only": ("v3__image", {}), "v3 + age, sex, site": ("v3__metadata", {"metadata": METADATA})}
#: Part 3: one change to the recipe each -> (preprocessing, train() settings).
LEVERS = {
    "input 48x48": (V3.with_params("resize", size=48), {}),
    "input 96x96": (V3.with_params("resize", size=96).replace(decode_min_side=192), {}),
    "width 16": (V3, {"model_options": {"width": 16}}),
    "width 48": (V3, {"model_options": {"width": 48}}),
    "reduce on plateau, not cosine": (V3, {"schedule": "plateau"}),
    "no colour constancy": (V3.without("color_constancy"), {}),
    "flips and turns only": (V3, {"augment": "dihedral"}),
    # Best epochs of the 25-epoch runs fall at 21-25: does a longer schedule keep improving?
    "40 epochs, not 25": (V3, {"epochs": 40}),
}


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text), mode="w")


def v3_row(run_dir: Path, table: pd.DataFrame) -> dict:
    """:func:`skinlib.evaluation.run_metrics` plus calibration, one-view AUC and training time of one run."""
    run = Run(run_dir)
    config = run.config
    if "shift" not in config:  # trained before runs fitted a shift: refit its calibration (model untouched)
        print(f"{run_dir}: calibration refitted with a shift ({skinlib.calibrate_run(run_dir)})", flush=True)
        config = run.config
    row = run_metrics(run)
    predictions = run.predictions()
    test, val = predictions.query("fold == 'test'"), predictions.query("fold == 'val'")
    before = skinlib.evaluate(test["label"], test["probability_uncalibrated"], n_boot=0)
    after = skinlib.evaluate(test["label"], test["probability"], n_boot=0)
    # The shift's share: a temperature alone, fitted on the same validation fold.
    temperature_only = skinlib.apply_temperature(
        test["probability_uncalibrated"], skinlib.fit_temperature(val["label"], val["probability_uncalibrated"]))
    # Runs store the paths they were given: match on the resolved path, so a run trained with
    # --data-root /abs/data is reused from ../data (and the other way round).
    by_file = table.set_index(table["path"].map(os.path.realpath))
    rows = by_file.loc[test["path"].map(os.path.realpath)].reset_index(drop=True)
    one_view = skinlib.predict(run_dir, rows, tta=False, progress=False)
    row.update(
        test_roc_auc_one_view=skinlib.evaluate(test["label"], one_view["probability"], n_boot=0)["roc_auc"],
        test_brier_before=before["brier"], test_ece_before=before["ece"],
        test_ece_temperature_only=skinlib.expected_calibration_error(test["label"], temperature_only),
        test_brier=after["brier"], test_ece=after["ece"],
        temperature=config["temperature"], best_epoch=config["best_epoch_found"],
        fit_minutes=config["fit_seconds"] / 60, parameters=config["parameters"],
    )
    return row


def summarise_v3(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    base = summarise(rows, keys)
    extra = rows.groupby(keys, sort=False).agg(
        one_view_auc=("test_roc_auc_one_view", "mean"), ece_before=("test_ece_before", "mean"),
        ece=("test_ece", "mean"), ece_temperature_only=("test_ece_temperature_only", "mean"), brier_before=("test_brier_before", "mean"), brier=("test_brier", "mean"),
        fit_minutes=("fit_minutes", "mean"), best_epoch=("best_epoch", "mean"), parameters=("parameters", "first"),
    ).reset_index()
    return base.merge(extra, on=keys)


def cross_validated(df, pairs, preprocess, out: Path, args, only_folds=None, **settings) -> list[dict]:
    folds = list(range(1, args.folds + 1)) if only_folds is None else list(only_folds)
    if args.max_epochs:  # the cap wins over a lever's own schedule length
        settings = {**settings, "epochs": min(settings.get("epochs", args.max_epochs), args.max_epochs)}
    skinlib.cross_validate(df, preprocess, "v3", folds=args.folds, seed=SPLIT_SEED, duplicates=pairs, val_size=0.1,
                           run_dir=out, cache_dir=args.out / "cache", progress=False, only_folds=only_folds,
                           **settings)
    return [{"fold": k, **v3_row(fold_dir(out, k), df)} for k in folds]


def ham_runs(args, ham, pairs, only_folds=None, variants=tuple(VARIANTS)) -> pd.DataFrame:
    rows = []
    for name in variants:
        folder, settings = VARIANTS[name]
        started = time.perf_counter()
        for row in cross_validated(ham, pairs, V3, args.out / "ham10000" / folder, args, only_folds=only_folds,
                                   **settings):
            rows.append({"dataset": "ham10000", "run": name, **row})
        print(f"HAM10000 {name}: {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return pd.DataFrame(rows)


def v2_reference(args) -> pd.DataFrame:
    """v2 with the default preprocessing, the same folds, from ``scripts/results.py``'s runs."""
    run_dir = args.out / "ham10000" / V2_DEFAULT
    rows = []
    for k in range(1, args.folds + 1):
        if Run(fold_dir(run_dir, k)).complete:
            rows.append({"dataset": "ham10000", "run": "v2, 28x28 grayscale", "fold": k,
                         **run_metrics(fold_dir(run_dir, k))})
    return pd.DataFrame(rows)


def external_runs(args, found) -> pd.DataFrame:
    rows = []
    if "isic2020" in found["tables"]:
        isic, pairs = found["tables"]["isic2020"], found["pairs"]["isic2020"]
        for name, (folder, settings) in VARIANTS.items():
            for row in cross_validated(isic, pairs, V3, args.out / "isic2020" / folder, args, **settings):
                rows.append({"dataset": "isic2020", "run": name, "test_set": "cross-validation", **row})
    if "mvb" in found["tables"]:
        split, clean_test = source_split(found["tables"]["mvb"], found["pairs"]["mvb"], val_size=0.1,
                                         seed=SPLIT_SEED)
        data = skinlib.preprocess_dataset(split, V3, cache_dir=args.out / "cache", progress=False)
        for seed in range(args.seeds):
            run_dir = args.out / "mvb" / f"v3__image__seed{seed}"
            if not Run(run_dir).complete:
                skinlib.train("v3", data, seed=seed, run_dir=run_dir, progress=False,
                              **({"epochs": args.max_epochs} if args.max_epochs else {}))
            row = v3_row(run_dir, split)
            rows.append({"dataset": "mvb", "run": "v3, image only", "test_set": "test/ as published", "fold": seed,
                         **row})
            rows.append({"dataset": "mvb", "run": "v3, image only", "test_set": "test/ without copies of train/",
                         "fold": seed, **run_metrics(run_dir, paths=clean_test)})
    return pd.DataFrame(rows)


def ablation_runs(args, ham, pairs) -> pd.DataFrame:
    rows = []
    folds = list(range(1, args.ablation_folds + 1))
    for lever, (preprocess, settings) in LEVERS.items():
        started = time.perf_counter()
        out = args.out / "ham10000" / "v3-ablation" / run_name(lever.replace(",", ""))
        for row in cross_validated(ham, pairs, preprocess, out, args, only_folds=folds, **settings):
            rows.append({"dataset": "ham10000", "run": lever, **row})
        print(f"lever {lever}: {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- tables


def fmt(mean: float, sd: float | None = None) -> str:
    return f"{mean:.3f}" + (f" ± {sd:.3f}" if sd is not None and np.isfinite(sd) else "")


def ham_markdown(table: pd.DataFrame, folds: int) -> str:
    lines = [
        f"| HAM10000, {folds}-fold CV | test ROC AUC | per fold | one view (no TTA) | balanced accuracy | sensitivity | "
        "specificity | ECE: uncalibrated, temperature only, temperature and shift | Brier | training per fold | epochs (best) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, r in table.iterrows():
        v3 = "fit_minutes" in r and np.isfinite(r.get("fit_minutes", np.nan))
        lines.append(
            f"| {r.run} | **{fmt(r.test_auc_mean, r.test_auc_sd)}** | {r.test_auc_per_run} | "
            f"{fmt(r.one_view_auc) if v3 else '–'} | {r.balanced_accuracy:.3f} | {r.sensitivity:.3f} | "
            f"{r.specificity:.3f} | {f'{r.ece_before:.3f}, {r.ece_temperature_only:.3f}, {r.ece:.3f}' if v3 else '–'} | "
            f"{fmt(r.brier) if v3 else '–'} | {f'{r.fit_minutes:.1f} min' if v3 else '–'} | "
            f"{r.epochs_run:.0f}{f' ({r.best_epoch:.0f})' if v3 else ''} |"
        )
    return "\n".join(lines) + "\n"


def external_markdown(table: pd.DataFrame, seeds: int) -> str:
    lines = [
        "| dataset | evaluation | run | test ROC AUC | per fold or seed | balanced accuracy | sensitivity | specificity |",
        "|---|---|---|---:|---|---:|---:|---:|",
    ]
    for _, r in table.iterrows():
        how = (f"{r.runs}-fold CV grouped by patient" if r.dataset == "isic2020"
               else f"{r.test_set}, {seeds} seed{'s' if seeds > 1 else ''}")
        lines.append(f"| {r.dataset} | {how} | {r.run} | **{fmt(r.test_auc_mean, r.test_auc_sd)}** | "
                     f"{r.test_auc_per_run} | {r.balanced_accuracy:.3f} | {r.sensitivity:.3f} | {r.specificity:.3f} |")
    return "\n".join(lines) + "\n"


def ablation_markdown(table: pd.DataFrame, reference: pd.DataFrame, folds: int) -> str:
    recipe = reference.set_index("fold").loc[range(1, folds + 1)]
    ref, parameters = recipe["test_roc_auc"], f"{int(recipe.parameters.iloc[0]):,}"
    lines = [
        f"| one change to v3's recipe (HAM10000, fold{'s 1-' + str(folds) if folds > 1 else ' 1'}) | parameters | "
        "test ROC AUC | change against the recipe | validation ROC AUC | training time |",
        "|---|---:|---:|---:|---:|---:|",
        f"| none: the recipe | {parameters} | {ref.mean():.3f} | | {recipe.val_roc_auc.mean():.3f} | "
        f"{recipe.fit_minutes.mean():.1f} min |",
    ]
    # Test-time augmentation off needs no training: the recipe's own models, predicting one view.
    one_view = recipe["test_roc_auc_one_view"]
    lines.append(f"| one view, no test-time augmentation | {parameters} | {one_view.mean():.3f} | "
                 f"{(one_view - ref).mean():+.3f} | | |")
    for lever, g in table.groupby("run", sort=False):
        delta = (g.set_index("fold")["test_roc_auc"] - ref).dropna().mean()
        lines.append(f"| {lever} | {int(g.parameters.iloc[0]):,} | {g.test_roc_auc.mean():.3f} | {delta:+.3f} | "
                     f"{g.val_roc_auc.mean():.3f} | {g.fit_minutes.mean():.1f} min |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- figures


def publish_figures(args, ham: pd.DataFrame) -> None:
    image_run, v2_run = args.out / "ham10000" / "v3__image", args.out / "ham10000" / V2_DEFAULT
    curves = {name: out_of_fold(args.out / "ham10000" / folder, args.folds) for name, (folder, _) in VARIANTS.items()}
    if all(Run(fold_dir(v2_run, k)).complete for k in range(1, args.folds + 1)):
        curves = {"v2, 28x28 grayscale": out_of_fold(v2_run, args.folds), **curves}
    fig = plots.plot_roc(curves)
    fig.axes[0].set_title("HAM10000, out-of-fold test predictions")
    plots.save_figure(fig, args.images / "roc_v3.png")
    y, before = out_of_fold(image_run, args.folds, "probability_uncalibrated")
    _, after = out_of_fold(image_run, args.folds)
    plots.save_figure(plots.plot_calibration(y, {"before": before, "after calibration": after},
                                             title="v3 on HAM10000, out-of-fold"), args.images / "calibration_v3.png")
    fold1 = Run(fold_dir(image_run, 1))
    plots.plot_history(fold1.history(), path=args.images, metrics=("loss", "auc"), suffix="_3")
    shown = outcome_examples(fold1.predictions("test"), fold1.threshold)
    plots.save_figure(plots.plot_gradcam(fold1.path, shown["path"].tolist(), titles=shown["case"].tolist()),
                      args.images / "gradcam_v3.png")


def main() -> int:
    ap = add_common_arguments(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter), ROOT)
    ap.add_argument("--ablation-folds", type=int, default=1, help="HAM10000 folds each lever is measured on")
    ap.add_argument("--skip-ablation", action="store_true")
    ap.add_argument("--skip-external", action="store_true")
    ap.add_argument("--only-folds", type=int, nargs="+", metavar="K",
                    help="train part 1's runs on these HAM10000 folds only, print them and stop (no tables or "
                         "figures are written; a later full call reuses the runs)")
    ap.add_argument("--image-only", action="store_true", help="with --only-folds: the image-only run alone")
    args = ap.parse_args()
    if args.max_epochs:  # a quick check never lands in (or reuses) the real runs, tables or figures
        args.out = args.out / f"max-epochs-{args.max_epochs}"
        args.tables, args.images = args.out / "results", args.out / "Images"
    if not (args.data_root / "ham10000").is_dir():
        ap.error(f"{args.data_root / 'ham10000'}: HAM10000 not found")
    started = time.perf_counter()
    tables, pairs = load_datasets(args.data_root, ("ham10000", "isic2020", "mvb"), args.out / "cache")
    found = {"tables": tables, "pairs": pairs}
    ham, pairs = found["tables"]["ham10000"], found["pairs"]["ham10000"]

    if args.only_folds:
        rows = ham_runs(args, ham, pairs, only_folds=args.only_folds,
                        variants=["v3, image only"] if args.image_only else tuple(VARIANTS))
        print(rows[["run", "fold", "test_roc_auc", "test_balanced_accuracy", "fit_minutes"]].to_string(index=False))
        return 0
    runs = [ham_runs(args, ham, pairs)]
    ham_table = summarise_v3(runs[0], ["dataset", "run"])
    v2 = v2_reference(args)
    if len(v2) == args.folds:
        ham_table = pd.concat([summarise(v2, ["dataset", "run"]), ham_table], ignore_index=True)
    parts = [ham_markdown(ham_table, args.folds)]
    if not args.skip_external:
        external = external_runs(args, found)
        if len(external):
            runs.append(external)
            parts.append(external_markdown(summarise(external, ["dataset", "run", "test_set"]), args.seeds))
    if not args.skip_ablation:
        ablation = ablation_runs(args, ham, pairs)
        runs.append(ablation)
        reference = runs[0][runs[0]["run"] == "v3, image only"]
        parts.append(ablation_markdown(ablation, reference, args.ablation_folds))
    write_text(args.tables / "v3.csv", pd.concat(runs, ignore_index=True).to_csv(index=False))
    summary = "\n".join(parts)
    write_text(args.tables / "summary_v3.md", summary)
    publish_figures(args, ham)
    print("\n" + summary)
    print(f"total time: {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
