"""NASWOT: log-determinant of the binary activation-pattern kernel, a baseline of the Zen-NAS comparison.

Paper: Joseph Mellor et al., "Neural Architecture Search without Training", ICML 2021 (the log-determinant score of
the paper's final version), compared against in Lin et al., "Zen-NAS", ICCV 2021 (arXiv:2102.01063). Reference
implementation matched: idstcv/ZenNAS ``ZeroShotProxy/compute_NASWOT_score.py`` (``compute_nas_score``, modified from
BayesWatch/nas-without-training), called as ``evolution_search.py`` calls it.

Semantics (matched to the official search):

1. Network as ZenNAS scores every candidate: no residual links, no SE, BN eps 1e-3, train mode (a freshly built
   network; the official function never switches to eval).
2. ZenNAS Gaussian init: conv/linear weights N(0, 1), biases 0, BN (1, 0).
3. x ~ N(0, 1) of shape [B, C_in, R, R], one forward.
4. At every ReLU of the network (the official hooks every ``basic_blocks.RELU``: with residual links and SE off these
   are exactly our body's ReLUs), the binary code c_i = (pre-activation > 0) of each sample, flattened over channels
   and positions; K += c c^T + (1 - c)(1 - c)^T, i.e. K_ij += (number of units where samples i and j agree).
5. score = log |det K| (``numpy.linalg.slogdet``'s log-absolute-determinant). Higher is better.

Implementation notes: we run the body only (the classifier has no ReLU) under ``no_grad`` (the official backward pass
only sets a flag that is already set); K is accumulated exactly (integer counts, float64) as
``n - s_i - s_j + 2 c_i . c_j`` per ReLU. A singular K (two samples with identical patterns everywhere) has log-det
-inf: the score is NaN and :func:`~zendeploy.proxies.compute_proxy` reports it as invalid.

Random draws, all from ``generator``: weights in module order, then x.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..space.structure import BlockSpec
from .base import register_proxy
from .gradnorm import gaussian_init_
from .network import ProxyInput, plain_input

ACTIVATIONS = (nn.ReLU, nn.ReLU6)  # binary codes: active where the output is > 0


def activation_kernel(model: nn.Module, x: torch.Tensor, forward=None) -> torch.Tensor:
    """The NASWOT kernel K (float64, [B, B]) of ``forward(x)`` (default ``model.forward_pre_gap``), summed over every
    ReLU / ReLU6 module; NaN when the network has none (the codes NASWOT counts come from ReLUs)."""
    b = x.shape[0]
    kernel = torch.zeros((b, b), dtype=torch.float64)

    def hook(_module, _inputs, output):
        # ReLU output > 0 exactly where its input > 0 (our ReLUs are in place, so read the output).
        codes = (output > 0).reshape(b, -1).to(torch.float32)
        n = codes.shape[1]
        agree = (codes @ codes.T).double()  # integer counts <= n < 2**24: exact in float32
        s = codes.sum(dim=1, dtype=torch.float64)
        kernel.add_(n - s[:, None] - s[None, :] + 2.0 * agree)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, ACTIVATIONS)]
    if not handles:
        return torch.full((b, b), math.nan, dtype=torch.float64)
    try:
        with torch.no_grad():
            (forward or model.forward_pre_gap)(x)  # type: ignore[operator]
    finally:
        for h in handles:
            h.remove()
    return kernel


def naswot_on(inp: ProxyInput, *, batch_size: int = 16, generator: torch.Generator) -> float:
    """One NASWOT repeat on a network; ReLUs of its body (before GAP) when its pre-GAP map is known, else of the
    whole forward."""
    model = gaussian_init_(inp.model, generator)
    x = inp.draw(batch_size, generator)
    forward = inp.pre_gap if inp.feature_fn is not None else model
    kernel = activation_kernel(model, x, forward)
    _sign, logabsdet = torch.linalg.slogdet(kernel)
    value = float(logabsdet)
    return value if math.isfinite(value) else math.nan


@register_proxy(
    "naswot",
    description="NASWOT: log-determinant of the kernel of binary ReLU activation patterns over a Gaussian batch",
    reference="Mellor et al., Neural Architecture Search without Training, ICML 2021; "
              "as compared in Zen-NAS (ICCV 2021), ZenNAS ZeroShotProxy/compute_NASWOT_score.py",
    min_batch_size=2,
    module_fn=naswot_on,
)
def naswot_score(
    blocks: Sequence[BlockSpec],
    *,
    resolution: int,
    batch_size: int = 16,
    generator: torch.Generator,
    num_classes: int = 1000,
) -> float:
    """One NASWOT repeat (see module docstring)."""
    return naswot_on(plain_input(blocks, resolution, num_classes), batch_size=batch_size, generator=generator)
