"""Preemption and crashes: ``sagd train`` killed (SIGKILL) or stopped (SIGTERM, SIGINT) at random moments.

Each run is ``sagd.cli.main(["train", ...])`` in a forked child of the test process (the same code as the
console script, without a new interpreter's import time), on the bundled 8×8 digits with the tiny UNet.
An uninterrupted in-process run of the same config is the reference: every interrupted-and-resumed run
must log the same loss at every step, i.e. continue bit-for-bit from the checkpoint it resumed.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sys
import time
import traceback
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from sagd import checkpoint
from sagd.cli import main
from sagd.config import TrainConfig
from sagd.train import train

TINY = dict(dataset="digits", model="tiny", spectrum="power_law:alpha=-0.5", batch_size=8, warmup=2, log_every=1,
            checkpoint_every=3, sample_every=1000, sample_n=4, sample_steps=2, steps=12)
TIMEOUT = 120  # seconds a child may take for a few steps on a loaded machine


# ---------------------------------------------------------------------------- helpers
def spawn(argv, log: Path, patch=None) -> int:
    """Fork a child that runs ``sagd <argv>`` with stdout and stderr in ``log`` (``patch()`` first); its pid.

    The child computes on one torch thread, whatever its caller's module set: see ``one_thread``
    (``test_faults_checkpoints`` forks through here without that fixture)."""
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        os.environ["OMP_NUM_THREADS"] = "1"  # sagd's threads.configure then leaves torch at one thread
        torch.set_num_threads(1)
        out = open(log, "w", buffering=1)
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        sys.stdout = sys.stderr = out
        if patch:
            patch()
        status = main([str(a) for a in argv])
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        os._exit(status)


def wait(pid: int, timeout: float = TIMEOUT) -> int:
    """The exit status of child ``pid`` (``128 + n`` when killed by signal ``n``)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) % 256 if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"child {pid} still running after {timeout} s")


def until(condition, pid: int, timeout: float = TIMEOUT) -> None:
    """Poll ``condition()`` until true; fails if child ``pid`` exits first."""
    deadline = time.time() + timeout
    while not condition():
        assert os.waitpid(pid, os.WNOHANG) == (0, 0), "the child exited early"
        assert time.time() < deadline, "timed out waiting for the child"
        time.sleep(0.01)


def logged_steps(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    steps = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line being written right now
            continue
        if "loss" in record:
            steps.append(record["step"])
    return steps


def losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]  # training records (not the learning-order probe's)


def newest_intact(run: Path) -> str | None:
    try:
        return checkpoint.latest(run, report=lambda message: None).name
    except FileNotFoundError:
        return None


def resumed_from(log: Path) -> str | None:
    """The checkpoint a resumed child said it continues (``None``: it started from step 0)."""
    text = log.read_text()
    match = re.search(r"resuming '.*' from (step_\d+)", text)
    assert match or "no checkpoint yet" in text, text[-2000:]
    return match.group(1) if match else None


def last_line(log: Path) -> str:
    return log.read_text().strip().splitlines()[-1]


def slow_checkpoint_write(seconds: float, after_step: int = 0):
    """A ``patch`` for ``spawn``: each checkpoint past ``after_step`` pauses ``seconds`` after its first file."""

    def patch():
        real = checkpoint.save_file

        def save_file(tensors, path):
            real(tensors, path)
            folder = Path(path).parent.name  # .step_00000006.tmp
            if int(folder.strip(".").split("_")[1].split(".")[0]) > after_step:
                time.sleep(seconds)

        checkpoint.save_file = save_file

    return patch


def same_tensors(a: Path, b: Path) -> bool:
    for stem in ("model", "ema", "optimizer", "rng"):
        ta, tb = load_file(a / f"{stem}.safetensors"), load_file(b / f"{stem}.safetensors")
        if ta.keys() != tb.keys() or not all(torch.equal(ta[k], tb[k]) for k in ta):
            return False
    return True


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread in this module, which forked children inherit: GNU OpenMP's thread pool does not
    survive a fork, and a child that enters a parallel region hangs (with ``OMP_NUM_THREADS`` > 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of ``TINY``: its folder."""
    folder = tmp_path_factory.mktemp("reference")
    train(TrainConfig.from_dict({**TINY, "out": str(folder / "run")}))
    return folder / "run"


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


# ---------------------------------------------------------------------------- SIGKILL
@pytest.mark.paths
def test_sigkill_at_random_moments_resumes_from_the_newest_complete_checkpoint(reference, config, tmp_path, fault):
    rng = random.Random(14)
    run = tmp_path / "run"
    start = ["train", "--config", config, "--out", run]
    again = ["train", "--resume", run]
    kills = []

    # 1: at a random moment after the first checkpoint (step 3)
    pid = spawn(start, tmp_path / "1.log")
    target = rng.randint(4, 6)
    until(lambda: len(logged_steps(run)) >= target, pid)
    time.sleep(rng.uniform(0, 0.1))
    os.kill(pid, signal.SIGKILL)
    assert wait(pid) == 128 + signal.SIGKILL
    kills.append((f"at a random moment (step {target} logged, then up to 0.1 s)", newest_intact(run)))

    # 2: in the middle of writing a checkpoint (after its first file)
    pid = spawn(again, tmp_path / "2.log", slow_checkpoint_write(60, after_step=max(logged_steps(run))))
    until(lambda: any((d / "model.safetensors").is_file() for d in (run / "checkpoints").glob(".step_*.tmp")), pid)
    os.kill(pid, signal.SIGKILL)
    assert wait(pid) == 128 + signal.SIGKILL
    assert resumed_from(tmp_path / "2.log") == kills[-1][1]
    kills.append(("while it writes a checkpoint (after the checkpoint's first file)", newest_intact(run)))

    # 3: at another random moment
    pid = spawn(again, tmp_path / "3.log")
    target = rng.randint(8, 10)
    until(lambda: max(logged_steps(run), default=0) >= target, pid)
    time.sleep(rng.uniform(0, 0.1))
    os.kill(pid, signal.SIGKILL)
    assert wait(pid) == 128 + signal.SIGKILL
    assert resumed_from(tmp_path / "3.log") == kills[-1][1]
    kills.append((f"at another random moment (step {target} logged, then up to 0.1 s)", newest_intact(run)))

    # 4: to the end
    pid = spawn(again, tmp_path / "4.log")
    assert wait(pid) == 0, (tmp_path / "4.log").read_text()[-3000:]
    assert resumed_from(tmp_path / "4.log") == kills[-1][1]

    assert losses(run) == losses(reference)  # every step's loss, bit for bit
    assert [r for r in logged_steps(run)] == list(range(1, TINY["steps"] + 1))
    assert same_tensors(checkpoint.latest(run), checkpoint.latest(reference))
    assert not list((run / "checkpoints").glob(".*"))  # no temporary folder left behind
    for when, _ in kills:
        fault("Preemption and crashes", f"`kill -9` of `sagd train` {when}, then `--resume`",
              f"resumes from the newest complete checkpoint on disk (the one it names); after three kills the "
              f"losses of all {TINY['steps']} steps equal an uninterrupted run's bit for bit")


# ---------------------------------------------------------------------------- SIGTERM, SIGINT
@pytest.mark.paths
def test_sigterm_and_sigint_lose_no_step(reference, config, tmp_path, fault):
    rng = random.Random(15)
    run = tmp_path / "run"
    argv = ["train", "--config", config, "--out", run]
    for i, sig in enumerate((signal.SIGTERM, signal.SIGINT)):
        log = tmp_path / f"{sig.name}.log"
        pid = spawn(argv, log)
        target = max(logged_steps(run), default=0) + rng.randint(1, 3)
        until(lambda: max(logged_steps(run), default=0) >= target, pid)
        time.sleep(rng.uniform(0, 0.1))
        os.kill(pid, sig)
        assert wait(pid) == 128 + sig
        last = max(logged_steps(run))
        assert newest_intact(run) == f"step_{last:08d}"  # the step in progress was finished and checkpointed
        line = last_line(log)
        assert line == f"sagd: stopped: stopped by {sig.name} after step {last}, checkpoint written; " \
                       f"resume with: sagd train --resume {run}"
        fault("Preemption and crashes", f"`kill -{sig.name[3:]}` at a random moment of `sagd train`",
              f"exit {128 + sig}: `{re.sub('after step [0-9]+', 'after step N', line)}`; the step in progress is "
              f"finished and checkpointed (no step lost), and `--resume` continues bit for bit")
        argv = ["train", "--resume", run]
    pid = spawn(argv, tmp_path / "end.log")
    assert wait(pid) == 0
    assert losses(run) == losses(reference)


def test_a_second_signal_exits_at_once(config, tmp_path, fault):
    run = tmp_path / "run"
    log = tmp_path / "train.log"
    pid = spawn(["train", "--config", config, "--out", run], log, slow_checkpoint_write(60))
    until(lambda: len(logged_steps(run)) >= 1, pid)
    os.kill(pid, signal.SIGTERM)  # finishes the step, then starts a checkpoint (slowed down here)
    until(lambda: any((run / "checkpoints").glob(".step_*.tmp/model.safetensors")), pid)
    sent = time.time()
    os.kill(pid, signal.SIGTERM)
    assert wait(pid, timeout=10) == 128 + signal.SIGTERM
    assert time.time() - sent < 10
    assert last_line(log) == "sagd: second SIGTERM: exiting now, without a checkpoint"
    assert checkpoint.list_checkpoints(run) == []  # the half-written one never became a checkpoint
    fault("Preemption and crashes", "a second SIGTERM while the first one's checkpoint is being written",
          f"exit 143 at once: `{last_line(log)}`; the partial checkpoint stays a hidden temporary folder")


# ---------------------------------------------------------------------------- wall clock
def test_checkpoints_by_wall_clock(tmp_path, fault):
    base = {**TINY, "steps": 3, "checkpoint_every": 1000, "keep_checkpoints": 10}
    train(TrainConfig.from_dict({**base, "out": str(tmp_path / "clock"), "checkpoint_minutes": 1e-6}))
    train(TrainConfig.from_dict({**base, "out": str(tmp_path / "steps"), "checkpoint_minutes": None}))
    names = lambda run: [p.name for p in checkpoint.list_checkpoints(run)]  # noqa: E731
    assert names(tmp_path / "clock") == ["step_00000001", "step_00000002", "step_00000003"]
    assert names(tmp_path / "steps") == ["step_00000003"]  # the final one only
    assert TrainConfig().checkpoint_minutes == 15
    fault("Preemption and crashes", "a slow run with `checkpoint_every` far away (a kill would lose hours)",
          "a checkpoint also every `checkpoint_minutes` of wall-clock time (default 15)")
