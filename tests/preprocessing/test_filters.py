import cv2
import numpy as np
import pytest

from skinlib import filters
from skinlib.preprocessing import crop_to_lesion, lesion_box
from conftest import lesion_image


def original_contour(gray):
    """A direct transcription of the original project's contour step."""
    ret, thresh = cv2.threshold(gray, 127, 255, cv2.THRESH_BINARY_INV)
    contours, hierarchy = cv2.findContours(thresh, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    mask = np.zeros(gray.shape, np.uint8)
    cv2.drawContours(mask, contours, -1, 255, 4)
    return cv2.inpaint(gray, mask, 3, cv2.INPAINT_TELEA)


def test_seed_contour_equals_original_transcription():
    gray = cv2.cvtColor(lesion_image(size=28, radius=8), cv2.COLOR_BGR2GRAY)
    out = filters.seed_contour(gray)
    np.testing.assert_array_equal(out, original_contour(gray))
    # and it really changes the lesion: the outline of the disc is inpainted away
    assert np.abs(out.astype(int) - gray).sum() > 0


def test_seed_contour_parameters_have_effect():
    gray = cv2.cvtColor(lesion_image(size=64, radius=16), cv2.COLOR_BGR2GRAY)
    thin = filters.seed_contour(gray, thickness=1)
    thick = filters.seed_contour(gray, thickness=8)
    changed_thin = (thin != gray).sum()
    changed_thick = (thick != gray).sum()
    assert changed_thick > changed_thin > 0
    # a threshold below every pixel finds no contour: nothing changes
    np.testing.assert_array_equal(filters.seed_contour(gray, threshold=0), gray)


def test_seed_contour_rejects_colour():
    with pytest.raises(ValueError, match="grayscale"):
        filters.seed_contour(lesion_image())


def test_bilateral_smooths_noise_keeps_edges():
    rng = np.random.default_rng(0)
    img = np.zeros((64, 64), np.uint8)
    img[:, 32:] = 200
    noisy = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
    out = filters.bilateral(noisy, d=9, sigma_color=50, sigma_space=50)
    assert out.shape == noisy.shape and out.dtype == np.uint8
    assert out[:, 5:27].std() < noisy[:, 5:27].std() / 2  # flat region smoothed
    assert out[:, 5:27].mean() < 40 and out[:, 37:59].mean() > 160  # edge kept
    np.testing.assert_array_equal(filters.bilateral(noisy), cv2.bilateralFilter(noisy, -1, 50, 50))


def test_to_gray_matches_opencv_weights():
    img = lesion_image()
    np.testing.assert_array_equal(filters.to_gray(img), cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    bgra = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    assert filters.to_gray(bgra).shape == img.shape[:2]
    g = filters.to_gray(img[:, :, 0])
    assert g.shape == img.shape[:2]


def test_resize_area_averages_when_shrinking():
    img = np.zeros((280, 280), np.uint8)
    img[:, ::10] = 255  # thin vertical lines: a tenth of the pixels are white
    area = filters.resize(img, 28)
    linear = filters.resize(img, 28, interpolation="linear")
    assert area.shape == (28, 28)
    assert abs(float(area.mean()) - 25.5) < 1  # area keeps the mean grey level
    assert float(linear.mean()) < 5  # bilinear samples between the lines and misses them


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4), np.uint8)])
def test_filters_reject_bad_arrays(bad):
    with pytest.raises((TypeError, ValueError)):
        filters.resize(bad, 28)


def test_remove_hair_removes_drawn_dark_lines():
    img = lesion_image(size=200, radius=40)
    hairy = img.copy()
    cv2.line(hairy, (0, 20), (199, 180), (20, 20, 20), 2)
    cv2.line(hairy, (10, 199), (190, 0), (25, 25, 25), 1)
    hair = np.abs(hairy.astype(int) - img).sum(axis=2) > 60
    out = filters.remove_hair(hairy)
    err_before = np.abs(hairy.astype(int) - img)[hair].mean()
    err_after = np.abs(out.astype(int) - img)[hair].mean()
    assert err_after < err_before / 3
    # the lesion itself (a wide dark disc) is kept
    assert out[100, 100].mean() < 90


def test_filters_do_not_modify_input():
    img = lesion_image()
    before = img.copy()
    filters.remove_hair(img)
    filters.bilateral(img)
    filters.seed_contour(filters.to_gray(img))
    crop_to_lesion(img)
    np.testing.assert_array_equal(img, before)


def test_lesion_box_finds_drawn_lesion():
    img = lesion_image(size=200, radius=20, centre=(60, 130))
    y0, x0, y1, x1 = lesion_box(img, margin=0)
    assert abs((y0 + y1) / 2 - 60) <= 2 and abs((x0 + x1) / 2 - 130) <= 2
    assert 38 <= y1 - y0 <= 44 and y1 - y0 == x1 - x0


def test_lesion_box_ignores_dark_vignette():
    img = lesion_image(size=200, radius=15, centre=(120, 80))
    yy, xx = np.mgrid[0:200, 0:200]
    img[np.hypot(yy - 100, xx - 100) > 95] = 10  # dark round frame reaching every corner
    y0, x0, y1, x1 = lesion_box(img, margin=0.1)
    assert abs((y0 + y1) / 2 - 120) <= 3 and abs((x0 + x1) / 2 - 80) <= 3
    assert y1 - y0 < 60


def test_lesion_box_margin_and_border_clipping():
    img = lesion_image(size=100, radius=10, centre=(12, 88))
    y0, x0, y1, x1 = lesion_box(img, margin=0.5)
    assert 0 <= y0 < y1 <= 100 and 0 <= x0 < x1 <= 100
    assert y1 - y0 == x1 - x0 >= 40


def test_crop_falls_back_to_centre():
    flat = np.full((60, 100), 128, np.uint8)
    assert lesion_box(flat) == (0, 20, 60, 80)
    assert crop_to_lesion(flat).shape == (60, 60)


@pytest.mark.parametrize("d,sigma_color,sigma_space", [(-1, 50, 50), (9, 75, 75), (-1, 30, 5), (5, 20, 10)])
def test_matrix_bilateral_matches_opencv(d, sigma_color, sigma_space):
    rng = np.random.default_rng(d + sigma_space)
    imgs = [filters.seed_contour(cv2.cvtColor(lesion_image(size=28, radius=int(r), seed=int(r)), cv2.COLOR_BGR2GRAY))
            for r in rng.integers(3, 12, 6)]
    imgs += [rng.integers(0, 256, (28, 28), dtype=np.uint8), rng.integers(0, 256, (13, 21), dtype=np.uint8)]
    for img in imgs:
        fast = filters.bilateral(img, d, sigma_color, sigma_space, method="matrix").astype(int)
        ref = filters.bilateral(img, d, sigma_color, sigma_space).astype(int)
        assert np.abs(fast - ref).max() <= 1  # rounding only
        if (d, sigma_space) == (-1, 50):  # the original project's setting: nearly identical
            assert np.abs(fast - ref).mean() < 0.01


def test_matrix_bilateral_falls_back_for_colour_and_large():
    big = np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8)
    np.testing.assert_array_equal(filters.bilateral(big, 5, 20, 20, method="matrix"), cv2.bilateralFilter(big, 5, 20, 20))
    with pytest.raises(ValueError, match="method"):
        filters.bilateral(big, method="fft")
