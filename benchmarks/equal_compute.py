"""SAGD against isotropic diffusion at equal compute: the same model, data, optimiser and steps.

Each run folder given (trained with ``sagd train`` from one config, only ``--spectrum`` differing)
is sampled the same way (DPM-Solver++ 25 steps, the same seeds) and scored against the
Fashion-MNIST test split with the classifier shipped with sagd: FID, KID, precision/recall and
the log-spectral distance. One training seed per spectrum: differences smaller than the spread
between seeds (not measured here) are not evidence. Writes ``benchmarks/results/equal_compute.{json,md}``.

    OMP_NUM_THREADS=1 python benchmarks/equal_compute.py RUN [RUN ...] [--samples 2000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from common import RESULTS, machine, write_table
from sagd.config import load_config
from sagd.data import load_dataset
from sagd.metrics import cache_dir, evaluate_samples, extractor_for, reference_stats
from sagd.run import load_run

METHOD, METHOD_STEPS = "dpmpp_2m", 25


def run_summary(run: Path) -> dict:
    """What the run was and what it cost: spectrum, steps, final loss, median training images/s."""
    cfg = load_config(run / "config.yaml")
    logs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    train = [r for r in logs if "loss" in r and r.get("kind") != "eval"]
    rates = sorted(r["images_per_s"] for r in train if "images_per_s" in r)
    return {"run": str(run), "spectrum": cfg.spectrum, "noise": cfg.noise, "prediction": cfg.prediction,
            "steps": train[-1]["step"], "batch_size": cfg.batch_size, "final_loss": train[-1]["loss"],
            "train_images_per_s_median": rates[len(rates) // 2] if rates else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--samples", type=int, default=2000)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfgs = [load_config(r / "config.yaml") for r in args.runs]
    dataset = cfgs[0].dataset
    keys = ("dataset", "model", "steps", "batch_size", "lr", "ema_decay", "prediction", "schedule", "seed")
    for cfg, run in zip(cfgs, args.runs):
        differ = [k for k in keys if getattr(cfg, k) != getattr(cfgs[0], k)]
        if differ:
            raise SystemExit(f"{run} differs from {args.runs[0]} in {', '.join(differ)}: not an equal-compute comparison")
    test = load_dataset(dataset, "test").images
    extractor = extractor_for(None, dataset, tuple(test.shape[1:]))
    ref = reference_stats(extractor, test, f"{dataset}/test", cache_dir() / "reference")
    rows = []
    for run, cfg in zip(args.runs, cfgs):
        start = time.time()
        samples = load_run(run).draw(args.samples, torch.Generator().manual_seed(0), METHOD, METHOD_STEPS, 250)
        scores = evaluate_samples(samples, test, extractor, reference=ref, generator=torch.Generator().manual_seed(0))
        rows.append({**run_summary(run), **scores, "sampling_seconds": round(time.time() - start, 1)})
    result = {"reference": f"{dataset} test split ({len(test)} images)", "features": extractor.name,
              "samples": args.samples, "sampler": f"{METHOD}, {METHOD_STEPS} steps", "rows": rows,
              "machine": machine()}
    (RESULTS / "equal_compute.json").write_text(json.dumps(result, indent=1) + "\n")
    table = ["| spectrum | steps × batch | final loss | FID | KID × 10³ | precision | recall | LSD (dB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    table += [f"| `{r['spectrum']}` | {r['steps']} × {r['batch_size']} | {r['final_loss']:.4f} | "
              f"{r['fid']:.2f} | {1e3 * r['kid_mean']:.1f} ± {1e3 * r['kid_se']:.1f} | {r['precision']:.3f} | "
              f"{r['recall']:.3f} | {r['lsd']:.2f} |" for r in rows]
    c = cfgs[0]
    table += ["", f"{dataset}, `{c.model}` UNet, `{c.prediction}` prediction, lr {c.lr:g}, EMA {c.ema_decay}, seed {c.seed}; "
                  f"{args.samples} samples each ({result['sampler']}) against the test split, features "
                  f"`{extractor.name}`. One training seed per spectrum. Losses of different spectra are not "
                  f"comparable (different noise); throughput is in the training-throughput table."]
    write_table("equal_compute", "SAGD vs isotropic at equal compute (Fashion-MNIST, CPU)", table, result)


if __name__ == "__main__":
    main()
