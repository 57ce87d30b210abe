"""TE-NAS: trainability from the condition number of the neural tangent kernel, a baseline of the Zen-NAS comparison.

Paper: Wuyang Chen, Xinyu Gong, Zhangyang Wang, "Neural Architecture Search on ImageNet in Four GPU Hours: A
Theoretically Inspired Perspective" (TE-NAS), ICLR 2021; compared against in Lin et al., "Zen-NAS", ICCV 2021
(arXiv:2102.01063). Reference implementation matched: idstcv/ZenNAS ``ZeroShotProxy/compute_te_nas_score.py``
(``compute_NTK_score`` -> ``get_ntk_n``, modified from VITA-Group/TENAS), called as ``evolution_search.py`` calls it.

**Only the NTK condition-number part is the registered score.** TE-NAS has two indicators, the NTK condition number
(trainability, lower is better) and the number of linear regions (expressivity, higher is better), and combines them
by *ranks within the set of candidates being pruned*, which gives no per-network scalar; a per-network proxy cannot
reproduce that combination faithfully. ZenNAS's own TE-NAS baseline is also NTK-only: its evolution search calls
``compute_NTK_score`` alone. (Its standalone script also adds ``compute_RN_score``, but that hooks ``nn.ReLU``
modules, which a ZenNAS ``PlainNet`` does not contain (it has its own ``RELU`` block): no activation is collected and
the count fails on ``activations = None``; it only works on the torchvision models that script can load.)
:func:`linear_region_count` implements the second indicator as TE-NAS/ZenNAS compute it (the number of
distinct activation patterns in a batch) for callers who want it; it is not part of ``tenas``. With a batch of 16
Gaussian inputs it is almost always 16, so it would not change a ranking anyway.

Semantics of ``tenas`` (matched to the official search):

1. Network as ZenNAS scores every candidate: no residual links, no SE, BN eps 1e-3, **train mode**
   (``train_mode=True``).
2. **PyTorch's default initialisation** (the official NTK function does not re-initialise: the freshly built network
   keeps its default init): conv and linear weights kaiming-uniform with a = sqrt(5), linear bias
   U(-1/sqrt(fan_in), 1/sqrt(fan_in)), BN (1, 0); drawn from ``generator`` in module order.
3. x ~ N(0, 1) of shape [B, C_in, R, R]; one forward of the whole network to logits.
4. For each sample i: the gradient of sum(logits[i]) with respect to every parameter whose name contains ``weight``
   (conv weights, BN weights, the classifier weight; no biases), with the batch statistics of the whole batch in the
   graph (the official loop backpropagates ``logit[i:i+1]`` through the shared train-mode forward).
5. NTK = G G^T ([B, B]); cond = lambda_max / lambda_min; score = -cond (higher is better, ``compute_NTK_score``).

Numerics: G is float32 as in the official code; the Gram matrix and its eigenvalues are computed in float64 (the
official float32 ``symeig`` loses lambda_min for badly conditioned kernels). A numerically singular NTK (lambda_min
<= B * float64 eps * lambda_max, e.g. a batch larger than the number of weights) gives NaN, i.e. an invalid result,
instead of the official ``nan_to_num`` number. Memory: G holds B x (number of weights) floats (16 x 118M = 7.5 GB for
ZenNet-0.5ms): the official algorithm, meant for a GPU.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..space.structure import BlockSpec
from .base import register_proxy
from .gradnorm import NORMS, _norm_init_, _unknown
from .network import ProxyInput, plain_input

_GRAM_CHUNK = 1 << 20  # columns of G per float64 Gram block


@torch.no_grad()
def default_init_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """PyTorch's default ``reset_parameters`` distributions for conv, linear and BN, drawn from ``generator``."""
    for m in model.modules():
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                fan_in = m.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, NORMS):
            _norm_init_(m)
        else:
            _unknown(m, "PyTorch's default initialisation")
    return model


def per_sample_weight_gradients(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """G [B, P]: row i = d sum(logits[i]) / d(every parameter named '*weight*'); one train-mode forward of the batch."""
    weights = [p for name, p in model.named_parameters() if "weight" in name and p.requires_grad]
    logits = model(x)
    b = x.shape[0]
    total = sum(w.numel() for w in weights)
    grads = torch.empty((b, total), dtype=torch.float32)
    for i in range(b):
        row = torch.autograd.grad(logits[i].sum(), weights, retain_graph=i < b - 1, allow_unused=True)
        offset = 0
        for w, g in zip(weights, row):
            n = w.numel()
            if g is None:
                grads[i, offset:offset + n] = 0.0
            else:
                grads[i, offset:offset + n] = g.reshape(-1)
            offset += n
    return grads


def ntk_condition_number(grads: torch.Tensor) -> float:
    """lambda_max / lambda_min of G G^T (float64); NaN when the kernel is numerically singular or not finite."""
    b, p = grads.shape
    gram = torch.zeros((b, b), dtype=torch.float64)
    for start in range(0, p, _GRAM_CHUNK):
        block = grads[:, start:start + _GRAM_CHUNK].double()
        gram += block @ block.T
    if not bool(torch.isfinite(gram).all()):
        return math.nan
    eig = torch.linalg.eigvalsh(gram)  # ascending
    lo, hi = float(eig[0]), float(eig[-1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= 0.0 or lo <= b * torch.finfo(torch.float64).eps * hi:
        return math.nan
    return hi / lo


@torch.no_grad()
def linear_region_count(model: nn.Module, x: torch.Tensor) -> float:
    """TE-NAS's linear-region indicator as ZenNAS computes it: the number of distinct ReLU activation patterns.

    The signs of every ReLU output of ``model.forward_pre_gap(x)`` (4-D features) are concatenated per sample;
    ``sum_i 1 / #{j : pattern_j == pattern_i}`` counts the distinct patterns (1 .. B). Not part of ``tenas``.
    """
    b = x.shape[0]
    codes: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        if output.dim() == 4:
            codes.append((output > 0).reshape(b, -1))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        model.forward_pre_gap(x)  # type: ignore[operator]
    finally:
        for h in handles:
            h.remove()
    if not codes:
        return math.nan
    patterns = torch.cat(codes, dim=1)
    return float(torch.unique(patterns, dim=0).shape[0])  # == sum_i 1 / #{j : pattern_j == pattern_i}


def tenas_on(inp: ProxyInput, *, batch_size: int = 16, generator: torch.Generator) -> float:
    """One TE-NAS (NTK) repeat on a network."""
    model = default_init_(inp.model, generator)
    x = inp.draw(batch_size, generator)
    cond = ntk_condition_number(per_sample_weight_gradients(model, x))
    return -cond if math.isfinite(cond) else math.nan


@register_proxy(
    "tenas",
    description="TE-NAS trainability: minus the condition number of the NTK at PyTorch default init (NTK part only)",
    reference="Chen et al., TE-NAS, ICLR 2021; as compared in Zen-NAS (ICCV 2021), "
              "ZenNAS ZeroShotProxy/compute_te_nas_score.py (compute_NTK_score)",
    min_batch_size=2,
    module_fn=tenas_on,
)
def tenas_score(
    blocks: Sequence[BlockSpec],
    *,
    resolution: int,
    batch_size: int = 16,
    generator: torch.Generator,
    num_classes: int = 1000,
) -> float:
    """One TE-NAS (NTK) repeat: -cond(NTK) (see module docstring)."""
    return tenas_on(plain_input(blocks, resolution, num_classes), batch_size=batch_size, generator=generator)
