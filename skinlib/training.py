"""Training a model on preprocessed arrays and saving a run folder.

A run folder holds everything needed to reuse and audit a trained model:
``model.keras``, ``history.csv`` (one row per epoch), ``predictions.csv``
(every image's probability, calibrated and not) and ``config.json`` (model,
preprocessing, training settings, seed, class weights, metadata encoding,
calibration, threshold, dataset and its fingerprint). Prediction with a saved
run is :mod:`skinlib.prediction`'s job.
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
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from skinlib.allocator import keep_freed_memory
from skinlib.datasets import class_weights
from skinlib.metadata import encode_metadata, fit_metadata
from skinlib.models import RECIPES, build_model, keras  # Keras as skinlib.models imports it: quietly
from skinlib.filters import dihedral
from skinlib.prediction import calibrate_predictions, predict_arrays, scale_pixels
from skinlib.preprocess import PreprocessResult

__all__ = ["train", "set_determinism", "dataset_fingerprint", "AUGMENTATIONS"]

#: What ``train(augment=...)`` accepts: none, the eight flips and quarter turns, or
#: those plus a small random zoom, brightness and contrast change.
AUGMENTATIONS = (False, "dihedral", "full")


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and the backend, and ask TensorFlow for deterministic ops.

    With these, the same seed and data give the same weights on the CPU.
    """
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


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
            flips = rng.integers(0, 2, len(idx))
            view = turns + 4 * flips  # flip (if drawn) then turn: dihedral's k
            xb = xb.copy()
            for k in range(1, 8):
                sel = view == k
                xb[sel] = dihedral(xb[sel], k)
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
    loggers) passed to ``fit``. Training asks ``malloc`` to reuse freed memory
    (:func:`skinlib.allocator.keep_freed_memory`: faster, same results).

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
        keep_freed_memory()
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


def _write_run(folder: Path, model, model_name: str, data: PreprocessResult, history: pd.DataFrame,
               settings: dict, metadata: np.ndarray | None) -> None:
    rows = data.rows
    raw = predict_arrays(model, scale_pixels(data.x, settings["faithful"]), metadata=metadata, tta=settings["tta"])
    preds = pd.DataFrame({
        "path": rows["path"].astype(str), "fold": rows["fold"], "label": rows["label"].astype(int),
        "probability_uncalibrated": raw,
    })
    calibration = calibrate_predictions(preds, settings["calibrate"])
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
