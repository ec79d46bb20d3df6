"""Time grids fitted to a trained denoiser, not to a Gaussian (``sagd sample --grid fitted``).

``grids.optimized_grid`` places a grid for the Gaussian with the data's spectrum; on a trained network that
grid did no good (docs/samplers.md). ``fitted_grid`` measures the network's own discretisation error
instead. On a held batch of prior draws ``x_1`` (``FIT_BATCH`` of them, a fixed seed) it compares the
``steps``-step sample ``x`` of ``method`` with a ``REFERENCE``-step DPM-Solver++(2M) sample ``y`` from the
same ``x_1`` (both deterministic maps of ``x_1``) by ``trajectory_error``: the error's power spectrum
relative to ``y``'s (a coupling distance in which every frequency counts by its share of the data, so fine
detail weighs as much as coarse shape), plus the Gaussian ``KL`` between ``y``'s and ``x``'s power
spectra, which keeps a grid from buying a small distance with blur (ending high and returning ``D``,
near the conditional mean, lowers the first term alone; on the exact evaluator it multiplied Heun's
KL at 5 NFE by 2 before the second term was added).

The grid is ``grids``' parametrisation (softmax log-SNR gaps and the slack above ``t_min``) restricted
to ``DEGREE + 1`` coefficients: the gap logits are a polynomial in the gap's position, so that a
derivative-free search (Nelder-Mead) settles within ``EVALUATIONS`` sampler runs. The search starts
from the method's default grid (all coefficients 0) and keeps it unless it finds a smaller error.

Cost, in denoiser calls on the held batch: ``REFERENCE[1]`` for the reference plus at most
``EVALUATIONS + 1`` runs of ``nfe(method, steps)`` each (10 NFE: at most 610 calls of a batch of 16,
about 9,800 image evaluations, what 49 samples at 200 NFE cost). The result is cached as
``<cache>/<method>-<steps>-<hash>.json``, the hash covering ``model_id`` (say, the sha256 of the
weights file), the process's schedule and ``t_min``, ``method``, ``steps`` and every objective
setting; a second call reads it back without calling the denoiser.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch

from ..spectral import power_spectrum
from .grids import _grid
from .process import VPProcess
from .samplers import Counted, Denoiser, check_method, check_steps, nfe, sample, time_grid

DETERMINISTIC = ("ddim", "heun", "dpmpp_2m", "dpmpp_3m")  # a sample is a function of x_1 alone
REFERENCE = ("dpmpp_2m", 200)
FIT_BATCH = 16
DEGREE = 2
EVALUATIONS = 40
SLACK_START = -8.0  # the slack logit of the default grid, which ends at t_min (grids.optimized_grid's start)
# the search's first moves: 1 in each polynomial coefficient; the slack logit 6 (from -8 to -2: the last inner
# time moves from t_min to a few percent of the log-SNR range above it, where an ODE sampler's last step may want it)
SIMPLEX = (1.0,) * DEGREE + (6.0,)


def fitted_theta(coefficients: np.ndarray, steps: int) -> np.ndarray:
    """``grids``' gap logits ``(steps,)`` from ``coefficients`` ``(DEGREE + 1,)``: the first ``DEGREE`` are the
    polynomial's (degrees 1 to ``DEGREE`` in the gap's position ``u ∈ [-1, 1]``), the last the slack logit."""
    u = np.linspace(-1.0, 1.0, steps - 1)
    gaps = sum(c * u ** (j + 1) for j, c in enumerate(coefficients[:-1]))
    return np.append(gaps, coefficients[-1])


def trajectory_error(x: torch.Tensor, reference: torch.Tensor, support: torch.Tensor) -> float:
    """``mean_k [P_{x-y}(k) / P_y(k) + ½ (P_y/P_x - 1 - log(P_y/P_x))]`` over the frequencies in ``support``
    (bool ``(C, *spatial)``; off it both are 0), ``P`` the power spectrum over the batch of ``x`` and of the
    reference ``y``, both ``(B, C, *spatial)`` from the same prior draws."""
    p_ref, p_x = power_spectrum(reference)[support], power_spectrum(x)[support]
    ratio = p_ref / p_x
    return ((power_spectrum(x - reference)[support] / p_ref).mean() + 0.5 * (ratio - 1 - ratio.log()).mean()).item()


def fit_key(model_id: str, proc: VPProcess, method: str, steps: int, batch: int, seed: int) -> str:
    """``<method>-<steps>-<hash>``: the hash covers the model, the process's schedule and ``t_min`` and the objective."""
    settings = (model_id, type(proc.schedule).__name__, vars(proc.schedule), proc.t_min, method, steps, batch, seed,
                REFERENCE, DEGREE, EVALUATIONS)
    return f"{method}-{steps}-{hashlib.sha256(repr(settings).encode()).hexdigest()[:16]}"


def fitted_grid(denoiser: Denoiser, proc: VPProcess, method: str, steps: int, model_id: str | None = None,
                cache_dir: str | Path | None = None, batch: int = FIT_BATCH, seed: int = 0,
                device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The grid ``(steps + 1,)`` float64, ``1 → 0``, that brings ``method``'s samples closest to the reference's.

    Args:
        denoiser: ``D(x, t)`` as the sampler will call it, ``x`` ``(batch, C, *spatial)``, ``t`` ``(batch,)``.
        method: a deterministic method (``DETERMINISTIC``): stochastic samplers draw other noise on every
            grid, so their samples from one ``x_1`` are not comparable with the reference's.
        model_id: names the denoiser in the cache key (e.g. the sha256 of its weights); needed with ``cache_dir``.
        batch, seed: the held prior draws ``x_1`` ``(batch, C, *spatial)``, drawn with ``seed`` on ``device``.
    """
    from scipy.optimize import minimize  # only here: sampling needs no scipy

    if check_method(method) not in DETERMINISTIC:
        raise ValueError(f"method must be one of {list(DETERMINISTIC)} for a fitted grid, got {method!r} "
                         "(it injects noise, so its samples cannot be compared with a reference path)")
    steps = check_steps(steps)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    if cache_dir is not None and not model_id:
        raise ValueError("model_id must name the denoiser (e.g. its weights' sha256) when cache_dir is given")
    path = None if cache_dir is None else Path(cache_dir) / f"{fit_key(model_id, proc, method, steps, batch, seed)}.json"
    if path is not None and path.is_file():
        return torch.tensor(json.loads(path.read_text())["t_grid"], dtype=torch.float64)

    counted = Counted(denoiser)
    g = torch.Generator(device or "cpu").manual_seed(seed)
    x_1 = proc.prior_sample(batch, generator=g, device=device, dtype=dtype)
    reference = sample(counted, proc, batch, REFERENCE[0], REFERENCE[1], x_T=x_1)
    default = time_grid(proc, steps)

    def error(t_grid: torch.Tensor) -> float:
        return trajectory_error(sample(counted, proc, batch, method, t_grid=t_grid, x_T=x_1), reference, proc.cov.support)

    def log_error(coefficients: np.ndarray) -> float:
        t_grid = _grid(proc, fitted_theta(coefficients, steps))
        if not (t_grid[1:] < t_grid[:-1]).all():  # gaps below float64's resolution: two times coincide
            return math.inf
        e = error(t_grid)
        return math.log(e) if math.isfinite(e) else math.inf  # NaN or inf: a sampler that diverged

    start = np.append(np.zeros(DEGREE), SLACK_START)
    error_default = error(default)
    grid, best = default, error_default
    if steps > 1:
        fit = minimize(log_error, start, method="Nelder-Mead", options={
            "maxfev": EVALUATIONS, "initial_simplex": start + np.vstack([np.zeros(DEGREE + 1), np.diag(SIMPLEX)])})
        if math.exp(fit.fun) < best:
            grid, best = _grid(proc, fitted_theta(fit.x, steps)), math.exp(fit.fun)
    if path is not None:
        record = {"method": method, "steps": steps, "model_id": model_id, "t_grid": grid.tolist(),
                  "trajectory_error": best, "trajectory_error_default": error_default,
                  "reference": list(REFERENCE), "batch": batch, "seed": seed, "denoiser_calls": counted.calls,
                  "nfe_per_run": nfe(method, steps)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(path)
    return grid
