"""A trained run as a diffusers pipeline: ``SAGDPipeline``, its scheduler and its spectrum.

``export(run, folder)`` writes the ``save_pretrained`` layout::

    folder/model_index.json            _class_name ["pipeline_sagd", "SAGDPipeline"], components, sagd settings
    folder/pipeline_sagd.py            one import line: lets stock DiffusionPipeline.from_pretrained find the class
    folder/backbone/                   the EMA network: UNet2DModel or DiTTransformer2DModel (config + safetensors)
    folder/scheduler/                  SAGDScheduler config (schedule, t_min)
    folder/spectrum/                   SAGDSpectrum: the noise covariance's weights (config + safetensors)
    folder/vae/                        latent runs: the AutoencoderKL that decodes the samples

and ``DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`` (stock diffusers; sagd must
be installed) returns a ``SAGDPipeline``. The flag is diffusers' consent to run the folder's
``pipeline_sagd.py``, one import line written by ``sagd export`` (read it); ``SAGDPipeline.from_pretrained``
needs it too, as diffusers resolves the class from the folder before anything else. The backbone folder alone is a plain diffusers model (``UNet2DModel.from_pretrained``).

Sampling goes through ``sagd.diffusers_interop``: colored initial latents ``σ_1 Σ^{1/2} z`` and
colored step noise handed to ``SAGDScheduler.step``. ``SAGDScheduler`` is DDIM(η) on sagd's
continuous VP process (its log-SNR time grid and ``α_t, σ_t``), so with the same seed a pipeline
samples exactly what ``sagd sample --method ddim`` does, for any η. Its ``timesteps`` are
continuous times ``t ∈ (0, 1]``, not integer DDPM steps, and the model output it takes is the
denoised estimate ``D = E[x_0 | x_t]`` (diffusers' ``prediction_type="sample"``), which the pipeline
computes with the run's parametrisation, guidance and clamp. (Runs trained with ``noise: per_draw``:
the pipeline's prior is the exact Gaussian, where ``sagd sample`` normalises each prior draw.)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import ConfigMixin, DiffusionPipeline, ImagePipelineOutput, ModelMixin, SchedulerMixin
from diffusers.configuration_utils import register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerOutput

from . import diffusers_interop, spectral
from .diffusion import VPProcess
from .diffusion.samplers import ddim_update, time_grid
from .latent import VAE
from .models import Network
from .run import Run, sampler_denoiser
from .spectral import SpectralCovariance

PIPELINE_FILE = "pipeline_sagd"


class SAGDSpectrum(ModelMixin, ConfigMixin):
    """The noise covariance ``Σ`` as a diffusers model: its weights ``(C, H, W)`` (float64) in safetensors."""

    @register_to_config
    def __init__(self, shape: tuple[int, ...] = (1, 8, 8)):
        super().__init__()
        self.register_buffer("weights", torch.ones(tuple(shape), dtype=torch.float64))

    @classmethod
    def of(cls, cov: SpectralCovariance) -> "SAGDSpectrum":
        out = cls(shape=list(cov.shape))
        out.weights.copy_(cov.state_dict()["weights"])
        return out

    @property
    def covariance(self) -> SpectralCovariance:
        return SpectralCovariance.from_state_dict({"weights": self.weights.double().cpu()})


class SAGDScheduler(SchedulerMixin, ConfigMixin):
    """DDIM(η) on sagd's continuous VP process, as a diffusers scheduler.

    ``set_timesteps(n)`` makes ``timesteps`` the first ``n`` times of ``diffusion.time_grid`` (from
    1 down to ``t_min``, uniform in log-SNR; float64); each ``step`` goes to the next time, the
    last to ``t = 0``. ``step(D, t, x_t, eta, variance_noise)``: ``x_s = α_s D + √(σ_s² - c²) n̂ + c ·
    variance_noise`` with ``n̂ = (x_t - α_t D) / σ_t``; with ``η > 0`` pass colored noise
    (``diffusers_interop.step`` does).
    """

    config_name = "scheduler_config.json"
    order = 1

    @register_to_config
    def __init__(self, schedule: str = "linear", t_min: float = 1e-3):
        # the coefficients need no spectrum: a 1-pixel isotropic process carries the schedule
        self.proc = VPProcess(spectral.isotropic((1, 1, 1)), schedule, t_min=t_min)
        self.timesteps = torch.ones(1, dtype=torch.float64)
        self.times = torch.tensor([1.0, 0.0], dtype=torch.float64)
        self.step_index = 0

    @property
    def init_noise_sigma(self) -> float:
        """``σ_1``: the prior is ``N(0, σ_1² Σ)``."""
        return self.proc.sigma(torch.tensor(1.0, dtype=torch.float64)).item()

    def set_timesteps(self, num_inference_steps: int, device=None) -> None:
        self.times = time_grid(self.proc, num_inference_steps)
        self.timesteps = self.times[:-1].clone()
        self.step_index = 0

    def coefficients(self, t: float) -> tuple[float, float]:
        """``(α_t, σ_t)`` as Python floats (computed in float64)."""
        tt = torch.tensor(t, dtype=torch.float64)
        return self.proc.alpha(tt).item(), self.proc.sigma(tt).item()

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, eta: float = 0.0,
             variance_noise: torch.Tensor | None = None, return_dict: bool = True):
        """One DDIM step from ``timestep`` (the current entry of ``timesteps``) to the next time."""
        t, s = self.times[self.step_index].item(), self.times[self.step_index + 1].item()
        if abs(float(timestep) - t) > 1e-12:
            raise ValueError(f"step expected timestep {t} (entry {self.step_index} of timesteps), got {float(timestep)}")
        x = ddim_update(sample, model_output, self.coefficients(t), self.coefficients(s), eta,
                        lambda: _require(variance_noise))
        self.step_index += 1
        return SchedulerOutput(prev_sample=x) if return_dict else (x,)


def _require(variance_noise: torch.Tensor | None) -> torch.Tensor:
    if variance_noise is None:
        raise ValueError("eta > 0 needs colored variance_noise: use sagd.diffusers_interop.step")
    return variance_noise


class SAGDPipeline(DiffusionPipeline):
    """Sample a SAGD model: ``pipe(8, num_inference_steps=50, generator=g).images``.

    Components: ``backbone`` (a diffusers UNet2DModel or DiTTransformer2DModel), ``scheduler``
    (``SAGDScheduler``), ``spectrum`` (``SAGDSpectrum``), ``vae`` (an ``AutoencoderKL`` that decodes the
    samples of a latent run, else ``None``). Settings (saved in ``model_index.json``):
    ``prediction`` (what the backbone predicts: eps, colored_eps, x0, v), ``sample_clip`` (clamp of
    ``D``; ``None``: none), ``num_classes`` (``None``: unconditional).
    """

    model_cpu_offload_seq = "backbone->vae"
    _optional_components = ["vae"]

    def __init__(self, backbone, scheduler: SAGDScheduler, spectrum: SAGDSpectrum, vae=None, prediction: str = "eps",
                 sample_clip: float | None = 1.0, num_classes: int | None = None):
        super().__init__()
        self.register_modules(backbone=backbone, scheduler=scheduler, spectrum=spectrum, vae=vae)
        self.register_to_config(prediction=prediction, sample_clip=sample_clip, num_classes=num_classes)

    @torch.no_grad()
    def __call__(self, batch_size: int = 1, num_inference_steps: int = 50, generator: torch.Generator | None = None,
                 class_labels: list[int] | torch.Tensor | None = None, guidance_scale: float = 1.0, eta: float = 0.0,
                 output_type: str = "pt", return_dict: bool = True):
        """``batch_size`` samples (classes in turn, or ``class_labels``, for a class-conditional model).

        ``output_type``: ``"pt"`` (a tensor ``(B, C, H, W)`` in ``[-1, 1]``), ``"np"`` (``(B, H, W, C)`` in
        ``[0, 1]``) or ``"pil"``.
        """
        cov = self.spectrum.covariance
        net = Network(self.backbone, cov.shape, self.config.num_classes).eval()
        proc = VPProcess(cov, self.scheduler.config.schedule, t_min=self.scheduler.config.t_min)
        device = self.backbone.device
        labels = None
        if net.num_classes is not None:
            labels = (torch.as_tensor(class_labels) if class_labels is not None
                      else torch.arange(batch_size) % net.num_classes).to(device)
            batch_size = len(labels)
        denoiser = sampler_denoiser(net, proc, self.config.prediction, labels, guidance_scale, self.config.sample_clip)
        x = diffusers_interop.initial_latents(self.scheduler, cov, batch_size, generator, device)
        self.scheduler.set_timesteps(num_inference_steps)
        for t in self.progress_bar(self.scheduler.timesteps.tolist()):
            tb = torch.full((batch_size,), t, device=device, dtype=x.dtype)
            d = proc.consistent(denoiser(x, tb), x, tb)
            x = diffusers_interop.step(self.scheduler, cov, d, t, x, generator, eta=eta)
        if self.vae is not None:
            x = VAE(self.vae).decode(x)
        images = x if output_type == "pt" else (x.clamp(-1, 1) / 2 + 0.5).permute(0, 2, 3, 1).float().cpu().numpy()
        if output_type == "pil":
            images = self.numpy_to_pil(images)
        return ImagePipelineOutput(images=images) if return_dict else (images,)


def pipeline_of(run: Run) -> SAGDPipeline:
    """The pipeline that samples ``run`` (its EMA network, process and sampling settings)."""
    scheduler = SAGDScheduler(schedule=run.cfg.schedule, t_min=run.proc.t_min)
    return SAGDPipeline(run.net.backbone, scheduler, SAGDSpectrum.of(run.proc.cov),
                        vae=None if run.vae is None else run.vae.model, prediction=run.cfg.prediction,
                        sample_clip=run.cfg.sample_clip, num_classes=run.net.num_classes)


def export(run: Run, folder: str | Path) -> Path:
    """Write ``run`` as a ``save_pretrained`` folder that stock ``DiffusionPipeline.from_pretrained`` loads."""
    folder = Path(folder)
    pipe = pipeline_of(run)
    pipe.save_pretrained(folder, safe_serialization=True)
    index = folder / "model_index.json"
    config = json.loads(index.read_text())
    config["_class_name"] = [PIPELINE_FILE, "SAGDPipeline"]
    index.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (folder / f"{PIPELINE_FILE}.py").write_text(
        '"""Written by `sagd export`: the pipeline class lives in the sagd package (pip install sagd)."""\n\n'
        "from sagd.pipeline import SAGDPipeline  # noqa: F401\n")
    return folder
