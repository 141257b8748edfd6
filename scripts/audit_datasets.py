"""The audit of the three real datasets, and what its findings change in the results.

    python scripts/audit_datasets.py [--data-root ../shared/data] [--out runs/results]
                                     [--reports runs/audit-reports] [--tables results] [--seeds 3]
                                     [--mvb-models v2 v3] [--n-boot 200]

1. Each dataset folder under ``--data-root`` (ham10000, isic2020, mvb) audited as
   ``python -m skinlib audit`` does (``skinlib.audit.audit_dataset``): copies, same-lesion
   pairs, the leakage of its own train/ and test/ split, label suspects from a grouped v2
   cross-validation (default preprocessing, corrected; HAM10000's and ISIC 2020's are
   ``scripts/results.py``'s run folders under ``--out``, trained here when missing; mvb's is
   trained here), image quality, and the error analysis of that cross-validation. mvb is also
   searched against HAM10000. A ``report.html`` and its CSVs per dataset under ``--reports``.
2. HAM10000, v2 on the five grouped folds of ``scripts/results.py`` (split seed 0, copies
   merged), which are also v3's folds in ``scripts/results_v3.py``:
   - the test images of those folds with a same-lesion photograph under another ``lesion_id``
     on their fold's training side, and the ROC AUC of the folds without them;
   - the cross-validation with the same-lesion pairs merged into the groups (other folds);
   - the cross-validation without the label suspects among the training and validation images
     (``cross_validate(exclude_from_training=...)``): each fold tests the same images.
3. mvb, trained on its train/ folder (``--seeds`` seeds each of ``--mvb-models``; the run
   folders of ``scripts/results.py`` and ``scripts/results_v3.py`` are reused): tested on
   test/ as published, without copies of train/ images, and without copies and same-lesion
   photographs of train/ images.

A finished run is reused, so an interrupted call resumes. Writes ``results/audit.md`` (the
tables ``docs/audit.md`` quotes; a test checks that they agree) and ``results/audit.csv``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import skinlib  # noqa: E402
from skinlib import Preprocess  # noqa: E402
from skinlib.audit import audit_dataset  # noqa: E402
from skinlib._shared.files import atomic_write  # noqa: E402
from skinlib.data import drop_leaked  # noqa: E402
from skinlib.models import RECIPES  # noqa: E402
from skinlib.audit import write_audit_report  # noqa: E402
from skinlib.evaluation import markdown_table, run_metrics  # noqa: E402
from skinlib.data import source_split  # noqa: E402
from _common import run_name  # noqa: E402
from skinlib.runs import Run, fold_dir  # noqa: E402
from skinlib.data import merge_pairs  # noqa: E402

SPLIT_SEED = 0  # scripts/results.py's: the same folds
DEFAULT = Preprocess.default()
#: v2's published epochs and batch size, stopping early after 10 epochs without progress (scripts/results.py).
V2 = dict(epochs=RECIPES["v2"]["epochs"], batch_size=RECIPES["v2"]["batch_size"], early_stopping=10)
#: The cross-validation folders of scripts/results.py under --out, and this script's own.
CV_FOLDER = {"ham10000": run_name("resize only (area)", "v2", "corrected"),
             "isic2020": run_name("resize only (area)", "v2", "corrected"),
             "mvb": "cv__" + run_name("resize only (area)", "v2", "corrected")}
#: The mvb run folders (per seed) of scripts/results.py and scripts/results_v3.py.
MVB_RUN = {"v2": lambda seed: run_name("resize only (area)", "v2", "corrected", f"seed{seed}"),
           "v3": lambda seed: f"v3__image__seed{seed}"}
DATASETS = ("ham10000", "isic2020", "mvb")


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text), mode="w")


def v2_cross_validation(df, pairs, run_dir: Path, args, **options) -> pd.DataFrame:
    return skinlib.cross_validate(df, DEFAULT, "v2", folds=5, seed=SPLIT_SEED, duplicates=pairs, val_size=0.1,
                                  run_dir=run_dir, cache_dir=args.out / "cache", progress=False, **options, **V2)


def within(pairs: pd.DataFrame | None) -> pd.DataFrame:
    """The pairs inside the audited dataset (not those against another)."""
    if pairs is None:
        return pd.DataFrame(columns=["path_a", "path_b", "kind"])
    return pairs[pairs["against"] == ""].drop(columns="against").reset_index(drop=True)


def audit_all(args, tables: dict) -> dict:
    """Part 1: each dataset's audit, its report written under --reports."""
    audits = {}
    for name, df in tables.items():
        started = time.perf_counter()
        copies = skinlib.find_duplicates(df, cache_dir=args.out / "cache", progress=False)
        cv_dir = args.out / name / CV_FOLDER[name]
        v2_cross_validation(df, copies, cv_dir, args)  # reused when scripts/results.py ran it
        against = {"ham10000": tables["ham10000"]} if name == "mvb" and "ham10000" in tables else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the report lists unreadable files
            audit = audit_dataset(df, against=against, runs=[cv_dir], name=name, cache_dir=args.out / "cache",
                                  progress=False, n_boot=args.n_boot, seed=SPLIT_SEED)
        page = write_audit_report(audit, args.reports / name)
        audits[name] = audit
        print(f"{name}: audited in {(time.perf_counter() - started) / 60:.1f} min, report {page}", flush=True)
    return audits


def part_checks(audit) -> pd.Series:
    """The summary's check names, with the label-issue row named for what it is here."""
    return audit.summary["check"].str.replace(r"^label issues of .*", "label suspects (v2 cross-validation)",
                                              regex=True)


def summary_markdown(audits: dict) -> str:
    """The counts per check and issue kind, one column per dataset, in the audits' own order."""
    parts = {}
    for name, audit in audits.items():
        part = audit.summary.assign(check=part_checks(audit))
        parts[name] = part.set_index(["check", "issue"])["count"]
    # Rows in the order of the audit with the most checks, then any others in their order.
    keys = []
    for name in sorted(parts, key=lambda n: -len(parts[n])):
        keys += [k for k in parts[name].index if k not in keys]
    table = pd.DataFrame(index=pd.MultiIndex.from_tuples(keys, names=["check", "issue"]))
    ran_everywhere = table.index.get_level_values("check").isin(["copies", "same lesion"])
    for name, counts in parts.items():
        counts = counts.reindex(table.index)
        counts[ran_everywhere & counts.isna().to_numpy()] = 0  # searched, none found: not a row of its summary
        table[name] = counts.map(lambda v: "–" if pd.isna(v) else f"{int(v):,}")  # –: not applicable
    return markdown_table(table.reset_index())


def suspects_by_confirmation(audit) -> pd.DataFrame:
    """HAM10000's label suspects per given label and ``dx_type``: histopathology against the rest."""
    issues = audit.label_issues
    confirmed = np.where(issues["dx_type"].astype(str) == "histo", "histopathology", "follow-up, consensus, confocal")
    out = issues.assign(confirmation=confirmed).groupby(["given", "confirmation"])["flagged"].agg(["size", "sum"])
    out = out.rename(columns={"size": "images", "sum": "flagged"}).reset_index()
    out["share flagged"] = (out["flagged"] / out["images"]).map("{:.1%}".format)
    return out


def fold_rows(run_dir: Path, name: str, paths: set[str] | None = None) -> list[dict]:
    return [{"variant": name, "fold": k, **run_metrics(fold_dir(run_dir, k), paths=paths)} for k in range(1, 6)]


def ham_variants(args, ham: pd.DataFrame, audit) -> tuple[pd.DataFrame, dict]:
    """Part 2: today's folds, their same-lesion leaks, merged groups, and training without suspects."""
    copies = within(audit.copies)
    same = within(audit.same_lesion)
    lesion = dict(zip(ham["path"].map(os.path.realpath), ham["lesion_id"]))
    real = lambda s: s.map(os.path.realpath)  # noqa: E731
    other_id = same[[lesion[a] != lesion[b] for a, b in zip(real(same["path_a"]), real(same["path_b"]))]]
    base_dir = args.out / "ham10000" / CV_FOLDER["ham10000"]
    # Each image's test fold, from the runs themselves (each fold's run tests its fold's images).
    fold_of = {os.path.realpath(p): k for k in range(1, 6)
               for p in Run(fold_dir(base_dir, k)).predictions("test")["path"]}
    crossing = other_id[[fold_of[a] != fold_of[b] for a, b in zip(real(other_id["path_a"]), real(other_id["path_b"]))]]
    leaked = set(real(crossing["path_a"])) | set(real(crossing["path_b"]))
    kept = set(fold_of) - leaked

    rows = fold_rows(base_dir, "today's folds (lesion_id, copies merged)")
    rows += fold_rows(base_dir, "the same runs, without test images with a same-lesion photograph in training", kept)
    merged_dir = args.out / "ham10000" / (CV_FOLDER["ham10000"] + "__same-lesion-groups")
    v2_cross_validation(ham, merge_pairs(copies, same), merged_dir, args)
    rows += fold_rows(merged_dir, "same-lesion pairs merged into the groups (new folds)")
    issues = audit.label_issues
    suspects = issues.loc[issues["flagged"], "path"]
    clean_dir = args.out / "ham10000" / (CV_FOLDER["ham10000"] + "__without-suspects")
    v2_cross_validation(ham, copies, clean_dir, args, exclude_from_training=suspects)
    rows += fold_rows(clean_dir, "today's folds, label suspects left out of training and validation")
    facts = {"same-lesion pairs": len(same), "of two lesion_ids": len(other_id), "crossing": len(crossing),
             "test images leaked": len(leaked), "suspects": len(suspects)}
    return pd.DataFrame(rows), facts


def mvb_variants(args, mvb: pd.DataFrame, audit) -> pd.DataFrame:
    """Part 3: mvb's test/ folder as published, without copies, without copies and same-lesion photographs."""
    copies, same = within(audit.copies), within(audit.same_lesion)
    split, no_copies = source_split(mvb, copies, val_size=0.1, seed=SPLIT_SEED)
    clean = drop_leaked(mvb, merge_pairs(copies, same))
    no_lesion = set(clean.loc[clean["source_split"] == "test", "path"])
    tests = {"test/ as published": None, "without copies of train/ images": no_copies,
             "without copies or same-lesion photographs of train/ images": no_lesion}
    rows = []
    for model in args.mvb_models:
        data = skinlib.preprocess_dataset(split, Preprocess.for_model(model), cache_dir=args.out / "cache",
                                          progress=False)
        for seed in range(args.seeds):
            run_dir = args.out / "mvb" / MVB_RUN[model](seed)
            if not Run(run_dir).complete:
                settings = V2 if model == "v2" else {}
                skinlib.train(model, data, seed=seed, run_dir=run_dir, progress=False, **settings)
            for test_set, paths in tests.items():
                rows.append({"model": model, "test_set": test_set, "seed": seed,
                             **run_metrics(run_dir, folds=("test",), paths=paths)})
    return pd.DataFrame(rows)


def spread_markdown(rows: pd.DataFrame, keys: list[str], unit: str) -> str:
    """ROC AUC mean ± sd, per fold or seed, balanced accuracy, sensitivity, specificity, test images."""
    out = []
    for key, part in rows.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        auc = part["test_roc_auc"]
        out.append({**dict(zip(keys, key)), "test ROC AUC": f"**{auc.mean():.3f} ± {auc.std(ddof=1):.3f}**",
                    f"per {unit}": ", ".join(f"{v:.3f}" for v in auc),
                    "balanced accuracy": f"{part['test_balanced_accuracy'].mean():.3f}",
                    "sensitivity": f"{part['test_sensitivity'].mean():.3f}",
                    "specificity": f"{part['test_specificity'].mean():.3f}",
                    "test images": f"{int(part['test_n'].sum() if unit == 'fold' else part['test_n'].iloc[0]):,}"})
    return markdown_table(pd.DataFrame(out))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "results", help="run folders (scripts/results.py's)")
    ap.add_argument("--reports", type=Path, default=ROOT / "runs" / "audit-reports")
    ap.add_argument("--tables", type=Path, default=ROOT / "results")
    ap.add_argument("--seeds", type=int, default=3, help="training seeds of the mvb runs")
    ap.add_argument("--mvb-models", nargs="+", default=["v2", "v3"], choices=sorted(MVB_RUN))
    ap.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples of the error analyses")
    args = ap.parse_args(argv)
    tables = {n: skinlib.load_dataset(args.data_root / n) for n in DATASETS if (args.data_root / n).is_dir()}
    if "ham10000" not in tables:
        ap.error(f"{args.data_root / 'ham10000'}: HAM10000 not found")
    started = time.perf_counter()
    audits = audit_all(args, tables)
    parts = ["## The audit of each dataset (`python scripts/audit_datasets.py`)\n", summary_markdown(audits)]
    ham = audits["ham10000"]
    parts += ["\n## HAM10000's label suspects by given label and how the diagnosis was confirmed\n",
              markdown_table(suspects_by_confirmation(ham))]
    ham_rows, facts = ham_variants(args, tables["ham10000"], ham)
    parts += [f"\n## HAM10000, v2, 5 grouped folds: same-lesion pairs and label suspects\n\n"
              f"{facts['same-lesion pairs']:,} same-lesion pairs beyond the copies, {facts['of two lesion_ids']} of "
              f"them of two `lesion_id`s; {facts['crossing']} of those cross today's folds, giving "
              f"{facts['test images leaked']} test images a same-lesion photograph on their training side. "
              f"{facts['suspects']} label suspects.\n", spread_markdown(ham_rows, ["variant"], "fold")]
    csv = [ham_rows.assign(dataset="ham10000")]
    if "mvb" in audits:
        mvb_rows = mvb_variants(args, tables["mvb"], audits["mvb"])
        parts += ["\n## mvb: trained on train/, tested on test/\n",
                  spread_markdown(mvb_rows, ["model", "test_set"], "seed")]
        csv.append(mvb_rows.assign(dataset="mvb"))
    write_text(args.tables / "audit.md", "\n".join(parts) + "\n")
    write_text(args.tables / "audit.csv", pd.concat(csv, ignore_index=True).to_csv(index=False))
    print("\n".join(parts), flush=True)
    print(f"done in {(time.perf_counter() - started) / 60:.1f} min; wrote {args.tables / 'audit.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
