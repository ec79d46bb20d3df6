"""``sagd sample``: draw samples from a trained run's EMA weights; writes a PNG grid and an .npz."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ..diffusion import METHODS


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


def run(args: argparse.Namespace) -> None:
    from ..run import load_run
    from ..train import save_grid

    if args.n < 1 or (args.sampling_steps is not None and args.sampling_steps < 1):
        raise ValueError("--n and --sampling-steps must be >= 1")
    run_ = load_run(args.run, "cuda" if torch.cuda.is_available() else "cpu")
    method = args.method or run_.cfg.sample_method
    steps = args.sampling_steps or run_.cfg.sample_steps
    g = torch.Generator(run_.device).manual_seed(args.seed)
    x, labels = run_.sample(args.n, g, method, steps, args.guidance, progress=True)
    out = Path(args.out or Path(args.run) / "generated")
    out.mkdir(parents=True, exist_ok=True)
    save_grid(x, out / "samples.png")
    extra = {} if labels is None else {"labels": labels.cpu().numpy()}
    np.savez(out / "samples.npz", images=x.cpu().numpy(), step=run_.step, method=method, steps=steps,
             guidance=args.guidance, **extra)
    print(f"wrote {out / 'samples.png'} and {out / 'samples.npz'} ({args.n} samples, step {run_.step}, {method} {steps} steps)")
