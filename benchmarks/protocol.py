"""The statistics a verdict of ``docs/results.md`` may rest on, and what may be pooled.

* **Machine classes.** A comparison pools only runs of one class: device type, training precision
  and torch minor version (``machine_class``). Runs of other classes are shown apart, never paired.
* **Paired tests.** A difference between two arms is paired by seed (same initialisation and data
  order); its p value is the two-sided paired t test's (``paired_test``).
* **Multiplicity.** The headline tests of a page are corrected together by Holm's step-down
  method (``holm``).
* **Equivalence.** "Explained by a control" needs the 90 % interval of paper − control inside
  ``±δ`` (two one-sided tests at 5 %, ``tost``), δ fixed by the plan; "not significantly
  different" alone is "unresolved", with the half-width that would be needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats


def machine_class(record: dict) -> str:
    """``<device>/<precision>/torch<major.minor>`` of a run record, e.g. ``cpu/fp32/torch2.13``.

    Records before the protocol do not name their precision: ``mixed_precision: auto`` trained in
    bf16 on a GPU and in float32 on a CPU (``sagd.train.mixed_precision``)."""
    if "machine_class" in record:
        return record["machine_class"]
    m = record["machine"]
    device = "cuda" if m.get("cuda_device") else "cpu"
    chosen = record.get("config", {}).get("mixed_precision", "auto")
    precision = {"auto": "bf16" if device == "cuda" else "fp32", "no": "fp32"}.get(chosen, chosen)
    return f"{device}/{precision}/torch{'.'.join(m['torch'].split('+')[0].split('.')[:2])}"


@dataclass(frozen=True)
class Paired:
    """A paired difference over ``n`` seeds: mean, standard error, and the two-sided t test of 0."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.n if self.n else math.nan

    @property
    def se(self) -> float:
        if self.n < 2:
            return math.nan
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (self.n - 1) / self.n)

    def half_width(self, level: float = 0.95) -> float:
        """Half-width of the two-sided ``level`` t interval (nan below two seeds)."""
        return stats.t.ppf(0.5 + level / 2, self.n - 1) * self.se if self.n >= 2 else math.nan

    @property
    def p(self) -> float:
        """Two-sided p of the paired t test of mean 0 (nan below two seeds; 0 or 1 for zero spread)."""
        if self.n < 2:
            return math.nan
        if self.se == 0:
            return 1.0 if self.mean == 0 else 0.0
        return float(2 * stats.t.sf(abs(self.mean / self.se), self.n - 1))


def paired_test(a: dict[int, float], b: dict[int, float]) -> Paired:
    """``a - b`` for every seed both have (``{seed: value}``)."""
    return Paired(tuple(a[s] - b[s] for s in sorted(a) if s in b))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p values, in the given order (nan stays nan and is not counted)."""
    ranked = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(ranked):
        running = max(running, min(1.0, (len(ranked) - rank) * p))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Equivalence:
    """The outcome of ``tost``: the 90 % interval ``(low, high)``, the margin and whether it lies inside it."""

    low: float
    high: float
    margin: float
    equivalent: bool

    def sentence(self) -> str:
        return (f"90 % interval [{self.low:+.2f}, {self.high:+.2f}] {'inside' if self.equivalent else 'not inside'} "
                f"±δ = ±{self.margin:.2f}")


def tost(d: Paired, margin: float) -> Equivalence:
    """Two one-sided t tests at 5 % of ``|mean| < margin``: equivalent when the 90 % interval lies inside ``±margin``."""
    if d.n < 2 or not margin > 0:
        return Equivalence(math.nan, math.nan, margin, False)
    h = d.half_width(0.90)
    return Equivalence(d.mean - h, d.mean + h, margin, -margin < d.mean - h and d.mean + h < margin)


def needed_half_width(d: Paired, margin: float) -> float:
    """The 90 % half-width at which ``d``'s mean would be shown equivalent within ``margin`` (≤ 0: no width would)."""
    return margin - abs(d.mean)


def seeds_needed(d: Paired, margin: float) -> int | None:
    """Seeds at which ``d``'s spread (its sample standard deviation, and its mean) would fit its 90 % interval
    inside ``±margin``; ``None`` when its mean is already outside."""
    room = needed_half_width(d, margin)
    if d.n < 2 or room <= 0:
        return None
    sd = d.se * math.sqrt(d.n)
    n = 2
    while stats.t.ppf(0.95, n - 1) * sd / math.sqrt(n) >= room and n < 10_000:
        n += 1
    return n
