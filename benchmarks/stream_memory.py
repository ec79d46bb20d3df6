"""Resident memory of training from a large image folder: streamed against held in memory.

Writes ``--n`` random ``--size``² RGB PNGs to a temporary folder (deleted at the end), then trains
the ``tiny`` UNet on it for ``--steps`` steps twice, each in its own process: ``data_loading:
stream`` (2 DataLoader workers) and ``data_loading: memory`` (the whole split as one float32
tensor). The peak memory of each process tree (trainer plus workers, sampled every
0.25 s with psutil) goes to ``--out/stream_memory.json`` and ``.md``.

    PYTHONPATH=src python benchmarks/stream_memory.py --out benchmarks/results   # 100,000 32² PNGs
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import yaml
from PIL import Image

from common import machine


def write_pngs(folder: Path, n: int, size: int) -> float:
    """``n`` PNGs of smooth random colour fields; returns their total size in MB."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        low = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(low).resize((size, size), Image.Resampling.BILINEAR).save(folder / f"{i:06d}.png")
    return sum(p.stat().st_size for p in folder.iterdir()) / 1e6


def peak_memory(command: list[str], cwd: Path) -> dict:
    """Run ``command``; the peaks (MB) of its process tree's summed PSS (shared pages split among the
    processes that share them: the tree's real footprint), its summed RSS (shared pages counted once per
    process) and the main process's RSS, and the wall time (s)."""
    start = time.time()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root, peak = psutil.Process(proc.pid), {"pss_mb": 0.0, "rss_sum_mb": 0.0, "main_rss_mb": 0.0}
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            info = [p.memory_full_info() for p in tree]
            now = {"pss_mb": sum(i.pss for i in info), "rss_sum_mb": sum(i.rss for i in info), "main_rss_mb": info[0].rss}
            peak = {k: max(peak[k], v / 2**20) for k, v in now.items()}
        except psutil.Error:
            pass
        time.sleep(0.25)
    if proc.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr.read()[-2000:]}")
    return {**{k: round(v, 1) for k, v in peak.items()}, "seconds": round(time.time() - start, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sagd-pngs-"))
    try:
        megabytes = write_pngs(tmp / "images", args.n, args.size)
        rows = {}
        for mode in ("stream", "memory"):
            config = tmp / f"{mode}.yaml"
            config.write_text(yaml.safe_dump({
                "dataset": f"folder:path={tmp / 'images'}", "data_loading": mode, "data_workers": 2, "model": "tiny",
                "batch_size": 64, "steps": args.steps, "warmup": 0, "log_every": args.steps, "probe_every": 0,
                "sample_every": 10**9, "checkpoint_every": 10**9, "sample_n": 4, "sample_steps": 2,
                "out": str(tmp / f"run-{mode}")}))
            rows[mode] = peak_memory([sys.executable, "-m", "sagd.cli", "train", "--config", str(config)], Path.cwd())
            print(mode, rows[mode], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    float32_mb = args.n * 3 * args.size**2 * 4 / 2**20
    result = {"benchmark": "stream_memory", "images": args.n, "size": args.size, "png_mb": round(megabytes, 1),
              "float32_split_mb": round(float32_mb, 1), "steps": args.steps, "batch_size": 64, "workers": 2,
              "rows": rows, "machine": machine()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stream_memory.json").write_text(json.dumps(result, indent=1) + "\n")
    m = result["machine"]
    table = ["### Training memory: a folder of PNGs, streamed or held in memory", "",
             f"{args.n:,} RGB PNGs of {args.size}×{args.size} ({megabytes:.0f} MB on disk, {float32_mb:.0f} MB as "
             f"float32); `tiny` UNet, batch 64, {args.steps} steps. Peaks of the trainer and its DataLoader workers: "
             "PSS (shared pages split among the processes: the real footprint), RSS summed over the processes "
             "(shared pages counted in each), and the trainer's own RSS.", "",
             "| data_loading | peak PSS (MB) | peak summed RSS (MB) | trainer RSS (MB) | wall time (s) |",
             "|---|---:|---:|---:|---:|"]
    table += [f"| {mode} | {r['pss_mb']:.0f} | {r['rss_sum_mb']:.0f} | {r['main_rss_mb']:.0f} | {r['seconds']:.0f} |"
              for mode, r in rows.items()]
    table += ["", f"Measured on {m['processor']}, {m['cpu_count']} CPUs, torch {m['torch']}, commit "
                  f"{m['git_commit'][:12]} (`benchmarks/stream_memory.py`).", ""]
    (args.out / "stream_memory.md").write_text("\n".join(table))
    print("\n".join(table))


if __name__ == "__main__":
    main()
