"""The FID Inception-v3: throughput, the cost of one evaluation, and the degradation ladder.

1. Features per second at batch 64 on Fashion-MNIST test images: our block-by-block pass (all four
   taps) interleaved with the TorchScript network's own forward (2048 only), medians of rounds. On
   the CPU (one thread) the rate is per second of this process's CPU time, so a shared machine's
   load does not distort it (the wall-clock rate is recorded too). On CUDA also: the features of 64
   images on CUDA against the same machine's CPU, with cuDNN's TF32 off (ours) and on (its default).
2. Reference statistics of the Fashion-MNIST test split (10k) for the four taps, computed in one pass
   and cached (``metrics.inception_reference``; skipped when already cached).
3. The cost of one 2,000-sample evaluation at the 2048 tap: features (from the throughput) plus FID,
   KID (100 subsets of 1000) and precision/recall (k = 3) against the 10k reference (measured).
4. ``benchmarks/fid_signal.py``'s degradation ladder on the 768 and 2048 taps: ``n`` train images
   (the floor), ``n`` test images blurred (σ = 0.5 ... 2 px) and noised (std 0.05 ... 0.4), each scored
   against the 10k test statistics. ``n`` is given or sized so that the ladder's 9 sets take
   ``--minutes`` at the measured rate; each set's features are kept in ``--work`` so a stopped run resumes.

Writes ``benchmarks/results/inception.{json,md}`` (``inception_cuda`` on CUDA).

    OMP_NUM_THREADS=1 python benchmarks/inception.py [--minutes 30 | --n N] [--no-ladder]
    python benchmarks/inception.py --device cuda --n 10000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from common import RESULTS, machine, write_table
from degrade import BLUR, NOISE, gaussian_blur
from sagd.data import load_dataset
from sagd.metrics import (
    InceptionFeatures,
    InceptionV3,
    feature_stats,
    frechet_distance,
    inception_reference,
    kid,
    precision_recall,
)
from sagd.metrics import inception
from sagd.metrics.inception import TAPS, preprocess
from sagd.metrics.reference import cache_dir, cache_path

DATASET, BATCH, ROUNDS, EVAL_N = "fashion_mnist", 64, 3, 2000
LADDER_TAPS = ("768", "2048")


def clock(device: str) -> float:
    """Seconds: this process's CPU time on the CPU, wall time (after a synchronisation) on CUDA."""
    if device == "cpu":
        return time.process_time()
    torch.cuda.synchronize()
    return time.perf_counter()


def throughput(net: InceptionV3, images: torch.Tensor, device: str) -> dict:
    """Images per second of ``net(images[:BATCH], TAPS)`` and of the whole TorchScript forward, interleaved."""
    batch = images[:BATCH]

    def forward():
        with inception._full_float32():  # the same float32 convolutions as ours on CUDA
            return net.module(preprocess(batch.to(device)))

    variants = {"ours, 4 taps": lambda: net(batch, TAPS, BATCH), "TorchScript forward": forward}
    with torch.no_grad():
        for run in variants.values():  # the TorchScript profiling executor specialises on its first calls
            run()
            run()
        seconds = {name: [] for name in variants}
        wall = {name: [] for name in variants}
        for _ in range(ROUNDS):
            for name, run in variants.items():
                start, start_wall = clock(device), time.perf_counter()
                run()
                seconds[name].append(clock(device) - start)
                wall[name].append(time.perf_counter() - start_wall)
    out = {name: {"images_per_second": BATCH / statistics.median(s), "seconds": s,
                  "images_per_wall_second": BATCH / statistics.median(wall[name])} for name, s in seconds.items()}
    return {**out, "clock": "process CPU time" if device == "cpu" else "wall time",
            "load_average_1min": os.getloadavg()[0]}


def cuda_vs_cpu(net: InceptionV3, images: torch.Tensor) -> dict:
    """Max |feature difference| per tap between CUDA (TF32 off: ours; on: cuDNN's default) and this machine's CPU."""
    cpu = InceptionV3(net.path, "cpu")(images, TAPS)
    ours = net(images, TAPS)
    full_float32, inception._full_float32 = inception._full_float32, contextlib.nullcontext
    try:
        torch.backends.cudnn.allow_tf32 = True
        tf32 = net(images, TAPS)
    finally:
        inception._full_float32 = full_float32
    return {"images": len(images), **{f"max_abs_diff_{t}": float((ours[t] - cpu[t]).abs().max()) for t in TAPS},
            **{f"max_abs_diff_{t}_tf32": float((tf32[t] - cpu[t]).abs().max()) for t in TAPS},
            **{f"max_abs_{t}": float(cpu[t].abs().max()) for t in TAPS}}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def evaluation_cost(ref, rate: float) -> dict:
    """Seconds of one ``EVAL_N``-sample evaluation at the 2048 tap (a stand-in for the samples: reference rows)."""
    real = torch.as_tensor(ref.features)
    fake = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:EVAL_N]]
    _, fid_s = timed(lambda: frechet_distance(*feature_stats(fake), ref.mu, ref.cov))
    _, kid_s = timed(lambda: kid(real, fake, generator=torch.Generator().manual_seed(0)))
    _, pr_s = timed(lambda: precision_recall(real, fake, k=3))
    features_s = EVAL_N / rate
    return {"n": EVAL_N, "features_seconds": features_s, "fid_seconds": fid_s, "kid_seconds": kid_s,
            "precision_recall_seconds": pr_s, "total_seconds": features_s + fid_s + kid_s + pr_s}


def ladder_sets(train: torch.Tensor, test: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    """The ladder's image sets of ``n`` images each: train (the floor), test blurred, test noised."""
    g = torch.Generator().manual_seed(0)
    subset = test[torch.randperm(len(test), generator=g)[:n]]
    sets = {f"train, {n} random images": train[torch.randperm(len(train), generator=g)[:n]]}
    sets.update({f"test, Gaussian blur σ = {s:g} px": gaussian_blur(subset, s) for s in BLUR})
    sets.update({f"test + noise, std {s:g}": (subset + s * torch.randn(subset.shape, generator=g)).clamp(-1, 1)
                 for s in NOISE})
    return sets


def ladder(net: InceptionV3, refs: dict, train: torch.Tensor, test: torch.Tensor, n: int, work: Path,
           batch: int) -> list[dict]:
    """FID and KID of every ladder set against the test statistics, on the ``LADDER_TAPS``."""
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (name, images) in enumerate(ladder_sets(train, test, n).items()):
        path = work / f"set{i}-n{n}-{net.sha256[:12]}.npz"
        if not path.is_file():
            feats = net(images, LADDER_TAPS, batch)
            np.savez(path, **{f"f{t}": f.numpy() for t, f in feats.items()})
        with np.load(path) as z:
            feats = {t: torch.from_numpy(z[f"f{t}"]) for t in LADDER_TAPS}
        row = {"set": name, "n": len(images)}
        for t in LADDER_TAPS:
            ref = refs[t]
            k = kid(ref.features, feats[t], generator=torch.Generator().manual_seed(0))
            row[t] = {"fid": frechet_distance(*feature_stats(feats[t]), ref.mu, ref.cov),
                      "kid_mean": k.mean, "kid_se": k.se}
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--minutes", type=float, default=30, help="time for the ladder at the measured rate (sizes n)")
    p.add_argument("--n", type=int, help="images per ladder set (default: sized from --minutes)")
    p.add_argument("--batch", type=int, default=BATCH, help="images per network call in the reference and ladder")
    p.add_argument("--no-ladder", action="store_true")
    p.add_argument("--work", default="runs/inception_bench", help="folder of the ladder's features (resumable)")
    args = p.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    started = time.time()
    net = InceptionV3(device=args.device)
    test, train = (load_dataset(DATASET, split).images for split in ("test", "train"))

    speed = throughput(net, test, args.device)
    rate = speed["ours, 4 taps"]["images_per_second"]
    print(f"{rate:.2f} images/s (batch {BATCH}, {speed['clock']})", flush=True)
    agreement = cuda_vs_cpu(net, test[:64]) if args.device == "cuda" else None

    key = f"{DATASET}/test"
    cached = all(cache_path(InceptionFeatures(t, network=net), test, key, cache_dir() / "reference").is_file()
                 for t in TAPS)
    refs, ref_seconds = timed(lambda: inception_reference(test, key, TAPS, net))
    print(f"reference statistics: {ref_seconds:.0f} s", flush=True)
    cost = evaluation_cost(refs["2048"], rate)

    n = args.n or max(100, int(args.minutes * 60 * rate / (1 + len(BLUR) + len(NOISE))) // 100 * 100)
    rows = [] if args.no_ladder else ladder(net, refs, train, test, n, Path(args.work), args.batch)
    increasing = lambda rs, t: all(a[t]["fid"] < b[t]["fid"] for a, b in zip(rs, rs[1:]))  # noqa: E731
    blurred, noised = rows[1:1 + len(BLUR)], rows[1 + len(BLUR):]
    monotonic = {t: {"blur": increasing(blurred, t), "noise": increasing(noised, t)} for t in LADDER_TAPS}
    result = {
        "device": args.device, "network": str(net.path), "weights_sha256": net.sha256, "batch": BATCH,
        "throughput": speed, "cuda_vs_cpu": agreement,
        "reference": f"{DATASET} test split ({len(test)} images), taps {', '.join(TAPS)}",
        "reference_seconds": None if cached else ref_seconds,
        "evaluation_2000": cost, "ladder_n": n if rows else None, "ladder": rows,
        "fid_monotonic": monotonic if rows else None,
        "seconds": round(time.time() - started), "machine": machine(),
    }
    name = "inception" if args.device == "cpu" else "inception_cuda"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    write_table(name, f"FID Inception-v3 ({args.device}): speed and the degradation ladder",
                table(result, cached, ref_seconds), result)


def table(result: dict, cached: bool, ref_seconds: float) -> list[str]:
    speed, cost, rows = result["throughput"], result["evaluation_2000"], result["ladder"]
    ours, theirs = speed["ours, 4 taps"], speed["TorchScript forward"]
    one = "one thread, per second of CPU time" if result["device"] == "cpu" else "wall time"
    out = [f"Throughput at batch {BATCH} ({one}): {ours['images_per_second']:.2f} images/s (our pass, all four "
           f"taps), {theirs['images_per_second']:.2f} images/s (the TorchScript network's own forward); medians "
           f"of {ROUNDS} interleaved rounds (wall clock: {ours['images_per_wall_second']:.2f} images/s at load "
           f"{speed['load_average_1min']:.1f} on {result['machine']['cpu_count']} cores).",
           "",
           f"One {EVAL_N}-sample evaluation at the 2048 tap against the 10k test split: "
           f"{cost['total_seconds'] / 60:.1f} min ({cost['features_seconds']:.0f} s features, "
           f"{cost['fid_seconds']:.1f} s FID, {cost['kid_seconds']:.1f} s KID, "
           f"{cost['precision_recall_seconds']:.1f} s precision/recall)."
           + ("" if cached else f" The test split's reference statistics took {ref_seconds / 60:.1f} min once.")]
    if result["cuda_vs_cpu"]:
        a = result["cuda_vs_cpu"]
        out += ["", f"CUDA against this machine's CPU ({a['images']} images), max |difference| per tap "
                    f"(largest feature): " + "; ".join(
                        f"{t}: {a[f'max_abs_diff_{t}']:.1e} (TF32 on: {a[f'max_abs_diff_{t}_tf32']:.1e}; "
                        f"{a[f'max_abs_{t}']:.2f})" for t in TAPS) + "."]
    if rows:
        m = result["fid_monotonic"]
        out += ["", "| compared with the test split (10k) | images | FID 768 | KID 768 × 10³ | FID 2048 | KID 2048 × 10³ |",
                "|---|---:|---:|---:|---:|---:|"]
        out += [f"| {r['set']} | {r['n']} | " + " | ".join(
            f"{r[t]['fid']:.2f} | {1e3 * r[t]['kid_mean']:.2f} ± {1e3 * r[t]['kid_se']:.2f}" for t in LADDER_TAPS)
            + " |" for r in rows]
        out += ["", f"FID grows monotonically with blur / noise: 768 {m['768']['blur']} / {m['768']['noise']}; "
                    f"2048 {m['2048']['blur']} / {m['2048']['noise']}."]
    return out


if __name__ == "__main__":
    main()
