"""Latent SAGD: the encoder stage between images and the diffusion, a diffusers ``AutoencoderKL``.

With ``TrainConfig.vae`` (a folder written by ``AutoencoderKL.save_pretrained``, e.g. a Stable
Diffusion VAE) every image ``x`` ``(C, H, W)`` in ``[-1, 1]`` becomes the latent
``z = (mean(E(x)) - shift_factor) · scaling_factor`` ``(c, H/f, W/f)`` (``f = 2^(blocks - 1)``;
``(4, 32, 32)`` for 256² images and an SD VAE): the posterior mean, not a draw, so that encoding is
deterministic and ``sagd encode`` can store it once. Diffusion, the spectrum and the network
live on the latent grid; samples are decoded ``x = D(z / scaling_factor + shift_factor)`` and
clamped to ``[-1, 1]`` before grids, metrics and reports.

What the pixel-space options mean here:

* ``spectrum``: frequencies are those of the latent grid (cycles per latent cell); ``data_matched``
  is fitted on the training latents' power spectrum (on a seeded 2048 of them when they are streamed,
  as for streamed images: ``training_data.FIT_IMAGES``).
* ``sample_clip`` clamps the denoised *latent* ``D`` to ``[-clip, clip]`` in latent units. Scaled
  latents have unit variance but no bound of 1: use ``null`` or a wide bound (the default 1 is a
  pixel-range bound and cuts latent tails).
* ``bits_per_dim`` (the PF-ODE likelihood) is of the continuous latents, per latent dimension: no
  8-bit dequantisation applies, and it is not comparable with pixel-space bits/dim.
* Horizontal flips are off: a flipped latent is not the latent of the flipped image.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .data import ImageData
from .data.latent_shards import write_shards


class VAE:
    """A diffusers ``AutoencoderKL``, frozen: ``encode`` images to scaled latents, ``decode`` back.

    ``VAE.load(path, device)`` reads a folder (``config.json`` and weights) from disk only.
    """

    def __init__(self, model, path: str = ""):
        self.path = path
        self.model = model.eval().requires_grad_(False)
        config = model.config
        self.scale, self.shift = float(config.scaling_factor), float(config.shift_factor or 0.0)
        self.factor = 2 ** (len(config.block_out_channels) - 1)

    @classmethod
    def load(cls, path: str | Path, device="cpu") -> "VAE":
        from diffusers import AutoencoderKL

        path = Path(path).expanduser()
        if not (path / "config.json").is_file():
            raise ValueError(f"vae: {str(path)!r} is not an AutoencoderKL folder (no config.json)")
        return cls(AutoencoderKL.from_pretrained(path).to(device), str(path))

    @property
    def device(self) -> torch.device:
        return self.model.device

    def latent_shape(self, image_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """``(latent_channels, H / f, W / f)`` for images ``(C, H, W)``; ``H, W`` must be multiples of ``f``."""
        c, h, w = image_shape
        if c != self.model.config.in_channels or h % self.factor or w % self.factor:
            raise ValueError(f"vae {self.path!r} takes {self.model.config.in_channels}-channel images with sides "
                             f"divisible by {self.factor}, got {tuple(image_shape)} (pad_to or resize them)")
        return self.model.config.latent_channels, h // self.factor, w // self.factor

    def image_shape(self, latent_shape: tuple[int, ...]) -> tuple[int, int, int]:
        _, h, w = latent_shape
        return self.model.config.out_channels, h * self.factor, w * self.factor

    @torch.no_grad()
    def encode(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Latents ``(N, c, h, w)`` float32 on the CPU of images ``(N, C, H, W)`` in ``[-1, 1]``."""
        self.latent_shape(tuple(images.shape[1:]))
        out = [(self.model.encode(images[i:i + batch_size].to(self.device)).latent_dist.mode() - self.shift) * self.scale
               for i in range(0, len(images), batch_size)]
        return torch.cat(out).float().cpu()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Images ``(N, C, H, W)`` in ``[-1, 1]`` (on the latents' device) of latents ``(N, c, h, w)``."""
        out = [self.model.decode(z.to(self.device) / self.scale + self.shift).sample.clamp(-1, 1).to(latents.device)
               for z in latents.split(batch_size)]
        return torch.cat(out)


def encode_data(data: ImageData, vae: VAE, batch_size: int = 64) -> ImageData:
    """``data`` with its images replaced by their latents (labels kept, flips off)."""
    return dataclasses.replace(data, images=vae.encode(data.images, batch_size), hflip=False)


# ---------------------------------------------------------------------------- precomputed latents
def write_latents(data: ImageData, vae: VAE, folder: str | Path, dataset: str, pad_to: int | None = None,
                  shard_size: int = 10_000) -> Path:
    """Encode ``data`` into ``shard_size``-latent shards in ``folder`` (``data.latent_shards``: read whole
    or streamed by ``LatentShards``)."""
    parts = ((vae.encode(part.images), part.labels)
             for part in (data.subset(slice(start, start + shard_size)) for start in range(0, len(data), shard_size)))
    meta = {"dataset": dataset, "pad_to": pad_to, "vae": vae.path, "num_classes": data.num_classes,
            "image_shape": list(data.shape)}
    return write_shards(folder, parts, meta)
