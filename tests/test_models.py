"""Backbones: presets, the (x, t) wrapper, label dropout and classifier-free guidance."""

import pytest
import torch

from sagd import diffusion, spectral
from sagd.models import PRESETS, Network, drop_labels, guided_denoiser


def n_params(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("preset, low, high", [("tiny", 0.8e6, 1.5e6), ("small", 4e6, 9e6), ("base", 13e6, 17e6),
                                               ("dit-tiny", 0.1e6, 0.3e6), ("dit-s/2", 33e6, 37e6)])
def test_parameter_counts(preset, low, high):
    assert low < n_params(Network(preset, (3, 32, 32))) < high


@pytest.mark.parametrize("preset, shape", [
    ("tiny", (1, 28, 28)), ("tiny", (1, 8, 8)), ("tiny", (1, 25, 25)), ("tiny", (3, 32, 32)),
    ("small", (1, 28, 28)), ("base", (1, 28, 28)), ("base", (3, 32, 32)),
    ("dit-tiny", (1, 28, 28)), ("dit-tiny", (1, 25, 25)), ("dit-tiny", (3, 6, 9)), ("dit-tiny", (4, 16, 16)),
])
def test_forward_keeps_shape(preset, shape):
    torch.manual_seed(0)
    net = Network(preset, shape).eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        out = net(x, torch.rand(2))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_padding_to_the_unet_multiple():
    assert Network("tiny", (1, 25, 25)).pad == (0, 3, 0, 3)  # 3 levels: multiples of 4
    assert Network("base", (1, 28, 28)).pad == (0, 4, 0, 4)  # 4 levels: multiples of 8
    assert Network("tiny", (1, 8, 8)).pad == (0, 0, 0, 0)
    assert Network("dit-tiny", (1, 25, 25)).pad == (0, 1, 0, 1)  # a whole number of 2x2 patches
    assert Network("dit-tiny", (1, 6, 9)).pad == (0, 1, 0, 4)  # and square: 10x10


@pytest.mark.parametrize("model", ["tiny", "dit-tiny"])
def test_time_reaches_the_network(model):
    torch.manual_seed(0)
    net = Network(model, (1, 8, 8)).eval()
    x = torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(net(x, torch.tensor([0.1])), net(x, torch.tensor([0.9])))


def test_unknown_preset_and_labels_on_an_unconditional_net():
    with pytest.raises(ValueError, match="model must be one of"):
        Network("huge", (1, 8, 8))
    net = Network("tiny", (1, 8, 8))
    with pytest.raises(ValueError, match="unconditional"):
        net(torch.randn(1, 1, 8, 8), torch.rand(1), torch.zeros(1, dtype=torch.long))
    assert set(PRESETS) == {"tiny", "small", "base", "dit-tiny", "dit-s/2", "dit-b/2"}


@pytest.mark.parametrize("model", ["tiny", "dit-tiny"])
def test_conditional_net_defaults_to_the_null_class(model):
    torch.manual_seed(0)
    net = Network(model, (1, 8, 8), num_classes=10).eval()
    assert net.null_class == 10
    classes = net.backbone.config.get("num_class_embeds") or net.backbone.config.num_embeds_ada_norm + 1
    assert classes == 11
    x, t = torch.randn(3, 1, 8, 8), torch.rand(3)
    with torch.no_grad():
        assert torch.equal(net(x, t), net(x, t, torch.full((3,), 10)))
        assert not torch.allclose(net(x, t), net(x, t, torch.zeros(3, dtype=torch.long)))


def test_drop_labels():
    labels = torch.arange(1000) % 10
    assert torch.equal(drop_labels(labels, 0.0, 10), labels)
    assert (drop_labels(labels, 1.0, 10) == 10).all()
    a = drop_labels(labels, 0.3, 10, torch.Generator().manual_seed(1))
    b = drop_labels(labels, 0.3, 10, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and 0.2 < (a == 10).float().mean() < 0.4
    kept = a != 10
    assert torch.equal(a[kept], labels[kept])


@pytest.mark.paths
@pytest.mark.parametrize("model", ["tiny", "dit-tiny"])
@pytest.mark.parametrize("prediction", ["eps", "colored_eps", "x0", "v"])
def test_guidance_combines_conditional_and_unconditional_denoisers(prediction, model):
    # float64 throughout: the eps -> D conversion multiplies round-off by sigma/alpha (up to ~50
    # here, |D| up to ~250), so float32 agreement depends on which CPU kernels ran.
    torch.manual_seed(0)
    net = Network(model, (1, 8, 8), num_classes=3).eval().double()
    proc = diffusion.VPProcess(spectral.power_law((1, 8, 8), alpha=-0.5))
    labels = torch.tensor([0, 1, 2, 0])
    x, t = torch.randn(4, 1, 8, 8, dtype=torch.float64), torch.rand(4, dtype=torch.float64) * 0.9 + 0.05
    with torch.no_grad():
        d_cond = diffusion.Denoiser(lambda x_, t_: net(x_, t_, labels), proc, prediction)(x, t)
        d_uncond = diffusion.Denoiser(net, proc, prediction)(x, t)
        for scale in (0.0, 1.0, 3.0):
            d = guided_denoiser(net, proc, prediction, labels, scale)(x, t)
            assert d.dtype == torch.float64
            torch.testing.assert_close(d, d_uncond + scale * (d_cond - d_uncond), atol=1e-9, rtol=1e-9)
    with pytest.raises(ValueError, match="class-conditional"):
        guided_denoiser(Network("tiny", (1, 8, 8)), proc, prediction, labels, 2.0)


# ---------------------------------------------------------------------------- the backbone registry
@pytest.mark.paths
def test_dit_drops_no_labels_of_its_own_in_training_mode():
    """diffusers' DiT would replace labels by its null class at random (global RNG) in train mode."""
    torch.manual_seed(0)
    net = Network("dit-tiny", (1, 8, 8), num_classes=3).train()
    x, t, labels = torch.randn(64, 1, 8, 8), torch.rand(64), torch.arange(64) % 3
    with torch.no_grad():
        torch.testing.assert_close(net(x, t, labels), net.eval()(x, t, labels), rtol=0, atol=0)


@pytest.mark.paths
@pytest.mark.parametrize("model", ["tiny", "dit-tiny"])
def test_a_saved_diffusers_config_file_is_a_preset(tmp_path, model):
    torch.manual_seed(0)
    net = Network(model, (3, 16, 16), num_classes=4)
    net.backbone.save_config(tmp_path)  # diffusers' own config.json (sizes from the data are overridden)
    again = Network(str(tmp_path / "config.json"), (1, 8, 8), num_classes=2)
    assert type(again.backbone) is type(net.backbone)
    assert again.config["in_channels"] == 1 and again.config["sample_size"] == 8
    same = {k: v for k, v in net.config.items() if k not in ("in_channels", "out_channels", "sample_size",
                                                           "num_class_embeds", "num_embeds_ada_norm")}
    assert same == {k: again.config[k] for k in same}
    rebuilt = Network(net.config, (3, 16, 16), num_classes=4)  # what a checkpoint records
    rebuilt.load_state_dict(net.state_dict())
    x, t = torch.randn(2, 3, 16, 16), torch.rand(2)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x, t), net.eval()(x, t), rtol=0, atol=0)  # the same network


@pytest.mark.parametrize("content, match", [
    ('{"_class_name": "VQModel"}', "_class_name must be one of"),
    ('{"_class_name": "UNet2DModel", "layers": 3}', "unknown UNet2DModel argument 'layers'"),
    ("[1, 2]", "_class_name must be one of"),
    ("{", "not valid JSON"),
])
def test_bad_config_files_say_what_is_wrong(tmp_path, content, match):
    (tmp_path / "m.json").write_text(content)
    with pytest.raises(ValueError, match=match):
        Network(str(tmp_path / "m.json"), (1, 8, 8))
    with pytest.raises(ValueError, match="does not exist"):
        Network(str(tmp_path / "missing.json"), (1, 8, 8))


def test_checkpoints_from_before_the_registry_load():
    torch.manual_seed(0)
    net = Network("tiny", (1, 8, 8))
    old = {k.replace("backbone.", "unet.", 1): v for k, v in net.state_dict().items()}
    torch.manual_seed(1)
    fresh = Network("tiny", (1, 8, 8))
    fresh.load_state_dict(old)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), net.state_dict().values()))
