"""``docs/results.md``: every table and figure of the experiment suite, from its committed JSON.

Statistics over training seeds: mean ± standard error; an arm's difference to isotropic is paired
by seed (same initialisation and data order), with its 95 % half-width ``t(n-1) · s.e.``: the
smallest difference that experiment resolves. Verdicts follow from those intervals alone.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
from scipy import stats  # noqa: E402

from experiments import BANDS, DECISIVE, arms_a, arms_b  # noqa: E402

RESULTS = Path(os.environ.get("SAGD_SUITE_RESULTS", Path(__file__).resolve().parent / "results" / "suite"))
DOCS = Path(__file__).resolve().parent.parent / "docs"
FIGURES = DOCS / "results"
STOCHASTIC = ("ddpm", "dpmpp_2m_sde", "euler_maruyama")  # the samplers of sagd.diffusion.METHODS that draw noise


def load_floors(budget: str) -> dict[str, dict]:
    """B's floors by band name (``suite.band_floors``)."""
    folder = RESULTS / budget / "floors"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def load(budget: str, experiment: str) -> list[dict]:
    """The results of one experiment; Inception FIDs (``suite.py inception``) as ``inception_<tap>``."""
    folder = RESULTS / budget / experiment
    rows = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    for r in rows:
        r.update({f"inception_{tap}": v for tap, v in r.get("inception_fid", {}).items()})
    return rows


def summary(values: list[float]) -> tuple[float, float, float]:
    """Mean, standard error and 95 % half-width (t with n - 1 degrees of freedom; nan below 2)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, math.nan
    se = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
    return mean, se, stats.t.ppf(0.975, n - 1) * se


def paired(rows: list[dict], arm: str, base: str, key: str = "fid") -> list[float]:
    """``key(arm) - key(base)`` for every seed both have."""
    a = {r["seed"]: r[key] for r in rows if r["arm"] == arm and key in r}
    b = {r["seed"]: r[key] for r in rows if r["arm"] == base and key in r}
    return [a[s] - b[s] for s in sorted(a) if s in b]


def fmt(mean: float, se: float, digits: int = 2) -> str:
    return f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def arms_in_order(rows: list[dict]) -> list[str]:
    """The arms present in ``rows``, in the order ``experiments.py`` defines them."""
    order = [a.name for a in arms_a() + arms_b(tuple(BANDS))]
    return sorted({r["arm"] for r in rows}, key=lambda a: (order.index(a) if a in order else len(order), a))


def delta(rows, arm, base, key: str = "fid"):
    d = paired(rows, arm, base, key)
    return summary(d) if d else (math.nan, math.nan, math.nan)


def ci(d: tuple[float, float, float], inline: bool = False, digits: int = 2) -> str:
    """`` (95 % ± h)`` (``inline``: ``, 95 % ± h``) for a summary with a half-width; nothing for one seed."""
    if math.isnan(d[2]):
        return ""
    return f", 95 % ± {d[2]:.{digits}f}" if inline else f" (95 % ± {d[2]:.{digits}f})"


def measured(d: tuple[float, float, float], inline: bool = False) -> str:
    """A paired difference with its interval, or why there is none."""
    return "not yet measured" if math.isnan(d[0]) else fmt(*d[:2]) + ci(d, inline)


def significant(d: tuple[float, float, float]) -> int:
    """-1: significantly below 0; +1: above; 0: the interval holds 0 (or too few seeds)."""
    mean, _, half = d
    if math.isnan(half):
        return 0
    return -1 if mean + half < 0 else 1 if mean - half > 0 else 0


def table_a(rows: list[dict]) -> list[str]:
    out = ["| arm | seeds | FID | Δ FID vs isotropic (paired) | 95 % half-width | KID × 10³ | precision | recall | LSD (dB) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for arm in arms_in_order(rows):
        rs = [r for r in rows if r["arm"] == arm]
        fid = summary([r["fid"] for r in rs])
        d = delta(rows, arm, "isotropic") if arm != "isotropic" else (math.nan,) * 3
        kid = summary([1e3 * r["kid_mean"] for r in rs])
        cols = [f"{rs[0]['label']}", str(len(rs)), fmt(*fid[:2]),
                "—" if arm == "isotropic" else fmt(*d[:2]), "—" if math.isnan(d[2]) else f"{d[2]:.2f}",
                fmt(*kid[:2], 1), f"{summary([r['precision'] for r in rs])[0]:.3f}",
                f"{summary([r['recall'] for r in rs])[0]:.3f}", f"{summary([r['lsd'] for r in rs])[0]:.2f}"]
        out.append("| " + " | ".join(cols) + " |")
    return out


def table_inception(rows: list[dict]) -> list[str]:
    """Standard Inception FID (tap 2048, and the paper's 768) of the arms whose samples were scored."""
    scored = [r for r in rows if "inception_2048" in r]
    if not scored:
        return []
    out = ["| arm | seeds | Inception FID (2048) | Δ vs isotropic (paired) | 95 % half-width | Inception FID (768) | "
           "Δ (768) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for arm in arms_in_order(scored):
        rs = [r for r in scored if r["arm"] == arm]
        d, d768 = ((math.nan,) * 3,) * 2 if arm == "isotropic" else (
            delta(scored, arm, "isotropic", "inception_2048"), delta(scored, arm, "isotropic", "inception_768"))
        cols = [rs[0]["label"], str(len(rs)), fmt(*summary([r["inception_2048"] for r in rs])[:2]),
                "—" if math.isnan(d[0]) else fmt(*d[:2]), "—" if math.isnan(d[2]) else f"{d[2]:.2f}",
                fmt(*summary([r["inception_768"] for r in rs])[:2], 3), "—" if math.isnan(d768[0]) else fmt(*d768[:2], 3)]
        out.append("| " + " | ".join(cols) + " |")
    return out


def table_b(rows: list[dict], clean: list[dict], floors: dict[str, dict]) -> list[str]:
    out = ["| arm | seeds | FID vs clean test | Δ FID vs isotropic on the same corruption | 95 % half-width | "
           "band energy / clean data | band energy / corrupted data |", "|---|---:|---:|---:|---:|---:|---:|"]
    if clean:
        out.append(f"| isotropic on clean data (A's run) | {len(clean)} | {fmt(*summary([r['fid'] for r in clean])[:2])} "
                   f"| — | — | — | — |")
    if floors:
        out.append(f"| real training images, no model | — | {next(iter(floors.values()))['fid_real']:.2f} | — | — | — | — |")
    shown = set()
    for arm in arms_in_order(rows):
        rs = [r for r in rows if r["arm"] == arm]
        band = arm.split("_")[0] if "corrupt" in rs[0]["config"] and rs[0]["config"]["corrupt"] else None
        if band in floors and band not in shown:
            shown.add(band)
            f = floors[band]
            out.append(f"| real training images without [{f['low']}, {f['high']}], no model | — | "
                       f"{f['fid_band_removed']:.2f} | — | — | 0 | 0 |")
        base = f"{band}_isotropic" if band else None
        d = delta(rows, arm, base) if base and arm != base else (math.nan,) * 3
        leak = [r for r in rs if "leak_vs_clean" in r]
        cols = [rs[0]["label"], str(len(rs)), fmt(*summary([r["fid"] for r in rs])[:2]),
                "—" if math.isnan(d[0]) else fmt(*d[:2]), "—" if math.isnan(d[2]) else f"{d[2]:.2f}",
                f"{summary([r['leak_vs_clean'] for r in leak])[0]:.3f}" if leak else "—",
                f"{summary([r['leak_vs_corrupted'] for r in leak])[0]:.3f}" if leak else "—"]
        out.append("| " + " | ".join(cols) + " |")
    return out


def model_of(row: dict) -> str:
    """The A arm whose model a C evaluation sampled."""
    return row["arm"].split("__")[0]


def best_samplers(rows: list[dict], names: dict[str, str]) -> list[str]:
    """C's best sampler at each NFE, per model: one line each."""
    out = []
    for model in sorted({model_of(r) for r in rows}):
        mine = [r for r in rows if model_of(r) == model]
        best = [min((r for r in mine if r["nfe_budget"] == n), key=lambda r: r["fid"])
                for n in sorted({r["nfe_budget"] for r in mine})]
        out.append(f"- Best sampler for {names.get(model, model)}: " + "; ".join(f"{r['nfe_budget']} NFE {r['sampler']} ({r['fid']:.2f})"
                                                              for r in best) + ".")
    return out


def table_c(rows: list[dict], names: dict[str, str]) -> list[str]:
    nfes = sorted({r["nfe_budget"] for r in rows})
    out = ["| model | sampler | " + " | ".join(f"{n} NFE" for n in nfes) + " |", "|---|---|" + "---:|" * len(nfes)]
    keys = sorted({(model_of(r), r["sampler"]) for r in rows})
    for model, method in keys:
        fid = {r["nfe_budget"]: r["fid"] for r in rows if model_of(r) == model and r["sampler"] == method}
        out.append(f"| {names.get(model, model)} | {method} | " + " | ".join(f"{fid[n]:.2f}" if n in fid else "—" for n in nfes) + " |")
    return out


def figure_c(rows: list[dict], budget: str, names: dict[str, str]) -> str:
    """C as a figure: FID against the evaluations each sampler spent (log-log), a panel per model and a line
    per sampler; returns its path relative to ``docs/``."""
    models = sorted({model_of(r) for r in rows}, key=lambda m: (m != "isotropic", m))
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.6), squeeze=False, sharey=True)
    for ax, model in zip(axes.flat, models):
        for method in sorted({r["sampler"] for r in rows}):
            points = sorted((r["nfe"], r["fid"]) for r in rows if model_of(r) == model and r["sampler"] == method)
            if points:
                ax.plot(*zip(*points), marker="o", ms=3, label=method)
        ax.set(xscale="log", yscale="log", xlabel="network evaluations (NFE)", title=names.get(model, model))
        for axis in (ax.xaxis, ax.yaxis):  # plain numbers, not powers of ten
            axis.set_major_formatter(ticker.ScalarFormatter())
            axis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xticks(sorted({r["nfe_budget"] for r in rows}))
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
    axes[0, 0].set_ylabel(f"FID ({rows[0]['samples']} samples)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"{budget}_C_samplers.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path.relative_to(FIGURES.parent))


def ode_and_sde(rows: list[dict], names: dict[str, str]) -> list[str]:
    """Per model, the FIDs at C's largest budget of the samplers that integrate the probability-flow ODE and of
    those that draw fresh noise each step (``STOCHASTIC``)."""
    top = max(r["nfe_budget"] for r in rows)
    out = []
    for model in sorted({model_of(r) for r in rows}, key=lambda m: (m != "isotropic", m)):
        at = [r for r in rows if model_of(r) == model and r["nfe_budget"] == top]
        kinds = [[r for r in at if (r["sampler"] in STOCHASTIC) == sde] for sde in (False, True)]
        if all(kinds):
            ode, sde = ([f"{r['sampler']} {r['fid']:.2f}" for r in sorted(k, key=lambda r: r["fid"])] for k in kinds)
            out.append(f"- {names.get(model, model)} at {top} NFE: the ODE samplers {', '.join(ode)}; the stochastic "
                       f"ones {', '.join(sde)}.")
    return out


def models_compared(rows: list[dict], names: dict[str, str]) -> list[str]:
    """Whether A's best arm stays ahead of isotropic under every sampler and NFE of C: one line per model."""
    fid = {(model_of(r), r["sampler"], r["nfe_budget"]): r["fid"] for r in rows}
    out = []
    for model in sorted({m for m, _, _ in fid} - {"isotropic"}):
        d = sorted(fid[k] - fid[("isotropic", *k[1:])] for k in fid if k[0] == model and ("isotropic", *k[1:]) in fid)
        if d:
            out.append(f"- {names.get(model, model)} − isotropic, over the {len(d)} sampler × NFE pairs both have: "
                       f"lower FID in {sum(x < 0 for x in d)}, median Δ FID {statistics.median(d):+.2f} (from {d[0]:+.2f} "
                       f"to {d[-1]:+.2f}; one seed, {rows[0]['samples']} samples per FID).")
    return out


def learning_order(rows: list[dict], budget: str, experiment: str, t_index: int = 1) -> tuple[str | None, list[str]]:
    """A figure of each arm's band errors (relative to their final values) against training
    step, and a table of each band's error at the first probe after initialisation relative to
    its final error (closer to 1: that band was learned earlier)."""
    arms = [a for a in arms_in_order(rows) if any(r["arm"] == a and r.get("probe") for r in rows)]
    if not arms:
        return None, []
    cols = 3
    fig, axes = plt.subplots(math.ceil(len(arms) / cols), cols, figsize=(4 * cols, 3 * math.ceil(len(arms) / cols)),
                             squeeze=False, sharey=True)
    first = None
    table = []
    for ax, arm in zip(axes.flat, arms):
        # the untrained network's errors (step 0) are orders of magnitude off: start at the first probe after it
        series = [[p for p in r["probe"] if p["step"] > 0] for r in rows if r["arm"] == arm and r.get("probe")]
        steps = [p["step"] for p in series[0]]
        n_bands = len(series[0][0]["probe_error"][t_index])
        edges = series[0][0]["probe_edges"]
        first = first or series[0][0]
        reached = []
        for b in range(n_bands):
            # mean over seeds of error / final error
            curves = [[p["probe_error"][t_index][b] / s[-1]["probe_error"][t_index][b] for p in s] for s in series
                      if len(s) == len(steps)]
            mean = [sum(c[i] for c in curves) / len(curves) for i in range(len(steps))]
            label = f"[{edges[b]:g}, {edges[b + 1]:g})" if b + 1 < len(edges) else f"≥ {edges[b]:g}"
            ax.plot(steps, mean, label=label)
            reached.append(f"{mean[0]:.2f}")
        ax.set_title(next(r["label"] for r in rows if r["arm"] == arm), fontsize=9)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        table.append(f"| {next(r['label'] for r in rows if r['arm'] == arm)} | " + " | ".join(map(str, reached)) + " |")
    for ax in list(axes.flat)[len(arms):]:
        ax.axis("off")
    axes[0, 0].set_ylabel(f"error / final error (t = {first['probe_t'][t_index]:g})")
    axes[0, 0].legend(title="band (Nyquist)", fontsize=7)
    fig.tight_layout()
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f"{budget}_{experiment}_learning_order.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    edges = first["probe_edges"]
    head = ["| arm | " + " | ".join(f"[{a:g}, {b:g})" for a, b in zip(edges, edges[1:])) + f" | ≥ {edges[-1]:g} |",
            "|---|" + "---:|" * len(edges)]
    return str(path.relative_to(FIGURES.parent)), head + table


def budget_probe_step(rows: list[dict]) -> int:
    """The step of the first learning-order probe after initialisation."""
    return next(p["step"] for r in rows if r.get("probe") for p in r["probe"] if p["step"] > 0)


def word(d: tuple[float, float, float], direction: int, control: str | None = None) -> str:
    """The verdict for a claimed effect of sign ``direction`` with paired difference ``d``."""
    if math.isnan(d[0]):
        return "not yet measured"
    if math.isnan(d[2]):
        return f"undecided: one seed, whose difference {'agrees with' if d[0] * direction > 0 else 'goes against'} the paper"
    if significant(d) == -direction:
        return "not reproduced: the opposite holds"
    if significant(d) != direction:
        return "not reproduced"
    return f"explained by a control ({control})" if control else "reproduced"


def agreement(d: tuple[float, float, float], direction: int) -> str:
    """What a second metric's paired difference ``d`` says of an effect of sign ``direction``: ``: it agrees``
    when significant that way, else that it does not resolve it, or goes the other way; nothing for one seed."""
    if math.isnan(d[2]):
        return ""
    return {direction: ": it agrees", 0: ": it does not resolve the gain at this many seeds",
            -direction: ": it goes the other way"}[significant(d)]


def attribution(d, off, gap, tilt, tilt_gap) -> tuple[str, str]:
    """The verdict on power-law SAGD's gain ``d`` over isotropic, given its two parts alone: offset noise with its
    DC share (``off``, and paper − offset ``gap``) and its tilt without the DC term (``tilt``, paper − tilt
    ``tilt_gap``). A part explains the gain when it alone gains significantly and the paper's arm does no
    significantly better than it. Returns the verdict and a sentence on what stays open."""
    dc = significant(off) < 0 and significant(gap) >= 0
    slope = significant(tilt) < 0 and significant(tilt_gap) >= 0
    if dc and slope:
        verdict = word(d, -1)
        if verdict == "reproduced":
            verdict = ("reproduced, but each of its parts alone does as well at this many seeds (offset noise, its "
                       "DC term; its tilt, without the DC term)")
        return verdict, (" Combining the two adds nothing significant to either at this many seeds: neither "
                         "paper − offset nor paper − tilt is significantly below 0.")
    if dc:
        why = (" The paper's spectrum beats its tilt alone but not offset noise alone: the DC term carries the gain, "
               "and the tilt adds nothing significant to it." if significant(tilt_gap) < 0 else "")
        return word(d, -1, "offset noise alone, the DC term"), why
    tilt_alone = " Its tilt alone, without the DC term, does as well at this many seeds." if slope else ""
    if math.isnan(gap[2]):
        return word(d, -1), tilt_alone
    if significant(gap) < 0:
        return word(d, -1), (" The paper's spectrum beats offset noise alone: the DC term does not explain the whole "
                             "gain." + tilt_alone)
    return word(d, -1), (" Whether the DC term alone explains the gain is unresolved at this many seeds: the interval "
                         "of paper − offset holds 0." + tilt_alone)


def energy_attribution(d, fair, fair_gap) -> tuple[str, str]:
    """The verdict on the omission's gain ``d`` over isotropic diffusion, given the same omission with its noise
    energy normalised (``fair``, and paper − normalised ``fair_gap``). The energy confound explains the gain when
    the normalised omission does not gain significantly and the paper's mixture beats it significantly; where
    neither is significant, whether it does is unresolved, and said so. Returns the verdict and that sentence."""
    verdict = word(d, -1)
    if verdict != "reproduced" or math.isnan(fair[2]) or significant(fair) < 0:
        return verdict, ""
    if significant(fair_gap) < 0:
        return word(d, -1, "the energy confound"), (
            " The energy-normalised mixture does not gain significantly and the paper's mixture beats it: the noise "
            "energy, not the omission, carries the gain.")
    return verdict, (" Whether the energy confound explains it is unresolved at this many seeds: the energy-normalised "
                     "mixture does not gain significantly, nor does the paper's mixture beat it significantly.")


def verdicts(a: list[dict], b: list[dict], floors: dict[str, dict]) -> list[str]:
    """One verdict per claim of the paper, and the paired differences behind it."""
    out = []
    if a and math.isnan(delta(a, "paper_a-0.06", "isotropic")[0]):
        out.append("* **Power-law SAGD beats isotropic diffusion; positive α is worse: not yet measured** "
                   "(no arm has a seed paired with isotropic yet).")
    elif a:
        d = delta(a, "paper_a-0.06", "isotropic")
        off = delta(a, "offset_dc", "isotropic")
        tilt = delta(a, "tilt_a-0.06", "isotropic")
        gap = delta(a, "paper_a-0.06", "offset_dc")
        tilt_gap = delta(a, "paper_a-0.06", "tilt_a-0.06")
        verdict, why = attribution(d, off, gap, tilt, tilt_gap)
        inc, inc768 = (delta(a, "paper_a-0.06", "isotropic", f"inception_{tap}") for tap in ("2048", "768"))
        inception = "" if math.isnan(inc[0]) else (
            f" On the standard Inception FID (2048 tap) Δ {measured(inc)}{agreement(inc, -1)}; on the 768 tap the paper "
            f"reports for such data, Δ {fmt(*inc768[:2], 3)}{ci(inc768, digits=3)}{agreement(inc768, -1)}.")
        iso = summary([r["fid"] for r in a if r["arm"] == "isotropic"])[0]
        out.append(f"* **Power-law SAGD (the paper's α = -0.06) beats isotropic diffusion at equal compute: "
                   f"{verdict}.** Δ FID {fmt(*d[:2])}{ci(d)}, {100 * d[0] / iso:+.0f} % of isotropic's "
                   f"FID (the paper: −33 % on MNIST, −18 % on Quickdraw); its DC term alone (offset "
                   f"noise with the same DC share) {fmt(*off[:2])}{ci(off)}; its tilt alone (no DC "
                   f"quirk) {fmt(*tilt[:2])}{ci(tilt)}; paper − offset {fmt(*gap[:2])}"
                   f"{ci(gap)}; paper − tilt {fmt(*tilt_gap[:2])}{ci(tilt_gap)}.{why}{inception}")
        p = delta(a, "paper_a+0.04", "isotropic")
        out.append(f"* **Positive α is worse than isotropic: {word(p, +1)}.** α = +0.04: Δ FID {fmt(*p[:2])}"
                   f"{ci(p)}.")
    for band in sorted({r["arm"].split("_")[0] for r in b if r["config"].get("corrupt")}):
        d = delta(b, f"{band}_paper", f"{band}_isotropic")
        fair = delta(b, f"{band}_normalised", f"{band}_isotropic")
        fair_gap = delta(b, f"{band}_paper", f"{band}_normalised")
        verdict, why = energy_attribution(d, fair, fair_gap)
        leak = [r["leak_vs_corrupted"] for r in b if r["arm"] == f"{band}_paper" and "leak_vs_corrupted" in r]
        project = delta(b, f"{band}_project", f"{band}_isotropic")
        kept = [r["leak_vs_clean"] for r in b if r["arm"] == f"{band}_paper" and "leak_vs_clean" in r]
        lo_hi = next(r["config"]["corrupt"] for r in b if r["arm"].startswith(band + "_"))
        out.append(f"* **Zeroing the band [{lo_hi['low']}, {lo_hi['high']}] makes the model ignore a corruption "
                   f"confined to it: {verdict}.** Δ FID against the clean test split (paper's mixture − "
                   f"isotropic, both trained on corrupted data) {fmt(*d[:2])}{ci(d)}; energy-normalised "
                   f"mixture {measured(fair)}; paper − normalised {measured(fair_gap)}; with the band also removed "
                   f"from training inputs (`project`) {measured(project)}.{why} Band energy of the paper arm's "
                   f"samples / corrupted data {(sum(leak) / len(leak)) if leak else math.nan:.3g}, / clean data "
                   f"{(sum(kept) / len(kept)) if kept else math.nan:.3g}"
                   + (": the samples carry nothing in the band, neither the corruption nor the data's own signal "
                      "there." if kept and max(kept) < 1e-6 else ".")
                   + (f" Real training images with the band removed score {floors[band]['fid_band_removed']:.1f} "
                      f"(unchanged, {floors[band]['fid_real']:.2f}): the floor of any model whose samples hold nothing "
                      "in the band." + costs(a, b, band, floors[band]) if band in floors else ""))
    return out


def costs(a: list[dict], b: list[dict], band: str, floor: dict) -> str:
    """What removing the band costs real images against what the corruption costs isotropic diffusion (over
    its clean-data run)."""
    clean = [r["fid"] for r in a if r["arm"] == "isotropic"]
    dirty = [r["fid"] for r in b if r["arm"] == f"{band}_isotropic"]
    if not (clean and dirty):
        return ""
    removal = floor["fid_band_removed"] - floor["fid_real"]
    corruption = summary(dirty)[0] - summary(clean)[0]
    return (f" Removing the band costs real images {removal:.1f} FID; the corruption costs isotropic diffusion "
            f"{corruption:.1f} (over its clean-data run): if the two costs simply added, omission could gain at most "
            f"{corruption - removal:.1f}.")


def describe(budget: str, rows: list[dict]) -> str:
    r = rows[0]
    counts = {}
    for q in rows:
        where = q["machine"].get("cuda_device") or f"{q['machine']['processor']}, {q['machine']['cpu_count']} CPUs"
        counts[where] = counts.get(where, 0) + 1
    where = " and ".join(f"{w} ({n} runs)" for w, n in counts.items()) if len(counts) > 1 else next(iter(counts))
    cfg = r["config"]
    return (f"Budget `{budget}`: `{cfg['model']}` UNet, {r['budget_settings']['steps']} steps × batch "
            f"{cfg['batch_size']} ({r['images_seen']:,} images) at {cfg['pad_to']}×{cfg['pad_to']}, lr {cfg['lr']:g}, "
            f"EMA {cfg['ema_decay']}; {r['samples']} samples ({r['sampler']}, {r['sampler_steps']} steps), features "
            f"`{r['features']}` (FID against the {r['fid_reference']} test images; KID and precision/recall against "
            f"{r['real_for_kid_pr']}). Run on {where}, torch {', '.join(sorted({q['machine']['torch'] for q in rows}))}, "
            f"commit {', '.join(sorted({q['machine']['git_commit'][:12] for q in rows}))}.")


def headline(budgets) -> str:
    """The README's one-line summary of experiment A, on the budget with the most seeds."""
    arms = DECISIVE  # isotropic first
    best = None
    for budget in budgets:
        a = load(budget, "A")
        seeds = min((len([r for r in a if r["arm"] == arm]) for arm in arms), default=0)
        if seeds and (best is None or seeds > best[1]):
            best = budget, seeds, a
    if best is None:
        return "### Experiments\n\nNo suite results yet: see [docs/results.md](docs/results.md)."
    budget, seeds, a = best
    most = max(len([r for r in a if r["arm"] == arm]) for arm in arms)
    count = f"{seeds} seed{'s' * (seeds > 1)}" if most == seeds else f"{seeds}–{most} seeds"
    fid = {arm: fmt(*summary([r["fid"] for r in a if r["arm"] == arm])[:2], 1) for arm in arms}
    d = {arm: measured(delta(a, arm, "isotropic"), inline=True) for arm in arms[1:]}
    return ("### Experiments: does the forward spectrum help, and why?\n\n"
            f"Fashion-MNIST at 32×32, budget `{budget}` ({count}; in-domain FID, lower is "
            f"better; Δ paired by seed): isotropic {fid['isotropic']}; the paper's α = -0.06 {fid['paper_a-0.06']} "
            f"(Δ {d['paper_a-0.06']}); its DC term alone, offset noise with the same DC share, {fid['offset_dc']} "
            f"(Δ {d['offset_dc']}); its tilt alone, without the DC term, {fid['tilt_a-0.06']} (Δ {d['tilt_a-0.06']}). "
            "Every table, the learning-order plots, selective omission and the verdicts: "
            "[docs/results.md](docs/results.md).")


def write_results(budgets=("cpu", "gpu"), docs: Path = DOCS) -> Path:
    """Write ``docs/results.md`` (and its figures under ``docs/results/``) for ``budgets``."""
    global FIGURES
    FIGURES = docs / "results"
    lines = ["# Results: does shaping the forward noise do what the paper claims?", "",
             "Generated by `python benchmarks/suite.py report` from `benchmarks/results/suite/`; the experiments are "
             "defined in `benchmarks/experiments.py` and run by `python benchmarks/suite.py run` (resumable). "
             "Mean ± standard error over training seeds; differences to isotropic are paired by seed (same "
             "initialisation and data order) and their 95 % half-width is the smallest difference a table resolves. "
             "A verdict is *reproduced* only when the interval excludes zero in the paper's direction. A budget names a "
             "size (network, steps, batch, samples), not a machine: the `cpu` budget is sized for about 15 minutes of "
             "two CPU cores per run, and its runs went to a lent GPU where one was available; each budget's line "
             "says where its runs ran.", ""]
    for budget in budgets:
        a, b, c = (load(budget, e) for e in "ABC")
        floors = load_floors(budget)
        if not (a or b or c):
            continue
        lines += [f"## Budget `{budget}`", "", describe(budget, a + b + c), ""]
        lines += ["### The paper's claims", "", *verdicts(a, b, floors), ""]
        if a:
            lines += ["### A — does the spectrum help, and why", "", *table_a(a), ""]
            if table_inception(a):
                lines += ["**Standard Inception FID** (the FID Inception-v3, `sagd.metrics.inception`) of the same "
                          "samples, against the whole test split, for the arms whose samples were kept "
                          "(`python benchmarks/suite.py inception`):", "", *table_inception(a), ""]
            fig, table = learning_order(a, budget, "A")
            if fig:
                lines += ["**Learning order.** Denoising error of the EMA model by radial band (Nyquist units) at "
                          "t = 0.5 on 64 held-out test images, divided by its final value, from the first probe after "
                          "initialisation; the table gives each band's error at that first probe (step "
                          f"{budget_probe_step(a)}) relative to its final error, mean over seeds: the closer to 1, the "
                          "earlier that band was learned.", "",
                          f"![learning order]({fig})", "", *table, ""]
        if b:
            lines += ["### B — selective omission", "",
                      "Training data corrupted on the fly in the band (γ_c = 1); FID against the clean test split. "
                      "The omission spectra are the exact complement of the corrupted band (`omission`); "
                      "'paper' keeps its energy (per-draw γ_l = γ_h = 0.5, normalize=false). With a hole in the spectrum "
                      "no sampler ever puts content in the band, so samples lack the data's own signal there too; "
                      "and in the paper's literal objective (`noise_only`) training inputs still carry α_t x_0 in the "
                      "band, which sampling never produces (docs/method.md §7); `project` removes it from training "
                      "inputs as well.", "", *table_b(b, [r for r in a if r["arm"] == "isotropic"], floors), ""]
        if c:
            names = {r["arm"]: r["label"] for r in a}
            n = sorted({r["samples"] for r in c})
            lines += ["### C — samplers on trained models", "",
                      f"FID of {' or '.join(map(str, n))} samples (seed 0) against a budget of network evaluations "
                      "(NFE). Each sampler takes the most steps the budget allows: one evaluation a step, Heun two "
                      "but one for the step into t = 0, so N − 1 of an even budget N (the figure plots the "
                      "evaluations spent). FID grows as the sample set shrinks: compare within this table, not with "
                      "A's.", "", *table_c(c, names), "",
                      f"![samplers]({figure_c(c, budget, names)})", "", *best_samplers(c, names), *ode_and_sde(c, names),
                      *models_compared(c, names), ""]
    path = docs / "results.md"
    path.write_text("\n".join(lines) + "\n")
    if docs == DOCS:
        (RESULTS.parent / "suite_headline.md").write_text(headline(budgets) + "\n")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    write_results()
