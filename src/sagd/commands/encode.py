"""``sagd encode``: precompute a data set's latents once, so that latent training never runs the encoder.

Writes ``--out/shard-*.safetensors`` and ``--out/latents.json``; train with
``sagd train --dataset D --vae VAE --latents OUT`` (see ``sagd.latent``).
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("encode", help="precompute latents of a data set with a VAE",
                              description="Encode a data set's train split with a diffusers AutoencoderKL (posterior "
                                          "mean, times its scaling factor) into safetensors shards for "
                                          "sagd train --latents.")
    p.add_argument("--dataset", metavar="NAME", required=True, help="data set spec, as for sagd train")
    p.add_argument("--data-root", metavar="DIR")
    p.add_argument("--pad-to", type=int, metavar="N", help="pad images to N×N first, as sagd train --pad-to")
    p.add_argument("--vae", metavar="DIR", required=True, help="an AutoencoderKL folder (save_pretrained layout)")
    p.add_argument("--out", metavar="DIR", required=True, help="folder for the shards")
    p.add_argument("--shard-size", type=int, default=10_000, metavar="N", help="latents per shard (default 10000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    import torch

    from ..data import load_dataset
    from ..latent import VAE, write_latents

    if args.shard_size < 1:
        raise ValueError("--shard-size must be >= 1")
    vae = VAE.load(args.vae, "cuda" if torch.cuda.is_available() else "cpu")
    data = load_dataset(args.dataset, "train", root=args.data_root, pad_to=args.pad_to)
    out = write_latents(data, vae, args.out, args.dataset, args.pad_to, args.shard_size)
    print(f"wrote {len(data)} latents of shape {vae.latent_shape(data.shape)} to {out}")
