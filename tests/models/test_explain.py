"""skinlib.models._explain: Grad-CAM and occlusion maps find what a model really uses."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from sklearn.metrics import roc_auc_score  # noqa: E402

from skinlib import models  # noqa: E402
from skinlib.models import gradcam, last_conv_layer, occlusion_map  # noqa: E402

layers = keras.layers


def planted_squares(n, seed):
    """32x32x3 noise; odd-numbered images (label 1) carry a bright 8x8 square at a random spot."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.6, (n, 32, 32, 3)).astype(np.float32)
    y = (np.arange(n) % 2).astype(np.float32)
    boxes = np.zeros((n, 2), int)
    for i in np.flatnonzero(y):
        boxes[i] = rng.integers(0, 25, 2)
        r, c = boxes[i]
        x[i, r : r + 8, c : c + 8] = 1.0
    return x, y, boxes


def square_mask(r, c, side=32):
    mask = np.zeros((side, side), bool)
    mask[r : r + 8, c : c + 8] = True
    return mask


@pytest.fixture(scope="module")
def square_model():
    """A tiny conv net trained to tell images with a planted square from noise."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(4, 3, activation="relu", padding="same"),
            layers.Conv2D(4, 3, activation="relu", padding="same"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    x, y, _ = planted_squares(128, seed=0)
    for _ in range(4):  # until it separates the classes (12 epochs with this seed), at most 24
        model.fit(x, y, epochs=6, batch_size=32, verbose=0)
        auc = roc_auc_score(y, model.predict(x, verbose=0).ravel())
        if auc > 0.95:
            break
    assert auc > 0.95  # it learned the task before we ask where it looks
    return model


def top_left_model(gain=8.0, bias=-4.0):
    """28x28x1 model whose output is sigmoid(gain * mean of the top-left 8x8 pixels + bias), fixed weights."""
    image = keras.Input((28, 28, 1))
    corner = layers.Cropping2D(((0, 20), (0, 20)))(image)
    mean = layers.GlobalAveragePooling2D()(corner)
    out = layers.Dense(1, activation="sigmoid")(mean)
    model = keras.Model(image, out)
    model.layers[-1].set_weights([np.array([[gain]], np.float32), np.array([bias], np.float32)])
    return model


def bright_corner_images(n=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.3, (n, 28, 28, 1)).astype(np.float32)
    x[:, :8, :8] = 0.9
    return x


def two_input_model(side=32, k=3):
    image = keras.Input((side, side, 3), name="image")
    meta = keras.Input((k,), name="metadata")
    f = layers.Conv2D(4, 3, padding="same", name="conv")(image)
    f = layers.BatchNormalization(name="bn")(f)
    f = layers.ReLU(name="relu")(f)
    f = layers.GlobalAveragePooling2D(name="pool")(f)
    m = layers.Dense(4, activation="relu")(meta)
    z = layers.Dense(1, name="logit")(layers.Concatenate()([f, m]))
    out = layers.Activation("sigmoid", name="probability")(z)
    keras.utils.set_random_seed(1)
    return keras.Model([image, meta], out)


# --------------------------------------------------------------------------- last_conv_layer


def test_last_conv_layer_skips_pooling_and_stops_before_global_pooling():
    for build in (models.build_v1, models.build_v2):
        model = build()
        convs = [layer.name for layer in model.layers if isinstance(layer, layers.Conv2D)]
        assert last_conv_layer(model) == convs[-1]  # not the MaxPooling2D after it
    assert last_conv_layer(two_input_model()) == "relu"  # the activation after conv and batch norm


@pytest.mark.skipif(not hasattr(models, "build_v3"), reason="v3 not in this checkout")
def test_last_conv_layer_of_v3_is_its_last_stage():
    assert last_conv_layer(models.build_v3()) == "stage3_out"


def test_last_conv_layer_needs_a_feature_map():
    dense = keras.Sequential([keras.Input((10,)), layers.Dense(4), layers.Dense(1, activation="sigmoid")], name="mlp")
    with pytest.raises(ValueError, match=r"'mlp' has no layer with a 4-D"):
        last_conv_layer(dense)


# --------------------------------------------------------------------------- Grad-CAM


def test_gradcam_finds_the_planted_square(square_model):
    x, y, boxes = planted_squares(24, seed=1)
    pos = np.flatnonzero(y)
    maps = gradcam(square_model, x[pos])
    assert maps.shape == (len(pos), 32, 32) and maps.dtype == np.float32
    assert maps.min() >= 0 and np.allclose(maps.max(axis=(1, 2)), 1.0)  # normalised per image
    hits = []
    for m, (r, c) in zip(maps, boxes[pos]):
        inside = square_mask(r, c)
        hits.append(m[inside].mean() > 3 * m[~inside].mean())
    assert np.mean(hits) >= 0.8, hits
    # the argmax lies in (or touches) the square too
    peaks = [np.unravel_index(m.argmax(), m.shape) for m in maps]
    near = [r - 1 <= pr <= r + 8 and c - 1 <= pc <= c + 8 for (pr, pc), (r, c) in zip(peaks, boxes[pos])]
    assert np.mean(near) >= 0.8, near


def test_gradcam_batches_give_the_same_maps(square_model):
    x, _, _ = planted_squares(6, seed=2)
    np.testing.assert_allclose(gradcam(square_model, x, batch_size=2), gradcam(square_model, x), atol=1e-5)


def test_gradcam_of_a_reloaded_sequential_model_is_the_same(square_model, tmp_path):
    # A Sequential model loaded from .keras has layers with several graph nodes (it is
    # rebuilt layer by layer); its maps must still come from the graph that gives its output.
    square_model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    x, _, _ = planted_squares(4, seed=4)
    np.testing.assert_allclose(gradcam(loaded, x), gradcam(square_model, x), atol=1e-5)
    v1 = models.build_v1()
    v1.save(tmp_path / "v1.keras")
    maps = gradcam(keras.saving.load_model(tmp_path / "v1.keras"), np.random.default_rng(0).random((2, 28, 28, 1)))
    assert maps.shape == (2, 28, 28) and maps.max() == pytest.approx(1.0)


@pytest.mark.parametrize("split_activation", [False, True])
def test_gradcam_uses_the_logit_so_saturated_outputs_still_explain(split_activation):
    # p = sigmoid(40 + 40 * mean(relu(pixel))) is exactly 1.0 in float32: the gradient of p
    # (or of a logit recomputed from clipped p) is zero, that of the pre-sigmoid value is not.
    image = keras.Input((16, 16, 1))
    f = layers.Conv2D(1, 1, activation="relu", name="conv")(image)
    f = layers.GlobalAveragePooling2D()(f)
    if split_activation:
        out = layers.Activation("sigmoid", name="probability")(layers.Dense(1, name="logit")(f))
    else:
        out = layers.Dense(1, activation="sigmoid", name="logit")(f)
    model = keras.Model(image, out)
    model.get_layer("conv").set_weights([np.ones((1, 1, 1, 1), np.float32), np.zeros(1, np.float32)])
    model.get_layer("logit").set_weights([np.array([[40.0]], np.float32), np.array([40.0], np.float32)])
    x = np.zeros((2, 16, 16, 1), np.float32)
    x[0, 2:6, 10:14] = 1.0  # a bright patch
    assert model.predict(x, verbose=0).min() == 1.0
    maps = gradcam(model, x)
    assert maps.shape == (2, 16, 16)
    assert maps[0, 2:6, 10:14].min() == pytest.approx(1.0) and maps[0, 9:, :8].max() == 0
    assert not maps[1].any()  # no positive evidence: all zeros, not NaN


def test_gradcam_checks_its_inputs(square_model):
    x, _, _ = planted_squares(2, seed=3)
    with pytest.raises(ValueError, match="uint8"):
        gradcam(square_model, (x * 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"expected \(N, 32, 32, 3\)"):
        gradcam(square_model, x[:, :28, :28])
    with pytest.raises(ValueError, match="no layer 'nope'"):
        gradcam(square_model, x, layer="nope")
    with pytest.raises(ValueError, match="no 4-D"):
        gradcam(square_model, x, layer=square_model.layers[-1].name)
    with pytest.raises(ValueError, match="one input"):
        gradcam(square_model, x, metadata=np.zeros((2, 3)))


# --------------------------------------------------------------------------- occlusion


def test_occlusion_is_nonzero_only_where_the_model_looks():
    model = top_left_model()
    x = bright_corner_images()
    maps = occlusion_map(model, x, patch=4, stride=2)
    assert maps.shape == (3, 28, 28) and maps.dtype == np.float32
    # Patches start on even pixels; the last that reaches the 8x8 corner starts at 6, so
    # pixels 10 and beyond are never covered together with the corner.
    assert np.abs(maps[:, 10:, :]).max() < 1e-6 and np.abs(maps[:, :, 10:]).max() < 1e-6
    # Covering the bright corner with the (darker) image mean lowers p: positive, not normalised.
    assert (maps[:, :8, :8] > 0.01).all()
    assert maps.max() < 1  # units of probability, not rescaled to 1


def test_occlusion_equals_the_probability_drop_of_each_patch():
    model = top_left_model()
    x = bright_corner_images(n=2, seed=1)
    maps = occlusion_map(model, x, patch=7, stride=7, fill=0.0, batch_size=5)  # non-overlapping 4x4 blocks
    spots = [(r, c) for r in (0, 7, 14, 21) for c in (0, 7, 14, 21)]
    covered = np.repeat(x[None], len(spots), axis=0)  # (spot, image, H, W, 1)
    for k, (r, c) in enumerate(spots):
        covered[k, :, r : r + 7, c : c + 7] = 0.0
    base = model.predict(x, verbose=0).ravel()
    probs = model.predict(covered.reshape(-1, 28, 28, 1), verbose=0).reshape(len(spots), len(x))
    for (r, c), p in zip(spots, probs):
        expected = np.broadcast_to((base - p)[:, None, None], (len(x), 7, 7))
        np.testing.assert_allclose(maps[:, r : r + 7, c : c + 7], expected, atol=1e-6)


def test_occlusion_checks_patch_stride_and_fill():
    model, x = top_left_model(), bright_corner_images(n=1)
    with pytest.raises(ValueError, match="patch must be between 1 and 28"):
        occlusion_map(model, x, patch=29)
    with pytest.raises(ValueError, match="stride"):
        occlusion_map(model, x, stride=0)
    with pytest.raises(ValueError, match="fill"):
        occlusion_map(model, x, fill=[0.1, 0.2])
    assert occlusion_map(model, x[:, :, :, 0]).shape == (1, 28, 28)  # gray images may drop the channel axis


# --------------------------------------------------------------------------- two inputs


def test_two_input_model_explains_with_its_metadata():
    model = two_input_model()
    rng = np.random.default_rng(0)
    x = rng.random((3, 32, 32, 3)).astype(np.float32)
    meta = rng.random((3, 3)).astype(np.float32)
    maps = gradcam(model, x, metadata=meta, batch_size=2)
    assert maps.shape == (3, 32, 32) and maps.dtype == np.float32 and 0 <= maps.min() <= maps.max() <= 1
    drops = occlusion_map(model, x, metadata=meta, patch=8, stride=8, batch_size=7)
    assert drops.shape == (3, 32, 32) and drops.dtype == np.float32
    # the metadata is fed, row by row: each image's drops against its own metadata row
    one = occlusion_map(model, x[1:2], metadata=meta[1:2], patch=8, stride=8)
    np.testing.assert_allclose(one[0], drops[1], atol=1e-6)
    with pytest.raises(ValueError, match="two inputs"):
        gradcam(model, x)
    with pytest.raises(ValueError, match=r"metadata has shape \(2, 3\), expected \(3, 3\)"):
        occlusion_map(model, x, metadata=meta[:2])


@pytest.mark.skipif(not hasattr(models, "build_v3"), reason="v3 not in this checkout")
def test_v3_with_metadata_gives_maps_at_input_size():
    model = models.build_v3(metadata_features=2)
    x = np.random.default_rng(0).random((2, 64, 64, 3)).astype(np.float32)
    maps = gradcam(model, x, metadata=np.zeros((2, 2), np.float32))
    assert maps.shape == (2, 64, 64) and np.isfinite(maps).all()
