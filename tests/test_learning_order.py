"""The learning-order probe against the exact Gaussian denoiser, and its records in a training run."""

import json

import torch

from oracles import GaussianOracle, power_law_power
from sagd import diffusion, learning_order, spectral
from sagd.config import TrainConfig
from sagd.train import train


def test_probe_measures_the_exact_denoisers_band_errors():
    shape = (1, 16, 16)
    cov = spectral.power_law(shape, alpha=-0.5)
    proc = diffusion.VPProcess(cov)
    oracle = GaussianOracle(proc, power_law_power(shape, -2.0))
    x0 = oracle.sample(4000, torch.Generator().manual_seed(123))  # not the probe's noise seed
    probe = learning_order.Probe(proc, x0, times=(0.3, 0.7))
    record = probe(oracle.denoiser)
    # closed form: per frequency the Wiener error σ² w P / (α² P + σ² w), summed over a band, over Σ P
    r = spectral.radial_frequency(shape[1:], unit="nyquist")
    P, w = oracle.power[0], cov.weights[0]
    edges = list(record["probe_edges"]) + [float("inf")]
    for i, t in enumerate(record["probe_t"]):
        a, s = oracle.coefficients(t)
        err = s**2 * w * P / (a**2 * P + s**2 * w)
        for b in range(len(edges) - 1):
            band = (r >= edges[b]) & (r < edges[b + 1])
            expected = (err[band].sum() / P[band].sum()).item()
            assert abs(record["probe_error"][i][b] / expected - 1) < 0.05
    # a denoiser that returns zero has error 1 in every band
    assert all(abs(e - 1) < 1e-9 for row in probe(lambda x, t: torch.zeros_like(x))["probe_error"] for e in row)


def test_training_logs_the_probe(tmp_path):
    cfg = TrainConfig(out=str(tmp_path / "run"), dataset="digits", pad_to=8, steps=4, batch_size=8, probe_every=2,
                      probe_n=16, checkpoint_every=4, sample_every=100, sample_n=4, sample_steps=2)
    train(cfg)
    probes = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
              if '"probe"' in line]
    assert [p["step"] for p in probes] == [0, 2, 4]
    assert all(len(p["probe_error"]) == 3 and len(p["probe_error"][0]) == 6 for p in probes)


def test_a_fresh_run_drops_stale_records_of_its_folder(tmp_path):
    """Records left by a run that never checkpointed are not mixed into a fresh run's log."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 0, "kind": "probe", "stale": true}\n{"step": 50, "loss": 9.0}\n')
    cfg = TrainConfig(out=str(out), dataset="digits", pad_to=8, steps=2, batch_size=8, probe_every=2,
                      probe_n=16, checkpoint_every=2, sample_every=100, sample_n=4, sample_steps=2)
    train(cfg)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("kind") == "probe"] == [0, 2]
    assert not any(r.get("stale") or r.get("loss") == 9.0 for r in records)
