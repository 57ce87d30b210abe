"""MeCo: the minimum eigenvalue of the channel correlation of every layer's feature map, for one input.

Paper: Tangyu Jiang, Haodi Wang, Rongfang Bie, "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via
Minimum Eigenvalue of Correlation", NeurIPS 2023 (reported Spearman 0.89 with accuracy on NAS-Bench-201 CIFAR-10).
Reference code matched: the authors' ``get_score`` of the ``meco`` measure (in their fork of the zero-cost-nas
``foresight`` package): a forward hook on the network's modules reads ``data_output[0]``, the first sample's map
``[C, H, W]``, reshapes it to ``[C, H*W]``, takes ``torch.corrcoef`` (channels are the variables, positions the
observations), sets NaN and inf entries to 0 (a constant channel), and keeps the smallest real eigenvalue; the score
is the sum over layers (NaN terms dropped). Higher is better.

Semantics here:

1. The network: for a structure, the network every zendeploy proxy scores (our ZenNet without residual links and
   SE, as Zen-NAS scores candidates); a foreign model as given.
2. PyTorch's default initialisation (the measure does not re-initialise: the NAS-Bench networks it scores keep their
   default init; ``tenas.default_init_``), BN in train mode (the measure's ``bn=True``).
3. x ~ N(0, 1) of shape [B, C_in, R, R] (label-free: zendeploy's proxies never read data), one forward without
   gradients; only sample 0's maps are read (the batch exists for the train-mode BN statistics).
4. Layers: the output of every *leaf* module that is a 4-D feature map. The reference hooks every module, containers
   too, so a container whose output is its last child's tensor counts that map twice and the score depends on how a
   model is nested; leaves give the same value on a flat model (where the reference's only container is the root,
   whose logits contribute 0) and a value that does not change when a model is wrapped.
5. A map with fewer positions than channels (H*W - 1 < C) has a correlation matrix of rank at most H*W - 1 < C: its
   minimum eigenvalue is exactly 0 (the reference computes it numerically as a value within rounding of 0), so the
   eigen-decomposition is skipped; otherwise ``eigvalsh`` in float64 (the matrix is symmetric; the reference's
   general ``eig`` in float32 returns the same values to rounding).

Random draws, all from ``generator``: weights in module order, then x.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..space.structure import BlockSpec
from .base import register_proxy
from .network import ProxyInput, plain_input
from .tenas import default_init_


def min_correlation_eigenvalue(feature: torch.Tensor) -> float:
    """MeCo's term for one map of one sample, ``feature`` of shape [C, H, W] (or [C, N])."""
    f = feature.reshape(feature.shape[0], -1).double()
    c, n = f.shape
    if 1 < c and n - 1 < c:  # rank <= n - 1 < C: singular, the minimum eigenvalue is 0
        return 0.0
    corr = torch.nan_to_num(torch.corrcoef(f), nan=0.0, posinf=0.0, neginf=0.0).reshape(c, c)
    return float(torch.linalg.eigvalsh(corr)[0])


def meco_of(model: nn.Module, x: torch.Tensor) -> float:
    """The MeCo score of ``model`` (as initialised) on the batch ``x``: sample 0's maps at every leaf module."""
    terms: list[float] = []

    def hook(_module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            terms.append(min_correlation_eigenvalue(output[0].detach()))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not any(True for _ in m.children())]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return float(sum(terms)) if terms else math.nan  # NaN-zeroed matrices: no term is NaN


def meco_on(inp: ProxyInput, *, batch_size: int = 16, generator: torch.Generator) -> float:
    """One MeCo repeat on a network (see module docstring)."""
    model = default_init_(inp.model, generator)
    x = inp.draw(batch_size, generator)
    return meco_of(model, x)


@register_proxy(
    "meco",
    description="MeCo: sum over layers of the minimum eigenvalue of one sample's channel correlation matrix",
    reference="Jiang et al., MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum Eigenvalue of "
              "Correlation, NeurIPS 2023",
    min_batch_size=2,
    module_fn=meco_on,
)
def meco_score(
    blocks: Sequence[BlockSpec],
    *,
    resolution: int,
    batch_size: int = 16,
    generator: torch.Generator,
    num_classes: int = 1000,
) -> float:
    """One MeCo repeat (see module docstring)."""
    return meco_on(plain_input(blocks, resolution, num_classes), batch_size=batch_size, generator=generator)
