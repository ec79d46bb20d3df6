"""Guards against non-finite numbers: a NaN step never reaches the weights, NaN weights never reach a file.

``StepGuard`` looks at each optimizer step's loss and gradient norm on the device, where a
non-finite step is dropped before it is applied; the host learns of it one step later and stops
the run (``Stopped``, naming the step) or, with ``skip`` > 0, allows at most ``skip`` such steps
in a row. ``nonfinite_entries`` finds the tensors
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
    """Decides on the device whether an optimizer step is applied; the host learns of it one step later.

    ``check`` flags a step whose loss or gradient norm is not finite (on any process) and returns the
    flag, ``found_inf``: a 0-d float32 tensor on the device, 1.0 to drop the step, which a fused
    optimizer (its ``found_inf`` attribute, as ``GradScaler`` sets it) and ``ema.EMA`` read there.
    The host waits for nothing: the step's ``(loss, gradient norm, flag)`` go to ``host``, a pinned
    buffer of shape ``(3,)``, by an asynchronous copy; the host reads it at the next ``check``
    (after the next step's forward and backward are queued, so the copy is long done) or at
    ``settle()``, which the trainer calls before it logs, checkpoints or ends. Reading a dropped
    step counts it and says so in one line, or raises ``Stopped`` past ``skip`` such steps in a row.

    Args:
        skip: how many consecutive non-finite steps to drop before stopping (0: stop at the first).
        reduce: combines a flag tensor across processes (``Accelerator.reduce``, ``"sum"``), so that
            every process takes the same decision; ``None`` for one process.
        say: where a skipped step is reported (one line).
        hint: appended to the stop message (e.g. which checkpoint holds the last good weights).
    """

    def __init__(self, skip: int, reduce: Callable | None = None, say: Callable[[str], None] | None = None,
                 hint: Callable[[], str] = str):
        self.skip, self.reduce, self.hint = skip, reduce, hint
        self.say = say or (lambda m: print(m, file=sys.stderr))
        self.in_a_row = 0
        self.skipped = 0
        self.host: torch.Tensor | None = None  # made at the first check: pinned when the device is a GPU
        self.done: torch.cuda.Event | None = None  # recorded after the copy to ``host`` (GPU)
        self.pending: tuple[int, bool] | None = None  # (step, with a gradient norm) of the copy in ``host``

    def check(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor | None) -> torch.Tensor:
        """``found_inf`` for this step (1.0 when ``loss``, or ``grad_norm`` unless ``None``, is not finite);
        reads the previous step's flag on the host first (``settle``), so it may raise ``Stopped`` for that one."""
        values = torch.stack([loss.detach().float().reshape(()),
                              (grad_norm if grad_norm is not None else loss).detach().float().reshape(())])
        found_inf = (~torch.isfinite(values)).any().float()
        if self.reduce is not None:
            found_inf = (self.reduce(found_inf, "sum") > 0).float()
        self.settle()
        if self.host is None:
            self.host = torch.zeros(3, pin_memory=values.is_cuda)
            self.done = torch.cuda.Event() if values.is_cuda else None
        self.host.copy_(torch.cat([values, found_inf[None]]), non_blocking=values.is_cuda)  # others: a blocking copy
        if self.done is not None:
            self.done.record()
        self.pending = (step, grad_norm is not None)
        return found_inf

    def settle(self) -> None:
        """Read the last checked step's flag on the host (waiting for the device if it is not there yet): a
        dropped step is counted and reported, or raises ``Stopped`` past the allowance."""
        if self.pending is None:
            return
        (step, with_norm), self.pending = self.pending, None
        if self.done is not None:
            self.done.synchronize()
        loss, norm, found_inf = self.host.tolist()
        if not found_inf:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        what = f"loss {loss:g}" + (f", gradient norm {norm:g}" if with_norm else "")
        if self.in_a_row > self.skip:
            allowance = (f"{self.in_a_row} non-finite steps in a row, more than skip_nonfinite={self.skip}"
                         if self.skip else "not finite (skip_nonfinite=0 stops at the first such step)")
            raise Stopped(f"step {step}: {what}: {allowance}; the step was not applied{self.hint()}")
        self.skipped += 1
        self.say(f"sagd: step {step}: {what}: step skipped ({self.in_a_row} of at most {self.skip} in a row)")
