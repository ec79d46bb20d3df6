"""Stopping a run early without losing it: ``Stopped`` and the SIGTERM / SIGINT handler.

A cluster preempts a job with SIGTERM, a user stops one with Ctrl-C (SIGINT). Under
``StopSignals`` the first such signal only sets ``received``: the training loop finishes the step
in progress, writes a checkpoint and raises ``Stopped``, whose message says how to resume. A
second signal exits at once with status ``128 + signum`` (checkpoints are written atomically, so
even that loses only the steps since the last one).
"""

from __future__ import annotations

import os
import signal
import threading

import torch

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(RuntimeError):
    """A run that ended before its last step, cleanly: the message is one line, ``status`` the exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def after_signal(signum: int | None, what: str) -> Stopped:
    """The ``Stopped`` for a stop by signal ``signum`` (SIGTERM when the signal reached another process only)."""
    sig = signal.Signals(signum or signal.SIGTERM)
    return Stopped(f"stopped by {sig.name} {what}", 128 + sig)


def lost_peer(error: BaseException) -> bool:
    """Whether ``error`` is a collective that failed because another process of a distributed run is gone."""
    return (torch.distributed.is_available() and torch.distributed.is_initialized()
            and (isinstance(error, torch.distributed.DistError) or "/gloo/" in str(error)))


class StopSignals:
    """Context manager: while active, the first SIGTERM or SIGINT sets ``received`` (its number), a second
    one ends the process at once. Installs nothing outside the main thread (signals go to it only)."""

    def __init__(self):
        self.received: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:  # os.write: print() may be inside a write of the main thread right now
            os.write(2, f"\nsagd: second {name}: exiting now, without a checkpoint\n".encode())
            os._exit(128 + signum)
        self.received = signum
        os.write(2, f"\nsagd: {name} received: finishing this step and writing a checkpoint "
                    f"(send it again to exit at once)\n".encode())
