"""The run folder (skinlib.runs): written whole or not at all, never replacing what is not a run,
and read back with every config.json entry checked."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")

import skinlib
from skinlib import runs
from skinlib.runs import RUN_FILES, Run, RunFolderError, check_config, load_run, write_run
from skinlib.models import train
from conftest import lesion_image, separable, write_jpeg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small v1 run, trained once for the module; tests copy it before changing it."""
    folder = tmp_path_factory.mktemp("trained") / "v1"
    train("v1", separable(n=60), epochs=1, run_dir=folder, progress=False)
    return folder


def copy_run(src, dst):
    dst.mkdir(parents=True)
    for name in RUN_FILES:
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def edit_config(run_dir, **changes):
    config = json.loads((run_dir / "config.json").read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    (run_dir / "config.json").write_text(json.dumps(config))


class FakeModel:
    """What write_run needs of a model: save(path)."""

    def __init__(self, tag: str):
        self.tag = tag

    def save(self, path):
        with open(path, "w") as fh:
            fh.write(self.tag)


def tables(tag: str):
    history = pd.DataFrame({"epoch": [1], "loss": [0.5]})
    predictions = pd.DataFrame({"path": ["a.jpg"], "fold": ["test"], "label": [1], "probability": [0.7],
                                "probability_uncalibrated": [0.6]})
    config = {"model": tag, "preprocess": skinlib.Preprocess.default().to_dict(), "threshold": 0.5}
    return history, predictions, config


# --------------------------------------------------------------------------- writing


def test_a_folder_filled_during_training_is_kept_and_the_new_run_is_not_lost(tmp_path):
    run_dir = tmp_path / "run"

    class FillTheFolder(keras.callbacks.Callback):
        """Another process writing into run_dir while this one trains."""

        def on_train_end(self, logs=None):
            run_dir.mkdir()
            (run_dir / "theirs.txt").write_text("another process's work")

    with pytest.raises(FileExistsError, match="filled by another process.*kept in"):
        train("v1", separable(n=60), epochs=1, run_dir=run_dir, progress=False, callbacks=[FillTheFolder()])
    assert sorted(p.name for p in run_dir.iterdir()) == ["theirs.txt"]
    assert (run_dir / "theirs.txt").read_text() == "another process's work"
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("run.unsaved-")]
    assert len(kept) == 1 and Run(kept[0]).complete  # the finished run, whole, beside it
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing hidden left behind


def test_overwrite_never_replaces_a_folder_that_is_not_a_run(tmp_path):
    precious = tmp_path / "results"
    (precious / "fold1").mkdir(parents=True)
    (precious / "summary.md").write_text("mine")
    history, predictions, config = tables("new")
    with pytest.raises(FileExistsError, match="not a run's files.*kept in"):
        write_run(precious, model=FakeModel("new"), history=history, predictions=predictions, config=config,
                  overwrite=True)
    assert sorted(p.name for p in precious.iterdir()) == ["fold1", "summary.md"]
    assert (precious / "summary.md").read_text() == "mine"
    kept = [p for p in tmp_path.iterdir() if p.name != "results"]
    assert len(kept) == 1 and kept[0].name.startswith("results.unsaved-") and Run(kept[0]).complete


def test_runs_finishing_at_once_with_overwrite_take_turns(tmp_path):
    run_dir = tmp_path / "run"
    errors, start = [], threading.Barrier(12)

    def finish(i):
        history, predictions, config = tables(f"writer {i}")
        try:
            start.wait()
            write_run(run_dir, model=FakeModel(f"writer {i}"), history=history, predictions=predictions,
                      config=config, overwrite=True)
        except Exception as exc:  # noqa: BLE001 - every failure is what the test reports
            errors.append(exc)

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    run = Run(run_dir)
    assert run.complete and sorted(p.name for p in run_dir.iterdir()) == sorted(RUN_FILES)
    # One writer's run, whole: its model and its config agree.
    assert (run_dir / "model.keras").read_text() == run.config["model"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no hidden old runs, no partial folders


def test_write_run_refuses_a_config_it_could_not_read_back(tmp_path):
    history, predictions, config = tables("x")
    with pytest.raises(RunFolderError, match="threshold"):
        write_run(tmp_path / "run", model=FakeModel("x"), history=history, predictions=predictions,
                  config={**config, "threshold": 3.0})
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- reading


def test_run_reads_its_parts(trained):
    run = Run(trained / "model.keras")  # the model file names its run too
    assert run.path == trained and run.complete
    assert set(run.predictions()["fold"]) == {"train", "val", "test"}
    assert set(run.predictions("test")["fold"]) == {"test"}
    assert run.history()["epoch"].tolist() == [1]
    assert 0 <= run.threshold <= 1 and run.preprocess == skinlib.Preprocess.default()
    assert run.load_model().count_params() == 196_301


@pytest.mark.parametrize("changes, message", [
    ({"faithful": "false"}, "faithful must be true or false, got 'false'"),
    ({"tta": 1}, "tta must be true or false"),
    ({"temperature": -1}, "temperature must be a finite number > 0"),
    ({"threshold": "0.4"}, "threshold must be a number in \\[0, 1\\]"),
    ({"epochs_run": 2.5}, "epochs_run must be a whole number"),
    ({"metadata": ["age"]}, "metadata must be null or an encoding"),
    ({"input_shape": [28, 28]}, "input_shape must be three whole numbers"),
    ({"preprocess": {"steps": [["resize", {"size": "big"}]]}}, "preprocess"),
    ({"preprocess": {"steps": [["resize", {"size": 10**6}]]}}, "preprocess"),
    ({"preprocess": skinlib.Preprocess.for_model("v3").to_dict()}, "input_shape \\(28, 28, 1\\) differs"),
])
def test_a_hand_edited_config_is_a_run_folder_error(trained, tmp_path, changes, message):
    run_dir = copy_run(trained, tmp_path / "run")
    edit_config(run_dir, **changes)
    with pytest.raises(RunFolderError, match=message):
        load_run(run_dir)


def test_a_model_that_does_not_match_its_preprocessing_is_refused(trained, tmp_path):
    run_dir = copy_run(trained, tmp_path / "run")
    v3 = skinlib.Preprocess.for_model("v3")
    edit_config(run_dir, preprocess=v3.to_dict(), input_shape=list(v3.output_shape))  # consistent, but not the model
    with pytest.raises(RunFolderError, match="the model takes inputs of shape \\(28, 28, 1\\)"):
        load_run(run_dir)


def test_predict_on_a_bad_config_exits_2_with_the_reason(trained, tmp_path):
    run_dir = copy_run(trained, tmp_path / "run")
    edit_config(run_dir, faithful="false")
    image = write_jpeg(tmp_path / "a.jpg", lesion_image(seed=1))
    done = subprocess.run([sys.executable, "-m", "skinlib", "predict", str(run_dir), str(image)],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "faithful must be true or false" in done.stderr and "Traceback" not in done.stderr


def test_check_config_keeps_entries_it_does_not_know():
    config, _ = check_config({"preprocess": skinlib.Preprocess.default().to_dict(), "notes": "mine"})
    assert config["notes"] == "mine"


# --------------------------------------------------------------------------- rewriting


def test_calibrate_run_interrupted_leaves_the_run_as_it_was(trained, tmp_path, monkeypatch):
    run_dir = copy_run(trained, tmp_path / "run")
    before = {name: (run_dir / name).read_bytes() for name in RUN_FILES}
    real = runs.atomic_write

    def crash_on_config(path, write, mode="wb"):
        if os.path.basename(path) == "config.json":
            raise KeyboardInterrupt  # the process dies between the two files
        return real(path, write, mode)

    monkeypatch.setattr(runs, "atomic_write", crash_on_config)
    with pytest.raises(KeyboardInterrupt):
        skinlib.calibrate_run(run_dir)
    assert {name: (run_dir / name).read_bytes() for name in RUN_FILES} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_calibrate_run_replaces_both_files_and_keeps_the_model(trained, tmp_path):
    run_dir = copy_run(trained, tmp_path / "run")
    model_bytes = (run_dir / "model.keras").read_bytes()
    entries = skinlib.calibrate_run(run_dir)
    run = Run(run_dir)
    assert run.config["temperature"] == entries["temperature"] and run.config["calibrate"] is True
    assert (run_dir / "model.keras").read_bytes() == model_bytes
    preds = run.predictions()
    expected = skinlib.apply_temperature(preds["probability_uncalibrated"].to_numpy(), entries["temperature"],
                                         entries["shift"])
    np.testing.assert_allclose(preds["probability"], expected, rtol=1e-9)


# --------------------------------------------------------------------------- the demo's table


def test_demo_report_compares_the_notebooks_runs_from_their_folders(tmp_path):
    from skinlib.__main__ import demo_report

    cfg = skinlib.RunConfig.from_env(data=tmp_path / "data", run_dir=tmp_path / "runs")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 40)
    for folder, quality in (("v1", 0.3), ("v1_published", 0.0), ("v2", 0.6), ("v2_published", 0.0)):
        history, _, config = tables(folder)
        noise = rng.random(40)
        predictions = pd.DataFrame({"path": [f"{i}.jpg" for i in range(40)], "fold": ["test"] * 40, "label": labels,
                                    "probability": quality * labels + (1 - quality) * noise,
                                    "probability_uncalibrated": noise})
        write_run(cfg.run_dir / folder, model=FakeModel(folder), history=history, predictions=predictions,
                  config=config)
    text = demo_report(cfg)
    assert "Test fold of data (40 images)" in text
    assert "smoke test" not in text  # said of the built-in sample only
    for name in ("v1 corrected", "v1 as published", "v2 corrected", "v2 as published"):
        assert name in text
    assert "v3" not in text  # run 3 is left out when 05_train_v3 has not run
    expected = skinlib.compare({"v2": cfg.run_dir / "v2"}).loc["v2", "roc_auc"]
    assert f"v2 corrected ranks images better than chance (ROC AUC {expected:.2f}" in text
    import shutil

    shutil.rmtree(cfg.run_dir / "v2")
    with pytest.raises(FileNotFoundError, match="03_train_v2"):
        demo_report(cfg)


def test_demo_report_says_the_sample_is_a_smoke_test(monkeypatch):
    import skinlib.__main__ as cli

    monkeypatch.setattr(skinlib.evaluation, "compare", lambda runs: pd.DataFrame(
        {"n": [38], **{c: [0.5] for c in ("roc_auc", "roc_auc_low", "roc_auc_high", "balanced_accuracy",
                                         "sensitivity", "specificity", "accuracy", "majority_accuracy")}},
        index=["v1 corrected"]))
    monkeypatch.setattr(skinlib.evaluation, "conclusion", lambda table: "v1 corrected is no better than chance.")
    cfg = skinlib.RunConfig.from_env(run_dir=Path("/nonexistent/runs"))
    monkeypatch.setattr(type(cfg), "trained_runs", lambda self: {})
    text = cli.demo_report(cfg)
    assert cfg.data == skinlib.sample_dir(create=False)
    assert "smoke test" in text and "docs/results.md" in text


def test_training_without_a_preprocessing_config_fails_before_training(tmp_path):
    data = separable(n=60)
    data.config = None

    class Never(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            raise AssertionError("training started")

    with pytest.raises(ValueError, match="data.config is None"):
        train("v1", data, epochs=1, run_dir=tmp_path / "run", progress=False, callbacks=[Never()])
    assert list(tmp_path.iterdir()) == []
    assert len(train("v1", data, epochs=1, progress=False)) == 1  # without a run folder it is not needed


def test_a_run_of_images_whose_names_are_not_utf8_writes_and_reads_its_predictions(tmp_path):
    history, predictions, config = tables("x")
    names = [os.fsdecode(b"/data/caf\xe9.jpg"), os.fsdecode(b"/data/\xff\xfe.png")]
    predictions = pd.concat([predictions] * 2, ignore_index=True).assign(path=names)
    run = write_run(tmp_path / "run", model=FakeModel("x"), history=history, predictions=predictions, config=config)
    assert run.predictions()["path"].tolist() == names
    assert os.fsencode(names[0]) in (tmp_path / "run" / "predictions.csv").read_bytes()  # the file's own bytes
