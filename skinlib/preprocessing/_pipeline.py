"""Preprocessing pipelines (:class:`Preprocess`) and cached, parallel dataset preprocessing.

Decoding an image file is :mod:`skinlib.preprocessing._images`' job; this module chains the steps of
:mod:`skinlib.preprocessing.filters` and :mod:`skinlib.preprocessing._crop` on what it decodes.

A :class:`Preprocess` lists the steps applied to every image, in order, with their
parameters. It is printable and serialisable to JSON, so every trained model can
store exactly how its inputs were made.
"""

from __future__ import annotations

import dataclasses
import json
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Callable, Iterator

import cv2
import numpy as np
import pandas as pd

from skinlib.preprocessing._crop import crop_to_lesion
from skinlib.preprocessing import filters
from skinlib.preprocessing._images import ImageReadError, max_image_pixels, read_image
from skinlib._shared.filemap import Skip, map_files
from skinlib._shared.files import cached_array
from skinlib._shared.checks import is_whole_number

__all__ = ["Preprocess", "PreprocessResult", "preprocess_dataset", "output_image", "STEPS", "PARAMETERS"]

#: Steps a pipeline may use, by name. Each takes an image first and keyword parameters.
STEPS: dict[str, Callable[..., np.ndarray]] = {
    "remove_hair": filters.remove_hair,
    "crop_to_lesion": crop_to_lesion,
    "gray": filters.to_gray,
    "resize": filters.resize,
    "seed_contour": filters.seed_contour,
    "bilateral": filters.bilateral,
    "color_constancy": filters.color_constancy,
}

#: What each step's parameters may be: ``("whole", low, high)`` a whole number,
#: ``("number", low, high)`` any finite number, in ``[low, high]``; a tuple of words:
#: one of them. Bounds keep a pipeline's cost and memory sane (a resize to 10**6
#: pixels a side would need terabytes); :class:`Preprocess` checks every step.
PARAMETERS: dict[str, dict[str, tuple]] = {
    "remove_hair": {"kernel_size": ("whole", 1, 101), "threshold": ("number", 0, 255), "inpaint_radius": ("whole", 0, 64)},
    "crop_to_lesion": {"margin": ("number", 0, 5), "min_area": ("number", 0, 1)},
    "gray": {},
    "resize": {"size": ("whole", 1, 4096), "interpolation": ("area", "linear", "nearest", "cubic")},
    "seed_contour": {"threshold": ("number", 0, 255), "thickness": ("whole", 1, 64), "inpaint_radius": ("whole", 0, 64)},
    "bilateral": {"d": ("whole", -1, 64), "sigma_color": ("number", 0, 1000), "sigma_space": ("number", 0, 300),
                  "method": ("opencv", "matrix")},
    "color_constancy": {"power": ("number", 1, 32)},
}

_CACHE_VERSION = 1


def _check_parameter(step: str, name: str, value: Any) -> Any:
    """``value`` checked against :data:`PARAMETERS` (NumPy scalars become Python ones); else ``ValueError``.

    >>> _check_parameter("resize", "size", 10**6)
    Traceback (most recent call last):
    ...
    ValueError: preprocessing step 'resize': parameter 'size' must be a whole number from 1 to 4096, got 1000000
    """
    rule = PARAMETERS[step][name]
    where = f"preprocessing step {step!r}: parameter {name!r}"
    if rule[0] in ("whole", "number"):
        kind, low, high = rule
        whole = is_whole_number(value)
        number = whole or (isinstance(value, (float, np.floating)) and np.isfinite(value))
        if not (whole if kind == "whole" else number) or not low <= value <= high:
            what = "a whole number" if kind == "whole" else "a number"
            raise ValueError(f"{where} must be {what} from {low} to {high}, got {value!r}")
        return int(value) if whole else float(value)
    if not isinstance(value, str) or value not in rule:
        raise ValueError(f"{where} must be one of {list(rule)}, got {value!r}")
    return value


# --------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """An image preprocessing pipeline: how to read a file and which steps follow.

    Every step is checked when a pipeline is made (directly, by :meth:`from_dict`,
    :meth:`with_params` or :meth:`replace`): known step names, known parameters, and
    values of the right type within :data:`PARAMETERS` (a resize ``size`` is a whole
    number from 1 to 4096). Anything else raises ``ValueError`` naming the step, the
    parameter and the value.

    Parameters
    ----------
    steps : tuple of (str, dict)
        ``(name, params)`` pairs applied in order; names are the keys of :data:`STEPS`, and
        ``params`` maps each parameter of the step to its value. At least one step must be a
        ``resize`` (every image ends up the same size), and the last may not be ``crop_to_lesion``.
    color : bool
        Read the file in colour (BGR) instead of grayscale (default False).
    decode_min_side : int, optional
        Let JPEGs be decoded at a reduced scale while their shorter side stays at least that many
        pixels, a whole number from 1 to 4096 (default None: always decode at full size, exactly
        as ``cv2.imread``).

    Raises
    ------
    ValueError
        For an unknown step or parameter, a value of the wrong type or outside :data:`PARAMETERS`,
        a ``color`` that is not True or False, a bad ``decode_min_side``, no ``resize`` step, or
        ``crop_to_lesion`` last.

    Examples
    --------
    >>> p = Preprocess.seed()
    >>> print(p)
    read(gray) -> resize(size=28, interpolation='linear') -> seed_contour(threshold=127, thickness=4, inpaint_radius=3) -> bilateral(d=-1, sigma_color=50, sigma_space=50)
    >>> Preprocess.from_json(p.to_json()) == p
    True
    >>> p.output_shape
    (28, 28, 1)
    """

    steps: tuple[tuple[str, dict[str, Any]], ...]
    color: bool = False
    decode_min_side: int | None = None

    def __post_init__(self) -> None:
        checked = []
        for item in self.steps:
            if not isinstance(item, (tuple, list)) or len(item) != 2 or not isinstance(item[1], Mapping):
                raise ValueError(f"preprocessing step {item!r}: expected a (name, {{parameter: value}}) pair")
            name, params = item
            if not isinstance(name, str) or name not in STEPS:
                raise ValueError(f"unknown preprocessing step {name!r}; known steps: {', '.join(STEPS)}")
            fn = STEPS[name]
            known = fn.__code__.co_varnames[1 : fn.__code__.co_argcount + fn.__code__.co_kwonlyargcount]
            unknown = set(params) - set(known)
            if unknown:
                raise ValueError(f"step {name!r} has no parameter(s) {sorted(map(str, unknown))}; it takes {list(known)}")
            checked.append((name, {k: _check_parameter(name, k, v) for k, v in params.items()}))
        steps = tuple(checked)
        if not isinstance(self.color, (bool, np.bool_)):
            raise ValueError(f"Preprocess color must be True or False, got {self.color!r}")
        object.__setattr__(self, "color", bool(self.color))
        side = self.decode_min_side
        if side is not None and (
            not is_whole_number(side) or not 1 <= side <= 4096
        ):
            raise ValueError(f"Preprocess decode_min_side must be None or a whole number from 1 to 4096, got {side!r}")
        object.__setattr__(self, "decode_min_side", None if side is None else int(side))
        if not any(name == "resize" for name, _ in steps):
            raise ValueError("a Preprocess needs a 'resize' step so that every image ends up the same size")
        if steps[-1][0] in ("crop_to_lesion",):
            raise ValueError("'crop_to_lesion' must come before the final 'resize'")
        object.__setattr__(self, "steps", steps)

    # -- the two named pipelines

    @classmethod
    def seed(cls, fast: bool = False) -> "Preprocess":
        """The original project's pipeline: grayscale read, 28x28 resize, contour cleaning, bilateral filter.

        The resize is ``cv2.resize``'s bilinear one (OpenCV's default);
        ``benchmarks/preprocess.py`` measures both variants below.

        Parameters
        ----------
        fast : bool
            False (default): the original exactly, pixel for pixel. True: JPEGs are decoded at
            reduced scale (shorter side still >= 112) and the bilateral filter is computed as a
            matrix product: several times faster, within about one grey level on average.

        Returns
        -------
        Preprocess
            ``resize`` (28, ``"linear"``), ``seed_contour`` and ``bilateral`` on a grayscale read.
        """
        bilateral = {"d": -1, "sigma_color": 50, "sigma_space": 50}
        return cls(
            steps=(
                ("resize", {"size": 28, "interpolation": "linear"}),
                ("seed_contour", {"threshold": 127, "thickness": 4, "inpaint_radius": 3}),
                ("bilateral", {**bilateral, "method": "matrix"} if fast else bilateral),
            ),
            decode_min_side=112 if fast else None,
        )

    @classmethod
    def default(cls) -> "Preprocess":
        """The project's default: grayscale, area-averaged resize to 28x28.

        Area averaging keeps every source pixel's contribution (bilinear resize from
        hundreds of pixels to 28 samples a few and aliases), and no step overwrites
        the lesion. Measured alternatives (hair removal, lesion crop, bilateral
        smoothing) are compared on real data in the results; the default is the
        best measured option.

        Returns
        -------
        Preprocess
            One ``resize`` step (28, ``"area"``), JPEGs decoded with their shorter side at least 112.
        """
        return cls(steps=(("resize", {"size": 28, "interpolation": "area"}),), decode_min_side=112)

    @classmethod
    def for_model(cls, name: str) -> "Preprocess":
        """The recommended preprocessing of model ``name``.

        Parameters
        ----------
        name : str
            ``"v1"`` or ``"v2"``: :meth:`default` (grayscale 28x28, as the models were
            published). ``"v3"``: colour, Shades of Gray colour constancy at the source
            resolution, then an area resize to 64x64; JPEGs are decoded at a reduced scale
            while their shorter side stays at least 128 pixels.

        Returns
        -------
        Preprocess
            The model's pipeline.

        Raises
        ------
        ValueError
            For any other ``name``.

        Examples
        --------
        >>> Preprocess.for_model("v3").output_shape
        (64, 64, 3)
        """
        if name in ("v1", "v2"):
            return cls.default()
        if name == "v3":
            return cls(
                steps=(("color_constancy", {"power": 6}), ("resize", {"size": 64, "interpolation": "area"})),
                color=True,
                decode_min_side=128,
            )
        raise ValueError(f"unknown model {name!r}; choose one of ['v1', 'v2', 'v3']")

    # -- derived facts

    @property
    def size(self) -> int:
        """Side of the output image in pixels (the last resize step's ``size``)."""
        for name, params in reversed(self.steps):
            if name == "resize":
                return int(params.get("size", 28))
        raise AssertionError("unreachable: __post_init__ requires a resize step")

    @property
    def channels(self) -> int:
        """1 for grayscale output, 3 for colour."""
        gray = not self.color or any(name == "gray" for name, _ in self.steps)
        return 1 if gray else 3

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """``(size, size, channels)``: the shape of every image :meth:`apply` returns."""
        return (self.size, self.size, self.channels)

    def step_names(self) -> list[str]:
        """The names of the pipeline's steps, in order.

        Returns
        -------
        list of str
            One name per step (the read is not a step), repeats included.
        """
        return [name for name, _ in self.steps]

    # -- editing (returns new configs; a Preprocess is immutable)

    def replace(self, **changes: Any) -> "Preprocess":
        """A copy with fields changed, e.g. ``p.replace(decode_min_side=None)``.

        Parameters
        ----------
        **changes
            New values of the fields ``steps``, ``color`` and ``decode_min_side``, checked as
            when a pipeline is made (``ValueError``); a field not named keeps its value.

        Returns
        -------
        Preprocess
            The new pipeline; this one is unchanged (a Preprocess is immutable).
        """
        return dataclasses.replace(self, **changes)

    def with_params(self, step: str, **params: Any) -> "Preprocess":
        """A copy with parameters of every step called ``step`` updated.

        Parameters
        ----------
        step : str
            The name of a step of this pipeline; every step of that name is updated.
        **params
            Parameter values set on those steps, over their own (the other parameters are kept);
            checked against :data:`PARAMETERS` (``ValueError``).

        Returns
        -------
        Preprocess
            The new pipeline; this one is unchanged.

        Raises
        ------
        KeyError
            When the pipeline has no step ``step``.
        """
        if step not in self.step_names():
            raise KeyError(f"this pipeline has no step {step!r}; it has {self.step_names()}")
        steps = tuple((n, {**p, **params} if n == step else p) for n, p in self.steps)
        return self.replace(steps=steps)

    def without(self, *names: str) -> "Preprocess":
        """A copy without the named steps.

        Parameters
        ----------
        *names : str
            Names of steps to drop, every step of each name; a name the pipeline lacks is ignored.

        Returns
        -------
        Preprocess
            The new pipeline; this one is unchanged. Dropping every ``resize`` raises ``ValueError``.
        """
        return self.replace(steps=tuple((n, p) for n, p in self.steps if n not in names))

    # -- serialisation

    def to_dict(self) -> dict[str, Any]:
        """The pipeline as a dict of JSON types, which :meth:`from_dict` reads back.

        Returns
        -------
        dict
            ``steps`` (a list of ``[name, {parameter: value}]``), ``color`` and ``decode_min_side``.
        """
        return {
            "steps": [[name, dict(params)] for name, params in self.steps],
            "color": self.color,
            "decode_min_side": self.decode_min_side,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocess":
        """The pipeline :meth:`to_dict` wrote, every step and parameter checked.

        Parameters
        ----------
        d : dict
            ``steps`` (a list of ``[name, {parameter: value}]`` pairs), and optionally ``color``
            (default False) and ``decode_min_side`` (default None).

        Returns
        -------
        Preprocess
            The pipeline ``d`` describes.

        Raises
        ------
        ValueError
            Naming what is wrong: ``d`` is no dict or has no ``steps``, a key other than ``steps``,
            ``color`` and ``decode_min_side``, a step that is no ``[name, {parameters}]``
            pair, an unknown step or parameter, or a value of the wrong type or outside
            its bounds (:data:`PARAMETERS`; a resize ``size`` is a whole number from 1
            to 4096).

        Examples
        --------
        >>> Preprocess.from_dict({"steps": [["resize", {"size": "28"}]]})
        Traceback (most recent call last):
        ...
        ValueError: preprocessing step 'resize': parameter 'size' must be a whole number from 1 to 4096, got '28'
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"not a Preprocess config: expected a dict with 'steps', got {type(d).__name__} {d!r}")
        unknown = sorted(map(str, set(d) - {"steps", "color", "decode_min_side"}))
        if unknown:
            raise ValueError(f"not a Preprocess config: unknown key(s) {unknown}; expected steps, color, decode_min_side")
        if "steps" not in d:
            raise ValueError(f"not a Preprocess config: no 'steps' in {d!r}")
        if not isinstance(d["steps"], (list, tuple)):
            raise ValueError(f"not a Preprocess config: 'steps' must be a list of [name, {{parameters}}], got {d['steps']!r}")
        return cls(
            steps=tuple(tuple(item) if isinstance(item, list) else item for item in d["steps"]),
            color=d.get("color", False),
            decode_min_side=d.get("decode_min_side"),
        )

    def to_json(self) -> str:
        """The pipeline as JSON text, which :meth:`from_json` reads back.

        Returns
        -------
        str
            :meth:`to_dict` as JSON, keys sorted: the same pipeline always gives the same text.
        """
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Preprocess":
        """The pipeline :meth:`to_json` wrote, checked as by :meth:`from_dict`.

        Parameters
        ----------
        text : str
            JSON text of a dict as :meth:`to_dict` returns.

        Returns
        -------
        Preprocess
            The pipeline ``text`` describes.

        Raises
        ------
        ValueError
            When ``text`` is not JSON (``json.JSONDecodeError``), or as :meth:`from_dict` does.
        """
        return cls.from_dict(json.loads(text))

    def __str__(self) -> str:
        parts = [f"read({'color' if self.color else 'gray'})"]
        for name, params in self.steps:
            args = ", ".join(f"{k}={v!r}" for k, v in params.items())
            parts.append(f"{name}({args})")
        return " -> ".join(parts)

    # -- applying

    def stages(self, img: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(step name, image after it)`` for each step, starting with ``("read", img)``.

        Parameters
        ----------
        img : numpy.ndarray
            A decoded image, given to the first step as it is (no conversion to the pipeline's
            channels, unlike :meth:`apply`).

        Yields
        ------
        tuple of (str, numpy.ndarray)
            ``("read", img)``, then each step's name and the image it made.
        """
        yield "read", img
        for name, params in self.steps:
            img = STEPS[name](img, **params)
            yield name, img

    def apply(self, img: np.ndarray) -> np.ndarray:
        """Run the steps on a decoded image.

        Parameters
        ----------
        img : numpy.ndarray
            A decoded image, (H, W) or (H, W, 1) grey or (H, W, 3) BGR. A grayscale pipeline
            turns a colour image grey first; a colour pipeline turns a grey one into the same
            grey in B, G and R (as ``read_image(color=True)`` gives for a grayscale file).

        Returns
        -------
        numpy.ndarray
            uint8 of shape :attr:`output_shape` (:meth:`finish`).

        Raises
        ------
        ValueError
            When the steps made another shape.
        """
        if not self.color and img.ndim == 3:
            img = filters.to_gray(img)
        elif self.color and (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1)):
            # A grayscale array through a colour pipeline: the same grey in B, G and R,
            # as read_image(color=True) gives for a grayscale file.
            img = cv2.cvtColor(filters.to_gray(img), cv2.COLOR_GRAY2BGR)
        for _, img in self.stages(img):
            pass
        return self.finish(img)

    def finish(self, img: np.ndarray) -> np.ndarray:
        """The last step's image as the model takes it: the pipeline's channels, shape checked.

        :meth:`apply` ends with it, and so do the stage plots and the
        sliders, so what they show is what the model gets.

        Parameters
        ----------
        img : numpy.ndarray
            The image the last step made: (H, W) or (H, W, C). A grayscale pipeline turns a
            colour image grey; a colour pipeline drops the alpha of a BGRA one.

        Returns
        -------
        numpy.ndarray
            ``img`` of shape :attr:`output_shape` (a 2-D image gets its channel axis).

        Raises
        ------
        ValueError
            When the steps made another shape.

        Examples
        --------
        >>> Preprocess.default().finish(np.zeros((28, 28, 3), np.uint8)).shape
        (28, 28, 1)
        """
        if img.ndim == 3 and self.channels == 1:
            img = filters.to_gray(img)
        if img.ndim == 3 and img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        out = img.reshape(img.shape[0], img.shape[1], -1)
        if out.shape != self.output_shape:
            raise ValueError(f"pipeline {self} produced shape {out.shape}, expected {self.output_shape}")
        return out

    def load(self, path: str | os.PathLike) -> np.ndarray:
        """Read the file at ``path`` and apply the pipeline.

        Parameters
        ----------
        path : str or path-like
            An image file, decoded by :func:`read_image` in the pipeline's colour and
            ``decode_min_side``.

        Returns
        -------
        numpy.ndarray
            uint8 of shape :attr:`output_shape`, as :meth:`apply` returns.

        Raises
        ------
        ImageReadError
            When the file cannot be read or decoded (:func:`read_image`).
        ValueError
            When the steps made another shape.
        """
        return self.apply(read_image(path, color=self.color, min_side=self.decode_min_side))


# --------------------------------------------------------------------------- datasets


@dataclasses.dataclass
class PreprocessResult:
    """What :func:`preprocess_dataset` returns; unpacks as ``x, y = result``.

    Parameters
    ----------
    x : numpy.ndarray
        uint8 (N, size, size, channels): the preprocessed images.
    y : numpy.ndarray
        int64 labels (0 benign, 1 malignant), one per image of ``x``.
    rows : pandas.DataFrame
        The input rows that made ``x``, in its order, index reset (its ``fold`` column, if
        any, splits ``x``: :meth:`fold`).
    skipped : pandas.DataFrame
        The files that could not be used: ``path`` and ``reason`` (strings).
    cache_path : pathlib.Path, optional
        The cache file (``.npz`` under ``cache_dir``); None without a ``cache_dir``.
    from_cache : bool
        Whether the result was read from the cache (default False).
    config : Preprocess, optional
        The pipeline that made ``x``.
    """

    x: np.ndarray
    y: np.ndarray
    rows: pd.DataFrame
    skipped: pd.DataFrame
    cache_path: Path | None = None
    from_cache: bool = False
    config: Preprocess | None = None

    def __iter__(self):
        return iter((self.x, self.y))

    def fold(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of one fold (``"train"``, ``"val"`` or ``"test"``).

        Parameters
        ----------
        name : str
            A value of the ``fold`` column of :attr:`rows`.

        Returns
        -------
        tuple of (numpy.ndarray, numpy.ndarray)
            The images and labels of the rows whose ``fold`` is ``name`` (empty for an unknown one).

        Raises
        ------
        KeyError
            When :attr:`rows` has no ``fold`` column (run :func:`skinlib.split_dataset` first).
        """
        if "fold" not in self.rows:
            raise KeyError("rows have no 'fold' column; run split_dataset before preprocess_dataset")
        mask = (self.rows["fold"] == name).to_numpy()
        return self.x[mask], self.y[mask]


def _load_one(config: Preprocess, path: str) -> np.ndarray:
    """The image of ``path`` through ``config``; :class:`Skip` with the reason when it cannot be used."""
    try:
        return config.load(path)
    except ImageReadError as exc:
        raise Skip(str(exc).removeprefix(f"{path}: ")) from None
    except (cv2.error, ValueError) as exc:
        raise Skip(f"preprocessing failed: {str(exc).strip().splitlines()[-1]}") from None


def _stack(config: Preprocess, images: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The kept images as one uint8 array ``x``, each freed as it is copied: memory holds one array."""
    x = np.zeros((len(images),) + config.output_shape, dtype=np.uint8)
    for i in range(len(images)):
        x[i] = images[i]
        images[i] = None
    return {"x": x}


def _build(config: Preprocess, arrays: dict[str, np.ndarray], n: int) -> np.ndarray:
    # A foreign or damaged cache fails this check (ValueError): recomputed and replaced.
    return cached_array(arrays, "x", np.uint8, (n,) + config.output_shape)


def _skipped_table(pairs) -> pd.DataFrame:
    """``result.skipped``, built one way for computed and cached results (same dtypes)."""
    return pd.DataFrame(list(pairs), columns=["path", "reason"], dtype=str)


def preprocess_dataset(
    df: pd.DataFrame,
    config: Preprocess | None = None,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> PreprocessResult:
    """Preprocess every image of a dataset table into one array.

    Images are processed in threads, streaming: memory holds the output array, not the images.
    Files that fail to decode, and images over the pixel limit of :func:`read_image`
    (100 megapixels unless ``SKINLIB_MAX_IMAGE_PIXELS`` says otherwise), are skipped
    and listed in ``result.skipped`` with the reason; they never stop the run.

    With ``cache_dir``, the result is stored as ``.npz`` under a key made from the
    config, the file list, the labels and each file's :func:`skinlib._shared.files.file_stamp`
    (size, modification time, inode and status-change time): the same call again loads
    it instantly, and any change recomputes, a file replaced with its modification time
    restored too. A cache file whose arrays do not fit the table and config (dtype,
    shape, indices) is treated as missing: recomputed and replaced. Cache files are
    written atomically.

    Parameters
    ----------
    df : pandas.DataFrame
        A table with ``path`` and ``label`` columns (as :func:`skinlib.load_dataset` returns).
    config : Preprocess, optional
        The pipeline (default :meth:`Preprocess.default`).
    cache_dir : path-like, optional
        The folder of the ``.npz`` cache (default None: no cache).
    workers : int, optional
        Threads (default: one per core).
    progress : bool
        Show a progress bar (default True).

    Returns
    -------
    PreprocessResult
        ``x`` and ``y`` of the usable images, ``rows`` (the rows of ``df`` that made them, in
        order), ``skipped`` (``path``, ``reason``), ``cache_path``, ``from_cache`` and ``config``;
        unpacks as ``x, y``.

    Raises
    ------
    ValueError
        When ``df`` lacks a ``path`` or ``label`` column, or ``SKINLIB_MAX_IMAGE_PIXELS`` is invalid.

    Examples
    --------
    >>> x, y = preprocess_dataset(df, Preprocess.default())  # doctest: +SKIP
    """
    config = config or Preprocess.default()
    max_image_pixels()  # a bad SKINLIB_MAX_IMAGE_PIXELS is one error now, not a reason for skipping every image
    missing = {"path", "label"} - set(df.columns)
    if missing:
        raise ValueError(f"df lacks column(s) {sorted(missing)}; expected the table from load_dataset")
    df = df.reset_index(drop=True)
    mapped = map_files(
        df["path"], partial(_load_one, config), stack=partial(_stack, config), build=partial(_build, config),
        cache_dir=cache_dir, cache_name="preprocessed",
        # The pixel limit decides which images are skipped: a raised limit must not find them skipped in a cache.
        key=f"v{_CACHE_VERSION}\n{config.to_json()}\nmax_pixels={max_image_pixels()}\n",
        key_fields=None if cache_dir is None else [str(int(label)) for label in df["label"]],
        workers=(os.cpu_count() or 1) if workers is None else workers, progress=progress, desc="preprocess",
        executor=ThreadPoolExecutor,
    )
    rows = df.iloc[mapped.keep].reset_index(drop=True)
    return PreprocessResult(mapped.results, rows["label"].to_numpy(np.int64), rows, _skipped_table(mapped.skipped),
                            mapped.cache_path, mapped.from_cache, config)


def output_image(config: Preprocess, img: np.ndarray) -> np.ndarray:
    """The last step's image as the model takes it (:meth:`Preprocess.finish`), 2-D if gray: for display.

    Parameters
    ----------
    config : Preprocess
        The pipeline whose last step made ``img``.
    img : numpy.ndarray
        The image the last step made.

    Returns
    -------
    numpy.ndarray
        (size, size) for a grayscale pipeline, (size, size, 3) for a colour one.

    Raises
    ------
    ValueError
        When ``img`` does not fit the pipeline's :attr:`Preprocess.output_shape`.
    """
    out = config.finish(img)
    return out[:, :, 0] if out.shape[2] == 1 else out
