"""Classifier-free guidance (Ho & Salimans 2022) on the denoiser ``D(x, t) = E[x_0 | x_t]``.

``D_w = D_∅ + w (D_y - D_∅)``: ``w = 1`` is the conditional model, ``w = 0`` the unconditional
one, ``w > 1`` guides. Every parametrisation maps linearly to ``D`` at fixed ``(x, t)``, so
guiding ``D`` equals guiding ε, colored ε, x0 or v.
"""

from __future__ import annotations

import torch

from ..diffusion import Denoiser, VPProcess
from .network import Network


def guided_denoiser(net: Network, proc: VPProcess, prediction: str, labels: torch.Tensor, scale: float = 1.0,
                    clip: float | None = None):
    """A denoiser ``(x (B, C, H, W), t (B,)) -> D_w`` for class ``labels`` ``(B,)`` and guidance ``scale``.

    Conditional and unconditional outputs come from one batched forward pass of size ``2B``
    (``scale = 1`` needs the conditional one only). ``clip`` clamps ``D_w`` as in ``Denoiser``.
    """
    if net.num_classes is None:
        raise ValueError("guidance needs a class-conditional network (num_classes set)")
    if scale == 1:
        return Denoiser(lambda x, t: net(x, t, labels.to(x.device)), proc, prediction, clip)
    both_labels = torch.cat([labels, torch.full_like(labels, net.null_class)])
    two = Denoiser(lambda x, t: net(x, t, both_labels.to(x.device)), proc, prediction)

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        d_cond, d_uncond = two(torch.cat([x, x]), torch.cat([t, t])).chunk(2)
        d = d_uncond + scale * (d_cond - d_uncond)
        return d if clip is None else d.clamp(-clip, clip)

    return denoise
