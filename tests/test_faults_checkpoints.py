"""Damaged and foreign checkpoints and run folders: one line naming the file and the fault, a fallback to the
newest intact checkpoint where there is one, and a full disk that leaves the previous checkpoint loadable."""

from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from sagd import checkpoint
from sagd.cli import main
from sagd.config import TrainConfig
from sagd.train import train

TINY = dict(dataset="digits", model="tiny", spectrum="power_law:alpha=-0.5", batch_size=8, warmup=2, log_every=1,
            checkpoint_every=2, keep_checkpoints=3, sample_every=1000, sample_n=4, sample_steps=2, steps=6)
AREA = "Damaged or foreign inputs"


def cli(capsys, *args) -> tuple[int, str]:
    """``sagd <args>`` in this process: exit status and stderr (progress bars dropped)."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as e:
        status = e.code
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    return status, "\n".join(line for line in lines if line.startswith("sagd"))


def losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]  # training records (not the learning-order probe's)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A finished 6-step run with checkpoints at steps 2, 4 and 6."""
    run = tmp_path_factory.mktemp("reference") / "run"
    train(TrainConfig.from_dict({**TINY, "out": str(run)}))
    return run


@pytest.fixture
def run(reference, tmp_path) -> Path:
    """A copy of ``reference`` as if it had been stopped at step 4 (checkpoints at steps 2 and 4)."""
    copy = tmp_path / "run"
    shutil.copytree(reference, copy)
    shutil.rmtree(copy / "checkpoints" / "step_00000006")
    return copy


def step(run: Path, n: int) -> Path:
    return run / "checkpoints" / f"step_{n:08d}"


def edit_state(ckpt: Path, **changes) -> None:
    state = json.loads((ckpt / "state.json").read_text())
    state.update(changes)
    (ckpt / "state.json").write_text(json.dumps(state))


def cut(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def truncate(path: Path) -> None:
    cut(path, path.stat().st_size // 2)


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated `model.safetensors`": (lambda c: truncate(c / "model.safetensors"),
                                       r"model\.safetensors' has \d+ bytes, \d+ were written \(truncated\)"),
    "deleted `ema.safetensors`": (lambda c: (c / "ema.safetensors").unlink(), r"ema\.safetensors' is missing"),
    "one flipped byte in `optimizer.safetensors`": (lambda c: flip_a_byte(c / "optimizer.safetensors"),
                                                    r"optimizer\.safetensors' does not match the SHA-256"),
    "`state.json` cut short (bad JSON)": (lambda c: cut(c / "state.json", 100), r"state\.json' is not valid JSON"),
    "deleted `state.json`": (lambda c: (c / "state.json").unlink(), r"state\.json' is missing"),
    "hand-edited `state.json`: `\"step\": 5`": (lambda c: edit_state(c, step=5),
                                                r"state\.json': 'step' is 5 but the folder is step_00000004"),
    "hand-edited `state.json`: `\"processes\": \"two\"`": (lambda c: edit_state(c, processes="two"),
                                                          r"state\.json': 'processes' must be an integer, got 'two'"),
    "`state.json` from a future format (`\"format\": 2`)": (lambda c: edit_state(c, format=2),
                                                           r"state\.json' is in format 2; this sagd reads format 1"),
}


@pytest.mark.parametrize("what", DAMAGE)
def test_a_damaged_newest_checkpoint_is_named_and_skipped(run, what, fault):
    damage, message = DAMAGE[what]
    damage(step(run, 4))
    reports = []
    assert checkpoint.latest(run, report=reports.append) == step(run, 2)
    assert len(reports) == 1 and re.search(message, reports[0]), reports
    assert reports[0].endswith(f"using the newest intact checkpoint, {str(step(run, 2))!r}")
    fault(AREA, f"{what} in the newest checkpoint, then `--resume`", f"`sagd: {reports[0]}`, and the run goes on")


@pytest.mark.paths
def test_resume_past_a_truncated_checkpoint_continues_exactly(run, reference, capsys, fault):
    truncate(step(run, 4) / "model.safetensors")
    status, err = cli(capsys, "train", "--resume", run)
    assert status == 0, err
    assert "model.safetensors' has" in err and f"sagd: resuming {str(run)!r} from step_00000002" in err
    assert losses(run) == losses(reference)  # steps 3..6 redone, bit for bit
    assert checkpoint.latest(run) == step(run, 6)


def test_no_intact_checkpoint_is_one_line(run, capsys, fault):
    truncate(step(run, 4) / "model.safetensors")
    (step(run, 2) / "state.json").unlink()
    status, err = cli(capsys, "train", "--resume", run)
    assert status == 2 and err.count("\n") == 0 and err.startswith("sagd: error: no intact checkpoint in")
    fault(AREA, "every checkpoint damaged, then `--resume`", f"exit 2: `{err}`")


# ---------------------------------------------------------------------------- foreign runs
def test_a_checkpoint_of_another_run_is_refused_naming_the_mismatch(run, capsys, fault):
    status, err = cli(capsys, "train", "--resume", run, "--spectrum", "isotropic")
    assert status == 2 and err.count("\n") == 0
    assert "state.json' belongs to a run with spectrum='power_law:alpha=-0.5', but the config says " \
           "spectrum='isotropic'" in err
    fault(AREA, "`--resume` with another `--spectrum` than the run's", f"exit 2: `{err}`")

    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "model": "small"}))
    status, err = cli(capsys, "sample", "--run", run)
    assert status == 2 and "belongs to a run with model='tiny', but the config says model='small'" in err
    fault(AREA, "`sagd sample` on a run whose `config.yaml` was edited to another model", f"exit 2: `{err}`")

    edit_state(step(run, 4), config={**checkpoint.load_state(step(run, 4))["config"], "model": "small"})
    status, err = cli(capsys, "sample", "--run", run)
    assert status == 2 and err.count("\n") == 0
    assert "ema.safetensors' does not fit this network: size mismatch for backbone." in err
    fault(AREA, "`sagd sample` where `config.yaml` and `state.json` both claim another model than the tensors",
          f"exit 2: `{err}`")


def test_a_run_folder_from_another_version_names_its_file(run, capsys, fault):
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "noise_offset": 0.1}))
    status, err = cli(capsys, "train", "--resume", run)
    assert status == 2 and err.startswith(f"sagd: error: {str(run / 'config.yaml')!r}: config: unknown key 'noise_offset'")
    fault(AREA, "`--resume` of a run whose `config.yaml` has a key this version lacks", f"exit 2: `{err}`")


def test_a_data_set_of_another_shape_is_refused(tmp_path, capsys, fault):
    data = tmp_path / "data.npz"
    np.savez(data, images=np.zeros((16, 8, 8), np.uint8) + np.arange(8, dtype=np.uint8)[:, None] * 30)
    cfg = {**TINY, "dataset": f"npz:path={data}", "steps": 2, "out": str(tmp_path / "run")}
    train(TrainConfig.from_dict(cfg))
    np.savez(data, images=np.zeros((16, 12, 12), np.uint8))
    status, err = cli(capsys, "train", "--resume", tmp_path / "run", "--steps", 4)
    assert status == 2 and err.count("\n") == 1  # the resume line, then the error
    assert "covariance.safetensors' is for images of shape (1, 8, 8), the data set" in err and "(1, 12, 12)" in err
    fault(AREA, "`--resume` after the data set's images changed size (8×8 to 12×12)",
          f"exit 2: `{err.splitlines()[-1]}`")


# ---------------------------------------------------------------------------- a full disk
def failing_write(monkeypatch, module, name: str, when=lambda *args: True):
    """Make ``module.name`` raise ``ENOSPC`` (like a full disk) whenever ``when(*args)``."""
    real = getattr(module, name)

    def write(*args, **kwargs):
        if when(*args):
            path = next((a for a in args if isinstance(a, (str, Path))), "?")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, write)
    return real


def test_a_full_disk_during_a_checkpoint_stops_cleanly(reference, tmp_path, monkeypatch, capsys, fault):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    run = tmp_path / "run"
    real = failing_write(monkeypatch, checkpoint, "save_file", lambda tensors, path: ".step_00000004" in str(path))
    status, err = cli(capsys, "train", "--config", config, "--out", run)
    assert status == 1 and err.count("\n") == 0
    assert err.startswith("sagd: stopped: step 4: a write failed: [Errno 28] No space left on device:")
    assert err.endswith(f"the newest checkpoint, step_00000002, is untouched; resume with: sagd train --resume {run} "
                        f"once it can write again")
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_00000002"]  # no temporary folder left
    checkpoint.verify(step(run, 2))
    fault(AREA, "disk full while writing a checkpoint (`ENOSPC` injected)", f"exit 1: `{err}`")

    monkeypatch.setattr(checkpoint, "save_file", real)
    status, err = cli(capsys, "train", "--resume", run)
    assert status == 0 and losses(run) == losses(reference)


def test_a_full_disk_while_writing_samples_stops_cleanly(tmp_path, monkeypatch, capsys, fault):
    from PIL import Image

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "sample_every": 3}))
    run = tmp_path / "run"
    failing_write(monkeypatch, Image.Image, "save")
    status, err = cli(capsys, "train", "--config", config, "--out", run)
    assert status == 1 and err.startswith("sagd: stopped: step 3: a write failed: [Errno 28] No space left on device")
    assert "the newest checkpoint, step_00000002, is untouched" in err
    checkpoint.verify(step(run, 2))
    fault(AREA, "disk full while `sagd train` writes its sample grid", f"exit 1: `{err}`")

    status, err = cli(capsys, "sample", "--run", run, "--n", 2, "--sampling-steps", 2, "--out", tmp_path / "gen")
    assert status == 1 and err.startswith("sagd: error: [Errno 28] No space left on device")
    fault(AREA, "disk full while `sagd sample` writes its grid", f"exit 1: `{err}`")


def test_a_real_failed_write_stops_cleanly(tmp_path, fault):
    """Not injected: the child may write no file over 1 MB (RLIMIT_FSIZE), so the OS refuses the checkpoint."""
    import resource
    import signal

    from test_faults_preemption import last_line, spawn, wait

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write() instead of a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    run = tmp_path / "run"
    status = wait(spawn(["train", "--config", config, "--out", run], tmp_path / "train.log", small_files))
    line = last_line(tmp_path / "train.log")
    assert status == 1 and line.startswith("sagd: stopped: step 2: a write failed: [Errno 27]")
    assert "File too large" in line and line.endswith(f"resume with: sagd train --resume {run} once it can write again")
    assert list((run / "checkpoints").iterdir()) == []  # the partial checkpoint was removed
    fault(AREA, "a real failed write: the OS refuses files over 1 MB (`RLIMIT_FSIZE`) at the first checkpoint",
          f"exit 1: `{line.replace(str(tmp_path) + '/', '')}`")


def test_a_metrics_line_cut_short_by_a_kill_is_dropped(run, capsys, fault):
    from sagd.report import read_records

    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 7, "loss": 0.3')  # the kill came mid-write
    assert [r["step"] for r in read_records(run)[0]] == [1, 2, 3, 4, 5, 6]  # eval, compare, report read the rest
    status, err = cli(capsys, "train", "--resume", run, "--steps", 4)
    assert status == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]  # all parse
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]
    fault(AREA, "`metrics.jsonl` whose last line a kill cut short",
          "reports skip the partial line; `--resume` drops it with the records after the checkpoint")
