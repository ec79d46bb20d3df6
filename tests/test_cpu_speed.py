"""The faster CPU paths of issue 26 compute what the plain paths compute (tests/README.md, "Comparing two
computation paths"): compiled training (inductor's C++ kernels) in float64, compiled and channels-last sampling in
float32 within a tolerance derived from the plain path's own float32 rounding, channels-last Inception within the
issue's 1e-3; and ``sagd train``'s automatic CPU settings, which flags and config files override.

A small UNet (two levels of 8 and 16 channels) keeps inductor's first compile of each graph short (about 90 s of a
busy core for a training graph); later runs read its on-disk cache.
"""

import argparse
import json

import pytest
import torch
import yaml

from sagd import checkpoint, diffusion
from sagd.cli import main
from sagd.commands import train as train_command
from sagd.run import generate, load_run, sampler_denoiser
from tolerances import SPREAD_FACTOR, float32_spread

SMALL_UNET = {"_class_name": "UNet2DModel", "block_out_channels": [8, 16], "layers_per_block": 1,
              "down_block_types": ["DownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "UpBlock2D"],
              "norm_num_groups": 4}
RUN = dict(dataset="digits", spectrum="power_law:alpha=-0.5", batch_size=8, warmup=2, log_every=1, checkpoint_every=2,
           sample_every=1000, sample_n=2, sample_steps=1, probe_every=0, mixed_precision="no")


# torch 2.13's inductor cannot build its C++ kernels under ATen's scalar kernels (ATEN_CPU_CAPABILITY=default: "'at::vec'
# has not been declared"), so there is no compiled path to compare on that leg of the kernel matrix
inductor_builds = pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() == "DEFAULT",
                                     reason="inductor's C++ kernels do not build under ATEN_CPU_CAPABILITY=default")


def sagd(*args) -> None:
    assert main([str(a) for a in args]) == 0


@pytest.fixture
def config(tmp_path):
    model = tmp_path / "unet.json"
    model.write_text(json.dumps(SMALL_UNET))
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**RUN, "model": str(model)}))
    return path


@pytest.mark.paths
@inductor_builds
def test_compiled_training_trains_the_same_network(tmp_path, config, float64_training):
    """Two steps (Adam's first steps move every weight by about the learning rate whatever its gradient's size, so a
    wrong or missing gradient shows at once). Without ``compile_network``'s ``layout_optimization=False`` this fails:
    the parameters below the up block's upsampler get zero gradients. So does ``--compile --channels-last``, which
    ``sagd train`` therefore refuses on a CPU (below)."""
    torch.set_num_threads(1)
    for name, extra in (("plain", ("--no-compile",)), ("compiled", ("--compile",))):
        sagd("train", "--config", config, "--out", tmp_path / name, "--steps", 2, *extra)
    a, b = (checkpoint.load_tensors(checkpoint.latest(tmp_path / n), "model") for n in ("plain", "compiled"))
    assert a.keys() == b.keys()
    for k in a:  # inductor's fused C++ kernels sum in another order: float64 leaves it ~1e-15, a bug far above 1e-7
        assert a[k].dtype == torch.float64
        torch.testing.assert_close(a[k], b[k])
    assert yaml.safe_load((tmp_path / "compiled" / "config.yaml").read_text())["compile"] is True


def test_compile_with_channels_last_is_refused_on_a_cpu(tmp_path, config):
    from sagd.config import load_config
    from sagd.train import Trainer

    cfg = load_config(config).replace(out=str(tmp_path / "run"), compile=True, channels_last=True)
    with pytest.raises(ValueError, match="compile with channels_last"):
        Trainer(cfg)


@pytest.mark.paths
@pytest.mark.parametrize("changes", [pytest.param({"compile": True}, marks=inductor_builds), {"channels_last": True},
                                     pytest.param({"compile": True, "channels_last": True}, marks=inductor_builds)],
                         ids=["compile", "channels_last", "compile_cl"])
def test_fast_sampling_draws_the_same_images(tmp_path, config, changes):
    torch.set_num_threads(1)
    sagd("train", "--config", config, "--out", tmp_path / "run", "--steps", 2)
    plain, fast = load_run(tmp_path / "run"), load_run(tmp_path / "run", **changes)
    x_T = plain.proc.prior_sample(4, generator=torch.Generator().manual_seed(0))

    def draw(run, x):  # two DPM-Solver++(2M) steps from x; the plain network in x's dtype
        net = run.net if x.dtype == torch.float32 else load_run(tmp_path / "run").net.double()
        with torch.no_grad():
            return diffusion.sample(sampler_denoiser(net, run.proc, run.cfg.prediction, clip=run.cfg.sample_clip),
                                    run.proc, len(x), "dpmpp_2m", 2, x_T=x, dtype=x.dtype)

    spread = float32_spread(lambda x: draw(plain, x), x_T)
    worst = (draw(fast, x_T) - draw(plain, x_T)).abs().max().item()
    assert worst <= SPREAD_FACTOR * spread, (worst, spread)
    x, _ = generate(fast.net, fast.proc, fast.cfg.prediction, 4, "ddim", 2, torch.Generator().manual_seed(1))
    assert x.shape == (4, *fast.proc.shape)  # the library's sampling entry point runs the fast network too (batch 4:
    # the shape already compiled)


@pytest.mark.paths
def test_channels_last_inception_is_faithful():
    from sagd.metrics.inception import InceptionUnavailable, InceptionV3

    try:
        plain = InceptionV3()
    except InceptionUnavailable as e:
        pytest.skip(str(e))
    fast = InceptionV3(channels_last=True, batch=3)
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    a, b = plain(images, ("768", "2048")), fast(images, ("768", "2048"))
    for tap in a:  # the bound on a faithful faster path: 1e-3 of the largest feature
        assert (b[tap] - a[tap]).abs().max() <= 1e-3 * a[tap].abs().max(), tap


def args_of(*argv) -> argparse.Namespace:
    from sagd.cli import build_parser

    return build_parser().parse_args(["train", *argv])


def test_cpu_auto_settings_yield_to_flags_and_config(tmp_path, monkeypatch):
    monkeypatch.setattr(train_command, "on_cpu", lambda: True)
    monkeypatch.setattr(train_command, "CPU_AUTO", {"compile": True, "channels_last": True})
    assert train_command.cpu_auto(args_of()) == {"compile": True, "channels_last": True}
    assert train_command.cpu_auto(args_of("--no-compile")) == {"channels_last": True}
    assert train_command.cpu_auto(args_of("--no-compile", "--no-channels-last")) == {}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"compile": False}))
    assert train_command.cpu_auto(args_of("--config", str(tmp_path / "c.yaml"))) == {"channels_last": True}
    monkeypatch.setattr(train_command, "on_cpu", lambda: False)
    assert train_command.cpu_auto(args_of()) == {}


def test_cpu_auto_is_off_until_measured():
    """Nothing is switched on by itself before benchmarks/suite_run_cost.py has measured it (README, "CPU speed"):
    ``sagd train``'s defaults stay those of ``TrainConfig``."""
    from sagd.config import CPU_AUTO, TrainConfig

    assert CPU_AUTO == {"compile": False, "channels_last": False}
    assert all(getattr(TrainConfig(), k) == v for k, v in CPU_AUTO.items())
