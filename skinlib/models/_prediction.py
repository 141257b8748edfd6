"""Prediction with a saved run: loading it, its calibration, and probabilities for new images.

A run folder (written by :func:`skinlib.train`) holds ``model.keras``, ``config.json``
(preprocessing, pixel scaling, test-time augmentation, calibration, threshold,
metadata encoding) and ``predictions.csv``. :func:`predict` applies all of them to
image files or a table; :func:`predict_arrays` and :func:`run_probabilities` work on
arrays already in memory. Training uses the same functions, so a run's stored
predictions and a later ``predict`` agree.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import warnings
import weakref
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from skinlib.evaluation import apply_temperature
from skinlib.data import IMAGE_EXTENSIONS, LABEL_NAMES, is_system_file
from skinlib.preprocessing.filters import dihedral
from skinlib.models._metadata import encode_metadata
from skinlib.preprocessing import Preprocess, preprocess_dataset
from skinlib.runs import Run
from skinlib._shared.tensorflow import import_keras

keras = import_keras()  # TensorFlow's start-up notices kept out of the outputs

__all__ = ["scale_pixels", "predict_arrays", "image_files", "run_metadata", "run_probabilities", "predict"]

def scale_pixels(x: np.ndarray, faithful: bool = False) -> np.ndarray:
    """uint8 pixels to float32 model inputs in [0, 1].

    ``faithful=True`` reproduces the original project's ``x // 255``: integer
    division, which maps every pixel below 255 to 0, so the network sees an
    almost blank image and can only learn the class balance.

    Parameters
    ----------
    x : numpy.ndarray
        uint8 pixels, of any shape (an image, or a batch ``(N, H, W, C)``).
    faithful : bool
        ``False`` (the default): divide by 255.0; ``True``: the original's ``x // 255``.

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``x``: values in [0, 1] (only 0 and 1 when ``faithful``).

    Examples
    --------
    >>> scale_pixels(np.array([0, 128, 255], np.uint8)).tolist()
    [0.0, 0.501960813999176, 1.0]
    >>> scale_pixels(np.array([0, 128, 255], np.uint8), faithful=True).tolist()
    [0.0, 0.0, 1.0]
    """
    if faithful:
        return (x // 255).astype(np.float32)
    return x.astype(np.float32) / np.float32(255.0)


@contextlib.contextmanager
def _one_trace_per_model_is_expected():
    """Silence TensorFlow's retracing warning while inference functions run.

    Each model gets one inference function, traced once; predicting with many models
    in one process (the folds of a cross-validation) traces one function per model,
    which TensorFlow's heuristic reports as retracing. Other warnings pass.
    """
    logger = logging.getLogger("tensorflow")

    def quiet(record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()

    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


_INFERENCE: "weakref.WeakKeyDictionary[keras.Model, Any]" = weakref.WeakKeyDictionary()


def _inference_function(model: keras.Model):
    """One compiled inference function per model, traced once for any batch size.

    ``model.predict`` builds and traces a new function for every new model and
    input shape; called in a loop (several runs, several folders) TensorFlow then
    warns about retracing. Here the input signature has an open batch dimension.
    """
    fn = _INFERENCE.get(model)
    if fn is None:
        import tensorflow as tf

        specs = [tf.TensorSpec((None, *tuple(t.shape)[1:]), tf.float32) for t in model.inputs]
        # A weak reference: the cache must not keep every model it has seen alive.
        ref = weakref.ref(model)

        # Plain Python calling Keras: nothing for AutoGraph to convert (it would also warn
        # that it cannot find the source of a function defined like this).
        @tf.autograph.experimental.do_not_convert
        def infer(*inputs):
            named = inputs[0] if len(inputs) == 1 else {"image": inputs[0], "metadata": inputs[1]}
            return ref()(named, training=False)

        fn = tf.function(infer, input_signature=specs)
        _INFERENCE[model] = fn
    return fn


def predict_arrays(
    model: keras.Model,
    x: np.ndarray,
    *,
    metadata: np.ndarray | None = None,
    tta: bool = False,
    batch_size: int = 256,
    progress: bool = False,
) -> np.ndarray:
    """Malignancy probabilities of model inputs ``x`` (already scaled, N x H x W x C).

    ``tta=True`` averages the probabilities over the eight flips and quarter turns
    of each image (test-time augmentation, eight times the work). ``metadata`` is
    the encoded metadata of a two-input model. Returns float64 (N,).

    Parameters
    ----------
    model : keras.Model
        A model with one sigmoid output, taking images, or images and metadata.
    x : numpy.ndarray
        Model inputs ``(N, H, W, C)``, already scaled (:func:`scale_pixels`); fed as
        float32.
    metadata : numpy.ndarray, optional
        The encoded metadata ``(N, k)``, one row per image: required for a two-input
        model, refused for a one-input one.
    tta : bool
        Average over the eight flips and quarter turns (default ``False``).
    batch_size : int
        Images per forward pass (default 256).
    progress : bool
        Show a progress bar over the batches (default ``False``).

    Returns
    -------
    numpy.ndarray
        float64 ``(N,)``: each image's malignant probability, uncalibrated (the mean
        over the eight views with ``tta``). Empty for ``N = 0``.

    Raises
    ------
    ValueError
        When ``metadata`` is given for a one-input model or missing for a two-input one.

    Examples
    --------
    >>> predict_arrays(build_model("v2"), np.zeros((3, 28, 28, 1), np.float32)).shape  # doctest: +SKIP
    (3,)
    """
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    if (metadata is None) != (len(model.inputs) == 1):
        raise ValueError(f"model {model.name!r} has {len(model.inputs)} input(s); "
                         f"metadata was {'not ' if metadata is None else ''}given")
    fn = _inference_function(model)
    views = range(8) if tta else range(1)
    total = np.zeros(n, dtype=np.float64)
    from tqdm.auto import tqdm

    starts = range(0, n, batch_size)
    with tqdm(total=len(views) * len(starts), desc="predict", unit="batch", disable=not progress) as bar, \
            _one_trace_per_model_is_expected():
        for k in views:
            for start in starts:
                xb = np.ascontiguousarray(dihedral(x[start : start + batch_size], k), dtype=np.float32)
                args = (xb,) if metadata is None else (xb, metadata[start : start + batch_size].astype(np.float32))
                total[start : start + len(xb)] += np.asarray(fn(*args), dtype=np.float64).ravel()
                bar.update(1)
    return total / len(views)


_LOADED: dict[tuple[str, ...], tuple[keras.Model, dict[str, Any], Preprocess]] = {}


def _cached_run(run_dir: str | os.PathLike) -> tuple[keras.Model, dict[str, Any], Preprocess]:
    """:func:`skinlib.runs.load_run`, remembered while the folder's files are unchanged (the 4 runs loaded last)."""
    run = Run(run_dir)
    key = run.stamp()  # a retrained or recalibrated run is new files, so a new key
    if key not in _LOADED:
        loaded = run.load()
        while len(_LOADED) >= 4:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = loaded
    return _LOADED[key]


def image_files(images: Iterable[str | os.PathLike]) -> list[Path]:
    """The image files among ``images``: files as given, folders searched recursively (sorted).

    Only regular files (or links to them) are kept: a FIFO, socket or device, given or
    found in a folder, is skipped with a warning (``"<path>: not a regular file (a
    FIFO); skipped"``) and never opened, since reading a FIFO waits forever.

    Parameters
    ----------
    images : iterable of str or path-like
        Files and folders. A file is kept whatever its name; in a folder, only files with
        an extension of :data:`skinlib.data.IMAGE_EXTENSIONS` (any case) count, and system
        files (``Thumbs.db``, ``._x.jpg``... :func:`skinlib.data.is_system_file`) do not.

    Returns
    -------
    list of pathlib.Path
        The files in the order of ``images``, each folder's files sorted.

    Raises
    ------
    FileNotFoundError
        When an item of ``images`` does not exist.
    """
    files: list[Path] = []
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"))

    def regular(p: Path) -> bool:
        """False, with a warning, for a FIFO, socket or device (told from its stat, never opened)."""
        try:
            mode = os.stat(p).st_mode
        except OSError:  # missing or a dangling link: the callers' checks say so
            return True
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
            return True
        kind = next((word for test, word in kinds if test(mode)), "a special file")
        warnings.warn(f"{p}: not a regular file ({kind}); skipped", stacklevel=3)
        return False

    for item in images:
        p = Path(item)
        if p.is_dir():
            named = sorted(f for f in p.rglob("*")
                           if f.suffix.lower() in IMAGE_EXTENSIONS and not is_system_file(f.name))
            files += [f for f in named if regular(f) and f.is_file()]
        elif p.exists():
            if regular(p):
                files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such image or folder")
    return files


def run_metadata(config: dict[str, Any], table: pd.DataFrame | None = None,
                 metadata: np.ndarray | None = None) -> np.ndarray | None:
    """The encoded metadata a run needs: ``None`` for a run trained on images alone,
    ``metadata`` when given already encoded, else ``table``'s columns encoded as in the run.

    Parameters
    ----------
    config : dict
        The run's config (``config.json``); its ``metadata`` entry is the encoding
        (:func:`skinlib.models._metadata.fit_metadata`), or ``None``.
    table : pandas.DataFrame, optional
        One row per image, with the run's metadata columns.
    metadata : numpy.ndarray, optional
        Metadata already encoded, one row per image; returned as it is.

    Returns
    -------
    numpy.ndarray or None
        ``metadata`` as given when the run has no metadata encoding or ``metadata`` is
        given (so ``None`` for a run trained on images alone, without it); else
        :func:`skinlib.models._metadata.encode_metadata` of ``table``, float32
        ``(len(table), k)``.

    Raises
    ------
    ValueError
        When the run was trained with metadata and neither ``metadata`` nor ``table``
        is given, or ``table`` lacks one of the run's metadata columns.

    Examples
    --------
    >>> run_metadata({"metadata": None}) is None
    True
    """
    encoding = config.get("metadata")
    if not encoding or metadata is not None:
        return metadata
    if table is None:
        raise ValueError(f"this run was trained with metadata ({', '.join(encoding['columns'])}): pass the images "
                         "as a table with a 'path' column and those columns, or the encoded metadata")
    return encode_metadata(table, encoding)


def run_probabilities(
    model: keras.Model,
    config: dict[str, Any],
    x: np.ndarray,
    *,
    metadata_table: pd.DataFrame | None = None,
    metadata: np.ndarray | None = None,
    tta: bool | None = None,
    batch_size: int = 256,
    progress: bool = False,
) -> np.ndarray:
    """A run's probabilities for preprocessed uint8 images ``x``, as :func:`predict` gives them.

    The run's pixel scaling, its test-time augmentation (``tta``: ``None`` follows
    the run) and its temperature (fitted on the run's own setting and applied
    either way). Metadata comes encoded (``metadata``) or as a table with the
    run's metadata columns, one row per image (``metadata_table``).

    Parameters
    ----------
    model : keras.Model
        The run's model (:func:`skinlib.runs.load_run`).
    config : dict
        The run's config: ``faithful``, ``tta``, ``temperature`` and ``shift`` are used
        (default ``False``, ``False``, 1.0 and 0.0 when absent), and ``metadata``.
    x : numpy.ndarray
        uint8 images ``(N, H, W, C)`` through the run's :class:`~skinlib.Preprocess`,
        not yet scaled.
    metadata_table : pandas.DataFrame, optional
        The run's metadata columns, one row per image (:func:`run_metadata`).
    metadata : numpy.ndarray, optional
        The metadata already encoded, ``(N, k)``; used instead of ``metadata_table``.
    tta : bool, optional
        Test-time augmentation; ``None`` (the default) follows the run's ``tta``.
    batch_size : int
        Images per forward pass (default 256).
    progress : bool
        Show a progress bar (default ``False``).

    Returns
    -------
    numpy.ndarray
        float64 ``(N,)``: each image's calibrated malignant probability.

    Raises
    ------
    ValueError
        When the run needs metadata and none is given, or it does not fit the model.
    """
    metadata = run_metadata(config, metadata_table, metadata)
    raw = predict_arrays(model, scale_pixels(x, config.get("faithful", False)), metadata=metadata,
                         tta=config.get("tta", False) if tta is None else tta, batch_size=batch_size,
                         progress=progress)
    return apply_temperature(raw, float(config.get("temperature", 1.0)), float(config.get("shift", 0.0)))


def predict(
    run: str | os.PathLike,
    images: str | os.PathLike | Iterable[str | os.PathLike] | pd.DataFrame,
    *,
    tta: bool | None = None,
    batch_size: int = 256,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Malignancy probabilities for image files with a saved run's model.

    Each image goes through the same :class:`Preprocess` the run was trained with
    (read from its ``config.json``), in parallel threads, then the run's pixel
    scaling, its test-time augmentation (``tta``: ``None`` follows the run; the
    run's calibration was fitted with the run's setting and is applied either way)
    and its calibration (temperature and shift). ``images`` is a file, a folder (searched recursively), a list of
    them, or a table from :func:`skinlib.load_dataset` (a ``path`` column, plus the
    metadata columns a run trained with metadata needs). Progress bars show for
    200 images or more unless ``progress`` says otherwise.

    Returns one row per file: ``file``, ``probability``, ``label`` (``malignant`` or
    ``benign`` at the run's threshold) and ``error`` (why a file could not be read;
    its probability is then NaN).

    Parameters
    ----------
    run : str or path-like
        A run folder, or the ``model.keras`` inside it. A loaded run is kept (the last
        4) while its model and config files are unchanged.
    images : str, path-like, iterable of them, or pandas.DataFrame
        An image file, a folder (searched recursively, :func:`image_files`), a list of
        them, or a table with a ``path`` column (required for a run trained with
        metadata: its metadata columns are encoded as the run stored).
    tta : bool, optional
        Test-time augmentation; ``None`` (the default) follows the run.
    batch_size : int
        Images per forward pass (default 256).
    progress : bool, optional
        Show progress bars; ``None`` (the default): for 200 images or more.

    Returns
    -------
    pandas.DataFrame
        One row per file, in input order: ``file`` (the path as a string),
        ``probability`` (calibrated; NaN for a file that could not be read), ``label``
        (``"malignant"`` when the probability is at least the run's threshold, else
        ``"benign"``; ``""`` for an unread file) and ``error`` (``"<path>: <reason>"``,
        else ``""``). Each unread file is also reported with a warning.

    Raises
    ------
    FileNotFoundError
        When a file or folder given, or a path of the table, does not exist.
    ValueError
        When a table has no ``path`` column or lacks the run's metadata columns, or a
        run trained with metadata is given files instead of a table.
    skinlib.RunFolderError
        When ``run`` has no valid ``model.keras`` and ``config.json``
        (:func:`skinlib.runs.load_run`).

    Examples
    --------
    >>> predict("runs/sample/v2", "my_images/")  # doctest: +SKIP
    """
    model, config, preprocess = _cached_run(run)
    encoding = config.get("metadata")
    if isinstance(images, pd.DataFrame):
        if "path" not in images:
            raise ValueError("a table of images needs a 'path' column (as load_dataset returns)")
        table = images.reset_index(drop=True)
        missing = [str(p) for p in table["path"] if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(f"{missing[0]}: no such image ({len(missing)} of the table's paths are missing)")
        files = [Path(p) for p in table["path"]]
    else:
        if encoding:
            raise ValueError(
                f"run {run} was trained with metadata ({', '.join(encoding['columns'])}): pass a table with a "
                "'path' column and those columns (e.g. from load_dataset), or --metadata CSV on the command line"
            )
        files = image_files([images] if isinstance(images, (str, os.PathLike)) else images)
        table = pd.DataFrame({"path": [str(f) for f in files]})
    if encoding:
        missing_columns = [c for c in encoding["columns"] if c not in table.columns]
        if missing_columns:
            raise ValueError(f"the table lacks metadata column(s) {missing_columns} that run {run} was trained with")
    show = len(files) >= 200 if progress is None else progress
    work = table.assign(path=[str(f) for f in files], label=0, position=np.arange(len(files)))
    data = preprocess_dataset(work, preprocess, progress=show)
    ok = data.rows["position"].to_numpy()
    errors = [""] * len(files)
    # Skipped files are listed in input order, like the positions that failed.
    failed = np.setdiff1d(np.arange(len(files)), ok)
    for i, path, reason in zip(failed, data.skipped["path"], data.skipped["reason"]):
        errors[i] = f"{path}: {reason}"
    probs = np.full(len(files), np.nan)
    probs[ok] = run_probabilities(model, config, data.x, metadata_table=data.rows, tta=tta, batch_size=batch_size,
                                  progress=show)
    threshold = float(config.get("threshold", 0.5))
    read = ~np.isnan(probs)
    labels = np.where(~read, "", np.where(probs >= threshold, LABEL_NAMES[1], LABEL_NAMES[0]))
    for e in errors:
        if e:
            warnings.warn(e, stacklevel=2)
    return pd.DataFrame({"file": [str(f) for f in files], "probability": probs, "label": labels, "error": errors})
