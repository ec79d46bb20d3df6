"""Guards against non-finite numbers: a NaN step never reaches the weights, NaN weights never reach a file.

``StepGuard`` looks at each optimizer step's loss and gradient norm before the step is applied:
a non-finite one stops the run (``Stopped``, naming the step) or, with ``skip`` > 0, drops that
step and allows at most ``skip`` such steps in a row. ``nonfinite_entries`` finds the tensors
with NaN or inf entries: the trainer refuses to checkpoint them, ``resume.load_into`` to load them.
"""

from __future__ import annotations

import sys
from typing import Callable, Mapping

import torch

from .stops import Stopped


def nonfinite_entries(tensors: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """``{name: number of NaN/inf entries}`` for the floating-point tensors of ``tensors`` that have any."""
    bad = {}
    for name, t in tensors.items():
        if t.is_floating_point() or t.is_complex():
            n = int((~torch.isfinite(t)).sum())
            if n:
                bad[name] = n
    return bad


def check_samples(x: torch.Tensor, net: torch.nn.Module) -> None:
    """Raise ``ValueError`` if samples ``x`` hold NaN or inf (the network's output overflowed), naming the scale
    of ``net``'s weights: a picture of NaNs is never written."""
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        largest = max(float(p.detach().abs().max()) for p in net.parameters())
        raise ValueError(f"sampling gave {bad} non-finite values of {x.numel()}: the network's output is not finite "
                         f"(its largest weight is {largest:.3g}); it was probably trained with too large a learning rate")


class StepGuard:
    """Decides whether an optimizer step may be applied.

    Args:
        skip: how many consecutive non-finite steps to drop before stopping (0: stop at the first).
        reduce: combines a flag tensor across processes (``Accelerator.reduce``, ``"sum"``), so that
            every process takes the same decision.
        say: where a skipped step is reported (one line).
        hint: appended to the stop message (e.g. which checkpoint holds the last good weights).
    """

    def __init__(self, skip: int, reduce: Callable | None = None, say: Callable[[str], None] | None = None,
                 hint: Callable[[], str] = str):
        self.skip, self.reduce, self.hint = skip, reduce, hint
        self.say = say or (lambda m: print(m, file=sys.stderr))
        self.in_a_row = 0
        self.skipped = 0

    def allows(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor | None) -> bool:
        """``True`` when ``loss`` (and ``grad_norm``, unless ``None``) are finite; ``False`` to drop the step;
        raises ``Stopped`` past the allowance. One host sync per call."""
        values = torch.stack([loss.detach().float().reshape(()),
                              (grad_norm if grad_norm is not None else loss).detach().float().reshape(())])
        bad = (~torch.isfinite(values)).float()
        if self.reduce is not None:
            bad = self.reduce(bad, "sum")
        if not bool(bad.any()):
            self.in_a_row = 0
            return True
        self.in_a_row += 1
        what = f"loss {values[0].item():g}" + ("" if grad_norm is None else f", gradient norm {values[1].item():g}")
        if self.in_a_row > self.skip:
            allowance = (f"{self.in_a_row} non-finite steps in a row, more than skip_nonfinite={self.skip}"
                         if self.skip else "not finite (skip_nonfinite=0 stops at the first such step)")
            raise Stopped(f"step {step}: {what}: {allowance}; the step was not applied{self.hint()}")
        self.skipped += 1
        self.say(f"sagd: step {step}: {what}: step skipped ({self.in_a_row} of at most {self.skip} in a row)")
        return False
