"""Demo training throughput on a shared CPU: torch's old thread default vs ``sagd.threads``, idle and busy.

Each measurement is a fresh ``python -m sagd.cli train`` of the demo configuration
(``configs/demo.yaml``; a record every step, no sampling or checkpoints inside the budget) for
``--seconds`` in its own process, so that every variant starts its thread pool from scratch:

* ``before``: ``OMP_NUM_THREADS`` = the usable cores, what torch chose by itself before (one
  thread per core, OpenMP's default spin-then-sleep waiting);
* ``after``: no thread setting: ``sagd.threads`` counts the free cores at start;
* ``passive``: as ``before`` with ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep at once),
  the other cure one could choose.

Under ``busy`` one Python busy loop runs beside the training (started before it, stopped after).
Variants and conditions are interleaved in rounds, alternating order, so that the load of other
users hits them alike; a run's figure is the median images/s of its per-step records (the first
``WARMUP`` dropped), the table the median over rounds. The machine's load average before each run
is recorded: on shared cores only ratios measured side by side mean anything.

    python benchmarks/demo_throughput.py [--rounds 3] [--seconds 40]
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

import yaml

from common import RESULTS, machine, write_table
from sagd.threads import usable_cpus

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 3  # per-step records dropped at the start of each run
CONDITIONS = ("idle", "busy")


def variants(cores: int) -> dict[str, dict[str, str]]:
    """Environment changes of each variant (``None`` removes a variable)."""
    return {
        "before": {"OMP_NUM_THREADS": str(cores), "OMP_WAIT_POLICY": None},
        "after": {"OMP_NUM_THREADS": None, "OMP_WAIT_POLICY": None},
        "passive": {"OMP_NUM_THREADS": str(cores), "OMP_WAIT_POLICY": "PASSIVE"},
    }


def config(folder: Path) -> Path:
    """The demo configuration, logging every step, with nothing but training inside the budget."""
    raw = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    raw.update(log_every=1, checkpoint_every=10**9, sample_every=10**9, sample_n=1, sample_steps=1, probe_every=0)
    path = folder / "demo_bench.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def train_run(cfg: Path, out: Path, env_changes: dict, seconds: float, busy: bool) -> dict:
    """One training run in a fresh process; its median images/s, threads and the load average before it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    for key, value in env_changes.items():
        env.pop(key, None) if value is None else env.__setitem__(key, value)
    load = os.getloadavg()[0]
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        subprocess.run([sys.executable, "-m", "sagd.cli", "train", "--config", str(cfg), "--out", str(out),
                        "--minutes", str(seconds / 60)], env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["images_per_s"] for r in records[WARMUP:]] or [r["images_per_s"] for r in records]
    return {"images_per_s": statistics.median(rates), "steps": records[-1]["step"], "threads": records[-1]["threads"],
            "load_average_before": load}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=40, help="training budget of each run")
    args = p.parse_args()
    cores = len(usable_cpus())
    names = variants(cores)
    runs = {(v, c): [] for c in CONDITIONS for v in names}
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(Path(tmp))
        for r in range(args.rounds):
            order = list(runs) if r % 2 == 0 else list(reversed(runs))
            for v, c in order:
                result = train_run(cfg, Path(tmp) / f"r{r}_{v}_{c}", names[v], args.seconds, c == "busy")
                runs[v, c].append(result)
                print(f"round {r} {v:8s} {c}: {result}", flush=True)
    median = {f"{v} {c}": statistics.median(x["images_per_s"] for x in rs) for (v, c), rs in runs.items()}
    result = {
        "benchmark": "demo_throughput",
        "config": "configs/demo.yaml (tiny UNet, Fashion-MNIST, batch 32)",
        "cores": cores,
        "seconds_per_run": args.seconds,
        "rounds": args.rounds,
        "variants": names,
        "images_per_s_median": median,
        "ratios": {
            **{f"after / before, {c}": median[f"after {c}"] / median[f"before {c}"] for c in CONDITIONS},
            **{f"passive / before, {c}": median[f"passive {c}"] / median[f"before {c}"] for c in CONDITIONS},
            **{f"busy / idle, {v}": median[f"{v} busy"] / median[f"{v} idle"] for v in names},
        },
        "runs": {f"{v} {c}": rs for (v, c), rs in runs.items()},
        "load_average_1min_range": [min(x["load_average_before"] for rs in runs.values() for x in rs),
                                    max(x["load_average_before"] for rs in runs.values() for x in rs)],
        "seconds": round(time.time() - start),
        "machine": machine(),
    }
    (RESULTS / "demo_throughput.json").write_text(json.dumps(result, indent=1) + "\n")
    write(result)


def write(result: dict) -> None:
    """The markdown table of a result (``benchmarks/results/demo_throughput.md``)."""
    cores, median, runs = result["cores"], result["images_per_s_median"], result["runs"]
    threads = lambda cell: "/".join(sorted({str(x["threads"]) for x in runs[cell]}))  # noqa: E731
    lo, hi = result["load_average_1min_range"]
    rows = [
        f"`sagd train` with the demo config, {result['rounds']} interleaved rounds of {result['seconds_per_run']:g} s "
        f"runs per cell, median images/s (threads used in brackets). {cores} cores shared with other users: load "
        f"average {lo:.1f}–{hi:.1f} before the runs (a busy loop adds 1), so compare within a row.",
        "",
        f"| condition | before: {cores} threads | after: `sagd.threads` | passive waiting, {cores} threads "
        "| after / before | passive / before |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in CONDITIONS:
        label = "no extra load" if c == "idle" else "+ one busy process"
        rows.append(f"| {label} | {median[f'before {c}']:.1f} ({threads(f'before {c}')}) "
                    f"| {median[f'after {c}']:.1f} ({threads(f'after {c}')}) "
                    f"| {median[f'passive {c}']:.1f} ({threads(f'passive {c}')}) "
                    f"| {result['ratios'][f'after / before, {c}']:.2f} "
                    f"| {result['ratios'][f'passive / before, {c}']:.2f} |")
    rows += ["", "`before`: one spinning OpenMP thread per core, what torch chose by itself. `passive` "
             "(`OMP_WAIT_POLICY=PASSIVE`, 2 threads) is shown as the alternative cure; it can only be chosen before "
             "torch loads, so it stays the user's choice."]
    write_table("demo_throughput", "Demo training throughput on shared cores: thread policy before and after",
                rows, result)

if __name__ == "__main__":
    main()
