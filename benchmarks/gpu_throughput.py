"""Training throughput on one GPU: sagd (SAGD and isotropic) against a plain diffusers loop.

For each backbone (UNet ``base`` on 3×32×32 images, ``dit-s/2`` on 4×32×32 inputs, the latent
size of 256² images under a Stable Diffusion VAE) three loops train the same network (same preset,
same initial weights) on batches of the same size drawn the same way from a tensor on the device:

* ``sagd power_law``: ``Trainer.train_step`` with ``spectrum: power_law:alpha=-0.5`` (Accelerate,
  the ``Network`` wrapper, colored noise through ``rfft``/``irfft``, EMA, clipping);
* ``sagd isotropic``: the same with ``spectrum: isotropic`` (the same code; ``Σ = I``, whose operators skip the FFT);
* ``diffusers loop``: the loop of diffusers' ``train_unconditional.py`` example: the bare backbone,
  ``DDPMScheduler.add_noise`` with white noise, MSE, clipping, AdamW, ``EMAModel``.

All three use the same speed settings: bf16 autocast on GPUs that have it, fused AdamW on CUDA (sagd: everywhere),
and, when asked, ``--compile`` (``torch.compile`` of the network) and ``--channels-last``.
Variants are timed in interleaved rounds (alternating order) after a warm-up, synchronising the
device around each round; the JSON holds every round and the medians. On CUDA it also counts each
variant's synchronising calls per step (``torch.cuda.set_sync_debug_mode``: sagd's should be 0),
counts the operators each step dispatches (views excepted: about the kernels it launches),
profiles a few steps of each (``torch.profiler``: the kernels launched and the device's busy time
per step, against the step's wall time: where a loop is slower, whether the GPU or the host sets
the pace, and which kernels differ), and checks once that a NaN step of ``Trainer.train_step``
leaves the weights, the optimizer's state and the EMA bit for bit as they were and is reported at
the next step (``guard``).

    PYTHONPATH=src python benchmarks/gpu_throughput.py --out DIR [--compile] [--channels-last]
    PYTHONPATH=src python benchmarks/gpu_throughput.py --out DIR --quick   # tiny sizes: a CPU check

Writes ``DIR/gpu_throughput.json`` and ``DIR/gpu_throughput.md``.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from common import machine
from sagd import diffusion
from sagd.config import TrainConfig
from sagd.data import random_batches
from sagd.train import Trainer

SPECTRUM = "power_law:alpha=-0.5"
FULL = {"base": "grf:size=32,channels=3,n=4096", "dit-s/2": "grf:size=32,channels=4,n=4096"}
QUICK = {"tiny": "grf:size=8,channels=1,n=256", "dit-tiny": "grf:size=8,channels=4,n=256"}


def sagd_trainer(model: str, dataset: str, spectrum: str, args, out: str, **changes) -> Trainer:
    cfg = TrainConfig(out=out, dataset=dataset, spectrum=spectrum, model=model, batch_size=args.batch_size,
                      warmup=0, seed=0, compile=args.compile, channels_last=args.channels_last, **changes)
    return Trainer(cfg.validate())


def diffusers_step(trainer: Trainer, args):
    """One step of diffusers' example training loop on a copy of ``trainer``'s backbone and data."""
    from diffusers import DDPMScheduler
    from diffusers.training_utils import EMAModel

    device = trainer.acc.device
    model = copy.deepcopy(trainer.network.backbone)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.compile:
        model.compile()
    ema = EMAModel(model.parameters(), decay=0.999, foreach=True)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, fused=device.type == "cuda")
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=trainer.acc.mixed_precision == "bf16")
    g = torch.Generator(device).manual_seed(1)
    batches = random_batches(trainer.data, args.batch_size, torch.Generator(device).manual_seed(0))
    dit = type(model).__name__.startswith("DiT")

    def step():
        x0, _ = next(batches)
        noise = torch.randn(x0.shape, generator=g, device=device)
        timesteps = torch.randint(0, 1000, (x0.shape[0],), generator=g, device=device)
        labels = torch.zeros(x0.shape[0], dtype=torch.long, device=device) if dit else None
        with autocast:
            pred = model(scheduler.add_noise(x0, noise, timesteps), timesteps, class_labels=labels).sample
        loss = F.mse_loss(pred.float(), noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.step(model.parameters())
        return loss.detach()

    return step


def timed(step, n: int, device: torch.device) -> float:
    """Seconds for ``n`` steps, the device synchronised before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(n):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def syncs(step, n: int, device: torch.device) -> float | None:
    """Synchronising CUDA calls per call of ``step`` (``torch.cuda.set_sync_debug_mode``); ``None`` off CUDA."""
    if device.type != "cuda":
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _ in range(n):
                step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught) / n


class OpCount(TorchDispatchMode):
    """Counts the aten operators dispatched inside it, views excepted: about the kernels a step launches."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += not func.is_view
        return func(*args, **(kwargs or {}))


def ops(step) -> int:
    """Operators (not views) one call of ``step`` dispatches."""
    with OpCount() as count:
        step()
    return count.n


def device_time(step, n: int, device: torch.device) -> dict | None:
    """Kernels (and copies) the device runs per call of ``step``, their summed time in ms, and the eight names that
    take longest (ms per call), from ``torch.profiler`` over ``n`` calls; ``None`` off CUDA. A busy time well
    below the step's wall time means the host, not the GPU, sets the pace."""
    if device.type != "cuda":
        return None
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        timed(step, n, device)
    us = collections.Counter()
    launched = 0
    for e in prof.events():
        if e.device_type == DeviceType.CUDA:
            us[e.name[:160]] += e.time_range.elapsed_us()
            launched += 1
    return {"kernels_per_step": launched / n, "busy_ms_per_step": sum(us.values()) / 1e3 / n,
            "top_ms_per_step": {name: t / 1e3 / n for name, t in us.most_common(8)}}


def guard(tmp: str) -> dict:
    """A NaN loss at step 3 of a ``tiny`` run with ``skip_nonfinite: 1``: whether the weights, the optimizer's
    state and the EMA stayed bit for bit, whether the host had not heard of it after step 3 and had after step 4."""
    trainer = sagd_trainer("tiny", QUICK["tiny"], "isotropic", argparse.Namespace(
        batch_size=8, compile=False, channels_last=False), f"{tmp}/guard", skip_nonfinite=1)
    said = []
    trainer.guard.say = said.append
    real = diffusion.loss
    diffusion.loss = lambda *a, **k: real(*a, **k) * (float("nan") if trainer.step == 3 else 1.0)
    try:
        trainer.train_step(), trainer.train_step()
        before = state_bytes(trainer)
        trainer.train_step()
        unchanged, heard_at_3 = state_bytes(trainer) == before, list(said)
        trainer.train_step()
    finally:
        diffusion.loss = real
    return {"device": str(trainer.acc.device), "dropped_step_bit_identical": unchanged,
            "reported_after_step_3": heard_at_3, "reported_after_step_4": said}


def state_bytes(trainer: Trainer) -> list[bytes]:
    tensors = [*trainer.net.parameters(), *trainer.ema.module.parameters(), trainer.ema.n_averaged]
    tensors += [t for s in trainer.opt.state_dict()["state"].values() for t in s.values()]
    return [t.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes() for t in tensors]


def measure(model: str, dataset: str, args, tmp: str) -> dict:
    sagd_plw = sagd_trainer(model, dataset, SPECTRUM, args, f"{tmp}/{model}-plw")
    sagd_iso = sagd_trainer(model, dataset, "isotropic", args, f"{tmp}/{model}-iso")
    device = sagd_iso.acc.device
    variants = {"sagd power_law": sagd_plw.train_step, "sagd isotropic": sagd_iso.train_step,
                "diffusers loop": diffusers_step(sagd_iso, args)}
    for step in variants.values():
        timed(step, args.warmup, device)
    syncs_per_step = {name: syncs(step, 3, device) for name, step in variants.items()}
    seconds = {name: [] for name in variants}
    for r in range(args.rounds):
        for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
            seconds[name].append(timed(variants[name], args.steps, device))
    rates = {name: [args.batch_size * args.steps / s for s in secs] for name, secs in seconds.items()}
    # counted after the timing: a dispatch mode around compiled code would make it recompile (None then)
    ops_per_step = {name: None if args.compile else ops(step) for name, step in variants.items()}
    profiled = {name: device_time(step, 5, device) for name, step in variants.items()}
    median = {name: statistics.median(r) for name, r in rates.items()}
    net = sagd_iso.network
    return {
        "model": model, "backbone": type(net.backbone).__name__, "dataset": dataset,
        "input_shape": list(sagd_iso.data.shape), "parameters": sum(p.numel() for p in net.parameters()),
        "mixed_precision": sagd_iso.acc.mixed_precision,
        "images_per_s_median": median, "images_per_s_rounds": rates, "syncs_per_step": syncs_per_step,
        "ops_per_step": ops_per_step, "device_time": profiled,
        "ratios": {"power_law / isotropic": median["sagd power_law"] / median["sagd isotropic"],
                   "sagd isotropic / diffusers loop": median["sagd isotropic"] / median["diffusers loop"],
                   "sagd power_law / diffusers loop": median["sagd power_law"] / median["diffusers loop"]},
    }


def table(result: dict) -> str:
    a = result["settings"]
    rows = [f"### Training throughput on {result['machine']['cuda_device'] or 'CPU'}", "",
            f"batch {a['batch_size']}, {a['rounds']} interleaved rounds of {a['steps']} steps after {a['warmup']} "
            f"warm-up steps, median images/s; compile={a['compile']}, channels_last={a['channels_last']}, "
            f"fused AdamW on CUDA.", "",
            "| backbone | input | precision | sagd power_law | sagd isotropic | diffusers loop | "
            "power_law / isotropic | sagd / diffusers |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in result["models"]:
        m = r["images_per_s_median"]
        rows.append(f"| `{r['model']}` ({r['parameters'] / 1e6:.1f} M) | {'×'.join(map(str, r['input_shape']))} | "
                    f"{r['mixed_precision']} | {m['sagd power_law']:.0f} | {m['sagd isotropic']:.0f} | "
                    f"{m['diffusers loop']:.0f} | {r['ratios']['power_law / isotropic']:.3f} | "
                    f"{r['ratios']['sagd isotropic / diffusers loop']:.3f} |")

    def per_variant(key: str) -> str:  # "`model` a / b / c" per backbone, in the variants' order, "-" where not counted
        return ", ".join(f"`{r['model']}` " + " / ".join("-" if n is None else f"{n:g}" for n in r[key].values())
                         for r in result["models"])

    def busy(r: dict) -> str:  # "`model` 41.2 ms of 57.3 (72 %), 450 kernels / ..." per backbone, "-" off CUDA
        cells = []
        for name, p in r["device_time"].items():
            if p is None:
                cells.append("-")
                continue
            wall = 1e3 * a["batch_size"] / r["images_per_s_median"][name]
            cells.append(f"{p['busy_ms_per_step']:.1f} ms of {wall:.1f} ({100 * p['busy_ms_per_step'] / wall:.0f} %), "
                         f"{p['kernels_per_step']:.0f} kernels")
        return f"`{r['model']}` " + " / ".join(cells)

    g = result["guard"]
    rows += ["", f"Operators dispatched per step, views excepted, about the kernels launched (sagd power_law / "
                 f"sagd isotropic / diffusers loop): {per_variant('ops_per_step')}.", "",
                 "Device busy per step (kernels and copies, `torch.profiler` over 5 steps) of the step's wall time "
                 "at the median rate (same order): " + "; ".join(busy(r) for r in result["models"]) + ".", "",
                 f"Synchronising CUDA calls per step (same order): {per_variant('syncs_per_step')}. A NaN step "
                 f"(`tiny`, {g['device']}): weights, optimizer state and EMA bit for bit unchanged: "
                 f"{g['dropped_step_bit_identical']}; reported at the next step: "
                 f"{not g['reported_after_step_3'] and len(g['reported_after_step_4']) == 1}."]
    mach = result["machine"]
    rows += ["", f"torch {mach['torch']}, commit {mach['git_commit'][:12]} (`benchmarks/gpu_throughput.py`).", ""]
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="folder for gpu_throughput.json and .md")
    p.add_argument("--quick", action="store_true", help="tiny backbones and sizes (tiny, dit-tiny on 8×8): a CPU check")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    p.add_argument("--channels-last", action="store_true", help="channels-last weights (convolutions)")
    p.add_argument("--batch-size", type=int, help="default 128 (quick: 8)")
    p.add_argument("--steps", type=int, help="steps per variant per round (default 40; quick: 2)")
    p.add_argument("--rounds", type=int, help="default 5 (quick: 2)")
    p.add_argument("--warmup", type=int, help="warm-up steps per variant (default 10, 30 with --compile; quick: 1)")
    args = p.parse_args()
    q = args.quick
    args.batch_size = args.batch_size or (8 if q else 128)
    args.steps = args.steps or (2 if q else 40)  # rounds of about 2 s: launch and clock jitter average out
    args.rounds = args.rounds or (2 if q else 5)
    args.warmup = args.warmup or (1 if q else 30 if args.compile else 10)
    models = QUICK if q else FULL
    settings = {k: getattr(args, k) for k in ("quick", "compile", "channels_last", "batch_size", "steps", "rounds",
                                              "warmup")}
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        checked = guard(tmp)
        print(f"guard: {checked}")
        result = {"benchmark": "gpu_throughput", "settings": settings, "guard": checked, "models": []}
        for model, dataset in models.items():  # written after each backbone: a run cut short keeps what finished
            result["models"].append(measure(model, dataset, args, tmp))
            result["machine"] = machine()
            (args.out / "gpu_throughput.json").write_text(json.dumps(result, indent=1) + "\n")
            (args.out / "gpu_throughput.md").write_text(table(result))
    print(table(result))

if __name__ == "__main__":
    main()
