"""Time grids optimised on the exact evaluator (``sagd.diffusion.grids``)."""

import json

import pytest
import torch

from oracles import GaussianOracle, power_law_power, spectrum
from sagd import diffusion, spectral
from sagd.diffusion import exact

SHAPE = (1, 8, 8)
POWER = power_law_power(SHAPE, -2.0, scale=0.3)


@pytest.mark.parametrize("method, steps", [("ddim", 4), ("dpmpp_2m", 4), ("dpmpp_2m_sde", 4)])
def test_optimized_grid_beats_the_default(method, steps, tmp_path):
    cov = spectral.power_law(SHAPE, alpha=0.5)  # a blue Σ on red data: every frequency has its own SNR
    proc = diffusion.VPProcess(cov)
    data = exact.GaussianData(POWER)
    grid = diffusion.optimized_grid(proc, data, method, steps, cache_dir=tmp_path, eps_error=0.0)
    assert len(grid) == steps + 1 and grid[0] == 1 and grid[-1] == 0 and (grid[1:] < grid[:-1]).all()
    assert grid[-2] >= proc.t_min  # never below the times the model was trained on
    default = exact.evaluate(data, proc, method, steps)
    tuned = exact.evaluate(data, proc, method, t_grid=grid)
    assert tuned["kl"] < 0.5 * default["kl"], (tuned, default)

    # and Monte Carlo with the oracle agrees: samples on the tuned grid are closer to the data
    oracle = GaussianOracle(proc, POWER)
    errors = []
    for t_grid in (None, grid):
        x = diffusion.sample(oracle.denoiser, proc, 2000, method=method, steps=steps, t_grid=t_grid,
                             generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        errors.append((spectrum(x) / POWER).log().abs().mean().item())
    assert errors[1] < 0.7 * errors[0], errors


def test_optimized_grid_is_cached(tmp_path):
    proc = diffusion.VPProcess(spectral.isotropic(SHAPE))
    data = exact.GaussianData(POWER)
    grid = diffusion.optimized_grid(proc, data, "ddim", 3, cache_dir=tmp_path, eps_error=0.0)
    (path,) = tmp_path.glob("ddim-3-*.json")
    record = json.loads(path.read_text())
    assert record["t_grid"] == grid.tolist() and record["kl"] <= record["kl_default"]
    record["t_grid"] = [1.0, 0.5, 0.25, 0.0]  # what is read back is the file, not a new optimisation
    path.write_text(json.dumps(record))
    again = diffusion.optimized_grid(proc, data, "ddim", 3, cache_dir=tmp_path, eps_error=0.0)
    assert again.tolist() == [1.0, 0.5, 0.25, 0.0]
    other = diffusion.optimized_grid(proc, exact.GaussianData(2 * POWER), "ddim", 3, cache_dir=tmp_path, eps_error=0.0)
    robust = diffusion.optimized_grid(proc, data, "ddim", 3, cache_dir=tmp_path)  # the default eps_error: its own entry
    assert other.tolist() != again.tolist() != robust.tolist() and len(list(tmp_path.glob("*.json"))) == 3
    assert diffusion.optimized_grid(proc, data, "ddim", 1).tolist() == [1.0, 0.0]


def test_robust_grid_survives_denoiser_error():
    """Optimised for an ε error of 0.05, a grid beats the default under errors of 0 and 0.1 alike."""
    proc = diffusion.VPProcess(spectral.power_law(SHAPE, alpha=0.5))
    data = exact.GaussianData(POWER)
    grid = diffusion.optimized_grid(proc, data, "dpmpp_2m", 4)
    for error in (0.0, 0.1):
        tuned = exact.kl(exact.sample_law(data, proc, "dpmpp_2m", t_grid=grid, eps_error=error), data)
        default = exact.kl(exact.sample_law(data, proc, "dpmpp_2m", 4, eps_error=error), data)
        assert tuned < default, (error, tuned, default)


@pytest.mark.paths
def test_sample_cli_uses_the_optimized_grid(tmp_path, monkeypatch):
    import numpy as np
    import yaml

    from sagd.cli import main
    from sagd.run import load_run

    monkeypatch.setenv("SAGD_CACHE", str(tmp_path / "cache"))
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(dict(dataset="digits", model="tiny", spectrum="power_law:alpha=-0.5", batch_size=8,
                                       log_every=1, checkpoint_every=2, sample_every=1000)))
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(run), "--steps", "2"]) == 0
    args = ["sample", "--run", str(run), "--n", "3", "--method", "dpmpp_2m", "--sampling-steps", "3", "--seed", "1"]
    assert main([*args, "--grid", "optimized", "--out", str(tmp_path / "gen")]) == 0
    (path,) = (tmp_path / "cache" / "grids").glob("dpmpp_2m-3-*.json")
    grid = torch.tensor(json.loads(path.read_text())["t_grid"], dtype=torch.float64)
    assert not torch.equal(grid, diffusion.time_grid(diffusion.VPProcess(spectral.isotropic(SHAPE)), 3))
    saved = np.load(tmp_path / "gen" / "samples.npz")
    assert str(saved["grid"]) == "optimized"
    x, _ = load_run(run).sample(3, torch.Generator().manual_seed(1), "dpmpp_2m", t_grid=grid)
    torch.testing.assert_close(torch.from_numpy(saved["images"]), x, rtol=0, atol=0)  # the same sampling, bit for bit
