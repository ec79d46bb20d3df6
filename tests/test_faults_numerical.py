"""Numerical faults: non-finite steps never reach the weights, non-finite weights never reach a file or a
picture, extreme spectra give finite numbers or a refusal that states the bound."""

from __future__ import annotations

import re

import pytest
import torch
import yaml

from sagd import checkpoint, diffusion, report
from sagd.cli import main
from sagd.config import TrainConfig, save_config
from sagd.diffusion.process import PER_DRAW_MAX_SPREAD
from sagd.models import Network
from sagd.spectral import from_spec
from sagd.stops import Stopped
from sagd.train import Trainer, train

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


def nan_at(steps: set[int], trainer: Trainer | None = None):
    """Patch ``diffusion.loss`` (as the trainer calls it) to return NaN at optimizer steps ``steps`` (counted
    from ``trainer.step``, or from the calls when there is no trainer at hand: one per step)."""
    real, calls = diffusion.loss, []

    def loss(*args, **kwargs):
        calls.append(None)
        value = real(*args, **kwargs)
        return value * float("nan") if (trainer.step if trainer else len(calls)) in steps else value

    return loss


def state_bits(trainer: Trainer) -> dict[str, torch.Tensor]:
    """The bytes of the weights, the optimizer's state (moments and step counts) and the EMA with its count."""
    tensors = {f"model.{k}": v for k, v in trainer.acc.unwrap_model(trainer.net).state_dict().items()}
    tensors |= {f"optimizer.{i}.{k}": v for i, s in trainer.opt.state_dict()["state"].items() for k, v in s.items()}
    tensors |= {f"ema.{k}": v for k, v in trainer.ema.module.state_dict().items()}
    tensors["ema.n_averaged"] = trainer.ema.n_averaged
    return {k: v.detach().reshape(-1).clone().view(torch.uint8) for k, v in tensors.items()}


def same_bits(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_skip_nonfinite_drops_the_step_and_stops_past_the_cap(tmp_path, monkeypatch, fault):
    cfg = TrainConfig.from_dict({**TINY, "out": str(tmp_path / "run"), "skip_nonfinite": 2})
    trainer = Trainer(cfg.validate())
    messages = []
    trainer.guard.say = messages.append
    monkeypatch.setattr("sagd.train.diffusion.loss", nan_at({2, 3, 5, 6, 7}, trainer))
    trainer.train_step()
    good = state_bits(trainer)
    trainer.train_step()  # step 2: dropped on the device; the host does not know yet
    assert messages == [] and trainer.guard.in_a_row == 0 and same_bits(state_bits(trainer), good)
    trainer.train_step()  # step 3: dropped; the host reads step 2's flag
    assert messages == ["sagd: step 2: loss nan, gradient norm nan: step skipped (1 of at most 2 in a row)"]
    assert same_bits(state_bits(trainer), good)  # weights, optimizer moments and step count, EMA and its count
    trainer.train_step()  # step 4 is finite (and reports step 3); the count of steps in a row restarts
    assert messages[1:] == ["sagd: step 3: loss nan, gradient norm nan: step skipped (2 of at most 2 in a row)"]
    good = state_bits(trainer)
    trainer.train_step(), trainer.train_step(), trainer.train_step()  # steps 5, 6, 7 (6 is reported, 2 of 2)
    with pytest.raises(Stopped, match="step 7: loss nan, gradient norm nan: 3 non-finite steps in a row, "
                                      "more than skip_nonfinite=2; the step was not applied") as stop:
        trainer.train_step()  # step 8 reads step 7's flag before its own update is applied
    assert stop.value.status == 1 and len(messages) == 4
    assert same_bits(state_bits(trainer), good)  # the weights of step 4, the last good one
    trainer.close()
    fault("Numerical faults", "NaN losses at steps 2, 3, 5, 6, 7 with `skip_nonfinite: 2`",
          f"steps 2, 3, 5, 6 dropped on the device (weights, optimizer state and EMA bit for bit unchanged), each "
          f"reported at the next step with a line like `{messages[0]}`; at step 8, before it is applied: `{stop.value}`")


def test_a_nonfinite_gradient_with_a_finite_loss_is_dropped_too(tmp_path):
    cfg = TrainConfig.from_dict({**TINY, "out": str(tmp_path / "run"), "skip_nonfinite": 1})
    trainer = Trainer(cfg.validate())
    messages = []
    trainer.guard.say = messages.append
    weight = next(trainer.net.parameters())
    weight.register_hook(lambda g: g * float("inf") if trainer.step == 2 else g)
    trainer.train_step()
    good = state_bits(trainer)
    loss = trainer.train_step()
    assert torch.isfinite(loss) and trainer.found_inf == 1 and same_bits(state_bits(trainer), good)
    trainer.guard.settle()
    assert re.fullmatch(r"sagd: step 2: loss [0-9.e-]+, gradient norm (inf|nan): step skipped \(1 of at most 1 in a row\)",
                        messages[0]), messages
    trainer.train_step()
    assert trainer.found_inf == 0 and not same_bits(state_bits(trainer), good) and len(messages) == 1
    trainer.close()


@pytest.mark.paths
def test_a_run_reports_a_dropped_last_step_and_stops_past_the_cap_without_a_checkpoint(tmp_path, monkeypatch, capsys,
                                                                                       fault):
    quiet = {**TINY, "log_every": 1000, "checkpoint_every": 1000, "sample_every": 1000}
    clean = train(TrainConfig.from_dict({**quiet, "out": str(tmp_path / "clean"), "steps": 3}))
    capsys.readouterr()

    # the last step is dropped: reported before the run ends, whose checkpoint holds step 3's weights and EMA
    monkeypatch.setattr("sagd.train.diffusion.loss", nan_at({4}))
    run = train(TrainConfig.from_dict({**quiet, "out": str(tmp_path / "last"), "steps": 4, "skip_nonfinite": 1}))
    err = capsys.readouterr().err
    assert "sagd: step 4: loss nan, gradient norm nan: step skipped (1 of at most 1 in a row)" in err
    last, reference = checkpoint.latest(run), checkpoint.latest(clean)
    assert last.name == "step_00000004" and checkpoint.load_state(last)["ema_updates"] == 3
    for stem in ("model", "ema"):
        ours, theirs = checkpoint.load_tensors(last, stem), checkpoint.load_tensors(reference, stem)
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs)

    # a log record whose steps were all dropped has no loss (the throughput counts every step)
    monkeypatch.setattr("sagd.train.diffusion.loss", nan_at({2}))
    run = train(TrainConfig.from_dict({**quiet, "out": str(tmp_path / "log"), "steps": 3, "log_every": 1,
                                       "skip_nonfinite": 1}))
    records = [r for r in report.read_metrics(run) if "loss" in r]
    assert [r["step"] for r in records] == [1, 2, 3] and records[1]["loss"] is None
    assert all(r["loss"] > 0 and r["images_per_s"] > 0 for r in records[::2])

    # two in a row with skip_nonfinite 1: the checkpoint due at step 4 is not written, step 2's is untouched
    monkeypatch.setattr("sagd.train.diffusion.loss", nan_at({3, 4}))
    with pytest.raises(Stopped) as capped:
        train(TrainConfig.from_dict({**quiet, "out": str(tmp_path / "cap"), "steps": 6, "checkpoint_every": 2,
                                     "skip_nonfinite": 1}))
    err = capsys.readouterr().err
    assert "sagd: step 3: loss nan, gradient norm nan: step skipped (1 of at most 1 in a row)" in err
    assert str(capped.value) == ("step 4: loss nan, gradient norm nan: 2 non-finite steps in a row, more than "
                               "skip_nonfinite=1; the step was not applied; the newest checkpoint, step_00000002, "
                               "is untouched")
    assert capped.value.status == 1 and f"sagd: stopped: {capped.value}" in err
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path / "cap")] == ["step_00000002"]

    # the last step is not finite with skip_nonfinite 0: the run stops at its end, without a last checkpoint
    monkeypatch.setattr("sagd.train.diffusion.loss", nan_at({3}))
    with pytest.raises(Stopped, match="step 3: loss nan, gradient norm nan: not finite") as stop:
        train(TrainConfig.from_dict({**quiet, "out": str(tmp_path / "end"), "steps": 3}))
    assert stop.value.status == 1 and f"sagd: stopped: {stop.value}" in capsys.readouterr().err
    assert not checkpoint.list_checkpoints(tmp_path / "end")
    fault("Numerical faults", "a NaN loss at the last step (step 4 of 4) with `skip_nonfinite: 1`",
          "reported before the run ends (`sagd: step 4: loss nan, gradient norm nan: step skipped (1 of at most 1 in "
          "a row)`); the last checkpoint holds step 3's weights and EMA bit for bit (`ema_updates` 3)")
    fault("Numerical faults", "NaN losses at steps 3 and 4 with `skip_nonfinite: 1`, a checkpoint due at step 4",
          f"exit 1, no checkpoint written at step 4: `sagd: stopped: {capped.value}`")
    fault("Numerical faults", "a NaN loss at the last step (step 3 of 3) with `skip_nonfinite: 0`",
          f"exit 1 at the end of the run, no last checkpoint: `sagd: stopped: {stop.value}`")


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
