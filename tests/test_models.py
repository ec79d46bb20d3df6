"""Backbones: presets, the (x, t) wrapper, label dropout and classifier-free guidance."""

import pytest
import torch

from sagd import diffusion, spectral
from sagd.models import PRESETS, Network, drop_labels, guided_denoiser


def n_params(net):
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("preset, low, high", [("tiny", 0.8e6, 1.5e6), ("small", 4e6, 9e6), ("base", 13e6, 17e6)])
def test_parameter_counts(preset, low, high):
    assert low < n_params(Network(preset, (3, 32, 32))) < high


@pytest.mark.parametrize("preset, shape", [
    ("tiny", (1, 28, 28)), ("tiny", (1, 8, 8)), ("tiny", (1, 25, 25)), ("tiny", (3, 32, 32)),
    ("small", (1, 28, 28)), ("base", (1, 28, 28)), ("base", (3, 32, 32)),
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


def test_time_reaches_the_network():
    torch.manual_seed(0)
    net = Network("tiny", (1, 8, 8)).eval()
    x = torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(net(x, torch.tensor([0.1])), net(x, torch.tensor([0.9])))


def test_unknown_preset_and_labels_on_an_unconditional_net():
    with pytest.raises(ValueError, match="model must be one of"):
        Network("huge", (1, 8, 8))
    net = Network("tiny", (1, 8, 8))
    with pytest.raises(ValueError, match="unconditional"):
        net(torch.randn(1, 1, 8, 8), torch.rand(1), torch.zeros(1, dtype=torch.long))
    assert set(PRESETS) == {"tiny", "small", "base"}


def test_conditional_net_defaults_to_the_null_class():
    torch.manual_seed(0)
    net = Network("tiny", (1, 8, 8), num_classes=10).eval()
    assert net.null_class == 10 and net.unet.config.num_class_embeds == 11
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


@pytest.mark.parametrize("prediction", ["eps", "colored_eps", "x0", "v"])
def test_guidance_combines_conditional_and_unconditional_denoisers(prediction):
    # float64 throughout: the eps -> D conversion multiplies round-off by sigma/alpha (up to ~50
    # here, |D| up to ~250), so float32 agreement depends on which CPU kernels ran.
    torch.manual_seed(0)
    net = Network("tiny", (1, 8, 8), num_classes=3).eval().double()
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
