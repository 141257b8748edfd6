"""Training a model on preprocessed arrays, saving a run folder, and predicting with it.

A run folder holds everything needed to reuse and audit a trained model:
``model.keras``, ``history.csv`` (one row per epoch), ``predictions.csv``
(every image's probability, calibrated and not) and ``config.json`` (model,
preprocessing, training settings, seed, class weights, metadata encoding,
calibration, threshold, dataset and its fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
import weakref
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from skinlib.calibration import apply_temperature, fit_temperature_shift
from skinlib.datasets import IMAGE_EXTENSIONS, _is_system_file, class_weights
from skinlib.evaluate import choose_threshold
from skinlib.metadata import encode_metadata, fit_metadata
from skinlib.models import RECIPES, build_model, keras  # Keras as skinlib.models imports it: quietly
from skinlib.preprocess import Preprocess, PreprocessResult, file_stamp, preprocess_dataset

__all__ = [
    "train", "scale_pixels", "set_determinism", "load_run", "predict", "predict_arrays", "dihedral",
    "RunFolderError", "dataset_fingerprint", "AUGMENTATIONS", "image_files", "run_probabilities", "calibrate_run",
]

#: What ``train(augment=...)`` accepts: none, the eight flips and quarter turns, or
#: those plus a small random zoom, brightness and contrast change.
AUGMENTATIONS = (False, "dihedral", "full")


class RunFolderError(ValueError):
    """A run folder is missing a file or holds something unexpected."""


def scale_pixels(x: np.ndarray, faithful: bool = False) -> np.ndarray:
    """uint8 pixels to float32 model inputs in [0, 1].

    ``faithful=True`` reproduces the original project's ``x // 255``: integer
    division, which maps every pixel below 255 to 0, so the network sees an
    almost blank image and can only learn the class balance.

    >>> scale_pixels(np.array([0, 128, 255], np.uint8)).tolist()
    [0.0, 0.501960813999176, 1.0]
    >>> scale_pixels(np.array([0, 128, 255], np.uint8), faithful=True).tolist()
    [0.0, 0.0, 1.0]
    """
    if faithful:
        return (x // 255).astype(np.float32)
    return x.astype(np.float32) / np.float32(255.0)


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and the backend, and ask TensorFlow for deterministic ops.

    With these, the same seed and data give the same weights on the CPU.
    """
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """The ``k``-th (0-7) of the eight flips and quarter turns of images ``x`` (N, H, W, C).

    ``k`` = 0-3 turns by ``k`` quarter turns; 4-7 flips left-right first. A lesion has
    no up or down, so all eight are equally valid views of it.

    >>> img = np.arange(4).reshape(1, 2, 2, 1)
    >>> [dihedral(img, k)[0, :, :, 0].tolist() for k in (0, 1, 4)]
    [[[0, 1], [2, 3]], [[1, 3], [0, 2]], [[1, 0], [3, 2]]]
    """
    if not 0 <= k < 8:
        raise ValueError(f"k must be 0-7 (one of the eight flips and quarter turns), got {k}")
    if k >= 4:
        x = x[:, :, ::-1]
    return np.rot90(x, k % 4, axes=(1, 2))


def _photometric(seed: int) -> keras.Sequential:
    """A small random zoom, brightness and contrast change, as Keras preprocessing layers."""
    return keras.Sequential(
        [
            keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed),
            keras.layers.RandomBrightness(0.1, value_range=(0.0, 1.0), seed=seed + 1),
            keras.layers.RandomContrast(0.15, value_range=(0.0, 1.0), seed=seed + 2),
        ],
        name="augmentation",
    )


class _Batches(keras.utils.PyDataset):
    """Shuffled (and optionally augmented) batches, reproducible for a seed."""

    def __init__(self, x, y, w, batch_size: int, seed: int, augment, metadata=None):
        super().__init__()
        self.x, self.y, self.w, self.metadata = x, y, w, metadata
        self.batch_size, self.seed, self.augment = batch_size, seed, augment
        self.photometric = _photometric(seed) if augment == "full" else None
        self.epoch = 0
        self._shuffle()

    def _shuffle(self) -> None:
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))

    def __len__(self) -> int:
        return int(np.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, i: int):
        idx = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        xb = self.x[idx]
        if self.augment:
            # Lesions have no orientation: any of the 8 flips/quarter turns is as likely.
            rng = np.random.default_rng([self.seed, self.epoch, i, 1])
            turns = rng.integers(0, 4, len(idx))
            flips = rng.integers(0, 2, len(idx)).astype(bool)
            xb = xb.copy()
            xb[flips] = xb[flips, :, ::-1]
            for k in (1, 2, 3):
                sel = turns == k
                xb[sel] = np.rot90(xb[sel], k, axes=(1, 2))
        if self.photometric is not None:
            xb = keras.ops.convert_to_numpy(self.photometric(xb, training=True))
        inputs = xb if self.metadata is None else {"image": xb, "metadata": self.metadata[idx]}
        return inputs, self.y[idx], self.w[idx]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._shuffle()


class _LearningRateLog(keras.callbacks.Callback):
    """Adds the learning rate at the end of each epoch to the history (``learning_rate``)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class _EpochLog(keras.callbacks.Callback):
    """One line per epoch, no timings: stable text for notebooks and nbval."""

    def __init__(self, epochs: int, bar: bool):
        super().__init__()
        self.epochs = epochs
        self.bar = None
        if bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=epochs, desc="train", unit="epoch")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        text = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "learning_rate")
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        else:
            print(f"epoch {epoch + 1:>3}/{self.epochs}  {text}", flush=True)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()


def dataset_fingerprint(rows: pd.DataFrame) -> str:
    """A short hash of the file names, labels and folds of a table: which split a run saw."""
    h = hashlib.sha256()
    for path, label, fold in zip(rows["path"], rows["label"], rows.get("fold", [""] * len(rows))):
        h.update(f"{os.path.basename(str(path))}\t{int(label)}\t{fold}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]


def _reserve_run_dir(run_dir: Path, overwrite: bool = False) -> Path:
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"{run_dir} exists and is a file, not a run folder")
    if not overwrite and run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(
            f"{run_dir} already exists and is not empty; a run folder is never overwritten. "
            "Choose a new folder, delete this one, or pass overwrite=True."
        )
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", suffix=".partial", dir=run_dir.parent))


def _recipe(model: str | keras.Model, given: dict[str, Any]) -> dict[str, Any]:
    """The settings of a run: the model's recipe (:data:`skinlib.models.RECIPES`), then what was given."""
    name = model if isinstance(model, str) else model.name
    settings = dict(RECIPES.get(name, RECIPES["v1"]))  # a model of another name: v1's (plain) settings
    if not isinstance(model, str):
        # A compiled model brings its own optimizer and learning rate: record none of the recipe's.
        settings.update(learning_rate=None, optimizer=None, schedule="constant")
    settings.update({k: v for k, v in given.items() if v is not None})
    if settings["augment"] is True:
        settings["augment"] = "dihedral"
    if settings["augment"] not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS} (or True for 'dihedral'), got {settings['augment']!r}")
    if settings["schedule"] not in ("constant", "cosine", "plateau"):
        raise ValueError(f"schedule must be 'constant', 'cosine' or 'plateau', got {settings['schedule']!r}")
    return settings


def _learning_rate(settings: dict, steps_per_epoch: int):
    """A constant rate, or a linear warm-up over the first 5% of steps then cosine decay to 0."""
    if settings["schedule"] != "cosine":
        return settings["learning_rate"]
    total = max(1, settings["epochs"] * steps_per_epoch)
    warmup = max(1, int(0.05 * total)) if settings["epochs"] > 1 else 0
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else settings["learning_rate"], decay_steps=max(1, total - warmup), alpha=0.0,
        warmup_target=settings["learning_rate"] if warmup else None, warmup_steps=warmup,
    )


def train(
    model: str | keras.Model,
    data: PreprocessResult,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    class_weight: str | dict | None = "balanced",
    augment: bool | str | None = None,
    faithful: bool = False,
    learning_rate: float | None = None,
    optimizer: str | None = None,
    schedule: str | None = None,
    best_epoch: bool | None = None,
    early_stopping: int | None = None,
    tta: bool | None = None,
    calibrate: bool = True,
    metadata: list[str] | tuple[str, ...] | None = None,
    model_options: dict[str, Any] | None = None,
    run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: str | None = "epochs",
    callbacks: Iterable[keras.callbacks.Callback] = (),
) -> pd.DataFrame:
    """Train ``model`` (``"v1"``, ``"v2"``, ``"v3"`` or a compiled Keras model) on ``data``.

    ``data`` is what :func:`skinlib.preprocess_dataset` returned for a table with a
    ``fold`` column (:func:`skinlib.split_dataset`): the model trains on ``train``
    and is validated on ``val`` after every epoch. Pixels are divided by 255.0.

    Settings left at ``None`` come from the model's recipe
    (:data:`skinlib.models.RECIPES`): v1 and v2 keep their published settings, v3
    gets this project's (full augmentation, AdamW with warm-up and cosine decay,
    best epoch, test-time augmentation). ``epochs``, ``batch_size``,
    ``learning_rate``; ``optimizer`` ``"adam"`` or ``"adamw"``; ``schedule``
    ``"constant"``, ``"cosine"`` (linear warm-up over 5% of the steps, then cosine
    decay) or ``"plateau"`` (halve the rate when validation ROC AUC stalls for 3
    epochs). ``augment``: ``False``, ``"dihedral"`` (or ``True``: random flips and
    quarter turns) or ``"full"`` (those, then a small random zoom, brightness and
    contrast change by Keras preprocessing layers). ``best_epoch=True`` keeps the
    weights of the epoch with the best validation ROC AUC; ``early_stopping=k``
    also stops when it has not improved for ``k`` epochs. ``tta=True`` averages
    the predictions over the eight flips and quarter turns (test-time
    augmentation); the run stores the choice and :func:`predict` follows it.
    ``class_weight="balanced"`` weights each class by the inverse of its share
    (``None``: no weights; or a dict).

    ``calibrate=True`` fits a temperature and a shift of the logit on the validation
    fold's predictions (:func:`skinlib.calibration.fit_temperature_shift`; the shift
    undoes the balanced class weights' lean towards "malignant") and stores them: the run's
    probabilities are then calibrated, their ranking unchanged.

    ``metadata`` (v3 only) names columns of ``data.rows`` to use besides the image,
    e.g. ``["age", "sex", "site"]`` from :func:`skinlib.load_dataset`. The encoding
    (standardised numbers, one-hot categories, missing-value indicators) is fitted
    on the train fold and stored in the run; label-carrying columns are refused.
    ``model_options`` go to the model's builder (v3: ``width``, ``dropout``).

    ``faithful=True`` reproduces the original runs as published: integer division
    of the pixels (``x // 255``), no class weights, no augmentation. It exists to
    show the difference, never as a default.

    Reproducible on the CPU: :func:`set_determinism` with ``seed`` before the model
    is built (so pass a name rather than a built model to control its initial
    weights). Progress: ``"epochs"`` prints one line per epoch, ``"bar"`` shows a
    tqdm bar, ``None`` is silent. ``callbacks`` are extra Keras callbacks (timers,
    loggers) passed to ``fit``.

    With ``run_dir``, writes ``model.keras``, ``history.csv``, ``predictions.csv``
    and ``config.json`` there. The folder is assembled under a temporary name and
    renamed when complete: an interrupted run leaves earlier runs intact and no
    half-written run. An existing, non-empty ``run_dir`` is an error unless
    ``overwrite=True``, which replaces it only once the new run is complete.

    Returns the history, one row per epoch (``epoch`` from 1).

    >>> history = train("v3", data, run_dir="runs/v3")  # doctest: +SKIP
    """
    if not isinstance(data, PreprocessResult):
        raise TypeError("data must be the result of skinlib.preprocess_dataset (a PreprocessResult)")
    if "fold" not in data.rows:
        raise ValueError("data.rows has no 'fold' column: call split_dataset before preprocess_dataset")
    if progress not in ("epochs", "bar", None):
        raise ValueError(f"progress must be 'epochs', 'bar' or None, got {progress!r}")
    settings = _recipe(model, dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                   augment=augment, optimizer=optimizer, schedule=schedule,
                                   best_epoch=best_epoch, tta=tta))
    if faithful:
        class_weight, settings["augment"] = None, False
    train_mask = (data.rows["fold"] == "train").to_numpy()
    val_mask = (data.rows["fold"] == "val").to_numpy()
    x_train, y_train = data.x[train_mask], data.y[train_mask]
    x_val, y_val = data.x[val_mask], data.y[val_mask]
    if len(x_train) == 0:
        raise ValueError("the train fold is empty")
    encoding = meta = None
    if metadata:
        encoding = fit_metadata(data.rows[train_mask], [metadata] if isinstance(metadata, str) else list(metadata))
        meta = encode_metadata(data.rows, encoding)
    tmp_dir = _reserve_run_dir(Path(run_dir), overwrite) if run_dir is not None else None
    try:
        set_determinism(seed)
        steps_per_epoch = int(np.ceil(len(x_train) / settings["batch_size"]))
        if isinstance(model, str):
            model_name = model
            model = build_model(
                model, input_shape=x_train.shape[1:], learning_rate=_learning_rate(settings, steps_per_epoch),
                optimizer=settings["optimizer"], metadata_features=meta.shape[1] if meta is not None else 0,
                **(model_options or {}),
            )
        else:
            model_name = model.name
            if meta is not None and len(model.inputs) != 2:
                raise ValueError("metadata needs a model with two inputs (image and metadata), "
                                 f"but {model.name!r} has {len(model.inputs)}")
        if class_weight == "balanced":
            weights = class_weights(y_train)
        elif class_weight is None:
            weights = {0: 1.0, 1: 1.0}
        elif isinstance(class_weight, dict):
            weights = {int(k): float(v) for k, v in class_weight.items()}
        else:
            raise ValueError(f"class_weight must be 'balanced', None or a dict, got {class_weight!r}")
        sample_w = np.array([weights.get(int(c), 1.0) for c in y_train], dtype=np.float32)
        batches = _Batches(
            scale_pixels(x_train, faithful), y_train.astype(np.float32), sample_w, settings["batch_size"], seed,
            settings["augment"], metadata=meta[train_mask] if meta is not None else None,
        )
        epochs_ = settings["epochs"]
        callbacks = [_LearningRateLog(), *callbacks, *([_EpochLog(epochs_, bar=progress == "bar")] if progress else [])]
        has_val = len(x_val) > 0
        keeper = None
        if (early_stopping or settings["best_epoch"]) and has_val and len(np.unique(y_val)) < 2:
            warnings.warn("the validation fold holds one class only: its ROC AUC is undefined, so training "
                          "runs every epoch and keeps the last one (no best epoch, no early stopping)", stacklevel=2)
        elif (early_stopping or settings["best_epoch"]) and has_val:
            keeper = keras.callbacks.EarlyStopping(
                monitor="val_auc", mode="max", patience=early_stopping or epochs_, restore_best_weights=True
            )
            callbacks.append(keeper)
        if settings["schedule"] == "plateau" and has_val:
            callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_auc", mode="max", factor=0.5, patience=3))
        validation = None
        if has_val:
            xv = scale_pixels(x_val, faithful)
            validation = (xv if meta is None else {"image": xv, "metadata": meta[val_mask]}, y_val.astype(np.float32))
        started = time.perf_counter()
        fit = model.fit(batches, epochs=epochs_, validation_data=validation, callbacks=callbacks, verbose=0)
        fit_seconds = time.perf_counter() - started
        history = pd.DataFrame(fit.history)
        history.insert(0, "epoch", np.arange(1, len(history) + 1))

        if tmp_dir is not None:
            settings.update(
                epochs_run=len(history), seed=seed, class_weight=weights if class_weight is not None else None,
                faithful=faithful, early_stopping=early_stopping,
                best_epoch_found=int(keeper.best_epoch) + 1 if keeper is not None else len(history),
                calibrate=calibrate, metadata=encoding, model_options=model_options or {},
                fit_seconds=round(fit_seconds, 1),
            )
            _write_run(tmp_dir, model, model_name, data, history, settings, meta)
            _swap_in(tmp_dir, Path(run_dir))
            tmp_dir = None
        return history
    finally:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)


def _swap_in(new: Path, run_dir: Path) -> None:
    """Move a completed run folder into place; an old one is moved aside, then deleted."""
    old = None
    if run_dir.exists():
        if not any(run_dir.iterdir()):
            run_dir.rmdir()
        else:
            old = run_dir.with_name(f".{run_dir.name}.replaced-{os.getpid()}")
            os.replace(run_dir, old)
    os.replace(new, run_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
        if len(specs) == 1:
            fn = tf.function(lambda x: ref()(x, training=False), input_signature=specs)
        else:
            fn = tf.function(lambda x, m: ref()({"image": x, "metadata": m}, training=False), input_signature=specs)
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
    with tqdm(total=len(views) * len(starts), desc="predict", unit="batch", disable=not progress) as bar:
        for k in views:
            for start in starts:
                xb = np.ascontiguousarray(dihedral(x[start : start + batch_size], k), dtype=np.float32)
                args = (xb,) if metadata is None else (xb, metadata[start : start + batch_size].astype(np.float32))
                total[start : start + len(xb)] += np.asarray(fn(*args), dtype=np.float64).ravel()
                bar.update(1)
    return total / len(views)


def _write_run(folder: Path, model, model_name: str, data: PreprocessResult, history: pd.DataFrame,
               settings: dict, metadata: np.ndarray | None) -> None:
    rows = data.rows
    raw = predict_arrays(model, scale_pixels(data.x, settings["faithful"]), metadata=metadata, tta=settings["tta"])
    preds = pd.DataFrame({
        "path": rows["path"].astype(str), "fold": rows["fold"], "label": rows["label"].astype(int),
        "probability_uncalibrated": raw,
    })
    calibration = _calibrate(preds, settings["calibrate"])
    config = {
        "model": model_name,
        "parameters": int(model.count_params()),
        "input_shape": list(data.x.shape[1:]),
        "preprocess": data.config.to_dict() if data.config is not None else None,
        **settings,
        **calibration,
        "dataset": rows.attrs.get("root", ""),
        "dataset_layout": rows.attrs.get("layout", ""),
        "dataset_fingerprint": dataset_fingerprint(rows),
        "folds": {k: int(v) for k, v in rows["fold"].value_counts().sort_index().items()},
        "versions": {"keras": keras.__version__, "backend": keras.backend.backend(), "python": sys.version.split()[0]},
    }
    model.save(folder / "model.keras")
    history.to_csv(folder / "history.csv", index=False)
    preds[["path", "fold", "label", "probability", "probability_uncalibrated"]].to_csv(
        folder / "predictions.csv", index=False)
    (folder / "config.json").write_text(json.dumps(config, indent=2, default=float))


def _calibrate(preds: pd.DataFrame, calibrate: bool) -> dict[str, Any]:
    """Fit the calibration and the threshold on the validation rows of ``preds``; adds its
    ``probability`` column and returns the config entries."""
    val_mask = (preds["fold"] == "val").to_numpy()
    y, raw = preds["label"].to_numpy()[val_mask], preds["probability_uncalibrated"].to_numpy()[val_mask]
    temperature, shift = 1.0, 0.0
    # Both classes are needed, and predictions that differ (an "as published" model
    # answers the same for every image: there is nothing to rescale).
    if calibrate and len(np.unique(y)) == 2 and np.ptp(raw) > 1e-9:
        temperature, shift = fit_temperature_shift(y, raw)
    preds["probability"] = apply_temperature(preds["probability_uncalibrated"].to_numpy(), temperature, shift)
    val = preds[val_mask]
    return {
        "temperature": temperature,
        "shift": shift,
        "calibration": ("temperature and shift of the logit fitted on the validation fold"
                        if (temperature, shift) != (1.0, 0.0) else "none"),
        "threshold": choose_threshold(val["label"], val["probability"]) if len(val) else 0.5,
        "threshold_rule": "Youden's J on the validation fold" if len(val) else "0.5 (no validation fold)",
    }


def calibrate_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Refit a run's calibration and threshold on its validation fold, in place.

    For run folders written before runs fitted a shift: reads ``predictions.csv``
    (its ``probability_uncalibrated``, or ``probability`` for older runs), fits a
    temperature and shift on the validation rows, recomputes the calibrated
    probabilities and the threshold, and rewrites ``predictions.csv`` and
    ``config.json`` atomically. The model is untouched; ROC AUC does not change.
    Returns the new calibration entries.
    """
    from skinlib.preprocess import atomic_write

    path = Path(run_dir)
    model_config = json.loads((path / "config.json").read_text())
    preds = pd.read_csv(path / "predictions.csv")
    if "probability_uncalibrated" not in preds:
        preds["probability_uncalibrated"] = preds["probability"]
    entries = _calibrate(preds, True)
    model_config.update(entries, calibrate=True)
    columns = ["path", "fold", "label", "probability", "probability_uncalibrated"]
    atomic_write(path / "predictions.csv", lambda fh: preds[columns].to_csv(fh, index=False), mode="w")
    atomic_write(path / "config.json", lambda fh: fh.write(json.dumps(model_config, indent=2, default=float)),
                 mode="w")
    _LOADED.clear()  # a cached copy of this run would carry the old calibration
    return entries


# --------------------------------------------------------------------------- prediction


def load_run(run_dir: str | os.PathLike) -> tuple[keras.Model, dict[str, Any], Preprocess]:
    """Load a run folder's model, its config dict and its :class:`Preprocess`.

    ``run_dir`` may also be the path of the ``model.keras`` inside it.
    """
    path = Path(run_dir)
    if path.suffix == ".keras":
        path = path.parent
    if not path.is_dir():
        raise RunFolderError(f"{path}: not a run folder (it does not exist)")
    for name in ("model.keras", "config.json"):
        if not (path / name).is_file():
            raise RunFolderError(f"{path}: not a complete run folder, {name} is missing (was training interrupted?)")
    try:
        config = json.loads((path / "config.json").read_text())
        preprocess = Preprocess.from_dict(config["preprocess"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(f"{path / 'config.json'}: not a valid run config ({exc})") from None
    try:
        model = keras.saving.load_model(path / "model.keras")
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a damaged file
        raise RunFolderError(f"{path / 'model.keras'}: cannot load the model ({exc})") from None
    return model, config, preprocess


_LOADED: dict[tuple[str, ...], tuple[keras.Model, dict[str, Any], Preprocess]] = {}


def _inode(path: Path) -> int:
    try:
        return os.stat(path).st_ino
    except OSError:
        return -1


def _cached_run(run_dir: str | os.PathLike) -> tuple[keras.Model, dict[str, Any], Preprocess]:
    """:func:`load_run`, remembered while the folder's files are unchanged (the 4 runs loaded last)."""
    path = Path(run_dir)
    path = path.parent if path.suffix == ".keras" else path
    # The inode too: a retrained run (overwrite=True) is a new file even within one mtime tick.
    key = tuple([str(path.resolve())] + [f"{file_stamp(f)}:{_inode(f)}" for f in (path / "model.keras", path / "config.json")])
    if key not in _LOADED:
        loaded = load_run(path)
        while len(_LOADED) >= 4:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = loaded
    return _LOADED[key]


def image_files(images: Iterable[str | os.PathLike]) -> list[Path]:
    """The image files among ``images``: files as given, folders searched recursively (sorted)."""
    files: list[Path] = []
    for item in images:
        p = Path(item)
        if p.is_dir():
            files += sorted(
                f for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS and not _is_system_file(f.name)
            )
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such image or folder")
    return files


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
    """
    encoding = config.get("metadata")
    if encoding and metadata is None:
        if metadata_table is None:
            raise ValueError(f"this run was trained with metadata ({', '.join(encoding['columns'])}): "
                             "pass the images' metadata")
        metadata = encode_metadata(metadata_table, encoding)
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
    labels = np.where(~read, "", np.where(probs >= threshold, "malignant", "benign"))
    for e in errors:
        if e:
            warnings.warn(e, stacklevel=2)
    return pd.DataFrame({"file": [str(f) for f in files], "probability": probs, "label": labels, "error": errors})
