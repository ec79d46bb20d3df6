"""The run report: figures (matplotlib, no display) and ``report.html`` in a run folder.

``sagd eval`` writes ``runs/<name>/report.html`` with its figures in ``runs/<name>/report/``;
``sagd compare`` reuses the overlay plots (``raps_figure``, ``loss_figure``) and ``metrics_table``.
Every figure function takes tensors or plain lists and a path, and writes one PNG.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .metrics import radial_average  # noqa: E402

FIGURES = "report"
MARKERS = "os^vD<>p"
# columns of metric tables: record key -> header (KID shown as mean ± se)
COLUMNS = {
    "step": "step",
    "n": "samples",
    "method": "sampler",
    "sampling_steps": "steps",
    "features": "features",
    "fid": "FID",
    "kid_mean": "KID",
    "precision": "precision",
    "recall": "recall",
    "lsd": "LSD (dB)",
    "nn_ratio": "NN ratio",
}


def figure(ncols: int = 1, nrows: int = 1, width: float = 4.5, height: float = 3.6):
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, layout="constrained")


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _show(ax, image: torch.Tensor, title: str | None = None, fontsize: int = 7) -> None:
    """Draw one image ``(C, H, W)`` in ``[-1, 1]`` (clamped) without axes (unless ``C = 3``: channel 0, grey)."""
    x = ((image.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0)
    ax.imshow((x if x.shape[-1] == 3 else x[..., 0]).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=fontsize)


# ---------------------------------------------------------------------------- figures
def neighbours_figure(samples: torch.Tensor, neighbours: torch.Tensor, distances: torch.Tensor, path: Path) -> Path:
    """Each sample ``(S, C, H, W)`` beside its nearest training images ``(S, K, C, H, W)``, titled with ``distances``
    ``(S, K)``."""
    s, k = distances.shape
    fig, ax = figure(k + 1, s, width=1.1, height=1.2)
    for i in range(s):
        _show(ax[i, 0], samples[i], "sample" if i == 0 else None)
        for j in range(k):
            _show(ax[i, j + 1], neighbours[i, j], f"{'train NN ' if i == 0 else ''}d={float(distances[i, j]):.2f}")
    return save(fig, path)


def raps_figure(curves: dict[str, tuple[Sequence[float], Sequence[float]]], path: Path, title: str) -> Path:
    """Radially averaged power spectra on log-log axes (DC omitted): ``{label: (radii, power)}``."""
    fig, ax = figure(width=5.5)
    a = ax[0, 0]
    for i, (label, (radii, power)) in enumerate(curves.items()):
        a.loglog(list(radii)[1:], list(power)[1:], MARKERS[i % len(MARKERS)] + "-", ms=3, label=label)
    a.set(xlabel="|k| (cycles/pixel)", ylabel="mean power", title=title)
    a.legend(fontsize=8)
    return save(fig, path)


def loss_figure(curves: dict[str, tuple[Sequence[int], Sequence[float]]], path: Path) -> Path:
    """Training loss against step on a log scale: ``{label: (steps, losses)}``."""
    fig, ax = figure(width=5.5)
    a = ax[0, 0]
    for label, (steps, losses) in curves.items():
        a.semilogy(steps, losses, lw=1, label=label)
    a.set(xlabel="step", ylabel="loss", title="training loss (logged means)")
    if len(curves) > 1:
        a.legend(fontsize=8)
    return save(fig, path)


def noise_figure(proc, path: Path, generator: torch.Generator) -> Path:
    """The noise spectrum ``w(k)`` (2-D on a log scale, zero frequency centred; radial average) and one draw
    ``Σ^{1/2} ε`` beside its white ``ε``.

    ``proc``: a ``VPProcess`` on images ``(C, H, W)``.
    """
    w = proc.cov.weights.mean(0).to(torch.float64)
    eps = torch.randn((1, *proc.shape), generator=generator)
    fig, ax = figure(4, width=3.2, height=3.0)
    im = ax[0, 0].imshow(torch.fft.fftshift(w).clamp_min(1e-6).log10().numpy(), cmap="magma",
                         extent=(-0.5, 0.5, 0.5, -0.5))
    fig.colorbar(im, ax=ax[0, 0], shrink=0.8, label="log10 w(k)")
    ax[0, 0].set(xlabel="k_x (cycles/pixel)", ylabel="k_y", title="noise spectrum w(k)")
    radii, wr = radial_average(w)
    ax[0, 1].semilogy(radii[1:].numpy(), wr[1:].masked_fill(wr[1:] == 0, math.nan).numpy(), "o-", ms=3)
    ax[0, 1].axhline(1.0, color="gray", lw=0.8)
    ax[0, 1].set(xlabel="|k| (cycles/pixel)", ylabel="w(k)", title="radial average (grey: isotropic)")
    for a, x, title in ((ax[0, 2], eps[0], "white ε"), (ax[0, 3], proc.cov.sqrt(eps)[0], "Σ^{1/2} ε")):
        x = (x - x.min()) / (x.max() - x.min() + 1e-12) * 2 - 1  # contrast-stretched to [-1, 1]
        _show(a, x, title, fontsize=11)
    return save(fig, path)


def trajectory_figure(trajectory: Sequence[torch.Tensor], ts: Sequence[float], path: Path, columns: int = 8) -> Path:
    """A strip per sample: ``x`` at ``columns`` evenly spaced sampler steps (``trajectory``: tensors ``(S, C, H, W)``
    after each step, ``ts`` the time of each), clamped to ``[-1, 1]``."""
    picks = sorted({round(i * (len(trajectory) - 1) / (columns - 1)) for i in range(columns)})
    rows = trajectory[0].shape[0]
    fig, ax = figure(len(picks), rows, width=1.1, height=1.2)
    for j, step in enumerate(picks):
        for i in range(rows):
            _show(ax[i, j], trajectory[step][i], f"t={ts[step]:.2g}" if i == 0 else None)
    return save(fig, path)


# ---------------------------------------------------------------------------- tables and the page
def format_value(record: dict, key: str) -> str:
    value = record.get(key)
    if key == "kid_mean" and value is not None:
        return f"{value:.3g} ± {record.get('kid_se', math.nan):.2g}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def table_columns(records: Sequence[dict]) -> dict[str, str]:
    """``COLUMNS`` plus the band-energy keys present in ``records``."""
    bands = sorted({k for r in records for k in r if k.startswith("rel_band_energy")})
    return {**COLUMNS, **{k: "band energy / data " + k.removeprefix("rel_band_energy_").replace("_", " ")
                          for k in bands}}


def metrics_table(records: Sequence[dict], labels: Sequence[str] | None = None, markdown: bool = False) -> str:
    """Eval records as an HTML (or markdown) table, one row each; ``labels`` adds a first column."""
    columns = table_columns(records)
    header = (["run"] if labels else []) + list(columns.values())
    rows = [([labels[i]] if labels else []) + [format_value(r, k) for k in columns] for i, r in enumerate(records)]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    cells = lambda tag, row: "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in row)  # noqa: E731
    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f"<table><tr>{cells('th', header)}</tr>{body}</table>"


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Every record of ``run_dir/metrics.jsonl`` (training, ``kind`` ``"probe"`` and ``"eval"``), in order."""
    path = Path(run_dir) / "metrics.jsonl"
    records = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a killed run
            continue
    return records


def read_records(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """The training records and the eval records (``kind == "eval"``) of ``run_dir/metrics.jsonl``."""
    records = read_metrics(run_dir)
    return [r for r in records if "kind" not in r], [r for r in records if r.get("kind") == "eval"]


STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}")
NOTES = ("FID, KID (mean ± standard error over subsets), precision and recall are computed in the feature space "
         "named in <i>features</i> against the test split; LSD is the log-spectral distance between the radially "
         "averaged power spectra of samples and test images. NN ratio: median distance of samples to their nearest "
         "training image over the same for test images (≪ 1 hints at memorisation).")


def write_html(run_dir: Path, title: str, config: dict, evals: Sequence[dict], figures: dict[str, Path]) -> Path:
    """``run_dir/report.html``: the config, a table of every eval and one section per figure ``{heading: png}``."""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in config.items())
    sections = "".join(
        f"<h2>{html.escape(heading)}</h2><img src='{path.relative_to(run_dir).as_posix()}'>"
        for heading, path in figures.items()
    )
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<h2>Metrics</h2>{metrics_table(evals)}<p>{NOTES}</p>{sections}"
            f"<h2>Config</h2><table>{rows}</table></body></html>")
    path = run_dir / "report.html"
    path.write_text(page)
    return path
