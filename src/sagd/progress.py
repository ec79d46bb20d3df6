"""What a training run shows while it runs: the progress bar, and a warning when it slows down.

A run bounded by ``max_minutes`` is measured in time, not steps: its bar fills with the budget
and reads ``3:12 used, 4:48 left``, the step count beside it (``steps`` is then only a cap).
A run bounded by ``steps`` shows steps.

``SlowdownWatch`` compares each logged throughput with what the run reached at its start and
warns once when it falls far below: on a shared CPU the usual cause is another busy process
fighting torch's threads for the same cores.
"""

from __future__ import annotations

import time
import warnings

from tqdm.auto import tqdm

TIME_BAR = "{desc} |{bar}| {percentage:3.0f}%{postfix}"  # train: 03:12 used, 04:48 left |███   | 40%, step=366


def shown(show: bool) -> dict:
    """tqdm keyword arguments for a bar that is shown or not: a shown bar passes no ``disable``, so that tqdm's
    environment (``TQDM_DISABLE=1``, ``TQDM_MININTERVAL=30``) can still quiet a log; an explicit argument
    would override it."""
    return {} if show else {"disable": True}


class Progress:
    """The bar of a run at ``step`` of ``steps``, with an optional time budget of ``max_minutes``."""

    def __init__(self, steps: int, step: int, max_minutes: float | None, disable: bool = False):
        self.budget = None if max_minutes is None else 60.0 * max_minutes
        self.start, self.step, self.postfix = time.time(), step, {}
        if self.budget is None:
            self.bar = tqdm(total=steps, initial=step, desc="train", unit="step", dynamic_ncols=True, **shown(not disable))
        else:
            self.bar = tqdm(total=self.budget, desc="train", bar_format=TIME_BAR, dynamic_ncols=True, **shown(not disable))

    def update(self, step: int, **postfix) -> None:
        """Advance to ``step``; ``postfix`` values (e.g. ``loss="0.0312"``) are shown from now on."""
        self.postfix.update(postfix)
        if self.budget is None:
            self.bar.update(step - self.step)
            if postfix:
                self.bar.set_postfix(self.postfix)
        else:
            used = min(self.budget, time.time() - self.start)
            self.bar.set_description_str(f"train: {tqdm.format_interval(used)} used, "
                                         f"{tqdm.format_interval(self.budget - used)} left", refresh=False)
            self.bar.set_postfix({"step": step, **self.postfix}, refresh=False)
            self.bar.update(used - self.bar.n)
        self.step = step

    def close(self) -> None:
        self.bar.close()


class SlowdownWatch:
    """Warn once when throughput falls below ``1 / factor`` of the best of the run's first ``settle`` records.

    The first records set the reference (the best of them, so that the warm-up's slow first
    steps do not lower it); each later record is compared with it.
    """

    def __init__(self, factor: float = 3.0, settle: int = 3):
        self.factor, self.settle = factor, settle
        self.seen, self.reference, self.warned = 0, 0.0, False

    def __call__(self, images_per_s: float, advice: str = "") -> bool:
        """Record one throughput; returns whether this record warned."""
        self.seen += 1
        if self.seen <= self.settle:
            self.reference = max(self.reference, images_per_s)
            return False
        if self.warned or images_per_s * self.factor >= self.reference:
            return False
        self.warned = True
        warnings.warn(f"training throughput fell to {images_per_s:.1f} images/s from {self.reference:.1f} at the "
                      f"start of the run: the CPUs are probably busy with other work. {advice}".strip(),
                      RuntimeWarning, stacklevel=2)
        return True
