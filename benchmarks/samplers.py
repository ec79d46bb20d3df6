"""Our samplers against diffusers' schedulers at equal NFE on an exact Gaussian oracle, both sides in one run.

Data ``N(0, Fᴴ diag(P) F)`` on 16×16 with a red power law ``P ∝ (|k| + k_bin)^-2`` (mean 0.3), a red
power-law noise ``Σ`` (``power_law:alpha=-1``), the exact denoiser. Every sampler draws 3,000
samples from the same colored prior seed; error = mean over frequencies of ``|log(P_samples / P)|``.
diffusers' ``DDIMScheduler``, ``DPMSolverMultistepScheduler`` (orders 2 and 3, ``use_lu_lambdas``,
``lower_order_final``, its SDE variant), ``UniPCMultistepScheduler`` (orders 2 and 3, corrector on)
and ``HeunDiscreteScheduler`` (with and without Karras sigmas) run through ``sagd.diffusers_interop``
(colored latents and step noise), the denoiser evaluated at exactly the noise level each scheduler
assumes. Ours run with their default grids and with grids optimised on the exact evaluator for this
``Σ`` and ``P`` (``diffusion.optimized_grid``); beside each Monte Carlo error, the exact
(noise-free) error of our samplers. The sampling-noise floor is the error of 3,000 exact draws of the
data. Writes ``benchmarks/results/samplers.{json,md,png}``.

    OMP_NUM_THREADS=1 python benchmarks/samplers.py [--samples 3000] [--nfe 5 10 20 50]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, HeunDiscreteScheduler,
                       UniPCMultistepScheduler)

from common import RESULTS, machine, write_table
from sagd import diffusers_interop as di
from sagd import diffusion, spectral
from sagd.diffusion import exact
from sagd.metrics.reference import cache_dir
from sagd.spectral import SpectralCovariance, power_spectrum, radial_frequency

SHAPE = (1, 16, 16)
OURS = ("ddim", "heun", "dpmpp_2m", "dpmpp_3m", "dpmpp_2m_sde")
OPTIMIZE_UP_TO = 20  # NFE; beyond it the default grids are already at the noise floor (see the table)
THEIRS = {
    "DDIM (leading)": lambda: DDIMScheduler(clip_sample=False, set_alpha_to_one=True),
    "DDIM (trailing)": lambda: DDIMScheduler(clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing"),
    "DPM++ 2M": lambda: DPMSolverMultistepScheduler(solver_order=2),
    "DPM++ 2M lu": lambda: DPMSolverMultistepScheduler(solver_order=2, use_lu_lambdas=True),
    "DPM++ 3M": lambda: DPMSolverMultistepScheduler(solver_order=3),
    "DPM++ 3M lu": lambda: DPMSolverMultistepScheduler(solver_order=3, use_lu_lambdas=True),
    "DPM++ 2M SDE": lambda: DPMSolverMultistepScheduler(solver_order=2, algorithm_type="sde-dpmsolver++"),
    "UniPC 2": lambda: UniPCMultistepScheduler(solver_order=2),
    "UniPC 3": lambda: UniPCMultistepScheduler(solver_order=3),
    "Heun": lambda: HeunDiscreteScheduler(),
    "Heun karras": lambda: HeunDiscreteScheduler(use_karras_sigmas=True),
}
STOCHASTIC = {"DPM++ 2M SDE"}


def data_power() -> torch.Tensor:
    p = (radial_frequency(SHAPE[1:]) + 1.0 / max(SHAPE[1:])) ** -2.0
    return (0.3 * p / p.mean()).expand(SHAPE).clone()


def error(x: torch.Tensor, power: torch.Tensor) -> float:
    return (power_spectrum(x) / power).log().abs().mean().item()


def run_diffusers(make, steps: int, cov, denoise, proc, x_T: torch.Tensor, generator: torch.Generator,
                  stochastic: bool):
    """Samples ``(n, C, *spatial)`` of one scheduler from the colored draw ``x_T = Σ^{1/2} z`` (unit scale, as
    ``cov.sample`` gives it), and its number of steps; ``denoise(x, t)`` is evaluated at the ``(α, σ)`` the
    scheduler assumes; a stochastic scheduler draws its colored step noise with ``generator``."""
    sched = make()
    sched.set_timesteps(steps)
    x = sched.init_noise_sigma * x_T
    n = len(x)
    abar = sched.alphas_cumprod.to(torch.float64)
    has_sigmas = getattr(sched, "sigmas", None) is not None and len(sched.sigmas) > len(sched.timesteps)
    for i, t in enumerate(sched.timesteps):
        if has_sigmas:  # VE sigma of this step: α = 1/√(1+σ²), σ_vp = σ α
            sig = float(sched.sigmas[i])
            a, s = 1 / math.sqrt(1 + sig**2), sig / math.sqrt(1 + sig**2)
        else:
            a, s = abar[int(t)].sqrt().item(), (1 - abar[int(t)]).sqrt().item()
        x_in = sched.scale_model_input(x, t)
        tt = proc.t_from_log_snr(torch.tensor(2 * math.log(a / s), dtype=torch.float64)).expand(n).to(x.dtype)
        n_hat = (x_in - a * denoise(x_in, tt)) / s  # the colored-noise prediction (ε-parametrisation)
        if stochastic:
            x = di.step(sched, cov, n_hat, t, x, generator=generator)
        else:
            x = sched.step(n_hat, t, x).prev_sample
    return x, len(sched.timesteps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=3000)
    p.add_argument("--nfe", type=int, nargs="+", default=[5, 10, 20, 50])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    cov = spectral.power_law(SHAPE, alpha=-1.0)
    proc = diffusion.VPProcess(cov)
    power = data_power()
    data = exact.GaussianData(power)
    n = args.samples

    data_cov = SpectralCovariance(power, normalize=False)
    floor_draws = [error(data_cov.sample(n, generator=torch.Generator().manual_seed(args.seed + k), dtype=torch.float64),
                         power) for k in range(5)]
    floor = {"monte_carlo_of_exact_draws": floor_draws,
             "expected": exact.expected_monte_carlo_error(exact.SampleLaw(data.mean, power, 0), data, n)}
    print("noise floor", floor, flush=True)

    rows = []
    for nfe in args.nfe:
        for method in OURS:
            steps = diffusion.steps_for_nfe(method, nfe)
            grids = {"default": None}
            if nfe <= OPTIMIZE_UP_TO:
                start = time.time()
                grids["optimized"] = diffusion.optimized_grid(proc, data, method, steps, cache_dir() / "grids",
                                                              eps_error=0.0)  # the oracle's D is exact
                print(f"  grid {method} {nfe}: {time.time() - start:.0f} s", flush=True)
            for grid_name, t_grid in grids.items():
                x = diffusion.sample(data.denoiser(proc), proc, n, method=method, steps=steps, t_grid=t_grid,
                                     generator=torch.Generator().manual_seed(args.seed), dtype=torch.float64)
                law = exact.sample_law(data, proc, method, steps, t_grid=t_grid)
                rows.append({"side": "sagd", "sampler": method, "grid": grid_name, "nfe_budget": nfe,
                             "nfe": diffusion.nfe(method, steps), "error": error(x, power),
                             "exact_error": exact.log_spectral_error(law, data),
                             "expected_error": exact.expected_monte_carlo_error(law, data, n),
                             "exact_kl": exact.kl(law, data),
                             "t_grid": None if t_grid is None else t_grid.tolist()})
                print({k: v for k, v in rows[-1].items() if k != "t_grid"}, flush=True)
        for name, make in THEIRS.items():
            steps = (nfe + 1) // 2 if name.startswith("Heun") else nfe
            g = torch.Generator().manual_seed(args.seed)
            x_T = cov.sample(n, generator=g, dtype=torch.float64)  # what di.initial_latents scales
            x, used = run_diffusers(make, steps, cov, data.denoiser(proc), proc, x_T, g, name in STOCHASTIC)
            rows.append({"side": "diffusers", "sampler": name, "grid": "scheduler", "nfe_budget": nfe,
                         "nfe": used, "error": error(x, power)})
            print(rows[-1], flush=True)

    result = {"shape": SHAPE, "spectrum": "power_law:alpha=-1", "data_power": "(|k| + 1/16)^-2, mean 0.3",
              "samples": n, "noise_floor": floor, "rows": rows, "machine": machine()}
    (RESULTS / "samplers.json").write_text(json.dumps(result, indent=1))
    write_outputs(result, args.nfe)


def best(rows, side, nfe, **match):
    pick = [r for r in rows if r["side"] == side and r["nfe_budget"] == nfe
            and all(r[k] == v for k, v in match.items())]
    return min(pick, key=lambda r: r["error"])


def write_outputs(result: dict, nfes: list[int]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    floor = sum(result["noise_floor"]["monte_carlo_of_exact_draws"]) / len(result["noise_floor"]["monte_carlo_of_exact_draws"])
    names = sorted({(r["side"], r["sampler"], r["grid"]) for r in rows}, key=lambda k: (k[0] != "sagd", k[1], k[2]))
    table = ["| side | sampler | grid | " + " | ".join(f"NFE {n}" for n in nfes) + " |",
             "|---|---|---|" + "---:|" * len(nfes)]
    for side, sampler, grid in names:
        cells = []
        for nfe in nfes:
            r = [r for r in rows if (r["side"], r["sampler"], r["grid"], r["nfe_budget"]) == (side, sampler, grid, nfe)]
            cells.append("–" if not r else f"{r[0]['error']:.4f}" + (f" ({r[0]['exact_error']:.4f})" if side == "sagd" else "")
                         + ("" if r[0]["nfe"] == nfe else f" [{r[0]['nfe']}]"))
        table.append(f"| {side} | {sampler} | {grid} | " + " | ".join(cells) + " |")
    lines = []
    for nfe in nfes:
        ours, theirs = best(rows, "sagd", nfe), best(rows, "diffusers", nfe)
        ours_default = best(rows, "sagd", nfe, grid="default")
        lines.append(f"* NFE {nfe}: best of ours {ours['error']:.4f} ({ours['sampler']}, {ours['grid']} grid; "
                     f"default grids: {ours_default['error']:.4f}, {ours_default['sampler']}), best of diffusers "
                     f"{theirs['error']:.4f} ({theirs['sampler']}): ratio {ours['error'] / theirs['error']:.2f}; "
                     f"ours / noise floor {ours['error'] / floor:.2f}")
    table += ["", f"Monte Carlo error (exact, noise-free error of ours in parentheses; [actual NFE] where a method "
                  f"cannot hit the budget: Heun makes 2 per step but the last). {result['samples']} samples, "
                  f"16×16, `power_law:alpha=-1` Σ, data power ∝ (|k| + 1/16)^-2. Sampling-noise floor (error of "
                  f"{result['samples']} exact draws of the data, mean of 5 seeds): {floor:.4f}; predicted "
                  f"{result['noise_floor']['expected']:.4f}.", "", *lines]
    write_table("samplers", "Samplers at equal NFE on the Gaussian oracle: sagd vs diffusers", table, result)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for side, sampler, grid in names:
        pts = sorted((r["nfe"], r["error"]) for r in rows if (r["side"], r["sampler"], r["grid"]) == (side, sampler, grid))
        style = {"sagd": "-" if grid == "default" else "-", "diffusers": ":"}[side]
        marker = "o" if grid == "optimized" else ("." if side == "sagd" else "x")
        ax.plot(*zip(*pts), style, marker=marker, label=f"{sampler} ({grid})" if side == "sagd" else sampler,
                lw=2 if grid == "optimized" else 1)
    ax.axhline(floor, color="k", lw=0.8, ls="--", label="sampling-noise floor")
    ax.set(xscale="log", yscale="log", xlabel="NFE (denoiser evaluations)", ylabel="mean |log P_samples / P_data|",
           title="Gaussian oracle, 16×16, red Σ: sagd (solid) vs diffusers (dotted)")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(RESULTS / "samplers.png", dpi=130)


if __name__ == "__main__":
    main()
