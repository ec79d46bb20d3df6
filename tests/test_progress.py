"""The training bar (time budget vs step count), the slowdown warning and the CPU thread policy."""

import os
import subprocess
import sys
import warnings

import pytest
import torch
from tqdm.auto import tqdm

from sagd import diffusion, spectral, threads
from sagd.progress import Progress, SlowdownWatch, shown


def test_a_time_budget_shows_time_used_and_left_not_the_step_cap():
    bar = Progress(steps=50_000, step=0, max_minutes=8.0)
    bar.update(366, loss="0.0312")
    text = str(bar.bar)
    bar.close()
    assert "used" in text and "left" in text and "step=366" in text and "loss=0.0312" in text
    assert "50000" not in text and ("07:59 left" in text or "08:00 left" in text)
    assert 0 <= bar.bar.n < 60  # seconds used, not steps


def test_a_step_bound_run_counts_steps():
    bar = Progress(steps=200, step=50, max_minutes=None)
    bar.update(51)
    bar.update(52, loss="0.5")
    text = str(bar.bar)
    bar.close()
    assert "52/200" in text and "loss=0.5" in text


def test_slowdown_warns_once_far_below_the_start():
    watch = SlowdownWatch(factor=3.0, settle=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning while settling or within the factor
        for v in (20.0, 100.0, 90.0, 60.0, 34.0):  # warm-up, reference 100, ordinary ups and downs
            assert not watch(v)
    with pytest.warns(RuntimeWarning, match=r"fell to 10.0 images/s from 100.0.*OMP_NUM_THREADS=1"):
        assert watch(10.0, "try OMP_NUM_THREADS=1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not watch(5.0)  # once


@pytest.mark.parametrize("usable, idle, n", [
    (2, 1.97, 2),   # an idle 2-core machine
    (2, 1.0, 1),    # one other busy process
    (2, 1.6, 1),    # the second core too busy to count as free
    (2, 0.05, 1),   # always at least one
    (2, None, 2),   # no probe: trust the usable cores
    (16, 15.9, 16),
    (1.5, 2.0, 1),  # a cgroup quota of 1.5 cores
    (8, 5.8, 6),
])
def test_one_thread_per_free_core(usable, idle, n):
    assert threads.choose(usable, idle) == n


def test_cgroup_quota(tmp_path):
    f = tmp_path / "cpu.max"
    f.write_text("150000 100000\n")
    assert threads.cgroup_quota(f) == 1.5
    f.write_text("max 100000\n")
    assert threads.cgroup_quota(f) is None
    assert threads.cgroup_quota(tmp_path / "missing") is None


def test_probe_counts_idle_cores_within_the_usable_ones():
    cpus = threads.usable_cpus()
    idle = threads.idle_cpus(cpus, seconds=0.05)
    assert idle is None or 0 <= idle <= len(cpus) + 1e-9


def test_the_users_setting_wins(monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(threads, "idle_cpus", lambda cpus, seconds=0: 64.0)
    assert threads.configure() == 1  # untouched
    assert "OMP_NUM_THREADS=3" not in threads.advice()  # one thread: nothing to advise about threads
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: {0, 1})
    monkeypatch.setattr(threads, "cgroup_quota", lambda: None)
    assert threads.configure() == 2 and "the free cores at start" in threads.advice()
    monkeypatch.setattr(threads, "idle_cpus", lambda cpus, seconds=0: 1.0)
    assert threads.configure() == 1


def test_tqdm_environment_can_quiet_a_shown_bar_but_not_show_a_hidden_one(capsys):
    # tqdm reads TQDM_* when it is imported, so the quiet case runs in a fresh interpreter
    quiet = subprocess.run([sys.executable, "-c", QUIET], env={**os.environ, "TQDM_DISABLE": "1"},
                           capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and quiet.stdout == "ok\n", quiet.stderr
    assert "ddim" not in quiet.stderr and "train" not in quiet.stderr  # neither bar was drawn
    diffusion.sample(lambda x, t: 0 * x, diffusion.VPProcess(spectral.isotropic((1, 4, 4))), 2, "ddim", 3,
                     progress=True)
    assert "ddim" in capsys.readouterr().err
    assert tqdm(total=3, **shown(False)).disable
    assert Progress(steps=10, step=0, max_minutes=None, disable=True).bar.disable


QUIET = """
from sagd import diffusion, spectral
from sagd.progress import Progress
bar = Progress(steps=10, step=0, max_minutes=None)
bar.update(1)
bar.close()
diffusion.sample(lambda x, t: 0 * x, diffusion.VPProcess(spectral.isotropic((1, 4, 4))), 2, "ddim", 3, progress=True)
print("ok" if bar.bar.disable else "shown")
"""
