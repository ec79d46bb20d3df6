"""The FID Inception-v3 on this CPU: throughput, the cost of one evaluation, and the degradation ladder.

1. Features per second at batch 64 (Fashion-MNIST test images, one thread): our block-by-block
   pass (all four taps) interleaved with the TorchScript network's own forward (2048 only), medians of rounds.
2. Reference statistics of the Fashion-MNIST test split (10k) for the four taps, computed in one pass
   and cached (``metrics.inception_reference``; skipped when already cached).
3. The cost of one 2,000-sample evaluation at the 2048 tap: features (from the throughput) plus FID,
   KID (100 subsets of 1000) and precision/recall (k = 3) against the 10k reference (measured).
4. ``benchmarks/fid_signal.py``'s degradation ladder on the 768 and 2048 taps: ``n`` train images
   (the floor), ``n`` test images blurred (σ = 0.5 ... 2 px) and noised (std 0.05 ... 0.4), each scored
   against the 10k test statistics. ``n`` is sized so that the ladder's 9 sets take ``--minutes`` of
   one core at the measured throughput; each set's features are kept in ``--work`` so a stopped run resumes.

Writes ``benchmarks/results/inception.{json,md}``.

    OMP_NUM_THREADS=1 python benchmarks/inception.py [--minutes 30] [--n N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from common import RESULTS, machine, write_table
from fid_signal import BLUR, NOISE, gaussian_blur
from sagd.data import load_dataset
from sagd.metrics import InceptionFeatures, InceptionV3, feature_stats, frechet_distance, inception_reference, kid, precision_recall
from sagd.metrics.inception import TAPS, preprocess
from sagd.metrics.reference import cache_dir, cache_path

DATASET, BATCH, ROUNDS, EVAL_N = "fashion_mnist", 64, 3, 2000
LADDER_TAPS = ("768", "2048")


def throughput(net: InceptionV3, images: torch.Tensor) -> dict:
    """Images per second of ``net(images[:BATCH], TAPS)`` and of the whole TorchScript forward, interleaved."""
    batch = images[:BATCH]
    variants = {"ours, 4 taps": lambda: net(batch, TAPS, BATCH),
                "TorchScript forward": lambda: net.module(preprocess(batch))}
    with torch.no_grad():
        for run in variants.values():  # the TorchScript profiling executor specialises on its first calls
            run()
        seconds = {name: [] for name in variants}
        for _ in range(ROUNDS):
            for name, run in variants.items():
                start = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - start)
    out = {name: {"images_per_second": BATCH / statistics.median(s), "seconds": s} for name, s in seconds.items()}
    return {**out, "load_average_1min": os.getloadavg()[0]}


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30, help="one core's time for the ladder (sizes n)")
    p.add_argument("--n", type=int, help="images per ladder set (default: sized from --minutes)")
    p.add_argument("--work", default="runs/inception_bench", help="folder of the ladder's features (resumable)")
    args = p.parse_args()
    torch.set_num_threads(1)
    started = time.time()
    net = InceptionV3()
    test, train = (load_dataset(DATASET, split).images for split in ("test", "train"))

    speed = throughput(net, test)
    rate = speed["ours, 4 taps"]["images_per_second"]
    print(f"{rate:.2f} images/s (batch {BATCH})", flush=True)

    cached = all(cache_path(InceptionFeatures(t, network=net), test, f"{DATASET}/test", cache_dir() / "reference")
                 .is_file() for t in TAPS)
    refs, ref_seconds = timed(lambda: inception_reference(test, f"{DATASET}/test", TAPS, net))
    print(f"reference statistics: {ref_seconds:.0f} s", flush=True)
    cost = evaluation_cost(refs["2048"], rate)

    n = args.n or max(100, int(args.minutes * 60 * rate / (1 + len(BLUR) + len(NOISE))) // 100 * 100)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (name, images) in enumerate(ladder_sets(train, test, n).items()):
        path = work / f"set{i}-n{n}-{net.sha256[:12]}.npz"
        if not path.is_file():
            feats = net(images, LADDER_TAPS)
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

    increasing = lambda rs, t: all(a[t]["fid"] < b[t]["fid"] for a, b in zip(rs, rs[1:]))  # noqa: E731
    blurred, noised = rows[1:1 + len(BLUR)], rows[1 + len(BLUR):]
    monotonic = {t: {"blur": increasing(blurred, t), "noise": increasing(noised, t)} for t in LADDER_TAPS}
    result = {
        "network": str(net.path), "weights_sha256": net.sha256, "batch": BATCH, "throughput": speed,
        "reference": f"{DATASET} test split ({len(test)} images), taps {', '.join(TAPS)}",
        "reference_seconds": None if cached else ref_seconds,
        "evaluation_2000": cost, "ladder_n": n, "ladder": rows, "fid_monotonic": monotonic,
        "seconds": round(time.time() - started), "machine": machine(),
    }
    (RESULTS / "inception.json").write_text(json.dumps(result, indent=1))
    ours, theirs = speed["ours, 4 taps"]["images_per_second"], speed["TorchScript forward"]["images_per_second"]
    table = [f"Throughput at batch {BATCH}, one thread: {ours:.2f} images/s (our pass, all four taps), "
             f"{theirs:.2f} images/s (the TorchScript network's own forward); medians of {ROUNDS} interleaved rounds.",
             "",
             f"One {EVAL_N}-sample evaluation at the 2048 tap against the 10k test split: "
             f"{cost['total_seconds'] / 60:.1f} min ({cost['features_seconds']:.0f} s features, "
             f"{cost['fid_seconds']:.1f} s FID, {cost['kid_seconds']:.1f} s KID, "
             f"{cost['precision_recall_seconds']:.1f} s precision/recall)."
             + ("" if cached else f" The test split's reference statistics took {ref_seconds / 60:.0f} min once."),
             "",
             "| compared with the test split (10k) | images | FID 768 | KID 768 × 10³ | FID 2048 | KID 2048 × 10³ |",
             "|---|---:|---:|---:|---:|---:|"]
    table += [f"| {r['set']} | {r['n']} | " + " | ".join(
        f"{r[t]['fid']:.2f} | {1e3 * r[t]['kid_mean']:.2f} ± {1e3 * r[t]['kid_se']:.2f}" for t in LADDER_TAPS) + " |"
        for r in rows]
    table += ["", f"FID grows monotonically with blur / noise: 768 {monotonic['768']['blur']} / "
                  f"{monotonic['768']['noise']}; 2048 {monotonic['2048']['blur']} / {monotonic['2048']['noise']}. "
                  f"Load average {result['machine']['load_average_1min']:.1f} on {result['machine']['cpu_count']} "
                  "cores (a shared machine: absolute speeds are indicative only)."]
    write_table("inception", "FID Inception-v3 on this CPU: speed and the degradation ladder", table, result)


if __name__ == "__main__":
    main()
