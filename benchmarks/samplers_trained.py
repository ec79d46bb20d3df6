"""Samplers on trained networks: ours (default, Gaussian-optimised and fitted grids) beside diffusers' schedulers.

The suite's kept EMA networks (``benchmarks/models/<plan>/A/*.safetensors``: bf16 weights of the ``tiny`` UNet,
their training config in the file's metadata) are sampled at equal NFE by

* our methods (``diffusion.sample``) on the method's default grid, the grid ``optimized_grid`` places for
  the Gaussian with the training set's spectrum (``--grid optimized``), and the grid fitted to the network
  itself (``diffusion.fitted_grid``, ``--grid fitted``; deterministic methods), and
* diffusers' schedulers through ``sagd.diffusers_interop`` (colored latents and step noise; Euler ancestral,
  which takes no ``variance_noise``, gets its draws colored in place), each with its Karras / Lu / trailing
  options, the network evaluated at exactly the noise level each assumes (``samplers.run_diffusers``).

NFE are counted by wrapping the denoiser and counting its calls. Every sampler starts from the same colored
prior draws (one seed per chunk of ``--batch`` images), so rows of a seed are paired. FID is the suite's
in-domain one (``suite.Scorer.fid``: classifier features, against the whole test split); ``--inception``
adds Inception-768 (about 3 minutes per 1000 images on one core). Per row: mean over sampling seeds and the
half-width of its 95 % t interval; per model and budget: our best against diffusers' best, and their paired
difference over seeds. Writes ``benchmarks/results/samplers_trained.{json,md}`` (``--quick``:
``samplers_trained_quick.*``, one model, 2 seeds of 16 samples, four samplers, in about a minute).

    OMP_NUM_THREADS=1 python benchmarks/samplers_trained.py [--nfe 5 10 20] [--samples 2000] [--seeds 3]
        [--models benchmarks/models/mnist/A/*.safetensors] [--samplers NAME ...] [--inception] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       HeunDiscreteScheduler, UniPCMultistepScheduler)
from diffusers.schedulers import scheduling_euler_ancestral_discrete

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_table  # noqa: E402
from protocol import Paired, paired_test  # noqa: E402
from samplers import run_diffusers  # noqa: E402
from suite import Scorer, inception_scores  # noqa: E402

from sagd import diffusion  # noqa: E402
from sagd.checkpoint import file_sha256  # noqa: E402
from sagd.config import TrainConfig  # noqa: E402
from sagd.diffusion.fitted_grids import DETERMINISTIC, FIT_BATCH  # noqa: E402
from sagd.diffusion.samplers import Counted  # noqa: E402
from sagd.metrics.reference import cache_dir  # noqa: E402
from sagd.models import Network  # noqa: E402
from sagd.run import sampler_denoiser  # noqa: E402
from sagd.spectral import from_spec  # noqa: E402

MODELS = sorted((Path(__file__).resolve().parent / "models" / "mnist" / "A").glob("*.safetensors"))
OURS = ("ddim", "heun", "dpmpp_2m", "dpmpp_3m", "dpmpp_2m_sde", "euler_maruyama", "ddpm")
GRIDS = ("default", "optimized", "fitted")


def _variants(name: str, make, options: dict) -> dict:
    """``name`` and ``name <option>`` for each of diffusers' options (constructor keyword arguments)."""
    return {name: lambda: make()} | {f"{name} {o}": (lambda kw=kw: make(**kw)) for o, kw in options.items()}


KARRAS, LU, TRAILING = {"use_karras_sigmas": True}, {"use_lu_lambdas": True}, {"timestep_spacing": "trailing"}
# name -> (constructor, draws step noise); Heun makes two NFE per step but the last
THEIRS = {
    **_variants("DDIM", lambda **kw: DDIMScheduler(clip_sample=False, set_alpha_to_one=True, **kw),
                {"trailing": TRAILING}),
    **_variants("DPM++ 2M", lambda **kw: DPMSolverMultistepScheduler(solver_order=2, **kw),
                {"karras": KARRAS, "lu": LU, "trailing": TRAILING}),
    **_variants("DPM++ 3M", lambda **kw: DPMSolverMultistepScheduler(solver_order=3, **kw),
                {"karras": KARRAS, "lu": LU, "trailing": TRAILING}),
    **_variants("DPM++ 2M SDE", lambda **kw: DPMSolverMultistepScheduler(
        solver_order=2, algorithm_type="sde-dpmsolver++", **kw), {"karras": KARRAS, "lu": LU}),
    **_variants("UniPC 2", lambda **kw: UniPCMultistepScheduler(solver_order=2, **kw),
                {"karras": KARRAS, "trailing": TRAILING}),
    **_variants("UniPC 3", lambda **kw: UniPCMultistepScheduler(solver_order=3, **kw),
                {"karras": KARRAS, "trailing": TRAILING}),
    **_variants("Heun", lambda **kw: HeunDiscreteScheduler(**kw), {"karras": KARRAS, "trailing": TRAILING}),
    **_variants("Euler a", lambda **kw: EulerAncestralDiscreteScheduler(**kw), {"trailing": TRAILING}),
}
STOCHASTIC = {n for n in THEIRS if "SDE" in n}  # take colored variance_noise (diffusers_interop.step)
ANCESTRAL = {n for n in THEIRS if n.startswith("Euler a")}  # draw their own noise: colored in place
QUICK = ("dpmpp_2m/default", "dpmpp_2m/fitted", "DPM++ 2M karras", "Euler a")


class Model:
    """A kept network as a sampler sees it: its config, process, denoiser, and the sha256 of its file."""

    def __init__(self, path: Path):
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        config = json.loads(meta["config"])
        self.cfg = TrainConfig(**config)
        if config["corrupt"] is not None or self.cfg.class_conditional or self.cfg.vae:
            raise SystemExit(f"--models {path}: an unconditional pixel-space network on clean data is needed")
        self.path, self.name, self.sha256, self.step = path, path.stem, file_sha256(path), int(meta["step"])
        shape = (1, self.cfg.pad_to, self.cfg.pad_to)
        net = Network(self.cfg.model, shape, None)
        net.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
        self.net = net.eval()
        self.proc = diffusion.VPProcess(from_spec(self.cfg.spectrum, shape), self.cfg.schedule, self.cfg.noise)
        self.denoiser = sampler_denoiser(self.net, self.proc, self.cfg.prediction, clip=self.cfg.sample_clip)


@contextmanager
def colored_ancestral_noise(cov, generator: torch.Generator):
    """Within it, ``EulerAncestralDiscreteScheduler.step``'s noise (diffusers' ``randn_tensor``, no ``variance_noise``
    hook) is ``Σ^{1/2} z``, ``z`` drawn from ``generator``."""
    white = scheduling_euler_ancestral_discrete.randn_tensor
    scheduling_euler_ancestral_discrete.randn_tensor = lambda shape, dtype=None, **_: cov.sqrt(
        torch.randn(shape, generator=generator, dtype=dtype))
    try:
        yield
    finally:
        scheduling_euler_ancestral_discrete.randn_tensor = white


def grids_for(model: Model, method: str, nfe: int, wanted: set, fit_batch: int, train_data) -> dict:
    """``{grid name: (t_grid or None, seconds to make it)}`` for ``method`` at ``nfe`` on ``model``, the ``wanted``
    grids (cached: a second run of the benchmark makes none again)."""
    steps = diffusion.steps_for_nfe(method, nfe)
    make = {"default": lambda: None,
            "optimized": lambda: diffusion.optimized_grid(model.proc, train_data(), method, steps, cache_dir() / "grids"),
            "fitted": lambda: diffusion.fitted_grid(model.denoiser, model.proc, method, steps, model.sha256,
                                                    cache_dir() / "fitted_grids", batch=fit_batch)}
    out = {}
    for grid in wanted:
        start = time.time()
        out[grid] = (make[grid](), time.time() - start)
    return out


def draw(model: Model, sampler: str, nfe: int, t_grid, n: int, seed: int, batch: int) -> tuple[torch.Tensor, float]:
    """``n`` samples ``(n, 1, H, W)`` of ``sampler`` (ours: ``method/grid``) and the NFE per sample, counted."""
    counted, out = Counted(model.denoiser), []
    chunks = range(0, n, batch)
    for i, start in enumerate(chunks):
        g = torch.Generator().manual_seed(1_000_003 * seed + i)
        size = min(batch, n - start)
        x_T = model.proc.prior_sample(size, generator=g)  # the same draws for every sampler
        if "/" in sampler:
            method = sampler.split("/")[0]
            x = diffusion.sample(counted, model.proc, size, method, diffusion.steps_for_nfe(method, nfe),
                                 generator=g, x_T=x_T, t_grid=t_grid)
        else:
            steps = (nfe + 1) // 2 if sampler.startswith("Heun") else nfe
            unit = x_T / model.proc.sigma(torch.tensor(1.0, dtype=torch.float64)).item()
            with colored_ancestral_noise(model.proc.cov, g) if sampler in ANCESTRAL else _nothing():
                x, _ = run_diffusers(THEIRS[sampler], steps, model.proc.cov, counted, model.proc, unit, g,
                                     sampler in STOCHASTIC)
        out.append(x.clamp(-1, 1))
    return torch.cat(out), counted.calls / len(chunks)


@contextmanager
def _nothing():
    yield


def summarise(rows: list[dict]) -> list[dict]:
    """One entry per (model, side, sampler, grid, NFE budget): mean FID over seeds and its 95 % half-width."""
    keys = sorted({(r["model"], r["side"], r["sampler"], r["grid"], r["nfe_budget"]) for r in rows})
    out = []
    for model, side, sampler, grid, nfe in keys:
        mine = [r for r in rows if (r["model"], r["side"], r["sampler"], r["grid"], r["nfe_budget"])
                == (model, side, sampler, grid, nfe)]
        fid = Paired(tuple(r["fid"] for r in mine))
        entry = {"model": model, "side": side, "sampler": sampler, "grid": grid, "nfe_budget": nfe,
                 "nfe": sorted({r["nfe"] for r in mine}), "seeds": fid.n, "fid": fid.mean, "fid_half_width": fid.half_width()}
        if all("inception_768" in r for r in mine):
            inc = Paired(tuple(r["inception_768"] for r in mine))
            entry.update(inception_768=inc.mean, inception_768_half_width=inc.half_width())
        out.append(entry)
    return out


def verdicts(rows: list[dict], summary: list[dict]) -> list[dict]:
    """Per model and budget: our best and diffusers' best by mean FID, their ratio, the paired difference by seed."""
    out = []
    for model, nfe in sorted({(s["model"], s["nfe_budget"]) for s in summary}):
        best = {side: min((s for s in summary if (s["model"], s["nfe_budget"], s["side"]) == (model, nfe, side)),
                          key=lambda s: s["fid"], default=None) for side in ("sagd", "diffusers")}
        if None in best.values():
            continue

        def by_seed(s):
            return {r["seed"]: r["fid"] for r in rows if (r["model"], r["nfe_budget"], r["sampler"], r["grid"])
                    == (model, nfe, s["sampler"], s["grid"])}

        d = paired_test(by_seed(best["sagd"]), by_seed(best["diffusers"]))
        out.append({"model": model, "nfe_budget": nfe, "ours": f"{best['sagd']['sampler'].split('/')[0]} ({best['sagd']['grid']} grid)",
                    "ours_fid": best["sagd"]["fid"], "theirs": best["diffusers"]["sampler"],
                    "theirs_fid": best["diffusers"]["fid"], "ratio": best["sagd"]["fid"] / best["diffusers"]["fid"],
                    "paired_difference": d.mean, "paired_half_width": d.half_width(), "paired_p": d.p, "seeds": d.n})
    return out


def grid_effects(rows: list[dict]) -> list[dict]:
    """Per model, budget and method with more than the default grid: each other grid minus the default, paired by
    seed (the same prior draws), FID."""
    out = []
    for model, nfe, method in sorted({(r["model"], r["nfe_budget"], r["sampler"].split("/")[0])
                                      for r in rows if r["side"] == "sagd"}):
        fid = {grid: {r["seed"]: r["fid"] for r in rows if (r["model"], r["nfe_budget"], r["sampler"])
                      == (model, nfe, f"{method}/{grid}")} for grid in GRIDS}
        for grid in GRIDS[1:]:
            d = paired_test(fid[grid], fid["default"])
            if d.n:
                out.append({"model": model, "nfe_budget": nfe, "method": method, "grid": grid, "difference": d.mean,
                            "half_width": d.half_width(), "p": d.p, "seeds": d.n})
    return out


def write_outputs(result: dict, name: str) -> None:
    summary, rows = result["summary"], result["rows"]
    nfes = sorted({s["nfe_budget"] for s in summary})
    table = []
    for model in sorted({s["model"] for s in summary}):
        table += [f"**{model}** (in-domain FID, mean ± 95 % half-width over seeds; [counted NFE] where it is not "
                  "the budget)", "", "| side | sampler | grid | " + " | ".join(f"NFE {n}" for n in nfes) + " |",
                  "|---|---|---|" + "---:|" * len(nfes)]
        names = sorted({(s["side"], s["sampler"], s["grid"]) for s in summary if s["model"] == model},
                       key=lambda k: (k[0] != "sagd", k[1], GRIDS.index(k[2]) if k[2] in GRIDS else 0))
        for side, sampler, grid in names:
            cells = []
            for nfe in nfes:
                s = [s for s in summary if (s["model"], s["side"], s["sampler"], s["grid"], s["nfe_budget"])
                     == (model, side, sampler, grid, nfe)]
                cells.append("–" if not s else f"{s[0]['fid']:.2f} ± {s[0]['fid_half_width']:.2f}"
                             + ("" if s[0]["nfe"] == [nfe] else f" {s[0]['nfe']}"))
            table.append(f"| {side} | {sampler.split('/')[0]} | {grid} | " + " | ".join(cells) + " |")
        table.append("")
    lines = [f"* {v['model']}, NFE {v['nfe_budget']}: ours {v['ours_fid']:.2f} ({v['ours']}) vs diffusers "
             f"{v['theirs_fid']:.2f} ({v['theirs']}): ratio {v['ratio']:.2f}; paired difference over {v['seeds']} "
             f"seeds {v['paired_difference']:+.2f} ± {v['paired_half_width']:.2f} (p = {v['paired_p']:.2g})"
             for v in result["verdicts"]]
    lines += [f"* {e['model']}, NFE {e['nfe_budget']}, {e['method']}: {e['grid']} − default grid {e['difference']:+.2f} "
              f"± {e['half_width']:.2f} over {e['seeds']} seeds (p = {e['p']:.2g})" for e in result["grid_effects"]]
    seeds = sorted({r["seed"] for r in rows})
    table += [f"{result['samples']} samples per seed, seeds {seeds}, the same prior draws for every row of a seed; "
              f"in-domain FID ({result['features']}) against the whole test split; NFE counted by calls; fitted grids "
              f"from a held batch of {result['fit_batch']}. FID from few samples is biased upward, equally for every "
              "row of a table (same n); the best-of selections below are made on the same seeds they are scored on.",
              "", *lines]
    write_table(name, "Samplers on trained networks at equal NFE: sagd vs diffusers", table, result,
                script="samplers_trained")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, nargs="+", default=MODELS)
    p.add_argument("--nfe", type=int, nargs="+", default=[5, 10, 20])
    p.add_argument("--samples", type=int, default=2000, help="samples per sampling seed")
    p.add_argument("--seeds", type=int, default=3, help="sampling seeds 0 .. N-1")
    p.add_argument("--batch", type=int, default=50, help="images per sampler call (50 keeps a CPU core's cache warm)")
    p.add_argument("--samplers", nargs="+", help="only these: METHOD/GRID for ours (e.g. dpmpp_2m/fitted), "
                                                 "a THEIRS name for diffusers'")
    p.add_argument("--fit-batch", type=int, default=FIT_BATCH, help="held prior draws of the fitted grid's objective")
    p.add_argument("--inception", action="store_true", help="also Inception-768 FID (slow on a CPU)")
    p.add_argument("--quick", action="store_true", help="a one-minute check: one model, 2 seeds of 16, four samplers")
    p.add_argument("--report", action="store_true", help="only rewrite the JSON's summaries and the table from its rows")
    args = p.parse_args()
    if args.report:
        result = json.loads((RESULTS / "samplers_trained.json").read_text())
        rows = result["rows"]
        result.update(summary=summarise(rows), grid_effects=grid_effects(rows))
        result["verdicts"] = verdicts(rows, result["summary"])
        (RESULTS / "samplers_trained.json").write_text(json.dumps(result, indent=1))
        write_outputs(result, "samplers_trained")
        return
    if args.quick:
        args.models, args.nfe, args.samples, args.seeds = args.models[:1], [10], 16, 2
        args.samplers, args.fit_batch, args.batch = list(QUICK), 4, 16
    everything = [f"{m}/{g}" for m in OURS for g in GRIDS if g != "fitted" or m in DETERMINISTIC] + list(THEIRS)
    chosen = args.samplers or everything
    unknown = sorted(set(chosen) - set(everything))
    if unknown or min(args.nfe) < 1 or args.samples < 2 or args.seeds < 1:
        raise SystemExit(f"--samplers must name some of {everything} (unknown: {unknown}); --nfe >= 1, "
                         "--samples >= 2, --seeds >= 1")
    torch.set_num_threads(1)
    models = [Model(path) for path in args.models]
    datasets = {m.cfg.dataset for m in models}
    if len(datasets) != 1:
        raise SystemExit(f"--models: one data set at a time (got {sorted(datasets)})")
    scorer = Scorer("cpu", datasets.pop())
    train = {}

    def train_data():  # the Gaussian of the training set, loaded only when an optimised grid is made
        if not train:
            from sagd.data import load_dataset
            train["data"] = diffusion.GaussianData.from_images(
                load_dataset(scorer.dataset, "train", pad_to=models[0].cfg.pad_to).images)
        return train["data"]

    grids = {}
    for model in models:
        for nfe in args.nfe:
            for method in sorted({s.split("/")[0] for s in chosen if "/" in s}):
                wanted = {s.split("/")[1] for s in chosen if s.startswith(f"{method}/")}
                grids[model.name, nfe, method] = made = grids_for(model, method, nfe, wanted, args.fit_batch, train_data)
                print(f"[grids] {model.name} NFE {nfe} {method}: " + ", ".join(
                    f"{k} {v[1]:.0f} s" for k, v in made.items()), flush=True)
    name = "samplers_trained_quick" if args.quick else "samplers_trained"
    rows = []
    for seed in range(args.seeds):  # seed-major: a stopped run leaves whole seeds
        for model in models:
            for nfe in args.nfe:
                for sampler in chosen:
                    method, _, grid = sampler.partition("/")
                    t_grid = grids[model.name, nfe, method][grid][0] if grid else None
                    start = time.time()
                    x, used = draw(model, sampler, nfe, t_grid, args.samples, seed, args.batch)
                    row = {"model": model.name, "side": "sagd" if grid else "diffusers", "sampler": sampler,
                           "grid": grid or "scheduler", "nfe_budget": nfe, "nfe": used, "seed": seed,
                           "fid": scorer.fid(x), "sample_seconds": round(time.time() - start, 1),
                           "t_grid": None if t_grid is None else t_grid.tolist()}
                    if args.inception:
                        row["inception_768"] = inception_scores(x, scorer)["inception_fid"]["768"]
                    rows.append(row)
                    print({k: v for k, v in row.items() if k != "t_grid"}, flush=True)
                    summary = summarise(rows)
                    result = {"models": {m.name: {"file": str(m.path.relative_to(RESULTS.parent.parent)),
                                                  "sha256": m.sha256, "train_step": m.step,
                                                  "spectrum": m.cfg.spectrum, "noise": m.cfg.noise}
                                         for m in models},
                              "dataset": scorer.dataset, "features": scorer.extractor.name, "samples": args.samples,
                              "seeds": args.seeds, "batch": args.batch, "fit_batch": args.fit_batch,
                              "grid_seconds": {" ".join(map(str, k)): {g: round(v[1], 1) for g, v in made.items()}
                                               for k, made in grids.items()},
                              "summary": summary, "verdicts": verdicts(rows, summary),
                              "grid_effects": grid_effects(rows), "rows": rows,
                              "machine": machine()}
                    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
                    write_outputs(result, name)  # after every row: a stopped run leaves its table


if __name__ == "__main__":
    main()
