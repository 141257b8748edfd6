"""Command line: ``python -m skinlib demo``, ``python -m skinlib predict RUN_DIR IMAGE_OR_FOLDER...`` and
``python -m skinlib audit DATASET --out DIR``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


NOTEBOOKS = ("01_preprocess", "02_train_v1", "03_train_v2", "04_compare", "05_train_v3", "06_audit")
#: The demo runs 05 before 04, so that the comparison it ends with includes run 3; the audit comes last.
DEMO_ORDER = ("01_preprocess", "02_train_v1", "03_train_v2", "05_train_v3", "04_compare", "06_audit")

# The demo's kernels talk to this process over unix domain sockets (ZeroMQ "ipc" transport) in a
# private temporary folder, not over localhost TCP ports: only processes allowed into that folder
# can reach them, and ipykernel does not print its "Kernel is running over TCP without encryption"
# warning. ZeroMQ's ipc transport is not dependable on Windows, so there the kernels stay on TCP.
KERNEL_TRANSPORT = "tcp" if os.name == "nt" else "ipc"


def _kernel_manager(runtime_dir: Path, kernel_name: str = "python3"):
    """A kernel manager for one notebook run, with its connection file (and sockets) in *runtime_dir*."""
    from jupyter_client.manager import AsyncKernelManager

    options = {"transport": KERNEL_TRANSPORT, "connection_file": str(runtime_dir / "kernel.json")}
    if KERNEL_TRANSPORT == "ipc":
        # Socket files are runtime_dir/kernel-<n>; an absolute path, since the kernel runs in the
        # notebook's folder. Unix socket paths are limited to ~100 characters: keep runtime_dir short.
        options["ip"] = str(runtime_dir / "kernel")
    return AsyncKernelManager(kernel_name=kernel_name, **options)


def _execute_notebook(nb, cwd: Path) -> None:
    """Execute every cell of *nb* (in place) in a fresh kernel working in *cwd*.

    Raises nbclient's CellExecutionError when a cell fails; the kernel is shut down and its
    temporary folder removed either way.
    """
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="skinlib-") as runtime:
        client = NotebookClient(nb, km=_kernel_manager(Path(runtime)), timeout=None, kernel_name="python3",
                                resources={"metadata": {"path": str(cwd)}})
        # nbclient leaves running a kernel whose manager it was given; cleanup_kc=True makes it shut
        # the kernel down (after a failing cell too) before its sockets' folder is removed.
        client.execute(cleanup_kc=True)


def _demo(args: argparse.Namespace) -> int:
    """Execute the notebooks (run 3 before the comparison), headless, and print the comparison."""
    import time

    import nbformat
    from nbclient.exceptions import CellExecutionError

    from skinlib.config import RunConfig, project_dir
    from skinlib._shared.files import atomic_write

    cfg = RunConfig.from_env()
    source = project_dir() / "notebooks"
    out_dir = cfg.run_dir / "notebooks"
    print(cfg.describe(), flush=True)
    for name in DEMO_ORDER:
        path = source / f"{name}.ipynb"
        if not path.is_file():
            print(f"error: {path} not found (the demo runs from a checkout of the project)", file=sys.stderr)
            return 2
        nb = nbformat.read(path, as_version=4)
        started = time.perf_counter()
        print(f"running {name} ...", end=" ", flush=True)
        try:
            _execute_notebook(nb, source)
        except CellExecutionError as exc:
            print("failed", flush=True)
            failed = out_dir / f"{name}.failed.ipynb"
            atomic_write(failed, lambda fh: nbformat.write(nb, fh), mode="w")
            print(f"error in {name}: {str(exc).strip().splitlines()[-1]}\n(executed notebook: {failed})", file=sys.stderr)
            return 1
        targets = [out_dir / f"{name}.ipynb"] + ([path] if args.update_notebooks else [])
        for target in targets:
            atomic_write(target, lambda fh: nbformat.write(nb, fh), mode="w")
        print(f"done in {time.perf_counter() - started:.0f} s", flush=True)
    print(demo_report(cfg))
    print(f"\nExecuted notebooks: {out_dir}\nFigures: {cfg.run_dir}/*.png")
    return 0


def demo_report(cfg) -> str:
    """The demo's closing text: the notebooks' runs compared on their test fold, and the conclusion.

    Computed from the run folders (:meth:`skinlib.RunConfig.trained_runs`, :func:`skinlib.compare`),
    not read from a file a notebook wrote.
    """
    from skinlib.evaluation import compare, conclusion

    table = compare(cfg.trained_runs())  # the runs the notebooks trained, evaluated on their test fold
    columns = ["roc_auc", "roc_auc_low", "roc_auc_high", "balanced_accuracy", "sensitivity", "specificity",
               "accuracy", "majority_accuracy"]
    text = (f"\nTest fold of {cfg.data.name} ({int(table['n'].iloc[0])} images):\n\n"
            f"{table[columns].round(3).to_string()}\n\n{conclusion(table).replace('**', '')}")
    return text + (SAMPLE_NOTE if _is_sample(cfg.data) else "")


#: What the demo says after its table on the built-in sample, whose figures rank nothing.
SAMPLE_NOTE = (
    "\n\nThe built-in sample is a smoke test: its images are drawn, not photographed, and its test fold"
    " is a few dozen of them, so the table above says that the notebooks run end to end, not which"
    " model is better; intervals this wide overlap. The figures on real dermoscopy images (HAM10000's"
    " lesion-grouped cross-validation, ISIC 2020, the malignant-vs-benign set) are in README.md"
    " and docs/results.md, with the commands that made them."
)


def _is_sample(data: Path) -> bool:
    """Whether ``data`` is a built-in sample folder (``data/sample-v<k>-...`` of the project)."""
    from skinlib.config import sample_dir

    return Path(data).resolve().parent == sample_dir(create=False).resolve().parent and \
        Path(data).name.startswith("sample-")


#: Columns of a metadata CSV that can name its images (matched on the file's stem or path).
IMAGE_KEYS = ("path", "image_id", "image_name", "file", "image")


def _metadata_table(csv: Path, files: list[Path]):
    """The images as a table with their metadata, matched by the CSV's image column.

    The matched rows are cleaned by :func:`skinlib.data.patient_metadata`: an age that
    is not a number is a ``ValueError`` naming the CSV, the image and the value.
    """
    import pandas as pd

    from skinlib.data import patient_metadata

    try:
        meta = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as exc:
        raise ValueError(f"{csv}: cannot read the metadata CSV ({exc})") from None
    key = next((c for c in IMAGE_KEYS if c in meta.columns), None)
    if key is None:
        raise ValueError(f"{csv}: no column naming the images; expected one of {', '.join(IMAGE_KEYS)}, "
                         f"found {', '.join(map(str, meta.columns))}")
    names = meta[key].astype(str)
    stems = names.map(lambda v: Path(v).stem)
    by_name = dict(zip(stems, meta.index))
    repeated = set(stems[stems.duplicated()])
    by_path = dict(zip(names.map(lambda v: str(Path(v).resolve())), meta.index))
    ambiguous = [str(f) for f in files if str(f.resolve()) not in by_path and f.stem in repeated]
    if ambiguous:
        raise ValueError(f"{csv}: several rows name {Path(ambiguous[0]).stem!r}; give full paths in a 'path' column")
    rows = [by_path.get(str(f.resolve()), by_name.get(f.stem)) for f in files]
    missing = [str(f) for f, r in zip(files, rows) if r is None]
    if missing:
        raise ValueError(f"{csv}: no row for {missing[0]}" + (f" and {len(missing) - 1} more images" if len(missing) > 1 else ""))
    # Only the rows of the images predicted are cleaned: a bad age elsewhere in the CSV is not their concern.
    table = patient_metadata(meta.loc[rows].reset_index(drop=True), source=csv, image_column=key)
    return table.assign(path=[str(f) for f in files])


def _out_problem(out: Path) -> str:
    """Why a CSV cannot be written at ``out`` ('' if it can), checked before any prediction.

    Missing folders are fine (they are created); a folder at ``out``, a regular file where
    a folder of the path should be, or a folder that cannot be written to is not.
    """
    if out.is_dir():
        return f"--out {out} is a folder; expected the path of the CSV file to write"
    for folder in out.parents:
        if folder.exists():
            if not folder.is_dir():
                return f"--out {out}: {folder} is a file, not a folder"
            if not os.access(folder, os.W_OK | os.X_OK):
                return f"--out {out}: cannot write in {folder} (permission denied)"
            break
    return ""


def _predict(args: argparse.Namespace) -> int:
    """Predict, print warnings for the images that failed; exit 0, 1 when no image was read, 2 on bad arguments."""
    import warnings

    from skinlib.data import IMAGE_EXTENSIONS
    from skinlib.models import image_files, predict
    from skinlib.runs import RunFolderError

    if args.out is not None and (problem := _out_problem(args.out)):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            files = image_files(args.images)
            if not files:
                print(f"error: no image files in {', '.join(args.images)} (looked for "
                      f"{', '.join(sorted(IMAGE_EXTENSIONS))}, in folders recursively)", file=sys.stderr)
                return 1
            images = files if args.metadata is None else _metadata_table(args.metadata, files)
            table = predict(args.run, images)
    except (RunFolderError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if args.out:
        from skinlib._shared.spreadsheet import write_csv

        try:  # a file for spreadsheets: text cells that would run as formulas are escaped
            write_csv(args.out, table)
        except OSError as exc:
            print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"wrote {len(table)} predictions to {args.out}", file=sys.stderr)
    else:
        table.to_csv(sys.stdout, index=False)
    failed = int((table["error"] != "").sum())
    if failed == len(table):
        print(f"error: none of the {len(table)} image(s) could be read (the warnings above say why)", file=sys.stderr)
        return 1
    return 0


def _audit(args: argparse.Namespace) -> int:
    """Audit a dataset and write its report; exit 0, or 2 for a bad dataset, run folder or --out."""
    from skinlib.audit import CHECKS, audit_dataset, check_runs
    from skinlib.data import load_dataset
    from skinlib.audit import check_report_dir, write_audit_report
    from skinlib._shared.folders import place_problem

    datasets = [args.dataset, *args.against]
    try:  # --out first, before any work: a file, a folder under a dataset, or one holding other files
        check_report_dir(args.out, datasets=datasets)
    except (OSError, ValueError) as exc:
        print(f"error: --out {exc}", file=sys.stderr)
        return 2
    if args.cache_dir is not None and (problem := place_problem(args.cache_dir, what="cache", roots=datasets)):
        print(f"error: --cache-dir {problem[1]}", file=sys.stderr)
        return 2
    step = "audit"
    try:
        options = _dataset_options(args)
        check_runs(args.runs)  # before the datasets are read
        tables = {}
        for path in datasets:
            if not os.path.exists(path):
                raise FileNotFoundError(f"dataset {path} not found")
            tables[path] = load_dataset(path, **options) if path == args.dataset else load_dataset(path)
        df = tables.pop(args.dataset)
        against = {}
        for path, table in tables.items():
            name = Path(path).name or str(path)
            against[name if name not in against else str(path)] = table
        skip = [name for name, check in CHECKS.items() if check.skip_help and getattr(args, f"no_{name}", False)]
        audit = audit_dataset(df, against=against, runs=args.runs, cache_dir=args.cache_dir, n_boot=args.n_boot,
                              skip=skip)
        step = "report"
        page = write_audit_report(audit, args.out)
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:  # DatasetError, RunFolderError are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a cache or DermaMNIST's PNG folder that cannot be written says which itself
        where = f"cannot write the report in {args.out}: " if step == "report" else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    print(audit.summary.to_string(index=False), file=sys.stderr)
    print(f"wrote the audit report to {page}")
    return 0


def _dataset_options(args: argparse.Namespace) -> dict:
    """The :func:`skinlib.load_dataset` options of the audited dataset, from ``--layout``, the CSV options
    and ``--png-dir``; a ``--metadata`` entry that is not ``NAME=COLUMN`` is a ``ValueError``.
    """
    options = {"layout": args.layout, "image_column": args.image_column, "label_column": args.label_column,
               "group_column": args.group_column, "malignant": args.malignant, "benign": args.benign,
               "missing_images": args.missing_images, "cache_dir": args.png_dir}
    if args.metadata is not None:
        pairs = [entry.partition("=") for entry in args.metadata]
        bad = [entry for entry, (name, sep, column) in zip(args.metadata, pairs) if not (name and sep and column)]
        if bad:
            raise ValueError(f"--metadata {bad[0]!r}: expected NAME=COLUMN (age=Age sex=Sex site=Location), "
                             "or --metadata alone for none")
        options["metadata"] = {name: column for name, _, column in pairs}
    return {name: value for name, value in options.items() if value is not None}


def _whole_number(text: str) -> int:
    """An argparse type: a whole number >= 0 (``--n-boot``)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """The options of :func:`skinlib.load_dataset`, so that every layout it reads can be audited from the shell."""
    parser.add_argument("--layout", help="force the dataset's layout when its folder matches two (or 'csv')")
    group = parser.add_argument_group(
        "a CSV of image names and labels (the csv layout; any of these implies it)",
        "as skinlib.data.load_csv: e.g. --image-column file --label-column dx --malignant mel bcc")
    group.add_argument("--image-column", help="the column of image file names (relative to the CSV's folder)")
    group.add_argument("--label-column", help="the column of labels (0/1, benign/malignant, or diagnoses)")
    group.add_argument("--group-column", help="the patient or lesion of each row (default: each image its own)")
    group.add_argument("--malignant", nargs="+", metavar="DIAGNOSIS", help="the diagnoses that are malignant")
    group.add_argument("--benign", nargs="+", metavar="DIAGNOSIS",
                       help="the diagnoses that are benign (default: every other one)")
    group.add_argument("--metadata", nargs="*", metavar="NAME=COLUMN",
                       help="the columns of age, sex, site, skin_type (default: the usual names); alone: none")
    group.add_argument("--missing-images", choices=["error", "skip"],
                       help="rows naming no file: an error (default) or skipped and listed")
    parser.add_argument("--png-dir", type=Path, metavar="DIR",
                        help="DermaMNIST: the folder its images are written to once as PNG files "
                             "(default: the project's data/dermamnist/)")


def _add_skip_options(parser: argparse.ArgumentParser) -> None:
    """``--no-<check>`` for each audit check that can be skipped (``--no-same-lesion``, ``--no-quality``)."""
    from skinlib.audit import CHECKS

    for name, check in CHECKS.items():
        if check.skip_help:
            parser.add_argument(f"--no-{name.replace('_', '-')}", dest=f"no_{name}", action="store_true",
                                help=check.skip_help)


def main(argv: list[str] | None = None) -> int:
    """Run one command of ``python -m skinlib`` (``demo``, ``predict``, ``audit``).

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program's name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0 on success, 1 when the work failed, 2 for bad arguments.
    """
    parser = argparse.ArgumentParser(prog="python -m skinlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="execute the notebooks on the configured dataset (default: the built-in sample)")
    demo.add_argument("--update-notebooks", action="store_true",
                      help="also store the executed notebooks, with their outputs, in notebooks/")
    demo.set_defaults(func=_demo)
    pred = sub.add_parser("predict", help="malignancy probabilities for images, with a trained run's model",
                          epilog="Exit status: 0 when images were predicted (images that could not be read are "
                                 "listed as warnings and in the error column), 1 when no image could be read or "
                                 "none was found, 2 for a bad run folder, --out path or --metadata CSV.")
    pred.add_argument("run", help="run folder written by skinlib.train (or the model file inside it)")
    pred.add_argument("images", nargs="+", help="image files or folders (searched recursively)")
    pred.add_argument("--out", type=Path, help="write the CSV to this file (missing folders are created) instead "
                                                "of printing it; text a spreadsheet would run as a formula "
                                                "(=, +, -, @) is written behind a '")
    pred.add_argument("--metadata", type=Path, metavar="CSV",
                      help="the images' age, sex and site, for a run trained with metadata: a CSV with an image "
                           "column (path, image_id or image_name) and HAM10000 or ISIC 2020 column names")
    pred.set_defaults(func=_predict)
    aud = sub.add_parser("audit", help="audit a dataset (copies, same-lesion pairs, leakage, label errors, image "
                                       "quality, error analysis) into a self-contained HTML report",
                         epilog="Exit status: 0 when the report was written, 2 for a bad dataset, run folder or "
                                "--out path.")
    aud.add_argument("dataset", help="the dataset folder (any layout load_dataset reads)")
    aud.add_argument("--against", nargs="+", default=[], metavar="OTHER",
                     help="other datasets to look for copies of the dataset's images in")
    aud.add_argument("--runs", nargs="+", default=[], metavar="RUN_OR_CV_DIR",
                     help="cross-validation folders (label errors and error analysis) or run folders (error "
                          "analysis) trained on the dataset")
    aud.add_argument("--out", type=Path, required=True, help="the report folder (report.html and the CSV files)")
    aud.add_argument("--cache-dir", type=Path, help="cache the image signatures here (the same audit again is "
                                                     "fast); never inside a dataset")
    aud.add_argument("--n-boot", type=_whole_number, default=200,
                     help="bootstrap resamples of the error analysis (0: none)")
    _add_dataset_options(aud)
    _add_skip_options(aud)
    aud.set_defaults(func=_audit)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
