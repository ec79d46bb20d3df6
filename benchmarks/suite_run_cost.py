"""What one run of the suite's ``cpu`` budget costs on one core, phase by phase, today's path ("before") against the
fast float32 path ("after"), interleaved in one session (issue 26).

A run of ``suite.py`` (``execute``) trains A's isotropic arm (tiny UNet, Fashion-MNIST padded to 32×32, 1500 steps
of batch 64, probes and checkpoints every 250 steps), draws 2000 samples with DPM-Solver++(2M) in 25 steps, scores
their in-domain FID and then their Inception features (taps 768 and 2048). Each phase runs here as the suite runs it
(``sagd.train.train``, ``Run.draw``, ``suite.Scorer``, ``InceptionV3``), once per variant, the variants of a phase
back to back, the order alternating from phase to phase; one torch thread.

* before: ``compile`` and ``channels_last`` off, the sampler batch of ``suite.SAMPLE_BATCH["cpu"]``, Inception as
  ``InceptionV3()`` (contiguous, ``CPU_BATCH``);
* after: ``--after-train`` settings (default ``compile``), ``--after-sample`` for sampling (default compile) at
  ``--after-sample-batch``, Inception with ``--after-inception`` (default channels-last) at ``--inception-batch``.

Every variant is float32 (bf16 is an opt-in outside this comparison); the JSON records each variant's settings and
precision. The Inception features of both variants, on the same images (at least 256), are compared: the largest
difference relative to the largest feature must stay within 1e-3 (the issue's bound for a faithful path).

``--quick`` scales a run down (stated in the output): 40 training steps with probes and checkpoints every 10, 100
samples, 256 images through Inception; the JSON also projects each phase to the full budget from the measured rates
(training: the steady images/s of ``metrics.jsonl`` after its first window; sampling: the first batch, which
compiles, once and the median later batch for the rest). The training "after" path's gradients are checked against
the plain path's (``cpu_roofline.gradient_deviation``) and the check is printed beside the times. Run ``cpu_roofline.py --warm`` first, at any load, so that compiling reads inductor's
cache instead of spending the idle window.

    python benchmarks/suite_run_cost.py --quick    # about 7 minutes on one idle core
    python benchmarks/suite_run_cost.py            # a whole cpu-budget run per variant: about 90 minutes

Writes ``benchmarks/results/suite_run_cost.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_table  # noqa: E402
from cpu_roofline import gradient_deviation, static_shapes, suite_config  # noqa: E402
from experiments import BUDGETS  # noqa: E402

FAITHFUL = 1e-3  # max |Δ feature| / max |feature| allowed of a faster Inception path (issue 26)
TAPS = ("768", "2048")
SETTINGS = ("compile", "channels_last")


def settings(text: str) -> dict:
    """``"compile,channels_last"`` -> ``{"compile": True, "channels_last": True}``; ``""`` or ``"none"``: none."""
    names = [s for s in text.replace("+", ",").split(",") if s and s != "none"]
    bad = [s for s in names if s not in SETTINGS]
    if bad:
        raise SystemExit(f"unknown setting {bad[0]!r}; known: {', '.join(SETTINGS)}")
    return {s: True for s in names}


def scale(args) -> dict:
    """The run's size: the cpu budget's, or ``--quick``'s."""
    budget = BUDGETS["cpu"]
    if args.quick:
        return {"steps": 40, "probe_every": 10, "checkpoint_every": 10, "log_every": 10, "samples": 100,
                "inception_images": 256}
    return {"steps": budget.steps, "probe_every": budget.probe_every, "checkpoint_every": budget.checkpoint_every,
            "log_every": 50, "samples": budget.samples, "inception_images": budget.samples}


def train_phase(tmp: str, name: str, changes: dict, size: dict) -> dict:
    from sagd.report import read_metrics
    from sagd.train import train

    cfg = suite_config(f"{tmp}/{name}", steps=size["steps"], probe_every=size["probe_every"],
                       checkpoint_every=size["checkpoint_every"], log_every=size["log_every"], mixed_precision="no",
                       **changes)
    start = time.perf_counter()
    run_dir = train(cfg)
    seconds = time.perf_counter() - start
    rates = sorted(r["images_per_s"] for r in read_metrics(run_dir) if "images_per_s" in r)[1:]  # not the first window
    steady = rates[len(rates) // 2] if rates else None
    steps, full = size["steps"], BUDGETS["cpu"].steps
    per_step = cfg.batch_size / steady if steady else seconds / steps
    return {"seconds": seconds, "steady_images_per_s": steady, "run_dir": str(run_dir),
            "projected_full_seconds": seconds + (full - steps) * per_step, "settings": changes}


def sample_phase(run_dir: str, changes: dict, batch: int, n: int) -> tuple[dict, torch.Tensor]:
    """``n`` samples as ``Run.draw`` makes them, a batch at a time, each batch timed: the projection to the full
    budget counts the first batch's extra time (compiling) once and the steady batches as many times as needed."""
    from sagd.run import load_run

    method, steps = BUDGETS["cpu"].sampler
    g = torch.Generator().manual_seed(1000)
    start = time.perf_counter()
    run = load_run(run_dir, "cpu", **changes)
    out, batches = [], []
    for first in range(0, n, batch):
        t0 = time.perf_counter()
        out.append(run.sample(min(batch, n - first), g, method, steps)[0].cpu())
        batches.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - start
    full = BUDGETS["cpu"].samples
    steady = sorted(batches[1:])[len(batches[1:]) // 2] if len(batches) > 1 else batches[0]
    projected = seconds - sum(batches) + batches[0] + steady * (math.ceil(full / batch) - 1)
    return {"seconds": seconds, "batch": batch, "batch_seconds": batches, "projected_full_seconds": projected,
            "settings": changes}, torch.cat(out)


def fid_phase(samples: torch.Tensor, scorer) -> dict:
    start = time.perf_counter()
    fid = scorer(samples, len(samples))["fid"]
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "fid": fid, "projected_full_seconds": seconds * BUDGETS["cpu"].samples / len(samples)}


def inception_phase(images: torch.Tensor, changes: dict, batch: int | None) -> tuple[dict, dict]:
    from sagd.metrics.inception import InceptionV3

    start = time.perf_counter()
    network = InceptionV3(channels_last=changes.get("channels_last", False), batch=batch)
    features = network(images, TAPS)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "batch": network.batch, "settings": changes,
            "projected_full_seconds": seconds * BUDGETS["cpu"].samples / len(images)}, features


def faithful(before: dict, after: dict) -> dict:
    """Per tap: the largest |Δ feature| relative to the largest |feature| of ``before``."""
    return {t: ((after[t] - before[t]).abs().max() / before[t].abs().max()).item() for t in before}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a scaled-down run (stated in the output): about 7 minutes")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core)")
    p.add_argument("--after-train", default="compile", help="training settings after: compile or channels_last "
                                                           "(not both: wrong gradients on a CPU, refused)")
    p.add_argument("--after-sample", default="compile", help="sampling settings after")
    p.add_argument("--after-sample-batch", type=int, default=50, help="sampler batch after (before: the suite's 50)")
    p.add_argument("--after-inception", default="channels_last", help="Inception settings after: channels_last or none")
    p.add_argument("--inception-batch", type=int, help="Inception batch after (default: CPU_BATCH, as before)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    static_shapes()
    size = scale(args)
    from suite import SAMPLE_BATCH, Scorer

    variants = {"before": ({}, {}, SAMPLE_BATCH["cpu"], {}, None),
                "after": (settings(args.after_train), settings(args.after_sample), args.after_sample_batch,
                          settings(args.after_inception), args.inception_batch)}
    names = list(variants)
    phases: dict[str, dict] = {"train": {}, "sample": {}, "fid": {}, "inception": {}}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:  # phase 1: before, after
            phases["train"][name] = train_phase(tmp, name, variants[name][0], size)
        run_dir = phases["train"]["before"]["run_dir"]  # both variants sample one network: the same work
        samples = {}
        for name in reversed(names):  # phase 2: after, before
            phases["sample"][name], samples[name] = sample_phase(run_dir, variants[name][1], variants[name][2],
                                                                 size["samples"])
        scorer = Scorer("cpu")
        for name in names:
            phases["fid"][name] = fid_phase(samples[name], scorer)
    g = torch.Generator().manual_seed(0)
    images = samples["before"][torch.randint(len(samples["before"]), (size["inception_images"],), generator=g)]
    features = {}
    for name in reversed(names):  # phase 4: after, before; both on the same images
        phases["inception"][name], features[name] = inception_phase(images, variants[name][3], variants[name][4])
    for records in phases.values():
        for r in records.values():
            r.pop("run_dir", None)
            r["precision"] = "float32"
    deviation = faithful(features["before"], features["after"])
    phases["train"]["after"]["gradient_deviation"] = gradient_deviation(variants["after"][0])
    total = {name: sum(phases[ph][name]["seconds"] for ph in phases) for name in names}
    projected = {name: sum(phases[ph][name]["projected_full_seconds"] for ph in phases) for name in names}
    result = {
        "benchmark": "suite_run_cost", "quick": args.quick, "threads": args.threads, "scale": size,
        "budget": "cpu", "full_budget": {"steps": BUDGETS["cpu"].steps, "samples": BUDGETS["cpu"].samples},
        "phases": phases, "seconds": total, "projected_full_seconds": projected,
        "ratio_after_before": total["after"] / total["before"],
        "projected_ratio_after_before": projected["after"] / projected["before"],
        "inception_max_relative_deviation": deviation, "inception_faithful": max(deviation.values()) <= FAITHFUL,
        "session_seconds": round(time.time() - started, 1), "machine": machine(),
    }
    (RESULTS / "suite_run_cost.json").write_text(json.dumps(result, indent=1) + "\n")
    write_table("suite_run_cost", "Cost of one cpu-budget suite run on one core, before and after", report(result), result)


def report(result: dict) -> list[str]:
    s = result["scale"]
    rows = [("Quick mode, scaled down: " if result["quick"] else "The whole cpu budget: ") +
            f"{s['steps']} training steps (probes and checkpoints every {s['checkpoint_every']}), {s['samples']} "
            f"samples ({BUDGETS['cpu'].sampler[0]}, {BUDGETS['cpu'].sampler[1]} steps), {s['inception_images']} images "
            f"through Inception; "
            f"{result['threads']} torch thread(s), float32, variants interleaved; projected: the full budget "
            f"({result['full_budget']['steps']} steps, {result['full_budget']['samples']} samples) from the measured rates.",
            "", "| phase | before (s) | after (s) | after / before | projected before (s) | projected after (s) | after settings |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for phase, r in result["phases"].items():
        b, a = r["before"], r["after"]
        note = ", ".join(a.get("settings", {})) or "-"
        if "batch" in a:
            note += f"; batch {a['batch']} (before {b['batch']})"
        rows.append(f"| {phase} | {b['seconds']:.1f} | {a['seconds']:.1f} | {a['seconds'] / b['seconds']:.2f} | "
                    f"{b['projected_full_seconds']:.0f} | {a['projected_full_seconds']:.0f} | {note} |")
    t, pr = result["seconds"], result["projected_full_seconds"]
    rows.append(f"| **total** | {t['before']:.1f} | {t['after']:.1f} | {result['ratio_after_before']:.2f} | "
                f"{pr['before']:.0f} | {pr['after']:.0f} | projected ratio {result['projected_ratio_after_before']:.2f} |")
    grad = result["phases"]["train"]["after"]["gradient_deviation"]
    rows += ["", f"Training after vs before, tiny UNet gradients of one loss: max relative difference {grad:.1e} "
             + ("(float32 round-off)." if grad <= 1e-3 else "(**WRONG**: the after path computes other gradients).")]
    dev = result["inception_max_relative_deviation"]
    rows += ["", "Inception features after vs before, same images: max |Δ| / max |feature| = " +
             ", ".join(f"{v:.1e} (tap {t})" for t, v in dev.items()) +
             f" ({'within' if result['inception_faithful'] else 'NOT within'} {FAITHFUL:g})."]
    return rows


if __name__ == "__main__":
    main()
