"""Micro-benchmark of the noise operator: ``cov.sample`` and ``cov.sqrt`` against ``torch.randn_like``.

For each batch shape, the three operations are timed in interleaved rounds (load on the machine
hits them alike); the median per call is reported, and the ratios to ``randn_like`` are taken
within each round. Writes ``benchmarks/results/noise_operator.{json,md}``.

    python benchmarks/noise_operator.py [--rounds 15] [--calls 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from common import RESULTS, machine, write_table
from sagd import spectral

SHAPES = [(128, 1, 28, 28), (128, 3, 32, 32)]


def per_call(fn, calls: int) -> float:
    fn()  # warm-up: plans and caches
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def bench(shape, rounds: int, calls: int, device: str) -> dict:
    cov = spectral.power_law(shape[1:], alpha=-0.5)
    x = torch.randn(shape, device=device)
    g = torch.Generator(device=device).manual_seed(0)
    ops = {
        "randn_like": lambda: torch.randn_like(x),
        "cov.sample": lambda: cov.sample(shape[0], generator=g),
        "cov.sqrt": lambda: cov.sqrt(x),
    }
    times = {k: [] for k in ops}
    for _ in range(rounds):
        for name, fn in ops.items():
            if device == "cuda":
                torch.cuda.synchronize()
            times[name].append(per_call(fn, calls))
    ratios = {k: statistics.median(t / r for t, r in zip(times[k], times["randn_like"])) for k in ops if k != "randn_like"}
    return {
        "shape": list(shape),
        "median_ms": {k: 1e3 * statistics.median(v) for k, v in times.items()},
        "ratio_to_randn_like": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    rows = [bench(s, args.rounds, args.calls, args.device) for s in SHAPES]
    result = {"benchmark": "noise_operator", "device": args.device, "rounds": args.rounds, "calls": args.calls,
              "results": rows, "machine": machine()}
    suffix = "" if args.device == "cpu" else f"_{args.device}"
    (RESULTS / f"noise_operator{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = ["| batch shape | randn_like (ms) | cov.sample (ms) | cov.sqrt (ms) | sample / randn | sqrt / randn |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        m, q = r["median_ms"], r["ratio_to_randn_like"]
        table.append(f"| {'×'.join(map(str, r['shape']))} | {m['randn_like']:.3f} | {m['cov.sample']:.3f} | "
                     f"{m['cov.sqrt']:.3f} | {q['cov.sample']:.2f} | {q['cov.sqrt']:.2f} |")
    write_table(f"noise_operator{suffix}", "Noise operator cost (power_law α=-0.5)", table, result)


if __name__ == "__main__":
    main()
