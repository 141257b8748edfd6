"""Training a model on preprocessed arrays, saving a run folder, and predicting with it.

A run folder holds everything needed to reuse and audit a trained model:
``model.keras``, ``history.csv`` (one row per epoch), ``predictions.csv``
(validation and test probabilities) and ``config.json`` (model, preprocessing,
epochs, batch size, seed, class weights, dataset and its fingerprint, threshold).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from skinlib.datasets import IMAGE_EXTENSIONS, _is_system_file, class_weights
from skinlib.evaluate import choose_threshold
from skinlib.models import build_model, keras  # Keras as skinlib.models imports it: quietly
from skinlib.preprocess import ImageReadError, Preprocess, PreprocessResult

__all__ = ["train", "scale_pixels", "set_determinism", "load_run", "predict", "RunFolderError", "dataset_fingerprint"]


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


class _Batches(keras.utils.PyDataset):
    """Shuffled (and optionally flipped and rotated) batches, reproducible for a seed."""

    def __init__(self, x, y, w, batch_size: int, seed: int, augment: bool):
        super().__init__()
        self.x, self.y, self.w = x, y, w
        self.batch_size, self.seed, self.augment = batch_size, seed, augment
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
        return xb, self.y[idx], self.w[idx]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._shuffle()


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


def train(
    model: str | keras.Model,
    data: PreprocessResult,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    seed: int = 0,
    class_weight: str | dict | None = "balanced",
    augment: bool = False,
    faithful: bool = False,
    learning_rate: float = 1e-3,
    early_stopping: int | None = None,
    run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: str | None = "epochs",
    callbacks: Iterable[keras.callbacks.Callback] = (),
) -> pd.DataFrame:
    """Train ``model`` (``"v1"``, ``"v2"`` or a compiled Keras model) on ``data``.

    ``data`` is what :func:`skinlib.preprocess_dataset` returned for a table with a
    ``fold`` column (:func:`skinlib.split_dataset`): the model trains on ``train``
    and is validated on ``val`` after every epoch. Pixels are divided by 255.0.
    ``class_weight="balanced"`` weights each class by the inverse of its share
    (``None``: no weights; or a dict). ``augment`` flips and turns training images
    by quarter turns at random. ``early_stopping=k`` stops when validation ROC AUC
    has not improved for ``k`` epochs and keeps the best weights.

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
    """
    if not isinstance(data, PreprocessResult):
        raise TypeError("data must be the result of skinlib.preprocess_dataset (a PreprocessResult)")
    if "fold" not in data.rows:
        raise ValueError("data.rows has no 'fold' column: call split_dataset before preprocess_dataset")
    x_train, y_train = data.fold("train")
    x_val, y_val = data.fold("val")
    if len(x_train) == 0:
        raise ValueError("the train fold is empty")
    if progress not in ("epochs", "bar", None):
        raise ValueError(f"progress must be 'epochs', 'bar' or None, got {progress!r}")
    if faithful:
        class_weight, augment = None, False
    tmp_dir = _reserve_run_dir(Path(run_dir), overwrite) if run_dir is not None else None
    try:
        set_determinism(seed)
        if isinstance(model, str):
            model_name = model
            model = build_model(model, input_shape=x_train.shape[1:], learning_rate=learning_rate)
        else:
            model_name = model.name
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
            scale_pixels(x_train, faithful), y_train.astype(np.float32), sample_w, batch_size, seed, augment
        )
        callbacks = [*callbacks, *([_EpochLog(epochs, bar=progress == "bar")] if progress else [])]
        has_val = len(x_val) > 0
        if early_stopping and has_val:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_auc", mode="max", patience=early_stopping, restore_best_weights=True
                )
            )
        fit = model.fit(
            batches,
            epochs=epochs,
            validation_data=(scale_pixels(x_val, faithful), y_val.astype(np.float32)) if has_val else None,
            callbacks=callbacks,
            verbose=0,
        )
        history = pd.DataFrame(fit.history)
        history.insert(0, "epoch", np.arange(1, len(history) + 1))

        if tmp_dir is not None:
            _write_run(
                tmp_dir, model, model_name, data, history,
                dict(
                    epochs=epochs, epochs_run=len(history), batch_size=batch_size, seed=seed,
                    class_weight=weights if class_weight is not None else None, augment=augment,
                    faithful=faithful, learning_rate=learning_rate, early_stopping=early_stopping,
                ),
            )
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


def _predict_probs(model: keras.Model, x: np.ndarray, faithful: bool, batch_size: int = 512) -> np.ndarray:
    if len(x) == 0:
        return np.zeros(0, dtype=np.float64)
    return model.predict(scale_pixels(x, faithful), batch_size=batch_size, verbose=0).ravel().astype(np.float64)


def _write_run(folder: Path, model, model_name: str, data: PreprocessResult, history: pd.DataFrame, settings: dict) -> None:
    faithful = settings["faithful"]
    rows = data.rows
    probs = _predict_probs(model, data.x, faithful)
    preds = pd.DataFrame(
        {"path": rows["path"].astype(str), "fold": rows["fold"], "label": rows["label"].astype(int), "probability": probs}
    )
    val = preds[preds["fold"] == "val"]
    threshold = choose_threshold(val["label"], val["probability"]) if len(val) else 0.5
    config = {
        "model": model_name,
        "parameters": int(model.count_params()),
        "input_shape": list(data.x.shape[1:]),
        "preprocess": data.config.to_dict() if data.config is not None else None,
        **settings,
        "threshold": threshold,
        "threshold_rule": "Youden's J on the validation fold" if len(val) else "0.5 (no validation fold)",
        "dataset": rows.attrs.get("root", ""),
        "dataset_layout": rows.attrs.get("layout", ""),
        "dataset_fingerprint": dataset_fingerprint(rows),
        "folds": {k: int(v) for k, v in rows["fold"].value_counts().sort_index().items()},
        "versions": {"keras": keras.__version__, "backend": keras.backend.backend(), "python": sys.version.split()[0]},
    }
    model.save(folder / "model.keras")
    history.to_csv(folder / "history.csv", index=False)
    preds.to_csv(folder / "predictions.csv", index=False)
    (folder / "config.json").write_text(json.dumps(config, indent=2, default=float))


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


def _expand(images: Iterable[str | os.PathLike]) -> list[Path]:
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


def predict(run: str | os.PathLike, images: str | os.PathLike | Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Malignancy probabilities for image files with a saved run's model.

    Each image goes through the same :class:`Preprocess` the run was trained with
    (read from its ``config.json``) and the run's pixel scaling. ``images`` is a
    file, a folder (searched recursively) or a list of them. Returns one row per
    file: ``file``, ``probability``, ``label`` (``malignant`` or ``benign`` at the
    run's threshold) and ``error`` (why a file could not be read; its probability
    is then NaN).

    >>> predict("runs/sample/v2", "my_images/")  # doctest: +SKIP
    """
    model, config, preprocess = load_run(run)
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    files = _expand(images)
    x = np.zeros((len(files),) + preprocess.output_shape, np.uint8)
    errors = [""] * len(files)
    for i, f in enumerate(files):
        try:
            x[i] = preprocess.load(f)
        except ImageReadError as exc:
            errors[i] = str(exc)
    ok = np.array([not e for e in errors], dtype=bool)
    probs = np.full(len(files), np.nan)
    probs[ok] = _predict_probs(model, x[ok], config.get("faithful", False))
    threshold = float(config.get("threshold", 0.5))
    labels = np.where(~ok, "", np.where(probs >= threshold, "malignant", "benign"))
    for e in errors:
        if e:
            warnings.warn(e, stacklevel=2)
    return pd.DataFrame({"file": [str(f) for f in files], "probability": probs, "label": labels, "error": errors})
