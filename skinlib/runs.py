"""The run folder: the one module that writes it and reads it.

A run folder is what :func:`skinlib.train` leaves behind, everything needed to
reuse and audit a trained model:

===================  ===============================================================
``model.keras``      the trained Keras model
``history.csv``      one row per epoch (``epoch`` from 1, losses and metrics)
``predictions.csv``  every image's probability, calibrated and not (:data:`PREDICTION_COLUMNS`)
``config.json``      model, preprocessing, training settings, seed, class weights,
                     metadata encoding, calibration, threshold, the dataset and its
                     fingerprint, library versions
===================  ===============================================================

A folder is written whole or not at all (:func:`write_run` assembles it under a
temporary name and renames it into place), and never replaces a folder that is not
a run. Read one through :class:`Run`; its ``config.json`` is checked on reading
(:func:`check_config`), so a damaged or hand-edited run raises
:class:`RunFolderError` naming the file and the value, not a traceback later.

A cross-validation folder holds one run folder per fold (:func:`fold_dir`).

>>> run = Run("runs/sample/v2")  # doctest: +SKIP
>>> run.complete, run.threshold  # doctest: +SKIP
(True, 0.41)
>>> run.predictions("test").head()  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from skinlib._shared.errors import RunFolderError
from skinlib._shared.files import atomic_write, file_stamp
from skinlib._shared.folders import locked
from skinlib.preprocessing import Preprocess
from skinlib._shared.checks import is_whole_number

if TYPE_CHECKING:
    import keras

__all__ = [
    "is_cross_validation",
    "fold_runs",
    "Run", "RunFolderError", "write_run", "rewrite_run", "check_run_dir", "check_config", "load_run",
    "load_predictions", "dataset_fingerprint", "fold_dir", "RUN_FILES", "PREDICTION_COLUMNS",
]

#: The files of a complete run folder.
RUN_FILES = ("config.json", "history.csv", "model.keras", "predictions.csv")
#: The columns of ``predictions.csv``, in order.
PREDICTION_COLUMNS = ("path", "fold", "label", "probability", "probability_uncalibrated")

_BOOLEANS = ("faithful", "tta", "calibrate", "best_epoch")
_WHOLE_NUMBERS = ("epochs", "epochs_run", "best_epoch_found", "batch_size", "seed", "parameters")


def dataset_fingerprint(rows: pd.DataFrame) -> str:
    """A short hash of the file names, labels and folds of a table: which split a run saw.

    Parameters
    ----------
    rows : pandas.DataFrame
        A table with ``path`` and ``label`` columns, and ``fold`` when split.

    Returns
    -------
    str
        16 hexadecimal digits; the same table gives the same fingerprint.

    Examples
    --------
    >>> rows = pd.DataFrame({"path": ["a/1.jpg", "b/2.jpg"], "label": [0, 1], "fold": ["train", "test"]})
    >>> dataset_fingerprint(rows) == dataset_fingerprint(rows.assign(path=["c/1.jpg", "d/2.jpg"]))
    True
    """
    h = hashlib.sha256()
    for path, label, fold in zip(rows["path"], rows["label"], rows.get("fold", [""] * len(rows))):
        h.update(f"{os.path.basename(str(path))}\t{int(label)}\t{fold}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]


def fold_dir(cv_dir: str | os.PathLike, k: int) -> Path:
    """The run folder of fold ``k`` (from 1) inside a cross-validation folder.

    Only builds the path: nothing is read or created.

    Parameters
    ----------
    cv_dir : str or path-like
        The cross-validation folder (``cross_validate(run_dir=...)``).
    k : int
        The fold, from 1.

    Returns
    -------
    pathlib.Path
        ``cv_dir / "fold<k>"``.

    Examples
    --------
    >>> fold_dir("runs/cv", 2).as_posix()
    'runs/cv/fold2'
    """
    return Path(cv_dir) / f"fold{int(k)}"


def is_cross_validation(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a cross-validation folder (it holds the run of fold 1), not a run folder.

    Parameters
    ----------
    folder : str or path-like
        A folder, which need not exist.

    Returns
    -------
    bool
        True when the folder of fold 1 (:func:`fold_dir`) is a folder; False for a run folder or a
        path that does not exist.

    Examples
    --------
    >>> is_cross_validation("/no/such/folder")
    False
    """
    return fold_dir(folder, 1).is_dir()


def fold_runs(cv_dir: str | os.PathLike) -> list[tuple[int, "Run"]]:
    """The runs of a cross-validation folder: ``(k, Run)`` for fold 1, 2, ... while its folder exists.

    Parameters
    ----------
    cv_dir : str or path-like
        The cross-validation folder (``cross_validate(run_dir=...)``).

    Returns
    -------
    list of (int, Run)
        One entry per fold folder, fold 1 first; empty when ``cv_dir`` is no cross-validation folder.

    Examples
    --------
    >>> fold_runs("/no/such/folder")
    []
    """
    found, k = [], 1
    while fold_dir(cv_dir, k).is_dir():
        found.append((k, Run(fold_dir(cv_dir, k))))
        k += 1
    return found


# --------------------------------------------------------------------------- checking


def _fail(where: Path, what: str) -> RunFolderError:
    return RunFolderError(f"{where}: not a valid run config ({what})")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_config(config: Any, where: str | os.PathLike = "config.json") -> tuple[dict[str, Any], Preprocess]:
    """Check a run's ``config.json`` contents; returns it with its :class:`Preprocess`.

    Types and bounds of the entries that prediction uses: ``preprocess`` (a valid
    pipeline), ``input_shape`` (equal to the pipeline's output), ``faithful``,
    ``tta``, ``calibrate`` and ``best_epoch`` (``true`` or ``false``, not strings),
    ``temperature`` (finite, > 0), ``shift`` (finite), ``threshold`` (in [0, 1]),
    whole numbers for epochs, seeds and sizes, and ``metadata`` (``null`` or an
    encoding with a list of ``columns``). Entries it does not know are kept as they are.

    Parameters
    ----------
    config : object
        The parsed JSON.
    where : str or path-like
        The file, named in errors.

    Returns
    -------
    (dict, Preprocess)

    Raises
    ------
    RunFolderError
        Naming ``where``, the entry and the value.

    Examples
    --------
    >>> config, pre = check_config({"preprocess": Preprocess.default().to_dict(), "threshold": 0.4})
    >>> pre == Preprocess.default()
    True
    >>> check_config({"preprocess": Preprocess.default().to_dict(), "faithful": "false"})
    Traceback (most recent call last):
    ...
    skinlib.runs.RunFolderError: config.json: not a valid run config (faithful must be true or false, got 'false')
    """
    where = Path(where)
    if not isinstance(config, dict):
        raise _fail(where, f"expected a JSON object, got {type(config).__name__}")
    if "preprocess" not in config:
        raise _fail(where, "it has no 'preprocess' entry")
    try:
        preprocess = Preprocess.from_dict(config["preprocess"])
        output_shape = preprocess.output_shape
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise _fail(where, f"preprocess: {exc}") from None
    for key in _BOOLEANS:
        if key in config and not isinstance(config[key], bool):
            raise _fail(where, f"{key} must be true or false, got {config[key]!r}")
    for key in _WHOLE_NUMBERS:
        value = config.get(key)
        if value is not None and (not is_whole_number(value) or value < 0):
            raise _fail(where, f"{key} must be a whole number >= 0, got {value!r}")
    if "temperature" in config and not (_finite(config["temperature"]) and config["temperature"] > 0):
        raise _fail(where, f"temperature must be a finite number > 0, got {config['temperature']!r}")
    if "shift" in config and not _finite(config["shift"]):
        raise _fail(where, f"shift must be a finite number, got {config['shift']!r}")
    if "threshold" in config and not (_finite(config["threshold"]) and 0 <= config["threshold"] <= 1):
        raise _fail(where, f"threshold must be a number in [0, 1], got {config['threshold']!r}")
    if "input_shape" in config:
        shape = config["input_shape"]
        if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)):
            raise _fail(where, f"input_shape must be three whole numbers > 0, got {shape!r}")
        if tuple(shape) != output_shape:
            raise _fail(where, f"input_shape {tuple(shape)} differs from its preprocessing's output {output_shape}")
    metadata = config.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and isinstance(metadata.get("columns"), list)
        and all(isinstance(c, str) for c in metadata["columns"])
    ):
        raise _fail(where, f"metadata must be null or an encoding with a list of column names, got {metadata!r}")
    return config, preprocess


# --------------------------------------------------------------------------- reading


class Run:
    """A run folder on disk, read on demand.

    Parameters
    ----------
    path : str or path-like
        The run folder, or the ``model.keras`` inside it.

    Examples
    --------
    >>> run = Run("runs/sample/v3")  # doctest: +SKIP
    >>> run.config["best_epoch_found"], run.threshold  # doctest: +SKIP
    >>> model = run.load_model()  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        self.path = path.parent if path.suffix == ".keras" else path

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and self.path == other.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def complete(self) -> bool:
        """Whether every file of :data:`RUN_FILES` is there (training writes them together)."""
        return all((self.path / name).is_file() for name in RUN_FILES)

    def require(self, *names: str) -> None:
        """Raise :class:`RunFolderError` unless the folder exists and holds ``names``.

        Parameters
        ----------
        *names : str
            File names inside the run folder, such as ``"model.keras"``.

        Raises
        ------
        RunFolderError
            When the folder does not exist or one of ``names`` is not a file in it.
        """
        if not self.path.is_dir():
            raise RunFolderError(f"{self.path}: not a run folder (it does not exist)")
        for name in names:
            if not (self.path / name).is_file():
                raise RunFolderError(
                    f"{self.path}: not a complete run folder, {name} is missing (was training interrupted?)")

    def stamp(self) -> tuple[str, ...]:
        """The resolved folder and :func:`skinlib._shared.files.file_stamp` of its model and config.

        Returns
        -------
        tuple of str
            A key that changes whenever the run is retrained or recalibrated (for caches
            of loaded runs).
        """
        return (str(self.path.resolve()), *(file_stamp(self.path / name) for name in ("model.keras", "config.json")))

    def read_config(self) -> tuple[dict[str, Any], Preprocess]:
        """``config.json``, checked (:func:`check_config`), and its :class:`Preprocess`.

        Returns
        -------
        (dict, Preprocess)
            The parsed config and the pipeline of its ``preprocess`` entry.

        Raises
        ------
        RunFolderError
            When ``config.json`` is missing, cannot be read or parsed, or is not valid.
        """
        self.require("config.json")
        where = self.path / "config.json"
        try:
            config = json.loads(where.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _fail(where, str(exc)) from None
        return check_config(config, where)

    @property
    def config(self) -> dict[str, Any]:
        """``config.json`` as a dict, checked."""
        return self.read_config()[0]

    @property
    def preprocess(self) -> Preprocess:
        """The pipeline the run's images went through."""
        return self.read_config()[1]

    @property
    def threshold(self) -> float:
        """The probability threshold the run chose on its validation fold (0.5 if none)."""
        return float(self.config.get("threshold", 0.5))

    def predictions(self, fold: str | None = None) -> pd.DataFrame:
        """``predictions.csv``: every image's ``path``, ``fold``, ``label`` and probabilities.

        Parameters
        ----------
        fold : str, optional
            ``"train"``, ``"val"`` or ``"test"``: only that fold's rows (default: all rows).

        Returns
        -------
        pandas.DataFrame
            The columns of the file as written (:data:`PREDICTION_COLUMNS`: ``path``,
            ``fold``, ``label``, ``probability`` and ``probability_uncalibrated``), one
            row per image.

        Raises
        ------
        RunFolderError
            When the file is missing, cannot be read, or lacks ``path``, ``fold``,
            ``label`` or ``probability``.
        """
        self.require("predictions.csv")
        where = self.path / "predictions.csv"
        try:
            table = pd.read_csv(where, encoding="utf-8", encoding_errors="surrogateescape")
        except (OSError, ValueError) as exc:
            raise RunFolderError(f"{where}: cannot read the predictions ({exc})") from None
        missing = [c for c in ("path", "fold", "label", "probability") if c not in table.columns]
        if missing:
            raise RunFolderError(f"{where}: lacks column(s) {missing}; found {list(table.columns)}")
        return table if fold is None else table[table["fold"] == fold]

    def history(self) -> pd.DataFrame:
        """``history.csv``: one row per epoch.

        Returns
        -------
        pandas.DataFrame
            ``epoch`` (from 1), then what Keras logged at each epoch's end: for the
            built models ``accuracy``, ``auc``, ``loss``, their ``val_`` counterparts when
            there was a validation fold, and ``learning_rate``.

        Raises
        ------
        RunFolderError
            When ``history.csv`` is missing.
        """
        self.require("history.csv")
        return pd.read_csv(self.path / "history.csv")

    def load(self) -> tuple["keras.Model", dict[str, Any], Preprocess]:
        """The model, the config and the :class:`Preprocess`: what prediction needs (:func:`load_run`).

        Returns
        -------
        (keras.Model, dict, Preprocess)
            As :meth:`load_model` and :meth:`read_config` give them.

        Raises
        ------
        RunFolderError
            When ``model.keras`` or ``config.json`` is missing or not valid.
        """
        self.require("model.keras", "config.json")
        config, preprocess = self.read_config()
        return self.load_model(), config, preprocess

    def load_model(self) -> "keras.Model":
        """The trained model, checked against the run's preprocessing (its input shape).

        Returns
        -------
        keras.Model
            ``model.keras``, loaded.

        Raises
        ------
        RunFolderError
            When ``model.keras`` or ``config.json`` is missing or not valid, the model
            cannot be loaded, or its image input's shape differs from the output shape of
            the config's preprocessing.
        """
        self.require("model.keras", "config.json")
        preprocess = self.preprocess
        from skinlib._shared.tensorflow import import_keras

        keras = import_keras()

        try:
            model = keras.saving.load_model(self.path / "model.keras")
        except Exception as exc:  # noqa: BLE001 - Keras raises many types for a damaged file
            raise RunFolderError(f"{self.path / 'model.keras'}: cannot load the model ({exc})") from None
        shape = tuple(model.inputs[0].shape[1:])
        if shape != preprocess.output_shape:
            raise RunFolderError(
                f"{self.path}: the model takes inputs of shape {shape}, but config.json's preprocessing makes "
                f"{preprocess.output_shape}")
        return model


def load_run(run_dir: str | os.PathLike) -> tuple["keras.Model", dict[str, Any], Preprocess]:
    """Load a run folder's model, its config dict and its :class:`Preprocess`.

    Parameters
    ----------
    run_dir : str or path-like
        The run folder, or the ``model.keras`` inside it.

    Returns
    -------
    (keras.Model, dict, Preprocess)
        The trained model (its input shape checked against the preprocessing), the
        checked ``config.json`` (:func:`check_config`) and the pipeline the run's images
        went through.

    Raises
    ------
    RunFolderError
        When the folder, ``model.keras`` or ``config.json`` is missing or not valid.

    Examples
    --------
    >>> model, config, preprocess = load_run("runs/sample/v2")  # doctest: +SKIP
    """
    return Run(run_dir).load()


def load_predictions(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The ``predictions.csv`` of a run folder: path, fold, label, probability (:meth:`Run.predictions`).

    Parameters
    ----------
    run_dir : str or path-like
        The run folder, or the ``model.keras`` inside it.

    Returns
    -------
    pandas.DataFrame
        One row per image of the run, every fold: ``path``, ``fold`` (``train``,
        ``val``, ``test``), ``label`` (0 benign, 1 malignant), ``probability``
        (calibrated) and ``probability_uncalibrated`` (:data:`PREDICTION_COLUMNS`).

    Raises
    ------
    RunFolderError
        When the file is missing, cannot be read, or lacks ``path``, ``fold``,
        ``label`` or ``probability``.
    """
    return Run(run_dir).predictions()


# --------------------------------------------------------------------------- writing


def _entries(path: Path) -> list[str]:
    try:
        return sorted(p.name for p in path.iterdir())
    except FileNotFoundError:
        return []


def _foreign(path: Path) -> list[str]:
    """What in ``path`` is not a run's file (a folder that holds it must not be replaced)."""
    return [name for name in _entries(path) if name not in RUN_FILES]


def check_run_dir(run_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Check, before training, that a run can be written to ``run_dir``.

    Parameters
    ----------
    run_dir : str or path-like
        Where the run goes.
    overwrite : bool
        Whether an existing run there may be replaced (only a run folder: a folder
        holding anything else is never replaced).

    Returns
    -------
    Path

    Raises
    ------
    FileExistsError
        When ``run_dir`` is a file, holds a run and ``overwrite`` is false, or holds
        files that are not a run's.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"{run_dir} exists and is a file, not a run folder")
    entries = _entries(run_dir)
    if entries and not overwrite:
        raise FileExistsError(
            f"{run_dir} already exists and is not empty; a run folder is never overwritten. "
            "Choose a new folder, delete this one, or pass overwrite=True."
        )
    foreign = _foreign(run_dir)
    if foreign:
        raise FileExistsError(
            f"{run_dir} holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}, which are not a run's "
            f"files ({', '.join(RUN_FILES)}): it is not replaced, even with overwrite=True"
        )
    return run_dir


def _keep_aside(new: Path, run_dir: Path) -> Path:
    kept = run_dir.with_name(f"{run_dir.name}.unsaved-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    os.replace(new, kept)
    return kept


def _swap_in(new: Path, run_dir: Path, overwrite: bool) -> None:
    """Move the completed folder ``new`` to ``run_dir``; see :func:`write_run` for the rules."""
    with locked(run_dir.parent):
        if run_dir.exists() and not run_dir.is_dir():
            kept = _keep_aside(new, run_dir)
            raise FileExistsError(f"{run_dir} is now a file; this run was kept in {kept}")
        entries, foreign = _entries(run_dir), _foreign(run_dir)
        if (entries and not overwrite) or foreign:
            kept = _keep_aside(new, run_dir)
            why = ("was filled by another process while this run trained" if entries and not overwrite
                   else f"holds {', '.join(foreign[:3])}, which are not a run's files")
            raise FileExistsError(f"{run_dir} {why}; it was left as it is, and this run was kept in {kept}")
        if not entries:
            if os.name == "nt" and run_dir.is_dir():
                run_dir.rmdir()  # Windows does not rename onto an empty folder
            try:
                os.rename(new, run_dir)  # onto nothing, or onto an empty folder: atomic either way
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                kept = _keep_aside(new, run_dir)  # filled by something that does not take the lock
                raise FileExistsError(f"{run_dir} was filled by another process while this run trained; it was "
                                      f"left as it is, and this run was kept in {kept}") from None
            return
        old = run_dir.with_name(f".{run_dir.name}.replaced-{os.getpid()}")
        os.rename(run_dir, old)
        try:
            os.rename(new, run_dir)
        except OSError:
            os.rename(old, run_dir)  # put the old run back; the new one stays where it was
            raise
        shutil.rmtree(old, ignore_errors=True)


def _assemble(run_dir: Path, write) -> Path:
    """A temporary sibling folder of ``run_dir`` filled by ``write(folder)``; removed on error."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", suffix=".partial", dir=run_dir.parent))
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _write_tables(folder: Path, predictions: pd.DataFrame | None, config: dict | None) -> None:
    if predictions is not None:
        missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
        if missing:
            raise ValueError(f"predictions lack column(s) {missing}")
        atomic_write(folder / "predictions.csv",
                     lambda fh: predictions[list(PREDICTION_COLUMNS)].to_csv(fh, index=False), mode="w")
    if config is not None:
        atomic_write(folder / "config.json", lambda fh: fh.write(json.dumps(config, indent=2, default=float)),
                     mode="w")


def write_run(
    run_dir: str | os.PathLike,
    *,
    model: "keras.Model",
    history: pd.DataFrame,
    predictions: pd.DataFrame,
    config: dict[str, Any],
    overwrite: bool = False,
) -> Run:
    """Write a run folder, whole or not at all.

    The files are written into a temporary sibling folder, which is then renamed to
    ``run_dir``: an interrupted write leaves earlier runs intact and no half-written
    run. The rename refuses a folder that is not empty unless ``overwrite=True``
    (even when another process filled it during training: this run is then kept
    beside it, in ``<name>.unsaved-<time>-<pid>``, and the error says where), and
    never replaces a folder that holds anything but a run's files. Two processes
    swapping runs into one parent folder take turns (an exclusive lock on it).

    Parameters
    ----------
    run_dir : str or path-like
        The run folder to create.
    model : keras.Model
        The trained model, saved as ``model.keras``.
    history : pandas.DataFrame
        One row per epoch, saved as ``history.csv``.
    predictions : pandas.DataFrame
        :data:`PREDICTION_COLUMNS`, saved as ``predictions.csv``.
    config : dict
        Saved as ``config.json``; checked with :func:`check_config` first.
    overwrite : bool
        Replace a run already in ``run_dir``.

    Returns
    -------
    Run
    """
    run_dir = Path(run_dir)
    check_config(json.loads(json.dumps(config, default=float)), run_dir / "config.json")

    def write(folder: Path) -> None:
        model.save(folder / "model.keras")
        atomic_write(folder / "history.csv", lambda fh: history.to_csv(fh, index=False), mode="w")
        _write_tables(folder, predictions, config)

    _swap_in(_assemble(run_dir, write), run_dir, overwrite)
    return Run(run_dir)


def rewrite_run(run: Run | str | os.PathLike, *, predictions: pd.DataFrame | None = None,
                config: dict[str, Any] | None = None) -> Run:
    """Replace a complete run's ``predictions.csv`` and/or ``config.json``, together.

    A new folder is assembled with the run's other files (hard links where the file
    system allows, else copies) and the new tables, then swapped in as
    :func:`write_run` does: a crash leaves the old run or the new one, never a
    ``predictions.csv`` that disagrees with its ``config.json``.

    Parameters
    ----------
    run : Run, str or path-like
        A complete run folder (every file of :data:`RUN_FILES`).
    predictions : pandas.DataFrame, optional
        The new ``predictions.csv``: its :data:`PREDICTION_COLUMNS` are written, in that
        order (default: the file is kept).
    config : dict, optional
        The new ``config.json``, checked with :func:`check_config` first (default: the
        file is kept).

    Returns
    -------
    Run
        The same run folder, now holding the new files.

    Raises
    ------
    RunFolderError
        When ``run`` is not a complete run folder, or ``config`` is not valid.
    ValueError
        When ``predictions`` lacks one of :data:`PREDICTION_COLUMNS`.
    """
    run = run if isinstance(run, Run) else Run(run)
    run.require(*RUN_FILES)
    if config is not None:
        check_config(json.loads(json.dumps(config, default=float)), run.path / "config.json")

    def write(folder: Path) -> None:
        for name in RUN_FILES:
            try:
                os.link(run.path / name, folder / name)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                shutil.copy2(run.path / name, folder / name)
        for name in ("predictions.csv",) * (predictions is not None) + ("config.json",) * (config is not None):
            os.unlink(folder / name)  # a link: writing through it would change the old run too
        _write_tables(folder, predictions, config)

    _swap_in(_assemble(run.path, write), run.path, overwrite=True)
    return run
