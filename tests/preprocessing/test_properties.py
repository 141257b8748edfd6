"""Property tests: every filter and pipeline on arbitrary uint8 images.

Images from 1x1 to 300x300 (plus a few explicit large ones), with no channel axis
or 1, 3 or 4 channels, that are constant, noise, or a drawn lesion on skin. For
each: no exception, the documented output shape and dtype, values in range, the
input left untouched, and the same input and settings give the same output.
Examples are drawn as a seed and a few numbers (the pixels come from NumPy), so
that hypothesis shrinks to small readable cases and the file runs in seconds.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from skinlib import Preprocess, filters  # noqa: E402
from skinlib.preprocessing import crop_to_lesion, lesion_box  # noqa: E402

# deadline=None: the first call of a size builds OpenCV and matrix tables, and the
# machine is shared; timing is not what these tests check.
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CHANNELS = (None, 1, 3, 4)  # None: a 2-D (H, W) array


def _canvas(h: int, w: int, channels: int | None, value) -> np.ndarray:
    shape = (h, w) if channels is None else (h, w, channels)
    return np.full(shape, value, np.uint8)


@st.composite
def images(draw, max_side: int = 300, channels=CHANNELS, kinds=("constant", "noise", "lesion")):
    """An arbitrary uint8 image: constant, uniform noise, or a lesion drawn on skin."""
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    c = draw(st.sampled_from(channels))
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "constant":
        return _canvas(h, w, c, draw(st.integers(0, 255)))
    if kind == "noise":
        shape = (h, w) if c is None else (h, w, c)
        return rng.integers(0, 256, shape, dtype=np.uint8)
    n = 1 if c is None else c
    skin = [int(v) for v in rng.integers(120, 256, n)]
    lesion = [int(v) for v in rng.integers(0, 120, n)]
    img = np.full((h, w, n), skin, np.uint8)
    centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
    axes = (int(rng.integers(1, max(2, w // 2))), int(rng.integers(1, max(2, h // 2))))
    cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, lesion, -1)
    for _ in range(int(rng.integers(0, 3))):  # a few dark hairs
        p0, p1 = rng.integers(0, max(h, w), (2, 2))
        cv2.line(img, tuple(int(v) for v in p0), tuple(int(v) for v in p1), [20] * n, 1)
    noise = rng.normal(0, float(rng.uniform(0, 12)), img.shape)
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    return img[:, :, 0] if c is None else img


def channels_out(img: np.ndarray, keep_alpha: bool) -> tuple[int, ...]:
    """The trailing shape a filter returns: () for gray, (3,) for colour (alpha dropped or kept)."""
    if img.ndim == 2 or img.shape[2] == 1:
        return ()
    if img.shape[2] == 4 and not keep_alpha:
        return (3,)
    return (img.shape[2],)


def per_channel_range(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = img.reshape(img.shape[0] * img.shape[1], -1)[:, :3]
    return flat.min(axis=0).astype(int), flat.max(axis=0).astype(int)


def check_pure(fn, img: np.ndarray) -> np.ndarray:
    """Run ``fn`` twice on copies: the input is not modified and the outputs are equal."""
    before = img.copy()
    out = fn(img)
    np.testing.assert_array_equal(img, before)  # "never modifies its input"
    np.testing.assert_array_equal(fn(img.copy()), out)  # deterministic
    assert out.dtype == np.uint8
    return out


# --------------------------------------------------------------------------- filters


@FAST
@given(images())
def test_to_gray(img):
    out = check_pure(filters.to_gray, img)
    assert out.shape == img.shape[:2]
    if img.ndim == 2 or img.shape[2] == 1:
        np.testing.assert_array_equal(out, img.reshape(out.shape))
    else:  # a weighted mean of B, G, R: between the smallest and largest channel value
        lo = img[:, :, :3].min(axis=2).astype(int)
        hi = img[:, :, :3].max(axis=2).astype(int)
        assert (out >= lo).all() and (out <= hi).all()


@FAST
@given(images(), st.integers(1, 64), st.sampled_from(["area", "linear", "nearest", "cubic"]))
def test_resize(img, size, interpolation):
    out = check_pure(lambda a: filters.resize(a, size, interpolation=interpolation), img)
    assert out.shape == (size, size) + channels_out(img, keep_alpha=True)
    if (img == img.flat[0]).all():
        assert (out == img.flat[0]).all()  # a constant image stays that constant
    if interpolation != "cubic":  # cubic overshoots edges (then saturates to 0..255)
        lo, hi = per_channel_range(img)
        olo, ohi = per_channel_range(out)
        assert (olo >= lo).all() and (ohi <= hi).all()


@FAST
@given(images(channels=(None, 1)), st.integers(0, 255), st.integers(1, 6), st.integers(1, 5))
def test_seed_contour(img, threshold, thickness, radius):
    fn = lambda a: filters.seed_contour(a, threshold=threshold, thickness=thickness, inpaint_radius=radius)  # noqa: E731
    out = check_pure(fn, img)
    assert out.shape == img.shape[:2]
    # Only pixels near a dark region's outline are inpainted: with no pixel at or
    # below the threshold, there is no outline and nothing changes.
    if img.min() > threshold:
        np.testing.assert_array_equal(out, img.reshape(out.shape))


@pytest.mark.parametrize("shape", [(1, 11), (11, 1), (1, 1), (1, 60, 3), (60, 1, 3)])
@pytest.mark.parametrize("name", ["seed_contour", "remove_hair"])
def test_inpainting_is_deterministic_on_one_pixel_wide_images(name, shape):
    """cv2.inpaint reads memory it never wrote on such images (found by test_seed_contour)."""
    rng = np.random.default_rng(0)
    for _ in range(30):
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        if name == "seed_contour":
            img = img if img.ndim == 2 else img[:, :, 0]
            fn = lambda a: filters.seed_contour(a, threshold=100, thickness=1, inpaint_radius=1)  # noqa: E731
        else:
            fn = lambda a: filters.remove_hair(a, kernel_size=3, threshold=5)  # noqa: E731
        first = fn(img)
        for _ in range(4):
            np.testing.assert_array_equal(fn(img.copy()), first)


@FAST
@given(images(channels=(3, 4)))
def test_seed_contour_rejects_colour(img):
    with pytest.raises(ValueError, match="2-D grayscale"):
        filters.seed_contour(img)


@FAST
@given(
    images(max_side=80),
    st.sampled_from([-1, 0, 1, 3, 5, 9]),
    st.sampled_from([0.0, 1.0, 10.0, 50.0, 150.0]),
    st.sampled_from([0.0, 1.0, 3.0, 10.0, 50.0]),
    st.sampled_from(["opencv", "matrix"]),
)
def test_bilateral(img, d, sigma_color, sigma_space, method):
    fn = lambda a: filters.bilateral(a, d, sigma_color, sigma_space, method=method)  # noqa: E731
    out = check_pure(fn, img)
    assert out.shape == img.shape[:2] + channels_out(img, keep_alpha=False)
    # A weighted mean of the neighbourhood: within the input's range, give or take
    # the one grey level OpenCV loses by truncating its float sum.
    lo, hi = per_channel_range(img)
    olo, ohi = per_channel_range(out)
    assert (olo >= lo - 1).all() and (ohi <= hi + 1).all()


@FAST
@given(
    images(max_side=64, channels=(None, 1)),
    st.sampled_from([-1, 1, 3, 5, 9]),
    st.sampled_from([1.0, 10.0, 50.0, 150.0]),
    st.sampled_from([1.0, 3.0, 10.0, 50.0]),
)
def test_bilateral_matrix_equals_opencv_within_one_level(img, d, sigma_color, sigma_space):
    """The documented promise of method="matrix": OpenCV's filter up to rounding."""
    fast = filters.bilateral(img, d, sigma_color, sigma_space, method="matrix")
    exact = filters.bilateral(img, d, sigma_color, sigma_space, method="opencv")
    assert np.abs(fast.astype(int) - exact).max() <= 1
    if (img == img.flat[0]).all():
        assert (fast == img.flat[0]).all()  # the matrix form keeps a constant exactly


@FAST
@given(images(max_side=200), st.sampled_from([3, 9, 17]), st.integers(0, 60))
def test_remove_hair(img, kernel_size, threshold):
    fn = lambda a: filters.remove_hair(a, kernel_size=kernel_size, threshold=threshold)  # noqa: E731
    out = check_pure(fn, img)
    assert out.shape == img.shape[:2] + channels_out(img, keep_alpha=False)
    if (img == img.flat[0]).all():  # no dark thin structure: nothing to inpaint
        assert (out == img.flat[0]).all()


# --------------------------------------------------------------------------- lesion box and crop


def check_box(img: np.ndarray, box) -> int:
    h, w = img.shape[:2]
    y0, x0, y1, x1 = box
    assert all(isinstance(v, int) for v in box)
    assert 0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w, (box, img.shape)
    side = y1 - y0
    assert side == x1 - x0 and side >= 1
    return side


@FAST
@given(images(), st.floats(0, 1), st.floats(0, 0.2))
def test_lesion_box_inside_and_square(img, margin, min_area):
    before = img.copy()
    box = lesion_box(img, margin=margin, min_area=min_area)
    np.testing.assert_array_equal(img, before)
    assert lesion_box(img.copy(), margin=margin, min_area=min_area) == box
    check_box(img, box)


@FAST
@given(images(), st.floats(0, 1))
def test_crop_to_lesion_is_the_box(img, margin):
    out = check_pure(lambda a: crop_to_lesion(a, margin=margin), img)
    y0, x0, y1, x1 = lesion_box(img, margin=margin)
    side = check_box(img, (y0, x0, y1, x1))
    assert out.shape == (side, side) + channels_out(img, keep_alpha=True)
    np.testing.assert_array_equal(out, img[y0:y1, x0:x1].reshape(out.shape))


@FAST
@given(
    st.integers(32, 300), st.integers(32, 300), st.floats(0.15, 0.35), st.floats(0.2, 0.8), st.floats(0.2, 0.8),
    st.integers(150, 255), st.integers(0, 90), st.sampled_from(CHANNELS),
)
def test_lesion_box_contains_a_clear_lesion(h, w, r, fy, fx, skin, dark, channels):
    """A single dark disc on even skin, away from the corners: the box holds all of it."""
    radius = max(3, int(r * min(h, w) / 2))
    cy, cx = int(fy * h), int(fx * w)
    assume(radius <= cy < h - radius and radius <= cx < w - radius)
    img = _canvas(h, w, 3, skin)
    cv2.circle(img, (cx, cy), radius, (dark, dark, dark), -1)
    if channels in (None, 1):
        img = img[:, :, :1] if channels == 1 else img[:, :, 0]
    elif channels == 4:
        img = np.dstack([img, np.full((h, w), 255, np.uint8)])
    y0, x0, y1, x1 = lesion_box(img, margin=0.0)
    assert y0 <= cy - radius + 1 and cy + radius <= y1 and x0 <= cx - radius + 1 and cx + radius <= x1


# --------------------------------------------------------------------------- pipelines


def hair_crop_pipeline(color: bool = False) -> Preprocess:
    return Preprocess(
        steps=(("remove_hair", {}), ("crop_to_lesion", {}), ("resize", {"size": 28}), ("bilateral", {"d": 5})),
        color=color,
    )


PIPELINES = {
    "seed": Preprocess.seed(),
    "seed_fast": Preprocess.seed(fast=True),
    "default": Preprocess.default(),
    "hair_crop_resize_bilateral": hair_crop_pipeline(),
    "hair_crop_resize_bilateral_colour": hair_crop_pipeline(color=True),
    "colour_resize": Preprocess(steps=(("resize", {"size": 32, "interpolation": "linear"}),), color=True),
}


@pytest.mark.parametrize("name", PIPELINES)
@SLOW
@given(img=images())
def test_pipeline_output(name, img):
    config = PIPELINES[name]
    out = check_pure(config.apply, img)
    assert out.shape == config.output_shape
    if (img == img.flat[0]).all() and name in ("default", "colour_resize"):
        assert (out == img.flat[0]).all()  # resizing alone keeps a constant image constant


@pytest.mark.parametrize("name", PIPELINES)
@FAST
@given(st.integers(1, 40), st.integers(1, 40))
def test_two_channel_arrays_are_rejected(name, h, w):
    """(H, W, 2) is no image layout OpenCV knows: a clear ValueError, not a wrong answer."""
    img = np.zeros((h, w, 2), np.uint8)
    with pytest.raises(ValueError, match=r"\(H, W\), \(H, W, 1\), \(H, W, 3\) or \(H, W, 4\)"):
        PIPELINES[name].apply(img)


FILTERS = {
    "to_gray": filters.to_gray,
    "resize": filters.resize,
    "seed_contour": filters.seed_contour,
    "bilateral": filters.bilateral,
    "bilateral_matrix": lambda a: filters.bilateral(a, method="matrix"),
    "remove_hair": filters.remove_hair,
    "lesion_box": lesion_box,
    "crop_to_lesion": crop_to_lesion,
}


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("shape", [(5, 5, 2), (5, 5, 5), (5,), (5, 5, 3, 1), (0, 5), (5, 0, 3)])
def test_filters_reject_bad_shapes(name, shape):
    with pytest.raises(ValueError, match="must have shape|is empty"):
        FILTERS[name](np.zeros(shape, np.uint8))


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int8, bool])
def test_filters_reject_other_dtypes(name, dtype):
    with pytest.raises(TypeError, match="must be a uint8 array"):
        FILTERS[name](np.zeros((8, 8), dtype))


# --------------------------------------------------------------------------- a few large and extreme examples


def _big_lesion(h: int, w: int, channels: int | None) -> np.ndarray:
    img = _canvas(h, w, 3, 190)
    cv2.ellipse(img, (w // 2, h // 2), (w // 6, h // 5), 30, 0, 360, (60, 50, 40), -1)
    cv2.line(img, (0, 0), (w - 1, h - 1), (20, 20, 20), 3)  # a hair
    if channels is None:
        return img[:, :, 0]
    return np.dstack([img, np.full((h, w), 255, np.uint8)]) if channels == 4 else img


@pytest.mark.parametrize(
    "shape",
    [(3000, 4000, 3), (2000, 2000, None), (1500, 1000, 4), (1, 5000, 3), (5000, 1, None), (1, 1, None), (1, 1, 4)],
    ids=lambda s: "x".join(str(v) for v in s if v is not None),
)
@pytest.mark.parametrize("name", PIPELINES)
def test_pipelines_on_large_and_extreme_images(name, shape):
    config = PIPELINES[name]
    img = _big_lesion(*shape)
    out = config.apply(img)
    assert out.shape == config.output_shape and out.dtype == np.uint8
    np.testing.assert_array_equal(config.apply(img), out)
    if min(shape[:2]) > 100:  # a dark lesion in the middle stays dark, the skin stays light
        gray = out.mean(axis=2)
        assert gray[11:17, 11:17].mean() < gray[1:4, 1:4].mean()
