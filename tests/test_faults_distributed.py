"""Distributed faults: in a 2-process CPU run (``accelerate launch --multi_gpu``), one process killed; the other
stops within seconds with one line, and the same launch with ``--resume`` continues from the newest checkpoint."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from sagd import checkpoint

BIN = Path(sys.executable).parent
TINY = dict(dataset="digits", model="tiny", spectrum="power_law:alpha=-0.5", batch_size=8, warmup=2, log_every=1,
            checkpoint_every=2, sample_every=1000, sample_n=4, sample_steps=2, steps=400, probe_every=0)
BOUND = 60  # seconds the surviving process may take to exit


def launch(tmp_path: Path, name: str, *args) -> subprocess.Popen:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
    return subprocess.Popen(
        [BIN / "accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
         "-m", "sagd.cli", "train", *map(str, args)],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"{name}.log", "w"), start_new_session=True)


def logged_steps(run: Path) -> list[int]:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return [r["step"] for r in records if "loss" in r]


def worker(launcher: int, rank: int) -> int:
    """The pid of the training process of local rank ``rank`` started by ``launcher``."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))
        if parent == launcher and f"LOCAL_RANK={rank}".encode() in environ:
            return int(pid)
    raise AssertionError(f"no worker of local rank {rank} under {launcher}")


def anonymous(line: str) -> str:
    """``line`` without what changes from run to run: step numbers, the port."""
    line = re.sub(r"\[127\.0\.0\.1\]:\d+", "[127.0.0.1]:PORT", line)
    return re.sub(r"step [0-9]+", "step N", re.sub(r"step_[0-9]+", "step_M", line))


def test_a_killed_process_stops_the_other_and_the_run_resumes(tmp_path, fault):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    run = tmp_path / "run"
    first = launch(tmp_path, "first", "--config", config, "--out", run)
    try:
        deadline = time.time() + 300
        while len(logged_steps(run)) < 5:
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.time() < deadline, "the 2-process run did not start"
            time.sleep(0.1)
        os.kill(worker(first.pid, 1), signal.SIGKILL)
        killed = time.time()
        status = first.wait(timeout=BOUND)
        took = time.time() - killed
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    err = (tmp_path / "first.log").read_text()
    assert status != 0 and took < BOUND
    line = next(line for line in err.splitlines() if line.startswith("sagd: stopped:"))
    newest = checkpoint.latest(run, report=lambda message: None)
    assert re.fullmatch(rf"sagd: stopped: step \d+: lost contact with another process of this run \(.*\); the newest "
                        rf"checkpoint, {newest.name}, is untouched; resume with: sagd train --resume {run} \(same "
                        rf"launcher, 2 processes\)", line), line
    fault("Distributed runs", "2-process CPU run (`accelerate launch --multi_gpu`), rank 1 killed (`kill -9`)",
          f"rank 0 exits within seconds (bound checked: {BOUND} s), the launcher with status 1: "
          f"`{anonymous(line)}`")

    end = int(newest.name.split("_")[1]) + 3
    again = launch(tmp_path, "again", "--resume", run, "--steps", end)
    assert again.wait(timeout=300) == 0, (tmp_path / "again.log").read_text()[-3000:]
    err = (tmp_path / "again.log").read_text()
    assert f"sagd: resuming {str(run)!r} from {newest.name}" in err
    assert logged_steps(run) == list(range(1, end + 1))
    assert checkpoint.load_state(checkpoint.latest(run))["step"] == end
    fault("Distributed runs", "the same launch with `--resume`",
          "resumes from the newest checkpoint (the line `sagd: resuming ... from step_M`) and runs to the end")
