"""Numerical faults: non-finite steps never reach the weights, non-finite weights never reach a file or a
picture, extreme spectra give finite numbers or a refusal that states the bound."""

from __future__ import annotations

import re

import pytest
import torch
import yaml

from sagd import checkpoint, diffusion
from sagd.cli import main
from sagd.config import TrainConfig, save_config
from sagd.diffusion.process import PER_DRAW_MAX_SPREAD
from sagd.models import Network
from sagd.spectral import from_spec
from sagd.stops import Stopped
from sagd.train import Trainer

TINY = dict(dataset="digits", model="tiny", spectrum="power_law:alpha=-0.5", batch_size=8, warmup=0, log_every=1,
            checkpoint_every=1, sample_every=1000, sample_n=4, sample_steps=2, steps=6)


def cli(capsys, *args) -> tuple[int, str]:
    """``sagd <args>`` in this process: exit status and the last line of stderr."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as e:
        status = e.code
    err = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()
    return status, err[-1] if err else ""


def finite_checkpoints(run) -> bool:
    return all(bool(torch.isfinite(t).all()) for ckpt in checkpoint.list_checkpoints(run)
               for stem in ("model", "ema") for t in checkpoint.load_tensors(ckpt, stem).values())


# ---------------------------------------------------------------------------- training steps
def test_a_huge_learning_rate_stops_at_the_first_nonfinite_step(tmp_path, capsys, fault):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    run = tmp_path / "run"
    status, line = cli(capsys, "train", "--config", config, "--out", run, "--lr", "1e12")
    assert status == 1
    assert line.startswith("sagd: stopped: step 2: loss nan, gradient norm nan: not finite (skip_nonfinite=0 stops")
    assert line.endswith("the newest checkpoint, step_00000001, is untouched")
    assert [p.name for p in checkpoint.list_checkpoints(run)] == ["step_00000001"] and finite_checkpoints(run)
    fault("Numerical faults", "`sagd train --lr 1e12`", f"exit {status}: `{line}`")

    # step 1 left finite but huge weights (1e12): their output overflows, and sampling refuses to draw NaNs
    status, line = cli(capsys, "sample", "--run", run, "--n", 2, "--sampling-steps", 2, "--out", tmp_path / "gen")
    assert status == 2 and "sampling gave 128 non-finite values of 128" in line
    assert not (tmp_path / "gen" / "samples.png").exists()
    fault("Numerical faults", "`sagd sample` on that run (weights finite but about 1e12)", f"exit {status}: `{line}`")


def nan_at(steps: set[int], trainer: Trainer):
    """Patch ``diffusion.loss`` (as the trainer calls it) to return NaN at optimizer steps ``steps``."""
    real = diffusion.loss

    def loss(*args, **kwargs):
        value = real(*args, **kwargs)
        return value * float("nan") if trainer.step in steps else value

    return loss


def test_skip_nonfinite_drops_the_step_and_stops_past_the_cap(tmp_path, monkeypatch, fault):
    cfg = TrainConfig.from_dict({**TINY, "out": str(tmp_path / "run"), "skip_nonfinite": 2})
    trainer = Trainer(cfg.validate())
    messages = []
    trainer.guard.say = messages.append
    monkeypatch.setattr("sagd.train.diffusion.loss", nan_at({2, 3, 5, 6, 7}, trainer))
    assert trainer.train_step() is not None
    params = [p.detach().clone() for p in trainer.net.parameters()]
    moments = {k: v.clone() for k, v in trainer.opt.state_dict()["state"][0].items()}
    ema = [p.detach().clone() for p in trainer.ema.module.parameters()]
    assert trainer.train_step() is None and trainer.train_step() is None  # steps 2 and 3: dropped
    assert all(torch.equal(a, b) for a, b in zip(params, trainer.net.parameters()))
    assert all(torch.equal(v, trainer.opt.state_dict()["state"][0][k]) for k, v in moments.items())
    assert all(torch.equal(a, b) for a, b in zip(ema, trainer.ema.module.parameters()))
    assert messages[0] == "sagd: step 2: loss nan, gradient norm nan: step skipped (1 of at most 2 in a row)"
    assert trainer.train_step() is not None  # step 4 is finite: the count of steps in a row restarts
    assert trainer.train_step() is None and trainer.train_step() is None
    with pytest.raises(Stopped, match="step 7: loss nan, gradient norm nan: 3 non-finite steps in a row, "
                                      "more than skip_nonfinite=2; the step was not applied") as stop:
        trainer.train_step()
    assert stop.value.status == 1
    trainer.close()
    fault("Numerical faults", "NaN losses at steps 2, 3, 5, 6, 7 with `skip_nonfinite: 2`",
          f"steps 2, 3, 5, 6 dropped (weights, optimizer moments and EMA unchanged), each with a line like "
          f"`{messages[0]}`; at step 7: `{stop.value}`")


def test_nonfinite_weights_are_never_checkpointed_nor_sampled(tmp_path, capsys, fault):
    cfg = TrainConfig.from_dict({**TINY, "out": str(tmp_path / "run")})
    trainer = Trainer(cfg.validate())
    trainer.train_step()
    trainer.save()
    save_config(cfg, tmp_path / "run" / "config.yaml")
    with torch.no_grad():
        next(trainer.net.parameters())[0] = float("inf")
    with pytest.raises(Stopped, match="the weights are no longer finite: no checkpoint written; "
                                      "the newest checkpoint, step_00000001, is untouched") as stop:
        trainer.save()
    trainer.close()
    assert finite_checkpoints(tmp_path / "run")
    fault("Numerical faults", "a checkpoint due while the weights hold an inf", f"`{stop.value}`")

    # a checkpoint whose EMA weights are NaN (as older versions wrote them): sample refuses it
    good = checkpoint.latest(tmp_path / "run")
    state = checkpoint.load_state(good)
    tensors = {stem: checkpoint.load_tensors(good, stem) for stem in ("model", "ema", "optimizer", "rng", "covariance")}
    tensors["ema"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                      for k, v in tensors["ema"].items()}
    checkpoint.save(tmp_path / "run", 2, tensors, {k: v for k, v in state.items() if k not in ("files", "step")}, keep=3)
    status, line = cli(capsys, "sample", "--run", tmp_path / "run", "--n", 2, "--out", tmp_path / "gen")
    assert status == 2 and "ema.safetensors' holds non-finite weights" in line and "refusing to use them" in line
    fault("Numerical faults", "`sagd sample` on a checkpoint whose EMA weights are NaN", f"exit {status}: `{line}`")


# ---------------------------------------------------------------------------- extreme spectra
EXTREME = ["power_law:alpha=4", "power_law:alpha=-4", "power_law:alpha=4,k0=1e-10", "power_law:alpha=-4,k0=1e-10",
           "band_stop:low=0.1,high=0.3,floor=1e-12", "band_pass:low=0.1,high=0.3,floor=1e-12",
           "two_band:low_band=0-0.3,high_band=0.5-1,gamma_high=0"]


def test_extreme_spectra_train_and_sample_finite_numbers_on_64x64(fault):
    shape = (1, 64, 64)
    torch.manual_seed(0)
    net = Network("tiny", shape).eval()
    x0 = torch.rand(2, *shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for spec in EXTREME:
        cov = from_spec(spec, shape)
        proc = diffusion.VPProcess(cov)
        with torch.no_grad():
            loss = diffusion.loss(net, proc, x0, "eps", generator=torch.Generator().manual_seed(1))
            x = diffusion.sample(diffusion.Denoiser(net, proc, "eps"), proc, 2, method="ddim", steps=3,
                                 generator=torch.Generator().manual_seed(2))
        assert torch.isfinite(loss) and torch.isfinite(x).all(), spec
        fault("Numerical faults", f"spectrum `{spec}` on 64×64 (spread {cov.spread:.1e}, support "
                                  f"{cov.rank}/{cov.dim}), noise `exact`",
              "finite training loss and finite DDIM samples (no clamp) from a tiny UNet")


def test_extreme_spectra_beyond_the_bounds_are_refused_with_the_bound(fault):
    shape = (1, 64, 64)
    cov = from_spec("power_law:alpha=4,k0=1e-10", shape)
    with pytest.raises(ValueError, match=re.escape(f"<= {PER_DRAW_MAX_SPREAD:.0e}; this one's is 6.25e+78")) as refusal:
        diffusion.VPProcess(cov, noise="per_draw")
    fault("Numerical faults", "`power_law:alpha=4,k0=1e-10` on 64×64 with noise `per_draw`", f"`{refusal.value}`")
    diffusion.VPProcess(from_spec("power_law:alpha=-4", shape), noise="per_draw")  # spread 2e13: accepted

    with pytest.raises(ValueError, match=r"contains no frequency of a \(64, 64\) grid "
                                         r"\(the nearest frequencies are 0, 0.03125\)") as refusal:
        from_spec("two_band:low_band=0.001-0.002,high_band=0.5-1", shape)
    fault("Numerical faults", "`two_band:low_band=0.001-0.002,...` on 64×64 (a band between grid frequencies)",
          f"`{refusal.value}`")
