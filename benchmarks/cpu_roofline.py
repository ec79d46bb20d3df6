"""CPU roofline (issue 26): the FLOPs of each phase of a suite run, the core's measured peak, and the fraction of
that peak each phase reaches, today's path ("before") against the fast float32 path ("after"), in one run.

Phases, as the suite's ``cpu`` budget runs them (``benchmarks/suite.py``, ``experiments.BUDGETS["cpu"]``):

* **train**: one ``Trainer.train_step`` (the tiny UNet on Fashion-MNIST padded to 32×32, batch 64: noise, forward,
  loss, backward, clipping, fused AdamW, EMA);
* **sample**: DPM-Solver++(2M) steps through ``sagd.run.generate``, per image and network evaluation;
* **inception**: the FID Inception-v3 forward (taps 768 and 2048, ``sagd.metrics.InceptionV3``), per image.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``: the matrix products and convolutions, forward
and backward (2 per multiply-add); element-wise work, norms and the optimizer are not counted, so a phase's
fraction of peak is that of its arithmetic core. The UNet presets are counted on the meta device (no arithmetic
runs), the Inception network on one image. The peak is the best of a few large single-threaded (``--threads``)
float32 GEMMs, and bf16 GEMMs where oneDNN has bf16 kernels for the CPU (AVX512-BF16 or AMX).

Every variant of a phase is timed in interleaved rounds (order reversed every other round; the median is
reported), after warm-up calls that compile what is compiled. ``--warm`` only compiles (fills inductor's on-disk
cache, so that the timed run spends its minutes measuring): run it first, at any load.

    python benchmarks/cpu_roofline.py --flops-only   # FLOP counts only, no timing (seconds; any load)
    python benchmarks/cpu_roofline.py --warm         # compile every variant once, no timing (minutes; any load)
    python benchmarks/cpu_roofline.py --quick        # about 4 minutes on one idle core, after --warm
    python benchmarks/cpu_roofline.py                # more rounds and variants (about 10 minutes)

Writes ``benchmarks/results/cpu_roofline.{json,md}`` (``--flops-only``: ``cpu_roofline_flops.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_table  # noqa: E402

SHAPE = (1, 32, 32)  # the cpu budget's images (experiments.SHAPE)
BATCH = 64  # its training batch
SAMPLE_BATCH = 50  # the suite's CPU sampler batch (suite.SAMPLE_BATCH["cpu"])
FAST_SAMPLE_BATCH = 200
SAMPLER = ("dpmpp_2m", 25)


def static_shapes() -> None:
    """Every batch size its own static graph, as in a suite run (which sees one size per phase); without this,
    dynamo recompiles a network that met a second batch size for any size, a slower graph than the run's."""
    torch._dynamo.config.automatic_dynamic_shapes = False
    torch._dynamo.config.recompile_limit = 64


# ---------------------------------------------------------------------------- counting
def counted(fn) -> int:
    """FLOPs of ``fn()`` as ``FlopCounterMode`` counts them."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def unet_flops(preset: str, batch: int = BATCH, shape=SHAPE) -> dict:
    """FLOPs of one training step (forward + backward of the loss) and of one forward, per batch, on the meta device."""
    import torch.nn.functional as F

    from sagd.models import Network

    with torch.device("meta"):
        net = Network(preset, shape)
        x, t = torch.randn(batch, *shape), torch.rand(batch)
    forward = counted(lambda: net(x, t))

    def step():
        F.mse_loss(net(x, t), x).backward()

    return {"train_step": counted(step), "forward": forward, "batch": batch,
            "parameters": sum(p.numel() for p in net.parameters())}


def inception_flops() -> int:
    """FLOPs of the Inception forward of one image through both suite taps (768, 2048)."""
    from sagd.metrics.inception import InceptionV3, preprocess

    net = InceptionV3()
    x = preprocess(torch.zeros(1, *SHAPE))
    with torch.no_grad():
        return counted(lambda: net.taps(x, ["768", "2048"]))


def flop_table() -> dict:
    from sagd.models import PRESETS

    return {"unet_presets": {p: unet_flops(p) for p in PRESETS}, "inception_per_image": inception_flops(),
            "shape": list(SHAPE), "batch": BATCH}


# ---------------------------------------------------------------------------- peak
def bf16_gemm_supported() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def gemm_peak(dtype: torch.dtype, n: int, repeats: int) -> float:
    """Best GFLOP/s of ``n × n`` by ``n × n`` products in ``dtype`` over ``repeats`` (after one warm-up)."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=g).to(dtype) for _ in range(2))
    torch.mm(a, b)
    best = min(timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- phases
def suite_config(out: str, **changes):
    """The ``cpu`` budget's training config of A's isotropic arm, seed 0 (``suite.train_config``), with ``changes``."""
    from experiments import arms_a
    from suite import train_config

    return train_config("cpu", arms_a()[0], 0, Path(out)).replace(**changes)


def gradient_deviation(changes: dict, batch: int = 8) -> float:
    """The largest difference between the tiny UNet's parameter gradients (one loss at the suite's shape) computed
    with ``changes`` (``compile``, ``channels_last``) and plainly, relative to the largest gradient of that parameter
    or 1e-3 of the largest gradient of all, whichever is larger (the attention's key bias has a gradient of exactly 0
    in exact arithmetic: round-off on both sides). Float32 round-off is ~1e-6; a variant far above 1e-3 computes
    other gradients and its timing means nothing (compiled training on a CPU did, before ``models.compile_network``)."""
    import torch.nn.functional as F

    from sagd.models import Network, compile_network

    torch.manual_seed(0)
    plain = Network("tiny", SHAPE)
    fast = Network("tiny", SHAPE)
    fast.load_state_dict(plain.state_dict())
    if changes.get("channels_last"):
        fast = fast.to(memory_format=torch.channels_last)
    if changes.get("compile"):
        compile_network(fast, "cpu")
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(batch, *SHAPE, generator=g), torch.rand(batch, generator=g)
    for net in (plain, fast):
        F.mse_loss(net(x, t), x).backward()
    scale = max(p.grad.abs().max().item() for p in plain.parameters())
    return max((b.grad - a.grad).abs().max().item() / max(a.grad.abs().max().item(), 1e-3 * scale)
               for a, b in zip(plain.parameters(), fast.parameters()))


def train_variants(tmp: str, quick: bool) -> dict:
    """``{name: (step, settings)}``: ``Trainer.train_step`` of the suite's config with each setting."""
    from sagd.train import Trainer

    # compile with channels_last computes wrong gradients on a CPU (torch 2.13): sagd train refuses it
    settings = {"eager (today)": {}, "compile": {"compile": True}, "channels_last": {"channels_last": True}}
    if bf16_gemm_supported():  # opt-in only: it changes the numbers (not a default before a paired FID check)
        settings["bf16 autocast (opt-in)"] = {"mixed_precision": "bf16"}
        if not quick:
            settings["compile + bf16 autocast (opt-in)"] = {"compile": True, "mixed_precision": "bf16"}
    out = {}
    for i, (name, changes) in enumerate(settings.items()):
        # Accelerate's precision is one per process: bf16 here is the CPU autocast it would wrap the network in
        config = {k: v for k, v in changes.items() if k != "mixed_precision"}
        trainer = Trainer(suite_config(f"{tmp}/train{i}", mixed_precision="no", **config))
        out[name] = (autocast(trainer.train_step) if "mixed_precision" in changes else trainer.train_step, changes)
    return out


def autocast(step):
    """``step`` under CPU bf16 autocast."""
    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return step()
    return run


def untrained_run(tmp: str):
    """A run folder of the suite's config with its initial weights (one step: FLOPs do not depend on them)."""
    from sagd.train import train

    return train(suite_config(f"{tmp}/run", steps=1, probe_every=0, checkpoint_every=1, sample_n=1, sample_steps=1))


def sample_variants(run_dir: Path, quick: bool, steps: int) -> dict:
    """``{name: (call, images)}``: ``steps`` DPM-Solver++(2M) steps of a batch through ``sagd.run.generate``."""
    from sagd.run import generate, load_run

    settings = {"eager (today)": ({}, SAMPLE_BATCH), "compile": ({"compile": True}, SAMPLE_BATCH),
                f"compile, batch {FAST_SAMPLE_BATCH}": ({"compile": True}, FAST_SAMPLE_BATCH)}
    if not quick:
        settings["compile + channels_last"] = ({"compile": True, "channels_last": True}, SAMPLE_BATCH)
        settings[f"eager, batch {FAST_SAMPLE_BATCH}"] = ({}, FAST_SAMPLE_BATCH)
    out = {}
    for name, (changes, batch) in settings.items():
        run = load_run(run_dir, "cpu", **changes)
        g = torch.Generator().manual_seed(0)
        out[name] = (lambda run=run, batch=batch, g=g: generate(run.net, run.proc, run.cfg.prediction, batch,
                                                                SAMPLER[0], steps, g), batch, changes)
    return out


def inception_variants(quick: bool) -> dict:
    """``{name: (network, batch size)}``: today's Inception path (contiguous, ``CPU_BATCH``), channels-last, and a
    larger batch."""
    from sagd.metrics.inception import CPU_BATCH, InceptionV3

    out = {f"today (batch {CPU_BATCH})": (InceptionV3(), CPU_BATCH),
           f"channels_last (batch {CPU_BATCH})": (InceptionV3(channels_last=True), CPU_BATCH)}
    if not quick:
        out["batch 32"] = (InceptionV3(batch=32), 32)
    return out


def interleaved(calls: dict, rounds: int, repeat: int) -> dict:
    """Seconds per call of each of ``calls`` (median over ``rounds`` of ``repeat`` calls, order reversed on odd rounds)."""
    seconds = {name: [] for name in calls}
    for r in range(rounds):
        for name in (list(calls) if r % 2 == 0 else list(reversed(calls))):
            start = time.perf_counter()
            for _ in range(repeat):
                calls[name]()
            seconds[name].append((time.perf_counter() - start) / repeat)
    return {name: {"median": statistics.median(s), "rounds": s} for name, s in seconds.items()}


def measure(args, flops: dict, peak: dict) -> dict:
    """Time every variant of every phase; returns ``{phase: {variant: record}}``."""
    rounds = 3 if args.quick else 5
    tiny = flops["unet_presets"]["tiny"]
    images = torch.rand(args.inception_images, *SHAPE) * 2 - 1
    phases = {}
    with tempfile.TemporaryDirectory() as tmp:
        train = train_variants(tmp, args.quick)
        for step, _ in train.values():  # warm-up: compiles (from inductor's cache after --warm)
            for _ in range(2):
                step()
        times = interleaved({k: v[0] for k, v in train.items()}, rounds, 2 if args.quick else 3)
        phases["train"] = {name: {**times[name], "settings": train[name][1], "flops": tiny["train_step"],
                                  "images": BATCH} for name in train}
        for name, (_, changes) in train.items():
            if "mixed_precision" not in changes:
                phases["train"][name]["gradient_deviation"] = gradient_deviation(changes)

        run_dir = untrained_run(tmp)
        sample = sample_variants(run_dir, args.quick, args.sample_steps)
        for call, *_ in sample.values():
            call()
        times = interleaved({k: v[0] for k, v in sample.items()}, rounds, 1)
        phases["sample"] = {name: {**times[name], "settings": sample[name][2], "batch": sample[name][1],
                                   "flops": tiny["forward"] / BATCH * sample[name][1] * args.sample_steps,
                                   "images": sample[name][1] * args.sample_steps} for name in sample}

    inception = inception_variants(args.quick)
    for net, batch in inception.values():
        net(images[:batch], ("768", "2048"), batch)
    calls = {name: (lambda net=net, batch=batch: net(images, ("768", "2048"), batch)) for name, (net, batch) in inception.items()}
    times = interleaved(calls, rounds, 1)
    phases["inception"] = {name: {**times[name], "batch": inception[name][1],
                                  "flops": flops["inception_per_image"] * len(images), "images": len(images)}
                           for name in inception}
    for records in phases.values():
        for r in records.values():
            r["gflop_per_s"] = r["flops"] / r["median"] / 1e9
            r["images_per_s"] = r["images"] / r["median"]
            r["precision"] = "bf16" if r.get("settings", {}).get("mixed_precision") == "bf16" else "float32"
            r["fraction_of_peak"] = r["gflop_per_s"] / peak[f"{'bf16' if r['precision'] == 'bf16' else 'fp32'}_gflop_per_s"]
    return phases


def warm(args) -> None:
    """Compile every variant once (no timing): fills inductor's cache for the timed run."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, (step, _) in train_variants(tmp, quick=False).items():
            print(f"[warm] train: {name}", flush=True)
            step(), step()
        run_dir = untrained_run(tmp)
        for name, (call, *_) in sample_variants(run_dir, quick=False, steps=2).items():
            print(f"[warm] sample: {name}", flush=True)
            call()
        from sagd.config import TrainConfig  # train_throughput.py's compiled variant: unpadded 28×28
        from sagd.train import Trainer

        print("[warm] train_throughput.py: compile", flush=True)
        step = Trainer(TrainConfig(out=f"{tmp}/tp", model="tiny", batch_size=BATCH, warmup=0, mixed_precision="no",
                                   compile=True).validate()).train_step
        step(), step()


# ---------------------------------------------------------------------------- report
def report(result: dict) -> list[str]:
    peak, flops = result["peak"], result["flops"]
    rows = [f"One core ({result['threads']} torch thread{'s' if result['threads'] > 1 else ''}), "
            f"{'quick' if result['quick'] else 'full'} mode: {result['rounds']} interleaved rounds per phase, median.",
            "",
            f"Peak: float32 GEMM {peak['fp32_gflop_per_s']:.1f} GFLOP/s" +
            (f", bf16 GEMM {peak['bf16_gflop_per_s']:.1f} GFLOP/s" if peak.get("bf16_gflop_per_s") else
             " (no bf16 GEMM kernels on this CPU)") + f" ({peak['gemm_n']}² products).",
            "",
            "| preset | parameters | train step, batch 64 (GFLOP) | forward per image (MFLOP) |",
            "|---|---:|---:|---:|"]
    for name, f in flops["unet_presets"].items():
        rows.append(f"| {name} | {f['parameters'] / 1e6:.2f} M | {f['train_step'] / 1e9:.2f} | "
                    f"{f['forward'] / f['batch'] / 1e6:.1f} |")
    rows += ["", f"Inception forward (taps 768 + 2048): {flops['inception_per_image'] / 1e9:.2f} GFLOP per image.", "",
             "| phase | variant | precision | images/s | GFLOP/s | fraction of peak | speed-up | gradients vs eager |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for phase, records in result["phases"].items():
        base = next(iter(records.values()))["median"] / next(iter(records.values()))["images"]
        for name, r in records.items():
            dev = r.get("gradient_deviation")
            check = "-" if dev is None else f"{dev:.1e}" + (" **WRONG**" if dev > 1e-3 else "")
            rows.append(f"| {phase} | {name} | {r['precision']} | {r['images_per_s']:.1f} | {r['gflop_per_s']:.2f} | "
                        f"{r['fraction_of_peak']:.3f} | {base / (r['median'] / r['images']):.2f}× | {check} |")
    rows += ["", "Fraction of peak: of the float32 GEMM peak, of the bf16 one for bf16 rows. Gradients vs eager: the largest relative difference of the tiny UNet's parameter gradients, one loss "
             "at 32×32 (`gradient_deviation`); float32 round-off is about 1e-6, and a variant above 1e-3 (**WRONG**) "
             "computes something else: its speed does not count."]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--flops-only", action="store_true", help="count FLOPs, time nothing")
    mode.add_argument("--warm", action="store_true", help="compile every variant once, time nothing")
    mode.add_argument("--quick", action="store_true", help="fewer rounds and variants (about 4 min on an idle core)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core)")
    p.add_argument("--sample-steps", type=int, default=5, help="sampler steps per timed call")
    p.add_argument("--inception-images", type=int, help="images per timed Inception call (default 16; quick 8)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    static_shapes()
    args.inception_images = args.inception_images or (8 if args.quick else 16)
    if args.warm:
        return warm(args)
    flops = flop_table()
    if args.flops_only:
        out = {"benchmark": "cpu_roofline_flops", "flops": flops, "machine": machine()}
        (RESULTS / "cpu_roofline_flops.json").write_text(json.dumps(out, indent=1) + "\n")
        print(json.dumps(flops, indent=1))
        return
    n, repeats = (1536, 3) if args.quick else (2048, 5)
    peak = {"gemm_n": n, "fp32_gflop_per_s": gemm_peak(torch.float32, n, repeats),
            "bf16_gflop_per_s": gemm_peak(torch.bfloat16, n, repeats) if bf16_gemm_supported() else None}
    started = time.time()
    phases = measure(args, flops, peak)
    result = {"benchmark": "cpu_roofline", "quick": args.quick, "threads": args.threads,
              "rounds": 3 if args.quick else 5, "sample_steps_per_call": args.sample_steps, "flops": flops,
              "peak": peak, "phases": phases, "seconds": round(time.time() - started, 1), "machine": machine()}
    (RESULTS / "cpu_roofline.json").write_text(json.dumps(result, indent=1) + "\n")
    write_table("cpu_roofline", "CPU roofline: fraction of one core's peak per phase, before and after", report(result),
                result)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
