"""The audit of a HAM10000 cross-validation: what its ROC AUC hides, and its likely label errors.

    python scripts/audit_results.py --cv-dir runs/results/ham10000/resize-only-area__v2__corrected
                                    [--data-root ../shared/data] [--n-boot 200] [--seed 0] [--out DIR]

Reads the cross-validation folder (the ``run_dir`` of ``skinlib.cross_validate``: every image's
out-of-fold probability, each fold at its own threshold) and the HAM10000 table under
``--data-root``, then prints, as Markdown: the metrics per diagnosis (sensitivity or
specificity, ROC AUC against the other class), per age band, sex and body site, the screening
operating points, and how many images cleanlab flags as likely label errors, by diagnosis and
by how the diagnosis was confirmed (``dx_type``), with the top suspects. Nothing is trained and
nothing under the data folder is written. With ``--out``, the tables go there as CSV and the
figures as PNG.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import pandas as pd  # noqa: E402

import skinlib  # noqa: E402
from skinlib.audit import analyse_errors  # noqa: E402
from skinlib.plotting import plot_error_analysis  # noqa: E402
from skinlib._shared.files import atomic_write  # noqa: E402
from skinlib.audit import find_label_issues  # noqa: E402
from skinlib.plotting import plot_label_issues  # noqa: E402
from skinlib.plotting import save_figure  # noqa: E402
from skinlib.evaluation import markdown_table  # noqa: E402
from skinlib.runs import fold_dir  # noqa: E402


def write_csv(path: Path, table: pd.DataFrame, index: bool = False) -> None:
    atomic_write(path, lambda fh: table.to_csv(fh, index=index), mode="w")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cv-dir", type=Path, required=True, help="a cross_validate run_dir (fold1/, fold2/...)")
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--dataset", default="ham10000", help="the dataset folder under --data-root")
    ap.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples of the intervals (0: none)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the bootstraps")
    ap.add_argument("--top", type=int, default=12, help="how many suspects to list and show")
    ap.add_argument("--out", type=Path, default=None, help="write the tables (CSV) and figures (PNG) here")
    args = ap.parse_args(argv)
    if not fold_dir(args.cv_dir, 1).is_dir():
        ap.error(f"{args.cv_dir}: not a cross-validation folder (no fold1/ in it)")
    data = args.data_root / args.dataset
    if not data.is_dir():
        ap.error(f"{data}: dataset folder not found")

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # skipped files: load_dataset's own report
        table = skinlib.load_dataset(data)
    audit = analyse_errors(args.cv_dir, table, n_boot=args.n_boot, seed=args.seed)
    scored = audit.scored
    folds = scored["cv_fold"].nunique()
    print(f"# Audit of {args.cv_dir}\n\n{len(scored)} images scored out of fold ({folds} folds; "
          f"{int(scored['label'].sum())} malignant), {args.n_boot} bootstrap resamples, seed {args.seed}\n")
    if audit.diagnoses is not None:
        print("## Per diagnosis\n")
        print(markdown_table(audit.diagnoses.drop(columns=["against"])))
    print("## Per subgroup\n")
    print(markdown_table(audit.subgroups))
    print("## Operating points\n")
    print(markdown_table(audit.operating_points.reset_index()))
    analysed = time.perf_counter()

    issues = find_label_issues(args.cv_dir, table)
    flagged = issues[issues["flagged"]]
    print(f"## Likely label errors\n\n{len(flagged)} of {len(issues)} images flagged "
          f"(cleanlab, {issues.attrs['filter_by']}); by given label, diagnosis and confirmation:\n")
    keys = [c for c in ("given", "dx", "dx_type") if c in issues.columns]
    counts = issues.groupby(keys).agg(images=("flagged", "size"), flagged=("flagged", "sum")).reset_index()
    counts["share"] = counts["flagged"] / counts["images"]
    print(markdown_table(counts))
    shown = [c for c in ("rank", "path", "given", "dx", "dx_type", "probability", "quality", "cv_fold")
             if c in flagged.columns]
    top = flagged.head(args.top)[shown].assign(path=lambda t: t["path"].map(lambda p: Path(p).name))
    print(f"Top {len(top)} suspects:\n")
    print(markdown_table(top))
    print(f"(analysis {analysed - started:.0f} s, label issues {time.perf_counter() - analysed:.0f} s)")

    if args.out is not None:
        if audit.diagnoses is not None:
            write_csv(args.out / "diagnoses.csv", audit.diagnoses)
        write_csv(args.out / "subgroups.csv", audit.subgroups)
        write_csv(args.out / "operating_points.csv", audit.operating_points, index=True)
        write_csv(args.out / "label_issues.csv", issues)
        for name, fig in plot_error_analysis(audit).items():
            save_figure(fig, args.out / f"{name}.png")
        save_figure(plot_label_issues(issues, n=args.top), args.out / "label_issues.png")
        print(f"tables and figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
