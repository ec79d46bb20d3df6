"""diffusers pipelines: a run exported, reloaded with stock from_pretrained, sampling as `sagd sample` does."""

import json

import numpy as np
import pytest
import torch
import yaml
from diffusers import DiffusionPipeline, UNet2DModel

from sagd import diffusion
from sagd.cli import main
from sagd.pipeline import SAGDPipeline, SAGDScheduler
from sagd.run import load_run, sampler_denoiser

RUN = dict(dataset="digits", spectrum="power_law:alpha=-0.5", batch_size=16, warmup=2, log_every=1,
           checkpoint_every=2, sample_every=1000, sample_n=4, sample_steps=2)


def sagd(*args) -> None:
    assert main([str(a) for a in args]) == 0


@pytest.fixture(scope="module", params=[("tiny", "eps", False), ("dit-tiny", "v", True)], ids=["unet", "dit-cfg"])
def exported(request, tmp_path_factory):
    """A 2-step run of each backbone and its exported folder: ``(run, folder, class_conditional)``."""
    model, prediction, conditional = request.param
    root = tmp_path_factory.mktemp(model)
    torch.set_num_threads(1)
    (root / "run.yaml").write_text(yaml.safe_dump({**RUN, "model": model, "prediction": prediction,
                                                    "class_conditional": conditional}))
    sagd("train", "--config", root / "run.yaml", "--out", root / "run", "--steps", 2)
    sagd("export", "--run", root / "run", "--out", root / "pipe")
    return root / "run", root / "pipe", conditional


@pytest.mark.paths
def test_stock_from_pretrained_samples_what_sagd_sample_does(exported, tmp_path):
    run, folder, conditional = exported
    pipe = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)
    assert isinstance(pipe, SAGDPipeline) and isinstance(pipe.scheduler, SAGDScheduler)
    guidance = 2.0 if conditional else 1.0
    sagd("sample", "--run", run, "--n", 5, "--method", "ddim", "--sampling-steps", 4, "--seed", 7,
         "--guidance", guidance, "--out", tmp_path)
    expected = np.load(tmp_path / "samples.npz")["images"]
    images = pipe(5, num_inference_steps=4, generator=torch.Generator().manual_seed(7), guidance_scale=guidance).images
    np.testing.assert_array_equal(images.numpy(), expected)  # the same draws and the same float operations


@pytest.mark.paths
def test_stochastic_ddim_steps_take_colored_noise(exported):
    run, folder, conditional = exported
    pipe = SAGDPipeline.from_pretrained(folder, trust_remote_code=True)
    images = pipe(3, num_inference_steps=4, generator=torch.Generator().manual_seed(1), eta=1.0).images
    loaded = load_run(run)
    labels = torch.arange(3) % 10 if conditional else None
    denoiser = sampler_denoiser(loaded.net, loaded.proc, loaded.cfg.prediction, labels, clip=loaded.cfg.sample_clip)
    with torch.no_grad():
        expected = diffusion.sample(denoiser, loaded.proc, 3, method="ddim", steps=4, eta=1.0,
                                    generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(images, expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="colored variance_noise"):
        scheduler = SAGDScheduler()
        scheduler.set_timesteps(3)
        scheduler.step(images, scheduler.timesteps[0], images, eta=1.0)


def test_the_folder_is_a_diffusers_layout(exported):
    run, folder, conditional = exported
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline_sagd", "SAGDPipeline"]
    assert index["num_classes"] == (10 if conditional else None)
    assert {p.name for p in folder.iterdir()} >= {"backbone", "scheduler", "spectrum", "pipeline_sagd.py"}
    loaded = load_run(run)
    backbone = type(loaded.net.backbone).from_pretrained(folder / "backbone")  # plain diffusers
    for key, value in loaded.net.backbone.state_dict().items():
        assert torch.equal(backbone.state_dict()[key], value)
    pipe = SAGDPipeline.from_pretrained(folder, trust_remote_code=True)
    assert torch.equal(pipe.spectrum.covariance.weights, loaded.proc.cov.weights)
    pil = pipe(2, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="pil").images
    assert len(pil) == 2 and pil[0].size == (8, 8)
    if not conditional:
        assert isinstance(backbone, UNet2DModel)


def test_export_refuses_to_overwrite(exported, capsys):
    run, folder, _ = exported
    with pytest.raises(SystemExit):
        main(["export", "--run", str(run), "--out", str(folder)])
    assert "already holds a pipeline" in capsys.readouterr().err
