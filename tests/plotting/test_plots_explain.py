"""skinlib.plotting._plots.plot_gradcam: heat maps of a run's model over the original images."""

import json
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")  # headless: before anything imports pyplot

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")

from conftest import lesion_image, write_jpeg  # noqa: E402
from skinlib import Preprocess, crop_to_lesion, read_image  # noqa: E402
from skinlib.models import build_v1  # noqa: E402
from skinlib.plotting import plot_gradcam  # noqa: E402
from skinlib.models import scale_pixels  # noqa: E402

layers = keras.layers


def write_run(folder, model, preprocess, faithful=False):
    """A run folder as training writes one: model.keras and config.json (the parts load_run reads)."""
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    config = {
        "model": model.name,
        "parameters": int(model.count_params()),
        "input_shape": list(preprocess.output_shape),
        "preprocess": preprocess.to_dict(),
        "faithful": faithful,
        "threshold": 0.5,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def colour_model(metadata_features=0):
    keras.utils.set_random_seed(0)
    image = keras.Input((32, 32, 3), name="image")
    f = layers.Conv2D(4, 3, activation="relu", padding="same")(image)
    f = layers.Conv2D(4, 3, activation="relu", padding="same")(f)
    f = layers.GlobalAveragePooling2D()(f)
    inputs = image
    if metadata_features:
        meta = keras.Input((metadata_features,), name="metadata")
        f = layers.Concatenate()([f, layers.Dense(2)(meta)])
        inputs = [image, meta]
    out = layers.Activation("sigmoid", name="probability")(layers.Dense(1, name="logit")(f))
    return keras.Model(inputs, out, name="tiny")


COLOUR_32 = Preprocess(steps=(("resize", {"size": 32, "interpolation": "area"}),), color=True)


@pytest.fixture
def lesions(tmp_path):
    """Three JPEGs of different sizes, one not square."""
    images = [lesion_image(size=96, radius=20, seed=0), lesion_image(size=120, radius=30, seed=1)[:, 10:90],
              lesion_image(size=64, radius=12, seed=2)]
    return [write_jpeg(tmp_path / "img" / f"lesion{i}.jpg", img) for i, img in enumerate(images)]


def panels(fig):
    return [ax for ax in fig.axes if ax.get_images()]


def heatmap(ax):
    (heat,) = [im for im in ax.get_images() if im.get_gid() == "heatmap"]
    return heat


def test_colour_run_gets_gradcam_over_the_original_images(tmp_path, lesions):
    model = colour_model()
    run = write_run(tmp_path / "run", model, COLOUR_32)
    fig = plot_gradcam(run, lesions, titles=["a", "b", "c"], ncols=2)
    axes = panels(fig)
    assert len(axes) == 3  # one per image; the fourth grid cell is removed, the colour bar has no image
    x = scale_pixels(np.stack([COLOUR_32.load(p) for p in lesions]))
    probs = model.predict(x, verbose=0).ravel()
    for ax, path, title, p in zip(axes, lesions, "abc", probs):
        original = read_image(path, color=True)
        background, heat = ax.get_images()
        np.testing.assert_array_equal(background.get_array(), original[:, :, ::-1])  # RGB
        assert heat.get_array().shape == original.shape[:2]  # the map at the original resolution
        assert heat.get_cmap().name == "jet" and heat.get_clim() == (0.0, 1.0)
        assert heat.get_alpha() == pytest.approx(0.45)
        assert ax.get_title() == f"{title}\np={p:.2f}"
        assert 0 <= np.nanmin(heat.get_array()) <= np.nanmax(heat.get_array()) <= 1


def test_gray_28x28_run_gets_a_signed_occlusion_map(tmp_path, lesions):
    keras.utils.set_random_seed(0)
    run = write_run(tmp_path / "v1", build_v1(), Preprocess.default())
    fig = plot_gradcam(run, lesions[:2], alpha=0.6)
    axes = panels(fig)
    assert len(axes) == 2
    limits = set()
    for ax, path in zip(axes, lesions):
        heat = heatmap(ax)
        assert heat.get_array().shape == read_image(path).shape  # original height and width
        assert heat.get_cmap().name == "RdBu_r" and heat.get_alpha() == pytest.approx(0.6)
        lo, hi = heat.get_clim()
        assert lo == -hi and hi > 0  # centred at 0
        limits.add(hi)
        assert ax.get_title().startswith(path.name) and "\np=" in ax.get_title()
    assert len(limits) == 1  # one scale for all panels
    # method overrides the default
    assert heatmap(panels(plot_gradcam(run, lesions[:1], method="gradcam"))[0]).get_cmap().name == "jet"


def test_crop_pipeline_overlays_the_cropped_region(tmp_path, lesions):
    preprocess = Preprocess(steps=(("crop_to_lesion", {}), ("resize", {"size": 32})), color=True)
    run = write_run(tmp_path / "run", colour_model(), preprocess)
    fig = plot_gradcam(run, lesions[1:2], method="occlusion")
    (ax,) = panels(fig)
    cropped = crop_to_lesion(read_image(lesions[1], color=True))
    assert cropped.shape[:2] != read_image(lesions[1]).shape  # the crop is a real part of the image
    background, heat = ax.get_images()
    np.testing.assert_array_equal(background.get_array(), cropped[:, :, ::-1])
    assert heat.get_array().shape == cropped.shape[:2]


def test_metadata_reaches_a_two_input_model(tmp_path, lesions):
    model = colour_model(metadata_features=2)
    run = write_run(tmp_path / "run", model, COLOUR_32)
    meta = np.array([[0.0, 1.0], [5.0, -5.0]], np.float32)
    fig = plot_gradcam(run, lesions[:2], metadata=meta)
    x = scale_pixels(np.stack([COLOUR_32.load(p) for p in lesions[:2]]))
    probs = model.predict([x, meta], verbose=0).ravel()
    assert [ax.get_title().split("\n")[1] for ax in panels(fig)] == [f"p={p:.2f}" for p in probs]
    with pytest.raises(ValueError, match="metadata"):
        plot_gradcam(run, lesions[:2])


def test_bad_arguments_are_named(tmp_path, lesions):
    run = write_run(tmp_path / "run", colour_model(), COLOUR_32)
    with pytest.raises(ValueError, match="method must be"):
        plot_gradcam(run, lesions, method="saliency")
    with pytest.raises(ValueError, match="2 titles for 3 images"):
        plot_gradcam(run, lesions, titles=["a", "b"])
    with pytest.raises(ValueError, match="at least one image"):
        plot_gradcam(run, [])
    missing = tmp_path / "missing.jpg"
    with pytest.raises(ValueError, match="missing.jpg"):  # ImageReadError naming the file
        plot_gradcam(run, [missing])


def test_importing_plots_does_not_load_tensorflow():
    code = "import sys, skinlib.plotting._plots; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
