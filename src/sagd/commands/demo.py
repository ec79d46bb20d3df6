"""``sagd demo``: a small SAGD run end to end, sized to about ten minutes on two CPU cores.

Trains the ``tiny`` UNet on Fashion-MNIST for a wall-clock budget (``--minutes``, default 7)
with red power-law noise (``power_law:alpha=-0.5``: more noise at low frequencies; ``k0`` is one
frequency bin, so the DC weight stays in line with its neighbours) and the ``v`` parametrisation
(an undertrained ``eps`` model's ``x0`` estimate is off by ``σ/α`` times its error, which
deterministic samplers carry into the samples). Then draws 2000 samples from the EMA weights
(DPM-Solver++(2M), 25 steps) and judges them: in-domain FID against the test split (the shipped
Fashion-MNIST classifier's features), beside the FID that longer runs of the same UNet reach in
the committed benchmarks (``benchmarks/results/``), and the radially averaged power spectra of
data and samples. Uses a GPU when there is one. ``configs/demo.yaml`` is the same configuration.

Writes to ``--out``: the run (``config.yaml``, ``metrics.jsonl``, ``checkpoints/``, ``samples/``),
``samples.png`` (128 of the samples), ``spectra.png``, ``fid.png`` (FID against training images
seen, the demo beside the reference runs) and ``demo.json`` (the numbers printed at the end).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

from ..config import TrainConfig
from ..data import load_dataset
from ..metrics import cache_dir, feature_stats, frechet_distance, power_spectrum, radial_average, reference_stats
from ..report import figure, save
from .train import add_run_flags, overrides

# the reference runs' sampling (benchmarks/equal_compute.py, fid_signal.py): FID depends on both
FID_SAMPLES, FID_METHOD, FID_STEPS = 2000, "dpmpp_2m", 25
GRID = 128
RESULTS = Path(__file__).resolve().parents[3] / "benchmarks" / "results"  # in a source checkout
DEMO = dict(
    out="runs/demo",
    dataset="fashion_mnist",
    spectrum="power_law:alpha=-0.5",
    prediction="v",
    model="tiny",
    steps=50_000,
    max_minutes=7.0,
    batch_size=32,
    lr=1e-3,
    warmup=100,
    ema_decay=0.999,
    log_every=25,
    sample_every=50_000,
    checkpoint_every=500,
    keep_checkpoints=2,
    sample_n=64,
    sample_steps=50,
)


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="train and sample a tiny SAGD model in about ten minutes",
                              description="Train the tiny UNet with red power-law noise for --minutes, sample it, "
                                          "and score the samples: in-domain FID against the test split beside what "
                                          "longer runs reach, and data vs sample power spectra. See configs/demo.yaml.")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/demo)")
    add_run_flags(p)
    p.set_defaults(func=run)


def spectra_plot(data: torch.Tensor, samples: torch.Tensor, path: Path) -> float:
    """Plot radially averaged power spectra of ``data`` and ``samples`` ``(N, C, H, W)``.

    Returns the mean ``|log10(P_samples / P_data)|`` over rings (0 = identical spectra).
    """
    r, p_data = radial_average(power_spectrum(data).mean(0))
    _, p_samples = radial_average(power_spectrum(samples).mean(0))
    err = (p_samples / p_data).log10().abs().mean().item()
    fig, ax = figure(1, width=5.5)
    a = ax[0, 0]
    a.loglog(r[1:], p_data[1:], "o-", ms=3, label=f"data ({len(data)})")
    a.loglog(r[1:], p_samples[1:], "s-", ms=3, label=f"samples ({len(samples)})")
    a.set(xlabel="|k| (cycles/pixel)", ylabel="mean power",
          title=f"radially averaged power spectra (DC omitted)\nmean |log10 ratio| = {err:.3f}")
    a.legend()
    save(fig, path)
    return err


def reference_runs(features: str, results: Path = RESULTS) -> list[dict]:
    """The committed FIDs of longer runs of the ``tiny`` UNet on Fashion-MNIST scored with ``features``.

    Each is ``{"spectrum", "steps", "batch_size", "fid", "source"}``, read from the benchmarks'
    JSON (``equal_compute.json``, ``fid_signal.json``); none where they are not on disk or used
    other features.
    """
    runs = {}
    for name in ("fid_signal.json", "equal_compute.json"):
        path = results / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        if data.get("features") != features:
            continue
        for row in data["rows"]:
            if "steps" in row:
                run = {k: row[k] for k in ("spectrum", "steps", "batch_size")}
            elif m := re.fullmatch(r"tiny UNet, (\d+) steps × batch (\d+)", row["set"]):
                run = {"spectrum": data["train_config"]["spectrum"], "steps": int(m[1]), "batch_size": int(m[2])}
            else:
                continue
            runs[tuple(run.values())] = {**run, "fid": row["fid"], "source": f"benchmarks/results/{name}"}
    return sorted(runs.values(), key=lambda r: (r["steps"] * r["batch_size"], r["spectrum"]))


def fid_plot(demo: dict, references: list[dict], path: Path) -> None:
    """FID against training images seen (steps × batch): the demo beside ``references``."""
    fig, ax = figure(1, width=5.5)
    a = ax[0, 0]
    for spectrum in sorted({r["spectrum"] for r in references}):
        rows = [r for r in references if r["spectrum"] == spectrum]
        a.plot([r["steps"] * r["batch_size"] for r in rows], [r["fid"] for r in rows], "o--", ms=5,
               label=f"{spectrum}: " + ", ".join(f"{r['fid']:.1f}" for r in rows))
    a.plot([demo["steps"] * demo["batch_size"]], [demo["fid"]], "*", ms=14, color="crimson",
           label=f"this demo, {demo['spectrum']}: {demo['fid']:.1f}")
    a.set_xscale("log")
    a.set(xlabel="training images seen (steps × batch)", ylabel=f"FID ({demo['fid_samples']} samples)",
          title=f"in-domain FID against the test split: {demo['fid']:.1f}\nafter {demo['steps']} steps "
                f"in {demo['minutes']:g} min")
    a.legend(fontsize=8, title="tiny UNet on Fashion-MNIST" if references else None, title_fontsize=8)
    save(fig, path)


def run(args: argparse.Namespace) -> None:
    from ..run import load_run
    from ..train import save_grid, train

    cfg = TrainConfig.from_dict(DEMO).replace(**overrides(args, ("out", "dataset", "data_root", "spectrum",
                                                                   "seed", "minutes")))
    out = train(cfg)
    run_ = load_run(out, "cuda" if torch.cuda.is_available() else "cpu")
    x = run_.draw(FID_SAMPLES, torch.Generator(run_.device).manual_seed(cfg.seed + 1), FID_METHOD, FID_STEPS, 250)
    save_grid(x[:GRID], out / "samples.png")
    test = load_dataset(cfg.dataset, "test", root=cfg.data_root)
    err = spectra_plot(test.images[:len(x)], x, out / "spectra.png")

    extractor = run_.extractor()
    ref = reference_stats(extractor, test.images, f"{cfg.dataset}/test", cache_dir() / "reference")
    demo = {"dataset": cfg.dataset, "spectrum": cfg.spectrum, "steps": run_.step, "batch_size": cfg.batch_size,
            "minutes": cfg.max_minutes, "fid": frechet_distance(*feature_stats(extractor(x)), ref.mu, ref.cov),
            "fid_samples": len(x), "sampler": f"{FID_METHOD}, {FID_STEPS} steps", "features": extractor.name,
            "reference": f"{cfg.dataset}/test ({len(test)} images)", "spectra_mean_abs_log10_ratio": err}
    references = reference_runs(extractor.name) if cfg.dataset == "fashion_mnist" else []
    (out / "demo.json").write_text(json.dumps({**demo, "reference_runs": references}, indent=1) + "\n")
    fid_plot(demo, references, out / "fid.png")

    print(f"trained {demo['steps']} steps × batch {cfg.batch_size} in {cfg.max_minutes:g} min; "
          f"in-domain FID {demo['fid']:.1f} ({len(x)} samples, {demo['sampler']}, against {demo['reference']})")
    if references:
        print("longer runs of the same UNet reach: " + "; ".join(
            f"{r['steps']} steps × batch {r['batch_size']} ({r['spectrum']}): {r['fid']:.1f}" for r in references)
            + f" ({', '.join(sorted({r['source'] for r in references}))})")
    print(f"spectra mean |log10 ratio| {err:.3f}; wrote samples.png, spectra.png, fid.png and demo.json in {out}")
