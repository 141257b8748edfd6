"""Command line: ``python -m skinlib demo`` and ``python -m skinlib predict RUN_DIR IMAGE_OR_FOLDER...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


NOTEBOOKS = ("01_preprocess", "02_train_v1", "03_train_v2", "04_compare")


def _demo(args: argparse.Namespace) -> int:
    """Execute the four notebooks in order, headless, and print the comparison."""
    import time

    import nbformat
    import pandas as pd
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from skinlib.config import RunConfig, project_dir
    from skinlib.evaluate import conclusion
    from skinlib.preprocess import atomic_write

    cfg = RunConfig.from_env()
    source = project_dir() / "notebooks"
    out_dir = cfg.run_dir / "notebooks"
    print(cfg.describe(), flush=True)
    for name in NOTEBOOKS:
        path = source / f"{name}.ipynb"
        if not path.is_file():
            print(f"error: {path} not found (the demo runs from a checkout of the project)", file=sys.stderr)
            return 2
        nb = nbformat.read(path, as_version=4)
        started = time.perf_counter()
        print(f"running {name} ...", end=" ", flush=True)
        client = NotebookClient(nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(source)}})
        try:
            client.execute()
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
    table = pd.read_csv(cfg.run_dir / "comparison.csv", index_col="run")
    columns = ["roc_auc", "roc_auc_low", "roc_auc_high", "balanced_accuracy", "sensitivity", "specificity",
               "accuracy", "majority_accuracy"]
    print(f"\nTest fold of {cfg.data.name} ({int(table['n'].iloc[0])} images):\n")
    print(table[columns].round(3).to_string())
    print("\n" + conclusion(table).replace("**", ""))
    print(f"\nExecuted notebooks: {out_dir}\nFigures: {cfg.run_dir}/*.png")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import warnings

    from skinlib.training import RunFolderError, predict

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = predict(args.run, args.images)
    except (RunFolderError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if args.out:
        from skinlib.preprocess import atomic_write

        atomic_write(args.out, lambda fh: table.to_csv(fh, index=False), mode="w")
        print(f"wrote {len(table)} predictions to {args.out}", file=sys.stderr)
    else:
        table.to_csv(sys.stdout, index=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skinlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="execute the four notebooks on the configured dataset (default: the built-in sample)")
    demo.add_argument("--update-notebooks", action="store_true",
                      help="also store the executed notebooks, with their outputs, in notebooks/")
    demo.set_defaults(func=_demo)
    pred = sub.add_parser("predict", help="malignancy probabilities for images, with a trained run's model")
    pred.add_argument("run", help="run folder written by skinlib.train (or its model.keras)")
    pred.add_argument("images", nargs="+", help="image files or folders (searched recursively)")
    pred.add_argument("--out", type=Path, help="write a CSV here instead of printing it")
    pred.set_defaults(func=_predict)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
