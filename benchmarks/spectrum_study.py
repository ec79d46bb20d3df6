"""Which noise spectrum is cheapest to sample? Exact KL on Gaussian data with Fashion-MNIST's spectrum.

The data: the Gaussian with the Fashion-MNIST training set's mean image and mean power spectrum
(``GaussianData.from_images``). For each noise spectrum ``Σ`` (isotropic; the paper's power law
α ∈ {-0.06, -0.02, +0.04} with ``k0 = 1e-10``; α = -0.5; offset noise 0.1; data-matched, γ = 1)
and each sampler, the exact ``KL(data ‖ samples)`` per dimension at 5, 10, 20 and 50 NFE on the
default grid, and on the grid ``diffusion.optimized_grid`` finds (for the NFE in ``--optimize``).
No Monte Carlo: every number is exact. Resumable: rows already in the JSON are kept.
Writes ``benchmarks/results/spectrum_study.{json,md,png}``.

    OMP_NUM_THREADS=1 python benchmarks/spectrum_study.py [--optimize 10 5 20] [--optimized-methods dpmpp_3m dpmpp_2m]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from common import RESULTS, machine, write_table
from sagd import diffusion, spectral
from sagd.metrics.reference import cache_dir
from sagd.data import load_dataset
from sagd.diffusion import exact

SHAPE = (1, 28, 28)
METHODS = ("ddim", "heun", "dpmpp_2m", "dpmpp_3m", "dpmpp_2m_sde")
NFES = (5, 10, 20, 50)


def spectra(images: torch.Tensor) -> dict:
    return {
        "isotropic": spectral.isotropic(SHAPE),
        "power_law:alpha=-0.06,k0=1e-10": spectral.power_law(SHAPE, -0.06, k0=1e-10),
        "power_law:alpha=-0.02,k0=1e-10": spectral.power_law(SHAPE, -0.02, k0=1e-10),
        "power_law:alpha=0.04,k0=1e-10": spectral.power_law(SHAPE, 0.04, k0=1e-10),
        "power_law:alpha=-0.5": spectral.power_law(SHAPE, -0.5),
        "offset:std=0.1": spectral.offset(SHAPE, 0.1),
        "data_matched:gamma=1": spectral.data_matched(images, gamma=1.0),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--optimize", type=int, nargs="*", default=[10, 5, 20], help="NFE budgets to optimise grids for")
    p.add_argument("--optimized-methods", nargs="*", default=["dpmpp_3m", "dpmpp_2m", "ddim"])
    args = p.parse_args()
    torch.set_num_threads(1)
    images = load_dataset("fashion_mnist", "train").images
    data = exact.GaussianData.from_images(images)
    covs = spectra(images)
    path = RESULTS / "spectrum_study.json"
    rows = json.loads(path.read_text())["rows"] if path.is_file() else []
    done = {(r["spectrum"], r["method"], r["nfe_budget"], r["grid"]) for r in rows}

    def add(name, cov, method, nfe, grid_name):
        if (name, method, nfe, grid_name) in done:
            return
        proc = diffusion.VPProcess(cov)
        steps = diffusion.steps_for_nfe(method, nfe)
        start = time.time()
        t_grid = None if grid_name == "default" else diffusion.optimized_grid(proc, data, method, steps,
                                                                             cache_dir() / "grids")
        law = exact.sample_law(data, proc, method, steps, t_grid=t_grid)
        rows.append({"spectrum": name, "method": method, "nfe_budget": nfe, "nfe": law.nfe, "grid": grid_name,
                     "kl_per_dim": exact.kl(law, data) / law.power.numel(),
                     "log_spectral_error": exact.log_spectral_error(law, data),
                     "seconds": round(time.time() - start, 1),
                     "t_grid": None if t_grid is None else t_grid.tolist()})
        done.add((name, method, nfe, grid_name))
        print({k: v for k, v in rows[-1].items() if k != "t_grid"}, flush=True)
        path.write_text(json.dumps({"rows": rows, "machine": machine()}, indent=1))

    for name, cov in covs.items():
        for method in METHODS:
            for nfe in NFES:
                add(name, cov, method, nfe, "default")
    for nfe in args.optimize:
        for method in args.optimized_methods:
            for name, cov in covs.items():
                add(name, cov, method, nfe, "optimized")
    write_outputs(rows)


def write_outputs(rows: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["spectrum"] for r in rows))
    combos = list(dict.fromkeys((r["method"], r["grid"]) for r in rows))
    table = ["| sampler | grid | NFE | " + " | ".join(f"`{n}`" for n in names) + " |",
             "|---|---|---:|" + "---:|" * len(names)]
    for method, grid in combos:
        for nfe in NFES:
            cells = {r["spectrum"]: r["kl_per_dim"] for r in rows
                     if (r["method"], r["grid"], r["nfe_budget"]) == (method, grid, nfe)}
            if not cells:
                continue
            low = min(cells.values())
            table.append(f"| {method} | {grid} | {nfe} | " + " | ".join(
                "–" if n not in cells else (f"**{cells[n]:.2e}**" if cells[n] == low else f"{cells[n]:.2e}")
                for n in names) + " |")
    table += ["", "Exact KL(data ‖ samples) in nats per dimension (784 dimensions), Gaussian data with the "
                  "Fashion-MNIST training set's mean and power spectrum; bold: the cheapest spectrum in the row. "
                  "NFE is the budget (Heun: 2 per step but the last, so 9 of 10, 19 of 20...)."]
    write_table("spectrum_study", "Which spectrum is cheapest to sample (exact KL, no Monte Carlo)", table,
                {"machine": machine()})

    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3.4), sharey=True)
    for ax, method in zip(axes, methods):
        for i, name in enumerate(names):
            for grid, style in (("default", ":"), ("optimized", "-")):
                pts = sorted((r["nfe"], r["kl_per_dim"]) for r in rows
                             if (r["spectrum"], r["method"], r["grid"]) == (name, method, grid))
                if pts:
                    ax.plot(*zip(*pts), style, marker="o", ms=3, color=f"C{i}", label=name if grid == "default" else None)
        ax.set(xscale="log", yscale="log", title=method, xlabel="NFE")
    axes[0].set_ylabel("exact KL / dim (dotted: default grid, solid: optimised)")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(RESULTS / "spectrum_study.png", dpi=120)


if __name__ == "__main__":
    main()
