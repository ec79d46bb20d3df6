"""A training step makes the host wait for nothing (issue 15): once it runs steadily, ``Trainer.train_step``
reads no value of a tensor on the host and uploads none, so a GPU's queue never runs dry in it.

On a GPU each such read (``item``, ``bool``, ``float``, ``tolist``, ``.cpu()``, a data-dependent shape as in
``nonzero``) waits for every kernel queued before it, and a tensor made from Python data (``torch.tensor``)
is an upload that waits too. On the CPU they cost nothing but are just as visible: every one of them goes
through ``aten._local_scalar_dense``, a data-dependent op, ``aten.lift_fresh``, or a ``Tensor`` method that
hands the data to Python, which ``HostReads`` records. The one read a step makes is ``StepGuard``'s of its
own host buffer (on a GPU pinned memory that an asynchronous copy filled a step earlier).
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from sagd.config import TrainConfig
from sagd.train import Trainer

aten = torch.ops.aten
SYNCING = {aten._local_scalar_dense, aten.nonzero, aten.masked_select, aten.unique_consecutive, aten._unique2,
           aten.unique_dim, aten.repeat_interleave, aten.lift_fresh, aten.lift_fresh_copy}
READS = ("tolist", "numpy", "__array__", "cpu")


class HostReads(TorchDispatchMode):
    """Records, inside it, the ops of ``SYNCING`` and the calls of the ``Tensor`` methods of ``READS`` as
    ``(name, tensor or None)``. (``.to(device)`` is not one: here the device is the CPU.)"""

    def __init__(self, monkeypatch):
        super().__init__()
        self.reads = []
        for name in READS:
            real = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._watch(name, real))

    def _watch(self, name, real):
        def method(t, *args, **kwargs):
            if self.active:
                self.reads.append((name, t))
            return real(t, *args, **kwargs)

        return method

    active = False

    def __enter__(self):
        self.active = True
        return super().__enter__()

    def __exit__(self, *exc):
        self.active = False
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in SYNCING:
            self.reads.append((str(func), None))
        return func(*args, **(kwargs or {}))


CONFIGS = {
    "unet": dict(dataset="digits", model="tiny", spectrum="power_law:alpha=-0.5", batch_size=8),
    "dit, classes, accumulation, corruption": dict(
        dataset="digits", model="dit-tiny", spectrum="two_band:low_band=0-0.3,high_band=0.5-1,gamma_high=0",
        omission="project", prediction="v", class_conditional=True, grad_accum=2, batch_size=4,
        corrupt={"low": 0.3, "high": 0.5, "gamma": 0.5}),
}


@pytest.mark.parametrize("config", CONFIGS)
def test_a_steady_training_step_reads_nothing_on_the_host(tmp_path, monkeypatch, config):
    cfg = TrainConfig.from_dict({**CONFIGS[config], "warmup": 5, "out": str(tmp_path / "run"), "steps": 10})
    trainer = Trainer(cfg.validate())
    trainer.train_step(), trainer.train_step()  # the first steps make the optimizer's state and the guard's buffer
    with HostReads(monkeypatch) as watch:
        for _ in range(3):
            trainer.train_step()
    others = [(name, t) for name, t in watch.reads if t is not trainer.guard.host]
    assert not others, [name for name, _ in others]
    assert [name for name, _ in watch.reads] == ["tolist"] * 3  # the guard reads the previous step's copy
    trainer.close()


def test_host_reads_sees_the_reads_of_the_former_step(monkeypatch):
    """``HostReads`` is not blind: the guard's and the EMA's former host reads show in it."""
    x = torch.ones(3)
    with HostReads(monkeypatch) as watch:
        bool(torch.isfinite(x).all())  # the former StepGuard.allows
        float(torch.zeros((), dtype=torch.long))  # AveragedModel's count read by the former EMA update
        torch.tensor(0).to(x.device)  # a count uploaded to the device (AveragedModel on a GPU)
        x.tolist(), x.cpu()
    assert [name for name, _ in watch.reads] == ["aten._local_scalar_dense.default"] * 2 + [
        "aten.lift_fresh.default", "tolist", "cpu"]
