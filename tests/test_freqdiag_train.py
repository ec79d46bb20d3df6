"""Training the frequency-diagonal processes with ``sagd train`` (``TrainConfig.process``; docs/method.md §11).

A few steps of the ``tiny`` UNet on Fashion-MNIST with ``blurring`` and ``inverse_heat``: the per-frequency loss
is the one trained, a resumed run continues bit for bit, the run samples through ``load_run`` and ``sagd sample``.
The default ``process: sagd`` trains exactly as before the key existed (pinned on the kernel path that recorded
it, and with the key written out against a config without it). Bad specs and refused combinations are one line.
"""

import hashlib
import json

import pytest
import torch
import yaml
from safetensors.torch import load_file

from sagd import checkpoint, resume
from sagd.cli import main
from sagd.config import TrainConfig
from sagd.diffusion import GaussianData, frequency_parametrization, frequency_spec, optimized_grid
from sagd.diffusion.frequency import FrequencyProcess
from sagd.run import PRIOR, load_run
from sagd.train import train
from test_freqdiag_pin import kernel_path

# a handful of steps: checkpoints at 2, probes at 0, 2 and the end, one sample grid at the end
SMALL = dict(dataset="fashion_mnist", model="tiny", batch_size=8, warmup=2, log_every=1, checkpoint_every=2,
             sample_every=1000, sample_n=4, sample_steps=2, probe_every=2, probe_n=8, seed=0)
FREQUENCY = {"blurring": dict(process="blurring"), "inverse_heat": dict(process="inverse_heat", prediction="x0")}
FILES = ("model", "ema", "optimizer", "rng")


def records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def losses(run) -> list[float]:
    return [r["loss"] for r in records(run) if "loss" in r]


def tensors(run, stem: str) -> dict[str, torch.Tensor]:
    return load_file(checkpoint.latest(run) / f"{stem}.safetensors")


def assert_same_checkpoints(a, b, stems=FILES) -> None:
    for stem in stems:
        ta, tb = tensors(a, stem), tensors(b, stem)
        assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta), stem


def sagd(*args) -> None:
    assert main([str(a) for a in args]) == 0


# ---------------------------------------------------------------------------- the frequency processes
@pytest.mark.paths
@pytest.mark.parametrize("name", FREQUENCY)
def test_frequency_process_trains_resumes_exactly_and_samples(name, tmp_path, monkeypatch):
    import sagd.train as training

    calls = []
    spy = frequency_parametrization.loss

    def counted(model, proc, *args, **kwargs):
        calls.append(proc)
        return spy(model, proc, *args, **kwargs)

    monkeypatch.setattr(training.frequency_parametrization, "loss", counted)
    monkeypatch.setattr(training.diffusion, "loss", lambda *a, **k: pytest.fail("a frequency run trained SAGD's loss"))
    cfg = TrainConfig(**SMALL, **FREQUENCY[name], out=str(tmp_path / "whole"), steps=3)
    whole, split = train(cfg), tmp_path / "split"
    train(cfg.replace(out=str(split), steps=2))
    train(cfg.replace(out=str(split)), resume=True)

    assert len(calls) == 3 + 2 + 1 and all(isinstance(p, FrequencyProcess) and p.name.startswith(name) for p in calls)
    assert len(losses(whole)) == 3 and losses(split) == losses(whole)  # bit for bit across the resume
    assert_same_checkpoints(whole, split, FILES + ((PRIOR,) if name == "inverse_heat" else ()))
    probes = [r for r in records(whole) if r.get("kind") == "probe"]
    assert [r["step"] for r in probes] == [0, 2, 3] and all(torch.isfinite(torch.tensor(r["probe_error"])).all()
                                                           for r in probes)
    assert (whole / "samples" / "step_00000003.png").is_file()

    run = load_run(whole)
    assert isinstance(run.proc, FrequencyProcess) and run.proc.name == calls[0].name and run.cfg.process == name
    if name == "inverse_heat":  # its prior, kept with the run: p_1 of the Gaussian with the training images' statistics
        from sagd.data import load_dataset

        mean, power = run.proc.prior()
        a_1, s_1 = run.proc.coefficients(torch.tensor(1.0, dtype=torch.float64))
        data_mean = load_dataset("fashion_mnist", "train").images.double().mean(0)
        torch.testing.assert_close(mean, run.proc.multiply(data_mean[None], a_1)[0])  # float64 defaults
        assert mean.abs().max() > 0.1 and (power >= s_1**2).all() and power.max() > 10 * s_1.max() ** 2  # DC kept
    x, _ = run.sample(3, torch.Generator().manual_seed(0), "dpmpp_2m", 3)
    y, _ = run.sample(3, torch.Generator().manual_seed(0), "dpmpp_2m", 3)
    assert x.shape == (3, 1, 28, 28) and torch.isfinite(x).all() and torch.equal(x, y)


def test_the_cli_trains_blurring_and_samples_it(tmp_path, capsys):
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in SMALL.items() if k != "batch_size"}))
    run = tmp_path / "blur"
    sagd("train", "--config", config, "--process", "blurring:sigma_blur_max=20,min_scale=0.001", "--steps", 2,
         "--batch-size", 4, "--out", run)
    assert yaml.safe_load((run / "config.yaml").read_text())["process"] == "blurring:sigma_blur_max=20,min_scale=0.001"
    sagd("sample", "--run", run, "--n", 2, "--method", "ddim", "--sampling-steps", 2, "--out", tmp_path / "gen")
    import numpy as np

    images = np.load(tmp_path / "gen" / "samples.npz")["images"]
    assert images.shape == (2, 1, 28, 28) and np.isfinite(images).all()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["sample", "--run", str(run), "--n", "2", "--method", "heun"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "process samples with the per-frequency ddpm, ddim" in err and err.count("\n") == 1
    with pytest.raises(ValueError, match="optimized grids are SAGD's"):
        optimized_grid(load_run(run).proc, GaussianData(torch.ones(1, 28, 28)), "ddim", 2)
    with pytest.raises(SystemExit) as exit_:  # the checkpoint belongs to a blurring run
        main(["train", "--resume", str(run), "--process", "inverse_heat", "--prediction", "x0"])
    assert exit_.value.code == 2 and "belongs to a run with process='blurring:" in capsys.readouterr().err


# ---------------------------------------------------------------------------- the default process
# At commit a2e9d66, before TrainConfig had a process key: SMALL with the defaults, 3 steps (loss hex per step,
# sha256 prefixes of the EMA weights, of the probe records and of the last sample grid's PNG)
PINNED_ON = ("2.13.0+cpu", "AVX2", "AuthenticAMD")
PINNED = {"losses": ["0x1.12521c0000000p+0", "0x1.de66ec0000000p-1", "0x1.95d2e00000000p-1"],
          "ema": "71b5f1fae5cab23b", "probes": "b507314e71565170", "png": "9907b4b4511ca87d"}


def fingerprint(run) -> dict:
    ema = tensors(run, "ema")
    return {"losses": [x.hex() for x in losses(run)],
            "ema": hashlib.sha256(b"".join(ema[k].numpy().tobytes() for k in sorted(ema))).hexdigest()[:16],
            "probes": hashlib.sha256(json.dumps([r["probe_error"] for r in records(run) if r.get("kind") == "probe"])
                                     .encode()).hexdigest()[:16],
            "png": hashlib.sha256((run / "samples" / "step_00000003.png").read_bytes()).hexdigest()[:16]}


@pytest.mark.paths
@pytest.mark.skipif(kernel_path() != PINNED_ON, reason=f"pinned on {PINNED_ON}, this is {kernel_path()}")
def test_the_default_process_trains_bit_for_bit_as_before_the_key(tmp_path, monkeypatch):
    # recorded with one torch thread (make test's OMP_NUM_THREADS=1): more threads split the reductions otherwise
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # sagd's thread choice then leaves torch's count alone
    torch.set_num_threads(1)
    assert fingerprint(train(TrainConfig(**SMALL, out=str(tmp_path / "run"), steps=3))) == PINNED


@pytest.mark.paths
def test_a_config_without_the_key_trains_the_same_run_as_process_sagd(tmp_path):
    without = train(TrainConfig.from_dict({**SMALL, "out": str(tmp_path / "a"), "steps": 2}))
    written = train(TrainConfig.from_dict({**SMALL, "out": str(tmp_path / "b"), "steps": 2, "process": "sagd"}))
    assert losses(without) == losses(written) and len(losses(written)) == 2
    assert_same_checkpoints(without, written)
    assert not (checkpoint.latest(written) / f"{PRIOR}.safetensors").exists()


def test_checkpoints_written_before_the_key_resume_as_sagd(tmp_path):
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "process"}
    ckpt = checkpoint.save(tmp_path, 1, {"model": {"w": torch.zeros(1)}}, {"config": old}, keep=1)
    resume.check_identity(ckpt, TrainConfig().to_dict())
    with pytest.raises(ValueError, match="belongs to a run with process='sagd'"):
        resume.check_identity(ckpt, TrainConfig(process="blurring").to_dict())


# ---------------------------------------------------------------------------- bad specs, refused combinations
@pytest.mark.parametrize("changes, says", [
    ({"process": "blur"}, "config process 'blur': unknown process 'blur'; known: sagd, blurring, inverse_heat"),
    ({"process": "blurring:sigma=3"}, "unknown key 'sigma'; blurring accepts sigma_blur_max, min_scale, schedule"),
    ({"process": "blurring:min_scale=2"}, "min_scale must be in (0, 1)"),
    ({"process": "blurring:sigma_blur_max=wide"}, "sigma_blur_max must be a number, got 'wide'"),
    ({"process": "blurring:schedule=sigmoid"}, "schedule must be one of linear, cosine"),
    ({"process": "inverse_heat:sigma_blur_min=30", "prediction": "x0"}, "sigma_blur_max must be > sigma_blur_min"),
    ({"process": "sagd:alpha=1"}, "sagd takes no keys"),
    ({"process": ""}, "process spec must be a non-empty string"),
    ({"process": "blurring", "spectrum": "power_law:alpha=-0.5"}, "config spectrum: blurring noises every frequency"),
    ({"process": "blurring", "schedule": "cosine"}, "config schedule: read by the sagd process only"),
    ({"process": "blurring", "noise": "per_draw"}, "config noise: per_draw normalises"),
    ({"process": "blurring", "prediction": "colored_eps"}, "config prediction: blurring trains eps, x0, v targets"),
    ({"process": "inverse_heat"}, "config prediction: inverse_heat blurs high frequencies to a_t = 0"),
    ({"process": "blurring", "omission": "project"}, "config omission: blurring noises every frequency"),
    ({"process": "blurring", "vae": "somewhere"}, "config vae: blurring blurs pixels; latent runs are not supported"),
    ({"process": "blurring", "class_conditional": True}, "config class_conditional: blurring runs are unconditional"),
    ({"process": "blurring", "sample_method": "heun"}, "config sample_method: blurring samples with the per-frequency"),
])
def test_bad_process_specs_and_refused_combinations_are_one_line(changes, says):
    with pytest.raises(ValueError) as error:
        TrainConfig(**changes).validate()
    message = str(error.value)
    assert says in message and "\n" not in message and "process" in message


def test_the_cli_names_a_bad_process_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--process", "blurring:min_scale=0"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("sagd: error: config process 'blurring:min_scale=0': min_scale")
    assert err.count("\n") == 1
