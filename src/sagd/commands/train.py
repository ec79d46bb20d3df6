"""``sagd train``: train a model from a YAML config, flags overriding it; ``--resume`` continues a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import TrainConfig, load_config
from ..diffusion import PREDICTIONS
from ..diffusion.process import NOISE_MODES
from ..diffusion.schedules import SCHEDULES
from ..models import PRESETS

# flag dest -> config key, for flags whose names differ from the key
_RENAMED = {"minutes": "max_minutes"}


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by the commands that train: data, spectrum, seed, time budget."""
    p.add_argument("--dataset", metavar="NAME", help="data set spec, e.g. fashion_mnist, digits, grf:alpha=-1,size=16")
    p.add_argument("--data-root", metavar="DIR", help="folder searched first for on-disk data sets")
    p.add_argument("--pad-to", type=int, metavar="N", help="pad images with background to N×N (e.g. 28 -> 32)")
    p.add_argument("--spectrum", metavar="SPEC", help="noise spectrum, e.g. power_law:alpha=-0.5*band_stop:low=0.3,high=0.5")
    p.add_argument("--seed", type=int, help="seed of the run's generators")
    p.add_argument("--minutes", type=float, help="stop after this much wall-clock time (a checkpoint is written)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a diffusion model",
        description="Train a model. Values come from --config (default: TrainConfig's), then the flags. "
                    "--resume DIR continues the newest checkpoint of DIR exactly, with DIR/config.yaml "
                    "and any flags given (e.g. a larger --steps).",
    )
    p.add_argument("--config", metavar="FILE", help="YAML config (see configs/)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="DIR", help="run folder to create, e.g. runs/NAME")
    where.add_argument("--resume", metavar="DIR", help="continue the run in DIR")
    add_run_flags(p)
    p.add_argument("--schedule", choices=sorted(SCHEDULES))
    p.add_argument("--noise", choices=NOISE_MODES, help="exact: Σ^{1/2}ε; per_draw: the paper's per-sample normalisation")
    p.add_argument("--prediction", choices=PREDICTIONS)
    p.add_argument("--omission", choices=("noise_only", "project"), help="project: also remove unsupported bands from x0")
    p.add_argument("--model", metavar="PRESET|FILE.json",
                   help=f"backbone: {', '.join(PRESETS)}, or a diffusers UNet2DModel/DiTTransformer2DModel config file")
    p.add_argument("--vae", metavar="DIR", help="diffusers AutoencoderKL folder: train in its latent space")
    p.add_argument("--latents", metavar="DIR", help="the train split's latents from sagd encode (with --vae)")
    p.add_argument("--class-conditional", action="store_true", default=None, help="condition on labels (CFG-ready)")
    p.add_argument("--steps", type=int, metavar="N", help="optimizer steps in total")
    p.add_argument("--batch-size", type=int, metavar="N", help="images per process and micro-step")
    p.add_argument("--lr", type=float)
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the network")
    p.add_argument("--channels-last", action="store_true", default=None, help="channels-last weights (GPUs)")
    p.set_defaults(func=run)


def overrides(args: argparse.Namespace, keys) -> dict:
    """The config values given on the command line (unset flags are ``None`` and ignored)."""
    return {_RENAMED.get(k, k): getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def run(args: argparse.Namespace) -> None:
    from ..train import train

    keys = ("dataset", "data_root", "pad_to", "spectrum", "seed", "minutes", "schedule", "noise", "prediction",
            "omission", "model", "vae", "latents", "class_conditional", "steps", "batch_size", "lr", "compile",
            "channels_last", "out")
    if args.resume:
        if args.config:
            raise ValueError("--config and --resume exclude each other: a resumed run uses its own config.yaml")
        cfg = load_config(Path(args.resume) / "config.yaml").replace(**overrides(args, keys), out=args.resume)
    else:
        cfg = load_config(args.config) if args.config else TrainConfig()
        cfg = cfg.replace(**overrides(args, keys))
    out = train(cfg, resume=bool(args.resume))
    print(f"run folder: {out}")
