"""``sagd export``: a trained run as a diffusers pipeline folder (``save_pretrained`` layout).

Load it with stock ``DiffusionPipeline.from_pretrained(DIR, trust_remote_code=True)``: the flag lets
diffusers run the folder's ``pipeline_sagd.py``, one line that imports ``SAGDPipeline`` from sagd.
See ``sagd.pipeline``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a run as a diffusers pipeline folder",
                              description="Write the EMA network of a run's newest checkpoint, its scheduler and its "
                                          "noise spectrum as a diffusers save_pretrained folder that "
                                          "DiffusionPipeline.from_pretrained loads as a SAGDPipeline.")
    p.add_argument("--run", metavar="DIR", required=True, help="a run folder written by sagd train")
    p.add_argument("--out", metavar="DIR", required=True, help="the folder to write (must not hold a pipeline yet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..pipeline import export
    from ..run import load_run

    out = Path(args.out)
    if (out / "model_index.json").exists():
        raise ValueError(f"--out {str(out)!r} already holds a pipeline: choose another folder")
    loaded = load_run(args.run)
    if loaded.cfg.process != "sagd":
        raise ValueError(f"--run {args.run!r}: a diffusers pipeline samples SAGD's process; this run trained "
                         f"process {loaded.cfg.process!r}, which has none")
    export(loaded, out)
    print(f"wrote {out} (step {loaded.step}); load it with DiffusionPipeline.from_pretrained({str(out)!r}, trust_remote_code=True)")
