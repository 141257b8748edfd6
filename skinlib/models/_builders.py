"""The models, as pure Keras 3 layers: the original project's two small CNNs and v3.

v1 and v2 take a 28x28x1 image scaled to [0, 1]; v3 a colour image of at most
64x64 pixels, optionally with a vector of patient metadata. All end in one sigmoid
unit: the probability that the lesion is malignant. Look them up by name with
:func:`build_model` so that a notebook or a config can choose; :data:`skinlib.models.RECIPES`
holds each model's default training settings.
"""

from __future__ import annotations

from skinlib._shared.tensorflow import import_keras

keras = import_keras()
from keras import layers  # noqa: E402

__all__ = ["build_v1", "build_v2", "build_v3", "build_model", "MODELS"]


def build_v1(input_shape: tuple[int, int, int] = (28, 28, 1)) -> keras.Model:
    """Run 1: Conv2D(10) - MaxPool - Flatten - Dropout - Dense(100) - Dense(1).

    196,301 parameters at 28x28x1, as published.

    Parameters
    ----------
    input_shape : tuple of int
        The image input ``(height, width, channels)`` (default ``(28, 28, 1)``, as
        published).

    Returns
    -------
    keras.Sequential
        The model named ``"v1"``, not compiled (:func:`build_model` compiles it): one
        sigmoid output, the probability of "malignant".

    Examples
    --------
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

    Parameters
    ----------
    input_shape : tuple of int
        The image input ``(height, width, channels)`` (default ``(28, 28, 1)``, as
        published).

    Returns
    -------
    keras.Sequential
        The model named ``"v2"``, not compiled (:func:`build_model` compiles it): one
        sigmoid output, the probability of "malignant".

    Examples
    --------
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


def _conv_bn(x, filters: int, *, strides: int = 1, kernel: int = 3, relu: bool = True, name: str):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _residual_block(x, filters: int, *, strides: int, name: str):
    """Two 3x3 convolutions with batch normalisation, added to a (projected) shortcut."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, strides=strides, kernel=1, relu=False, name=f"{name}_proj")
    y = _conv_bn(x, filters, strides=strides, name=f"{name}_a")
    y = _conv_bn(y, filters, relu=False, name=f"{name}_b")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def build_v3(
    input_shape: tuple[int, int, int] = (64, 64, 3),
    *,
    width: int = 32,
    metadata_features: int = 0,
    dropout: float = 0.3,
) -> keras.Model:
    """Run 3: a small residual colour network (ResNet-style, for CPUs).

    A strided 3x3 stem, then three stages of one residual block each (``width``,
    2 x ``width`` and 4 x ``width`` filters; the first two halve the resolution, so
    a 64x64 image ends as an 8x8 map), global average pooling, dropout and one
    sigmoid unit. Halving early keeps it fast on a CPU: in one comparison on 2
    cores, the same blocks at twice the resolution took four times as long per epoch. Batch normalisation
    after every convolution. With ``metadata_features=k`` the model takes a second
    input, a vector of ``k`` encoded patient facts (:mod:`skinlib.models._metadata`), passed
    through a small dense layer and concatenated with the image features.

    The last convolution stage is named ``stage3_out``: Grad-CAM looks there.

    Parameters
    ----------
    input_shape : tuple of int
        The image input ``(height, width, channels)`` (default ``(64, 64, 3)``); height
        and width must be at least 16 pixels.
    width : int
        Filters of the stem and the first stage; the second and third stages have 2 x
        and 4 x as many (default 32).
    metadata_features : int
        Length of the metadata vector, the second input named ``metadata``
        (:func:`skinlib.models._metadata.n_features`); 0, the default, makes an
        image-only model.
    dropout : float
        Dropout rate before the output (default 0.3).

    Returns
    -------
    keras.Model
        The functional model named ``"v3"``, not compiled (:func:`build_model` compiles
        it): input ``image`` (and ``metadata``), output ``probability`` (a sigmoid of the
        ``logit`` layer), the probability of "malignant".

    Raises
    ------
    ValueError
        When ``input_shape`` is smaller than 16x16 pixels.

    Examples
    --------
    >>> build_v3().count_params()
    309985
    >>> [tuple(i.shape) for i in build_v3(metadata_features=5).inputs]
    [(None, 64, 64, 3), (None, 5)]
    """
    if min(input_shape[:2]) < 16:
        raise ValueError(f"v3 needs images of at least 16x16 pixels, got input_shape {input_shape}")
    image = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(image, width, strides=2, name="stem")
    for i, (filters, strides) in enumerate([(width, 2), (2 * width, 2), (4 * width, 1)], start=1):
        x = _residual_block(x, filters, strides=strides, name=f"stage{i}")
    features = layers.GlobalAveragePooling2D(name="pool")(x)
    inputs = [image]
    if metadata_features:
        metadata = keras.Input(shape=(metadata_features,), name="metadata")
        inputs.append(metadata)
        facts = layers.Dense(16, activation="relu", name="metadata_dense")(metadata)
        features = layers.Concatenate(name="image_and_metadata")([features, facts])
    x = layers.Dropout(dropout, name="dropout")(features)
    logit = layers.Dense(1, name="logit")(x)
    probability = layers.Activation("sigmoid", name="probability")(logit)
    return keras.Model(inputs if metadata_features else image, probability, name="v3")


MODELS = {"v1": build_v1, "v2": build_v2, "v3": build_v3}

def build_model(
    name: str,
    input_shape: tuple[int, int, int] | None = None,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3,
    compile: bool = True,
    *,
    optimizer: str = "adam",
    weight_decay: float = 1e-4,
    metadata_features: int = 0,
    **options,
) -> keras.Model:
    """Build ``"v1"``, ``"v2"`` or ``"v3"``, compiled with binary cross-entropy.

    ``input_shape`` defaults to 28x28x1 for v1 and v2 and 64x64x3 for v3.
    ``optimizer`` is ``"adam"`` or ``"adamw"`` (decoupled ``weight_decay``);
    ``learning_rate`` may be a Keras schedule. ``metadata_features`` (v3 only) adds
    the metadata input; other ``options`` go to :func:`build_v3` (``width``,
    ``dropout``). Tracks accuracy (the original's only metric) and ROC AUC
    (which accuracy hides: a model that always says "benign" has high accuracy and
    an AUC of 0.5).

    Parameters
    ----------
    name : {"v1", "v2", "v3"}
        The model (:data:`MODELS`).
    input_shape : tuple of int, optional
        The image input ``(height, width, channels)``; default ``(28, 28, 1)`` for v1
        and v2, ``(64, 64, 3)`` for v3.
    learning_rate : float or keras.optimizers.schedules.LearningRateSchedule
        The optimizer's learning rate, a number or a schedule (default 1e-3).
    compile : bool
        Compile the model (default ``True``): the optimizer, binary cross-entropy and
        the metrics ``accuracy`` and ``auc``. ``False`` returns it uncompiled (the
        ``optimizer`` is still checked).
    optimizer : {"adam", "adamw"}
        Adam, or AdamW with decoupled ``weight_decay`` (default ``"adam"``).
    weight_decay : float
        AdamW's weight decay (default 1e-4); unused with Adam.
    metadata_features : int
        v3 only: length of the metadata input (default 0: none).
    **options
        v3 only: go to :func:`build_v3` (``width``, ``dropout``).

    Returns
    -------
    keras.Model
        The model, named after ``name``, compiled unless ``compile=False``.

    Raises
    ------
    ValueError
        For an unknown ``name`` or ``optimizer``, or ``metadata_features`` or
        ``options`` given for v1 or v2.

    Examples
    --------
    >>> build_model("v2").loss
    'binary_crossentropy'
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if input_shape is None:
        input_shape = (64, 64, 3) if name == "v3" else (28, 28, 1)
    if metadata_features and name != "v3":
        raise ValueError(f"model {name!r} takes images only; metadata needs 'v3'")
    if options and name != "v3":
        raise ValueError(f"model {name!r} has no options; got {sorted(options)}")
    extra = {"metadata_features": metadata_features, **options} if name == "v3" else {}
    model = MODELS[name](input_shape, **extra)
    if optimizer == "adam":
        opt = keras.optimizers.Adam(learning_rate)
    elif optimizer == "adamw":
        opt = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'adamw', got {optimizer!r}")
    if compile:
        model.compile(
            optimizer=opt,
            loss="binary_crossentropy",
            metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
        )
    return model
