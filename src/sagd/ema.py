"""The EMA of a network's weights, updated on the device without the host waiting for it.

``torch.optim.swa_utils.AveragedModel`` keeps its update count on the CPU and copies it to the
device at each update (a blocking copy: the host waits for the device), and a warm-up decay read
from it is a second wait. Here the count lives on the device too, and an update can be dropped
there (``skip``), so that a training step needs no host read at all (``finite.StepGuard``).
"""

from __future__ import annotations

import copy

import torch


class EMA:
    """An exponential moving average of ``net``'s parameters with warm-up (buffers are not averaged).

    Update ``n`` (counted from 0) moves the average toward the weights by ``1`` (a copy) when ``n = 0``,
    else by ``1 - min(decay, (1 + n) / (10 + n))``. ``module`` is the averaged copy of ``net``;
    ``n_averaged`` the number of updates applied (a 0-d int64 tensor on the parameters' device).
    """

    def __init__(self, net: torch.nn.Module, decay: float):
        self.module = copy.deepcopy(net).requires_grad_(False)
        self.average = list(self.module.parameters())  # loading a state dict copies into these tensors
        self.decay = float(decay)
        self.n_averaged = torch.zeros((), dtype=torch.long, device=next(net.parameters()).device)

    @torch.no_grad()
    def update_parameters(self, net: torch.nn.Module, skip: torch.Tensor | None = None) -> None:
        """Move the average toward ``net``'s parameters; ``skip``, a 0-d float tensor on the device, leaves the
        average and the count exactly as they were where it is 1 (a dropped optimizer step). No host read."""
        n = self.n_averaged
        weight = torch.where(n > 0, (9 / (n + 10)).clamp_min(1 - self.decay), 1.0)  # 1 - min(decay, (1+n)/(10+n))
        applied = torch.ones((), dtype=torch.bool, device=n.device) if skip is None else skip == 0
        delta = torch._foreach_sub(list(net.parameters()), self.average)
        torch._foreach_mul_(delta, weight * applied)
        torch._foreach_add_(self.average, delta)
        n += applied
