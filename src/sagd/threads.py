"""How many threads torch computes with on the CPU: as many as there are free cores for it.

torch's default is one intra-op thread per core of the machine. A parallel region ends when
its slowest thread does, so when another process keeps one of those cores busy every region
waits for the scheduler to hand that thread a time slice, and training runs many times slower
than on fewer threads (``benchmarks/demo_throughput.py`` measures it). ``configure`` counts the
cores this process may use (its affinity mask and cgroup quota) that are idle during a short
probe of ``/proc/stat``, and sets torch to that many threads, at least one.

An explicit ``OMP_NUM_THREADS`` (or ``MKL_NUM_THREADS``) always wins: ``configure`` then leaves
torch as it is. The command line calls it once, before any command runs.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

USER_SETTINGS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
PROBE_SECONDS = 0.25
# a core counts as free when at least this fraction of it was idle during the probe
FREE = 0.75


def usable_cpus() -> set[int]:
    """The CPUs this process may run on (its affinity mask), as ids."""
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


def cgroup_quota(path: Path = Path("/sys/fs/cgroup/cpu.max")) -> float | None:
    """The cgroup v2 CPU quota in cores (``"150000 100000"`` -> 1.5), or ``None`` when unlimited or unknown."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _cpu_ticks(cpus: set[int]) -> tuple[int, int] | None:
    """``(idle, total)`` jiffies summed over ``cpus`` from ``/proc/stat``; ``None`` where it cannot be read."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    idle = total = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
            idle += ticks[3] + ticks[4]
            total += sum(ticks)
    return (idle, total) if total else None


def idle_cpus(cpus: set[int], seconds: float = PROBE_SECONDS) -> float | None:
    """How many of ``cpus`` were idle over the next ``seconds`` (e.g. 1.0 = one core's worth); ``None`` if unknown."""
    before = _cpu_ticks(cpus)
    time.sleep(seconds)
    after = _cpu_ticks(cpus)
    if before is None or after is None or after[1] <= before[1]:
        return None
    return len(cpus) * (after[0] - before[0]) / (after[1] - before[1])


def choose(usable: float, idle: float | None) -> int:
    """Threads for ``usable`` cores of which ``idle`` are idle: one per free core, at least one.

    ``idle=None`` (no probe possible) trusts the usable count.
    """
    free = usable if idle is None else min(usable, idle + 1 - FREE)
    return max(1, math.floor(free))


def user_setting() -> str | None:
    """The environment variable through which the user chose the thread count, if any."""
    return next((name for name in USER_SETTINGS if os.environ.get(name)), None)


def configure() -> int:
    """Set torch's intra-op threads from the free usable cores unless the user chose; returns the count."""
    if user_setting() is None:
        cpus = usable_cpus()
        quota = cgroup_quota()
        usable = len(cpus) if quota is None else min(len(cpus), quota)
        torch.set_num_threads(choose(usable, idle_cpus(cpus)))
    return torch.get_num_threads()


def advice() -> str:
    """What to tell a user whose CPU run slowed down, given how its thread count was set."""
    n = torch.get_num_threads()
    if n == 1:
        return "torch already uses one thread; fewer other jobs on these cores is the only cure."
    setting = user_setting()
    chosen = f"{setting}={os.environ[setting]}" if setting else "the free cores at start"
    return f"torch uses {n} threads (from {chosen}); with other jobs on these cores, OMP_NUM_THREADS=1 is often faster."
