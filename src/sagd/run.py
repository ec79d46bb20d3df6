"""A trained run as one object: its config, EMA network and process, and how to sample and score it.

Commands (``sample``, ``eval``, ``demo``, ``export``) and benchmarks load runs through this module::

    run = load_run("runs/fmnist", device="cuda")
    x, labels = run.sample(64, torch.Generator("cuda").manual_seed(0))   # (64, C, H, W) in [-1, 1]
    x = run.draw(2000, g, method="ddim", steps=50, batch_size=256)       # on the CPU, progress bars
    features = run.extractor()                                           # FID features of its data

``generate`` is the one sampling routine, also used by the training loop for its sample grids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checkpoint, diffusion, finite, resume
from .config import TrainConfig, load_config
from .diffusion import frequency_parametrization, frequency_samplers, frequency_spec
from .diffusion.frequency import FrequencyProcess
from .latent import VAE
from .models import Network, compile_network, guided_denoiser
from .spectral import SpectralCovariance

PRIOR = "prior"  # checkpoint tensors {"mean", "power"} of a process whose prior is fitted to data (inverse heat)


def build_process(cfg: TrainConfig, cov: SpectralCovariance,
                  prior: dict[str, torch.Tensor] | None = None) -> diffusion.VPProcess | FrequencyProcess:
    """The forward process of ``cfg``: the ``VPProcess`` of ``cov`` for ``process: sagd``, else the frequency-diagonal
    process its spec names, for images of ``cov.shape``, starting from ``prior`` (``{"mean", "power"}``) if given."""
    proc = frequency_spec.build(cfg.process, cov.shape)
    if proc is None:
        return diffusion.VPProcess(cov, cfg.schedule, cfg.noise)
    return proc if prior is None else proc.with_prior(prior["mean"], prior["power"])


def check_device(proc, device) -> None:
    """Frequency-diagonal processes compute their coefficients on the CPU and run there only (for now)."""
    if isinstance(proc, FrequencyProcess) and torch.device(device).type != "cpu":
        raise ValueError(f"process {proc.name}: frequency-diagonal processes run on the CPU only, got device {device}")


def sampler_denoiser(net: Network, proc: diffusion.VPProcess | FrequencyProcess, prediction: str,
                     labels: torch.Tensor | None = None, guidance: float = 1.0, clip: float | None = None):
    """The denoiser to sample ``net`` with: unconditional, or for class ``labels`` with CFG ``guidance``;
    ``clip`` clamps ``D`` (``TrainConfig.sample_clip``)."""
    if isinstance(proc, FrequencyProcess):
        return frequency_parametrization.Denoiser(net, proc, prediction, clip)
    if net.num_classes is None or labels is None:
        return diffusion.Denoiser(net, proc, prediction, clip)
    return guided_denoiser(net, proc, prediction, labels, guidance, clip)


def sample_process(denoiser, proc: diffusion.VPProcess | FrequencyProcess, n: int, method: str, **kwargs):
    """``diffusion.sample`` for a ``VPProcess``, ``frequency_samplers.sample`` for a ``FrequencyProcess``; a method the
    latter lacks is one line naming the process and the methods it has."""
    if not isinstance(proc, FrequencyProcess):
        return diffusion.sample(denoiser, proc, n, method=method, **kwargs)
    if method not in frequency_samplers.METHODS:
        raise ValueError(f"method {method!r}: the {proc.name} process samples with the per-frequency "
                         f"{', '.join(frequency_samplers.METHODS)}")
    return frequency_samplers.sample(denoiser, proc, n, method=method, **kwargs)


@torch.no_grad()
def generate(net: Network, proc: diffusion.VPProcess | FrequencyProcess, prediction: str, n: int, method: str, steps: int,
             generator: torch.Generator, guidance: float = 1.0, clip: float | None = None, progress: bool = False,
             t_grid: torch.Tensor | None = None):
    """``n`` samples ``(n, C, H, W)`` and their labels ``(n,)`` (classes in turn; ``None`` if unconditional);
    ``t_grid``: an explicit time grid (``diffusion.optimized_grid``) instead of the method's default."""
    device = next(net.parameters()).device
    labels = None if net.num_classes is None else torch.arange(n, device=device) % net.num_classes
    was_training = net.training
    net.eval()
    x = sample_process(sampler_denoiser(net, proc, prediction, labels, guidance, clip), proc, n, method,
                       steps=steps, generator=generator, device=device, progress=progress, t_grid=t_grid)
    net.train(was_training)
    finite.check_samples(x, net)
    return x, labels


@dataclass
class Run:
    """A run folder's newest checkpoint, loaded: ``net`` is the EMA network in eval mode."""

    dir: Path
    cfg: TrainConfig
    net: Network
    proc: diffusion.VPProcess | FrequencyProcess
    state: dict
    vae: VAE | None = None  # latent runs: samples are decoded with it

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape ``(C, H, W)`` of a sample: ``proc.shape``, or the decoded one in a latent run."""
        return self.proc.shape if self.vae is None else self.vae.image_shape(self.proc.shape)

    @property
    def step(self) -> int:
        return self.state["step"]

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def sample(self, n: int, generator: torch.Generator, method: str | None = None, steps: int | None = None,
               guidance: float = 1.0, progress: bool = False,
               t_grid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` samples ``(n, C, H, W)`` on the run's device and their labels (``generate``; decoded in a
        latent run); ``method`` and ``steps`` default to the run's ``sample_method`` and ``sample_steps``, the
        clamp is its ``sample_clip``."""
        cfg = self.cfg
        x, labels = generate(self.net, self.proc, cfg.prediction, n, method or cfg.sample_method,
                             steps or cfg.sample_steps, generator, guidance, cfg.sample_clip, progress, t_grid)
        return (x if self.vae is None else self.vae.decode(x)), labels

    def draw(self, n: int, generator: torch.Generator, method: str, steps: int, batch_size: int) -> torch.Tensor:
        """``n`` unguided samples ``(n, C, H, W)`` on the CPU, ``batch_size`` at a time (progress bars: images, steps)."""
        out = []
        with tqdm(total=n, desc=f"{method} {steps} steps", unit="img", dynamic_ncols=True) as bar:
            for start in range(0, n, batch_size):
                x, _ = self.sample(min(batch_size, n - start), generator, method, steps, progress=True)
                out.append(x.cpu())
                bar.update(len(x))
        return torch.cat(out)

    def extractor(self, choice: str | None = None, inception_weights: str | None = None):
        """The feature space ``--features choice`` names for this run's samples (``metrics.extractor_for``)."""
        from .metrics import extractor_for  # scipy and friends: not needed to train or sample

        return extractor_for(choice, self.cfg.dataset, self.image_shape, self.device, inception_weights)


def load_run(run_dir: str | Path, device="cpu", compile: bool = False, channels_last: bool = False) -> Run:
    """The newest intact checkpoint of ``run_dir``: config, EMA network (eval mode, on ``device``), process, state.

    A damaged newer checkpoint is reported and skipped; a checkpoint of another run, or with
    non-finite weights, is a ``ValueError`` naming the file (``resume``). ``compile``: sample with the
    network ``torch.compile``d (inductor; C++ kernels on a CPU; the first batch of each size compiles);
    ``channels_last``: its weights channels-last. Both are float32 paths with the same results to round-off.
    """
    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    ckpt = resume.find(run_dir, cfg.to_dict(), checkpoint.report)
    state = checkpoint.load_state(ckpt)
    resume.require(state, ckpt, ("num_classes",))
    cov = SpectralCovariance.from_state_dict(checkpoint.load_tensors(ckpt, "covariance"))
    # a preset is code, checked against the tensors; a config file may be gone since: the checkpoint keeps it
    model = state["backbone"] if str(cfg.model).endswith(".json") and "backbone" in state else cfg.model
    net = Network(model, cov.shape, state["num_classes"])
    resume.load_into(net, ckpt, "ema")
    net = net.to(device).eval()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if compile:
        compile_network(net, device)
    vae = VAE.load(cfg.vae, device) if cfg.vae else None
    prior = checkpoint.load_tensors(ckpt, PRIOR) if frequency_spec.needs_data_prior(cfg.process) else None
    proc = build_process(cfg, cov, prior)
    check_device(proc, device)
    return Run(run_dir, cfg, net, proc, state, vae)
