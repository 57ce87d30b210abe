"""Grad-norm: the norm of the loss gradient at initialisation, a baseline of the Zen-NAS comparison.

Paper: Mohamed S. Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 (``grad_norm``), compared
against in Lin et al., "Zen-NAS", ICCV 2021 (arXiv:2102.01063). Reference implementation matched: idstcv/ZenNAS
``ZeroShotProxy/compute_gradnorm_score.py`` (``compute_nas_score``), called as ``evolution_search.py`` calls it.

Semantics (matched to the official search):

1. The network is built as ZenNAS's evolution search builds it for *every* proxy: ``no_reslink=True`` and no SE
   (``evolution_search.compute_nas_score`` builds ``MasterNet(..., no_reslink=True)``, ``use_se`` defaults to off), BN
   eps 1e-3, momentum 0.1, in train mode (batch statistics).
2. ZenNAS's ``network_weight_gaussian_init``: every conv and linear weight ~ N(0, 1), biases 0; BN weight 1, bias 0.
3. x ~ N(0, 1) of shape [B, C_in, R, R]; labels uniform in [0, num_classes); loss = mean cross-entropy of the full
   network (body, global average pool, linear classifier).
4. score = sqrt(sum over ALL parameters (conv, BN weight and bias, linear weight and bias) of ||dloss/dp||^2).
   Higher is better, as in ZenNAS (the raw value, no log).

Random draws, all from ``generator``: weights in module order, then x, then the labels. The module is built on the meta
device and materialised empty, so no default initialisation is computed and then overwritten.

This module also holds the two helpers the data-driven baselines share (:func:`build_plain_model`,
:func:`gaussian_init_`).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ProxyError
from ..space.structure import BlockSpec
from .base import register_proxy
from .network import ProxyInput, plain_input


def build_plain_model(blocks: Sequence[BlockSpec], num_classes: int):
    """A ZenNet without residual links and SE (as ZenNAS scores every candidate), in train mode, *uninitialised*.

    Built on the meta device and materialised with ``to_empty``: the caller must initialise every parameter and
    buffer (:func:`gaussian_init_` or ``tenas.default_init_``).
    """
    return plain_input(blocks, 8, num_classes).model


NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def _unknown(m: nn.Module, what: str) -> None:
    if any(True for _ in m.parameters(recurse=False)) or (
            any(True for _ in m.buffers(recurse=False)) and not isinstance(m, NORMS)):
        raise ProxyError(f"{what} does not know how to initialise a {type(m).__name__} (it has its own weights); "
                         f"score a variant of the model without it")


def _norm_init_(m: nn.Module) -> None:
    if getattr(m, "weight", None) is not None:
        nn.init.ones_(m.weight)  # type: ignore[arg-type]
    if getattr(m, "bias", None) is not None:
        nn.init.zeros_(m.bias)  # type: ignore[arg-type]
    if hasattr(m, "reset_running_stats"):
        m.reset_running_stats()  # type: ignore[operator]


@torch.no_grad()
def gaussian_init_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """ZenNAS ``network_weight_gaussian_init`` with our generator: conv/linear weights N(0, 1), biases 0, BN (1, 0).

    Modules are visited in ``model.modules()`` order (the official order: body blocks, then the classifier). BN
    running statistics are reset (mean 0, var 1), as in a freshly built network. Any conv (1-3 d, transposed) and
    linear layer, and BN / group / layer / instance norms (weight 1, bias 0) of a foreign model are initialised the
    same way; a module with weights of another kind is refused in one line.
    """
    for m in model.modules():
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            nn.init.normal_(m.weight, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, NORMS):
            _norm_init_(m)
        else:
            _unknown(m, "the Gaussian initialisation")
    return model


def draw_inputs(blocks: Sequence[BlockSpec], resolution: int, batch_size: int, generator: torch.Generator):
    return torch.randn((batch_size, blocks[0].in_channels, resolution, resolution), generator=generator)


def gradnorm_on(inp: ProxyInput, *, batch_size: int = 16, generator: torch.Generator) -> float:
    """One grad-norm repeat on a network (a structure's plain ZenNet or any classifier)."""
    model = gaussian_init_(inp.model, generator)
    x = inp.draw(batch_size, generator)
    y = torch.randint(0, inp.num_classes, (batch_size,), generator=generator)
    logits = model(x)
    # Official: -(one_hot(y) * log_softmax(logits)).sum(1).mean(), i.e. the mean cross-entropy.
    loss = F.cross_entropy(logits, y)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    total = 0.0
    for g in grads:
        if g is not None:
            total += float(torch.linalg.vector_norm(g, dtype=torch.float64)) ** 2
    if not math.isfinite(total):
        return math.nan
    return math.sqrt(total)


@register_proxy(
    "gradnorm",
    description="norm of the cross-entropy gradient (random labels) w.r.t. all weights at Gaussian init",
    reference="Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021; "
              "as compared in Zen-NAS (ICCV 2021), ZenNAS ZeroShotProxy/compute_gradnorm_score.py",
    min_batch_size=2,
    module_fn=gradnorm_on,
)
def gradnorm_score(
    blocks: Sequence[BlockSpec],
    *,
    resolution: int,
    batch_size: int = 16,
    generator: torch.Generator,
    num_classes: int = 1000,
) -> float:
    """One grad-norm repeat (see module docstring)."""
    return gradnorm_on(plain_input(blocks, resolution, num_classes), batch_size=batch_size, generator=generator)
