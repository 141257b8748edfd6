"""Command line: ``python -m skinlib demo`` and ``python -m skinlib predict RUN_DIR IMAGE_OR_FOLDER...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    import skinlib
    from skinlib.config import RunConfig

    cfg = RunConfig.from_env()
    print(f"dataset: {cfg.data}")
    df = skinlib.load_dataset(cfg.data)
    df = skinlib.split_dataset(df, cfg.test_size, cfg.val_size, seed=cfg.seed)
    print(f"layout: {df.attrs['layout']}, {len(df)} images, {df['label'].sum()} malignant, "
          f"{df['group'].nunique()} groups; skipped {len(skinlib.skipped_files(df))}")
    print(df.groupby("fold")["label"].agg(images="size", malignant="sum").to_string())
    for name, config in (("seed", skinlib.Preprocess.seed()), ("default", skinlib.Preprocess.default())):
        result = skinlib.preprocess_dataset(df, config, cache_dir=cfg.run_dir / "cache", progress=False)
        print(f"{name}: {config}\n  -> x {result.x.shape} {result.x.dtype}, mean grey {result.x.mean():.1f}, "
              f"{'from cache' if result.from_cache else 'computed'} ({result.cache_path})")
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
    demo = sub.add_parser("demo", help="run the main job on the configured dataset (default: the built-in sample)")
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
