"""Tolerances of float32 comparisons between two computation paths, derived on the machine that runs the test
(tests/README.md, "Comparing two computation paths", rule 2b).

``float32_spread(reference, *inputs)`` is the float32 rounding of the reference path itself: the largest difference
between the reference evaluated on the inputs as given (float32) and on the same values in float64. It is measured
with the kernels this machine selects (AVX-512, AVX2, scalar; oneDNN or not), so a tolerance of
``SPREAD_FACTOR × spread`` grows and shrinks with them instead of being a constant that held on one CPU.
"""

from collections.abc import Callable

import torch

EPS32 = torch.finfo(torch.float32).eps

# The path under test may round a few times more than the reference: another summation order over the same terms
# (pairwise against blocked, a transform done twice instead of once) errs by a small multiple of the reference's own
# error, not by orders of magnitude; a real bug (a wrong index, weight or scale) does.
SPREAD_FACTOR = 8


def float32_spread(reference: Callable[..., torch.Tensor], *inputs) -> float:
    """``max |reference(*inputs) - reference(*inputs in float64)|``, and at least one float32 ulp of the result's
    largest magnitude (a reference that happens to round exactly still leaves the other path its own rounding).

    Floating-point tensor inputs are converted to float64 for the second evaluation; other inputs pass as they are.
    """
    low = reference(*inputs)
    high = reference(*(x.double() if torch.is_tensor(x) and x.is_floating_point() else x for x in inputs))
    assert low.dtype == torch.float32 and high.dtype == torch.float64, (low.dtype, high.dtype)
    return max((low.double() - high).abs().max().item(), EPS32 * high.abs().max().item())
