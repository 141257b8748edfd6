"""One place that configures a run: dataset, output folder, epochs, batch sizes, seed.

Every notebook starts with ``cfg = RunConfig.from_env()``. Environment variables
override the defaults, so the same notebooks run on the built-in sample, in CI
with a quick profile, or on a real dataset:

=====================  ==================================================
``SKINLIB_DATA``       dataset folder (default: the built-in sample)
``SKINLIB_RUN``        output folder for caches, models, figures
``SKINLIB_EPOCHS_V1``  epochs of run 1 (default 10, the original)
``SKINLIB_EPOCHS_V2``  epochs of run 2 (default 100, the original)
``SKINLIB_EPOCHS_V3``  epochs of run 3 (default: its recipe, 25)
``SKINLIB_SEED``       seed of the split, weights and augmentation (default 0)
``SKINLIB_PROFILE``    ``quick``: few epochs, for CI and a first look
=====================  ==================================================
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from skinlib._shared.paths import project_dir
from skinlib.models import RECIPES

if TYPE_CHECKING:
    import pandas as pd

    from skinlib.preprocessing import Preprocess

__all__ = ["RunConfig", "project_dir", "sample_dir", "NOTEBOOK_RUNS"]

#: The runs the notebooks train, as the comparison names them: (folder in the run
#: folder, the notebook that trains it, whether the comparison needs it).
NOTEBOOK_RUNS: dict[str, tuple[str, str, bool]] = {
    "v1 corrected": ("v1", "02_train_v1", True),
    "v1 as published": ("v1_published", "02_train_v1", True),
    "v2 corrected": ("v2", "03_train_v2", True),
    "v2 as published": ("v2_published", "03_train_v2", True),
    "v3": ("v3", "05_train_v3", False),
    "v3 + metadata": ("v3_metadata", "05_train_v3", False),
}

SAMPLE_SIZE = 200
SAMPLE_SEED = 0
#: Bump when make_sample draws differently, so that a sample made by an older
#: version is not mistaken for the current one.
SAMPLE_VERSION = 4


def sample_dir(create: bool = True) -> Path:
    """The built-in synthetic sample dataset, generated on first use (git-ignored).

    Parameters
    ----------
    create : bool
        Write the sample (:func:`skinlib.data.make_sample`: ``SAMPLE_SIZE`` images,
        seed ``SAMPLE_SEED``) when its folder does not exist yet (default ``True``);
        ``False`` only gives the path. A folder another process made meanwhile is
        kept as it is.

    Returns
    -------
    pathlib.Path
        ``data/sample-v<SAMPLE_VERSION>-n<SAMPLE_SIZE>-seed<SAMPLE_SEED>`` under
        :func:`project_dir` (``data/sample-v4-n200-seed0``), an ISIC 2020 layout folder;
        it may not exist when ``create`` is false.
    """
    from skinlib.data import make_sample

    path = project_dir() / "data" / f"sample-v{SAMPLE_VERSION}-n{SAMPLE_SIZE}-seed{SAMPLE_SEED}"
    if create and not path.exists():
        try:
            make_sample(path, n=SAMPLE_SIZE, seed=SAMPLE_SEED)
        except FileExistsError:  # another process made it meanwhile
            pass
    return path


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r}: expected a whole number") from None


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Settings of one run. Build it with :meth:`from_env`; change it with ``dataclasses.replace``.

    A frozen dataclass: the fields below are its constructor's parameters and its
    attributes. The defaults given here are the dataclass's; :meth:`from_env` fills
    ``data``, ``run_dir``, ``seed``, the epochs and ``profile`` from the ``SKINLIB_*``
    environment variables first.

    Parameters
    ----------
    data : pathlib.Path
        The dataset folder the notebooks load (:meth:`from_env`: ``SKINLIB_DATA``, else
        the built-in sample, :func:`sample_dir`).
    run_dir : pathlib.Path
        The output folder: the prepared table, caches, run folders and figures
        (:meth:`from_env`: ``SKINLIB_RUN``, else ``runs/<name>`` in the project, where
        ``<name>`` is ``sample`` or the dataset folder's name, plus ``-quick`` for the
        quick profile).
    seed : int
        Seed of the split, the weights and the augmentation (default 0;
        ``SKINLIB_SEED``).
    epochs_v1 : int
        Epochs of run 1 (default ``RECIPES["v1"]["epochs"]``, 10, as published;
        ``SKINLIB_EPOCHS_V1``, 3 in the quick profile).
    batch_v1 : int
        Batch size of run 1 (default ``RECIPES["v1"]["batch_size"]``, 128).
    epochs_v2 : int
        Epochs of run 2 (default ``RECIPES["v2"]["epochs"]``, 100, as published;
        ``SKINLIB_EPOCHS_V2``, 5 in the quick profile).
    batch_v2 : int
        Batch size of run 2 (default ``RECIPES["v2"]["batch_size"]``, 32).
    epochs_v3 : int
        Epochs of run 3 (default ``RECIPES["v3"]["epochs"]``, 25; ``SKINLIB_EPOCHS_V3``,
        2 in the quick profile).
    test_size : float
        Share of the images in the test fold, for :func:`skinlib.split_dataset`
        (default 0.2).
    val_size : float
        Share of the images in the validation fold, for :func:`skinlib.split_dataset`
        (default 0.1).
    profile : {"full", "quick"}
        ``"quick"``: few epochs, for CI and a first look (default ``"full"``;
        ``SKINLIB_PROFILE``).
    """

    data: Path
    run_dir: Path
    seed: int = 0
    epochs_v1: int = RECIPES["v1"]["epochs"]
    batch_v1: int = RECIPES["v1"]["batch_size"]
    epochs_v2: int = RECIPES["v2"]["epochs"]
    batch_v2: int = RECIPES["v2"]["batch_size"]
    epochs_v3: int = RECIPES["v3"]["epochs"]
    test_size: float = 0.2
    val_size: float = 0.1
    profile: str = "full"

    @classmethod
    def from_env(cls, **overrides) -> "RunConfig":
        """Defaults, then ``SKINLIB_*`` environment variables, then ``overrides``.

        Parameters
        ----------
        **overrides
            Field values that replace the defaults and the environment's, e.g.
            ``seed=1`` or ``data=Path("data/ham10000")``.

        Returns
        -------
        RunConfig

        Raises
        ------
        ValueError
            When ``SKINLIB_PROFILE`` is neither ``full`` nor ``quick``, or a
            ``SKINLIB_SEED`` or ``SKINLIB_EPOCHS_*`` value is not a whole number.
        """
        profile = os.environ.get("SKINLIB_PROFILE", "full").strip() or "full"
        if profile not in ("full", "quick"):
            raise ValueError(f"SKINLIB_PROFILE={profile!r}: expected 'full' or 'quick'")
        data_env = os.environ.get("SKINLIB_DATA", "").strip()
        data = Path(data_env).expanduser() if data_env else sample_dir()
        run_env = os.environ.get("SKINLIB_RUN", "").strip()
        quick = profile == "quick"
        default_run = ("sample" if not data_env else Path(data).name) + ("-quick" if quick else "")
        run_dir = Path(run_env).expanduser() if run_env else project_dir() / "runs" / default_run
        values = dict(
            data=data,
            run_dir=run_dir,
            seed=_env_int("SKINLIB_SEED", 0),
            epochs_v1=_env_int("SKINLIB_EPOCHS_V1", 3 if quick else RECIPES["v1"]["epochs"]),
            epochs_v2=_env_int("SKINLIB_EPOCHS_V2", 5 if quick else RECIPES["v2"]["epochs"]),
            epochs_v3=_env_int("SKINLIB_EPOCHS_V3", 2 if quick else RECIPES["v3"]["epochs"]),
            profile=profile,
        )
        values.update(overrides)
        return cls(**values)

    def describe(self) -> str:
        """The settings in a few lines; paths inside the project are shown relative to it.

        Returns
        -------
        str
            Three lines: the dataset, the run folder, then the profile, seed, epochs
            and batch sizes.
        """

        def show(path: Path) -> str:
            try:
                return str(Path(path).resolve().relative_to(project_dir()))
            except ValueError:
                return str(path)

        return (f"dataset: {show(self.data)}\nrun folder: {show(self.run_dir)}\n"
                f"profile: {self.profile}, seed {self.seed}; epochs v1 {self.epochs_v1} (batch {self.batch_v1}), "
                f"v2 {self.epochs_v2} (batch {self.batch_v2}), v3 {self.epochs_v3}")

    # -- hand-over between notebooks: files in the run folder

    def save_prepared(self, df: "pd.DataFrame", config: "Preprocess", duplicates: "pd.DataFrame | None" = None) -> None:
        """Store the split table, the chosen preprocessing and the duplicate pairs (``duplicates.csv``).

        Each file is written whole or not at all, in ``run_dir`` (created if needed):
        ``dataset.csv`` (the table, without its index), ``preprocess.json`` (the
        pipeline, the table's ``attrs["root"]``, else ``data``, and its
        ``attrs["layout"]``) and, when given, ``duplicates.csv``.
        :meth:`load_prepared` reads them back.

        Parameters
        ----------
        df : pandas.DataFrame
            The split table (with its ``fold`` column, :func:`skinlib.split_dataset`).
        config : Preprocess
            The chosen preprocessing.
        duplicates : pandas.DataFrame, optional
            The duplicate pairs (:func:`skinlib.find_duplicates`); none are written
            without them.
        """
        from skinlib._shared.files import atomic_write

        meta = {"preprocess": config.to_dict(), "dataset": df.attrs.get("root", str(self.data)),
                "layout": df.attrs.get("layout", "")}
        if duplicates is not None:
            atomic_write(self.run_dir / "duplicates.csv", lambda fh: duplicates.to_csv(fh, index=False), mode="w")
        atomic_write(self.run_dir / "dataset.csv", lambda fh: df.to_csv(fh, index=False), mode="w")
        atomic_write(self.run_dir / "preprocess.json", lambda fh: fh.write(json.dumps(meta, indent=2)), mode="w")

    def load_prepared(self) -> tuple["pd.DataFrame", "Preprocess"]:
        """The split table and preprocessing saved by ``01_preprocess``.

        Raises FileNotFoundError saying which notebook to run first when missing.

        Returns
        -------
        (pandas.DataFrame, Preprocess)
            ``dataset.csv`` as saved by :meth:`save_prepared` (``group`` and
            ``source_split`` read as strings, empty cells read as ``""``, not NaN; ``attrs`` holds
            ``root`` and ``layout``) and the :class:`~skinlib.Preprocess` of
            ``preprocess.json``.

        Raises
        ------
        FileNotFoundError
            When ``dataset.csv`` or ``preprocess.json`` is not in ``run_dir``.
        """
        import pandas as pd

        from skinlib.preprocessing import Preprocess

        table, meta_path = self.run_dir / "dataset.csv", self.run_dir / "preprocess.json"
        if not table.is_file() or not meta_path.is_file():
            raise FileNotFoundError(
                f"{self.run_dir} has no prepared dataset (dataset.csv, preprocess.json): "
                "run notebooks/01_preprocess.ipynb first, with the same SKINLIB_DATA and SKINLIB_RUN"
            )
        meta = json.loads(meta_path.read_text())
        df = pd.read_csv(table, dtype={"group": str, "source_split": str}, keep_default_na=False,
                         encoding="utf-8", encoding_errors="surrogateescape")
        df.attrs.update(root=meta.get("dataset", ""), layout=meta.get("layout", ""))
        return df, Preprocess.from_dict(meta["preprocess"])

    @property
    def cache_dir(self) -> Path:
        """Where the notebooks cache preprocessed arrays and duplicate signatures: ``run_dir / "cache"``."""
        return self.run_dir / "cache"

    def run(self, name: str, made_by: str) -> Path:
        """The folder of the trained run ``name``; FileNotFoundError naming ``made_by`` if absent.

        Parameters
        ----------
        name : str
            The run's folder inside ``run_dir``, e.g. ``"v2"``.
        made_by : str
            The notebook that trains it, without ``.ipynb`` (e.g. ``"03_train_v2"``),
            named in the error.

        Returns
        -------
        pathlib.Path
            ``run_dir / name``.

        Raises
        ------
        FileNotFoundError
            When that folder is not a complete run (:attr:`skinlib.runs.Run.complete`).
        """
        from skinlib.runs import Run

        path = self.run_dir / name
        if not Run(path).complete:
            raise FileNotFoundError(f"{path}: no trained run here; run notebooks/{made_by}.ipynb first")
        return path

    def trained_runs(self) -> dict[str, Path]:
        """The notebooks' runs in this run folder (:data:`NOTEBOOK_RUNS`), by name, in order.

        Runs the comparison needs raise FileNotFoundError naming the notebook that makes
        them when missing; the others (run 3) are left out when not trained.

        Returns
        -------
        dict of str to pathlib.Path
            The comparison's name of each run (``"v1 corrected"``, ``"v3 + metadata"``...)
            and its folder, in the order of :data:`NOTEBOOK_RUNS`.

        Raises
        ------
        FileNotFoundError
            When a run the comparison needs is not complete (:meth:`run`).
        """
        from skinlib.runs import Run

        found = {}
        for name, (folder, notebook, required) in NOTEBOOK_RUNS.items():
            if required or Run(self.run_dir / folder).complete:
                found[name] = self.run(folder, made_by=notebook)
        return found
