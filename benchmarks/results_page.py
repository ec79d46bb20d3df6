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

from evidence import Group, adjudicate, claim_line, flatten, groups  # noqa: E402
from experiments import BANDS, DECISIVE, PLANS, arms_a, arms_b  # noqa: E402
from protocol import Paired, machine_class, paired_test  # noqa: E402

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
    d = Paired(tuple(values))
    return d.mean, d.se, d.half_width()


def paired(rows: list[dict], arm: str, base: str, key: str = "fid") -> list[float]:
    """``key(arm) - key(base)`` for every seed both have."""
    values = lambda name: {r["seed"]: r[key] for r in rows if r["arm"] == name and key in r}  # noqa: E731
    return list(paired_test(values(arm), values(base)).values)


def fmt(mean: float, se: float, digits: int = 2) -> str:
    return f"{mean:.{digits}f}" if math.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def arms_in_order(rows: list[dict]) -> list[str]:
    """The arms present in ``rows``, in the order ``experiments.py`` defines them."""
    order = [a.name for a in arms_a() + [a for p in PLANS.values() for a in p.arms_a()] + arms_b(tuple(BANDS))]
    return sorted({r["arm"] for r in rows}, key=lambda a: (order.index(a) if a in order else len(order), a))


def delta(rows, arm, base, key: str = "fid"):
    d = paired(rows, arm, base, key)
    return summary(d) if d else (math.nan, math.nan, math.nan)








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
    """B's arms by band; where its runs were scored on Inception (a plan's), the 768 tap and its paired Δ beside."""
    inception = any("inception_768" in r for r in rows)

    def line(*cells: str, rs=(), d768=(math.nan,) * 3) -> str:  # rs: the rows of the Inception cells
        if inception:
            scored = [r["inception_768"] for r in rs if "inception_768" in r]
            cells += (fmt(*summary(scored)[:2], 3) if scored else "—", "—" if math.isnan(d768[0]) else fmt(*d768[:2], 3))
        return "| " + " | ".join(cells) + " |"

    head = ["arm", "seeds", "FID vs clean test", "Δ FID vs isotropic on the same corruption", "95 % half-width",
            "band energy / clean data", "band energy / corrupted data", *["Inception FID (768)", "Δ (768)"] * inception]
    out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    if clean:
        out.append(line("isotropic on clean data (A's run)", str(len(clean)), fmt(*summary([r["fid"] for r in clean])[:2]),
                        "—", "—", "—", "—", rs=clean))
    if floors:
        out.append(line("real training images, no model", "—", f"{next(iter(floors.values()))['fid_real']:.2f}",
                        "—", "—", "—", "—"))
    shown = set()
    for arm in arms_in_order(rows):
        rs = [r for r in rows if r["arm"] == arm]
        band = arm.split("_")[0] if "corrupt" in rs[0]["config"] and rs[0]["config"]["corrupt"] else None
        if band in floors and band not in shown:
            shown.add(band)
            f = floors[band]
            out.append(line(f"real training images without [{f['low']}, {f['high']}], no model", "—",
                            f"{f['fid_band_removed']:.2f}", "—", "—", "0", "0"))
        base = f"{band}_isotropic" if band else None
        d, d768 = (delta(rows, arm, base), delta(rows, arm, base, "inception_768")) if base and arm != base else \
            ((math.nan,) * 3,) * 2
        leak = [r for r in rs if "leak_vs_clean" in r]
        out.append(line(rs[0]["label"], str(len(rs)), fmt(*summary([r["fid"] for r in rs])[:2]),
                        "—" if math.isnan(d[0]) else fmt(*d[:2]), "—" if math.isnan(d[2]) else f"{d[2]:.2f}",
                        f"{summary([r['leak_vs_clean'] for r in leak])[0]:.3f}" if leak else "—",
                        f"{summary([r['leak_vs_corrupted'] for r in leak])[0]:.3f}" if leak else "—", rs=rs, d768=d768))
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
            out.append(f"- {names.get(model, model)} − isotropic: one comparison of two single-seed models, read at "
                       f"{len(d)} sampler × NFE settings (not {len(d)} independent comparisons): lower FID at "
                       f"{sum(x < 0 for x in d)}, median Δ FID {statistics.median(d):+.2f} (from {d[0]:+.2f} to "
                       f"{d[-1]:+.2f}; {rows[0]['samples']} samples per FID). Which model samples better is not decided "
                       "by one seed of each.")
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


def first_within(probes: list[dict], band: int, t_index: int = 1, within: float = 0.10) -> int | None:
    """The first probe step after initialisation at which ``band``'s error (at ``probe_t[t_index]``) is within
    ``within`` of its final value; ``None`` without probes."""
    series = [p for p in probes if p["step"] > 0]
    if not series:
        return None
    final = series[-1]["probe_error"][t_index][band]
    return next(p["step"] for p in series if p["probe_error"][t_index][band] <= (1 + within) * final)


def table_learning_steps(rows: list[dict], t_index: int = 1) -> list[str]:
    """Per arm and band, the step at which the band's denoising error first comes within 10 % of its final value
    (mean over seeds), and the paired difference to isotropic in doublings (log2 of the step ratio, 95 % ± h)."""
    probed = [r for r in rows if r.get("probe")]
    if not probed:
        return []
    edges = next(p["probe_edges"] for r in probed for p in r["probe"])
    n_bands = len(next(p["probe_error"][t_index] for r in probed for p in r["probe"]))
    steps = {(r["arm"], r["seed"]): [first_within(r["probe"], b, t_index) for b in range(n_bands)] for r in probed}
    names = [f"[{a:g}, {b:g})" for a, b in zip(edges, edges[1:])] + [f"≥ {edges[-1]:g}"]
    out = ["| arm | seeds | " + " | ".join(names[:n_bands]) + " |", "|---|---:|" + "---:|" * n_bands]
    for arm in arms_in_order(probed):
        seeds = sorted(s for a, s in steps if a == arm)
        cells = []
        for b in range(n_bands):
            mean = statistics.mean(steps[arm, s][b] for s in seeds)
            d = [math.log2(steps[arm, s][b] / steps["isotropic", s][b]) for s in seeds
                 if arm != "isotropic" and ("isotropic", s) in steps]
            m, _, h = summary(d) if d else (math.nan,) * 3
            cells.append(f"{mean:.0f}" + ("" if math.isnan(m) else f" ({m:+.2f}" + ("" if math.isnan(h) else f" ± {h:.2f}") + ")"))
        out.append(f"| {next(r['label'] for r in probed if r['arm'] == arm)} | {len(seeds)} | " + " | ".join(cells) + " |")
    return out


def cell(group, arm: str, metric: str, digits: int) -> str:
    values = list(group.values(arm, metric).values())
    if not values:
        return "—"
    mean, se, _ = summary(values)
    return f"{fmt(mean, se, digits)} ({len(values)})"


def paper_layout(all_groups) -> list[str]:
    """The paper's Table 1 layout: a row per data set and machine class, Inception-768 FID of isotropic, the
    paper's best power law and its two parts alone (mean ± s.e. (seeds)), the paper's own figures beside them."""
    out = ["| data set | machine class | plan | isotropic | paper's best α | offset (its DC share) | tilt (no DC term) | "
           "the paper: isotropic → its best |", "|---|---|---|---:|---:|---:|---:|---|"]
    for g in all_groups:
        if not any(r["experiment"] == "A" for r in g.rows):
            continue
        plan = g.plan
        isotropic, paper, tilt, offset = plan.decisive if plan else DECISIVE
        arms = (isotropic, paper, offset, tilt)  # the header's order
        theirs = f"{plan.paper['isotropic']} → {plan.paper['paper']} (α = {plan.alpha:g})" if plan else "— (not in the paper)"
        label = f"`{g.folder}`" + ("" if plan else " (not pre-registered)")
        out.append(f"| {g.dataset} | {g.machine_class} | {label} | " + " | ".join(cell(g, a, "inception_768", 3) for a in arms)
                   + f" | {theirs} |")
    for plan in PLANS.values():
        if not any(g.plan is plan for g in all_groups):
            out.append(f"| {plan.dataset} | — | `{plan.name}` (in progress, no run yet) | — | — | — | — | "
                       f"{plan.paper['isotropic']} → {plan.paper['paper']} (α = {plan.alpha:g}) |")
    return out


def superseded() -> list[str]:
    """Every run whose record was set aside or replaced, with both values (``suite/superseded.json``); the value
    of a rerun not yet scored reads 'not yet rerun'."""
    path = RESULTS / "superseded.json"
    out = []
    for e in json.loads(path.read_text()) if path.is_file() else []:
        if "value" not in e:  # set aside by `suite.py supersede`: the rerun's record, where it exists
            current = RESULTS / f"{e['run']}.json"
            rerun = flatten(json.loads(current.read_text())) if current.is_file() else None
            e = {**e, "value": rerun.get(e["metric"]) if rerun else None,
                 "machine_class": machine_class(rerun) if rerun else None,
                 "replaced_in": rerun["machine"]["git_commit"][:12] if rerun else None}
        now = "not yet rerun" if e["value"] is None else (f"replaced by {e['value']:.3f} ({e['machine_class']}, "
                                                           f"{e['replaced_in']})")
        out.append(f"* `{e['run']}`: {e['metric']} {e['superseded_value']:.3f} ({e['superseded_machine_class']}, "
                   f"recorded in {e['superseded_recorded_in']}) {now}: {e['why']}.")
    return out or ["* none"]


def plan_status(plan, rows: list[dict]) -> list[str]:
    """A pre-registered plan as the page prints it: its fixed settings and how many of its runs exist, per class."""
    runs = plan.runs()
    done = {}
    for r in rows:
        done.setdefault(machine_class(r), set()).add((r["experiment"], r["arm"], r["seed"]))
    planned = {(e, a.name, s) for e, a, s in runs}
    count = "; ".join(f"{c}: {len(planned & have)} of {len(planned)} runs" for c, have in sorted(done.items())) or \
        f"0 of {len(planned)} runs"
    bands = ", ".join(f"{b} {BANDS[b]}" for b in plan.bands) or "none"
    state = "complete" if any(planned <= have for have in done.values()) else "in progress"
    return [f"* **Plan `{plan.name}`** ({state}; {count}): {plan.dataset}, budget `{plan.budget}`, {plan.device} {plan.precision}; "
            f"A's arms {', '.join(a.name for a in plan.arms_a())}, seeds {list(plan.decisive_seeds)} for "
            f"{', '.join(plan.decisive)} and {list(plan.seeds)} for the rest; B's bands {bands}, seeds "
            f"{list(plan.seeds)}; primary metric {plan.metrics[0]} (then {', '.join(plan.metrics[1:])}); "
            f"equivalence margin δ = {plan.margin:g} × the paper arm's mean gain."]


def band_costs(a: list[dict], b: list[dict], floors: dict[str, dict]) -> list[str]:
    """Per corrupted band with a floor: what removing the band costs real images, against what the corruption
    costs isotropic diffusion over its clean-data run (same machine class)."""
    out = []
    clean = [r["fid"] for r in a if r["arm"] == "isotropic"]
    for band in sorted({r["arm"].split("_")[0] for r in b} & set(floors)):
        f = floors[band]
        line = (f"* [{f['low']}, {f['high']}]: real training images with the band removed score {f['fid_band_removed']:.1f} "
                f"(unchanged, {f['fid_real']:.2f}): the floor of any model whose samples hold nothing in the band.")
        dirty = [r["fid"] for r in b if r["arm"] == f"{band}_isotropic"]
        if clean and dirty:
            removal, corruption = f["fid_band_removed"] - f["fid_real"], summary(dirty)[0] - summary(clean)[0]
            line += (f" Removing the band costs real images {removal:.1f} FID; the corruption costs isotropic diffusion "
                     f"{corruption:.1f} (over its clean-data run): if the two costs simply added, omission could gain at "
                     f"most {corruption - removal:.1f}.")
        out.append(line)
    return out


def describe(name: str, rows: list[dict]) -> str:
    r = rows[0]
    where = sorted({q["machine"].get("cuda_device") or f"{q['machine']['processor']}, {q['machine']['cpu_count']} CPUs"
                    for q in rows})
    cfg = r["config"]
    return (f"`{cfg['model']}` UNet, {r['budget_settings']['steps']} steps × batch {cfg['batch_size']} "
            f"({r['images_seen']:,} images) at {cfg['pad_to']}×{cfg['pad_to']}, lr {cfg['lr']:g}, EMA {cfg['ema_decay']}; "
            f"{r['samples']} samples ({r['sampler']}, {r['sampler_steps']} steps), features `{r['features']}` (FID "
            f"against the {r['fid_reference']} test images; KID and precision/recall against {r['real_for_kid_pr']}). "
            f"{len(rows)} runs on {' and '.join(where)}, torch {', '.join(sorted({q['machine']['torch'] for q in rows}))}, "
            f"commit {', '.join(sorted({q['machine']['git_commit'][:12] for q in rows}))}.")


def headline(all_groups) -> str:
    """The README's summary: the paper-layout table and the headline verdicts' words."""
    if not all_groups:
        return "### Experiments\n\nNo suite results yet: see [docs/results.md](docs/results.md)."
    verdicts = [f"- {g.dataset} (`{g.folder}`, {g.machine_class}): {c.text}: **{c.verdict}**" for g in all_groups
                for c in g.claims if c.b == "isotropic"]
    return "\n".join(["### Experiments: does the forward spectrum help, and why?", "",
                      "Inception-768 FID (the paper's tap for such data; lower is better), mean ± s.e. (seeds), one "
                      "machine class a row; the protocol, every table and every verdict: [docs/results.md](docs/results.md).",
                      "", *paper_layout(all_groups), "", *verdicts])


PROTOCOL = ("Generated by `python benchmarks/suite.py report` from `benchmarks/results/suite/`; the experiments are "
            "defined in `benchmarks/experiments.py` and run by `python benchmarks/suite.py run --plan NAME` (resumable). "
            "**The protocol** (`benchmarks/protocol.py`, `benchmarks/evidence.py`): the MNIST and Quick, Draw! plans were "
            "pre-registered (arms, seeds, bands, primary metric and margin fixed before their first run) and no verdict "
            "is given on a comparison before its planned runs exist; the Fashion-MNIST budgets ran before the protocol "
            "and their verdicts are post hoc. A comparison pools runs of one machine class only (device, training "
            "precision, torch minor version): each class has its own tables and verdicts, never paired with another. "
            "Differences are paired by seed (same initialisation and data order); a headline verdict is the two-sided "
            "paired t test, Holm-corrected over every headline test of this page, *reproduced* (or *the opposite "
            "holds*) only below adjusted p = 0.05, else *unresolved*. Each tested verdict also gives the same "
            "difference on the other metric (a plan's second; Inception-768 for Fashion-MNIST), reported but not "
            "tested, and says when its sign disagrees. *Explained by a control* needs the 90 % interval "
            "of paper − control inside ±δ (two one-sided tests), δ = the plan's margin × the paper arm's mean gain; "
            "otherwise the page says what half-width, and about how many seeds, would decide it. Mean ± standard error "
            "over seeds throughout.")


def group_sections(g: Group, floors: dict[str, dict]) -> list[str]:
    """The tables of one folder in one machine class."""
    a = [r for r in g.rows if r["experiment"] == "A"]
    b = [r for r in g.rows if r["experiment"] == "B"]
    c = [r for r in g.rows if r["experiment"] == "C"]
    tag = f"{g.folder}_{g.machine_class.replace('/', '-')}"
    lines = [f"### `{g.folder}` on {g.machine_class}", "", describe(g.folder, g.rows), ""]
    if a:
        lines += ["**A — does the spectrum help, and why** (in-domain FID):", "", *table_a(a), ""]
        if table_inception(a):
            lines += ["**Inception FID** (the FID Inception-v3, `sagd.metrics.inception`) of the same samples against "
                      "the whole test split; the 2048 tap's covariance is rank-deficient below 2048 samples, so its "
                      "values at 2000 samples carry that bias:", "", *table_inception(a), ""]
        fig, table = learning_order(a, tag, "A")
        if fig:
            lines += ["**Learning order.** Denoising error of the EMA model by radial band (Nyquist units) at t = 0.5 on "
                      "64 held-out test images, divided by its final value; first, the step at which each band's error "
                      "first comes within 10 % of its final value (mean over seeds; in brackets the paired difference to "
                      "isotropic in doublings of the step, 95 % ± h: negative = learned earlier):", "",
                      *table_learning_steps(a), "", f"![learning order]({fig})", "",
                      f"Each band's error at the first probe (step {budget_probe_step(a)}) relative to its final error, "
                      "mean over seeds (closer to 1: learned earlier):", "", *table, ""]
    if b:
        clean = [r for r in a if r["arm"] == "isotropic"]
        lines += ["**B — selective omission.** Training data corrupted on the fly in the band (γ_c = 1); FID against "
                  "the clean test split. The omission spectra are the exact complement of the corrupted band; 'paper' "
                  "keeps its energy (per-draw γ_l = γ_h = 0.5, normalize=false); `project` also removes the band from "
                  "training inputs (docs/method.md §7). With a hole in the spectrum no sampler puts content in the band, "
                  "so samples lack the data's own signal there too." + (" A plan's verdict reads the Inception-768 columns, its "
                  "primary metric." if any("inception_768" in r for r in b) else ""), "", *table_b(b, clean, floors), ""]
        lines += [*band_costs(a, b, floors), ""]
    if c:
        names = {r["arm"]: r["label"] for r in a}
        n = sorted({r["samples"] for r in c})
        here = sorted({model_of(r) for r in c if r.get("model_trained_here")})
        lines += ["**C — samplers on trained models.** "
                  f"FID of {' or '.join(map(str, n))} samples (sampling seed 0) against a budget of network evaluations "
                  "(NFE), each sampler taking the most steps the budget allows. One training seed per model: "
                  + (f"the models of {', '.join(here)} were retrained by C's worker (same configuration and seed as A's "
                     "run, on another machine), not A's own networks. " if here else "")
                  + "Compare within this table, not with A's.", "", *table_c(c, names), "",
                  f"![samplers]({figure_c(c, tag, names)})", "", *best_samplers(c, names), *ode_and_sde(c, names),
                  *models_compared(c, names), ""]
    return lines


def write_results(budgets=("cpu", "gpu"), docs: Path = DOCS, plans=tuple(PLANS)) -> Path:
    """Write ``docs/results.md`` (and its figures under ``docs/results/``) for ``plans`` and the Fashion-MNIST ``budgets``."""
    global FIGURES
    FIGURES = docs / "results"
    folders = [f for f in (*plans, *budgets) if any(load(f, e) for e in "ABC")]
    by_folder = {f: groups(f, [r for e in "ABC" for r in load(f, e)]) for f in folders}
    all_groups = [g for f in folders for g in by_folder[f]]
    adjudicate(all_groups)
    lines = ["# Results: does shaping the forward noise do what the paper claims?", "", PROTOCOL, "",
             "## The paper's Table 1, our runs", "",
             "Inception-768 FID (the paper's tap for 28–32 px data), mean ± s.e. (seeds), a row per data set and "
             "machine class. The paper's figures come from 50k samples of its own, larger network; ours from 2000 "
             "samples of the 1.1 M-parameter UNet: compare arms within a row, not our values with the paper's.", "",
             *paper_layout(all_groups), "", "## Verdicts", ""]
    for g in all_groups:
        lines += [f"**{g.dataset}, `{g.folder}`, {g.machine_class}**", ""] + [claim_line(g, c) for c in g.claims] + [""]
    lines += ["## Plans", "", *[line for p in plans for line in plan_status(PLANS[p], [r for e in "AB" for r in load(p, e)])],
              "", "## Superseded runs", "", *superseded(), ""]
    for f in folders:
        lines += [f"## `{f}`: {PLANS[f].dataset} (pre-registered plan)" if f in PLANS else
                  f"## Budget `{f}`: Fashion-MNIST (before the protocol)", ""]
        for g in by_folder[f]:
            lines += group_sections(g, load_floors(f))
    path = docs / "results.md"
    path.write_text("\n".join(lines) + "\n")
    if docs == DOCS:
        (RESULTS.parent / "suite_headline.md").write_text(headline(all_groups) + "\n")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    write_results()
