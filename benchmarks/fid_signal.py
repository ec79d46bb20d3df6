"""Is the in-domain FID a useful signal? FID and KID of degraded data and of model samples.

Every set is scored against the test split of ``--dataset`` (Fashion-MNIST by default; MNIST and
Quick, Draw! too) in the feature space of the classifier shipped with sagd for it
(``sagd/assets/classifier-<dataset>.safetensors``):

* the train split (60k), and 2000 train images (the floor of a 2000-sample FID);
* the test split blurred (Gaussian, σ = 0.5, 1, 1.5, 2 px) and noised (additive Gaussian noise of
  std 0.05, 0.1, 0.2, 0.4 on the [-1, 1] scale, clamped to [-1, 1]): both should grow monotonically;
* 2000 samples (DPM-Solver++ 25 steps) of the ``tiny`` UNet after few and after many training steps
  (``--steps``; none: the data rows only).

The two runs are trained here with the project's ``Trainer`` (isotropic noise, batch 64) into
``--runs`` (the longer one resumes a copy of the shorter one, bit-for-bit the same as training it
from scratch); runs already trained that far are reused. Writes ``benchmarks/results/fid_signal.{json,md}``
(``fid_signal_<dataset>`` for other data sets).

    OMP_NUM_THREADS=1 python benchmarks/fid_signal.py [--dataset mnist] [--steps 300 3000] [--samples 2000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from common import RESULTS, machine, write_table
from degrade import BLUR, NOISE, gaussian_blur
from sagd import checkpoint
from sagd.config import TrainConfig, load_config
from sagd.data import load_dataset
from sagd.metrics import cache_dir, extractor_for, feature_stats, frechet_distance, kid, reference_stats
from sagd.run import load_run
from sagd.train import train

RUN = dict(model="tiny", spectrum="isotropic", batch_size=64, lr=1e-3, warmup=100,
           ema_decay=0.999, log_every=50, sample_every=10**9, checkpoint_every=500, keep_checkpoints=1, seed=0)
METHOD, METHOD_STEPS = "dpmpp_2m", 25


def trained_run(root: Path, steps: int, previous: Path | None, dataset: str) -> Path:
    """The run ``root/steps_<steps>``, trained now unless its newest checkpoint is already at ``steps``.

    A new run starts as a copy of ``previous`` (fewer steps of the same config) and resumes it.
    """
    out = root / f"steps_{steps}"
    if not checkpoint.list_checkpoints(out):
        if previous is None:
            return train(TrainConfig.from_dict({**RUN, "dataset": dataset, "out": str(out), "steps": steps}))
        shutil.copytree(previous, out, dirs_exist_ok=True)
    if checkpoint.load_state(checkpoint.latest(out))["step"] >= steps:
        return out
    return train(load_config(out / "config.yaml").replace(out=str(out), steps=steps), resume=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion_mnist", help="a labelled data set with a shipped classifier")
    p.add_argument("--steps", type=int, nargs="*", default=[300, 3000], help="training steps of each run (none: no runs)")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--runs", default="runs/fid_signal", help="folder of the trained runs")
    args = p.parse_args()
    torch.set_num_threads(1)
    started = time.time()

    dataset = args.dataset
    train_images = load_dataset(dataset, "train").images
    test = load_dataset(dataset, "test").images
    extractor = extractor_for(None, dataset, tuple(test.shape[1:]))
    ref = reference_stats(extractor, test, f"{dataset}/test", cache_dir() / "reference")
    real = torch.as_tensor(ref.features)

    def scores(images: torch.Tensor) -> dict:
        """FID and KID of ``images`` ``(N, 1, 28, 28)`` against the test split."""
        fake = extractor(images)
        k = kid(real, fake, generator=torch.Generator().manual_seed(0))
        return {"n": len(images), "fid": frechet_distance(*feature_stats(fake), ref.mu, ref.cov),
                "kid_mean": k.mean, "kid_se": k.se}

    g = torch.Generator().manual_seed(0)
    rows = [{"set": "train split", **scores(train_images)},
            {"set": f"train, {args.samples} random images",
             **scores(train_images[torch.randperm(len(train_images), generator=g)[:args.samples]])}]
    blurred = [{"set": f"test, Gaussian blur σ = {s:g} px", **scores(gaussian_blur(test, s))} for s in BLUR]
    noised = [{"set": f"test + noise, std {s:g}",
               **scores((test + s * torch.randn(test.shape, generator=g)).clamp(-1, 1))} for s in NOISE]
    rows += blurred + noised

    previous = None
    for steps in sorted(args.steps):
        run = trained_run(Path(args.runs) / dataset, steps, previous, dataset)
        previous = run
        loaded = load_run(run)
        start = time.time()
        samples = loaded.draw(args.samples, torch.Generator().manual_seed(0), METHOD, METHOD_STEPS, 250)
        rows.append({"set": f"tiny UNet, {loaded.step} steps × batch {loaded.cfg.batch_size}", **scores(samples),
                     "sampling_seconds": round(time.time() - start, 1)})

    increasing = lambda rs: all(a["fid"] < b["fid"] for a, b in zip(rs, rs[1:]))  # noqa: E731
    monotonic = {"blur": increasing(blurred), "noise": increasing(noised)}
    result = {
        "reference": f"{dataset} test split ({len(test)} images)",
        "features": extractor.name,
        "classifier_test_accuracy": extractor.model.metadata.get("test_accuracy"),
        "sampler": f"{METHOD}, {METHOD_STEPS} steps",
        "train_config": {**RUN, "dataset": dataset},
        "rows": rows,
        "fid_monotonic": monotonic,
        "seconds": round(time.time() - started),
        "machine": machine(),
    }
    name = "fid_signal" if dataset == "fashion_mnist" else f"fid_signal_{dataset}"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    table = ["| compared with the test split | images | FID | KID × 10³ |", "|---|---:|---:|---:|"]
    table += [f"| {r['set']} | {r['n']} | {r['fid']:.3f} | {1e3 * r['kid_mean']:.2f} ± {1e3 * r['kid_se']:.2f} |"
              for r in rows]
    table += ["", f"Features: `{extractor.name}` (penultimate layer of the shipped classifier, test accuracy "
                  f"{result['classifier_test_accuracy']:.3f}). FID grows monotonically with blur: "
                  f"{monotonic['blur']}; with noise: {monotonic['noise']}."
              + (f" Samples: {result['sampler']}; runs: isotropic noise, lr 1e-3, EMA 0.999." if args.steps else "")]
    write_table(name, f"In-domain FID on {dataset}: degradations" + " and training progress" * bool(args.steps), table, result,
                "fid_signal")


if __name__ == "__main__":
    main()
