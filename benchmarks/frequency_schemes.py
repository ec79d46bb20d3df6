"""Every frequency-shaped diffusion on one process, one set of samplers, one exact evaluator (docs/method.md §11).

The data: for Fashion-MNIST, MNIST and Quick, Draw! (training splits, 28×28), the Gaussian with the data's
mean image and mean power spectrum (``GaussianData.from_images``). The schemes, all as
``diffusion.frequency.FrequencyProcess``: SAGD with isotropic noise (DDPM; on the linear and the cosine
schedule), the paper's power law (α = -0.06, ``k0 = 1e-10``), a red power law (α = -0.5), offset noise (0.1),
EqualSNR (``data_matched:gamma=1``, Falck et al. 2025), pyramid noise's expected spectrum (discount 0.8);
blurring diffusion (Hoogeboom & Salimans 2022: σ_B,max = 20, d_min = 0.001, cosine schedule at log-SNR ±10);
inverse heat dissipation (Rissanen et al. 2023: σ_B 0.5 … 20, δ = 0.01) started from its exact terminal law
``p_1`` (its ``a_1(0) = 1`` keeps the data's mean; the paper fits that prior to blurred training images). Every other
scheme starts from its own prior ``N(0, Fᴴ diag(s_1²) F)``. For each, DDIM, DPM-Solver++(2M) and (3M) on the
default grid (uniform in the scheme's reference log-SNR) at 10, 20 and 50 NFE: the exact
``KL(data ‖ samples)`` in nats per image, no Monte Carlo. This measures the sampler's discretisation error
with a perfect denoiser, not what a trained network reaches. A few seconds per data set at one thread.
Writes ``benchmarks/results/frequency_schemes.{json,md}``.

    OMP_NUM_THREADS=1 python benchmarks/frequency_schemes.py [--datasets fashion_mnist mnist quickdraw]
"""

from __future__ import annotations

import argparse
import json

import torch

from common import RESULTS, machine, write_table
from sagd import diffusion, spectral
from sagd.data import load_dataset
from sagd.diffusion import exact
from sagd.diffusion import frequency as fq
from sagd.diffusion import frequency_exact as fe

SHAPE = (1, 28, 28)
METHODS = ("ddim", "dpmpp_2m", "dpmpp_3m")
NFES = (10, 20, 50)
DATASETS = ("fashion_mnist", "mnist", "quickdraw")


def schemes(images: torch.Tensor, data: exact.GaussianData) -> dict:
    def sagd(spec, schedule="linear"):
        return fq.from_vp(diffusion.VPProcess(spectral.from_spec(spec, SHAPE, data=images), schedule))

    return {
        "isotropic (DDPM), linear": sagd("isotropic"),
        "isotropic (DDPM), cosine": sagd("isotropic", "cosine"),
        "SAGD power_law:alpha=-0.06,k0=1e-10": sagd("power_law:alpha=-0.06,k0=1e-10"),
        "SAGD power_law:alpha=-0.5": sagd("power_law:alpha=-0.5"),
        "offset:std=0.1": sagd("offset:std=0.1"),
        "EqualSNR data_matched:gamma=1": sagd("data_matched:gamma=1"),
        "pyramid:discount=0.8": sagd("pyramid:discount=0.8"),
        "blurring diffusion": fq.blurring(SHAPE),
        "inverse heat (exact prior)": fe.with_exact_prior(data, fq.inverse_heat(SHAPE)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    args = parser.parse_args()
    rows = []
    for name in args.datasets:
        images = load_dataset(name, "train").images
        data = exact.GaussianData.from_images(images)
        for scheme, proc in schemes(images, data).items():
            for method in METHODS:
                for nfe in NFES:
                    result = fe.evaluate(data, proc, method, diffusion.steps_for_nfe(method, nfe))
                    rows.append({"dataset": name, "scheme": scheme, "process": repr(proc), "method": method,
                                 **result})
                    print(f"{name:14s} {scheme:38s} {method:9s} {nfe:3d} NFE  KL {result['kl']:.4g}", flush=True)
    result = {"shape": SHAPE, "methods": METHODS, "nfe": NFES, "datasets": args.datasets, "rows": rows,
              "machine": machine()}
    (RESULTS / "frequency_schemes.json").write_text(json.dumps(result, indent=1))

    table = ["Exact `KL(data ‖ samples)` in nats per image (28×28 = 784 dimensions) on the Gaussian with each data "
             "set's mean and power spectrum, exact denoiser, default grids; lower is better. Inverse heat starts "
             "from its exact terminal law, every other scheme from its own prior.", ""]
    names = list(dict.fromkeys(r["scheme"] for r in rows))
    for dataset in args.datasets:
        table += [f"**{dataset}**", "", "| scheme | " + " | ".join(f"{m} {n}" for m in METHODS for n in NFES) + " |",
                  "|---|" + "---:|" * (len(METHODS) * len(NFES))]
        for scheme in names:
            cells = {(r["method"], r["nfe"]): r["kl"] for r in rows if r["dataset"] == dataset and r["scheme"] == scheme}
            table.append(f"| {scheme} | " + " | ".join(f"{cells[(m, n)]:.3g}" for m in METHODS for n in NFES) + " |")
        table.append("")
    write_table("frequency_schemes", "Frequency-shaped diffusions side by side: exact KL of the samplers", table,
                result)


if __name__ == "__main__":
    main()
