"""Training throughput: sagd's step with isotropic vs power-law noise, and a plain diffusers loop.

All three variants train the same ``tiny`` UNet (same preset, same initial weights) on batches
of the same size drawn the same way, and each step does the same work around the model: draw a
batch, noise it, forward, MSE, backward, clip, AdamW, EMA. They differ only in what sagd adds:

* ``sagd isotropic``: ``Trainer.train_step`` with ``spectrum: isotropic`` (Accelerate, the
  ``Network`` wrapper, ``Σ = I``: the noise operators return their input, no FFT);
* ``sagd power_law``: the same with ``power_law:alpha=-0.5``;
* ``diffusers loop``: ``UNet2DModel`` + ``DDPMScheduler.add_noise`` + ``F.mse_loss``;
* ``sagd isotropic, compiled``: ``sagd isotropic`` with ``compile: true`` (inductor; C++ kernels on a CPU),
  plus ``channels_last`` with ``--channels-last``; its warm-up steps compile (``--no-compiled``: leave it out).

Variants are timed in interleaved rounds (so load on the machine hits them alike) and the median
over rounds is reported. Writes ``benchmarks/results/train_throughput.{json,md}``.

    python benchmarks/train_throughput.py [--dataset fashion_mnist] [--batch-size 64] [--rounds 7]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

from common import RESULTS, machine, write_table
from sagd.config import TrainConfig
from sagd.data import random_batches
from sagd.ema import EMA
from sagd.train import Trainer

COMPILED = "sagd isotropic, compiled"


def sagd_step(spectrum: str, args, out: str, **fast):
    cfg = TrainConfig(out=out, dataset=args.dataset, spectrum=spectrum, model="tiny", batch_size=args.batch_size,
                      warmup=0, mixed_precision="no", seed=0, **fast)
    trainer = Trainer(cfg.validate())
    return trainer, trainer.train_step


def diffusers_step(trainer: Trainer, args):
    """A plain diffusers training step on a copy of ``trainer``'s UNet and data."""
    unet = copy.deepcopy(trainer.network.backbone)
    ema = EMA(unet, 0.999)
    opt = torch.optim.AdamW(unet.parameters(), lr=2e-4)
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    g = torch.Generator().manual_seed(0)
    batches = random_batches(trainer.data, args.batch_size, torch.Generator().manual_seed(0))

    def step():
        x0, _ = next(batches)
        noise = torch.randn(x0.shape, generator=g)
        timesteps = torch.randint(0, 1000, (x0.shape[0],), generator=g)
        loss = F.mse_loss(unet(scheduler.add_noise(x0, noise, timesteps), timesteps).sample, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update_parameters(unet)
        return loss.detach()

    return step


def timed(step, n: int) -> float:
    """Seconds for ``n`` steps."""
    start = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=5, help="steps per variant per round")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--compiled", action=argparse.BooleanOptionalAction, default=True,
                   help="also time sagd isotropic compiled (default on)")
    p.add_argument("--channels-last", action="store_true", help="the compiled variant also channels-last")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        iso, iso_step = sagd_step("isotropic", args, f"{tmp}/iso")
        _, plw_step = sagd_step("power_law:alpha=-0.5", args, f"{tmp}/plw")
        variants = {"sagd isotropic": iso_step, "sagd power_law": plw_step, "diffusers loop": diffusers_step(iso, args)}
        if args.compiled:
            fast = {"compile": True, "channels_last": args.channels_last}
            variants[COMPILED] = sagd_step("isotropic", args, f"{tmp}/compiled", **fast)[1]
        for step in variants.values():  # warm-up
            timed(step, 2)
        seconds = {name: [] for name in variants}
        for r in range(args.rounds):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in order:
                seconds[name].append(timed(variants[name], args.steps))
    images = args.batch_size * args.steps
    rates = {name: [images / s for s in secs] for name, secs in seconds.items()}
    median = {name: statistics.median(r) for name, r in rates.items()}
    result = {
        "benchmark": "train_throughput",
        "model": "tiny",
        "dataset": args.dataset,
        "image_shape": list(iso.data.shape),
        "batch_size": args.batch_size,
        "steps_per_round": args.steps,
        "rounds": args.rounds,
        "images_per_s_median": median,
        "images_per_s_rounds": rates,
        "ratios": {
            "power_law / isotropic": median["sagd power_law"] / median["sagd isotropic"],
            "sagd isotropic / diffusers loop": median["sagd isotropic"] / median["diffusers loop"],
            "sagd power_law / diffusers loop": median["sagd power_law"] / median["diffusers loop"],
            **({f"{COMPILED} / diffusers loop": median[COMPILED] / median["diffusers loop"],
                f"{COMPILED} / sagd isotropic": median[COMPILED] / median["sagd isotropic"]} if args.compiled else {}),
        },
        "compiled_settings": {"compile": True, "channels_last": args.channels_last} if args.compiled else None,
        "machine": machine(),
    }
    (RESULTS / "train_throughput.json").write_text(json.dumps(result, indent=1) + "\n")
    rows = [
        f"{args.dataset} {tuple(iso.data.shape)}, batch {args.batch_size}, {args.rounds} interleaved rounds of "
        f"{args.steps} steps, median; {result['machine']['torch_threads']} torch threads, "
        f"load average {result['machine']['load_average_1min']:.1f}.",
        "",
        "| variant | images/s (median) | min | max | relative to diffusers loop |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in rates.items():
        rows.append(f"| {name} | {median[name]:.1f} | {min(r):.1f} | {max(r):.1f} | "
                    f"{median[name] / median['diffusers loop']:.3f} |")
    rows += ["", f"power_law / isotropic: {result['ratios']['power_law / isotropic']:.3f}"]
    if args.compiled:
        rows.append(f"compiled ({'compile + channels_last' if args.channels_last else 'compile'}) / plain sagd "
                    f"isotropic: {result['ratios'][f'{COMPILED} / sagd isotropic']:.3f}")
    write_table("train_throughput", "Training throughput (tiny UNet)", rows, result)

if __name__ == "__main__":
    main()
