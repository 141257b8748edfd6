"""skinlib.preprocessing._widgets.PreprocessTuner: widgets -> config, and the rendered view."""

import cv2
import numpy as np
import pytest

import skinlib.preprocessing._widgets as widgets_module
from skinlib import Preprocess
from skinlib.data import draw_lesion_image
from skinlib.preprocessing import PreprocessTuner, render_mosaic, slow_settings

TILE, GAP, HEADER = 112, 4, 18  # render_mosaic's defaults


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    # 300 px: larger than max_side, so the tuner has to shrink them.
    return [draw_lesion_image(rng, malignant, size=300) for malignant in (False, True, False)]


@pytest.fixture
def tuner(images):
    return PreprocessTuner(images, Preprocess.seed())


def png_bytes(tuner):
    return bytes(tuner.image.value)


def decode(tuner):
    img = cv2.imdecode(np.frombuffer(png_bytes(tuner), np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def test_untouched_tuner_returns_its_config(tuner, images):
    assert tuner.config == Preprocess.seed()
    assert tuner.config.to_json() == Preprocess.seed().to_json()
    assert [img.shape for img in tuner.originals] == [(256, 256, 3)] * 3  # shrunk once
    assert set(tuner.sliders) == {"d", "sigmaColor", "sigmaSpace", "threshold", "thickness", "power"}
    assert {name: s.description for name, s in tuner.sliders.items()} == {n: n for n in tuner.sliders}
    assert tuner.sliders["d"].value == -1 and tuner.sliders["threshold"].value == 127
    assert tuner.sliders["d"].min == -1 and tuner.sliders["d"].max == 15


def test_slider_changes_config_and_image(tuner):
    before = png_bytes(tuner)
    tuner.sliders["d"].value = 5  # observers call update()
    assert dict(tuner.config.steps)["bilateral"] == {"d": 5, "sigma_color": 50, "sigma_space": 50}
    after_d = png_bytes(tuner)
    assert after_d != before
    tuner.sliders["threshold"].value = 90
    tuner.sliders["thickness"].value = 1
    assert dict(tuner.config.steps)["seed_contour"] == {"threshold": 90, "thickness": 1, "inpaint_radius": 3}
    assert png_bytes(tuner) != after_d
    assert tuner.config.step_names() == ["resize", "seed_contour", "bilateral"]  # order kept


def test_unchecking_a_step_removes_it(tuner):
    tuner.checkboxes["seed_contour"].value = False
    assert tuner.config.step_names() == ["resize", "bilateral"]
    assert tuner.sliders["threshold"].disabled and not tuner.sliders["d"].disabled
    tuner.checkboxes["bilateral"].value = False
    assert tuner.config == Preprocess.seed().without("seed_contour", "bilateral")
    tuner.checkboxes["seed_contour"].value = True
    assert tuner.config.step_names() == ["resize", "seed_contour"]


def test_steps_the_config_lacks_can_be_switched_on_in_place(images):
    tuner = PreprocessTuner(images[:1], Preprocess.default())
    assert tuner.config == Preprocess.default()
    assert not tuner.checkboxes["bilateral"].value and tuner.sliders["d"].disabled
    for step in ("bilateral", "crop_to_lesion", "remove_hair", "seed_contour"):
        tuner.checkboxes[step].value = True
    assert tuner.config.step_names() == ["remove_hair", "crop_to_lesion", "resize", "seed_contour", "bilateral"]
    assert tuner.config.decode_min_side == Preprocess.default().decode_min_side  # other fields kept
    assert tuner.error is None


def test_config_round_trips_through_json(tuner):
    tuner.sliders["sigmaColor"].value = 120
    tuner.sliders["sigmaSpace"].value = 10
    tuner.checkboxes["remove_hair"].value = True
    config = tuner.config
    assert Preprocess.from_json(config.to_json()) == config
    assert dict(config.steps)["bilateral"] == {"d": -1, "sigma_color": 120, "sigma_space": 10}


def test_types_and_method_of_the_config_are_kept(images):
    config = Preprocess.seed(fast=True).with_params("bilateral", sigma_color=50.0)
    tuner = PreprocessTuner(images[:1], config)
    assert tuner.config.to_json() == config.to_json()  # 50.0 stays a float: same cache key
    tuner.sliders["sigmaColor"].value = 80
    params = dict(tuner.config.steps)["bilateral"]
    assert params["sigma_color"] == 80.0 and isinstance(params["sigma_color"], float)
    assert params["method"] == "matrix"
    # and a plain OpenCV config stays OpenCV, although the preview uses the matrix form
    assert "method" not in dict(PreprocessTuner(images[:1]).config.steps)["bilateral"]


def test_mosaic_has_one_panel_per_stage(tuner):
    names = ["original", "resize", "seed_contour", "bilateral", "output"]
    assert tuner.panel_names == names
    h, w = decode(tuner).shape[:2]
    assert (h, w) == (HEADER + 3 * TILE + 4 * GAP, len(names) * TILE + (len(names) + 1) * GAP)
    tuner.checkboxes["seed_contour"].value = False
    h, w = decode(tuner).shape[:2]
    assert w == 4 * TILE + 5 * GAP


def test_output_panel_is_the_models_input(tuner):
    """The preview computes the bilateral filter as a matrix: within one grey level of OpenCV."""
    mosaic = decode(tuner)
    col = len(tuner.panel_names) - 1
    for row, original in enumerate(tuner.originals):
        y, x = HEADER + GAP + row * (TILE + GAP), GAP + col * (TILE + GAP)
        tile = mosaic[y : y + TILE, x : x + TILE, 0]
        shown = tile[:: TILE // 28, :: TILE // 28]  # 112 = 4 x 28, nearest neighbour
        expected = tuner.config.apply(original)[:, :, 0]
        assert np.abs(shown.astype(int) - expected).max() <= 1


def test_render_mosaic_dimensions():
    rows = [[np.zeros((28, 28), np.uint8), np.zeros((40, 20, 3), np.uint8)]] * 2
    out = render_mosaic(rows, ["a", "b"], tile=50, gap=2, header=10)
    assert out.shape == (10 + 2 * 50 + 3 * 2, 2 * 50 + 3 * 2, 3)
    with pytest.raises(ValueError):
        render_mosaic(rows, ["a"])


def test_status_shows_time_and_config(tuner):
    assert tuner.last_update_ms > 0
    assert "updated in" in tuner.status.value and "seed_contour" in tuner.status.value
    assert tuner.warnings == [] and tuner.warning.value == ""


def test_slow_setting_at_source_resolution_warns():
    # A large source, previewed tiny: the warning is about the real pipeline's cost.
    source = [np.full((512, 512, 3), 160, np.uint8)]
    config = Preprocess(
        steps=(("bilateral", {"d": 5, "sigma_color": 50, "sigma_space": 50}), ("resize", {"size": 28}))
    )
    tuner = PreprocessTuner(source, config, max_side=16)
    assert tuner.warnings == []
    tuner.sliders["d"].value = -1
    tuner.sliders["sigmaSpace"].value = 150
    assert any("source resolution (512x512)" in w and "451-pixel window" in w for w in tuner.warnings)
    assert "451-pixel window" in tuner.warning.value


def test_slow_bilateral_after_resize_suggests_matrix():
    assert slow_settings(Preprocess.seed(), (512, 512)) == []
    slow = Preprocess.seed().with_params("bilateral", sigma_space=150)
    (warning,) = slow_settings(slow, (512, 512))
    assert "after the resize (28x28)" in warning and "method='matrix'" in warning
    assert slow_settings(Preprocess.seed(fast=True).with_params("bilateral", sigma_space=150), (512, 512)) == []


def test_slow_update_warns(tuner, monkeypatch):
    monkeypatch.setattr(widgets_module, "SLOW_MS", -1.0)
    tuner.sliders["sigmaColor"].value = 60
    assert any(w.startswith("the last update took") for w in tuner.warnings)
    assert "the last update took" in tuner.warning.value


def test_failing_step_reports_error_and_keeps_view(images):
    config = Preprocess(steps=(("resize", {"size": 28}),), color=True)
    tuner = PreprocessTuner(images[:1], config)
    good = png_bytes(tuner)
    tuner.checkboxes["seed_contour"].value = True  # needs grayscale: fails on colour
    assert tuner.error is not None and "ValueError" in tuner.status.value
    assert png_bytes(tuner) == good
    tuner.checkboxes["seed_contour"].value = False
    assert tuner.error is None


def test_displays_as_a_widget(tuner):
    bundle = tuner._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert tuner.image in tuner.widget.children


def test_color_constancy_switch_adds_the_step_with_its_power(images):
    tuner = PreprocessTuner(images, Preprocess.for_model("v3"))
    assert tuner.checkboxes["color_constancy"].value is True
    tuner.sliders["power"].value = 2
    assert dict(tuner.config.steps)["color_constancy"] == {"power": 2}
    tuner.checkboxes["color_constancy"].value = False
    assert "color_constancy" not in tuner.config.step_names()
    assert tuner.config.color and tuner.config.size == 64


def test_every_slider_and_checkbox_is_shown(images):
    """Each control sits in the displayed widget, its step's sliders on the row of its checkbox."""
    tuner = PreprocessTuner(images, Preprocess.for_model("v3"))

    def descendants(widget):
        for child in getattr(widget, "children", ()):
            yield child
            yield from descendants(child)

    shown = {id(w) for w in descendants(tuner.widget)}
    controls = {**tuner.sliders, **tuner.checkboxes}
    assert {name for name, w in controls.items() if id(w) not in shown} == set()
    power_row = next(row for row in tuner.widget.children if tuner.sliders["power"] in getattr(row, "children", ()))
    assert tuner.checkboxes["color_constancy"] in power_row.children
