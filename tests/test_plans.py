"""Pre-registered plans (benchmarks/experiments.py PLANS) run by benchmarks/suite.py: their order, the machine
class in every record, records that are never replaced, geometric learning-order probes, kept models."""

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def suite(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGD_SUITE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SAGD_SUITE_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SAGD_SUITE_MODELS", str(tmp_path / "models"))
    monkeypatch.syspath_prepend(str(BENCH))
    for name in ("suite", "results_page", "experiments", "evidence"):
        sys.modules.pop(name, None)
    return importlib.import_module("suite")


def test_the_papers_plans_are_fixed_decisive_first_and_seed_major(suite):
    plans = importlib.import_module("experiments").PLANS
    mnist, quickdraw = plans["mnist"], plans["quickdraw"]
    assert (mnist.alpha, quickdraw.alpha) == (-0.06, -0.04) and mnist.metrics[0] == "inception_768"
    runs = suite.plan("mnist", "AB")
    # 4 decisive arms × 5 seeds + α = +0.04 × 3 seeds; B: 2 bands × 3 arms × 3 seeds
    assert len(runs) == 4 * 5 + 3 + 2 * 3 * 3 == 41 and len(suite.plan("quickdraw", "AB")) == 23
    decisive, rest = runs[:20], runs[20:]  # the headline comparison first, then the rest; each seed by seed
    assert all(e == "A" and a.name in mnist.decisive for e, a, _ in decisive)
    assert all(not (e == "A" and a.name in mnist.decisive) for e, a, _ in rest)
    for block in (decisive, rest):
        seeds = [s for _, _, s in block]
        assert seeds == sorted(seeds)
    assert {a.name for e, a, s in runs if s == 4} == set(mnist.decisive)
    assert {a.name for e, a, _ in runs if e == "B"} == {f"{b}_{v}" for b in ("low", "upper")
                                                         for v in ("isotropic", "paper", "normalised")}
    assert suite.plan("mnist", "A") == [r for r in runs if r[0] == "A"]
    cfg = suite.train_config("quickdraw", runs[1][1], 3, Path("unused"))
    assert cfg.dataset == "quickdraw" and (cfg.probe_every, cfg.probe_spacing) == (25, "geometric")
    assert cfg.spectrum == "power_law:alpha=-0.06,k0=1e-10" and cfg.seed == 3  # the arm decides the spectrum


def test_a_cpu_plan_scores_its_inception_reference_before_its_workers_start(suite, monkeypatch):
    import argparse

    experiments = importlib.import_module("experiments")
    monkeypatch.setitem(experiments.PLANS, "tiny_plan", experiments.Plan("tiny_plan", "digits", "smoke", alpha=-0.06,
                                                                         decisive_seeds=(0,), seeds=(0,)))
    events = []
    monkeypatch.setattr(suite, "inception_reference_locked", lambda scorer: events.append("reference"))
    monkeypatch.setattr(suite, "side_by_side", lambda cmd, env, n: events.append(f"{n} workers") or [0] * n)
    args = argparse.Namespace(budget="tiny_plan", experiments="A", jobs=2, threads=1, minutes=None)
    suite.run(args)
    assert events == ["reference", "2 workers"]
    events.clear()
    args.budget = "smoke"  # a budget, not a plan: its runs have no Inception score
    suite.run(args)
    assert events == ["2 workers"]


def test_a_plan_run_records_its_class_is_never_replaced_and_keeps_its_model(suite, monkeypatch):
    experiments = importlib.import_module("experiments")
    plan = experiments.Plan("tiny_plan", "digits", "smoke", alpha=-0.06, decisive_seeds=(0,), seeds=(0,))
    monkeypatch.setitem(experiments.PLANS, "tiny_plan", plan)
    monkeypatch.setattr(suite, "inception_scores", lambda samples, scorer: {"inception_fid": {"768": 0.5, "2048": 9.0}})
    scorer = suite.Scorer("cpu", "digits")
    _, arm, seed = suite.plan("tiny_plan", "A")[0]
    record = suite.execute("tiny_plan", "A", arm, seed, scorer, "cpu")
    assert record["plan"] == "tiny_plan" and record["config"]["dataset"] == "digits"
    assert record["machine_class"] == f"cpu/fp32/torch{'.'.join(torch.__version__.split('.')[:2])}"
    assert record["inception_fid"]["768"] == 0.5 and [p["step"] for p in record["probe"]] == [0, 2]
    path = suite.result_path("tiny_plan", "A", arm.name, seed)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        suite.execute("tiny_plan", "A", arm, seed, scorer, "cpu")
    assert path.read_bytes() == before
    kept = suite.keep_model("tiny_plan", "A", arm.name, seed)
    from safetensors import safe_open

    with safe_open(str(kept), "pt") as f:
        meta = f.metadata()
        weights = {k: f.get_tensor(k) for k in f.keys()}
    assert json.loads(meta["config"])["seed"] == seed and meta["step"] == "2"
    import hashlib

    assert meta["record_sha256"] == hashlib.sha256(before).hexdigest()
    from sagd.run import load_run

    ema = load_run(suite.run_dir("tiny_plan", "A", arm.name, seed)).net.state_dict()
    assert weights.keys() == ema.keys() and all(w.dtype == torch.bfloat16 for w in weights.values())
    assert all(torch.equal(weights[k], ema[k].to(torch.bfloat16)) for k in ema)
    assert suite.keep_model("tiny_plan", "A", arm.name, seed) is None  # kept once
    assert suite.keep_model("tiny_plan", "A", "tilt_a-0.06", seed) is None  # not an arm the plan keeps
    # a rerun sets the record aside, unchanged, and names it; the page lists both values
    with pytest.raises(SystemExit, match="--why"):
        suite.supersede("tiny_plan", "A", arm.name, seed, " ")
    kept_record = suite.supersede("tiny_plan", "A", arm.name, seed, "a made-up reason")
    assert kept_record.read_bytes() == before and not path.exists()
    monkeypatch.setattr(suite, "inception_scores", lambda samples, scorer: {"inception_fid": {"768": 0.25, "2048": 9.0}})
    rerun = suite.execute("tiny_plan", "A", arm, seed, scorer, "cpu")
    assert rerun["supersedes"] == [str(kept_record.relative_to(suite.SUITE))]
    ledger = json.loads((suite.SUITE / "superseded.json").read_text())
    assert ledger[-1]["run"] == f"tiny_plan/A/{arm.name}__s{seed}" and ledger[-1]["superseded_value"] == 0.5
    page = importlib.import_module("results_page")
    assert page.superseded() == [f"* `tiny_plan/A/{arm.name}__s{seed}`: inception_768 0.500 ({record['machine_class']}, "
                                 f"recorded in {record['machine']['git_commit'][:12]}) replaced by 0.250 "
                                 f"({rerun['machine_class']}, {rerun['machine']['git_commit'][:12]}): a made-up reason."]
    with pytest.raises(SystemExit, match="no record"):
        suite.supersede("tiny_plan", "A", "tilt_a-0.06", seed, "why")


def test_a_gpu_plan_is_a_plan_of_its_own_refused_elsewhere_and_scored_by_inception_on_a_cpu(suite, monkeypatch):
    import argparse

    experiments = importlib.import_module("experiments")
    for name in ("mnist", "quickdraw"):  # the same runs, registered apart: float32, on CUDA
        cpu, gpu = experiments.PLANS[name], experiments.PLANS[f"{name}_gpu"]
        assert (cpu.device, gpu.device, gpu.precision, gpu.name) == ("cpu", "cuda", "fp32", f"{name}_gpu")
        assert [(e, a.name, a.config, s) for e, a, s in gpu.runs()] == [(e, a.name, a.config, s) for e, a, s in cpu.runs()]
    arm = experiments.PLANS["mnist"].arms_a()[0]
    assert suite.train_config("mnist_gpu", arm, 0, Path("unused")).mixed_precision == "no"  # not bf16, "auto"'s pick
    assert suite.train_config("mnist", arm, 0, Path("unused")).mixed_precision == "auto"  # the CPU plan's runs unchanged
    args = argparse.Namespace(budget="mnist_gpu", experiments="A", jobs=1, threads=1, minutes=None)
    with pytest.raises(SystemExit, match=r"--plan mnist_gpu: a cuda plan; this machine runs cpu plans \(mnist, quickdraw\)"):
        suite.run(args)
    with monkeypatch.context() as m:
        m.setattr(torch.cuda, "is_available", lambda: True)
        args.budget = "mnist"
        with pytest.raises(SystemExit, match=r"--plan mnist: a cpu plan; this machine runs cuda plans \(mnist_gpu, quickdraw_gpu\)"):
            suite.run(args)

    # a GPU plan's run records no Inception score; `suite.py inception` adds it from the kept samples
    plan = experiments.Plan("tiny_gpu", "digits", "smoke", alpha=-0.06, decisive_seeds=(0,), seeds=(0,), device="cuda")
    monkeypatch.setitem(experiments.PLANS, "tiny_gpu", plan)
    scored = []
    monkeypatch.setattr(suite, "inception_scores", lambda samples, scorer: scored.append(samples) or {
        "inception_fid": {"768": 0.5, "2048": 9.0}, "inception_kid_768": {"mean": 1e-4, "se": 1e-6}})
    _, arm, seed = suite.plan("tiny_gpu", "A")[0]
    suite.execute("tiny_gpu", "A", arm, seed, suite.Scorer("cpu", "digits"), "cpu")
    path = suite.result_path("tiny_gpu", "A", arm.name, seed)
    before = json.loads(path.read_text())
    assert "inception_fid" not in before and not scored
    suite.add_inception(argparse.Namespace(budget="tiny_gpu", arms=None, jobs=1))
    added = json.loads(path.read_text())
    assert added == {**before, "inception_fid": {"768": 0.5, "2048": 9.0}, "inception_kid_768": {"mean": 1e-4, "se": 1e-6}}
    kept = np.load(suite.samples_path(path))["images"]  # the samples it scored are the kept ones, read back exactly
    assert len(scored) == 1 and torch.equal(((scored[0] + 1) * 127.5).round().to(torch.uint8), torch.from_numpy(kept))
    suite.add_inception(argparse.Namespace(budget="tiny_gpu", arms=None, jobs=1))  # scored once
    assert len(scored) == 1 and path.read_text() == json.dumps(added, indent=1) + "\n"


def test_inception_jobs_start_one_thread_processes_that_share_the_runs(suite, monkeypatch):
    import argparse

    started = []

    class Process:
        def __init__(self, cmd, env):
            started.append((cmd, env["OMP_NUM_THREADS"]))

        def wait(self):
            return 0

    monkeypatch.setattr(suite.subprocess, "Popen", Process)
    suite.add_inception(argparse.Namespace(budget="mnist_gpu", arms=["isotropic"], jobs=2))
    assert [(cmd[1:], threads) for cmd, threads in started] == [
        ([suite.__file__, "inception", "--plan", "mnist_gpu", "--arms", "isotropic"], "1")] * 2
    with pytest.raises(SystemExit, match="--jobs: expected an integer >= 1, got 0"):
        suite.add_inception(argparse.Namespace(budget="mnist_gpu", arms=None, jobs=0))


def test_geometric_probes_double_their_interval(tmp_path):
    from sagd.config import TrainConfig
    from sagd.report import read_metrics
    from sagd.train import train

    cfg = TrainConfig(dataset="digits", model="tiny", steps=5, batch_size=4, probe_every=1, probe_spacing="geometric",
                      probe_n=4, sample_every=10**9, sample_n=4, sample_steps=2, checkpoint_every=10**6,
                      out=str(tmp_path / "run")).validate()
    train(cfg)
    assert [r["step"] for r in read_metrics(tmp_path / "run") if r.get("kind") == "probe"] == [0, 1, 2, 4, 5]
    with pytest.raises(ValueError, match="probe_spacing: must be one of linear, geometric"):
        TrainConfig(dataset="digits", out="x", probe_spacing="log").validate()
