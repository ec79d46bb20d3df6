"""``sagd eval``, ``sagd compare`` and ``sagd features`` end to end on tiny digits runs (seconds each)."""

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors import safe_open

from sagd.cli import main
from sagd.metrics.choice import ASSETS, extractor_for
from sagd.metrics import ClassifierFeatures, PixelFeatures, RandomProjectionFeatures, load_classifier

TINY_RUN = dict(dataset="digits", model="tiny", spectrum="power_law:alpha=-0.5*band_stop:low=0.3,high=0.4",
                batch_size=16, warmup=2, log_every=1, checkpoint_every=1000, sample_every=1000, sample_n=4,
                sample_steps=2)
EVAL = ("--sampling-steps", 5, "--features", "pixels")


def sagd(*args) -> None:
    assert main([str(a) for a in args]) == 0


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SAGD_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two 4-step digits runs, each evaluated once: ``(run_a, run_b)``."""
    root = tmp_path_factory.mktemp("runs")
    cache = tmp_path_factory.getbasetemp() / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAGD_CACHE", str(cache))
        torch.set_num_threads(1)
        config = root / "run.yaml"
        config.write_text(yaml.safe_dump(TINY_RUN))
        out = []
        for name, seed, n in (("a", 0, 64), ("b", 1, 32)):
            sagd("train", "--config", config, "--out", root / name, "--steps", 4, "--seed", seed)
            sagd("eval", "--run", root / name, "--n", n, "--batch-size", 24, *EVAL)
            out.append(root / name)
    return out


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_eval_appends_a_record_and_writes_the_report(runs):
    run = runs[0]
    lines = [r for r in records(run) if r.get("kind") != "probe"]
    assert [r.get("kind") for r in lines] == [None] * 4 + ["eval"]  # training records first, untouched
    ev = lines[-1]
    assert ev["step"] == 4 and ev["n"] == 64 and ev["features"] == "pixels" and ev["reference"] == "digits/test"
    for key in ("fid", "kid_mean", "kid_se", "precision", "recall", "lsd", "nn_ratio",
                "rel_band_energy_0.3-0.4_cycles"):
        assert isinstance(ev[key], float) and ev[key] == ev[key], key
    assert 0 <= ev["precision"] <= 1 and 0 <= ev["recall"] <= 1 and ev["fid"] >= 0
    assert len(ev["raps"]["radii"]) == len(ev["raps"]["data"]) == len(ev["raps"]["samples"])

    page = (run / "report.html").read_text()
    images = re.findall(r"<img src='([^']+)'>", page)
    assert {Path(i).name for i in images} == {"samples.png", "neighbours.png", "raps.png", "noise.png",
                                                "trajectory.png", "loss.png"}
    for image in images:
        with Image.open(run / image) as im:
            im.verify()
    assert "FID" in page and "band energy / data 0.3-0.4 cycles" in page


def test_a_second_eval_adds_a_row(runs, tmp_path):
    run = runs[1]
    sagd("eval", "--run", run, "--n", 8, "--method", "dpmpp_2m", *EVAL)
    evals = [r for r in records(run) if r.get("kind") == "eval"]
    assert [(e["n"], e["method"]) for e in evals] == [(32, "ddim"), (8, "dpmpp_2m")]
    assert (run / "report.html").read_text().count("<tr>") >= 3  # header + two evals


def test_eval_on_an_inception_tap(runs, tmp_path, tmp_path_factory):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    sagd("eval", "--run", run, "--n", 8, "--sampling-steps", 2, "--features", "inception-64")
    ev = records(run)[-1]
    assert ev["features"].startswith("inception-v3-64-") and ev["n_reference"] == 359
    assert ev["fid"] > 0 and ev["kid_mean"] == ev["kid_mean"] and 0 <= ev["precision"] <= 1
    cached = (tmp_path_factory.getbasetemp() / "cache" / "reference").glob("digits_test--inception-v3-64-*.npz")
    assert len(list(cached)) == 1


def test_compare_writes_one_table(runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    sagd("compare", *runs, "--out", out)
    text = (out / "compare.md").read_text()
    assert "| run | step |" in text and "| a |" in text and "| b |" in text
    for name in ("raps.png", "loss.png"):
        with Image.open(out / name) as im:
            im.verify()
    assert "| a |" in capsys.readouterr().out


def test_features_train_writes_a_loadable_classifier_used_by_default(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SAGD_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "clf.safetensors"
    sagd("features", "train", "--dataset", "digits", "--epochs", 1, "--out", out)
    model = load_classifier(out)
    assert model.metadata["dataset"] == "digits" and len(model.metadata["data_sha256"]) == 64
    assert "test accuracy" in capsys.readouterr().out
    assert isinstance(extractor_for(None, "digits", (1, 8, 8)), PixelFeatures)  # nothing in the cache yet
    sagd("features", "train", "--dataset", "digits", "--epochs", 1)  # into $SAGD_CACHE
    assert isinstance(extractor_for(None, "digits", (1, 8, 8)), ClassifierFeatures)


def test_default_features():
    path = ASSETS / "classifier-fashion_mnist.safetensors"
    assert path.stat().st_size < 2e6
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["metadata"])
    assert meta["dataset"] == "fashion_mnist" and meta["test_accuracy"] > 0.85
    assert extractor_for(None, "fashion_mnist", (1, 28, 28)).name.startswith("classifier-fashion_mnist-")
    assert isinstance(extractor_for(None, "lfw", (1, 25, 25)), RandomProjectionFeatures)
    assert isinstance(extractor_for("randproj", "digits", (1, 8, 8)), RandomProjectionFeatures)


@pytest.mark.parametrize("args, part", [
    (["eval", "--run", "/no/such/run"], "/no/such/run"),
    (["eval", "--run", "{run}", "--n", "1"], "--n"),
    (["eval", "--run", "{run}", "--features", "/no/such.safetensors"], "/no/such.safetensors"),
    (["eval", "--run", "{run}", "--features", "inception-768", "--inception-weights", "/no/such.pt"], "/no/such.pt"),
    (["eval", "--run", "{run}", "--method", "magic"], "magic"),
    (["compare", "/no/such/run"], "/no/such/run"),
    (["compare", "{fresh}"], "no eval record"),
    (["features", "train", "--dataset", "lfw"], "no labels"),
    (["features", "train", "--dataset", "nope"], "nope"),
    (["features", "train", "--dataset", "digits", "--epochs", "0"], "--epochs"),
])
def test_bad_input_is_one_line_and_status_2(args, part, runs, tmp_path, capsys):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0}) + "\n")
    with pytest.raises(SystemExit) as exit_:
        main([a.format(run=runs[0], fresh=fresh) for a in args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("sagd: error: ") and err.count("\n") == 1 and part in err
