"""The experiment suite's code paths (benchmarks/suite.py) on its ``smoke`` budget: no figures asserted."""

import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture()
def suite(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGD_SUITE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SAGD_SUITE_RUNS", str(tmp_path / "runs"))
    monkeypatch.syspath_prepend(str(BENCH))
    for name in ("suite", "results_page", "experiments"):
        sys.modules.pop(name, None)
    return importlib.import_module("suite")


@pytest.mark.slow
def test_smoke_suite_runs_scores_resumes_and_reports(suite, tmp_path):
    pytest.importorskip("sagd.data").load_dataset("fashion_mnist", "test")  # the suite's data
    arms = {(e, a.name): (e, a, s) for e, a, s in suite.plan("smoke", "AB")}
    scorer = suite.Scorer("cpu")
    picked = [arms[("A", "isotropic")], arms[("A", "paper_a-0.06")], arms[("B", "low_isotropic")], arms[("B", "low_paper")]]
    for experiment, arm, seed in picked:
        r = suite.execute("smoke", experiment, arm, seed, scorer, "cpu")
        assert r["steps"] == 2 and r["samples"] == 32 and r["images_seen"] == 16
        assert [p["step"] for p in r["probe"]] == [0, 1, 2]
        assert suite.result_path("smoke", experiment, arm.name, seed).is_file()
    assert "leak_vs_corrupted" in r and r["config"]["spectrum"].startswith("omission:")
    # a run's record is never replaced; with it gone (a crash after training), its folder resumes without training again
    with pytest.raises(FileExistsError):
        suite.execute("smoke", *picked[0], scorer, "cpu")
    suite.result_path("smoke", "A", "isotropic", 0).rename(tmp_path / "kept.json")
    again = suite.execute("smoke", *picked[0], scorer, "cpu")
    assert again["resumed"] and again["steps"] == 2
    # C evaluates a trained A model with another sampler at a given NFE
    c = [a for a in suite.arms_c(["isotropic"], (2,)) if a.config["method"] == "heun"][0]
    r = suite.execute("smoke", "C", c, 0, scorer, "cpu")
    c_record = suite.result_path("smoke", "C", c.name, 0)
    assert r["nfe_budget"] == 2 and r["sampler_steps"] == 1 and r["nfe"] == 1 and not r["model_trained_here"]
    # a local model whose A run was scored on another machine was trained here, not there
    import json
    import os
    import shutil

    scored = suite.result_path("smoke", "A", "isotropic", 0)
    record = json.loads(scored.read_text())
    scored.write_text(json.dumps({**record, "machine": {**record["machine"], "cuda_device": "elsewhere"}}))
    c_record.unlink()
    assert suite.execute("smoke", "C", c, 0, scorer, "cpu")["model_trained_here"]
    scored.write_text(json.dumps(record))
    # ... it is trained again, same configuration and seed, on a machine that lacks its run folder,
    # and passed over while another (live) worker trains it
    model = suite.run_dir("smoke", "A", "isotropic", 0)
    shutil.rmtree(model)
    model.with_suffix(".lock").write_text(str(os.getppid()))
    c_record.unlink()
    with pytest.raises(suite.ModelBusy):
        suite.execute("smoke", "C", c, 0, scorer, "cpu")
    model.with_suffix(".lock").unlink()
    # the same sampler on A's other model, for C's comparison of models
    paper_c = [a for a in suite.arms_c(["paper_a-0.06"], (2,)) if a.config["method"] == "heun"][0]
    suite.execute("smoke", "C", paper_c, 0, scorer, "cpu")
    again = suite.execute("smoke", "C", c, 0, scorer, "cpu")
    assert again["model_trained_here"] and again["steps"] == 2 and again["config"] == r["config"]
    assert not model.with_suffix(".lock").exists()
    # the scored samples are kept for later metrics, as uint8 at the data's size
    import numpy as np

    kept = np.load(suite.samples_path(suite.result_path("smoke", "C", c.name, 0)))["images"]
    assert kept.dtype == np.uint8 and kept.shape == (32, 1, 28, 28)
    # B's floors: real images scored as samples, and with the band removed (which must cost FID)
    suite.band_floors("smoke", scorer)
    floor = json.loads(suite.floors_path("smoke", "low").read_text())
    assert floor["images"] == 32 and floor["fid_band_removed"] > floor["fid_real"]
    page = importlib.import_module("results_page").write_results(budgets=("smoke",), docs=tmp_path / "docs")
    text = page.read_text()
    assert "Budget `smoke`" in text and "paper α=-0.06" in text and "learning order" in text
    assert "Best sampler for isotropic: 2 NFE heun" in text
    assert "paper α=-0.06 − isotropic: one comparison of two single-seed models" in text
    assert len(list((tmp_path / "docs" / "results").glob("smoke_cpu-fp32-*_C_samplers.png"))) == 1 and "![samplers]" in text
    assert "real training images without [0.1, 0.2], no model" in text and "the floor of any model" in text
    assert "Removing the band costs real images" in text
    assert len(list((tmp_path / "docs" / "results").glob("smoke_cpu-fp32-*_A_learning_order.png"))) == 1
    assert "Plan `mnist`** (in progress; 0 of 41 runs)" in text and "## Superseded runs" in text


def test_plan_is_seed_major_then_extras_and_claims_are_exclusive(suite, tmp_path):
    runs = suite.plan("cpu", "AB")
    main = 3 * (9 + 2 * 4)
    seeds = [s for _, _, s in runs[:main]]
    assert seeds == sorted(seeds) and set(seeds) == {0, 1, 2}
    # then more seeds for the decisive arms, then the extra band, each seed-major
    decisive = runs[main:main + 3 * 4]
    assert {a.name for _, a, _ in decisive} == set(importlib.import_module("experiments").DECISIVE)
    assert [s for _, _, s in decisive] == [3] * 4 + [4] * 4 + [5] * 4
    mid = runs[main + 12:]
    assert len(mid) == 3 * 4 and all(a.band == "mid" for _, a, _ in mid)
    out = suite.result_path("cpu", "A", "isotropic", 0)
    assert suite.claim(out) and not suite.claim(out)
    out.with_suffix(".lock").write_text("999999999")  # a dead process's claim is taken over
    assert suite.claim(out)


def test_offset_control_matches_the_papers_dc_share(suite):
    from sagd import spectral

    std = importlib.import_module("experiments").offset_matching_paper_dc()
    paper = spectral.power_law((1, 32, 32), -0.06, k0=1e-10).weights[0]
    off = spectral.offset((1, 32, 32), std).weights[0]
    share = lambda w: (w[0, 0] / ((w.sum() - w[0, 0]) / (w.numel() - 1))).item()  # noqa: E731
    assert share(off) == pytest.approx(share(paper), rel=1e-6)
    assert 10 < share(paper) < 20  # the DC quirk: ~14x the average bin at 32x32


def test_c_summaries_key_on_the_budget_and_split_ode_from_sde_samplers(suite):
    page = importlib.import_module("results_page")
    rows = [{"arm": f"{m}__{s}__{n}", "sampler": s, "nfe_budget": n, "nfe": n - (s == "heun"), "fid": f, "samples": 8}
            for m, s, n, f in [("isotropic", "heun", 10, 30.0), ("isotropic", "ddpm", 10, 20.0),
                               ("isotropic", "heun", 20, 25.0), ("isotropic", "ddpm", 20, 15.0),
                               ("paper_a-0.02", "heun", 20, 24.0), ("paper_a-0.02", "ddpm", 20, 16.0)]]
    names = {"paper_a-0.02": "paper α=-0.02"}
    assert page.best_samplers(rows, names)[1] == "- Best sampler for paper α=-0.02: 20 NFE ddpm (16.00)."
    assert page.table_c(rows, names)[2:] == ["| isotropic | ddpm | 20.00 | 15.00 |", "| isotropic | heun | 30.00 | 25.00 |",
                                             "| paper α=-0.02 | ddpm | — | 16.00 |", "| paper α=-0.02 | heun | — | 24.00 |"]
    assert page.ode_and_sde(rows, names) == [
        "- isotropic at 20 NFE: the ODE samplers heun 25.00; the stochastic ones ddpm 15.00.",
        "- paper α=-0.02 at 20 NFE: the ODE samplers heun 24.00; the stochastic ones ddpm 16.00."]
    assert page.models_compared(rows, names)[0].startswith(
        "- paper α=-0.02 − isotropic: one comparison of two single-seed models, read at 2 sampler × NFE settings (not 2 "
        "independent comparisons): lower FID at 1, median Δ FID +0.00")


@pytest.mark.parametrize("cores, jobs, threads, expected", [(2, 1, None, 2), (2, 2, None, 1), (16, 3, None, 5),
                                                              (2, 4, None, 1), (2, 2, 2, 2), (16, 1, 1, 1)])
def test_threads_default_to_the_cores_shared_among_the_jobs(suite, monkeypatch, cores, jobs, threads, expected):
    monkeypatch.setattr(suite.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert suite.threads_per_job(jobs, threads) == expected


@pytest.mark.parametrize("name", ["jobs", "threads"])
def test_run_refuses_fewer_than_one_worker_or_thread(suite, name):
    import argparse

    args = argparse.Namespace(budget="smoke", experiments="A", jobs=1, threads=1, minutes=None)
    setattr(args, name, 0)
    with pytest.raises(SystemExit, match=f"--{name}: expected an integer >= 1, got 0"):
        suite.run(args)
