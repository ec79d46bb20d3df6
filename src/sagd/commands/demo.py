"""``sagd demo``: a small SAGD run end to end, sized to about ten minutes on two CPU cores.

Trains the ``tiny`` UNet on Fashion-MNIST for a wall-clock budget (``--minutes``, default 8)
with red power-law noise (``power_law:alpha=-0.5``: more noise at low frequencies; ``k0`` is one
frequency bin, so the DC weight stays in line with its neighbours) and the ``v`` parametrisation
(an undertrained ``eps`` model's ``x0`` estimate is off by ``σ/α`` times its error, which
deterministic DDIM carries into the samples). Then samples the EMA weights and compares the
radially averaged power spectra of data (1000 test images) and 128 samples. Uses a GPU when
there is one. ``configs/demo.yaml`` is the same configuration.

Writes to ``--out``: the run (``config.yaml``, ``metrics.jsonl``, ``checkpoints/``, ``samples/``),
``samples.png`` (128 samples, DDIM 50 steps) and ``spectra.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..config import TrainConfig
from ..data import load_dataset
from ..metrics import power_spectrum, radial_average
from ..report import figure, save
from .train import add_run_flags, overrides

SPECTRA_SAMPLES = 128
DEMO = dict(
    out="runs/demo",
    dataset="fashion_mnist",
    spectrum="power_law:alpha=-0.5",
    prediction="v",
    model="tiny",
    steps=50_000,
    max_minutes=8.0,
    batch_size=32,
    lr=1e-3,
    warmup=100,
    ema_decay=0.999,
    log_every=25,
    sample_every=50_000,
    checkpoint_every=500,
    keep_checkpoints=2,
    sample_n=64,
    sample_steps=50,
)


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="train and sample a tiny SAGD model in about ten minutes",
                              description="Train the tiny UNet with red power-law noise for --minutes, sample it and "
                                          "compare data and sample power spectra. See configs/demo.yaml.")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/demo)")
    add_run_flags(p)
    p.set_defaults(func=run)


def spectra_plot(data: torch.Tensor, samples: torch.Tensor, path: Path) -> float:
    """Plot radially averaged power spectra of ``data`` and ``samples`` ``(N, C, H, W)``.

    Returns the mean ``|log10(P_samples / P_data)|`` over rings (0 = identical spectra).
    """
    r, p_data = radial_average(power_spectrum(data).mean(0))
    _, p_samples = radial_average(power_spectrum(samples).mean(0))
    err = (p_samples / p_data).log10().abs().mean().item()
    fig, ax = figure(1, width=5.5)
    a = ax[0, 0]
    a.loglog(r[1:], p_data[1:], "o-", ms=3, label=f"data ({len(data)})")
    a.loglog(r[1:], p_samples[1:], "s-", ms=3, label=f"samples ({len(samples)})")
    a.set(xlabel="|k| (cycles/pixel)", ylabel="mean power",
          title=f"radially averaged power spectra (DC omitted)\nmean |log10 ratio| = {err:.3f}")
    a.legend()
    save(fig, path)
    return err


def run(args: argparse.Namespace) -> None:
    from ..train import generate, save_grid, train
    from .sample import load_ema

    cfg = TrainConfig.from_dict(DEMO).replace(**overrides(args, ("out", "dataset", "data_root", "spectrum",
                                                                   "seed", "minutes")))
    out = train(cfg)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net, proc, state = load_ema(out, device)
    x, _ = generate(net, proc, cfg.prediction, SPECTRA_SAMPLES, cfg.sample_method, cfg.sample_steps,
                    torch.Generator(device).manual_seed(cfg.seed + 1), clip=cfg.sample_clip)
    save_grid(x, out / "samples.png")
    data = load_dataset(cfg.dataset, "test", root=cfg.data_root).images[:1000]
    err = spectra_plot(data, x.cpu(), out / "spectra.png")
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    print(f"trained {state['step']} steps (final loss {last['loss']:.4f}); "
          f"spectra mean |log10 ratio| {err:.3f}; wrote {out / 'samples.png'} and {out / 'spectra.png'}")
