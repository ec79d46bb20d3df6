"""``sagd compare``: the latest eval of several runs in one table, with their spectra and loss curves overlaid.

Writes ``--out/compare.md`` (the table, then the plots), ``raps.png`` and ``loss.png``; prints the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import report


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="compare the evals of several runs",
                              description="One table of the latest 'sagd eval' metrics of each run, and overlaid "
                                          "radially averaged power spectra and training-loss curves.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders, each evaluated with sagd eval")
    p.add_argument("--out", metavar="DIR", default="runs/compare", help="output folder (default runs/compare)")
    p.set_defaults(func=run)


def labels(runs: list[Path]) -> list[str]:
    """Each run's folder name, or its whole path where names repeat."""
    names = [r.resolve().name for r in runs]
    return [n if names.count(n) == 1 else str(r) for n, r in zip(names, runs)]


def run(args: argparse.Namespace) -> None:
    runs = [Path(r) for r in args.runs]
    names = labels(runs)
    latest, losses = [], {}
    for path, label in zip(runs, names):
        if not (path / "metrics.jsonl").is_file():
            raise FileNotFoundError(f"{str(path)!r} holds no metrics.jsonl: not a run folder")
        train_records, evals = report.read_records(path)
        if not evals:
            raise ValueError(f"run {str(path)!r} has no eval record yet: run 'sagd eval --run {path}' first")
        latest.append(evals[-1])
        if train_records:
            losses[label] = ([r["step"] for r in train_records], [r["loss"] for r in train_records])

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curves = {}
    for record in latest:  # the data spectrum once per reference split
        curves.setdefault(f"{record['reference']} (data)", (record["raps"]["radii"], record["raps"]["data"]))
    curves.update({name: (r["raps"]["radii"], r["raps"]["samples"]) for name, r in zip(names, latest)})
    report.raps_figure(curves, out / "raps.png", "radially averaged power spectra of samples")
    parts = ["# sagd compare", "", report.metrics_table(latest, names, markdown=True), ""]
    if len({(r["features"], r["reference"]) for r in latest}) > 1:
        parts += ["**Note:** these evals used different feature spaces or reference splits: their FID, KID, "
                  "precision and recall are not comparable.", ""]
    parts += ["![radially averaged power spectra](raps.png)", ""]
    if losses:
        report.loss_figure(losses, out / "loss.png")
        parts += ["![training loss](loss.png)", ""]
    (out / "compare.md").write_text("\n".join(parts))
    print("\n".join(parts[2:3]))
    print(f"wrote {out / 'compare.md'}")
