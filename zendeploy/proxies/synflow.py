"""SynFlow: synaptic saliency of an all-ones input through |weights|, a baseline of the Zen-NAS comparison.

Papers: Hidenori Tanaka et al., "Pruning neural networks without any data by iteratively conserving synaptic flow",
NeurIPS 2020; used as a zero-cost NAS proxy by Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021;
compared against in Lin et al., "Zen-NAS", ICCV 2021 (arXiv:2102.01063). Reference implementation matched: idstcv/ZenNAS
``ZeroShotProxy/compute_syncflow_score.py`` (``do_compute_nas_score``, itself modified from SamsungLabs/zero-cost-nas),
called as ``evolution_search.py`` calls it.

Semantics (matched to the official search):

1. Network as ZenNAS scores every candidate: no residual links, no SE, BN eps 1e-3, **train mode** (ZenNAS keeps the
   BN layers and calls ``model.train()``; the zero-cost-nas original removes BN instead, we follow ZenNAS).
2. ZenNAS Gaussian init (conv/linear weights N(0, 1), biases 0, BN (1, 0)), then every tensor replaced by its
   absolute value (``linearize``), the network cast to float64.
3. Input: ONE all-ones image [1, C_in, R, R] in float64 (the batch size option does not matter; the official code
   draws a Gaussian batch only to read its shape). Forward through the whole network (body, GAP, classifier),
   backward of the sum of the outputs.
4. For every conv and linear layer: ``|w * dL/dw|`` summed over each output unit's fan-in, averaged over output units
   (``mean(sum(., dim=[1, 2, 3]))`` for conv, ``mean(sum(., dim=1))`` for linear); score = the sum over layers.

Sign: the SynFlow and zero-cost papers rank *higher* SynFlow as better, and that is what we return. ZenNAS's
``do_compute_nas_score`` returns ``-1 * score`` (as preserved in forks that keep the file otherwise unchanged), so
ZenNAS's evolution maximised the *negated* value; negate our score to reproduce that ranking.

Limitation of the official semantics, kept: train-mode BN on a single image needs more than one value per channel, so
a network whose last feature map is 1x1 (e.g. an ImageNet ZenNet at resolution 32) cannot be scored; ZenNAS's search
catches the exception and scores the candidate -9999. We raise :class:`~zendeploy.errors.ProxyError` up front instead.

Randomness: only the weight magnitudes, drawn from ``generator`` in module order.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..errors import ProxyError
from ..space.structure import BlockSpec, feature_resolutions
from .base import register_proxy
from .gradnorm import gaussian_init_
from .network import ProxyInput, plain_input


def final_resolution(blocks: Sequence[BlockSpec], resolution: int) -> int:
    res_in = feature_resolutions(blocks, resolution)
    return -(-res_in[-1] // blocks[-1].stride)


def synflow_on(inp: ProxyInput, *, batch_size: int = 1, generator: torch.Generator) -> float:
    """One SynFlow repeat on a network (``batch_size`` ignored: one all-ones image)."""
    model = gaussian_init_(inp.model, generator)
    with torch.no_grad():
        for t in model.state_dict().values():  # official linearize(): abs of every entry of the state dict
            if t.is_floating_point():
                t.abs_()
    model.double()
    try:
        x = torch.ones((1, inp.in_channels, inp.resolution, inp.resolution), dtype=torch.float64)
        layers = [m for m in model.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
        weights = [m.weight for m in layers]
        try:
            output = model(x)
        except ValueError as exc:  # train-mode BN on one image with a 1x1 map: "Expected more than 1 value ..."
            raise ProxyError(f"synflow runs train-mode BatchNorm on one all-ones image, which this network cannot "
                             f"take at {inp.resolution}x{inp.resolution} ({exc}); use a larger resolution") from None
        grads = torch.autograd.grad(output.sum(), weights, allow_unused=True)
        score = 0.0
        with torch.no_grad():
            for w, g in zip(weights, grads):
                if g is None:  # official: zeros for a weight without gradient
                    continue
                saliency = (w * g).abs_()
                score += float(saliency.sum(dim=tuple(range(1, saliency.dim()))).mean())
    finally:
        model.float()
    if not math.isfinite(score):
        return math.nan
    return score


@register_proxy(
    "synflow",
    description="SynFlow: sum of |w * dR/dw| for an all-ones input through |weights| (float64, train-mode BN)",
    reference="Tanaka et al., NeurIPS 2020; Abdelfattah et al., ICLR 2021; as compared in Zen-NAS (ICCV 2021), "
              "ZenNAS ZeroShotProxy/compute_syncflow_score.py",
    module_fn=synflow_on,
)
def synflow_score(
    blocks: Sequence[BlockSpec],
    *,
    resolution: int,
    batch_size: int = 16,
    generator: torch.Generator,
    num_classes: int = 1000,
) -> float:
    """One SynFlow repeat (see module docstring). ``batch_size`` is accepted and ignored (one all-ones image)."""
    last = final_resolution(blocks, resolution)
    if last < 2:
        raise ProxyError(
            f"synflow runs train-mode BatchNorm on one all-ones image (official ZenNAS semantics), which needs more "
            f"than one value per channel; at resolution {resolution} this structure's last feature map is "
            f"{last}x{last}: use a larger resolution"
        )
    return synflow_on(plain_input(blocks, resolution, num_classes), generator=generator)
