"""What a spectrum-optimised time grid gains on a trained model: FID at a fixed NFE, default vs optimised grid.

For each method, the run's EMA model is sampled with the method's default grid and with the grid
that ``optimized_grid`` finds for the run's ``Σ`` and the training set's mean and power spectrum
(``sagd sample --grid optimized``), the same seeds for both, and scored against the test split
with the in-domain classifier (FID, KID, precision/recall, log-spectral distance). Beside each
row: the exact KL of the same sampler and grid on the Gaussian with the data's spectrum, the
number the grid was optimised for. Writes ``benchmarks/results/grid_fid.{json,md}``.

    OMP_NUM_THREADS=1 python benchmarks/grid_fid.py RUN [--nfe 10] [--methods ddim dpmpp_2m dpmpp_3m] [--samples 2000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from common import RESULTS, machine, write_table
from sagd import diffusion
from sagd.commands.sample import optimized_run_grid
from sagd.data import load_dataset
from sagd.diffusion import exact
from sagd.metrics import evaluate_samples, reference_stats
from sagd.metrics.reference import cache_dir
from sagd.run import load_run


def draw(run, n: int, method: str, steps: int, t_grid, seed: int, batch: int) -> torch.Tensor:
    g = torch.Generator(run.device).manual_seed(seed)
    return torch.cat([run.sample(min(batch, n - i), g, method, steps, t_grid=t_grid)[0].cpu()
                      for i in range(0, n, batch)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--nfe", type=int, nargs="+", default=[10])
    p.add_argument("--methods", nargs="+", default=["ddim", "dpmpp_2m", "dpmpp_3m"])
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="grid_fid")
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)
    run = load_run(args.run, device)
    cfg, proc, state = run.cfg, run.proc, run.state
    test = load_dataset(cfg.dataset, "test", root=cfg.data_root).images
    extractor = run.extractor()
    ref = reference_stats(extractor, test, f"{cfg.dataset}/test", cache_dir() / "reference")
    data = exact.GaussianData.from_images(load_dataset(cfg.dataset, "train", root=cfg.data_root).images)
    rows = []
    for nfe in args.nfe:
        for method in args.methods:
            steps = diffusion.steps_for_nfe(method, nfe)
            start = time.time()
            grids = {"default": None, "optimized": optimized_run_grid(cfg, proc, method, steps)}
            grid_seconds = time.time() - start
            for name, t_grid in grids.items():
                start = time.time()
                x = draw(run, args.samples, method, steps, t_grid, args.seed, args.batch)
                seconds = time.time() - start
                scores = evaluate_samples(x, test, extractor, ref, generator=torch.Generator().manual_seed(args.seed))
                law = exact.sample_law(data, proc, method, steps, t_grid=t_grid)
                grid = diffusion.time_grid(proc, steps, diffusion.METHODS[method][1]) if t_grid is None else t_grid
                rows.append({"method": method, "grid": name, "steps": steps, "nfe": diffusion.nfe(method, steps),
                             "t_grid": grid.tolist(), "gaussian_kl_per_dim": exact.kl(law, data) / law.power.numel(),
                             "sampling_seconds": round(seconds, 1), "grid_seconds": round(grid_seconds, 1), **scores})
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "t_grid"}), flush=True)
    result = {"run": str(args.run), "spectrum": cfg.spectrum, "dataset": cfg.dataset, "model": cfg.model,
              "train_steps": state["step"], "prediction": cfg.prediction, "samples": args.samples,
              "features": extractor.name, "rows": rows, "machine": machine()}
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    table = ["| method | NFE | grid | FID | KID × 10³ | precision | recall | LSD (dB) | Gaussian KL / dim |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        table.append(f"| {r['method']} | {r['nfe']} | {r['grid']} | {r['fid']:.2f} | {1e3 * r['kid_mean']:.1f} | "
                     f"{r['precision']:.3f} | {r['recall']:.3f} | {r['lsd']:.2f} | {r['gaussian_kl_per_dim']:.4f} |")
    table += ["", f"{cfg.dataset}, `{cfg.spectrum}`, `{cfg.model}` UNet, `{cfg.prediction}` prediction, "
                  f"{state['step']} training steps; {args.samples} samples per row (same seeds) against the test "
                  f"split, features `{extractor.name}`. Gaussian KL: the exact KL per dimension of the same sampler "
                  "and grid on the Gaussian with the training set's mean and power spectrum (what the grid minimises)."]
    write_table(args.name, "Spectrum-optimised time grids on a trained model", table, result)


if __name__ == "__main__":
    main()
