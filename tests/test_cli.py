"""The ``sagd`` command line end to end on the bundled 8×8 digits (seconds per run)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from sagd import checkpoint
from sagd.cli import COMMANDS, build_parser, main

BIN = Path(sys.executable).parent
TINY_RUN = dict(dataset="digits", model="tiny", spectrum="power_law:alpha=-0.5", batch_size=16, grad_accum=2,
                warmup=2, log_every=1, checkpoint_every=2, sample_every=1000, sample_n=4, sample_steps=2)


def write_config(path: Path, **changes) -> Path:
    path.write_text(yaml.safe_dump({**TINY_RUN, **changes}))
    return path


def losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]  # learning-order probe records hold no loss


def sagd(*args) -> None:
    assert main([str(a) for a in args]) == 0


def env_one_thread():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


# ---------------------------------------------------------------------------- help
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.__name__.rsplit(".", 1)[-1])
def test_every_command_has_help(command, capsys):
    name = command.__name__.rsplit(".", 1)[-1]
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert "--" in capsys.readouterr().out


def test_required_flags_exist():
    sub = build_parser()._subparsers._group_actions[0].choices
    flags = lambda name: {s for a in sub[name]._actions for s in a.option_strings}  # noqa: E731
    assert {"--config", "--dataset", "--spectrum", "--prediction", "--model", "--steps", "--batch-size", "--out",
            "--resume", "--seed", "--schedule", "--noise", "--data-root"} <= flags("train")
    assert {"--run", "--n", "--method", "--sampling-steps", "--out"} <= flags("sample")
    assert {"--out", "--minutes"} <= flags("demo")
    assert {"--spectrum", "--shape", "--out"} <= flags("spectrum")


# ---------------------------------------------------------------------------- train, sample, resume
@pytest.mark.paths
def test_train_sample_resume_is_exact(tmp_path):
    cfg = write_config(tmp_path / "run.yaml")
    whole, split = tmp_path / "whole", tmp_path / "split"
    sagd("train", "--config", cfg, "--out", whole, "--steps", 4)
    sagd("train", "--config", cfg, "--out", split, "--steps", 2)

    sagd("sample", "--run", split, "--n", 3, "--sampling-steps", 2, "--out", tmp_path / "gen")
    assert (tmp_path / "gen" / "samples.png").is_file()
    assert np.load(tmp_path / "gen" / "samples.npz")["images"].shape == (3, 1, 8, 8)

    with open(split / "metrics.jsonl", "a") as f:  # logged after the checkpoint by a run that then died
        f.write(json.dumps({"step": 3, "loss": -1.0}) + "\n")
    sagd("train", "--resume", split, "--steps", 4)

    assert len(losses(whole)) == 4
    assert losses(split) == losses(whole)  # bit-for-bit
    a, b = checkpoint.latest(whole), checkpoint.latest(split)
    assert a.name == b.name == "step_00000004"
    for stem in ("model", "ema", "optimizer", "rng"):
        ta, tb = load_file(a / f"{stem}.safetensors"), load_file(b / f"{stem}.safetensors")
        assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    assert (split / "config.yaml").is_file() and (split / "samples" / "step_00000004.png").is_file()
    assert "covariance.safetensors" in {p.name for p in b.iterdir()}


def test_two_process_accelerate_launch(tmp_path):
    cfg = write_config(tmp_path / "run.yaml", steps=3, checkpoint_every=1000, grad_accum=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = tmp_path / "ddp"
    # On a machine without GPUs, Accelerate's torchrun launcher (--multi_gpu) gives one CPU process per rank
    # when ACCELERATE_USE_CPU is set; `--cpu` alone would start a single process.
    result = subprocess.run(
        [BIN / "accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
         "-m", "sagd.cli", "train", "--config", cfg, "--out", run],
        env={**env_one_thread(), "ACCELERATE_USE_CPU": "true"}, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_00000003"]
    state = checkpoint.load_state(checkpoint.latest(run))
    assert state["processes"] == 2
    rng = load_file(checkpoint.latest(run) / "rng.safetensors")
    assert set(rng) == {f"{s}.{r}" for s in ("data", "time", "noise") for r in (0, 1)}
    assert not torch.equal(rng["noise.0"], rng["noise.1"])
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]  # logged once, by the main process
    assert [r["step"] for r in records if r.get("kind") == "probe"] == [0, 3]  # by the main process only


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("args, part", [
    (["train", "--spectrum", "power_law:beta=1"], "beta"),
    (["train", "--spectrum", "pink"], "pink"),
    (["train", "--dataset", "nope"], "nope"),
    (["train", "--dataset", "npz:path=/no/such.npz"], "/no/such.npz"),
    (["train", "--prediction", "score"], "score"),
    (["train", "--model", "huge"], "huge"),
    (["train", "--steps", "many"], "many"),
    (["train", "--config", "/no/such.yaml"], "/no/such.yaml"),
    (["sample", "--run", "/no/such/run"], "/no/such/run"),
    (["sample", "--run", "x", "--method", "magic"], "magic"),
    (["spectrum", "--spectrum", "power_law:alpha=x", "--out", "unused"], "alpha"),
    (["spectrum", "--spectrum", "isotropic", "--shape", "1,a", "--out", "unused"], "1,a"),
])
def test_bad_input_is_one_line_and_status_2(args, part, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("sagd: error: ") and err.count("\n") == 1 and part in err


def test_unknown_config_key_and_existing_run(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stepz: 3\n")
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--config", str(bad)])
    assert exit_.value.code == 2 and "unknown key 'stepz'" in capsys.readouterr().err
    checkpoint.save(tmp_path / "run", 1, {"model": {"w": torch.zeros(1)}}, {}, keep=1)
    with pytest.raises(SystemExit):
        main(["train", "--config", str(write_config(tmp_path / "ok.yaml")), "--out", str(tmp_path / "run")])
    assert "--resume" in capsys.readouterr().err


def test_the_console_script_prints_no_traceback():
    result = subprocess.run([BIN / "sagd", "train", "--spectrum", "power_law:beta=1"], capture_output=True, text=True,
                            env=env_one_thread(), timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("sagd: error: ") and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


# ---------------------------------------------------------------------------- spectrum
def test_spectrum_writes_its_plots(tmp_path, capsys):
    sagd("spectrum", "--spectrum", "power_law:alpha=-0.5*band_stop:low=0.3,high=0.4", "--shape", "1,16,16",
         "--out", tmp_path / "a")
    sagd("spectrum", "--spectrum", "data_matched", "--dataset", "digits", "--out", tmp_path / "b")
    for folder in ("a", "b"):
        for name in ("weights.png", "noise.png", "snr.png"):
            assert (tmp_path / folder / name).stat().st_size > 1000


# ---------------------------------------------------------------------------- demo
def test_demo_scores_its_samples_and_says_how_far_it_got(tmp_path, monkeypatch, capsys):
    from sagd.commands import demo

    monkeypatch.setattr(demo, "FID_SAMPLES", 64)
    monkeypatch.setenv("SAGD_CACHE", str(tmp_path / "cache"))
    sagd("demo", "--dataset", "digits", "--minutes", 0.03, "--out", tmp_path / "demo")
    record = json.loads((tmp_path / "demo" / "demo.json").read_text())
    steps = checkpoint.load_state(checkpoint.latest(tmp_path / "demo"))["step"]
    assert record["steps"] == steps >= 1 and record["fid_samples"] == 64 and record["fid"] > 0
    assert record["reference_runs"] == []  # the committed references are Fashion-MNIST's
    assert all((tmp_path / "demo" / f).is_file() for f in ("samples.png", "spectra.png", "fid.png"))
    out = capsys.readouterr().out
    assert f"trained {steps} steps" in out and f"in-domain FID {record['fid']:.1f}" in out


def test_demo_references_are_the_committed_fashion_mnist_runs():
    from sagd.commands.demo import RESULTS, reference_runs

    features = json.loads((RESULTS / "equal_compute.json").read_text())["features"]
    runs = {(r["spectrum"], r["steps"], r["batch_size"]): r["fid"] for r in reference_runs(features)}
    assert runs[("power_law:alpha=-0.5", 3000, 64)] == pytest.approx(13.32, abs=0.01)  # the demo's spectrum
    assert runs[("isotropic", 300, 64)] > runs[("isotropic", 3000, 64)]
    assert reference_runs("pixels") == []
