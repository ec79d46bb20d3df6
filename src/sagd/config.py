"""``TrainConfig``: everything a training run needs, as one dataclass that round-trips through YAML.

A run directory's ``config.yaml`` is ``TrainConfig.to_dict()``; ``load_config`` reads one back,
rejecting unknown keys and ill-typed values with a ``ValueError`` that names the key.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from .checkpoint import write_text_atomic
from .data import parse_dataset_spec
from .diffusion import METHODS, PREDICTIONS
from .diffusion import frequency_parametrization, frequency_samplers, frequency_spec
from .diffusion.parametrization import OMISSIONS
from .diffusion.process import NOISE_MODES
from .diffusion.schedules import SCHEDULES
from .models import check_model
from .spectral import parse_spec
from .spectral.grid import UNITS

PROBE_SPACINGS = ("linear", "geometric")

LOADINGS = ("auto", "memory", "stream")
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
# What ``sagd train`` switches on by itself for a new run on a CPU when neither its config file nor a flag sets it
# (``commands.train``; README, "CPU speed"). Only float32 paths that train the same network to round-off
# (tests/test_cpu_speed.py) belong here, each set True only once ``benchmarks/suite_run_cost.py`` measured it
# faster on an idle core of an Intel and of an AMD CPU. None has been measured yet: all off.
CPU_AUTO = {"compile": False, "channels_last": False}


@dataclass
class Corruption:
    """Band-confined noise added to every training batch: ``x + gamma · e[low, high]`` (docs/method.md §7, §10)."""

    low: float
    high: float
    gamma: float = 1.0
    unit: str = "nyquist"


@dataclass
class TrainConfig:
    """A training run. ``batch_size`` is per process and per micro-step: one optimizer step sees
    ``batch_size × grad_accum × processes`` images."""

    out: str = "runs/sagd"
    # data
    dataset: str = "fashion_mnist"
    data_root: str | None = None
    pad_to: int | None = None  # pad images with background (-1) to pad_to × pad_to, e.g. 28 -> 32
    corrupt: Corruption | None = None
    vae: str | None = None  # an AutoencoderKL folder: diffusion in its latent space (sagd.latent)
    latents: str | None = None  # the train split's latents, precomputed by sagd encode (needs vae)
    data_loading: str = "auto"  # memory | stream (folder, arrow data sets, latents) | auto: stream large sets
    data_workers: int = 2  # DataLoader worker processes of a stream
    # diffusion
    process: str = frequency_spec.DEFAULT  # sagd (the spectrum's VPProcess), or blurring[:...] | inverse_heat[:...]
    spectrum: str = "isotropic"
    schedule: str = "linear"
    noise: str = "exact"
    prediction: str = "eps"
    omission: str = "noise_only"
    # model
    model: str = "tiny"
    class_conditional: bool = False
    label_dropout: float = 0.1
    # optimisation
    steps: int = 10_000
    max_minutes: float | None = None
    batch_size: int = 64
    grad_accum: int = 1
    lr: float = 2e-4
    warmup: int = 500
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    skip_nonfinite: int = 0  # drop up to this many consecutive steps with a NaN/inf loss or gradient; 0: stop
    mixed_precision: str = "auto"
    compile: bool = False  # torch.compile the network (inductor: CUDA kernels, or C++ on a CPU; a slow first step)
    channels_last: bool = False  # channels-last weights: faster convolutions on recent GPUs with bf16 (CPUs: measure)
    seed: int = 0
    # logging, samples, checkpoints
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 1000
    checkpoint_minutes: float | None = 15.0  # also checkpoint after this much wall-clock time; null: steps only
    keep_checkpoints: int = 3
    sample_n: int = 64
    sample_method: str = "ddim"
    sample_steps: int = 50
    sample_clip: float | None = 1.0  # clamp D to [-sample_clip, sample_clip] while sampling; null: no clamp
    probe_every: int = 250  # learning order: band-split denoising error of the EMA model; 0: off
    probe_spacing: str = "linear"  # linear: every probe_every steps; geometric: at probe_every × 1, 2, 4, 8, ...
    probe_n: int = 64  # held-out images in the probe batch

    def validate(self) -> "TrainConfig":
        """Check every value before any work starts; raises ``ValueError`` naming the key."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"config {f.name}: must be a finite number, got {value}")
        if not self.out.strip():
            raise ValueError("config out: must name a folder, got an empty string")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"config seed: must be in [0, 2**63), got {self.seed}")
        parse_spec(self.spectrum)
        parse_dataset_spec(self.dataset)
        check_model(self.model)  # a config file is read when the network is built
        for key, allowed in (
            ("schedule", tuple(SCHEDULES)),
            ("noise", NOISE_MODES),
            ("prediction", PREDICTIONS),
            ("omission", OMISSIONS),
            ("mixed_precision", MIXED_PRECISION),
            ("data_loading", LOADINGS),
            ("sample_method", tuple(METHODS)),
            ("probe_spacing", PROBE_SPACINGS),
        ):
            if getattr(self, key) not in allowed:
                raise ValueError(f"config {key}: must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        for key in ("steps", "batch_size", "grad_accum", "log_every", "sample_every", "checkpoint_every",
                    "keep_checkpoints", "sample_n", "sample_steps", "probe_n"):
            if getattr(self, key) < 1:
                raise ValueError(f"config {key}: must be >= 1, got {getattr(self, key)}")
        for key in ("lr", "grad_clip"):
            if not getattr(self, key) > 0:
                raise ValueError(f"config {key}: must be > 0, got {getattr(self, key)}")
        for key in ("warmup", "weight_decay", "probe_every", "skip_nonfinite", "data_workers"):
            if getattr(self, key) < 0:
                raise ValueError(f"config {key}: must be >= 0, got {getattr(self, key)}")
        for key in ("ema_decay", "label_dropout"):
            if not 0 <= getattr(self, key) < 1:
                raise ValueError(f"config {key}: must be in [0, 1), got {getattr(self, key)}")
        if self.sample_clip is not None and not self.sample_clip > 0:
            raise ValueError(f"config sample_clip: must be > 0 or null, got {self.sample_clip}")
        if self.pad_to is not None and self.pad_to < 1:
            raise ValueError(f"config pad_to: must be >= 1 or null, got {self.pad_to}")
        if self.latents is not None and self.vae is None:
            raise ValueError("config latents: precomputed latents need the vae that decodes them (set vae)")
        if self.vae is not None and self.corrupt is not None:
            raise ValueError("config corrupt: band corruption acts on pixels and is not available with vae")
        for key in ("max_minutes", "checkpoint_minutes"):
            if getattr(self, key) is not None and not getattr(self, key) > 0:
                raise ValueError(f"config {key}: must be > 0 or null, got {getattr(self, key)}")
        self._validate_process()
        if self.corrupt is not None:
            if self.corrupt.unit not in UNITS:
                raise ValueError(f"config corrupt.unit: must be one of {', '.join(UNITS)}, got {self.corrupt.unit!r}")
            if not 0 <= self.corrupt.low < self.corrupt.high:
                raise ValueError(f"config corrupt: need 0 <= low < high, got low={self.corrupt.low}, high={self.corrupt.high}")
            if not 0 <= self.corrupt.gamma < math.inf:
                raise ValueError(f"config corrupt.gamma: must be a finite number >= 0, got {self.corrupt.gamma}")
        return self

    def _validate_process(self) -> None:
        """A frequency-diagonal ``process`` (docs/method.md §11) with the keys it cannot honour refused."""
        try:
            frequency_spec.build(self.process, (1, 8, 8))  # the spec's names and values, on a small grid
        except ValueError as e:
            raise ValueError(f"config {e}") from None
        name = frequency_spec.parse_process(self.process)[0]
        if name == frequency_spec.DEFAULT:
            return
        refused = (
            ("spectrum", self.spectrum != "isotropic", f"{name} noises every frequency alike (white); spectrum must be "
                                                       "isotropic"),
            ("schedule", self.schedule != "linear", f"read by the sagd process only; {name} has its own"
                                                    + (" (blurring:schedule=..., cosine by default)" if name == "blurring"
                                                       else "")),
            ("noise", self.noise != "exact", f"per_draw normalises SAGD's colored noise; {name} needs noise: exact"),
            ("prediction", self.prediction not in frequency_parametrization.PREDICTIONS,
             f"{name} trains {', '.join(frequency_parametrization.PREDICTIONS)} targets per frequency"),
            ("prediction", name in frequency_spec.DATA_PRIOR and self.prediction == "eps",
             f"{name} blurs high frequencies to a_t = 0 (below float64's range): ε cannot give D = E[x_0 | x_t] there; "
             "use x0 or v"),
            ("omission", self.omission != "noise_only", f"{name} noises every frequency: nothing to omit"),
            ("vae", self.vae is not None, f"{name} blurs pixels; latent runs are not supported"),
            ("class_conditional", self.class_conditional, f"{name} runs are unconditional (no guided sampler for it)"),
            ("sample_method", self.sample_method not in frequency_samplers.METHODS,
             f"{name} samples with the per-frequency {', '.join(frequency_samplers.METHODS)}"),
        )
        for key, bad, why in refused:
            if bad:
                raise ValueError(f"config {key}: {why}, got {getattr(self, key)!r} (process {self.process!r})")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "TrainConfig":
        """Build from plain values (YAML); unknown keys and wrong types raise ``ValueError``."""
        return _build(cls, raw, "config").validate()

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes`` applied (``None`` values are ignored: unset command-line flags)."""
        raw = self.to_dict()
        raw.update({k: v for k, v in changes.items() if v is not None})
        return TrainConfig.from_dict(raw)


def _build(cls, raw, where: str):
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping of keys to values, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known, key=str)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
    values = {key: _coerce(hints[key], value, f"{where} {key}") for key, value in raw.items()}
    try:
        return cls(**values)
    except TypeError as e:  # a required field is missing
        raise ValueError(f"{where}: {e}") from None


def _coerce(hint, value, where: str):
    """``value`` as type ``hint`` (int, float, bool, str, a dataclass, or ``X | None``)."""
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else _build(hint, value, where)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[hint]
    if not ok:
        raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
    return hint(value)


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML config; missing keys take the defaults of ``TrainConfig``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(f"config {str(path)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise ValueError(f"config {str(path)!r} is nested too deeply to be a config") from None
    try:
        return TrainConfig.from_dict(raw)
    except ValueError as e:  # e.g. a run folder written by another version: name the file
        raise ValueError(f"{str(path)!r}: {e}") from None


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write ``cfg`` as YAML, atomically (a resumed run rewrites its config.yaml; a kill must not cut it)."""
    write_text_atomic(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
