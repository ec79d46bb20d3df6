"""The page's verdicts under the protocol (``protocol.py``): per data set, per machine class, per claim.

A ``Group`` is the runs of one suite folder (a pre-registered plan, or a Fashion-MNIST budget that ran
before plans existed) in one machine class. Its claims are the paper's:

* A — the paper's power law beats isotropic diffusion; positive α does worse; and, where the first
  holds, whether one of its two parts alone (offset noise with its DC share; its tilt without the DC
  term) explains the gain: equivalent within ``±δ`` by two one-sided tests, δ = the plan's margin ×
  the paper arm's mean gain on the same metric.
* B — per band, the omission mixture beats isotropic diffusion on corrupted data; and, where it does,
  whether the energy confound explains it (the energy-normalised mixture equivalent to isotropic
  within ``±δ`` while the paper's mixture beats it) or not (the normalised mixture gains too).

A headline claim is tested (paired t, two-sided) only when its comparison is complete: for a plan,
every planned seed of both arms in this machine class; a Fashion-MNIST budget has no plan, so its
verdicts are marked post hoc and use the seeds it has. Holm's correction runs over every headline
test on the page at once; a verdict reads *reproduced* or *the opposite holds* only when the
adjusted p is below ``ALPHA``, else *unresolved*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from experiments import DECISIVE, PLANS, Plan
from protocol import Paired, holm, machine_class, paired_test, seeds_needed, tost

ALPHA = 0.05
FASHION_MARGIN = 0.5  # the plans' margin, applied to the Fashion-MNIST budgets after the fact


@dataclass
class Claim:
    """One headline test: ``a − b`` on ``metric`` expected to have the sign ``direction``."""

    text: str
    a: str
    b: str
    direction: int
    metric: str
    d: Paired
    complete: bool
    progress: str  # "n of N runs" when not complete
    p_adjusted: float = math.nan
    details: list[str] = field(default_factory=list)

    @property
    def tested(self) -> bool:
        """Complete, on at least two paired seeds: a test Holm's correction counts."""
        return self.complete and self.d.n >= 2

    @property
    def verdict(self) -> str:
        if not self.complete:
            return f"in progress ({self.progress})"
        if self.d.n < 2 or math.isnan(self.p_adjusted):
            return "unresolved (fewer than two paired seeds)"
        if self.p_adjusted < ALPHA:
            return "reproduced" if self.d.mean * self.direction > 0 else "not reproduced: the opposite holds"
        return "unresolved"


@dataclass
class Group:
    """The runs of one suite folder in one machine class."""

    folder: str
    dataset: str
    machine_class: str
    rows: list[dict]
    plan: Plan | None
    claims: list[Claim] = field(default_factory=list)

    def values(self, arm: str, metric: str) -> dict[int, float]:
        return {r["seed"]: r[metric] for r in self.rows if r["arm"] == arm and metric in r}


def flatten(record: dict) -> dict:
    """A run record with its Inception scores as ``inception_<tap>`` keys."""
    out = dict(record)
    out.update({f"inception_{tap}": v for tap, v in record.get("inception_fid", {}).items()})
    return out


def groups(folder: str, rows: list[dict]) -> list[Group]:
    """``rows`` of ``folder`` split by machine class (a class per group, never pooled)."""
    plan = PLANS.get(folder)
    classes = sorted({machine_class(r) for r in rows})
    return [Group(folder, plan.dataset if plan else "fashion_mnist", c,
                  [flatten(r) for r in rows if machine_class(r) == c], plan) for c in classes]


def planned_seeds(group: Group, arm: str) -> tuple[int, ...]:
    """The seeds ``group``'s plan gives ``arm`` (all a Fashion-MNIST budget's runs have: it had no plan)."""
    plan = group.plan
    if plan is None:
        return tuple(sorted({r["seed"] for r in group.rows if r["arm"] == arm}))
    if arm in plan.decisive:
        return plan.decisive_seeds
    return plan.seeds


def coverage(group: Group, a: str, b: str, metric: str) -> tuple[bool, str]:
    """Whether ``a`` and ``b`` have ``metric`` at every seed the plan gives both, and "n of N runs"."""
    va, vb = group.values(a, metric), group.values(b, metric)
    need = {(arm, s) for arm in (a, b) for s in set(planned_seeds(group, a)) & set(planned_seeds(group, b))}
    have = {(a, s) for s in va} | {(b, s) for s in vb}
    complete = need <= have and (group.plan is not None or bool(va and vb))
    return complete, f"{len(need & have)} of {len(need)} runs"


def claim(group: Group, text: str, a: str, b: str, direction: int, metric: str) -> Claim:
    """A headline test of ``group``, complete when both arms have ``metric`` at every seed the plan gives both."""
    complete, progress = coverage(group, a, b, metric)
    d = paired_test(group.values(a, metric), group.values(b, metric))
    return Claim(text, a, b, direction, metric, d, complete, progress)


def primary_metric(group: Group) -> str:
    """The plan's primary metric; the Fashion-MNIST budgets' was the in-domain FID."""
    return group.plan.metrics[0] if group.plan else "fid"


def other_metrics(group: Group) -> tuple[str, ...]:
    """The metrics a verdict is checked against, described but not tested: a plan's after its primary one;
    for a Fashion-MNIST budget, the Inception-768 FID its later runs carry."""
    return group.plan.metrics[1:] if group.plan else ("inception_768",)


def agreement(group: Group, c: Claim) -> list[str]:
    """For each of ``other_metrics``, the same paired difference ``c.a − c.b`` and whether its sign agrees with
    the verdict's metric (descriptive: outside Holm's correction). Needs two paired seeds of that metric."""
    sentences = []
    for metric in (m for m in other_metrics(group) if m != c.metric):
        g = paired_test(group.values(c.a, metric), group.values(c.b, metric))
        if g.n < 2:
            continue
        side = "excludes" if abs(g.mean) > g.half_width() else "includes"
        sign = ("the same sign" if g.mean * c.d.mean > 0
                else f"the opposite sign: {c.metric} and {metric} disagree on this comparison")
        sentences.append(f"on {metric} (reported, not tested): {g.mean:+.3g} ± {g.se:.2g} ({g.n} paired seeds, "
                         f"95 % interval {side} 0), {sign}")
    return sentences


def margin_of(group: Group) -> float:
    return group.plan.margin if group.plan else FASHION_MARGIN


def paper_arm(group: Group) -> str:
    return group.plan.paper_arm if group.plan else DECISIVE[1]


def build_claims(group: Group) -> None:
    """``group.claims``: A's two headline claims, B's one per band (their details follow once adjusted)."""
    metric, paper = primary_metric(group), paper_arm(group)
    arms = {r["arm"] for r in group.rows}
    if "isotropic" in arms and paper in arms:
        group.claims.append(claim(group, f"the paper's power law ({paper}) beats isotropic diffusion at equal compute",
                                  paper, "isotropic", -1, metric))
    if "isotropic" in arms and "paper_a+0.04" in arms:
        group.claims.append(claim(group, "positive α (+0.04) does worse than isotropic diffusion",
                                  "paper_a+0.04", "isotropic", +1, metric))
    for band in sorted({a.split("_")[0] for a in arms if a.endswith("_paper")}):
        if f"{band}_isotropic" in arms:
            lo_hi = next(r["config"]["corrupt"] for r in group.rows if r["arm"] == f"{band}_paper")
            group.claims.append(claim(group, f"omitting the band [{lo_hi['low']}, {lo_hi['high']}] makes the model ignore "
                                      "a corruption confined to it", f"{band}_paper", f"{band}_isotropic", -1, metric))


def equivalence_sentence(group: Group, c: Claim, other: str, name: str) -> tuple[str, str]:
    """Whether ``c.a − other`` is equivalent to 0 within δ (the part ``name`` explains the gain), significantly
    below 0 (the paper's arm beats it) or neither; returns a one-word outcome and its sentence. Like a headline
    claim, it waits for every seed a plan gives both arms."""
    complete, progress = coverage(group, c.a, other, c.metric)
    if group.plan and not complete:
        return "in progress", f"paper − {name}: control in progress ({progress}), no attribution before they exist"
    delta = margin_of(group) * abs(c.d.mean)
    g = paired_test(group.values(c.a, c.metric), group.values(other, c.metric))
    if g.n < 2:
        return "unmeasured", f"paper − {name}: not measured on paired seeds"
    eq = tost(g, delta)
    stat = f"paper − {name} {g.mean:+.3g} ± {g.se:.2g} ({g.n} seeds), {eq.sentence()}"
    if eq.equivalent:
        return "equivalent", f"{stat}: equivalent, so {name} alone explains the gain"
    if g.mean + g.half_width() < 0:
        return "beaten", f"{stat}; the 95 % interval excludes 0: the paper's arm beats {name}"
    n = seeds_needed(g, delta)
    need = (f"it would need a 90 % half-width ≤ {delta - abs(g.mean):.3g} (about {n} seeds at this spread)" if n
            else "its mean alone lies outside ±δ")
    return "unresolved", f"{stat}: unresolved ({need})"


def attribute(group: Group, c: Claim) -> None:
    """The details of a reproduced claim: A's parts alone, B's energy confound."""
    if c.verdict != "reproduced":
        return
    if c.b == "isotropic":
        parts = [(group.plan.decisive[3] if group.plan else "offset_dc", "offset noise with its DC share"),
                 (group.plan.decisive[2] if group.plan else "tilt_a-0.06", "its tilt without the DC term")]
        outcomes = [equivalence_sentence(group, c, arm, name) for arm, name in parts]
        c.details += [s for _, s in outcomes]
        explained = [name for (o, _), (_, name) in zip(outcomes, parts) if o == "equivalent"]
        if explained:
            c.details.append(f"explained by a control: {' and '.join(explained)}")
        return
    band = c.a.split("_")[0]
    complete, progress = coverage(group, f"{band}_normalised", c.b, c.metric)
    if group.plan and not complete:
        c.details.append(f"the energy-normalised mixture is in progress ({progress}): whether the energy confound "
                         "explains the gain waits for it")
        return
    fair = paired_test(group.values(f"{band}_normalised", c.metric), group.values(c.b, c.metric))
    if fair.n < 2:
        return
    if fair.mean + fair.half_width() < 0:
        c.details.append(f"the energy-normalised mixture gains too ({fair.mean:+.3g} ± {fair.se:.2g}, 95 % interval "
                         "excludes 0): the energy confound does not explain the gain")
        return
    delta = margin_of(group) * abs(c.d.mean)
    eq = tost(fair, delta)
    outcome, sentence = equivalence_sentence(group, c, f"{band}_normalised", "the energy-normalised mixture")
    if eq.equivalent and outcome == "beaten":
        c.details.append(f"normalised − isotropic {eq.sentence()}, and {sentence}: explained by a control "
                         "(the energy confound)")
    else:
        c.details.append(f"normalised − isotropic {fair.mean:+.3g} ± {fair.se:.2g}, {eq.sentence()}; {sentence}: whether "
                         "the energy confound explains the gain is unresolved")


def adjudicate(all_groups: list[Group]) -> list[Claim]:
    """Build every group's claims, Holm-adjust their p values together, set each tested claim beside its other
    metrics, then attribute the reproduced ones."""
    for g in all_groups:
        build_claims(g)
    tested = [c for g in all_groups for c in g.claims if c.tested]
    for c, p in zip(tested, holm([c.d.p for c in tested])):
        c.p_adjusted = p
    for g in all_groups:
        for c in g.claims:
            if c.tested:
                c.details += agreement(g, c)
            attribute(g, c)
    return tested


def claim_line(group: Group, c: Claim) -> str:
    """A verdict as one markdown bullet, naming its metric and test."""
    post_hoc = "" if group.plan else " (post hoc: this budget was not pre-registered)"
    if not c.complete:
        return f"* **{c.text}: {c.verdict}.** No verdict before the plan's runs of both arms exist in this class."
    if c.d.n < 2:
        stat = f"{c.a} − {c.b} on {c.metric}: {c.d.mean:+.3g} on {c.d.n} paired seed, untested"
    else:
        stat = (f"{c.a} − {c.b} on {c.metric}: {c.d.mean:+.3g} ± {c.d.se:.2g} ({c.d.n} paired seeds, 95 % ± "
                f"{c.d.half_width():.2g}); paired t p = {c.d.p:.3g}, Holm-adjusted p = {c.p_adjusted:.3g}")
    more = "".join(f" {d[0].upper()}{d[1:]}." for d in c.details)
    return f"* **{c.text}: {c.verdict}**{post_hoc}. {stat}.{more}"
