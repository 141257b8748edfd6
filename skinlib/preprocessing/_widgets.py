"""An interactive preprocessing tuner for notebooks (ipywidgets).

:class:`PreprocessTuner` shows a few images through a :class:`~skinlib.Preprocess`
pipeline, stage by stage, with sliders for the contour and bilateral steps and
checkboxes that switch steps on and off. ``tuner.config`` is the pipeline the
widgets describe, ready for the next cell::

    tuner = PreprocessTuner(images, Preprocess.seed())
    tuner                      # displays the widget
    x, y = preprocess_dataset(df, tuner.config)

The preview is drawn as one PNG composed with NumPy and ``cv2.imencode`` (no
matplotlib), and computes the bilateral filter of small images as a matrix product,
so that an update takes tens of milliseconds and the sliders feel immediate.
"""

from __future__ import annotations

import html
import inspect
import json
import time
from typing import Any, Sequence

import cv2
import ipywidgets as widgets
import numpy as np

from skinlib.preprocessing import filters
from skinlib.preprocessing._pipeline import STEPS, Preprocess, output_image

__all__ = ["PreprocessTuner", "render_mosaic", "slow_settings"]

#: Slider description -> (step, parameter, minimum, maximum). The descriptions are
#: OpenCV's parameter names and stay fixed: browser tests find the sliders by them.
SLIDERS: dict[str, tuple[str, str, int, int]] = {
    "threshold": ("seed_contour", "threshold", 0, 255),
    "thickness": ("seed_contour", "thickness", 1, 8),
    "d": ("bilateral", "d", -1, 15),
    "sigmaColor": ("bilateral", "sigma_color", 1, 200),
    "sigmaSpace": ("bilateral", "sigma_space", 1, 200),
    "power": ("color_constancy", "power", 1, 12),
}

#: Steps with an on/off checkbox, in the order they sit in a pipeline.
SWITCHABLE = ("color_constancy", "remove_hair", "crop_to_lesion", "seed_contour", "bilateral")

#: An update slower than this (milliseconds) is reported as slow.
SLOW_MS = 200.0

#: A bilateral step estimated slower than this per image (milliseconds) is reported.
SLOW_STEP_MS = 100.0


def _defaults(step: str) -> dict[str, Any]:
    """The step function's keyword defaults, except how it computes (bilateral's ``method``)."""
    params = inspect.signature(STEPS[step]).parameters.values()
    return {p.name: p.default for p in list(params)[1:] if p.default is not p.empty and p.name != "method"}


def _template(config: Preprocess) -> list[tuple[str, dict[str, Any], bool]]:
    """``config``'s steps, plus each switchable step it lacks (switched off) where it belongs.

    Colour constancy, hair removal and lesion cropping work at the source
    resolution, so they go before the first resize (colour constancy first: it
    changes nothing in a grayscale pipeline); contour cleaning and the bilateral filter follow the
    last resize, in the original project's order. Returns ``(name, params, on)``.
    """
    steps = [(name, dict(params), True) for name, params in config.steps]

    def names() -> list[str]:
        return [s[0] for s in steps]

    def insert(at: int, step: str) -> None:
        if step not in names():
            steps.insert(at, (step, _defaults(step), False))

    insert(0, "remove_hair")
    insert(0, "color_constancy")
    insert(names().index("resize"), "crop_to_lesion")
    insert(len(steps) - names()[::-1].index("resize"), "seed_contour")
    insert(len(steps), "bilateral")
    return steps


def _shrink(img: np.ndarray, max_side: int | None) -> np.ndarray:
    img = filters.check_uint8(np.asarray(img))
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    h, w = img.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return img.copy()
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- rendering


def _fit(img: np.ndarray, tile: int, background: int = 230) -> np.ndarray:
    """``img`` as a BGR ``tile`` x ``tile`` square: scaled to fit, centred, pixels kept sharp."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    h, w = img.shape[:2]
    scale = tile / max(h, w)
    size = (max(1, min(tile, round(w * scale))), max(1, min(tile, round(h * scale))))
    # Enlarge with nearest neighbour (a 28x28 input shows its pixels); shrink by area.
    interpolation = cv2.INTER_NEAREST if scale >= 1 else cv2.INTER_AREA
    small = cv2.resize(img, size, interpolation=interpolation)
    out = np.full((tile, tile, 3), background, np.uint8)
    y0, x0 = (tile - size[1]) // 2, (tile - size[0]) // 2
    out[y0 : y0 + size[1], x0 : x0 + size[0]] = small
    return out


def render_mosaic(
    rows: Sequence[Sequence[np.ndarray]],
    names: Sequence[str],
    *,
    tile: int = 112,
    gap: int = 4,
    header: int = 18,
) -> np.ndarray:
    """Lay out images in a grid of ``tile`` x ``tile`` cells with column names on top.

    ``rows`` holds one sequence of images (uint8, grayscale, BGR or BGRA) per row,
    each as long as ``names``. Returns a BGR image of height
    ``header + n_rows * tile + (n_rows + 1) * gap`` and width
    ``n_cols * tile + (n_cols + 1) * gap``. Images are scaled to fit their cell,
    enlarged with nearest neighbour so small ones show their pixels.

    Parameters
    ----------
    rows : sequence of sequence of numpy.ndarray
        The images, one sequence per row of the grid.
    names : sequence of str
        The column names, written above the columns (cut short to fit a cell's width).
    tile : int
        The side of a cell, in pixels (default 112).
    gap : int
        The space between cells and around the grid, in pixels (default 4).
    header : int
        The height of the band of column names, in pixels (default 18).

    Returns
    -------
    numpy.ndarray
        The uint8 BGR mosaic, of the height and width above, on white; each image centred
        in its cell, on light grey where it does not fill it.

    Raises
    ------
    ValueError
        When a row does not have one image per name.

    Examples
    --------
    >>> render_mosaic([[np.zeros((28, 28), np.uint8)] * 3], ["a", "b", "c"]).shape
    (138, 352, 3)
    """
    n_rows, n_cols = len(rows), len(names)
    if any(len(r) != n_cols for r in rows):
        raise ValueError(f"every row needs {n_cols} images, one per name")
    height = header + n_rows * tile + (n_rows + 1) * gap
    width = n_cols * tile + (n_cols + 1) * gap
    canvas = np.full((height, width, 3), 255, np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    for j, name in enumerate(names):
        x = gap + j * (tile + gap)
        text = str(name)
        while len(text) > 1 and cv2.getTextSize(text, font, scale, 1)[0][0] > tile:
            text = text[:-1]
        cv2.putText(canvas, text, (x, header - 4), font, scale, (40, 40, 40), 1, cv2.LINE_AA)
    for i, row in enumerate(rows):
        y = header + gap + i * (tile + gap)
        for j, img in enumerate(row):
            x = gap + j * (tile + gap)
            canvas[y : y + tile, x : x + tile] = _fit(img, tile)
    return canvas


def _png(img: np.ndarray) -> bytes:
    # Fastest zlib level: the PNG is shown once, size hardly matters, time does.
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("cv2.imencode could not encode the preview as PNG")
    return buf.tobytes()


# --------------------------------------------------------------------------- slow settings


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.0f} s"


def slow_settings(config: Preprocess, shape: tuple[int, ...], last_ms: float | None = None) -> list[str]:
    """Warnings about settings that make preprocessing (or this preview) slow.

    ``shape`` is the source images' shape (full size, not the preview's). OpenCV's
    bilateral filter costs about a nanosecond per pixel and window position; with
    ``d <= 0`` the window's radius is ``1.5 * sigma_space``, so a large
    ``sigma_space`` before the final resize, at the source resolution, takes
    seconds per image (``d=-1, sigmaSpace=150`` on 512x512: a 451-pixel window).
    Each bilateral step estimated at over :data:`SLOW_STEP_MS` per image gets a
    warning; the matrix form on a small grayscale image is never slow. ``last_ms``
    adds a warning when an update took more than :data:`SLOW_MS`.

    Parameters
    ----------
    config : Preprocess
        The pipeline; its bilateral steps are judged at the source size before its last
        resize, at ``config.size`` after it.
    shape : tuple of int
        The source images' shape, ``(H, W)`` or ``(H, W, C)``.
    last_ms : float, optional
        How long the last update took, in milliseconds; the default None adds no warning
        about it.

    Returns
    -------
    list of str
        The warnings, one per slow bilateral step in the pipeline's order, then one for a slow
        update; empty when nothing is slow.

    Examples
    --------
    >>> p = Preprocess(steps=(("bilateral", {"d": -1, "sigma_space": 150}), ("resize", {"size": 28})))
    >>> slow_settings(p, (512, 512))  # doctest: +ELLIPSIS
    ['bilateral at the source resolution (512x512) with d=-1, sigmaSpace=150: a 451-pixel window, roughly 42 s ...']
    """
    out = []
    names = config.step_names()
    last_resize = len(names) - 1 - names[::-1].index("resize")
    for k, (name, params) in enumerate(config.steps):
        if name != "bilateral":
            continue
        p = {**_defaults("bilateral"), "method": "opencv", **params}
        d, sigma_space = int(p["d"]), float(p["sigma_space"])
        before = k < last_resize
        h, w = shape[:2] if before else (config.size, config.size)
        gray = not config.color or "gray" in names[:k]
        if p["method"] == "matrix" and gray and h * w <= 64 * 64:
            continue  # one small matrix product, about a millisecond
        radius = max(1, d // 2 if d > 0 else int(np.rint(1.5 * sigma_space)))
        estimate = h * w * np.pi * radius**2 * 1e-6  # ms, at ~1 ns per pixel and window position
        if estimate <= SLOW_STEP_MS:
            continue
        where = "at the source resolution" if before else "after the resize"
        hint = (
            "use d > 0, a smaller sigmaSpace, or filter after the resize"
            if before
            else "bilateral(method='matrix') computes it in about a millisecond"
        )
        out.append(
            f"bilateral {where} ({h}x{w}) with d={d}, sigmaSpace={sigma_space:g}: a {2 * radius + 1}-pixel "
            f"window, roughly {_duration(estimate)} per image with OpenCV; {hint}"
        )
    if last_ms is not None and last_ms > SLOW_MS:
        out.append(f"the last update took {last_ms:.0f} ms (over {SLOW_MS:.0f} ms)")
    return out


# --------------------------------------------------------------------------- the tuner


def _cast(value: Any, like: Any) -> Any:
    """A slider's value in the type the config had (50 stays int, 50.0 float), so its JSON is unchanged."""
    if isinstance(like, bool) or not isinstance(like, (int, float)):
        return value
    return int(round(value)) if isinstance(like, int) else float(value)


class PreprocessTuner:
    """Tune a preprocessing pipeline by eye: sliders, checkboxes and a live stage-by-stage view.

    ``images`` are a few decoded uint8 images (grayscale or BGR, as
    :func:`skinlib.read_image` returns). Images longer than ``max_side`` pixels are
    shrunk once, with area averaging, so that every update stays fast; steps that
    work at the source resolution (``remove_hair``'s kernel size is in pixels)
    therefore look slightly different here than on full-size files.

    Sliders (found by their descriptions): ``threshold`` and ``thickness`` of
    ``seed_contour``; ``d``, ``sigmaColor``, ``sigmaSpace`` of ``bilateral``.
    Checkboxes (described by the step names) switch ``remove_hair``,
    ``crop_to_lesion``, ``seed_contour`` and ``bilateral`` on and off; steps that
    ``config`` lacks start switched off, at their usual place in the pipeline.

    The view shows, one row per image, the original, the image after each step,
    and the model's input (``output``), as one PNG in ``tuner.image`` (an
    ``ipywidgets.Image``). Below it: the time the last update took, the current
    pipeline, and warnings about slow settings.

    ``tuner.config`` is the current pipeline, a new :class:`Preprocess` with the
    steps in their original order, switched-off steps removed and every other
    setting of ``config`` kept (including the bilateral ``method``: the preview
    always uses the faster matrix form on small images, within one grey level of
    OpenCV's). Left untouched, ``tuner.config == config``.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        At least one decoded uint8 image, of any size (a BGRA image loses its alpha channel).
    config : Preprocess, optional
        The pipeline to start from; the default None starts from :meth:`Preprocess.seed`.
    max_side : int or None
        The longest side of the preview's images, in pixels (default 256); None keeps them
        at full size.
    tile : int
        The side of each cell of the view, in pixels (default 112).

    Raises
    ------
    ValueError
        When ``images`` is empty.

    Examples
    --------
    >>> tuner = PreprocessTuner(images, Preprocess.seed())   # doctest: +SKIP
    >>> tuner                                                # displays it  # doctest: +SKIP
    >>> tuner.sliders["d"].value = 5                         # doctest: +SKIP
    >>> tuner.config.steps[-1]                               # doctest: +SKIP
    ('bilateral', {'d': 5, 'sigma_color': 50, 'sigma_space': 50})
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        config: Preprocess | None = None,
        *,
        max_side: int | None = 256,
        tile: int = 112,
    ) -> None:
        images = list(images)
        if not images:
            raise ValueError("PreprocessTuner needs at least one image")
        self.initial_config = config if config is not None else Preprocess.seed()
        self.originals = [_shrink(img, max_side) for img in images]
        # Slow settings are judged at the size the real pipeline will see, not the preview's.
        self.source_shape = max((np.shape(img) for img in images), key=lambda s: s[0] * s[1])
        self.tile = int(tile)
        self._template = _template(self.initial_config)
        # Last update's results per image, keyed by the step prefix that made them:
        # moving a late step's slider reuses the earlier steps' images.
        self._memo: list[dict[tuple, np.ndarray]] = [{} for _ in self.originals]
        self.last_update_ms: float | None = None
        self.warnings: list[str] = []
        self.error: str | None = None

        self.sliders = self._make_sliders()
        self.checkboxes: dict[str, widgets.Checkbox] = {}
        for name, _, on in self._template:
            if name in SWITCHABLE and name not in self.checkboxes:  # the first occurrence wins
                self.checkboxes[name] = widgets.Checkbox(value=on, description=name, indent=False,
                                                         layout=widgets.Layout(width="140px"))
        self.image = widgets.Image(format="png")
        self.image.add_class("skinlib-tuner-image")
        self.status = widgets.HTML()
        self.status.add_class("skinlib-tuner-status")
        self.warning = widgets.HTML()
        self.warning.add_class("skinlib-tuner-warning")
        self.widget = widgets.VBox([*self._control_rows(), self.image, self.status, self.warning])
        for w in [*self.sliders.values(), *self.checkboxes.values()]:
            w.observe(self._on_change, names="value")
        self._sync_enabled()
        self.update()

    def _make_sliders(self) -> dict[str, widgets.ValueWidget]:
        """One slider per entry of :data:`SLIDERS`, at the initial config's value (its step's default)."""
        present = {name: params for name, params, _ in reversed(self._template)}  # first occurrence wins
        self._initial: dict[str, Any] = {}
        sliders: dict[str, widgets.ValueWidget] = {}
        for desc, (step, param, lo, hi) in SLIDERS.items():
            value = present[step].get(param, _defaults(step)[param])
            self._initial[desc] = value
            integral = float(value).is_integer()
            cls = widgets.IntSlider if integral else widgets.FloatSlider
            # Widen the range rather than clamp a config's value: clamping would change
            # the pipeline before anyone touched a slider.
            sliders[desc] = cls(
                value=int(value) if integral else float(value),
                min=min(lo, int(np.floor(value))),
                max=max(hi, int(np.ceil(value))),
                step=1 if integral else 0.5,
                description=desc,
                # Update on release, not on every pixel of a drag: a drag would
                # queue dozens of updates in the kernel and the view would lag behind.
                continuous_update=False,
                style={"description_width": "initial"},
                layout=widgets.Layout(width="260px"),
            )
        return sliders

    def _control_rows(self) -> list[widgets.HBox]:
        """The controls as shown: the steps without sliders on one row, then one row per step that has
        sliders (its checkbox first), in pipeline order.
        """
        def sliders_of(step: str) -> list[widgets.ValueWidget]:
            return [self.sliders[d] for d, spec in SLIDERS.items() if spec[0] == step]

        plain = [self.checkboxes[s] for s in SWITCHABLE if not sliders_of(s)]
        return [widgets.HBox(plain), *(widgets.HBox([self.checkboxes[s], *sliders_of(s)])
                                       for s in SWITCHABLE if sliders_of(s))]

    # -- the pipeline the widgets describe

    @property
    def config(self) -> Preprocess:
        """The current pipeline (a new, immutable :class:`Preprocess`)."""
        steps = []
        for name, params, _ in self._template:
            if name in self.checkboxes and not self.checkboxes[name].value:
                continue
            params = dict(params)
            for desc, (step, param, _, _) in SLIDERS.items():
                value = self.sliders[desc].value
                # Write parameters the config had, or that were moved; leave other
                # defaults implicit, as the config had them.
                if step == name and (param in params or value != self._initial[desc]):
                    params[param] = _cast(value, params.get(param, self._initial[desc]))
            steps.append((name, params))
        return self.initial_config.replace(steps=tuple(steps))

    @property
    def panel_names(self) -> list[str]:
        """Column names of the view: ``original``, each step of :attr:`config`, ``output``."""
        return ["original", *self.config.step_names(), "output"]

    # -- updating

    def _sync_enabled(self) -> None:
        for desc, (step, *_) in SLIDERS.items():
            self.sliders[desc].disabled = not self.checkboxes[step].value

    def _on_change(self, change: dict) -> None:
        self._sync_enabled()
        self.update()

    def _preview_config(self, config: Preprocess) -> Preprocess:
        # The matrix form of the bilateral filter is several times faster on small
        # grayscale images (and falls back to OpenCV on others by itself).
        steps = tuple((n, {**p, "method": "matrix"} if n == "bilateral" else p) for n, p in config.steps)
        return config.replace(steps=steps)

    def _stages(self, config: Preprocess, i: int) -> list[np.ndarray]:
        original = self.originals[i]
        img = filters.to_gray(original) if not config.color and original.ndim == 3 else original
        key: tuple = (config.color,)
        memo, self._memo[i] = self._memo[i], {}
        out = [original]
        for name, params in config.steps:
            key += ((name, json.dumps(params, sort_keys=True, default=str)),)
            img = memo[key] if key in memo else STEPS[name](img, **params)
            self._memo[i][key] = img
            out.append(img)
        out.append(output_image(config, img))
        return out

    def update(self) -> float:
        """Recompute the view from the widgets' values; returns the time it took in ms."""
        t0 = time.perf_counter()
        config = self.config
        preview = self._preview_config(config)
        try:
            rows = [self._stages(preview, i) for i in range(len(self.originals))]
            self.image.value = _png(render_mosaic(rows, self.panel_names, tile=self.tile))
            self.error = None
        except (cv2.error, ValueError, TypeError) as exc:
            # A bad combination (say contour cleaning on a colour pipeline) must not
            # break the tuner: say what failed and keep the last good view.
            self.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1]}"
        elapsed = (time.perf_counter() - t0) * 1000
        self.last_update_ms = elapsed
        self.warnings = slow_settings(config, self.source_shape, elapsed)
        status = f"updated in {elapsed:.0f} ms &middot; <code>{html.escape(str(config))}</code>"
        if self.error:
            status = f"<b style='color:#b00020'>{html.escape(self.error)}</b><br>" + status
        self.status.value = status
        self.warning.value = "".join(
            f"<div style='color:#a15c00'>&#9888; {html.escape(w)}</div>" for w in self.warnings
        )
        return elapsed

    # -- display

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"PreprocessTuner({len(self.originals)} images, config={self.config})"
