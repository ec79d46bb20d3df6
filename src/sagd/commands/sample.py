"""``sagd sample``: draw samples from a trained run's EMA weights; writes a PNG grid and an .npz."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from .. import checkpoint, diffusion, resume
from ..config import load_config
from ..diffusion import METHODS
from ..models import Network
from ..spectral import SpectralCovariance


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sample", help="sample a trained run",
        description="Sample the EMA weights of a run's newest checkpoint. Writes samples.png and samples.npz "
                    "(images: float32 (N, C, H, W) in [-1, 1]; labels for class-conditional runs).",
    )
    p.add_argument("--run", metavar="DIR", required=True, help="a run folder written by sagd train")
    p.add_argument("--n", type=int, default=64, metavar="N", help="number of samples (default 64)")
    p.add_argument("--method", choices=sorted(METHODS), help="sampler (default: the run's sample_method)")
    p.add_argument("--sampling-steps", type=int, metavar="N", help="sampler steps (default: the run's sample_steps)")
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (class-conditional runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN/generated)")
    p.set_defaults(func=run)


def load_ema(run_dir: str | Path, device="cpu") -> tuple[Network, diffusion.VPProcess, dict]:
    """The EMA network (eval mode) and the process of ``run_dir``'s newest intact checkpoint, and its state.

    A damaged newer checkpoint is reported and skipped; a checkpoint of another run, or with
    non-finite weights, is a ``ValueError`` naming the file (``resume``).
    """
    cfg = load_config(Path(run_dir) / "config.yaml")
    ckpt = resume.find(run_dir, cfg.to_dict(), checkpoint.report)
    state = checkpoint.load_state(ckpt)
    resume.require(state, ckpt, ("num_classes",))
    cov = SpectralCovariance.from_state_dict(checkpoint.load_tensors(ckpt, "covariance"))
    net = Network(cfg.model, cov.shape, state["num_classes"])
    resume.load_into(net, ckpt, "ema")
    return net.to(device).eval(), diffusion.VPProcess(cov, cfg.schedule, cfg.noise), state


def run(args: argparse.Namespace) -> None:
    from ..train import generate, save_grid

    if args.n < 1 or (args.sampling_steps is not None and args.sampling_steps < 1):
        raise ValueError("--n and --sampling-steps must be >= 1")
    cfg = load_config(Path(args.run) / "config.yaml")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net, proc, state = load_ema(args.run, device)
    method = args.method or cfg.sample_method
    steps = args.sampling_steps or cfg.sample_steps
    g = torch.Generator(device).manual_seed(args.seed)
    x, labels = generate(net, proc, cfg.prediction, args.n, method, steps, g, args.guidance, cfg.sample_clip,
                         progress=True)
    out = Path(args.out or Path(args.run) / "generated")
    out.mkdir(parents=True, exist_ok=True)
    save_grid(x, out / "samples.png")
    extra = {} if labels is None else {"labels": labels.cpu().numpy()}
    np.savez(out / "samples.npz", images=x.cpu().numpy(), step=state["step"], method=method, steps=steps,
             guidance=args.guidance, **extra)
    print(f"wrote {out / 'samples.png'} and {out / 'samples.npz'} ({args.n} samples, step {state['step']}, {method} {steps} steps)")
