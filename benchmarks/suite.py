"""The experiment suite (issue 12), resumable across sittings.

    python benchmarks/suite.py run --plan mnist|quickdraw|smoke|cpu|gpu [--experiments A,B,C] [--jobs N] [--threads T]
        [--minutes M]
    python benchmarks/suite.py report       # docs/results.md and its figures, from the committed JSON
    python benchmarks/suite.py inception --plan P [--arms ...] [--jobs N]  # Inception scores from kept samples
    python benchmarks/suite.py keep-models --plan P  # the EMA networks a plan keeps, bf16, into benchmarks/models/
    python benchmarks/suite.py supersede --plan P --run A/isotropic/s0 --why "..."  # set a record aside to rerun

``--plan`` names a pre-registered plan of ``experiments.PLANS`` (MNIST, Quick, Draw!) or one of the
Fashion-MNIST budgets that ran before plans existed (``--budget`` is the same option). A run is
``(experiment, arm, seed)``. It trains in ``runs/suite/<plan>/<experiment>/<arm>/s<seed>/``
(checkpointed, resumed when interrupted) and is scored into
``benchmarks/results/suite/<plan>/<experiment>/<arm>__s<seed>.json`` with a sample grid beside it and
the scored samples (``.samples.npz``, ``uint8``, not committed) for later metrics such as
``inception``; a plan's runs are scored on Inception-768/2048 at once (the test split's statistics
first, on every core, then cached). A run's JSON is never
replaced: a run whose JSON exists is never repeated, so the suite accumulates across sittings.
``--jobs`` workers claim runs through lock files; each worker uses ``--threads`` torch threads
on CPUs (default: the process's cores shared among the jobs, so one job alone uses them all).
One single-thread worker per core trains the most images per second: on this project's two-core
machine 1.14× the images of one two-thread worker, though each run takes 1.7× as long
(``benchmarks/cpu_parallelism.py``, ``benchmarks/results/cpu_parallelism.json``); so ``--jobs C``
finishes a plan sooner and ``--jobs 1`` finishes one run sooner.
``--minutes`` stops claiming new runs after that long.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from sagd.metrics._arrays import to_uint8

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, git_commit, machine  # noqa: E402
from protocol import machine_class  # noqa: E402
from experiments import (BANDS, BASE_CONFIG, BUDGETS, DATASET, DECISIVE, PLANS, SHAPE, Budget, arms_a,  # noqa: E402
                         arms_b, arms_c)

ROOT = Path(__file__).resolve().parent.parent
COMMIT = git_commit()  # the code a worker runs is the code it imported, whatever HEAD is when it finishes
# results (committed) and run folders (not); tests point both elsewhere
SUITE = Path(os.environ.get("SAGD_SUITE_RESULTS", RESULTS / "suite"))
RUNS = Path(os.environ.get("SAGD_SUITE_RUNS", ROOT / "runs" / "suite"))
# images per sampler batch: on one CPU core small batches keep the network's activations in cache
# (B's seed-2 runs, two workers on two cores: 2,000 samples in 498–540 s at 500, 287–292 s at 50;
# their ``sample_seconds``); a GPU wants large batches
SAMPLE_BATCH = {"cpu": 50, "cuda": 500}


# ---------------------------------------------------------------------------- the plan
def settings(name: str) -> Budget:
    """The budget (network, steps, samples) of a plan or of a Fashion-MNIST budget."""
    return BUDGETS[PLANS[name].budget] if name in PLANS else BUDGETS[name]


def dataset_of(name: str) -> str:
    return PLANS[name].dataset if name in PLANS else DATASET


def plan(budget: str, experiments: str) -> list[tuple[str, object, int]]:
    """Pending and finished runs ``(experiment, arm, seed)`` in the order they should run. A
    pre-registered plan: ``Plan.runs``, A's decisive arms first. A Fashion-MNIST budget: every arm of
    seed 0 first, so a stopped suite leaves balanced, paired results; then C (once A has every seed);
    then the budget's extra seeds of A's decisive arms and its extra bands of B."""
    if budget in PLANS:
        return [r for r in PLANS[budget].runs() if r[0] in experiments]
    b = BUDGETS[budget]
    runs = []
    for seed in b.seeds:
        if "A" in experiments:
            runs += [("A", arm, seed) for arm in arms_a()]
        elif "B" in experiments:  # B's clean reference is A's isotropic run
            runs += [("A", arm, seed) for arm in arms_a() if arm.name == "isotropic"]
        if "B" in experiments:
            runs += [("B", arm, seed) for arm in arms_b(b.bands)]
    if "C" in experiments:
        best = best_arm(budget)
        if best is not None:
            runs += [("C", arm, b.seeds[0]) for arm in arms_c(sorted({"isotropic", best}), b.nfes)]
    for seed in b.more_seeds:
        if "A" in experiments:
            runs += [("A", arm, seed) for arm in arms_a() if arm.name in DECISIVE]
    for seed in b.seeds:
        if "B" in experiments:
            runs += [("B", arm, seed) for arm in arms_b(b.more_bands)]
    return runs


def result_path(budget: str, experiment: str, arm: str, seed: int) -> Path:
    return SUITE / budget / experiment / f"{arm}__s{seed}.json"


LEDGER = "superseded.json"  # under SUITE: every record set aside for a rerun, with its value and why


def superseded_records(budget: str, experiment: str, arm: str, seed: int) -> list[Path]:
    """The records of earlier runs of ``(experiment, arm, seed)`` set aside by ``supersede``, oldest first."""
    folder = SUITE / budget / "superseded" / experiment
    return sorted(folder.glob(f"{arm}__s{seed}__*.json"), key=lambda p: int(p.stem.rsplit("__", 1)[1]))


def supersede(budget: str, experiment: str, arm: str, seed: int, why: str) -> Path:
    """Set a scored run's record aside, unchanged, so the run can be rerun: it moves to
    ``<plan>/superseded/<experiment>/<arm>__s<seed>__<n>.json`` and the ledger gains an entry with its value and
    ``why``; the rerun's record names it in ``supersedes``. Returns where the record went."""
    current = result_path(budget, experiment, arm, seed)
    if not why.strip():
        raise SystemExit("--why: say why the run is rerun (it is printed on the results page)")
    if not current.exists():
        raise SystemExit(f"--run {experiment}/{arm}/s{seed}: no record of it in {current.parent}")
    record = json.loads(current.read_text())
    earlier = len(superseded_records(budget, experiment, arm, seed))
    kept = current.parent.parent / "superseded" / experiment / f"{arm}__s{seed}__{earlier}.json"
    kept.parent.mkdir(parents=True, exist_ok=True)
    ledger = SUITE / LEDGER
    entries = json.loads(ledger.read_text()) if ledger.exists() else []
    metric = "inception_768" if budget in PLANS else "fid"
    value = record.get("inception_fid", {}).get("768") if metric == "inception_768" else record.get("fid")
    entries.append({"run": f"{budget}/{experiment}/{arm}__s{seed}", "metric": metric, "superseded_value": value,
                    "superseded_machine_class": machine_class(record), "superseded_record": str(kept.relative_to(SUITE)),
                    "superseded_recorded_in": record["machine"]["git_commit"][:12], "why": why.strip()})
    os.link(current, kept)  # fails rather than overwrite an earlier one
    tmp = ledger.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1) + "\n")
    os.replace(tmp, ledger)
    current.unlink()
    return kept


def samples_path(result: Path) -> Path:
    """Where a run's scored samples are kept (``uint8``, the data's size; not committed)."""
    return result.with_suffix(".samples.npz")


def run_dir(budget: str, experiment: str, arm: str, seed: int) -> Path:
    return RUNS / budget / experiment / arm / f"s{seed}"


def load_results(budget: str, experiment: str) -> list[dict]:
    folder = SUITE / budget / experiment
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def best_arm(budget: str) -> str | None:
    """A's arm with the lowest mean FID over the budget's seeds, once every arm has every seed; else ``None``."""
    seeds = BUDGETS[budget].seeds
    rows = [r for r in load_results(budget, "A") if r["seed"] in seeds]
    names = [a.name for a in arms_a()]
    fid = {n: [r["fid"] for r in rows if r["arm"] == n] for n in names}
    if any(len(v) < len(seeds) for v in fid.values()):
        return None
    return min((n for n in names if n != "isotropic"), key=lambda n: sum(fid[n]) / len(fid[n]))


# ---------------------------------------------------------------------------- one run
class ModelBusy(Exception):
    """C's model is being trained by another worker: take other runs meanwhile."""


def trained_model(budget_name: str, arm_name: str, seed: int) -> tuple[Path, bool]:
    """A's trained run ``arm_name`` (``seed``) for C, and whether this machine trained it rather than
    the one that scored A's run: run folders stay on the machine that trained them, so a machine
    without it trains it again (same configuration and seed). Raises ``ModelBusy`` while another
    worker trains it."""
    from sagd import checkpoint
    from sagd.train import train

    budget = settings(budget_name)
    model_dir = run_dir(budget_name, "A", arm_name, seed)
    done = checkpoint.list_checkpoints(model_dir)
    if done and checkpoint.step_of(done[-1]) >= budget.steps:
        scored = result_path(budget_name, "A", arm_name, seed)
        return model_dir, not (scored.exists() and same_machine(json.loads(scored.read_text())["machine"], machine()))
    if not claim(model_dir):
        raise ModelBusy(model_dir)
    try:
        arm = next(a for a in arms_a() if a.name == arm_name)
        train(train_config(budget_name, arm, seed, model_dir), resume=bool(done))
    finally:
        model_dir.with_suffix(".lock").unlink(missing_ok=True)
    return model_dir, True


def same_machine(a: dict, b: dict) -> bool:
    """Whether two ``machine()`` records describe one machine (as far as they tell)."""
    return all(a.get(k) == b.get(k) for k in ("platform", "processor", "cpu_count", "cuda_device"))


def train_config(name: str, arm, seed: int, out: Path):
    """A run's ``TrainConfig``: the budget's settings, the arm's overrides; a plan's runs train on its data set
    and probe the learning order at geometric steps (25, 50, ..., 800, and the last)."""
    from sagd.config import Corruption, TrainConfig

    budget = settings(name)
    cfg = dict(BASE_CONFIG, dataset=dataset_of(name), model=budget.model, steps=budget.steps, batch_size=budget.batch_size, lr=budget.lr,
               warmup=budget.warmup, probe_every=budget.probe_every, checkpoint_every=budget.checkpoint_every,
               seed=seed, out=str(out))
    if name in PLANS:
        cfg.update(probe_every=25, probe_spacing="geometric")
        if PLANS[name].device == "cuda":  # "auto" would pick bf16 there
            cfg.update(mixed_precision={"fp32": "no", "bf16": "bf16"}[PLANS[name].precision])
    cfg.update(arm.config)
    if "corrupt" in cfg:
        cfg["corrupt"] = Corruption(**cfg["corrupt"])
    return TrainConfig(**cfg).validate()


def crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The centre ``size × size`` of ``(N, C, H, W)``: undoes ``pad_to`` for scoring at the data's size."""
    top, left = (images.shape[-2] - size) // 2, (images.shape[-1] - size) // 2
    return images[..., top: top + size, left: left + size]


class Scorer:
    """Scores samples against the clean test split of ``dataset`` (in-domain classifier features)."""

    def __init__(self, device, dataset: str = DATASET):
        from sagd.data import load_dataset
        from sagd.metrics import cache_dir, extractor_for, reference_stats

        self.dataset = dataset
        self.test = load_dataset(dataset, "test").images
        self.extractor = extractor_for(None, dataset, tuple(self.test.shape[1:]), device=device)
        self.ref = reference_stats(self.extractor, self.test, f"{dataset}/test", cache_dir() / "reference")

    def __call__(self, samples: torch.Tensor, n_real: int) -> dict:
        """FID against the whole test split (cached statistics); KID, precision/recall and the
        log-spectral distance against ``n_real`` random test images (equal set sizes)."""
        from sagd.metrics import evaluate_samples

        samples = crop(samples, self.test.shape[-1])
        g = torch.Generator().manual_seed(0)
        real = self.test[torch.randperm(len(self.test), generator=g)[:n_real]]
        scores = evaluate_samples(samples, real, self.extractor, generator=g)
        return {**scores, "fid_equal_sizes": scores["fid"], "fid": self.fid(samples), "fid_reference": len(self.test),
                "features": self.extractor.name, "real_for_kid_pr": len(real)}

    def fid(self, images: torch.Tensor) -> float:
        """FID of ``images`` ``(N, 1, H, W)`` (padded or not) against the whole test split."""
        from sagd.metrics import feature_stats, frechet_distance

        features = self.extractor(crop(images, self.test.shape[-1]), batch_size=256)
        return frechet_distance(*feature_stats(features), self.ref.mu, self.ref.cov)


TAPS = ("768", "2048")  # the paper's tap for 28–32 px data first; 2048 is rank-deficient below 2048 samples


def inception_reference_locked(scorer: Scorer) -> dict:
    """The Inception statistics of ``scorer``'s test split (both ``TAPS``), computed by one worker while
    the others wait (the cache then serves them)."""
    from sagd.metrics import InceptionV3, inception_reference

    if getattr(scorer, "inception", None) is None:
        lock = RUNS / f"inception-reference-{scorer.dataset}"
        while not claim(lock):
            time.sleep(20)
        try:
            network = InceptionV3()
            scorer.inception = network, inception_reference(scorer.test, f"{scorer.dataset}/test", TAPS, network)
        finally:
            lock.with_suffix(".lock").unlink(missing_ok=True)
    return scorer.inception


def inception_scores(samples: torch.Tensor, scorer: Scorer) -> dict:
    """Inception FID at both ``TAPS`` and KID at 768 of ``samples`` (cropped to the data's size), against the
    whole test split, as ``suite.py inception`` writes them."""
    from sagd.metrics import feature_stats, frechet_distance, kid

    network, reference = inception_reference_locked(scorer)
    started = time.time()
    images = to_uint8(crop(samples, scorer.test.shape[-1])).float() / 127.5 - 1  # as kept samples are read back
    features = network(images, TAPS)
    scores = {"inception_fid": {t: frechet_distance(*feature_stats(features[t]), reference[t].mu, reference[t].cov)
                                for t in TAPS}}
    k = kid(features["768"], reference["768"].features, generator=torch.Generator().manual_seed(0))
    return {**scores, "inception_kid_768": {"mean": k.mean, "se": k.se}, "inception_seconds": round(time.time() - started, 1)}


def floors_path(budget: str, band: str) -> Path:
    return SUITE / budget / "floors" / f"{band}.json"


def band_floors(budget_name: str, scorer: Scorer) -> None:
    """B's floors, once per band: as many real training images as a run scores samples, scored like
    samples (the metric's own floor), and the same images with the band removed: the floor of any
    model whose samples hold nothing in the band, as the omission arms' do."""
    from sagd import spectral
    from sagd.data import load_dataset

    budget = settings(budget_name)
    bands = PLANS[budget_name].bands if budget_name in PLANS else budget.bands + budget.more_bands
    todo = [band for band in bands if not floors_path(budget_name, band).exists()]
    if not todo:
        return
    train = load_dataset(scorer.dataset, "train", pad_to=SHAPE[-1]).images
    real = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:budget.samples]]
    fid_real = scorer.fid(real)
    for band in todo:
        low, high = BANDS[band]
        removed = real - spectral.band_pass(SHAPE, low, high, unit="nyquist").project(real)
        record = {"band": band, "low": low, "high": high, "images": len(real), "fid_real": fid_real,
                  "fid_band_removed": scorer.fid(removed), "machine": {**machine(), "git_commit": COMMIT}}
        out = floors_path(budget_name, band)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json.tmp").write_text(json.dumps(record, indent=1) + "\n")
        os.replace(out.with_suffix(".json.tmp"), out)


def band_energy(samples: torch.Tensor, low: float, high: float) -> float:
    """Mean energy per image of ``samples`` inside the closed band ``[low, high]`` (Nyquist units)."""
    from sagd import spectral

    band = spectral.band_pass(tuple(samples.shape[1:]), low, high, unit="nyquist")
    return band.project(samples.double()).pow(2).sum((1, 2, 3)).mean().item()


def leak(samples: torch.Tensor, low: float, high: float, dataset: str) -> dict:
    """Energy of ``samples`` in the corrupted band relative to clean and to corrupted training data."""
    from sagd.data import corrupt_band, load_dataset

    clean = load_dataset(dataset, "train", pad_to=SHAPE[-1]).images[:2000]
    dirty = corrupt_band(clean, low, high, 1.0, generator=torch.Generator().manual_seed(0))
    e, e_clean, e_dirty = (band_energy(x, low, high) for x in (samples, clean, dirty))
    return {"band_energy": e, "band_energy_clean": e_clean, "band_energy_corrupted": e_dirty,
            "leak_vs_clean": e / e_clean, "leak_vs_corrupted": e / e_dirty}


def metrics_log(run: Path) -> tuple[list[dict], list[dict]]:
    """The training records and the learning-order probe records of a run."""
    from sagd.report import read_metrics

    records = read_metrics(run)
    return [r for r in records if "loss" in r], [r for r in records if r.get("kind") == "probe"]


def execute(budget_name: str, experiment: str, arm, seed: int, scorer: Scorer, device) -> dict:
    """Train (or resume) and score one run; returns its result record."""
    from sagd import checkpoint, diffusion
    from sagd.run import load_run
    from sagd.train import save_grid, train

    budget = settings(budget_name)
    started = time.time()
    method, steps = budget.sampler
    if experiment == "C":
        model_dir, trained_here = trained_model(budget_name, arm.config["model_arm"], seed)
        resumed = False
        method, steps = arm.config["method"], diffusion.steps_for_nfe(arm.config["method"], arm.config["nfe"])
        train_seconds = time.time() - started
    else:
        model_dir = run_dir(budget_name, experiment, arm.name, seed)
        cfg = train_config(budget_name, arm, seed, model_dir)
        resumed, trained_here = bool(checkpoint.list_checkpoints(model_dir)), True
        train(cfg, resume=resumed)
        train_seconds = time.time() - started
    loaded = load_run(model_dir, device)
    cfg, state = loaded.cfg, loaded.state
    sample_start = time.time()
    n = (budget.c_samples or budget.samples) if experiment == "C" else budget.samples
    samples = loaded.draw(n, torch.Generator(device).manual_seed(1000 + seed), method, steps, SAMPLE_BATCH[device])
    sample_seconds = time.time() - sample_start
    record = {"experiment": experiment, "arm": arm.name, "label": arm.label, "seed": seed, "budget": budget_name,
              "budget_settings": asdict(budget), "config": cfg.to_dict(), "sampler": method, "sampler_steps": steps,
              "nfe": diffusion.nfe(method, steps), "samples": len(samples)}
    if experiment == "C":
        record["nfe_budget"] = arm.config["nfe"]
    record.update(scorer(samples, n))
    if cfg.corrupt is not None:
        record.update(leak(samples, cfg.corrupt.low, cfg.corrupt.high, scorer.dataset))
    if budget_name in PLANS and PLANS[budget_name].device == "cpu":  # a GPU plan's: ``suite.py inception`` on a CPU
        record.update(inception_scores(samples, scorer))
    if device == "cuda":
        record["cuda_tf32"] = {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}
    logs, probes = metrics_log(model_dir)
    rates = sorted(r["images_per_s"] for r in logs if "images_per_s" in r)
    record.update({"steps": state["step"], "images_seen": state["step"] * cfg.batch_size * cfg.grad_accum,
                   "final_loss": logs[-1]["loss"] if logs else None,
                   "train_images_per_s_median": rates[len(rates) // 2] if rates else None,
                   "train_seconds_this_sitting": round(train_seconds, 1), "resumed": resumed,
                   "model_trained_here": trained_here,
                   "sample_seconds": round(sample_seconds, 1), "wall_seconds": round(time.time() - started, 1),
                   "probe": probes if experiment != "C" else None, "machine": {**machine(), "git_commit": COMMIT}})
    record["plan"] = budget_name if budget_name in PLANS else None
    record["supersedes"] = [str(p.relative_to(SUITE)) for p in superseded_records(budget_name, experiment, arm.name, seed)]
    record["machine_class"] = machine_class(record)
    out = result_path(budget_name, experiment, arm.name, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_grid(samples[:64], out.with_suffix(".png"))
    np.savez_compressed(samples_path(out), images=to_uint8(crop(samples, scorer.test.shape[-1])).numpy())
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    try:
        os.link(tmp, out)  # a run's record is never replaced: a second one for the same run is an error
    finally:
        tmp.unlink()
    return record


MODELS = Path(os.environ.get("SAGD_SUITE_MODELS", ROOT / "benchmarks" / "models"))


def kept_arms(name: str) -> tuple[str, ...]:
    """The A arms whose EMA networks a plan keeps (the models a sampler comparison samples)."""
    return ("isotropic", PLANS[name].paper_arm) if name in PLANS else ()


def keep_model(name: str, experiment: str, arm: str, seed: int) -> Path | None:
    """The EMA network of a finished, scored run as bf16 safetensors under ``benchmarks/models/`` (committed: run
    folders stay on the machine that trained them), its metadata the run's config, step and the sha256 of
    its JSON record; ``None`` where the run is not one a plan keeps, or is not finished and scored here."""
    import hashlib

    from safetensors.torch import save_file

    from sagd.run import load_run

    result, folder = result_path(name, experiment, arm, seed), run_dir(name, experiment, arm, seed)
    out = MODELS / name / experiment / f"{arm}__s{seed}.safetensors"
    if arm not in kept_arms(name) or experiment != "A" or out.exists() or not (result.exists() and folder.is_dir()):
        return None
    loaded = load_run(folder)
    if loaded.step != settings(name).steps:
        return None
    weights = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in loaded.net.state_dict().items()}
    meta = {"config": json.dumps(loaded.cfg.to_dict()), "step": str(loaded.step), "weights": "EMA, bfloat16",
            "record": str(result.relative_to(SUITE)), "record_sha256": hashlib.sha256(result.read_bytes()).hexdigest()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_file(weights, str(tmp), metadata=meta)
    os.replace(tmp, out)
    return out


def keep_models(args) -> None:
    for experiment, arm, seed in plan(args.budget, "A"):
        kept = keep_model(args.budget, experiment, arm.name, seed)
        if kept:
            print(f"[suite] kept {kept}", flush=True)


def add_inception(args) -> None:
    """``inception_scores`` (FID at both taps, KID at 768) of the finished runs of ``--arms`` whose samples
    were kept and whose JSON lacks them, written into that JSON: a GPU plan's runs, and runs scored before
    Inception was. One CPU thread a process; processes started side by side share the runs through the
    same lock files as ``run``'s workers: ``--jobs`` starts that many."""
    at_least_one("jobs", args.jobs)
    if args.jobs > 1:
        cmd = [sys.executable, __file__, "inception", "--plan", args.budget, *(["--arms", *args.arms] if args.arms else [])]
        codes = side_by_side(cmd, dict(os.environ, OMP_NUM_THREADS="1"), args.jobs)
        if any(codes):
            raise SystemExit(f"an Inception process failed (exit codes {codes})")
        return
    torch.set_num_threads(1)
    scorer = None
    for path in sorted((SUITE / args.budget).glob("*/*__s*.json")):
        record = json.loads(path.read_text())
        if (args.arms and record["arm"] not in args.arms) or "inception_fid" in record:
            continue
        if not samples_path(path).exists() or not claim(path):
            continue
        try:
            scorer = scorer or Scorer("cpu", dataset_of(args.budget))
            samples = torch.from_numpy(np.load(samples_path(path))["images"]).float() / 127.5 - 1
            record.update(inception_scores(samples, scorer))
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(record, indent=1) + "\n")
            os.replace(tmp, path)
            print(f"[suite] {path.parent.name} {path.stem}: Inception-768 FID {record['inception_fid']['768']:.3f}",
                  flush=True)
        finally:
            path.with_suffix(".lock").unlink(missing_ok=True)


# ---------------------------------------------------------------------------- workers
def claim(path: Path) -> bool:
    """Atomically claim a run (a lock file holding this process's pid); stale locks of dead
    processes on this machine are taken over."""
    lock = path.with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return True
        except FileExistsError:
            try:
                os.kill(int(lock.read_text() or 0), 0)
                return False
            except (ProcessLookupError, ValueError):
                lock.unlink(missing_ok=True)
            except PermissionError:
                return False
    return False


def worker(args) -> None:
    """Claim and execute runs in plan order until none is left (or the deadline passes), runs an
    earlier sitting began (checkpointed) first. A C run whose model another worker is training is
    passed over, and taken up on a later pass."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(args.threads)
    elif args.budget in PLANS and PLANS[args.budget].precision == "fp32":  # float32 means float32: no TF32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    from sagd import checkpoint

    scorer = None
    while True:
        waiting = False
        runs = plan(args.budget, args.experiments)
        begun = [r for r in runs
                 if r[0] != "C" and checkpoint.list_checkpoints(run_dir(args.budget, r[0], r[1].name, r[2]))]
        for experiment, arm, seed in begun + [r for r in runs if r not in begun]:
            if args.deadline and time.time() > args.deadline:
                return
            out = result_path(args.budget, experiment, arm.name, seed)
            if out.exists() or not claim(out):
                continue
            try:
                scorer = scorer or Scorer(device, dataset_of(args.budget))
                r = execute(args.budget, experiment, arm, seed, scorer, device)
                print(f"[suite] {experiment} {arm.name} s{seed}: FID {r['fid']:.2f} ({r['wall_seconds']:.0f} s)",
                      flush=True)
                keep_model(args.budget, experiment, arm.name, seed)
            except ModelBusy:
                waiting = True
            finally:
                out.with_suffix(".lock").unlink(missing_ok=True)
        if not waiting:
            return
        time.sleep(30)


def at_least_one(name: str, value: int | None) -> None:
    """Refuses ``--<name>`` below 1 in one line (``None``: not given)."""
    if value is not None and value < 1:
        raise SystemExit(f"--{name}: expected an integer >= 1, got {value}")


def side_by_side(cmd: list[str], env: dict, n: int) -> list[int]:
    """Runs ``n`` copies of ``cmd`` at once; their exit codes."""
    procs = [subprocess.Popen(cmd, env=env) for _ in range(n)]
    return [p.wait() for p in procs]


def threads_per_job(jobs: int, threads: int | None) -> int:
    """``--threads``, or by default the cores this process may use shared among ``jobs`` workers (at least one)."""
    at_least_one("jobs", jobs)
    at_least_one("threads", threads)
    return threads or max(1, len(os.sched_getaffinity(0)) // jobs)


def run(args) -> None:
    args.threads = threads_per_job(args.jobs, args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.budget in PLANS and PLANS[args.budget].device != device:
        mine = ", ".join(name for name, p in PLANS.items() if p.device == device)
        raise SystemExit(f"--plan {args.budget}: a {PLANS[args.budget].device} plan; this machine runs {device} plans ({mine})")
    todo = [r for r in plan(args.budget, args.experiments) if not result_path(args.budget, r[0], r[1].name, r[2]).exists()]
    print(f"[suite] {args.budget}: {len(todo)} runs to do in {args.experiments} "
          f"({args.jobs} jobs × {args.threads} threads)", flush=True)
    # the reference statistics once, before workers race to compute them; B's floors (seconds)
    scorer = Scorer("cpu", dataset_of(args.budget))
    if "B" in args.experiments:
        band_floors(args.budget, scorer)
    if not todo:
        return
    if device == "cpu" and args.budget in PLANS:  # on every core here, not one worker's while the others wait
        inception_reference_locked(scorer)
    deadline = time.time() + 60 * args.minutes if args.minutes else 0
    cmd = [sys.executable, __file__, "worker", "--budget", args.budget, "--experiments", args.experiments,
           "--deadline", str(deadline), "--threads", str(args.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TQDM_DISABLE="1")
    codes = side_by_side(cmd, env, args.jobs)
    if "C" in args.experiments and best_arm(args.budget) and any(
            not result_path(args.budget, e, a.name, s).exists() for e, a, s in plan(args.budget, "C")):
        if not deadline or time.time() < deadline:  # C's models exist only once A is complete
            codes += side_by_side(cmd, env, args.jobs)
    if any(codes):
        raise SystemExit(f"a worker failed (exit codes {codes})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("run", "worker"):
        q = sub.add_parser(name)
        q.add_argument("--plan", "--budget", dest="budget", choices=sorted({*PLANS, *BUDGETS}), required=True)
        q.add_argument("--experiments", default="ABC", help="letters of the experiments to run, e.g. AB")
        q.add_argument("--threads", type=int, default=None if name == "run" else 1,
                       help="torch threads per worker on CPUs (recorded in each JSON; default: the cores over --jobs)")
        if name == "run":
            q.add_argument("--jobs", type=int, default=1, help="parallel workers (--threads torch threads each on CPUs)")
            q.add_argument("--minutes", type=float, help="claim no new run after this long")
        else:
            q.add_argument("--deadline", type=float, default=0)
    sub.add_parser("report")
    q = sub.add_parser("supersede", help="set a scored run's record aside (kept, listed on the page) so it can be rerun")
    q.add_argument("--plan", "--budget", dest="budget", choices=sorted({*PLANS, *BUDGETS}), required=True)
    q.add_argument("--run", required=True, metavar="EXPERIMENT/ARM/sSEED", help="e.g. A/isotropic/s0")
    q.add_argument("--why", required=True, help="the reason, printed on the results page")
    q = sub.add_parser("keep-models", help="save the EMA networks a plan keeps (bf16) under benchmarks/models/")
    q.add_argument("--plan", "--budget", dest="budget", choices=sorted(PLANS), required=True)
    q = sub.add_parser("inception", help="add Inception FID to finished runs whose samples were kept")
    q.add_argument("--plan", "--budget", dest="budget", choices=sorted({*PLANS, *BUDGETS}), required=True)
    q.add_argument("--arms", nargs="*", help="only these arms (default every arm)")
    q.add_argument("--jobs", type=int, default=1, help="processes side by side, one CPU thread each (~4.5 GB each)")
    args = p.parse_args()
    if args.command == "inception":
        add_inception(args)
    elif args.command == "keep-models":
        keep_models(args)
    elif args.command == "supersede":
        experiment, arm, seed = args.run.split("/") if args.run.count("/") == 2 else (None,) * 3
        if not (experiment and seed.startswith("s") and seed[1:].isdigit()):
            raise SystemExit(f"--run: expected EXPERIMENT/ARM/sSEED such as A/isotropic/s0, got {args.run!r}")
        print(f"[suite] set aside as {supersede(args.budget, experiment, arm, int(seed[1:]), args.why)}")
    elif args.command == "report":
        from results_page import write_results

        write_results()
    else:
        args.experiments = args.experiments.replace(",", "").upper()
        {"run": run, "worker": worker}[args.command](args)


if __name__ == "__main__":
    main()
