"""``sagd eval``: sample a trained run, score the samples against its test split, write its report.

Appends one record ``{"kind": "eval", "step", "fid", "kid_mean", "kid_se", "precision", "recall",
"lsd", ...}`` to ``RUN/metrics.jsonl`` and writes ``RUN/report.html`` with its figures in
``RUN/report/``. Reference statistics of the test split are cached (``metrics.cache_dir()``).

A split that training streams (``training_data.streamed_split``) is never loaded whole: FID's
statistics are read from it a batch at a time (``metrics.streamed_reference_stats``), and the
image-level scores take evenly spaced images of it: ``max(n, NN_IMAGES)`` test images (KID and
precision/recall, unless the cache keeps the whole split's features; LSD, RAPS, band energies) and
a pool of up to ``NN_POOL`` training images (``NN_POOL_BYTES`` of float32 at most) for the
nearest-neighbour figure and ratio. The record says how many (``n_reference_images``, ``nn_pool``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import time
from pathlib import Path

import torch

from .. import diffusion, report
from ..data import load_dataset
from ..diffusion import METHODS
from ..diffusion.samplers import time_grid
from ..metrics import cache_dir, evaluate_samples, raps, reference_stats, relative_band_energy, streamed_reference_stats
from ..run import Run, load_run, sample_process, sampler_denoiser
from ..spectral import parse_spec, profiles
from ..training_data import streamed_split
from .features import add_features_flag

NEIGHBOUR_ROWS, NEIGHBOURS = 8, 3  # samples shown with their nearest training images, and how many each
NN_IMAGES = 256  # samples (and test images) behind the nearest-neighbour distance ratio
TRAJECTORIES = 4
NN_POOL, NN_POOL_BYTES = 10_000, 2**30  # training images a streamed split's samples are matched against


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="score a trained run and write its report",
                              description="Sample a run's EMA weights, compute FID, KID, precision, recall, "
                                          "log-spectral distance (and the energy in the spectrum's stopped bands) "
                                          "against the test split, append them to RUN/metrics.jsonl and write "
                                          "RUN/report.html.")
    p.add_argument("--run", metavar="DIR", required=True, help="a run folder written by sagd train")
    p.add_argument("--n", type=int, default=2000, metavar="N", help="number of samples (default 2000)")
    p.add_argument("--method", choices=sorted(METHODS), default="ddim", help="sampler (default ddim)")
    p.add_argument("--sampling-steps", type=int, default=50, metavar="N", help="sampler steps (default 50)")
    p.add_argument("--batch-size", type=int, default=256, metavar="N", help="samples per batch (default 256)")
    add_features_flag(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", metavar="DIR", help="where the data set lies (default: the run's data_root)")
    p.set_defaults(func=run)


def stopped_bands(spectrum: str) -> list[tuple[float, float, str]]:
    """``(low, high, unit)`` of every ``band_stop`` term of a spectrum spec."""
    unit = inspect.signature(profiles.band_stop).parameters["unit"].default
    return [(kw["low"], kw["high"], kw.get("unit", unit)) for name, kw in parse_spec(spectrum) if name == "band_stop"]


def nearest(queries: torch.Tensor, pool: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """RMS pixel distances ``(Q, k)`` and indices ``(Q, k)`` of the ``k`` images of ``pool`` ``(N, C, H, W)``
    nearest to each of ``queries`` ``(Q, C, H, W)``."""
    d = torch.cdist(queries.flatten(1), pool.flatten(1)) / queries[0].numel() ** 0.5
    return d.topk(k, dim=1, largest=False)


def score(samples: torch.Tensor, test: torch.Tensor, train: torch.Tensor, extractor, reference,
          spectrum: str, seed: int) -> dict:
    """Every number of the eval record for ``samples`` against ``test`` (and ``train`` for the NN ratio)."""
    out = evaluate_samples(samples, test, extractor, reference, generator=torch.Generator().manual_seed(seed))
    for low, high, unit in stopped_bands(spectrum):
        out[f"rel_band_energy_{low:g}-{high:g}_{unit}"] = relative_band_energy(samples, test, low, high, unit)
    m = min(NN_IMAGES, len(samples), len(test))
    d_samples, _ = nearest(samples[:m], train, 1)
    d_test, _ = nearest(test[:m], train, 1)
    out["nn_ratio"] = float(d_samples.median() / d_test.median())
    radii, p_data = raps(test)
    out["raps"] = {"radii": radii.tolist(), "data": p_data.tolist(), "samples": raps(samples)[1].tolist()}
    return out


def write_figures(run_: Run, samples: torch.Tensor, train: torch.Tensor, record: dict, train_records: list[dict],
                  generator: torch.Generator) -> dict[str, Path]:
    """The report's figures in ``run_.dir/report/``: ``{section heading: png}``."""
    from ..train import save_grid

    net, proc, cfg = run_.net, run_.proc, run_.cfg
    folder = run_.dir / report.FIGURES
    grid = folder / "samples.png"
    save_grid(samples[:64], grid)
    figures = {f"Samples (first {min(64, len(samples))} of {len(samples)})": grid}

    d, idx = nearest(samples[:NEIGHBOUR_ROWS], train, NEIGHBOURS)
    figures["Nearest training images (RMS pixel distance): a memorisation check"] = report.neighbours_figure(
        samples[:NEIGHBOUR_ROWS], train[idx], d, folder / "neighbours.png")

    r = record["raps"]
    figures["Radially averaged power spectra"] = report.raps_figure(
        {"test data": (r["radii"], r["data"]), f"samples ({len(samples)})": (r["radii"], r["samples"])},
        folder / "raps.png", f"RAPS, log-spectral distance {record['lsd']:.2f} dB")
    if isinstance(proc, diffusion.VPProcess):  # a frequency-diagonal process (blurring, inverse heat) noises white
        figures["Noise spectrum and one noise draw"] = report.noise_figure(proc, folder / "noise.png", generator)

    device = next(net.parameters()).device
    labels = None if net.num_classes is None else torch.arange(TRAJECTORIES, device=device) % net.num_classes
    method, steps = record["method"], record["sampling_steps"]
    denoiser = sampler_denoiser(net, proc, cfg.prediction, labels, clip=cfg.sample_clip)
    g = torch.Generator(device).manual_seed(record["seed"] + 1)
    _, trajectory = sample_process(denoiser, proc, TRAJECTORIES, method, steps=steps, generator=g, device=device,
                                   return_trajectory=True)
    ts = time_grid(proc, steps, METHODS[method][1]).tolist()
    decode = (lambda x: x) if run_.vae is None else run_.vae.decode  # noqa: E731
    figures[f"Denoising trajectories ({method}, {steps} steps)"] = report.trajectory_figure(
        [decode(x).cpu() for x in trajectory], ts, folder / "trajectory.png")

    if train_records:
        figures["Training loss"] = report.loss_figure(
            {"loss": ([t["step"] for t in train_records], [t["loss"] for t in train_records])}, folder / "loss.png")
    return figures


def spread(source, m: int, workers: int = 2) -> torch.Tensor:
    """``min(m, len(source))`` evenly spaced images ``(m, C, H, W)`` of a map-style ``source``, first and last included."""
    m = min(m, len(source))
    picked = torch.linspace(0, len(source) - 1, m).round().long().unique().tolist()
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(source, picked), batch_size=256, num_workers=workers)
    return torch.cat([images for images, _ in loader])


def run(args: argparse.Namespace) -> None:
    if args.n < 4 or args.sampling_steps < 1 or args.batch_size < 1:
        raise ValueError("--n must be >= 4, --sampling-steps and --batch-size >= 1")
    run_ = load_run(args.run, "cuda" if torch.cuda.is_available() else "cpu")
    cfg, run_dir = run_.cfg, run_.dir
    root = args.data_root or cfg.data_root
    test_source, train_source = (streamed_split(cfg, split) for split in ("test", "train"))
    test = load_dataset(cfg.dataset, "test", root=root).images if test_source is None else None
    shape = tuple(test.shape[1:]) if test is not None else tuple(test_source.shape)
    if shape != run_.image_shape:
        raise ValueError(f"run {str(run_dir)!r} samples images of shape {run_.image_shape}, its test split has {shape}")
    extractor = run_.extractor(args.features, args.inception_weights)

    start = time.time()
    samples = run_.draw(args.n, torch.Generator(run_.device).manual_seed(args.seed), args.method,
                        args.sampling_steps, args.batch_size)
    seconds = time.time() - start
    key, cache = f"{cfg.dataset}/test", cache_dir() / "reference"
    if test_source is None:
        reference = reference_stats(extractor, test, key, cache)
    else:
        reference = streamed_reference_stats(extractor, test_source, key, cache)
        test = spread(test_source, max(args.n, NN_IMAGES))
    if train_source is None:
        train = load_dataset(cfg.dataset, "train", root=root).images
    else:
        train = spread(train_source, min(NN_POOL, max(1, NN_POOL_BYTES // (4 * math.prod(shape)))))
    record = {"kind": "eval", "step": run_.step, "n": args.n, "method": args.method,
              "sampling_steps": args.sampling_steps, "sample_clip": cfg.sample_clip, "seed": args.seed,
              "features": extractor.name, "reference": key, "n_reference": reference.n,
              "n_reference_images": len(test), "nn_pool": len(train), "sampling_seconds": round(seconds, 1),
              **score(samples, test, train, extractor, reference, cfg.spectrum, args.seed)}
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")

    train_records, evals = report.read_records(run_dir)
    figures = write_figures(run_, samples, train, record, train_records, torch.Generator().manual_seed(args.seed))
    title = f"{run_dir.resolve().name}: {cfg.dataset}, {cfg.spectrum if cfg.process == 'sagd' else cfg.process}, " \
            f"step {run_.step}"
    page = report.write_html(run_dir, title, cfg.to_dict(), evals, figures)
    print(f"step {run_.step}: FID {record['fid']:.3f}, KID {record['kid_mean']:.4f} ± {record['kid_se']:.4f}, "
          f"precision {record['precision']:.3f}, recall {record['recall']:.3f}, LSD {record['lsd']:.2f} dB "
          f"({extractor.name}, {args.n} samples); wrote {page}")
