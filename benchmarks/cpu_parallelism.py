"""How to spend a machine's cores on the suite's runs: one run on every core's thread, or one single-thread run per
core side by side (issue 26's "thread and affinity choices"; the evidence plan's throughput).

Each layout trains the plan's own config (A's isotropic arm, seed 0: ``suite.train_config``) in fresh processes,
exactly as ``suite.py worker`` does (``OMP_NUM_THREADS`` and ``torch.set_num_threads`` per process), float32:

* ``1 job × C threads``: one process with C torch threads;
* ``C jobs × 1 thread``: C processes with one thread each, started together;
* ``1 job × 1 thread``: one single-thread process, the other cores idle (how much the other cores add at all).

Every process first takes ``--warmup`` optimizer steps, then waits until every process of its layout is ready, then
times ``--steps`` steps (``Trainer.train_step`` and a host read of the loss each step, as the training loop does).
A layout's throughput is all its processes' images over the longest process's time. Layouts alternate for
``--rounds`` rounds (order reversed on odd rounds); the JSON keeps every round and the medians. Run it on an idle
machine: a neighbour's work moves these figures more than anything measured here.

    python benchmarks/cpu_parallelism.py            # about 7 minutes on 2 idle cores

Writes ``benchmarks/results/cpu_parallelism.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_table  # noqa: E402

HERE = Path(__file__).resolve().parent


def child(plan: str, out: str, threads: int, warmup: int, steps: int) -> None:
    """One process of a layout: build the run's trainer, warm up, say ``ready``, wait for ``go``, time ``steps``
    steps; prints ``{"seconds": s, "images": n}`` as its last line."""
    torch.set_num_threads(threads)
    from experiments import arms_a
    from suite import train_config
    from sagd.train import Trainer

    cfg = train_config(plan, arms_a()[0], 0, Path(out)).replace(mixed_precision="no")
    trainer = Trainer(cfg)
    for _ in range(warmup):
        trainer.train_step().item()
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step().item()
    print(json.dumps({"seconds": time.perf_counter() - start, "images": steps * cfg.batch_size}), flush=True)


def layout(args, jobs: int, threads: int, tmp: str) -> dict:
    """Run ``jobs`` processes of ``threads`` threads together; their images over the longest process's time."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TQDM_DISABLE="1")
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--plan", args.plan, "--threads",
               str(threads), "--warmup", str(args.warmup), "--steps", str(args.steps)]
    procs = [subprocess.Popen([*command, "--out", f"{tmp}/{jobs}x{threads}-{j}-{time.monotonic_ns()}"], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=HERE) for j in range(jobs)]
    for p in procs:
        while (line := p.stdout.readline()) and line.strip() != "ready":
            pass
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    records = []
    for p in procs:
        last = [line for line in p.stdout.read().splitlines() if line.startswith("{")][-1]
        if p.wait() != 0:
            raise SystemExit(f"a {jobs}×{threads} process failed (exit {p.returncode})")
        records.append(json.loads(last))
    seconds = max(r["seconds"] for r in records)
    return {"images_per_second": sum(r["images"] for r in records) / seconds, "batch": records[0]["images"] // args.steps,
            "seconds_per_step_per_job": [r["seconds"] / args.steps for r in records]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plan", default="mnist", help="the suite plan whose run config is trained (default mnist)")
    p.add_argument("--cores", type=int, default=os.cpu_count(), help="C: the cores to spend (default: all)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.plan, args.out, args.threads, args.warmup, args.steps)
    if args.cores < 2:
        raise SystemExit(f"--cores must be at least 2 to compare layouts, got {args.cores}")

    layouts = {f"1 job × {args.cores} threads": (1, args.cores), f"{args.cores} jobs × 1 thread": (args.cores, 1),
               "1 job × 1 thread": (1, 1)}
    rounds = {name: [] for name in layouts}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name in (list(layouts) if r % 2 == 0 else list(reversed(layouts))):
                rounds[name].append(layout(args, *layouts[name], tmp))
                print(f"round {r}: {name}: {rounds[name][-1]['images_per_second']:.1f} images/s", flush=True)
    medians = {name: statistics.median(x["images_per_second"] for x in rs) for name, rs in rounds.items()}
    one, many, single = medians.values()
    result = {"plan": args.plan, "cores": args.cores, "warmup": args.warmup, "steps": args.steps,
              "rounds": rounds, "median_images_per_second": medians, "jobs_over_threads": many / one,
              "all_cores_over_one": max(one, many) / single,
              "precision": "float32", "machine": machine()}
    (RESULTS / "cpu_parallelism.json").write_text(json.dumps(result, indent=2) + "\n")
    name = next(iter(rounds))
    rows = [f"The `{args.plan}` plan's training step (A's isotropic arm, tiny UNet, batch "
            f"{rounds[name][0]['batch']}), {args.steps} timed steps per process after {args.warmup} warm-up steps, {args.rounds} "
            "interleaved rounds, float32; throughput = all processes' images over the longest process's time.", "",
            "| layout | images/s (median) | rounds | seconds per step per job (median) |", "|---|---:|---|---:|"]
    for name, rs in rounds.items():
        per_step = statistics.median(s for x in rs for s in x["seconds_per_step_per_job"])
        rows.append(f"| {name} | {medians[name]:.1f} | "
                    f"{', '.join(format(x['images_per_second'], '.1f') for x in rs)} | {per_step:.2f} |")
    rows += ["", f"{args.cores} single-thread jobs over one {args.cores}-thread job: **{many / one:.2f}×** "
             f"the images per second; the better of the two over one thread on one core: **{max(one, many) / single:.2f}×**."]
    write_table("cpu_parallelism", "Cores per run: one multi-thread run or one single-thread run per core", rows, result)


if __name__ == "__main__":
    main()
