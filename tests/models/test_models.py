import pytest

keras = pytest.importorskip("keras")

from skinlib.models import build_model, build_v1, build_v2


def _layer_kinds(model):
    return [type(layer).__name__ for layer in model.layers]


def test_v1_matches_the_published_summary():
    model = build_v1()
    assert model.count_params() == 196_301
    assert _layer_kinds(model) == ["Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense", "Dense"]
    assert [layer.count_params() for layer in model.layers] == [100, 0, 0, 0, 196_100, 101]
    assert model.output_shape == (None, 1)


def test_v2_matches_the_published_summary():
    model = build_v2()
    assert model.count_params() == 27_521
    assert _layer_kinds(model) == ["Conv2D", "MaxPooling2D"] * 3 + [
        "Flatten", "Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert [layer.count_params() for layer in model.layers if layer.count_params()] == [160, 2320, 2320, 18560, 4128, 33]


def test_build_model_by_name_compiles_with_auc():
    model = build_model("v2")
    assert model.loss == "binary_crossentropy"
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.layers[-1].activation.__name__ == "sigmoid"
    with pytest.raises(ValueError, match="unknown model 'v4'"):
        build_model("v4")


def test_models_use_only_keras_layers():
    """Pure Keras 3 layers: the definitions run on any Keras backend."""
    for model in (build_v1(), build_v2()):
        for layer in model.layers:
            assert type(layer).__module__.startswith("keras."), type(layer)
