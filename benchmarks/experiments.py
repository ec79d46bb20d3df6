"""The experiments of the suite (issue 12): budgets, arms and runs, as data.

* **A — does the spectrum help, and why** (the paper's Table 1 at this machine's scale):
  isotropic; the paper exactly (α ∈ {-0.06, -0.02, +0.04}, ``k0=1e-10``, per-draw noise); its
  two controls (the tilt without the DC quirk; offset noise with the same DC share); data-matched
  (EqualSNR); a strong tilt; and the paper's α = -0.06 with white ``eps`` targets.
* **B — selective omission** (the paper's Table 2): data corrupted on the fly in one band;
  isotropic on corrupted data; the paper's mixture (energy confound kept); the same normalised;
  the ``project`` variant; and isotropic on clean data (A's isotropic run) as the reference.
* **C — samplers on trained models**: FID against network evaluations for every sampler, on
  A's isotropic model and on A's best arm.

A seed fixes the network's initialisation and the data order and is shared across arms, so arm
differences are paired.

The budgets ``smoke``, ``cpu`` and ``gpu`` ran on Fashion-MNIST before the protocol existed (seeds
were added after verdicts were read). ``PLANS`` are **pre-registered**: each fixes its data set,
arms, seeds, bands, primary metric and equivalence margin before its first run, and
``results_page.py`` gives no verdict on a comparison until every planned run of it exists in one
machine class. A plan is never edited after its runs start; more seeds make a new plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from sagd import spectral
from sagd.diffusion import METHODS

SHAPE = (1, 32, 32)  # Fashion-MNIST padded to the paper's 32×32, where its DC figures hold
DATASET = "fashion_mnist"
# corruption bands, Nyquist units (names without "_": an arm is "<band>_<variant>")
BANDS = {"low": (0.1, 0.2), "high": (0.8, 0.9), "mid": (0.4, 0.5), "upper": (0.5, 0.6)}
NFES = (5, 10, 20, 50, 100)


@dataclass(frozen=True)
class Budget:
    """What one run costs: training and scoring settings shared by every arm."""

    model: str
    steps: int
    batch_size: int
    lr: float
    warmup: int
    samples: int  # generated images scored per run (and real images for precision/recall)
    c_samples: int | None = None  # per evaluation of C (7 samplers × 5 NFEs × 2 models); ``None``: ``samples``
    sampler: tuple[str, int] = ("dpmpp_2m", 25)
    probe_every: int = 250
    checkpoint_every: int = 250
    seeds: tuple[int, ...] = (0, 1, 2)
    bands: tuple[str, ...] = ("low", "high")
    nfes: tuple[int, ...] = NFES
    # run after everything above: more seeds for A's decisive arms (``DECISIVE``), where three seeds
    # cannot resolve the paper's arm against its controls, and more corruption bands for B
    more_seeds: tuple[int, ...] = ()
    more_bands: tuple[str, ...] = ()

    @property
    def images(self) -> int:
        return self.steps * self.batch_size


BUDGETS = {
    # code paths only: a test runs it for a couple of steps
    "smoke": Budget("tiny", steps=2, batch_size=8, lr=1e-3, warmup=0, samples=32, sampler=("dpmpp_2m", 3),
                    probe_every=1, checkpoint_every=2, seeds=(0,), bands=("low",), nfes=(2, 4)),
    # one run ≈ 10–15 min of 2 CPU cores (train ≈ 96k images, score 2,000 samples)
    # C at 500 samples: its 70 evaluations cost 2,590 NFE of the network, about 2.7 h of one core
    "cpu": Budget("tiny", steps=1500, batch_size=64, lr=1e-3, warmup=100, samples=2000, c_samples=500,
                  more_seeds=(3, 4, 5), more_bands=("mid",)),
    # the paper's UNet widths at 32×32 on one GPU, ≥ 50k images per arm
    "gpu": Budget("base", steps=1000, batch_size=128, lr=4e-4, warmup=100, samples=5000, checkpoint_every=1000),
}


# the paper's arm, its two controls and the baseline: the arms that decide "why"
DECISIVE = ("isotropic", "paper_a-0.06", "tilt_a-0.06", "offset_dc")


def offset_matching_paper_dc(alpha: float = -0.06) -> float:  # SHAPE as every plan has it
    """The offset-noise std whose DC share equals the paper's power law's at ``SHAPE``:
    ``w_DC / mean(w_k≠0)`` of ``power_law(alpha, k0=1e-10)`` equals ``1 + std² N`` of ``offset``."""
    w = spectral.power_law(SHAPE, alpha, k0=1e-10).weights[0]
    ratio = (w[0, 0] / ((w.sum() - w[0, 0]) / (w.numel() - 1))).item()
    return math.sqrt((ratio - 1) / w.numel())


@dataclass(frozen=True)
class Arm:
    """One configuration of an experiment: ``TrainConfig`` overrides and a label for tables."""

    name: str
    label: str
    config: dict = field(default_factory=dict)
    band: str | None = None  # experiment B: the corrupted band's name


def _paper(alpha: float) -> dict:
    return {"spectrum": f"power_law:alpha={alpha:g},k0=1e-10", "noise": "per_draw"}


def arms_a() -> list[Arm]:
    """The Fashion-MNIST budgets' arms of A (their order is the tables' order)."""
    std = offset_matching_paper_dc()
    return [
        Arm("isotropic", "isotropic", {"spectrum": "isotropic"}),
        Arm("paper_a-0.06", "paper α=-0.06", _paper(-0.06)),
        Arm("paper_a-0.02", "paper α=-0.02", _paper(-0.02)),
        Arm("paper_a+0.04", "paper α=+0.04", _paper(0.04)),
        Arm("tilt_a-0.06", "α=-0.06 without the DC quirk", {"spectrum": "power_law:alpha=-0.06", "noise": "per_draw"}),
        Arm("offset_dc", f"offset noise, std {std:.3f} (α=-0.06's DC share)",
            {"spectrum": f"offset:std={std:.4f}", "noise": "per_draw"}),
        Arm("data_matched", "data-matched γ=1 (EqualSNR)", {"spectrum": "data_matched:gamma=1"}),
        Arm("tilt_a-0.5", "strong tilt α=-0.5", {"spectrum": "power_law:alpha=-0.5"}),
        Arm("paper_a-0.06_eps", "paper α=-0.06, white eps target", {**_paper(-0.06), "prediction": "eps"}),
    ]


def arms_b(bands) -> list[Arm]:
    """B's arms per band; its clean reference is A's isotropic run (the same configuration)."""
    arms = []
    for band in bands:
        lo, hi = BANDS[band]
        corrupt = {"corrupt": {"low": lo, "high": hi, "gamma": 1.0, "unit": "nyquist"}}
        omit = f"omission:low={lo},high={hi}"
        arms += [
            Arm(f"{band}_isotropic", f"isotropic [{lo}, {hi}]", {**corrupt, "spectrum": "isotropic"}, band),
            Arm(f"{band}_paper", f"paper omission (energy {0.5:g}) [{lo}, {hi}]",
                {**corrupt, "spectrum": omit + ",normalize=false", "noise": "per_draw"}, band),
            Arm(f"{band}_normalised", f"omission, energy normalised [{lo}, {hi}]",
                {**corrupt, "spectrum": omit, "noise": "per_draw"}, band),
            Arm(f"{band}_project", f"omission, normalised, project [{lo}, {hi}]",
                {**corrupt, "spectrum": omit, "noise": "per_draw", "omission": "project"}, band),
        ]
    return arms


def arms_c(models: list[str], nfes) -> list[Arm]:
    """Sampler × NFE-budget evaluations of A's trained ``models`` (arm names); no training. A sampler takes the
    most steps its budget allows (``diffusion.steps_for_nfe``: Heun's N evaluations or N - 1). The models
    alternate, so that parallel workers start on every model at once (one may have to train it)."""
    return [Arm(f"{m}__{method}__{nfe}", f"{m}, {method}, {nfe} NFE", {"model_arm": m, "method": method, "nfe": nfe})
            for method in METHODS for nfe in nfes for m in models]


BASE_CONFIG = dict(dataset=DATASET, pad_to=SHAPE[-1], prediction="colored_eps", ema_decay=0.999,
                   sample_method="dpmpp_2m", sample_steps=25, sample_every=10**9, log_every=50)


# ---------------------------------------------------------------------------- pre-registered plans
@dataclass(frozen=True)
class Plan:
    """A pre-registered experiment plan: everything its verdicts depend on, fixed before its first run.

    ``alpha`` is the paper's best power law on ``dataset`` (its arm ``paper_a<alpha>``); A's arms are
    isotropic, that arm, its two controls (offset noise with its DC share; its tilt without the DC
    quirk) and α = +0.04. ``decisive_seeds`` go to the first four, ``seeds`` to α = +0.04 and to
    every arm of B (``bands``: isotropic, the paper's mixture, the energy-normalised mixture).

    ``margin``: the equivalence margin δ of "explained by a control" (two one-sided tests on the 90 %
    interval of paper − control), as a fraction of the paper arm's mean gain over isotropic on the
    same metric. ``metrics``: the primary metric first (the paper's Inception-768 FID), then the
    in-domain FID; Holm's correction runs over the primary metric's headline tests.
    """

    name: str  # the results folder: benchmarks/results/suite/<name>/
    dataset: str
    budget: str
    alpha: float
    decisive_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    seeds: tuple[int, ...] = (0, 1, 2)
    bands: tuple[str, ...] = ()
    margin: float = 0.5
    metrics: tuple[str, ...] = ("inception_768", "fid")
    precision: str = "fp32"  # every run of a plan; a bf16 plan is another plan
    device: str = "cpu"  # where every run trains and samples ("cpu" or "cuda"); a GPU plan is another plan
    paper: dict = field(default_factory=dict)  # the paper's own figures (Inception-768 FID), for the page

    @property
    def decisive(self) -> tuple[str, ...]:
        return ("isotropic", self.paper_arm, f"tilt_a{self.alpha:+g}", "offset_dc")

    @property
    def paper_arm(self) -> str:
        return f"paper_a{self.alpha:+g}"

    def arms_a(self) -> list[Arm]:
        std = offset_matching_paper_dc(self.alpha)
        return [
            Arm("isotropic", "isotropic", {"spectrum": "isotropic"}),
            Arm(self.paper_arm, f"paper α={self.alpha:+g}", _paper(self.alpha)),
            Arm(f"tilt_a{self.alpha:+g}", f"α={self.alpha:+g} without the DC quirk",
                {"spectrum": f"power_law:alpha={self.alpha:g}", "noise": "per_draw"}),
            Arm("offset_dc", f"offset noise, std {std:.3f} (α={self.alpha:+g}'s DC share)",
                {"spectrum": f"offset:std={std:.4f}", "noise": "per_draw"}),
            Arm("paper_a+0.04", "paper α=+0.04", _paper(0.04)),
        ]

    def arms_b(self) -> list[Arm]:
        return [arm for arm in arms_b(self.bands) if not arm.name.endswith("_project")]

    def runs(self) -> list[tuple[str, Arm, int]]:
        """Every planned run ``(experiment, arm, seed)`` in the order the suite takes them: A's decisive
        arms first, seed by seed, so the headline comparison completes before anything else starts; then
        the rest of A and B, seed by seed. Either way a stopped suite leaves paired results. The order
        decides only when a run happens, never which runs the plan holds."""
        decisive = [("A", arm, seed) for seed in self.decisive_seeds
                    for arm in self.arms_a() if arm.name in self.decisive]
        rest = []
        for seed in self.seeds:
            rest += [("A", arm, seed) for arm in self.arms_a() if arm.name not in self.decisive]
            rest += [("B", arm, seed) for arm in self.arms_b()]
        return decisive + rest


PLANS = {
    # the paper's Table 1 figures are Inception-768 FID at 50k samples on its own UNet: context, not targets
    "mnist": Plan("mnist", "mnist", "cpu", alpha=-0.06, bands=("low", "upper"),
                  paper={"isotropic": 0.42, "paper": 0.28, "omission": "baseline 3.0–3.7, omission 2.5–3.0"}),
    "quickdraw": Plan("quickdraw", "quickdraw", "cpu", alpha=-0.04, paper={"isotropic": 0.60, "paper": 0.49}),
}
# The same plans on a lent GPU, float32 (TF32 off), their own machine class: registered on 2026-12-07, before any of
# their runs, so that a lease or two train a whole plan (a CPU plan takes tens of core-hours). Inception scores them
# on a CPU afterwards (``suite.py inception``; its weights exceed what a lease carries). Never pooled with the CPU plans.
PLANS.update({f"{name}_gpu": replace(plan, name=f"{name}_gpu", device="cuda") for name, plan in PLANS.items()})
