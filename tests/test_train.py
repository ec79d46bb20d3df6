"""Training pieces: config, checkpoints (atomic, keep-last-N, optimizer round trip), warm-up, RNG, EMA."""

from pathlib import Path

import pytest
import torch
import yaml

from sagd import checkpoint
from sagd.commands.demo import DEMO
from sagd.config import TrainConfig, load_config
from sagd.ema import EMA
from sagd.train import generators, learning_rate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


# ---------------------------------------------------------------------------- config
def test_every_shipped_config_loads():
    names = {p.name for p in CONFIGS.glob("*.yaml")}
    assert {"demo.yaml", "fmnist_isotropic.yaml", "fmnist_sagd.yaml", "paper_mnist_plw.yaml"} <= names
    for path in CONFIGS.glob("*.yaml"):
        load_config(path)


def test_demo_config_file_matches_the_demo_command():
    assert load_config(CONFIGS / "demo.yaml") == TrainConfig.from_dict(DEMO)


def test_paper_config_is_the_paper_setting():
    cfg = load_config(CONFIGS / "paper_mnist_plw.yaml")
    assert (cfg.prediction, cfg.noise, cfg.sample_method) == ("colored_eps", "per_draw", "ddim")
    assert cfg.spectrum == "power_law:alpha=-0.06,k0=1e-10"


def test_config_round_trips_and_overrides(tmp_path):
    cfg = TrainConfig(dataset="digits")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**cfg.to_dict(), "corrupt": {"low": 0.1, "high": 0.2}, "lr": "1e-4"}))
    loaded = load_config(path)
    assert loaded.corrupt.low == 0.1 and loaded.corrupt.unit == "nyquist" and loaded.lr == 1e-4
    assert TrainConfig.from_dict(loaded.to_dict()) == loaded
    assert loaded.replace(steps=7, seed=None).steps == 7


@pytest.mark.parametrize("raw, match", [
    ({"stepz": 3}, "unknown key 'stepz'"),
    ({"steps": "many"}, "config steps: expected int"),
    ({"steps": 0}, "config steps: must be >= 1"),
    ({"prediction": "score"}, "config prediction: must be one of"),
    ({"spectrum": "power_law:beta=1"}, "unknown key 'beta'"),
    ({"dataset": "imagenet"}, "unknown dataset 'imagenet'"),
    ({"corrupt": {"low": 0.1}}, "corrupt"),
    ({"corrupt": {"low": 0.3, "high": 0.2}}, "need 0 <= low < high"),
])
def test_bad_config_values_name_the_key(raw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict(raw)


# ---------------------------------------------------------------------------- checkpoints
def small_checkpoint(step):
    return {"model": {"w": torch.full((3,), float(step))}}, {"note": "x"}


def test_keep_last_n(tmp_path):
    for step in (1, 2, 3, 4):
        checkpoint.save(tmp_path, step, *small_checkpoint(step), keep=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_00000003", "step_00000004"]
    latest = checkpoint.latest(tmp_path)
    assert {k: checkpoint.load_state(latest)[k] for k in ("note", "step", "format")} == {"note": "x", "step": 4, "format": 1}
    assert torch.equal(checkpoint.load_tensors(latest, "model")["w"], torch.full((3,), 4.0))


def test_a_crash_mid_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    checkpoint.save(tmp_path, 1, *small_checkpoint(1), keep=3)
    real = checkpoint.save_file
    calls = []

    def crash_on_second_file(tensors, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real(tensors, path)

    monkeypatch.setattr(checkpoint, "save_file", crash_on_second_file)
    tensors = {"model": {"w": torch.zeros(3)}, "ema": {"w": torch.ones(3)}}
    with pytest.raises(OSError):
        checkpoint.save(tmp_path, 2, tensors, {}, keep=3)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_00000001"]
    assert torch.equal(checkpoint.load_tensors(checkpoint.latest(tmp_path), "model")["w"], torch.ones(3))
    monkeypatch.setattr(checkpoint, "save_file", real)
    checkpoint.save(tmp_path, 2, tensors, {}, keep=3)  # the leftover temporary folder is replaced
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step_00000001", "step_00000002"]


def test_no_checkpoint_is_a_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        checkpoint.latest(tmp_path)


def test_optimizer_state_round_trips_through_safetensors(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    for _ in range(3):
        net(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    tensors, meta = checkpoint.flatten_optimizer(opt.state_dict())
    checkpoint.save(tmp_path, 3, {"optimizer": tensors}, {"optimizer": meta}, keep=1)
    ckpt = checkpoint.latest(tmp_path)
    restored = checkpoint.unflatten_optimizer(checkpoint.load_tensors(ckpt, "optimizer"),
                                              checkpoint.load_state(ckpt)["optimizer"])
    twin = torch.optim.AdamW(net.parameters(), lr=1e-2)
    twin.load_state_dict(restored)
    for i, state in opt.state_dict()["state"].items():
        for name, value in state.items():
            assert torch.equal(twin.state_dict()["state"][i][name], value)


# ---------------------------------------------------------------------------- schedule, RNG, EMA
def test_linear_warmup():
    cfg = TrainConfig(lr=1e-3, warmup=10)
    assert [learning_rate(cfg, s) for s in (1, 5, 10, 100)] == pytest.approx([1e-4, 5e-4, 1e-3, 1e-3])
    assert learning_rate(TrainConfig(lr=1e-3, warmup=0), 1) == 1e-3


def test_generators_are_independent_per_stream_and_process():
    draws = {(rank, name): torch.rand(4, generator=g) for rank in (0, 1)
             for name, g in generators(0, rank, "cpu").items()}
    values = list(draws.values())
    assert all(not torch.equal(a, b) for i, a in enumerate(values) for b in values[i + 1:])
    again = generators(0, 1, "cpu")["noise"]
    assert torch.equal(torch.rand(4, generator=again), draws[(1, "noise")])


def test_ema_starts_at_the_weights_and_warms_up():
    net = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema = EMA(net, decay=0.999)
    ema.update_parameters(net)  # first update copies
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema.update_parameters(net)  # n = 1: decay min(0.999, 2 / 11)
    assert ema.module.weight.flatten()[0].item() == pytest.approx(2 / 11)
