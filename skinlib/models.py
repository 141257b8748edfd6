"""The original project's two small CNNs, as pure Keras 3 layers.

Both take a 28x28x1 image scaled to [0, 1] and end in one sigmoid unit: the
probability that the lesion is malignant. Look them up by name with
:func:`build_model` so that a notebook or a config can choose.
"""

from __future__ import annotations

import os
import sys

# TensorFlow's C++ log lines (CUDA probing, tf.data attribute notices) would land in
# notebook outputs; 3 silences them unless the user has set the variable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_keras_quietly():
    """Import Keras; with TF_CPP_MIN_LOG_LEVEL=3, hide TensorFlow's start-up notices.

    TensorFlow prints "oneDNN custom operations are on" and "Could not find cuda
    drivers" straight to file descriptor 2 before its logging honours
    TF_CPP_MIN_LOG_LEVEL, so they would reach notebook outputs. They are silenced
    for the import only; errors raise Python exceptions and still show.
    """
    if "keras" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        import keras
        return keras
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return keras


keras = _import_keras_quietly()
from keras import layers  # noqa: E402

__all__ = ["build_v1", "build_v2", "build_model", "MODELS"]


def build_v1(input_shape: tuple[int, int, int] = (28, 28, 1)) -> keras.Model:
    """Run 1: Conv2D(10) - MaxPool - Flatten - Dropout - Dense(100) - Dense(1).

    196,301 parameters at 28x28x1, as published.

    >>> build_v1().count_params()
    196301
    """
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(10, 3, activation="relu", padding="same"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(100, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="v1",
    )


def build_v2(input_shape: tuple[int, int, int] = (28, 28, 1)) -> keras.Model:
    """Run 2: three Conv2D(16)/MaxPool blocks - Dense(128) - Dropout - Dense(32) - Dropout - Dense(1).

    27,521 parameters at 28x28x1, as published.

    >>> build_v2().count_params()
    27521
    """
    blocks = []
    for _ in range(3):
        blocks += [layers.Conv2D(16, 3, activation="relu", padding="same"), layers.MaxPooling2D(2)]
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            *blocks,
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(32, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="v2",
    )


MODELS = {"v1": build_v1, "v2": build_v2}


def build_model(
    name: str,
    input_shape: tuple[int, int, int] = (28, 28, 1),
    learning_rate: float = 1e-3,
    compile: bool = True,
) -> keras.Model:
    """Build ``"v1"`` or ``"v2"``, compiled with Adam and binary cross-entropy.

    Tracks accuracy (the original's only metric) and ROC AUC (which accuracy hides:
    a model that always says "benign" has high accuracy and an AUC of 0.5).

    >>> build_model("v2").loss
    'binary_crossentropy'
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    model = MODELS[name](input_shape)
    if compile:
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="binary_crossentropy",
            metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
        )
    return model
