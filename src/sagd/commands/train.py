"""``sagd train``: train a model from a YAML config, flags overriding it; ``--resume`` continues a run."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
import yaml

from ..config import CPU_AUTO, MIXED_PRECISION, TrainConfig, load_config
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
    p.add_argument("--process", metavar="SPEC", help="forward process: sagd (default: the spectrum's noise), or blurring, "
                                                      "inverse_heat with keys, e.g. blurring:sigma_blur_max=20,min_scale=0.001")
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
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the network (inductor; on a CPU its C++ kernels); --no-compile: never, "
                        "also not by the CPU's automatic choice (config.CPU_AUTO)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels-last weights; --no-channels-last: never, also not automatically on a CPU")
    p.add_argument("--mixed-precision", choices=MIXED_PRECISION,
                   help="auto: bf16 on GPUs that have it, else none; bf16 on a CPU is opt-in (changes the numbers)")
    p.set_defaults(func=run)


def overrides(args: argparse.Namespace, keys) -> dict:
    """The config values given on the command line (unset flags are ``None`` and ignored)."""
    return {_RENAMED.get(k, k): getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def on_cpu() -> bool:
    """Whether ``sagd train`` will run on the CPU (Accelerate's choice: no CUDA, or ``ACCELERATE_USE_CPU``)."""
    return not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")


def cpu_auto(args: argparse.Namespace) -> dict:
    """``config.CPU_AUTO``'s settings for a new run on a CPU, less those a flag or the config file sets."""
    if not on_cpu():
        return {}
    given = set(yaml.safe_load(Path(args.config).read_text()) or {}) if args.config else set()
    return {k: v for k, v in CPU_AUTO.items() if getattr(args, k, None) is None and k not in given}


def run(args: argparse.Namespace) -> None:
    from ..train import train

    keys = ("dataset", "data_root", "pad_to", "process", "spectrum", "seed", "minutes", "schedule", "noise", "prediction",
            "omission", "model", "vae", "latents", "class_conditional", "steps", "batch_size", "lr", "compile",
            "channels_last", "mixed_precision", "out")
    if args.resume:
        if args.config:
            raise ValueError("--config and --resume exclude each other: a resumed run uses its own config.yaml")
        cfg = load_config(Path(args.resume) / "config.yaml").replace(**overrides(args, keys), out=args.resume)
    else:
        cfg = load_config(args.config) if args.config else TrainConfig()
        cfg = cfg.replace(**cpu_auto(args), **overrides(args, keys))
    out = train(cfg, resume=bool(args.resume))
    print(f"run folder: {out}")
