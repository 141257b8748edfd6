import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")

import skinlib
from skinlib.models import predict, scale_pixels
from conftest import separable
from skinlib.runs import RunFolderError, load_run
from skinlib.models import train
from conftest import write_jpeg


def test_short_training_really_learns(tmp_path):
    data = separable()
    history = train("v2", data, epochs=15, batch_size=32, seed=0, run_dir=tmp_path / "run", progress=None)
    assert list(history["epoch"]) == list(range(1, 16))
    assert {"loss", "accuracy", "auc", "val_loss", "val_auc"} <= set(history.columns)
    preds = pd.read_csv(tmp_path / "run" / "predictions.csv")
    test = preds[preds["fold"] == "test"]
    m = skinlib.evaluate(test["label"], test["probability"], n_boot=0)
    assert m["roc_auc"] > 0.9
    assert m["n"] == (data.rows["fold"] == "test").sum()


def test_same_seed_same_weights(tmp_path):
    data = separable(n=120)
    runs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        train("v1", data, epochs=1, batch_size=16, seed=seed, run_dir=tmp_path / name, progress=None, augment=True)
        runs.append(keras.saving.load_model(tmp_path / name / "model.keras").get_weights())
    for wa, wb in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(runs[0], runs[2]))


def test_run_folder_contents_and_predict_round_trip(tmp_path):
    folder = skinlib.make_sample(tmp_path / "sample", n=60, seed=0)
    df = skinlib.split_dataset(skinlib.load_dataset(folder), test_size=0.25, val_size=0.2, seed=0)
    data = skinlib.preprocess_dataset(df, skinlib.Preprocess.default(), progress=False)
    run = tmp_path / "run"
    train("v2", data, epochs=2, batch_size=16, seed=0, run_dir=run, progress=None)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "history.csv", "model.keras", "predictions.csv"]
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "v2" and config["parameters"] == 27_521
    assert config["epochs"] == 2 and config["batch_size"] == 16 and config["seed"] == 0
    assert skinlib.Preprocess.from_dict(config["preprocess"]) == skinlib.Preprocess.default()
    assert config["dataset"] == str(folder) and len(config["dataset_fingerprint"]) == 16
    assert set(config["class_weight"]) == {"0", "1"} and config["class_weight"]["1"] > config["class_weight"]["0"]
    assert 0 < config["threshold"] <= 1
    # predict reloads the model and the preprocessing: same probabilities as at training time
    saved = pd.read_csv(run / "predictions.csv").set_index("path")
    out = predict(run, [folder / "train"]).set_index("file")
    common = saved.index.intersection(out.index)
    assert len(common) == 60
    np.testing.assert_allclose(out.loc[common, "probability"], saved.loc[common, "probability"], rtol=1e-5, atol=1e-6)
    expected = np.where(out["probability"] >= config["threshold"], "malignant", "benign")
    assert (out["label"] == expected).all()


def test_existing_run_folder_is_never_overwritten(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="never overwritten"):
        train("v1", separable(n=60), epochs=1, run_dir=run, progress=None)
    assert (run / "notes.txt").read_text() == "mine"
    # Not even with overwrite=True: the folder holds something that is not a run.
    with pytest.raises(FileExistsError, match="notes.txt, which are not a run's files"):
        train("v1", separable(n=60), epochs=1, run_dir=run, progress=None, overwrite=True)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    # A run folder is replaced by overwrite=True, explicitly, once the new run is complete.
    other = tmp_path / "other"
    train("v1", separable(n=60), epochs=1, run_dir=other, progress=None)
    first = (other / "config.json").read_text()
    train("v1", separable(n=60), epochs=1, seed=1, run_dir=other, progress=None, overwrite=True)
    assert sorted(p.name for p in other.iterdir()) == ["config.json", "history.csv", "model.keras", "predictions.csv"]
    assert (other / "config.json").read_text() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "run"]


def test_interrupted_training_leaves_nothing_half_written(tmp_path):
    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                raise KeyboardInterrupt

    earlier = tmp_path / "earlier"
    train("v1", separable(n=60), epochs=1, run_dir=earlier, progress=None)
    before = {p.name: p.read_bytes() for p in earlier.iterdir()}
    with pytest.raises(KeyboardInterrupt):
        train("v1", separable(n=200), epochs=3, batch_size=16, run_dir=tmp_path / "new", progress=None,
              callbacks=[Interrupt()])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier"]  # no partial folder
    assert {p.name: p.read_bytes() for p in earlier.iterdir()} == before


def test_faithful_reproduces_integer_division_collapse(tmp_path):
    folder = skinlib.make_sample(tmp_path / "sample", n=40, seed=0)
    x, _ = skinlib.preprocess_dataset(skinlib.load_dataset(folder), skinlib.Preprocess.seed(), progress=False)
    faithful = scale_pixels(x, faithful=True)
    assert (faithful == 0).mean() > 0.99  # x // 255: nearly every input is 0
    corrected = scale_pixels(x)
    assert (corrected == 0).mean() < 0.01 and corrected.max() <= 1.0
    data = separable(n=80)
    train("v1", data, epochs=1, run_dir=tmp_path / "f", faithful=True, progress=None)
    config = json.loads((tmp_path / "f" / "config.json").read_text())
    assert config["faithful"] is True and config["class_weight"] is None and config["augment"] is False


def test_epoch_lines_have_no_timings(tmp_path, capsys):
    train("v1", separable(n=60), epochs=2, batch_size=16, progress="epochs")
    lines = capsys.readouterr().out.strip().splitlines()
    assert [l.split()[1] for l in lines] == ["1/2", "2/2"]
    assert not any("ms/step" in l or "ETA" in l or "/step" in l for l in lines)


def test_predict_rejects_broken_run_folders(tmp_path):
    with pytest.raises(RunFolderError, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(RunFolderError, match="model.keras is missing"):
        load_run(tmp_path / "half")
    run = tmp_path / "run"
    train("v1", separable(n=60), epochs=1, run_dir=run, progress=None)
    (run / "config.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="config.json: not a valid run config"):
        predict(run, tmp_path)


def test_predict_reports_undecodable_image_and_cli(tmp_path):
    run = tmp_path / "run"
    train("v1", separable(n=60), epochs=1, run_dir=run, progress=None)
    images = tmp_path / "imgs"
    write_jpeg(images / "good.jpg", np.full((50, 50, 3), 120, np.uint8))
    (images / "bad.jpg").write_bytes(b"\xff\xd8\xff junk")
    with pytest.warns(UserWarning, match="bad.jpg"):
        table = predict(run, images)
    row = table.set_index(table["file"].map(os.path.basename))
    assert np.isnan(row.loc["bad.jpg", "probability"]) and "bad.jpg" in row.loc["bad.jpg", "error"]
    assert 0 <= row.loc["good.jpg", "probability"] <= 1 and row.loc["good.jpg", "label"] in ("benign", "malignant")
    out = tmp_path / "pred.csv"
    done = subprocess.run([sys.executable, "-m", "skinlib", "predict", str(run), str(images), "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "bad.jpg" in done.stderr
    assert len(pd.read_csv(out)) == 2
    broken = subprocess.run([sys.executable, "-m", "skinlib", "predict", str(tmp_path / "imgs"), str(images)],
                            capture_output=True, text=True)
    assert broken.returncode == 2 and "model.keras is missing" in broken.stderr


def test_progress_is_a_bool_as_everywhere_or_a_style(capsys):
    data = separable(n=60)
    train("v1", data, epochs=2, progress=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    train("v1", data, epochs=2, progress="epochs")
    assert len(lines) == 2 and len([l for l in capsys.readouterr().out.splitlines() if l.strip()]) == 2
    train("v1", data, epochs=2, progress=False)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="progress must be True, False, 'epochs' or 'bar'"):
        train("v1", data, epochs=1, progress="loud")
