"""The results page's protocol (benchmarks/protocol.py, evidence.py) on made-up numbers: Holm's correction,
equivalence by two one-sided tests, machine classes never pooled, and no verdict on an incomplete plan."""

import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    for name in ("results_page", "experiments", "evidence", "protocol"):
        sys.modules.pop(name, None)
    import evidence
    import experiments
    import protocol

    plan = experiments.Plan("made_up", "mnist", "smoke", alpha=-0.06, decisive_seeds=(0, 1, 2, 3, 4), seeds=(0, 1, 2),
                            margin=0.5, metrics=("inception_768", "fid"))
    monkeypatch.setitem(experiments.PLANS, "made_up", plan)
    return protocol, evidence, plan


CPU = {"cuda_device": None, "torch": "2.13.0+cpu"}
GPU = {"cuda_device": "NVIDIA H200", "torch": "2.11.0+cu130"}


def record(arm, seed, value, machine=CPU, experiment="A"):
    return {"experiment": experiment, "arm": arm, "seed": seed, "label": arm, "machine": machine,
            "config": {"mixed_precision": "auto", "corrupt": None}, "inception_fid": {"768": value}, "fid": 10 * value}


def arm_a(plan, iso, paper, offset, tilt, plus=None, machine=CPU):
    """A's records of ``plan``: one value a seed for each arm (``plus``: α = +0.04, the first three seeds)."""
    rows = []
    for arm, values in ((("isotropic", iso), (plan.paper_arm, paper), ("offset_dc", offset), (f"tilt_a{plan.alpha:+g}", tilt))
                        + ((("paper_a+0.04", plus),) if plus else ())):
        rows += [record(arm, s, v, machine) for s, v in enumerate(values)]
    return rows


def test_holm_matches_the_step_down_by_hand(bench):
    protocol, _, _ = bench
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert protocol.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = protocol.holm([0.2, math.nan, 0.9])
    assert adjusted[0] == pytest.approx(0.4) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.9)


def test_paired_t_and_tost_on_known_numbers(bench):
    protocol, _, _ = bench
    d = protocol.paired_test({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.0, 1: 0.0, 2: 0.0, 7: 5.0})
    assert d.values == (1.0, 2.0, 3.0)  # seed 7 has no partner
    assert d.se == pytest.approx(1 / math.sqrt(3))
    assert d.p == pytest.approx(0.07417990022744862)  # t = 2 sqrt(3) with 2 degrees of freedom
    tight = protocol.Paired((0.10, 0.12, 0.08, 0.11, 0.09))
    assert protocol.tost(tight, 0.5).equivalent  # 90 % interval [0.085, 0.115]
    wide = protocol.Paired((-2.0, 1.5, 0.3, -1.0, 2.2))
    assert not protocol.tost(wide, 0.5).equivalent
    assert protocol.seeds_needed(wide, 0.5) > 5


def test_tost_needs_both_limits_inside_the_margin(bench):
    protocol, _, _ = bench
    tight = protocol.Paired((0.10, 0.12, 0.08, 0.11, 0.09))
    eq = protocol.tost(tight, 0.112)  # 90 % interval [0.085, 0.115]: its upper limit is outside
    assert eq.low > -0.112 and eq.high > 0.112 and not eq.equivalent
    assert protocol.tost(protocol.Paired((0.1,)), 10.0).equivalent is False  # one seed never shows equivalence


def test_machine_class_of_old_and_new_records(bench):
    protocol, _, _ = bench
    assert protocol.machine_class({"machine": CPU, "config": {"mixed_precision": "auto"}}) == "cpu/fp32/torch2.13"
    assert protocol.machine_class({"machine": GPU, "config": {"mixed_precision": "auto"}}) == "cuda/bf16/torch2.11"
    assert protocol.machine_class({"machine": GPU, "config": {"mixed_precision": "no"}}) == "cuda/fp32/torch2.11"
    assert protocol.machine_class({"machine_class": "cpu/bf16/torch2.14", "machine": CPU}) == "cpu/bf16/torch2.14"


def test_an_equivalent_control_explains_the_gain(bench):
    _, evidence, plan = bench
    iso = [10.0, 10.4, 9.8, 10.1, 10.3]
    paper = [v - 4 for v in iso]  # a gain of 4: δ = 2
    offset = [p + e for p, e in zip(paper, (0.1, -0.1, 0.05, -0.05, 0.0))]  # paper − offset tightly 0
    tilt = [v - 1 for v in iso]  # the paper beats its tilt by 3, every seed
    groups = evidence.groups("made_up", arm_a(plan, iso, paper, offset, tilt))
    evidence.adjudicate(groups)
    (c,) = groups[0].claims
    assert c.verdict == "reproduced" and c.p_adjusted < 0.05
    text = " ".join(c.details)
    assert "explained by a control: offset noise with its DC share" in text
    assert "the paper's arm beats its tilt without the DC term" in text
    assert "±δ = ±2.00" in text


def test_a_non_significant_control_difference_is_unresolved_not_explained(bench):
    _, evidence, plan = bench
    iso = [10.0, 10.4, 9.8, 10.1, 10.3]
    paper = [v - 4 for v in iso]
    offset = [p + e for p, e in zip(paper, (3.0, -2.5, 2.0, -3.5, 1.5))]  # mean 0.1, but wide: not equivalent
    tilt = [p + e for p, e in zip(paper, (2.0, -2.0, 2.5, -1.0, -1.2))]
    groups = evidence.groups("made_up", arm_a(plan, iso, paper, offset, tilt))
    evidence.adjudicate(groups)
    (c,) = groups[0].claims
    assert c.verdict == "reproduced"
    text = " ".join(c.details)
    assert "explained by a control" not in text and text.count("unresolved") == 2 and "seeds at this spread" in text


def test_a_control_short_of_its_planned_seeds_explains_nothing_yet(bench):
    _, evidence, plan = bench
    iso = [10.0, 10.4, 9.8, 10.1, 10.3]
    paper = [v - 4 for v in iso]
    offset = [p + e for p, e in zip(paper, (0.1, -0.1, 0.05, -0.05))]  # equivalent on the 4 seeds it has
    groups = evidence.groups("made_up", arm_a(plan, iso, paper, offset, offset))
    evidence.adjudicate(groups)
    (c,) = groups[0].claims
    assert c.verdict == "reproduced"
    text = " ".join(c.details)
    assert "explained by a control" not in text and "equivalent" not in text
    assert text.count("control in progress (9 of 10 runs)") == 2


def test_machine_classes_are_never_pooled(bench):
    _, evidence, plan = bench
    iso = [10.0, 10.4, 9.8, 10.1, 10.3]
    rows = arm_a(plan, iso, [v - 4 for v in iso], iso, iso)
    # seeds 3 and 4 of the paper's arm ran on a GPU: the CPU class lacks them, the GPU class lacks isotropic
    for r in rows:
        if r["arm"] == plan.paper_arm and r["seed"] >= 3:
            r["machine"] = GPU
    groups = evidence.groups("made_up", rows)
    assert [g.machine_class for g in groups] == ["cpu/fp32/torch2.13", "cuda/bf16/torch2.11"]
    evidence.adjudicate(groups)
    cpu, gpu = groups
    (c,) = cpu.claims
    assert c.d.n == 3 and not c.complete and c.verdict == "in progress (8 of 10 runs)"
    assert gpu.claims == []  # no isotropic run on the GPU: nothing to pair with


def test_an_incomplete_plan_gives_no_verdict_however_clear(bench):
    _, evidence, plan = bench
    iso = [10.0, 10.4, 9.8]
    rows = arm_a(plan, iso, [v - 4 for v in iso], iso, iso, plus=[v + 3 for v in iso])
    groups = evidence.groups("made_up", rows)
    tested = evidence.adjudicate(groups)
    gain, positive = groups[0].claims
    assert gain.verdict == "in progress (6 of 10 runs)" and gain.d.n == 3
    assert positive.complete and positive.verdict == "reproduced"  # α = +0.04's seeds are 0-2 only: complete
    assert tested == [positive]


def test_the_decisive_comparison_runs_first_and_the_plan_keeps_every_run(bench):
    _, _, plan = bench
    plan = type(plan)("ordered", "mnist", "smoke", alpha=-0.06, bands=("low",))
    runs = [(e, a.name, s) for e, a, s in plan.runs()]
    decisive = [(e, a, s) for e, a, s in runs if e == "A" and a in plan.decisive]
    assert runs[:len(decisive)] == decisive and len(decisive) == 4 * 5  # four arms, five seeds, nothing between
    assert [s for _, _, s in decisive] == sorted(s for _, _, s in decisive)  # seed by seed: paired if stopped
    expected = {("A", a, s) for a in plan.decisive for s in plan.decisive_seeds}
    expected |= {("A", "paper_a+0.04", s) for s in plan.seeds}
    expected |= {("B", a.name, s) for a in plan.arms_b() for s in plan.seeds}
    assert len(runs) == len(set(runs)) and set(runs) == expected


def band_b(iso, paper, normalised, band="low"):
    rows = []
    for variant, values in (("isotropic", iso), ("paper", paper), ("normalised", normalised)):
        for s, v in enumerate(values):
            r = record(f"{band}_{variant}", s, v, experiment="B")
            r["config"]["corrupt"] = {"low": 0.1, "high": 0.2}
            rows.append(r)
    return rows


def test_energy_confound_needs_an_equivalent_normalised_arm_that_the_paper_beats(bench):
    _, evidence, _ = bench
    iso = [30.0, 31.0, 29.5]
    paper = [v - 10 for v in iso]  # δ = 5
    confounded = [v + e for v, e in zip(iso, (0.2, -0.1, 0.0))]  # normalised ≈ isotropic; the paper beats it by 10
    groups = evidence.groups("made_up", band_b(iso, paper, confounded))
    evidence.adjudicate(groups)
    (c,) = groups[0].claims
    assert c.verdict == "reproduced" and "explained by a control (the energy confound)" in " ".join(c.details)
    gains = [v - 12 for v in iso]  # the normalised mixture gains too
    groups = evidence.groups("made_up", band_b(iso, paper, gains))
    evidence.adjudicate(groups)
    assert "the energy confound does not explain the gain" in " ".join(groups[0].claims[0].details)
    wide = [v + e for v, e in zip(iso, (-9.0, 4.0, 3.0))]  # neither equivalent nor a significant gain
    groups = evidence.groups("made_up", band_b(iso, paper, wide))
    evidence.adjudicate(groups)
    assert "is unresolved" in " ".join(groups[0].claims[0].details)
    groups = evidence.groups("made_up", band_b(iso, paper, confounded[:2]))  # its seed 2 is still to run
    evidence.adjudicate(groups)
    (c,) = groups[0].claims
    assert c.verdict == "reproduced" and c.details[-1] == (
        "the energy-normalised mixture is in progress (5 of 6 runs): whether the energy confound explains the gain "
        "waits for it")


def test_b_table_shows_the_verdicts_metric_beside_the_in_domain_fid(bench):
    _, evidence, _ = bench
    import results_page

    def cells(table, label):
        header = [c.strip() for c in table[0].strip("|").split("|")]
        row = next(line for line in table[2:] if line.startswith(f"| {label} |"))
        return dict(zip(header, (c.strip() for c in row.strip("|").split("|"))))

    (g,) = evidence.groups("made_up", band_b([2.7, 2.6, 2.8], [2.3, 2.1, 2.5], [2.4, 2.4, 2.4]))
    paper = cells(results_page.table_b(g.rows, [], {}), "low_paper")
    assert (paper["FID vs clean test"], paper["Δ FID vs isotropic on the same corruption"]) == ("23.00 ± 1.15", "-4.00 ± 0.58")
    assert (paper["Inception FID (768)"], paper["Δ (768)"]) == ("2.300 ± 0.115", "-0.400 ± 0.058")
    for r in g.rows:  # a budget's runs that were never scored on Inception: no such columns
        r.pop("inception_768")
    assert "Inception FID (768)" not in results_page.table_b(g.rows, [], {})[0]


def test_paper_layout_puts_each_arm_under_its_own_header(bench, monkeypatch):
    _, evidence, plan = bench
    import dataclasses

    import experiments
    import results_page

    plan = dataclasses.replace(plan, paper={"isotropic": 0.42, "paper": 0.28})
    monkeypatch.setitem(experiments.PLANS, "made_up", plan)
    rows = arm_a(plan, iso=[0.4], paper=[0.3], offset=[0.2], tilt=[0.1])
    table = results_page.paper_layout(evidence.groups("made_up", rows))
    header = [c.strip() for c in table[0].strip("|").split("|")]
    row = next(line for line in table[2:] if "`made_up`" in line)
    cells = dict(zip(header, (c.strip() for c in row.strip("|").split("|"))))
    assert (cells["isotropic"], cells["paper's best α"], cells["offset (its DC share)"], cells["tilt (no DC term)"]) == (
        "0.400 (1)", "0.300 (1)", "0.200 (1)", "0.100 (1)")


def claim_with_in_domain_fid(evidence, plan, paper_fid):
    """A's one claim, decided on Inception-768 (the paper's gain of 4, every seed), with in-domain FIDs of the
    isotropic arm and ``paper_fid`` for the paper's arm."""
    iso = [10.0, 10.4, 9.8, 10.1, 10.3]
    rows = arm_a(plan, iso, [v - 4 for v in iso], iso, iso)
    in_domain = {"isotropic": [50.0, 52.0, 49.0, 51.0, 50.5], plan.paper_arm: paper_fid}
    for r in rows:
        r["fid"] = in_domain.get(r["arm"], [30.0] * 5)[r["seed"]]
    groups = evidence.groups("made_up", rows)
    tested = evidence.adjudicate(groups)
    (c,) = groups[0].claims
    assert c.verdict == "reproduced" and tested == [c] and c.metric == "inception_768"
    return c


def test_a_verdict_says_when_the_plans_other_metric_disagrees(bench):
    _, evidence, plan = bench
    c = claim_with_in_domain_fid(evidence, plan, [60.0, 61.0, 60.5, 59.0, 62.0])
    # fid: paper − isotropic = 10, 9, 11.5, 8, 11.5 → mean +10, se 0.689, 95 % half-width 1.91: excludes 0
    (line,) = [d for d in c.details if d.startswith("on fid")]
    assert line == ("on fid (reported, not tested): +10 ± 0.69 (5 paired seeds, 95 % interval excludes 0), the "
                    "opposite sign: inception_768 and fid disagree on this comparison")
    assert c.p_adjusted == pytest.approx(c.d.p)  # the other metric adds no test to Holm's correction


def test_a_verdict_whose_other_metric_agrees_says_so(bench):
    _, evidence, plan = bench
    c = claim_with_in_domain_fid(evidence, plan, [49.0, 53.0, 47.0, 52.0, 49.5])
    # fid: paper − isotropic = -1, +1, -2, +1, -1 → mean -0.4, se 0.6, 95 % half-width 1.67: includes 0
    assert "on fid (reported, not tested): -0.4 ± 0.6 (5 paired seeds, 95 % interval includes 0), the same sign" in c.details
