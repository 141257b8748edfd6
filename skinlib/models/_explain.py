"""Where a model looks: Grad-CAM and occlusion maps of the malignant probability.

Both functions take a batch of model inputs, float32 ``(N, H, W, C)`` already
scaled as the run scaled them (:func:`skinlib.scale_pixels`), and return one map
per image at the input's resolution, float32 ``(N, H, W)``.

- :func:`gradcam` (one backward pass per batch) weighs the last convolution's
  channels by how much they raise the malignant logit. It suits models whose last
  convolution keeps a grid, such as v3 (8x8 at 64x64 input). Maps are normalised
  to [0, 1] per image.
- :func:`occlusion_map` (one forward pass per patch position) covers each region
  in turn and records how much the malignant probability drops. It works for any
  model at any resolution and suits the 28x28 models v1 and v2. Maps keep their
  sign and units (probability), so images can be compared.

A model with a second input (a metadata vector, ``model.inputs == [image,
metadata]``) takes ``metadata``, an array ``(N, k)``; it is held fixed while the
image is explained.

>>> maps = gradcam(model, scale_pixels(x[:8]))  # doctest: +SKIP
>>> drops = occlusion_map(model, scale_pixels(x[:8]), patch=4, stride=2)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from skinlib.models._prediction import run_metadata, run_probabilities, scale_pixels
from skinlib.preprocessing import Preprocess
from skinlib.runs import load_run
from skinlib._shared.tensorflow import import_keras

keras = import_keras()  # TensorFlow's start-up notices kept out of the outputs

__all__ = ["last_conv_layer", "gradcam", "occlusion_map", "explain_run", "Explained"]

# Layers that only shrink, mask or perturb what the layer before them computed: the
# layer before them is a finer map of the same thing, so the default skips them.
_PASS_THROUGH = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.InputLayer,
)


def _output_rank(layer: Any) -> int | None:
    """Rank of a layer's output tensor; None for a multi-output layer or one never called."""
    try:
        out = layer.output  # of the layer's first call; the rank is the same for every call
    except (AttributeError, ValueError):
        return None
    if isinstance(out, (list, tuple, dict)):
        return None
    return len(out.shape)


def last_conv_layer(model: keras.Model) -> str:
    """Name of the layer :func:`gradcam` explains by default: the model's last feature map.

    The rule: the last layer, in the model's (topological) layer order, whose output
    is 4-D ``(N, H, W, C)``, not counting pooling, dropout and noise layers (they
    only shrink or mask the map before them, which is finer). That is the last
    convolution, or the activation, batch normalisation or residual ``Add`` that
    follows it, just before global pooling or flattening. Pooling, dropout and noise
    layers are chosen only when the model has no other 4-D layer (the input layer
    never is).

    Parameters
    ----------
    model : keras.Model
        A built model with an image input, such as v1, v2 or v3.

    Returns
    -------
    str
        The layer's name.

    Raises
    ------
    ValueError
        When the model has no 4-D layer (a dense-only model).

    Examples
    --------
    >>> last_conv_layer(build_v3())  # doctest: +SKIP
    'stage3_out'
    """
    feature_maps = [layer for layer in model.layers if _output_rank(layer) == 4]
    finer = [layer for layer in feature_maps if not isinstance(layer, _PASS_THROUGH)]
    chosen = finer or [layer for layer in feature_maps if not isinstance(layer, keras.layers.InputLayer)]
    if not chosen:
        raise ValueError(
            f"model {model.name!r} has no layer with a 4-D (N, H, W, C) output; "
            "Grad-CAM needs a convolutional feature map (use occlusion_map for other models)"
        )
    return chosen[-1].name


# --------------------------------------------------------------------------- inputs


def _image_shape(model: keras.Model) -> tuple:
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3:
        raise ValueError(f"model {model.name!r}: first input has shape {shape}, expected an image (H, W, C)")
    return shape


def _check_images(model: keras.Model, images: Any) -> np.ndarray:
    """``images`` as float32 (N, H, W, C) matching the model's image input."""
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        raise ValueError(
            "images are uint8 pixels; pass model inputs, scaled as the run scaled them "
            "(skinlib.scale_pixels(x, faithful=config['faithful']))"
        )
    arr = arr.astype(np.float32, copy=False)
    expected = _image_shape(model)
    if arr.ndim == 3 and expected[2] == 1:
        arr = arr[..., None]
    if arr.ndim != 4 or any(e is not None and e != a for e, a in zip(expected, arr.shape[1:])):
        raise ValueError(f"images have shape {arr.shape}, expected (N, {', '.join(str(e) for e in expected)})")
    return arr


def _model_inputs(model: keras.Model, images: np.ndarray, metadata: Any) -> list[np.ndarray]:
    """The arrays to feed the model: ``[images]`` or ``[images, metadata]``."""
    n_inputs = len(model.inputs)
    if n_inputs == 1:
        if metadata is not None:
            raise ValueError(
                f"model {model.name!r} takes one input (images); metadata must be None, "
                f"got an array of shape {np.shape(metadata)}"
            )
        return [images]
    if n_inputs != 2:
        raise ValueError(f"model {model.name!r} has {n_inputs} inputs; expected images, or images and metadata")
    k = model.inputs[1].shape[-1]
    if metadata is None:
        raise ValueError(
            f"model {model.name!r} takes two inputs (images and metadata); pass metadata, an array (N, {k})"
        )
    meta = np.asarray(metadata, dtype=np.float32)
    if meta.ndim != 2 or meta.shape[0] != len(images) or (k is not None and meta.shape[1] != k):
        raise ValueError(f"metadata has shape {meta.shape}, expected ({len(images)}, {k}): one row per image")
    return [images, meta]


def _to_logit(last: Any) -> Callable[[Any], Any] | None:
    """The function from the output layer's input to the malignant logit; None unless it is a sigmoid.

    Taking the logit before the sigmoid keeps a gradient where the probability has
    saturated (exactly 1.0 in float32), for an ``Activation("sigmoid")`` layer or a
    ``Dense`` layer with a sigmoid activation.
    """
    if getattr(getattr(last, "activation", None), "__name__", None) != "sigmoid":
        return None
    if isinstance(last, keras.layers.Activation):
        return lambda h: h
    if isinstance(last, keras.layers.Dense):

        def dense_logit(h):
            z = keras.ops.matmul(h, last.kernel)
            return z + last.bias if last.use_bias else z

        return dense_logit
    return None


def _logit_of_probability(p: Any, eps: float = 1e-7) -> Any:
    """``log(p / (1 - p))`` of the clipped probability: the fallback for an output that is no sigmoid layer."""
    p = keras.ops.clip(p, eps, 1 - eps)
    return keras.ops.log(p) - keras.ops.log(1 - p)


def _probe(model: keras.Model, target: Any) -> tuple[keras.Model, Callable[[Any], Any]]:
    """A model giving ``[target's activations, head]`` and the function from ``head`` to the logit."""
    if len(model.outputs) != 1 or model.outputs[0].shape[-1] != 1:
        shapes = [tuple(o.shape) for o in model.outputs]
        raise ValueError(f"model {model.name!r} has output(s) {shapes}; expected one sigmoid unit (N, 1)")
    last = model.layers[-1]
    to_logit = _to_logit(last)
    if isinstance(model, keras.Sequential):
        # A loaded Sequential model rebuilds its graph as it adds layers, so its layers
        # have several nodes and layer.output may belong to a stale, partial graph:
        # trace a fresh one and keep the tensors we need.
        image = keras.Input(shape=tuple(model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype)
        x, features, head = image, None, None
        for layer in model.layers:
            if layer is last:
                head = x
            x = layer(x)
            if layer is target:
                features = x
        inputs = [image]
        if to_logit is None:
            head = x
    else:
        inputs, features = model.inputs, target.output
        if to_logit is not None and last.output is model.outputs[0]:
            head = last.input
        else:
            to_logit, head = None, model.outputs[0]
    return keras.Model(inputs, [features, head]), to_logit or _logit_of_probability


# --------------------------------------------------------------------------- Grad-CAM


def gradcam(
    model: keras.Model,
    images: np.ndarray,
    *,
    metadata: np.ndarray | None = None,
    layer: str | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Grad-CAM maps of the malignant logit: where the model's evidence for "malignant" is.

    Selvaraju et al., "Grad-CAM: visual explanations from deep networks via
    gradient-based localization", ICCV 2017. For each image, the gradients of the
    malignant logit (the pre-sigmoid value, so confident predictions still give
    gradients) with respect to ``layer``'s activations are averaged over the grid to
    weigh its channels; the map is the ReLU of the weighted sum of the channels,
    upsampled (bilinear) to the input size and divided by its maximum. A map with no
    positive evidence is all zeros.

    ``images`` are model inputs, float32 ``(N, H, W, C)`` scaled as in training.
    ``metadata`` is ``(N, k)`` for a model with a metadata input, else None.
    ``layer`` is a layer name (default :func:`last_conv_layer`). Returns float32
    ``(N, H, W)`` in [0, 1]. The map's resolution is the layer's grid: 8x8 for v3,
    28x28 for v1 (its only convolution); :func:`occlusion_map` is finer for v2.

    Parameters
    ----------
    model : keras.Model
        A model with one output unit, ``(N, 1)``, and an image input (and, optionally,
        a metadata input). The logit is taken before the output layer when that layer is
        a sigmoid ``Activation`` or ``Dense``, else from the clipped probability.
    images : numpy.ndarray
        Model inputs, float32 ``(N, H, W, C)`` scaled as in training
        (:func:`skinlib.scale_pixels`); uint8 pixels are refused. ``(N, H, W)`` is
        accepted for a one-channel model.
    metadata : numpy.ndarray, optional
        The encoded metadata ``(N, k)``, one row per image, for a model with a metadata
        input (required then); ``None`` for an image-only model.
    layer : str, optional
        The name of a layer with a 4-D output (default :func:`last_conv_layer`).
    batch_size : int
        Images per backward pass, at least 1 (default 64).

    Returns
    -------
    numpy.ndarray
        float32 ``(N, H, W)``, each map in [0, 1] (divided by its maximum; all zeros
        without positive evidence).

    Raises
    ------
    RuntimeError
        When Keras does not use the TensorFlow backend.
    ValueError
        When ``images`` or ``metadata`` do not fit the model's inputs, ``layer`` is not
        a layer of the model, has no 4-D output or does not affect the output, the
        model's output is not one unit ``(N, 1)``, or ``batch_size`` is below 1.

    Examples
    --------
    >>> maps = gradcam(model, x)  # doctest: +SKIP
    >>> maps.shape, float(maps.max())  # doctest: +SKIP
    ((16, 64, 64), 1.0)
    """
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"gradcam needs the TensorFlow backend, Keras uses {keras.backend.backend()!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    x = _check_images(model, images)
    inputs = _model_inputs(model, x, metadata)
    name = last_conv_layer(model) if layer is None else layer
    try:
        target = model.get_layer(name)
    except ValueError:
        raise ValueError(
            f"model {model.name!r} has no layer {name!r}; layers with 4-D outputs: "
            f"{[layer.name for layer in model.layers if _output_rank(layer) == 4]}"
        ) from None
    if _output_rank(target) != 4:
        raise ValueError(f"layer {name!r} of model {model.name!r} has no 4-D (N, H, W, C) output; pick a conv layer")
    probe, to_logit = _probe(model, target)

    n, h, w = x.shape[:3]
    maps = np.zeros((n, h, w), np.float32)
    ops = keras.ops
    for start in range(0, n, batch_size):
        batch = [tf.convert_to_tensor(a[start : start + batch_size]) for a in inputs]
        with tf.GradientTape() as tape:
            activations, head_value = probe(batch, training=False)
            tape.watch(activations)
            total = ops.sum(to_logit(head_value))  # images are independent: one backward pass
        grads = tape.gradient(total, activations)
        if grads is None:
            raise ValueError(f"the model's output does not depend on layer {name!r}; choose another layer")
        weights = ops.mean(grads, axis=(1, 2), keepdims=True)
        cams = ops.convert_to_numpy(ops.relu(ops.sum(weights * activations, axis=-1)))
        for i, cam in enumerate(cams, start=start):
            up = cv2.resize(np.nan_to_num(cam.astype(np.float32)), (w, h), interpolation=cv2.INTER_LINEAR)
            top = float(up.max())
            if top > 0:
                maps[i] = np.clip(up / top, 0.0, 1.0)
    return maps


# --------------------------------------------------------------------------- occlusion


def _positions(size: int, patch: int, stride: int) -> list[int]:
    """Patch origins along one axis: every ``stride`` pixels, plus one flush with the far edge."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def occlusion_map(
    model: keras.Model,
    images: np.ndarray,
    *,
    metadata: np.ndarray | None = None,
    patch: int = 4,
    stride: int = 2,
    fill: float | np.ndarray | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Occlusion sensitivity: how much covering each region lowers the malignant probability.

    Zeiler and Fergus, "Visualizing and understanding convolutional networks", ECCV
    2014. A ``patch`` x ``patch`` square slides over each image every ``stride``
    pixels (plus a last position flush with the far edge, so every pixel is covered),
    filled with the image's mean colour (per channel) or with ``fill`` (a value in
    the model's input scale, or one per channel). A pixel's value is the mean, over
    the patches that cover it, of ``p(image) - p(occluded image)``.

    The map is not normalised: it is in units of probability, so signs and sizes
    compare across images and models. Positive: the region supported "malignant"
    (hiding it lowers p); negative: it supported "benign"; zero: the model ignores it.
    A saturated model (p near 0 or 1) gives small values everywhere.

    ``images`` are model inputs, float32 ``(N, H, W, C)``; ``metadata`` is ``(N, k)``
    for a model with a metadata input. Occluded copies are predicted in batches of
    ``batch_size``: N x (about (H / stride)^2) forward passes, about 170 per image
    at 28x28 with the defaults. Returns float32 ``(N, H, W)``.

    Parameters
    ----------
    model : keras.Model
        A model whose output is the malignant probability, one value per image, with
        an image input (and, optionally, a metadata input).
    images : numpy.ndarray
        Model inputs, float32 ``(N, H, W, C)`` scaled as in training
        (:func:`skinlib.scale_pixels`); uint8 pixels are refused. ``(N, H, W)`` is
        accepted for a one-channel model.
    metadata : numpy.ndarray, optional
        The encoded metadata ``(N, k)``, one row per image, for a model with a metadata
        input (required then; held fixed while the image is covered); ``None`` for an
        image-only model.
    patch : int
        Side of the square, in pixels, from 1 to the image's shorter side (default 4).
    stride : int
        Pixels between patch positions, at least 1 (default 2).
    fill : float or numpy.ndarray, optional
        The patch's value in the model's input scale: one number, or one per channel.
        Default: each image's mean colour, per channel.
    batch_size : int
        Occluded copies per forward pass, at least 1 (default 256).

    Returns
    -------
    numpy.ndarray
        float32 ``(N, H, W)``: per pixel, the mean drop in probability
        ``p(image) - p(occluded image)`` over the patches that cover it.

    Raises
    ------
    ValueError
        When ``images`` or ``metadata`` do not fit the model's inputs, or ``patch``,
        ``stride``, ``fill`` or ``batch_size`` is out of range.

    Examples
    --------
    >>> drops = occlusion_map(model, x, patch=4, stride=2)  # doctest: +SKIP
    >>> drops.shape  # doctest: +SKIP
    (16, 28, 28)
    """
    x = _check_images(model, images)
    inputs = _model_inputs(model, x, metadata)
    n, h, w, c = x.shape
    if not 1 <= patch <= min(h, w):
        raise ValueError(f"patch must be between 1 and {min(h, w)} pixels (the image side), got {patch}")
    if stride < 1:
        raise ValueError(f"stride must be at least 1 pixel, got {stride}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if fill is None:
        fills = x.mean(axis=(1, 2))  # (N, C): each image's mean colour
    else:
        try:
            fills = np.broadcast_to(np.asarray(fill, np.float32), (c,))
        except ValueError:
            raise ValueError(f"fill must be a number or {c} values (one per channel), got {fill!r}") from None
        fills = np.broadcast_to(fills, (n, c))

    maps = np.zeros((n, h, w), np.float64)
    if n == 0:
        return maps.astype(np.float32)
    # Job k of image i: spots[k], where None is the image itself (its base probability).
    spots: list[tuple[int, int] | None] = [None]
    spots += [(r, q) for r in _positions(h, patch, stride) for q in _positions(w, patch, stride)]
    coverage = np.zeros((h, w), np.float64)
    for r, q in spots[1:]:
        coverage[r : r + patch, q : q + patch] += 1

    per, total = len(spots), n * len(spots)
    size = min(batch_size, total)
    probs = np.zeros(total, np.float64)
    for start in range(0, total, size):
        jobs = np.arange(start, start + size)
        valid = jobs < total
        jobs[~valid] = start  # pad the last batch with repeats: one batch shape, one trace
        which = jobs // per
        batch = x[which]  # fancy indexing: a copy
        for j, k in enumerate(jobs % per):
            if spots[k] is not None:
                r, q = spots[k]
                batch[j, r : r + patch, q : q + patch] = fills[which[j]]
        feed = [batch] + [a[which] for a in inputs[1:]]
        out = np.asarray(model.predict_on_batch(feed if len(feed) > 1 else batch)).reshape(size)
        probs[jobs[valid]] = out[valid]
    probs = probs.reshape(n, per)
    drops = probs[:, :1] - probs[:, 1:]  # (N, spots): p(image) - p(occluded)
    for k, (r, q) in enumerate(spots[1:]):
        maps[:, r : r + patch, q : q + patch] += drops[:, k, None, None]
    return (maps / coverage).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Explained:
    """What :func:`explain_run` found: a map and a probability per image file.

    A frozen dataclass; :func:`explain_run` makes it.

    Parameters
    ----------
    paths : list of pathlib.Path
        The image files, in the order given.
    maps : numpy.ndarray
        float32 ``(N, H, W)``, one map per file at the model input's resolution:
        :func:`gradcam`'s (in [0, 1]) or :func:`occlusion_map`'s (drops in probability).
    probabilities : numpy.ndarray
        The run's malignant probability of each file (float64 ``(N,)``, with its
        test-time augmentation and calibration, as :func:`skinlib.predict` gives).
    method : {"gradcam", "occlusion"}
        The method that made ``maps``.
    preprocess : Preprocess
        The run's pipeline, through which the files went.
    """

    paths: list[Path]
    maps: np.ndarray
    probabilities: np.ndarray
    method: str
    preprocess: Preprocess


def explain_run(
    run: str | os.PathLike,
    images: str | os.PathLike | Sequence[str | os.PathLike] | Any,
    *,
    metadata: Any = None,
    method: str | None = None,
) -> Explained:
    """Explain a run's predictions for image files: its maps and its probabilities.

    Each file goes through the run's :class:`~skinlib.Preprocess` and pixel scaling,
    as :func:`skinlib.predict` does, and is explained with ``method``.

    Parameters
    ----------
    run : str or path-like
        A run folder.
    images : path, sequence of paths, or pandas.DataFrame
        Image files, or a table with a ``path`` column (from :func:`skinlib.load_dataset`):
        for a run trained with metadata, its metadata columns are encoded as the run stored.
    metadata : array-like, optional
        Already encoded metadata ``(N, k)``, one row per image, instead of a table's columns.
    method : {"gradcam", "occlusion", None}
        :func:`gradcam` or :func:`occlusion_map`; ``None`` picks Grad-CAM for inputs of
        32 pixels or more (v3), occlusion for the 28x28 models.

    Returns
    -------
    Explained
        ``paths``, ``maps`` (N, H, W) at the model input's resolution,
        ``probabilities`` (the run's, with its test-time augmentation and
        calibration), the ``method`` used and the run's ``preprocess``.

    Raises
    ------
    skinlib.ImageReadError
        Naming a file that cannot be read.
    """
    import pandas as pd

    table = images if isinstance(images, pd.DataFrame) else None
    if table is not None:
        paths = [Path(p) for p in table["path"]]
    else:
        paths = [Path(images)] if isinstance(images, (str, os.PathLike)) else [Path(p) for p in images]
    if not paths:
        raise ValueError("explaining needs at least one image file")
    if method not in (None, "gradcam", "occlusion"):
        raise ValueError(f"method must be 'gradcam', 'occlusion' or None (chosen by input size), got {method!r}")
    model, config, preprocess = load_run(run)
    metadata = run_metadata(config, table, metadata)
    raw_images = np.stack([preprocess.load(p) for p in paths])
    x = scale_pixels(raw_images, bool(config.get("faithful", False)))
    if method is None:
        method = "gradcam" if min(x.shape[1:3]) >= 32 else "occlusion"
    explain = gradcam if method == "gradcam" else occlusion_map
    maps = explain(model, x, metadata=metadata)  # also checks metadata against the model's inputs
    probabilities = run_probabilities(model, config, raw_images,
                                      metadata=None if metadata is None else np.asarray(metadata, np.float32))
    return Explained(paths, maps, probabilities, method, preprocess)
