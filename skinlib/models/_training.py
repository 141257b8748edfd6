"""Training a model on preprocessed arrays, then handing the run to :mod:`skinlib.runs`.

:func:`train` fits the model, predicts every image once (:func:`run_predictions`:
the stored predictions are what :func:`skinlib.predict` would give), and gives the
model, its history, those predictions and its config to
:func:`skinlib.runs.write_run`, which owns the run folder. Prediction with a saved
run is :mod:`skinlib.models._prediction`'s job.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Any, Iterable

import numpy as np
import pandas as pd

from skinlib.models._allocator import keep_freed_memory
from skinlib.data import class_weights
from skinlib.models._metadata import encode_metadata, fit_metadata
from skinlib.models._builders import build_model
from skinlib.preprocessing.filters import dihedral
from skinlib.evaluation import calibrate_predictions
from skinlib.models._prediction import predict_arrays, scale_pixels
from skinlib.models._recipes import RECIPES
from skinlib.preprocessing import PreprocessResult
from skinlib.runs import PREDICTION_COLUMNS, check_run_dir, dataset_fingerprint, write_run
from skinlib._shared.tensorflow import import_keras

keras = import_keras()  # TensorFlow's start-up notices kept out of the outputs

__all__ = ["train", "run_predictions", "set_determinism", "AUGMENTATIONS"]

#: What ``train(augment=...)`` accepts: none, the eight flips and quarter turns, or
#: those plus a small random zoom, brightness and contrast change.
AUGMENTATIONS = (False, "dihedral", "full")


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and the backend, and ask TensorFlow for deterministic ops.

    With these, the same seed and data give the same weights on the CPU.

    Parameters
    ----------
    seed : int
        The seed of Python's ``random``, NumPy and the backend
        (``keras.utils.set_random_seed``).
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


def _class_weights(class_weight: str | dict | None, y_train: np.ndarray) -> dict[int, float]:
    if class_weight == "balanced":
        return class_weights(y_train)
    if class_weight is None:
        return {0: 1.0, 1: 1.0}
    if isinstance(class_weight, dict):
        return {int(k): float(v) for k, v in class_weight.items()}
    raise ValueError(f"class_weight must be 'balanced', None or a dict, got {class_weight!r}")


def _build(model: str | keras.Model, settings: dict, input_shape: tuple, metadata_features: int,
           steps_per_epoch: int, model_options: dict | None) -> keras.Model:
    """The model to train: built from its name (after the seed is set), or the one given, checked."""
    if isinstance(model, str):
        return build_model(
            model, input_shape=input_shape, learning_rate=_learning_rate(settings, steps_per_epoch),
            optimizer=settings["optimizer"], metadata_features=metadata_features, **(model_options or {}),
        )
    if metadata_features and len(model.inputs) != 2:
        raise ValueError("metadata needs a model with two inputs (image and metadata), "
                         f"but {model.name!r} has {len(model.inputs)}")
    return model


def _callbacks(settings: dict, y_val: np.ndarray, early_stopping: int | None, progress: str | None,
               extra: Iterable[keras.callbacks.Callback]) -> tuple[list, keras.callbacks.EarlyStopping | None]:
    """The callbacks of ``fit`` and the one that keeps the best epoch (None if no best epoch is kept)."""
    epochs = settings["epochs"]
    callbacks = [_LearningRateLog(), *extra, *([_EpochLog(epochs, bar=progress == "bar")] if progress else [])]
    has_val = len(y_val) > 0
    keeper = None
    if (early_stopping or settings["best_epoch"]) and has_val and len(np.unique(y_val)) < 2:
        warnings.warn("the validation fold holds one class only: its ROC AUC is undefined, so training "
                      "runs every epoch and keeps the last one (no best epoch, no early stopping)", stacklevel=3)
    elif (early_stopping or settings["best_epoch"]) and has_val:
        keeper = keras.callbacks.EarlyStopping(
            monitor="val_auc", mode="max", patience=early_stopping or epochs, restore_best_weights=True
        )
        callbacks.append(keeper)
    if settings["schedule"] == "plateau" and has_val:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_auc", mode="max", factor=0.5, patience=3))
    return callbacks, keeper


def run_predictions(model: keras.Model, data: PreprocessResult, *, faithful: bool = False, tta: bool = False,
                    calibrate: bool = True, metadata: np.ndarray | None = None) -> tuple[pd.DataFrame, dict]:
    """A trained model's predictions for every row of ``data``, calibrated on its validation fold.

    Parameters
    ----------
    model : keras.Model
        The trained model.
    data : PreprocessResult
        What it trained on; ``data.rows`` has a ``fold`` column.
    faithful, tta : bool
        The run's pixel scaling and test-time augmentation.
    calibrate : bool
        Fit a temperature and a shift on the validation fold
        (:func:`skinlib.evaluation.calibrate_predictions`).
    metadata : numpy.ndarray, optional
        The encoded metadata of a two-input model, one row per image.

    Returns
    -------
    (pandas.DataFrame, dict)
        The table of :data:`skinlib.runs.PREDICTION_COLUMNS` and the calibration
        entries of the run's config (temperature, shift, threshold...).
    """
    rows = data.rows
    raw = predict_arrays(model, scale_pixels(data.x, faithful), metadata=metadata, tta=tta)
    predictions = pd.DataFrame({
        "path": rows["path"].astype(str), "fold": rows["fold"], "label": rows["label"].astype(int),
        "probability_uncalibrated": raw,
    })
    calibration = calibrate_predictions(predictions, calibrate)
    return predictions[list(PREDICTION_COLUMNS)], calibration


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
    progress: bool | str | None = True,
    callbacks: Iterable[keras.callbacks.Callback] = (),
) -> pd.DataFrame:
    """Train a model on preprocessed images, validate it every epoch, and save a run folder.

    The model trains on the ``train`` rows of ``data`` and is validated on its ``val``
    rows after every epoch. Pixels are divided by 255.0. Settings left at ``None``
    come from the model's recipe (:data:`skinlib.models.RECIPES`): v1 and v2 keep
    their published settings, v3 gets this project's (full augmentation, AdamW with
    warm-up and cosine decay, best epoch, test-time augmentation). Reproducible on
    the CPU: :func:`set_determinism` with ``seed`` runs before the model is built.
    Training asks ``malloc`` to reuse freed memory
    (:func:`skinlib.models._allocator.keep_freed_memory`: faster, same results).

    Parameters
    ----------
    model : str or keras.Model
        ``"v1"``, ``"v2"``, ``"v3"``, or a compiled Keras model (pass a name to let
        ``seed`` control the initial weights).
    data : PreprocessResult
        What :func:`skinlib.preprocess_dataset` returned for a table with a ``fold``
        column (:func:`skinlib.split_dataset`).
    epochs, batch_size : int, optional
        The recipe's unless given.
    seed : int
        Seeds the weights, the batch order and the augmentation.
    class_weight : {"balanced", None} or dict
        ``"balanced"`` weights each class by the inverse of its share; ``None``: no
        weights; or a dict ``{0: w0, 1: w1}``.
    augment : {False, "dihedral", "full"} or bool, optional
        ``"dihedral"`` (or ``True``): random flips and quarter turns; ``"full"``:
        those, then a small random zoom, brightness and contrast change (Keras
        preprocessing layers).
    faithful : bool
        Reproduce the original runs as published: integer division of the pixels
        (``x // 255``), no class weights, no augmentation. It exists to show the
        difference, never as a default.
    learning_rate : float, optional
        The peak learning rate.
    optimizer : {"adam", "adamw"}, optional
    schedule : {"constant", "cosine", "plateau"}, optional
        ``"cosine"``: linear warm-up over 5% of the steps, then cosine decay to 0;
        ``"plateau"``: halve the rate when validation ROC AUC stalls for 3 epochs.
    best_epoch : bool, optional
        Keep the weights of the epoch with the best validation ROC AUC.
    early_stopping : int, optional
        Also stop when validation ROC AUC has not improved for this many epochs.
    tta : bool, optional
        Average the predictions over the eight flips and quarter turns (test-time
        augmentation); the run stores the choice and :func:`skinlib.predict` follows it.
    calibrate : bool
        Fit a temperature and a shift of the logit on the validation fold's
        predictions (:func:`skinlib.evaluation.fit_temperature_shift`; the shift
        undoes the balanced class weights' lean towards "malignant") and store them:
        the run's probabilities are then calibrated, their ranking unchanged.
    metadata : list of str, optional
        v3 only: columns of ``data.rows`` to use besides the image, e.g. ``["age",
        "sex", "site"]``. The encoding (standardised numbers, one-hot categories,
        missing-value indicators) is fitted on the train fold and stored in the
        run; label-carrying columns are refused.
    model_options : dict, optional
        Go to the model's builder (v3: ``width``, ``dropout``).
    run_dir : str or path-like, optional
        Write the run folder here (:func:`skinlib.runs.write_run`: whole or not at
        all). An existing, non-empty ``run_dir`` is an error, checked before
        training, unless ``overwrite=True``, which replaces a run there once the new
        one is complete (never a folder holding other files).
    overwrite : bool
        See ``run_dir``.
    progress : bool or {"epochs", "bar"}
        Show progress, as every ``progress`` of skinlib: ``True`` (the default) or ``"epochs"`` prints
        one line per epoch, ``"bar"`` shows a tqdm bar, ``False`` (or ``None``) shows nothing.
    callbacks : iterable of keras.callbacks.Callback
        Extra Keras callbacks (timers, loggers) passed to ``fit``.

    Returns
    -------
    pandas.DataFrame
        The history, one row per epoch (``epoch`` from 1).

    Examples
    --------
    >>> history = train("v3", data, run_dir="runs/v3")  # doctest: +SKIP
    """
    if not isinstance(data, PreprocessResult):
        raise TypeError("data must be the result of skinlib.preprocess_dataset (a PreprocessResult)")
    if "fold" not in data.rows:
        raise ValueError("data.rows has no 'fold' column: call split_dataset before preprocess_dataset")
    if progress not in (True, False, "epochs", "bar", None):
        raise ValueError(f"progress must be True, False, 'epochs' or 'bar', got {progress!r}")
    progress = "epochs" if progress is True else (progress or None)
    settings = _recipe(model, dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                   augment=augment, optimizer=optimizer, schedule=schedule,
                                   best_epoch=best_epoch, tta=tta))
    if faithful:
        class_weight, settings["augment"] = None, False
    train_mask = (data.rows["fold"] == "train").to_numpy()
    val_mask = (data.rows["fold"] == "val").to_numpy()
    if not train_mask.any():
        raise ValueError("the train fold is empty")
    weights = _class_weights(class_weight, data.y[train_mask])
    encoding = meta = None
    if metadata:
        encoding = fit_metadata(data.rows[train_mask], [metadata] if isinstance(metadata, str) else list(metadata))
        meta = encode_metadata(data.rows, encoding)
    if run_dir is not None:
        check_run_dir(run_dir, overwrite)  # fail now, not after training
        if data.config is None:
            raise ValueError("data.config is None: a run folder records the preprocessing its images went through "
                             "(pass the result of preprocess_dataset, or set its config)")

    set_determinism(seed)
    keep_freed_memory()
    model_name = model if isinstance(model, str) else model.name
    model, history, keeper, fit_seconds = _fit(
        model, settings, data.x, data.y, train_mask, val_mask, meta, weights, seed=seed, faithful=faithful,
        early_stopping=early_stopping, progress=progress, callbacks=callbacks, model_options=model_options)
    if run_dir is None:
        return history

    predictions, calibration = run_predictions(model, data, faithful=faithful, tta=settings["tta"],
                                               calibrate=calibrate, metadata=meta)
    settings.update(
        epochs_run=len(history), seed=seed, class_weight=weights if class_weight is not None else None,
        faithful=faithful, early_stopping=early_stopping,
        best_epoch_found=int(keeper.best_epoch) + 1 if keeper is not None else len(history),
        calibrate=calibrate, metadata=encoding, model_options=model_options or {},
        fit_seconds=round(fit_seconds, 1),
    )
    config = _run_config(model_name, model, data, settings, calibration)
    write_run(run_dir, model=model, history=history, predictions=predictions, config=config, overwrite=overwrite)
    return history


def _fit(model: str | keras.Model, settings: dict, x: np.ndarray, y: np.ndarray, train_mask: np.ndarray,
         val_mask: np.ndarray, meta: np.ndarray | None, weights: dict[int, float], *, seed: int, faithful: bool,
         early_stopping: int | None, progress: str | None, callbacks, model_options):
    """Build the model and fit it on the train rows, validating on the val rows.

    Returns the fitted model, its history (one row per epoch, ``epoch`` first), the best-epoch
    keeper of the callbacks (None without one) and the seconds the fit took.
    """
    x_train, y_train, x_val, y_val = x[train_mask], y[train_mask], x[val_mask], y[val_mask]
    steps_per_epoch = int(np.ceil(len(x_train) / settings["batch_size"]))
    model = _build(model, settings, x_train.shape[1:], meta.shape[1] if meta is not None else 0, steps_per_epoch,
                   model_options)
    sample_w = np.array([weights.get(int(c), 1.0) for c in y_train], dtype=np.float32)
    batches = _Batches(
        scale_pixels(x_train, faithful), y_train.astype(np.float32), sample_w, settings["batch_size"], seed,
        settings["augment"], metadata=meta[train_mask] if meta is not None else None,
    )
    fit_callbacks, keeper = _callbacks(settings, y_val, early_stopping, progress, callbacks)
    validation = None
    if len(x_val):
        xv = scale_pixels(x_val, faithful)
        validation = (xv if meta is None else {"image": xv, "metadata": meta[val_mask]}, y_val.astype(np.float32))
    started = time.perf_counter()
    fit = model.fit(batches, epochs=settings["epochs"], validation_data=validation, callbacks=fit_callbacks,
                    verbose=0)
    fit_seconds = time.perf_counter() - started
    history = pd.DataFrame(fit.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    return model, history, keeper, fit_seconds


def _run_config(model_name: str, model: keras.Model, data: PreprocessResult, settings: dict,
                calibration: dict) -> dict[str, Any]:
    """What a run folder's config records: the model, its input and preprocessing, the settings, the
    calibration, the dataset (root, layout, fingerprint, fold sizes) and the versions that trained it.
    """
    rows = data.rows
    return {
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
