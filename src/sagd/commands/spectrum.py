"""``sagd spectrum``: plot a noise spectrum, a noise draw and the per-frequency SNR over time.

Writes three PNGs to ``--out``:

* ``weights.png``: ``w(k)`` on the 2-D grid (zero frequency centred) and radially averaged;
* ``noise.png``: one white draw ``ε`` beside its coloured version ``Σ^{1/2} ε``;
* ``snr.png``: ``log10 SNR(t, |k|) = log10(α_t² P(k) / (σ_t² w(k)))`` ring by ring, with the
  ``SNR = 1`` curve of this spectrum and of isotropic noise. ``P`` is a data set's mean power
  spectrum (``--dataset``) or a natural-image law ``P ∝ |k|^-2`` normalised to unit pixel variance.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .. import diffusion
from ..data import load_dataset
from ..diffusion.schedules import SCHEDULES
from ..spectral import from_spec, parse_spec, radial_frequency
from ..spectral.grid import frequency_bin
from ..metrics import power_spectrum, radial_average
from ..report import figure, save


def register(subparsers) -> None:
    p = subparsers.add_parser("spectrum", help="plot a noise spectrum and its per-frequency SNR",
                              description="Plot a noise spectrum (weights.png), a noise draw (noise.png) and the "
                                          "per-frequency SNR over t (snr.png) to --out.")
    p.add_argument("--spectrum", metavar="SPEC", required=True, help="e.g. power_law:alpha=-0.5")
    p.add_argument("--shape", default="1,32,32", metavar="C,H,W", help="sample shape (default 1,32,32; ignored with --dataset)")
    p.add_argument("--dataset", metavar="NAME", help="take the shape and P(k) (and data_matched spectra) from a data set")
    p.add_argument("--data-root", metavar="DIR")
    p.add_argument("--schedule", choices=sorted(SCHEDULES), default="linear")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", required=True)
    p.set_defaults(func=run)


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--shape must be C,H,W with positive integers, got {text!r}")
    return shape


def model_power(shape: tuple[int, int, int]) -> torch.Tensor:
    """``P(k) ∝ |k|^-2`` (DC capped at one frequency bin) with mean 1, shape ``(H, W)``."""
    r = radial_frequency(shape[1:]).clamp_min(frequency_bin(shape[1:]))
    p = r.pow(-2)
    return p / p.mean()


def run(args: argparse.Namespace) -> None:
    images = None
    if args.dataset:
        images = load_dataset(args.dataset, "train", root=args.data_root).images
        shape = tuple(images.shape[1:])
    else:
        shape = parse_shape(args.shape)
    cov = from_spec(args.spectrum, shape, data=images)
    proc = diffusion.VPProcess(cov, args.schedule)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    w = cov.weights.mean(0)

    fig, ax = figure(2)
    im = ax[0, 0].imshow(torch.fft.fftshift(w).clamp_min(1e-6).log10().numpy(), cmap="magma",
                         extent=(-0.5, 0.5, 0.5, -0.5))
    ax[0, 0].set(xlabel="k_x (cycles/pixel)", ylabel="k_y")
    fig.colorbar(im, ax=ax[0, 0], label="log10 w(k)")
    note = ("\npyramid: the recipe's expected spectrum (nearest-upsampled, it is not stationary)"
            if any(name == "pyramid" for name, _ in parse_spec(args.spectrum)) else "")
    ax[0, 0].set_title(f"{args.spectrum}\n{shape}, zero frequency centred{note}", fontsize=8)
    r, wr = radial_average(w)
    ax[0, 1].semilogy(r[1:], wr[1:].masked_fill(wr[1:] == 0, float("nan")), "o-", ms=3, label="rings (gaps: w = 0)")
    ax[0, 1].axhline(w.flatten()[0].item(), color="C3", ls=":", label=f"DC w = {w.flatten()[0].item():.3g}")
    ax[0, 1].axhline(1.0, color="gray", lw=0.8, label="isotropic")
    ax[0, 1].set(xlabel="|k| (cycles/pixel)", ylabel="w(k)", title="radial average")
    ax[0, 1].legend(fontsize=8)
    save(fig, out / "weights.png")

    g = torch.Generator().manual_seed(args.seed)
    eps = torch.randn((1, *shape), generator=g)
    fig, ax = figure(2, height=4.2)
    for a, x, title in ((ax[0, 0], eps, "white ε"), (ax[0, 1], cov.sqrt(eps), "Σ^{1/2} ε")):
        img = x[0].permute(1, 2, 0)
        img = (img - img.min()) / (img.max() - img.min() + 1e-12)
        a.imshow(img.squeeze(-1).numpy() if shape[0] == 1 else img.numpy(), cmap="gray")
        a.set_title(title)
        a.axis("off")
    save(fig, out / "noise.png")

    power = power_spectrum(images).mean(0) if images is not None else model_power(shape)
    r, pr = radial_average(power)
    _, wr = radial_average(w)
    t = torch.linspace(0.002, 1, 200, dtype=torch.float64)
    ratio = (proc.alpha(t) / proc.sigma(t)).pow(2)[:, None]
    snr = (ratio * pr[None] / wr[None].clamp_min(1e-12)).log10().clamp(-8, 8)
    fig, ax = figure(1, width=6)
    a = ax[0, 0]
    mesh = a.pcolormesh(t.numpy(), r.numpy(), snr.T.numpy(), cmap="viridis", vmin=-4, vmax=4, shading="auto")
    fig.colorbar(mesh, ax=a, label="log10 SNR")
    a.contour(t.numpy(), r.numpy(), snr.T.numpy(), levels=[0], colors="w")
    a.contour(t.numpy(), r.numpy(), (ratio * pr[None]).log10().T.numpy(), levels=[0], colors="w", linestyles="--")
    a.set(xlabel="t", ylabel="|k| (cycles/pixel)",
          title=f"per-frequency SNR, data P(k) {'of ' + args.dataset if images is not None else '∝ |k|^-2'}\n"
                "white: SNR = 1 for this spectrum (solid) and isotropic (dashed)")
    a.title.set_fontsize(8)
    save(fig, out / "snr.png")
    print(f"wrote {out / 'weights.png'}, {out / 'noise.png'}, {out / 'snr.png'}")
