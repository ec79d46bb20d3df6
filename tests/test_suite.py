"""The experiment suite's code paths (benchmarks/suite.py) on its ``smoke`` budget: no figures asserted."""

import importlib
import math
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
    # a finished run's folder resumes without training again
    again = suite.execute("smoke", *picked[0], scorer, "cpu")
    assert again["resumed"] and again["steps"] == 2
    # C evaluates a trained A model with another sampler at a given NFE
    c = [a for a in suite.arms_c(["isotropic"], (2,)) if a.config["method"] == "heun"][0]
    r = suite.execute("smoke", "C", c, 0, scorer, "cpu")
    assert r["nfe_budget"] == 2 and r["sampler_steps"] == 1 and r["nfe"] == 1 and not r["model_trained_here"]
    # a local model whose A run was scored on another machine was trained here, not there
    import json
    import os
    import shutil

    scored = suite.result_path("smoke", "A", "isotropic", 0)
    record = json.loads(scored.read_text())
    scored.write_text(json.dumps({**record, "machine": {**record["machine"], "cuda_device": "elsewhere"}}))
    assert suite.execute("smoke", "C", c, 0, scorer, "cpu")["model_trained_here"]
    scored.write_text(json.dumps(record))
    # ... it is trained again, same configuration and seed, on a machine that lacks its run folder,
    # and passed over while another (live) worker trains it
    model = suite.run_dir("smoke", "A", "isotropic", 0)
    shutil.rmtree(model)
    model.with_suffix(".lock").write_text(str(os.getppid()))
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
    assert "paper α=-0.06 − isotropic, over the 1 sampler × NFE pairs both have" in text
    assert (tmp_path / "docs" / "results" / "smoke_C_samplers.png").is_file() and "![samplers]" in text
    assert "real training images without [0.1, 0.2], no model" in text and "the floor of any model" in text
    assert "Removing the band costs real images" in text
    assert (tmp_path / "docs" / "results" / "smoke_A_learning_order.png").is_file()


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
        "- paper α=-0.02 − isotropic, over the 2 sampler × NFE pairs both have: lower FID in 1, median Δ FID +0.00")


def test_verdict_names_every_part_that_alone_explains_the_gain(suite):
    page = importlib.import_module("results_page")
    gain, both_hold_0, no_gain, beats = (-3.6, 0.5, 1.7), (-0.8, 0.5, 1.4), (-0.2, 0.8, 2.5), (-2.0, 0.3, 0.9)
    verdict, why = page.attribution(gain, off=gain, gap=both_hold_0, tilt=gain, tilt_gap=both_hold_0)
    assert verdict.startswith("reproduced, but each of its parts alone does as well") and "neither" in why
    verdict, why = page.attribution(gain, off=gain, gap=both_hold_0, tilt=no_gain, tilt_gap=beats)
    assert verdict == "explained by a control (offset noise alone, the DC term)" and "the DC term carries" in why
    verdict, why = page.attribution(gain, off=gain, gap=both_hold_0, tilt=no_gain, tilt_gap=both_hold_0)
    assert verdict == "explained by a control (offset noise alone, the DC term)" and why == ""
    verdict, why = page.attribution(gain, off=gain, gap=beats, tilt=no_gain, tilt_gap=beats)
    assert verdict == "reproduced" and "beats offset noise alone" in why
    verdict, why = page.attribution(gain, off=gain, gap=beats, tilt=gain, tilt_gap=both_hold_0)
    assert verdict == "reproduced" and "beats offset noise alone" in why and "Its tilt alone" in why
    verdict, why = page.attribution(no_gain, off=gain, gap=both_hold_0, tilt=gain, tilt_gap=both_hold_0)
    assert verdict == "not reproduced"
    assert [page.agreement(d, -1) for d in (gain, no_gain, (2.0, 0.3, 0.9), (-1.0, math.nan, math.nan))] == [
        ": it agrees", ": it does not resolve the gain at this many seeds", ": it goes the other way", ""]


def test_energy_confound_needs_the_paper_arm_to_beat_the_normalised_one(suite):
    """A normalised arm whose wide interval holds 0 (two seeds) leaves the attribution open; it does not explain."""
    page = importlib.import_module("results_page")
    gain, wide, no_gain, beats = (-25.8, 0.4, 5.3), (-29.4, 4.2, 53.8), (-0.2, 0.8, 2.5), (-2.0, 0.3, 0.9)
    one_seed, holds_0, worse = (-25.1, math.nan, math.nan), (3.6, 4.0, 50.8), (10.4, 0.8, 3.5)
    verdict, why = page.energy_attribution(gain, fair=wide, fair_gap=holds_0)
    assert verdict == "reproduced" and "unresolved" in why
    assert page.energy_attribution(gain, fair=no_gain, fair_gap=beats) == (
        "explained by a control (the energy confound)",
        " The energy-normalised mixture does not gain significantly and the paper's mixture beats it: the noise "
        "energy, not the omission, carries the gain.")
    assert page.energy_attribution(gain, fair=gain, fair_gap=holds_0) == ("reproduced", "")
    assert page.energy_attribution(gain, fair=one_seed, fair_gap=one_seed) == ("reproduced", "")
    assert page.energy_attribution(worse, fair=worse, fair_gap=holds_0) == ("not reproduced: the opposite holds", "")
