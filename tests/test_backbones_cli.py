"""Backbones through the command line: a DiT and a diffusers config file train, sample and evaluate."""

import json

import numpy as np
import pytest
import torch
import yaml

from sagd import checkpoint
from sagd.cli import main
from sagd.models import Network
from sagd.run import load_run

RUN = dict(dataset="digits", spectrum="power_law:alpha=-0.5", batch_size=16, warmup=2, log_every=1,
           checkpoint_every=2, sample_every=1000, sample_n=4, sample_steps=2)


def sagd(*args) -> None:
    assert main([str(a) for a in args]) == 0


@pytest.mark.paths
def test_dit_tiny_trains_samples_with_guidance_and_evaluates(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGD_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(RUN))
    run = tmp_path / "dit"
    sagd("train", "--config", tmp_path / "run.yaml", "--out", run, "--model", "dit-tiny", "--class-conditional",
         "--steps", 4)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 4 and all(np.isfinite(losses))

    loaded = load_run(run)
    assert type(loaded.net.backbone).__name__ == "DiTTransformer2DModel" and loaded.net.num_classes == 10
    sagd("sample", "--run", run, "--n", 6, "--sampling-steps", 3, "--guidance", 2.0, "--out", tmp_path / "gen")
    out = np.load(tmp_path / "gen" / "samples.npz")
    assert out["images"].shape == (6, 1, 8, 8) and np.isfinite(out["images"]).all()
    assert list(out["labels"]) == [0, 1, 2, 3, 4, 5]
    again = loaded.sample(6, torch.Generator().manual_seed(0), "ddim", 3, guidance=2.0)[0]
    np.testing.assert_array_equal(again.numpy(), out["images"])  # the command samples what the library does

    sagd("eval", "--run", run, "--n", 16, "--sampling-steps", 3, "--features", "pixels")
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["kind"] == "eval" and np.isfinite(record["fid"]) and (run / "report.html").is_file()


def test_a_run_keeps_its_backbone_when_the_config_file_is_gone(tmp_path):
    torch.set_num_threads(1)
    file = tmp_path / "unet.json"
    Network("tiny", (1, 8, 8)).backbone.save_config(tmp_path)
    (tmp_path / "config.json").rename(file)
    config = json.loads(file.read_text())
    config["layers_per_block"] = 2  # anything the presets do not have
    file.write_text(json.dumps(config))
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(RUN))
    run = tmp_path / "run"
    sagd("train", "--config", tmp_path / "run.yaml", "--out", run, "--model", file, "--steps", 2)
    state = checkpoint.load_state(checkpoint.latest(run))
    assert state["backbone"]["layers_per_block"] == 2
    file.unlink()
    assert load_run(run).net.backbone.config.layers_per_block == 2


@pytest.mark.paths
def test_channels_last_trains_the_same_network(tmp_path, float64_training):
    torch.set_num_threads(1)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(RUN))
    for name, extra in (("plain", ()), ("cl", ("--channels-last",))):
        sagd("train", "--config", tmp_path / "run.yaml", "--out", tmp_path / name, "--steps", 2, *extra)
    a, b = (checkpoint.load_tensors(checkpoint.latest(tmp_path / n), "model") for n in ("plain", "cl"))
    assert a.keys() == b.keys()
    for k in a:  # the same arithmetic in another memory layout, in float64: equal up to float64 summation order
        assert a[k].dtype == torch.float64
        torch.testing.assert_close(a[k], b[k])  # float64 defaults: 1e-7, far above the ~1e-14 seen, far below a bug
    assert yaml.safe_load((tmp_path / "cl" / "config.yaml").read_text())["channels_last"] is True
