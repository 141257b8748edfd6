"""Run 3: the colour model, its preprocessing and recipe, metadata, calibration in runs, predict."""

import json
import logging

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")

import skinlib
from skinlib import Preprocess
from skinlib.evaluation import expected_calibration_error
from skinlib.preprocessing.filters import color_constancy
from skinlib.models import build_model, build_v3
from skinlib.models import RECIPES
from skinlib.preprocessing.filters import dihedral
from skinlib.models import predict, predict_arrays
from skinlib.models import train


@pytest.fixture(scope="module")
def sample_table(tmp_path_factory):
    # Clean labels: these tests check calibration and learning, not label noise.
    folder = skinlib.make_sample(tmp_path_factory.mktemp("s") / "sample", n=80, seed=1, same_lesion=0, label_flips=0)
    return skinlib.split_dataset(skinlib.load_dataset(folder), test_size=0.25, val_size=0.25, seed=0)


@pytest.fixture(scope="module")
def colour_data(sample_table):
    # 32x32 keeps the tests fast; the recipe is the same at 64x64.
    config = Preprocess.for_model("v3").with_params("resize", size=32)
    return skinlib.preprocess_dataset(sample_table, config, progress=False)


@pytest.fixture(scope="module")
def v3_run(colour_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "v3"
    history = train("v3", colour_data, epochs=2, seed=0, run_dir=run, progress=None)
    return run, history


# ----------------------------------------------------------------------------- model


def test_v3_shapes_and_parameter_count():
    model = build_v3()
    assert model.count_params() == 309_985 <= 1_000_000
    assert tuple(model.input.shape) == (None, 64, 64, 3) and tuple(model.output.shape) == (None, 1)
    assert tuple(model.get_layer("stage3_out").output.shape) == (None, 8, 8, 128)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert isinstance(model.get_layer("pool"), keras.layers.GlobalAveragePooling2D)
    with_meta = build_v3(metadata_features=7)
    assert [tuple(i.shape) for i in with_meta.inputs] == [(None, 64, 64, 3), (None, 7)]
    # 7 facts -> 16 units, and the output unit sees 16 more features.
    assert with_meta.count_params() - model.count_params() == 7 * 16 + 16 + 16
    assert build_v3((48, 48, 3)).count_params() == model.count_params()  # pooling: any size works


def test_build_model_v3_defaults_and_errors():
    model = build_model("v3")
    assert tuple(model.input.shape) == (None, 64, 64, 3)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert isinstance(build_model("v3", optimizer="adamw").optimizer, keras.optimizers.AdamW)
    with pytest.raises(ValueError, match="metadata needs 'v3'"):
        build_model("v2", metadata_features=3)
    with pytest.raises(ValueError, match="optimizer"):
        build_model("v3", optimizer="sgd")
    with pytest.raises(ValueError, match="at least 16x16"):
        build_v3((8, 8, 3))


def test_preprocess_for_model():
    assert Preprocess.for_model("v1") == Preprocess.for_model("v2") == Preprocess.default()
    v3 = Preprocess.for_model("v3")
    assert v3.output_shape == (64, 64, 3) and v3.color
    assert v3.step_names() == ["color_constancy", "resize"]
    with pytest.raises(ValueError, match="unknown model 'v4'"):
        Preprocess.for_model("v4")


# ----------------------------------------------------------------------------- colour constancy


def test_color_constancy_removes_a_colour_cast():
    rng = np.random.default_rng(0)
    grey = rng.integers(40, 220, (60, 80)).astype(np.float64)
    cast = np.stack([grey * 0.6, grey * 0.9, grey * 1.1], axis=-1)  # BGR: a warm light
    img = np.clip(cast, 0, 255).astype(np.uint8)
    out = color_constancy(img)
    before = img.reshape(-1, 3).mean(0)
    after = out.reshape(-1, 3).mean(0)
    assert before.max() / before.min() > 1.7
    assert after.max() / after.min() < 1.08
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(img, np.clip(cast, 0, 255).astype(np.uint8))  # input untouched


def test_color_constancy_keeps_neutral_and_grayscale_images():
    neutral = np.full((10, 10, 3), 120, np.uint8)
    np.testing.assert_array_equal(color_constancy(neutral), neutral)
    gray = np.arange(100, dtype=np.uint8).reshape(10, 10)
    np.testing.assert_array_equal(color_constancy(gray), gray)
    assert color_constancy(np.zeros((4, 4, 3), np.uint8)).max() == 0
    with pytest.raises(ValueError, match="power must be at least 1"):
        color_constancy(neutral, power=0)
    # Gray World (power 1) and power 6 differ on an image with bright highlights.
    img = np.full((20, 20, 3), (80, 100, 140), np.uint8)
    img[:2, :2] = (255, 200, 140)
    assert not np.array_equal(color_constancy(img, power=1), color_constancy(img, power=6))


# ----------------------------------------------------------------------------- recipe


def test_v3_run_follows_its_recipe(v3_run):
    run, history = v3_run
    config = json.loads((run / "config.json").read_text())
    recipe = RECIPES["v3"]
    assert config["model"] == "v3" and config["input_shape"] == [32, 32, 3]
    for key in ("batch_size", "learning_rate", "augment", "optimizer", "schedule", "best_epoch", "tta"):
        assert config[key] == recipe[key], key
    assert config["epochs"] == 2 and len(history) == 2
    assert 1 <= config["best_epoch_found"] <= 2
    assert config["temperature"] > 0 and config["metadata"] is None
    # The schedule warms up from 0 and decays: the first epoch's mean rate is below the peak.
    assert "learning_rate" in history and history["learning_rate"].iloc[-1] < recipe["learning_rate"]


def test_v1_and_v2_recipes_are_the_published_settings():
    assert RECIPES["v1"]["epochs"] == 10 and RECIPES["v1"]["batch_size"] == 128
    assert RECIPES["v2"]["epochs"] == 100 and RECIPES["v2"]["batch_size"] == 32
    for name in ("v1", "v2"):
        assert RECIPES[name]["augment"] is False and RECIPES[name]["tta"] is False
        assert RECIPES[name]["schedule"] == "constant" and RECIPES[name]["optimizer"] == "adam"


def test_bad_recipe_settings_are_refused(colour_data):
    with pytest.raises(ValueError, match="augment must be one of"):
        train("v3", colour_data, epochs=1, augment="spin", progress=None)
    with pytest.raises(ValueError, match="schedule must be"):
        train("v3", colour_data, epochs=1, schedule="linear", progress=None)


def test_plateau_schedule_and_dihedral_augment_run(colour_data, tmp_path):
    train("v3", colour_data, epochs=1, schedule="plateau", augment=True, tta=False, run_dir=tmp_path / "r",
          progress=None)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["schedule"] == "plateau" and config["augment"] == "dihedral" and config["tta"] is False


# ----------------------------------------------------------------------------- test-time augmentation


def test_dihedral_gives_eight_distinct_views():
    img = np.arange(9, dtype=np.uint8).reshape(1, 3, 3, 1)
    views = {dihedral(img, k).tobytes() for k in range(8)}
    assert len(views) == 8
    np.testing.assert_array_equal(dihedral(img, 0), img)
    with pytest.raises(ValueError, match="0-7"):
        dihedral(img, 8)


def test_tta_averages_the_eight_views():
    keras.utils.set_random_seed(0)
    model = build_v3((32, 32, 3))
    x = np.random.default_rng(0).random((5, 32, 32, 3)).astype(np.float32)
    plain = predict_arrays(model, x)
    manual = np.mean([predict_arrays(model, dihedral(x, k).copy()) for k in range(8)], axis=0)
    np.testing.assert_allclose(predict_arrays(model, x, tta=True), manual, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plain, model.predict(x, verbose=0).ravel(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(plain, manual)  # an untrained network is not symmetric


def test_one_compiled_inference_function_for_any_batch(v3_run, sample_table, caplog):
    run, _ = v3_run
    paths = sample_table["path"].tolist()
    with caplog.at_level(logging.WARNING):
        for n in (3, 7, 11, 2):
            predict(run, paths[:n])
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    from skinlib.models._prediction import _cached_run, _inference_function  # the cache is what is tested here

    model = _cached_run(run)[0]
    assert _inference_function(model).experimental_get_tracing_count() == 1



def test_inference_compiles_without_reading_its_source(capfd, caplog, monkeypatch):
    """The inference function is not converted by AutoGraph, which reads the source of the
    function it is given: in a long run whose files were edited meanwhile (or without the
    source at all), it warned that it could not find it. Here no source can be read."""
    import inspect

    def no_source(*args, **kwargs):
        raise OSError("source not available")

    monkeypatch.setattr(inspect, "findsource", no_source)
    keras.utils.set_random_seed(0)
    model = build_v3((32, 32, 3), metadata_features=4)
    x = np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32)
    meta = np.zeros((3, 4), np.float32)
    with caplog.at_level(logging.INFO):
        p = predict_arrays(model, x, metadata=meta)
    assert p.shape == (3,) and np.all((p > 0) & (p < 1))
    said = capfd.readouterr().err + capfd.readouterr().out + " ".join(r.getMessage() for r in caplog.records)
    assert "AutoGraph" not in said and "could not" not in said


def test_predicting_with_many_models_does_not_warn_of_retracing(caplog):
    """One inference function per model: a loop over the folds' models traces each once,
    which TensorFlow would report as retracing."""
    x = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    models = [build_model("v2") for _ in range(7)]
    with caplog.at_level(logging.WARNING):
        outputs = [predict_arrays(model, x) for model in models]
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    assert all(p.shape == (4,) for p in outputs) and not np.allclose(outputs[0], outputs[1])
    # Other TensorFlow warnings still pass (the filter is what is tested here).
    from skinlib.models._prediction import _one_trace_per_model_is_expected

    with caplog.at_level(logging.WARNING), _one_trace_per_model_is_expected():
        logging.getLogger("tensorflow").warning("something else")
    assert "something else" in caplog.text

# ----------------------------------------------------------------------------- calibration in runs


def test_run_is_calibrated_on_val_and_predict_matches_the_run(v3_run):
    run, _ = v3_run
    config = json.loads((run / "config.json").read_text())
    preds = pd.read_csv(run / "predictions.csv")
    t, shift = config["temperature"], config["shift"]
    np.testing.assert_allclose(preds["probability"],
                               skinlib.apply_temperature(preds["probability_uncalibrated"], t, shift))
    val = preds[preds["fold"] == "val"]
    fitted = skinlib.fit_temperature_shift(val["label"], val["probability_uncalibrated"])
    assert (t, shift) == pytest.approx(fitted, rel=1e-6, abs=1e-9)
    test = preds[preds["fold"] == "test"]
    got = predict(run, test["path"].tolist())
    np.testing.assert_allclose(got["probability"], test["probability"], rtol=1e-5, atol=1e-6)
    raw = predict(run, test["path"].tolist(), tta=False)
    assert not np.allclose(raw["probability"], got["probability"])


def test_temperature_lowers_the_ece_of_an_overconfident_model(colour_data, tmp_path):
    train("v3", colour_data, epochs=3, tta=False, calibrate=False, run_dir=tmp_path / "plain", progress=None)
    trained = keras.saving.load_model(tmp_path / "plain" / "model.keras")
    # Overconfident on purpose: the trained model's logit multiplied by 8, frozen by a
    # learning rate of zero while train() writes the run.
    loud = keras.layers.Activation("sigmoid")(keras.layers.Rescaling(8.0)(trained.get_layer("logit").output))
    model = keras.Model(trained.input, loud, name="v3")
    model.compile(optimizer=keras.optimizers.Adam(0.0), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")])
    train(model, colour_data, epochs=1, tta=False, augment=False, run_dir=tmp_path / "loud", progress=None)
    preds = pd.read_csv(tmp_path / "loud" / "predictions.csv")
    val = preds[preds["fold"] == "val"]
    assert json.loads((tmp_path / "loud" / "config.json").read_text())["temperature"] > 1
    before = expected_calibration_error(val["label"], val["probability_uncalibrated"])
    after = expected_calibration_error(val["label"], val["probability"])
    assert after < before


# ----------------------------------------------------------------------------- metadata


def test_label_columns_are_refused_as_metadata(colour_data):
    for column in ("dx", "target", "benign_malignant", "label"):
        data = skinlib.PreprocessResult(colour_data.x, colour_data.y, colour_data.rows.assign(dx="mel"),
                                        colour_data.skipped, config=colour_data.config)
        with pytest.raises(ValueError, match=column):
            train("v3", data, epochs=1, metadata=["age", column], progress=None)


@pytest.fixture(scope="module")
def meta_run(colour_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "meta"
    train("v3", colour_data, epochs=1, metadata=["age", "sex", "site"], run_dir=run, progress=None)
    return run


def test_metadata_run_stores_its_encoding_and_predicts_from_a_table(meta_run, sample_table):
    run = meta_run
    config = json.loads((run / "config.json").read_text())
    encoding = config["metadata"]
    assert encoding["columns"] == ["age", "sex", "site"]
    assert {"age", "age_missing", "sex=female", "sex=male", "sex_missing", "site_missing"} <= set(encoding["features"])
    model = keras.saving.load_model(run / "model.keras")
    assert [tuple(i.shape) for i in model.inputs] == [(None, 32, 32, 3), (None, len(encoding["features"]))]
    test = sample_table[sample_table["fold"] == "test"]
    got = predict(run, test)
    preds = pd.read_csv(run / "predictions.csv").set_index("path")
    np.testing.assert_allclose(got["probability"], preds.loc[test["path"], "probability"], rtol=1e-5, atol=1e-6)
    # The same images with other ages give other probabilities: the branch is used.
    older = predict(run, test.assign(age=90.0))
    assert not np.allclose(older["probability"], got["probability"])
    with pytest.raises(ValueError, match="trained with metadata"):
        predict(run, test["path"].tolist())
    with pytest.raises(ValueError, match="site"):
        predict(run, test.drop(columns="site"))


def test_metadata_needs_v3(colour_data):
    gray = skinlib.PreprocessResult(colour_data.x[..., :1], colour_data.y, colour_data.rows, colour_data.skipped)
    with pytest.raises(ValueError, match="metadata needs 'v3'"):
        train("v2", gray, epochs=1, metadata=["age"], progress=None)


def test_model_options_reach_the_builder_and_the_run(colour_data, tmp_path):
    train("v3", colour_data, epochs=1, model_options={"width": 8}, tta=False, run_dir=tmp_path / "narrow",
          progress=None)
    config = json.loads((tmp_path / "narrow" / "config.json").read_text())
    assert config["model_options"] == {"width": 8}
    assert config["parameters"] == build_v3((32, 32, 3), width=8).count_params() < 30_000
    with pytest.raises(ValueError, match="has no options"):
        build_model("v2", width=8)


def test_command_line_predict_takes_a_metadata_csv(meta_run, sample_table, tmp_path, capsys):
    from skinlib.__main__ import main

    test = sample_table[sample_table["fold"] == "test"].head(5)
    # The dataset's own column names, as a user would pass the ISIC 2020 CSV.
    csv = tmp_path / "meta.csv"
    test.assign(image_name=[p.rsplit("/", 1)[-1][:-4] for p in test["path"]]).rename(
        columns={"age": "age_approx", "site": "anatom_site_general_challenge"}
    )[["image_name", "age_approx", "sex", "anatom_site_general_challenge"]].to_csv(csv, index=False)
    out = tmp_path / "pred.csv"
    assert main(["predict", str(meta_run), *test["path"], "--metadata", str(csv), "--out", str(out)]) == 0
    got = pd.read_csv(out)
    np.testing.assert_allclose(got["probability"], predict(meta_run, test)["probability"], rtol=1e-5)
    # An image without a row, and a CSV without an image column, are named in the error.
    other = sample_table[sample_table["fold"] == "train"]["path"].iloc[0]
    assert main(["predict", str(meta_run), other, "--metadata", str(csv)]) == 2
    assert "no row for" in capsys.readouterr().err
    pd.DataFrame({"age": [50]}).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["predict", str(meta_run), other, "--metadata", str(tmp_path / "bad.csv")]) == 2
    assert "image_id" in capsys.readouterr().err
    assert main(["predict", str(meta_run), other]) == 2
    assert "trained with metadata" in capsys.readouterr().err


def test_patient_metadata_maps_dataset_column_names():
    from skinlib.data import patient_metadata

    table = pd.DataFrame({"localization": ["Back ", "unknown"], "age_approx": ["40", ""], "sex": ["MALE", None]})
    out = patient_metadata(table)
    assert out["site"].tolist()[0] == "back" and pd.isna(out["site"].iloc[1])
    assert out["age"].tolist()[0] == 40.0 and np.isnan(out["age"].iloc[1])
    assert out["sex"].tolist()[0] == "male" and pd.isna(out["sex"].iloc[1])
    assert list(table.columns) == ["localization", "age_approx", "sex"]  # the input is not changed


def test_calibrate_run_refits_an_older_run_in_place(v3_run, tmp_path):
    import shutil

    run = tmp_path / "old"
    shutil.copytree(v3_run[0], run)
    config = json.loads((run / "config.json").read_text())
    preds = pd.read_csv(run / "predictions.csv")
    # An older run: temperature only, no shift, no uncalibrated column.
    config.update(temperature=1.0, shift=0.0)
    config.pop("shift")
    (run / "config.json").write_text(json.dumps(config))
    preds.drop(columns="probability_uncalibrated").assign(probability=preds["probability_uncalibrated"]).to_csv(
        run / "predictions.csv", index=False)
    entries = skinlib.calibrate_run(run)
    after = pd.read_csv(run / "predictions.csv")
    assert json.loads((run / "config.json").read_text())["shift"] == entries["shift"]
    np.testing.assert_allclose(after["probability"], preds["probability"], rtol=1e-6, atol=1e-9)
    assert entries["threshold"] == pytest.approx(config_threshold := json.loads(
        (v3_run[0] / "config.json").read_text())["threshold"], rel=1e-6), config_threshold
    got = predict(run, after.loc[after["fold"] == "test", "path"].tolist())
    np.testing.assert_allclose(got["probability"], after.loc[after["fold"] == "test", "probability"], rtol=1e-5)


def test_shift_fixes_the_lean_of_class_weights():
    rng = np.random.default_rng(0)
    y = (rng.random(4000) < 0.2).astype(int)
    # Ranked well, but centred on 0.5 as balanced class weights make a model.
    logit = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1.2, y.size) + 1.4
    p = 1 / (1 + np.exp(-logit))
    val, test = slice(0, 2000), slice(2000, None)
    t_only = skinlib.apply_temperature(p[test], skinlib.fit_temperature(y[val], p[val]))
    t, shift = skinlib.fit_temperature_shift(y[val], p[val])
    both = skinlib.apply_temperature(p[test], t, shift)
    raw = expected_calibration_error(y[test], p[test])
    assert shift < 0
    assert expected_calibration_error(y[test], both) < 0.03 < expected_calibration_error(y[test], t_only) < raw
