"""Resident memory of training from a large image folder or latent shards: streamed against held in memory.

``--source pngs``: writes ``--n`` random ``--size``² RGB PNGs to a temporary folder; ``--source
latents``: ``--n`` random float32 latents ``(4, size, size)`` in ``sagd encode``'s shards (50,000 a
shard) with a random tiny ``AutoencoderKL`` to decode them (the folder is deleted at the end). Then
trains the ``tiny`` UNet on it for ``--steps`` steps twice, each in its own process: ``data_loading:
stream`` (2 DataLoader workers) and ``data_loading: memory`` (the whole split as one float32
tensor), each starting with the data out of the page cache. The peak memory of each process tree
(trainer plus workers, sampled every 0.25 s with psutil) and what it read from disk go to
``--out/stream_memory.json`` and ``.md`` (``stream_memory_latents.*`` for latents).

    PYTHONPATH=src python benchmarks/stream_memory.py --out benchmarks/results   # 100,000 32² PNGs
    PYTHONPATH=src python benchmarks/stream_memory.py --out benchmarks/results --source latents  # 1 M (4, 8, 8)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch
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


def write_latents(folder: Path, n: int, size: int) -> tuple[float, dict]:
    """``n`` standard normal latents ``(4, size, size)`` in shards, and a random 2-level ``AutoencoderKL``
    (1-channel ``2·size``² images); returns their size in MB and the config keys that train on them."""
    from diffusers import AutoencoderKL

    from sagd.data.latent_shards import write_shards

    torch.manual_seed(0)
    AutoencoderKL(in_channels=1, out_channels=1, latent_channels=4, block_out_channels=(8, 16),
                  down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                  norm_num_groups=4).save_pretrained(folder / "vae")
    dataset, shard = f"grf:size={2 * size}", 50_000
    parts = ((torch.randn(min(shard, n - start), 4, size, size), None) for start in range(0, n, shard))
    write_shards(folder / "latents", parts, {"dataset": dataset, "pad_to": None, "vae": str(folder / "vae"),
                                             "num_classes": None, "image_shape": [1, 2 * size, 2 * size]})
    megabytes = sum(p.stat().st_size for p in (folder / "latents").iterdir()) / 1e6
    return megabytes, {"dataset": dataset, "vae": str(folder / "vae"), "latents": str(folder / "latents")}


def evict(folder: Path) -> None:
    """Drop the files under ``folder`` from the page cache, so that a run reads what it uses from disk."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)  # dirty pages (a file just written) would stay
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)


def peak_memory(command: list[str], cwd: Path) -> dict:
    """Run ``command``; the peaks (MB) of its process tree's summed PSS (shared pages split among the
    processes that share them: the tree's real footprint), its summed RSS (shared pages counted once per
    process), the main process's RSS and the tree's bytes read from disk, and the wall time (s)."""
    start = time.time()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root, peak = psutil.Process(proc.pid), {"pss_mb": 0.0, "rss_sum_mb": 0.0, "main_rss_mb": 0.0, "read_mb": 0.0}
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            info = [p.memory_full_info() for p in tree]
            now = {"pss_mb": sum(i.pss for i in info), "rss_sum_mb": sum(i.rss for i in info), "main_rss_mb": info[0].rss,
                   "read_mb": sum(p.io_counters().read_bytes for p in tree)}
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
    p.add_argument("--source", choices=("pngs", "latents"), default="pngs")
    p.add_argument("--n", type=int, help="PNGs or latents (default 100,000 PNGs, 1,000,000 latents)")
    p.add_argument("--size", type=int, help="PNG side (default 32) or latent side (default 8)")
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    latents = args.source == "latents"
    n, size = args.n or (1_000_000 if latents else 100_000), args.size or (8 if latents else 32)
    tmp = Path(tempfile.mkdtemp(prefix=f"sagd-{args.source}-"))
    try:
        if latents:
            megabytes, keys = write_latents(tmp, n, size)
        else:
            megabytes, keys = write_pngs(tmp / "images", n, size), {"dataset": f"folder:path={tmp / 'images'}"}
        rows = {}
        for mode in ("stream", "memory"):
            config = tmp / f"{mode}.yaml"
            config.write_text(yaml.safe_dump({
                **keys, "data_loading": mode, "data_workers": 2, "model": "tiny",
                "batch_size": 64, "steps": args.steps, "warmup": 0, "log_every": args.steps,
                "sample_every": 10**9, "checkpoint_every": 10**9, "sample_n": 4, "sample_steps": 2,
                "out": str(tmp / f"run-{mode}")}))
            evict(tmp)
            rows[mode] = peak_memory([sys.executable, "-m", "sagd.cli", "train", "--config", str(config)], Path.cwd())
            print(mode, rows[mode], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    float32_mb = n * (4 if latents else 3) * size**2 * 4 / 2**20
    result = {"benchmark": "stream_memory", "source": args.source, "items": n, "size": size,
              "disk_mb": round(megabytes, 1), "float32_split_mb": round(float32_mb, 1), "steps": args.steps,
              "batch_size": 64, "workers": 2, "rows": rows, "machine": machine()}
    args.out.mkdir(parents=True, exist_ok=True)
    name = "stream_memory_latents" if latents else "stream_memory"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    m = result["machine"]
    what = (f"{n:,} float32 latents of (4, {size}, {size}) in `sagd encode` shards ({megabytes:.0f} MB on disk)"
            if latents else f"{n:,} RGB PNGs of {size}×{size} ({megabytes:.0f} MB on disk, {float32_mb:.0f} MB as float32)")
    table = [f"### Training memory: {'latent shards' if latents else 'a folder of PNGs'}, streamed or held in memory", "",
             f"{what}; `tiny` UNet, batch 64, {args.steps} steps. Peaks of the trainer and its DataLoader workers: "
             "PSS (shared pages split among the processes: the real footprint), RSS summed over the processes "
             "(shared pages counted in each), and the trainer's own RSS; what they read from disk, starting with "
             "the data out of the page cache.", "",
             "| data_loading | peak PSS (MB) | peak summed RSS (MB) | trainer RSS (MB) | read from disk (MB) | wall time (s) |",
             "|---|---:|---:|---:|---:|---:|"]
    table += [f"| {mode} | {r['pss_mb']:.0f} | {r['rss_sum_mb']:.0f} | {r['main_rss_mb']:.0f} | {r['read_mb']:.0f} | "
              f"{r['seconds']:.0f} |" for mode, r in rows.items()]
    table += ["", f"Measured on {m['processor']}, {m['cpu_count']} CPUs, torch {m['torch']}, commit "
                  f"{m['git_commit'][:12]} (`benchmarks/stream_memory.py`).", ""]
    (args.out / f"{name}.md").write_text("\n".join(table))
    print("\n".join(table))


if __name__ == "__main__":
    main()
