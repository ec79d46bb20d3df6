"""The trained comparison of issue 28: frequency-shaped diffusions at the suite's ``cpu`` budget (docs/method.md §11).

Five arms, trained and scored alike on Fashion-MNIST or MNIST (padded to 32×32), seeds 0, 1, 2:

* ``isotropic``, SAGD's best power law ``paper_a<α>`` and ``offset_dc`` (offset noise with that law's DC
  share): the suite's own arms (``experiments.Plan.arms_a``). α is the MNIST plan's (the paper's best
  there, -0.06); on Fashion-MNIST the ``cpu`` budget's decisive paper arm (α = -0.06), fixed before
  its runs (picking the lowest FID of seeds 0-2 and training seeds 0-2 again would select on the runs it reports);
* ``pyramid``: pyramid noise's expected spectrum (``pyramid:discount=0.8``, the exact evaluator's arm);
* ``blurring``: blurring diffusion (``process: blurring``: σ_B,max = 20, d_min = 0.001, cosine schedule), with
  white ``eps`` targets (the suite's ``colored_eps`` equals ``eps`` for white noise and is refused there).

Everything else is the suite's: ``suite.train_config`` (the ``cpu`` budget: tiny UNet, 1,500 steps × 64, its
learning rate, warm-up, EMA and probes), its sampler and sample count, its in-domain FID (``Scorer``) and
Inception-768/2048 FID (``inception_scores``). A run trains in ``runs/frequency_trained/<dataset>/<arm>/s<seed>/``
(resumed from its checkpoint when interrupted) and is scored into
``benchmarks/results/frequency_trained/<dataset>/<arm>__s<seed>.json`` with its machine class, precision and
commit; a run whose JSON exists is read back, never redone, and never replaced. Processes that run at once
claim runs through lock files (``suite.claim``). Queued after the evidence plan: do not run it beside it.

    OMP_NUM_THREADS=1 python benchmarks/frequency_trained.py --dataset fashion_mnist [--seeds 0 1 2] [--arms ...]
    OMP_NUM_THREADS=1 python benchmarks/frequency_trained.py --quick   # every arm, 2 steps, 8 samples, a temp folder

``--quick`` checks the code path in about a minute of one core: 2 training steps of batch 8, 8 samples of 2
sampler steps, Inception FID against 8 test images; its numbers mean nothing. It writes into ``--out`` (a
temporary folder by default), never into ``runs/`` or ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DATASETS = {"fashion_mnist": "cpu", "mnist": "mnist"}  # dataset -> the suite's name of its cpu-budget settings
SEEDS = (0, 1, 2)
QUICK = {"steps": 2, "batch_size": 8, "warmup": 0, "samples": 8, "sampler_steps": 2, "inception_reference": 8}


def best_alpha(dataset: str) -> tuple[float, str]:
    """SAGD's power-law α on ``dataset`` and where it comes from: fixed before any run, never picked by the FID
    of seeds that this comparison trains again (the same seeds would reproduce those very runs)."""
    from experiments import DECISIVE, PLANS

    if dataset in PLANS:
        return PLANS[dataset].alpha, f"plan {dataset!r}: the paper's best α on {dataset}"
    arm = next(a for a in DECISIVE if a.startswith("paper_a"))
    return float(arm[len("paper_a"):]), f"the {DATASETS[dataset]!r} budget's decisive paper arm, {arm}"


def arms(dataset: str, alpha: float) -> list:
    """The comparison's arms (``experiments.Arm``), in table order."""
    from experiments import PLANS, Arm, Plan

    plan = PLANS.get(dataset) or Plan(dataset, dataset, DATASETS[dataset], alpha)
    suite_arms = {arm.name: arm for arm in plan.arms_a()}
    return [suite_arms["isotropic"], suite_arms[plan.paper_arm], suite_arms["offset_dc"],
            Arm("pyramid", "pyramid noise, discount 0.8 (expected spectrum)", {"spectrum": "pyramid:discount=0.8"}),
            Arm("blurring", "blurring diffusion (σ_B,max 20, d_min 0.001, cosine)",
                {"process": "blurring", "prediction": "eps"})]


def execute(dataset: str, arm, seed: int, scorer, runs: Path, result: Path, quick: bool, alpha: tuple) -> dict:
    """Train (or resume) and score one run; writes and returns its record."""
    from protocol import machine_class
    from suite import COMMIT, SAMPLE_BATCH, inception_scores, metrics_log, settings, train_config

    from common import machine
    from sagd import checkpoint, diffusion
    from sagd.run import load_run
    from sagd.train import save_grid, train

    budget = settings(DATASETS[dataset])
    started = time.time()
    model_dir = runs / dataset / arm.name / f"s{seed}"
    cfg = train_config(DATASETS[dataset], arm, seed, model_dir)
    if quick:
        cfg = cfg.replace(**{k: QUICK[k] for k in ("steps", "batch_size", "warmup")}, checkpoint_every=QUICK["steps"],
                          probe_every=2, probe_n=8, sample_n=4, sample_steps=QUICK["sampler_steps"])
    resumed = bool(checkpoint.list_checkpoints(model_dir))
    train(cfg, resume=resumed)
    train_seconds = time.time() - started
    loaded = load_run(model_dir, "cpu")
    method, steps = budget.sampler[0], QUICK["sampler_steps"] if quick else budget.sampler[1]
    n = QUICK["samples"] if quick else budget.samples
    sample_start = time.time()
    samples = loaded.draw(n, torch.Generator().manual_seed(1000 + seed), method, steps, SAMPLE_BATCH["cpu"])
    record = {"comparison": "frequency_trained", "dataset": dataset, "arm": arm.name, "label": arm.label, "seed": seed,
              "alpha": alpha[0], "alpha_source": alpha[1], "budget": DATASETS[dataset], "quick": quick,
              "config": loaded.cfg.to_dict(), "process": repr(loaded.proc), "sampler": method, "sampler_steps": steps,
              "nfe": diffusion.nfe(method, steps), "samples": len(samples),
              "sample_seconds": round(time.time() - sample_start, 1)}
    record.update(scorer(samples, n))
    record.update(inception_scores(samples, scorer))
    logs, probes = metrics_log(model_dir)
    record.update({"steps": loaded.step, "images_seen": loaded.step * cfg.batch_size * cfg.grad_accum,
                   "final_loss": logs[-1]["loss"] if logs else None, "probe": probes, "resumed": resumed,
                   "train_seconds_this_sitting": round(train_seconds, 1), "wall_seconds": round(time.time() - started, 1),
                   "machine": {**machine(), "git_commit": COMMIT}, "commit": COMMIT})
    record["machine_class"] = machine_class(record)
    record["precision"] = record["machine_class"].split("/")[1]
    result.parent.mkdir(parents=True, exist_ok=True)
    save_grid(samples[:64], result.with_suffix(".png"))
    tmp = result.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    try:
        os.link(tmp, result)  # a run's record is never replaced
    finally:
        tmp.unlink()
    return record


def summary(records: list[dict]) -> list[str]:
    """One markdown row per arm: seeds, mean in-domain FID and mean Inception-768 FID over its seeds."""
    rows = ["| arm | seeds | in-domain FID | Inception-768 FID | machine class |", "|---|---:|---:|---:|---|"]
    for arm in dict.fromkeys(r["arm"] for r in records):
        rs = [r for r in records if r["arm"] == arm]
        fid = sum(r["fid"] for r in rs) / len(rs)
        inception = sum(r["inception_fid"]["768"] for r in rs) / len(rs)
        classes = ", ".join(sorted({r["machine_class"] for r in rs}))
        rows.append(f"| {rs[0]['label']} | {len(rs)} | {fid:.3f} | {inception:.3f} | {classes} |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=sorted(DATASETS), default="fashion_mnist")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--arms", nargs="+", help="only these arms (default: all five)")
    p.add_argument("--quick", action="store_true", help="seconds per arm, seed 0 only, into --out: checks the code path")
    p.add_argument("--out", metavar="DIR", help="folder for runs/ and results/ (default: the repository's; --quick: a "
                                                "temporary folder)")
    args = p.parse_args()
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="frequency_trained-")) if args.quick else None
    if root is not None:  # suite keeps its Inception lock under SAGD_SUITE_RUNS: never the repository's runs/ here
        os.environ["SAGD_SUITE_RUNS"] = str(root / "runs")
    sys.path.insert(0, str(HERE))
    from common import RESULTS
    from suite import Scorer, claim

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    runs = root / "runs" if root else HERE.parent / "runs" / "frequency_trained"
    results = root / "results" if root else RESULTS / "frequency_trained"
    alpha = best_alpha(args.dataset)
    chosen = [a for a in arms(args.dataset, alpha[0]) if not args.arms or a.name in args.arms]
    if args.arms and len(chosen) != len(set(args.arms)):
        raise SystemExit(f"--arms: choose among {', '.join(a.name for a in arms(args.dataset, alpha[0]))}")
    seeds = [0] if args.quick else args.seeds
    print(f"[frequency_trained] {args.dataset}: α = {alpha[0]:+g} ({alpha[1]}); {len(chosen)} arms × seeds {seeds}"
          f"{' (quick)' if args.quick else ''}; results in {results / args.dataset}", flush=True)
    scorer, records = None, []
    for seed in seeds:
        for arm in chosen:
            result = results / args.dataset / f"{arm.name}__s{seed}.json"
            if result.exists():
                records.append(json.loads(result.read_text()))
                continue
            if not claim(result):  # another process is on it
                continue
            try:
                if scorer is None:
                    scorer = Scorer("cpu", args.dataset)
                    if args.quick:  # Inception statistics of a handful of test images (the whole split: an hour)
                        scorer.test = scorer.test[:QUICK["inception_reference"]]
                record = execute(args.dataset, arm, seed, scorer, runs, result, args.quick, alpha)
            finally:
                result.with_suffix(".lock").unlink(missing_ok=True)
            records.append(record)
            print(f"[frequency_trained] {arm.name} s{seed}: FID {record['fid']:.3f}, Inception-768 FID "
                  f"{record['inception_fid']['768']:.3f} ({record['wall_seconds']:.0f} s)", flush=True)
    if not records:
        print("[frequency_trained] no finished run")
        return
    table = [f"Frequency-shaped diffusions trained at the suite's cpu budget on {args.dataset} (α = {alpha[0]:+g}: "
             f"{alpha[1]}); means over the seeds finished so far{' (--quick: meaningless numbers)' if args.quick else ''}.",
             "", *summary(records), ""]
    (results / f"{args.dataset}.md").write_text("\n".join(table))
    print("\n".join(table))


if __name__ == "__main__":
    main()
