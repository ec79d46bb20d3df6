"""``sagd sample``: draw samples from a trained run's EMA weights; writes a PNG grid and an .npz."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from .. import diffusion
from ..config import TrainConfig
from ..diffusion import METHODS
from ..diffusion.fitted_grids import FIT_BATCH


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
    p.add_argument("--grid", choices=("default", "optimized", "fitted"), default="default",
                   help="time grid: the method's default, one optimised for the run's spectrum and its training "
                        "data's power spectrum on the exact Gaussian evaluator, or one fitted to the run's own network "
                        "(deterministic methods; cached; docs/samplers.md)")
    p.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance scale (class-conditional runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN/generated)")
    p.set_defaults(func=run)


def optimized_run_grid(cfg: TrainConfig, proc: diffusion.VPProcess, method: str, steps: int,
                       data_root: str | None = None) -> torch.Tensor:
    """The grid ``(steps + 1,)`` optimised for ``proc`` and the mean and power spectrum of ``cfg``'s training set."""
    from ..data import load_dataset
    from ..metrics.reference import cache_dir

    if cfg.vae:
        raise ValueError("--grid optimized needs a pixel-space run (this one diffuses VAE latents)")
    train = load_dataset(cfg.dataset, "train", root=data_root or cfg.data_root)
    data = diffusion.GaussianData.from_images(train.images)
    return diffusion.optimized_grid(proc, data, method, steps, cache_dir() / "grids")


def fitted_run_grid(run_, method: str, steps: int, guidance: float = 1.0) -> torch.Tensor:
    """The grid ``(steps + 1,)`` fitted to the EMA network of ``run_`` (a ``run.Run``) as it samples
    (``diffusion.fitted_grid``), cached under the checkpoint's sha256 of its EMA weights."""
    from ..metrics.reference import cache_dir
    from ..run import sampler_denoiser

    cfg = run_.cfg
    if not isinstance(run_.proc, diffusion.VPProcess):
        raise ValueError("--grid fitted fits grids for SAGD's process; this run's is another: use the default")
    weights = run_.state.get("files", {}).get("ema.safetensors", {}).get("sha256")
    if weights is None:
        raise ValueError("--grid fitted needs a checkpoint that records the sha256 of its EMA weights (older ones do not)")
    labels = None if run_.net.num_classes is None else torch.arange(FIT_BATCH, device=run_.device) % run_.net.num_classes
    denoiser = sampler_denoiser(run_.net, run_.proc, cfg.prediction, labels, guidance, cfg.sample_clip)
    model_id = f"{weights}-{cfg.prediction}-clip{cfg.sample_clip}-guidance{guidance}"
    return diffusion.fitted_grid(denoiser, run_.proc, method, steps, model_id, cache_dir() / "fitted_grids",
                                 device=run_.device)


def run(args: argparse.Namespace) -> None:
    from ..run import load_run
    from ..train import save_grid

    if args.n < 1 or (args.sampling_steps is not None and args.sampling_steps < 1):
        raise ValueError("--n and --sampling-steps must be >= 1")
    run_ = load_run(args.run, "cuda" if torch.cuda.is_available() else "cpu")
    method = args.method or run_.cfg.sample_method
    steps = args.sampling_steps or run_.cfg.sample_steps
    g = torch.Generator(run_.device).manual_seed(args.seed)
    t_grid = {"default": lambda: None, "optimized": lambda: optimized_run_grid(run_.cfg, run_.proc, method, steps),
              "fitted": lambda: fitted_run_grid(run_, method, steps, args.guidance)}[args.grid]()
    x, labels = run_.sample(args.n, g, method, steps, args.guidance, progress=True, t_grid=t_grid)
    out = Path(args.out or Path(args.run) / "generated")
    out.mkdir(parents=True, exist_ok=True)
    save_grid(x, out / "samples.png")
    extra = {} if labels is None else {"labels": labels.cpu().numpy()}
    np.savez(out / "samples.npz", images=x.cpu().numpy(), step=run_.step, method=method, steps=steps,
             guidance=args.guidance, grid=args.grid, **extra)
    print(f"wrote {out / 'samples.png'} and {out / 'samples.npz'} ({args.n} samples, step {run_.step}, {method} "
          f"{steps} steps = {diffusion.nfe(method, steps)} NFE, {args.grid} grid)")
