"""Zen-Score: the expressivity proxy of Zen-NAS.

Paper: Ming Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition", ICCV 2021
(arXiv:2102.01063). Reference implementation: idstcv/ZenNAS ``ZeroShotProxy/compute_zen_score.py`` with the model
built as the search builds it (``no_reslink=True``, no SE, BatchNorm eps 1e-3).

Semantics (matched to the official search):

1. Residual links removed and no SE: the body is a plain chain of conv -> BN -> ReLU layers.
2. Every conv weight ~ N(0, 1), no bias; BN weight 1, bias 0; BN in train mode, momentum 0.1, eps 1e-3, freshly built
   (running_var starts at 1).
3. x ~ N(0, 1) of shape [B, C_in, R, R] and e ~ N(0, 1); one forward on x, one on x + gamma * e (gamma = 1e-2),
   body only (before global average pooling).
4. Delta = batch mean of the entrywise L1 norm of the output difference.
5. BN term = sum over every BN of 0.5 * ln(mean over channels of running_var), read after the two forwards, so
   running_var = 0.81 + 0.09 * v_clean + 0.1 * v_perturbed (unbiased batch variances), not the batch variance.
6. score = ln(Delta) + BN term. Repeats average over freshly initialised networks (the official standalone script's
   repeat loop never resets running_var, so its scores drift upward; we do not copy that).

Two implementations with the same random draws (x, then e, then conv weights in forward order):

- :func:`zen_score_fast` (registered as ``zen``): no ``nn.Module`` at all (no module construction, no default
  initialisation that is then overwritten): weights are drawn straight into channels-last tensors, the two inputs
  run layer by layer through functional conv / train-mode BN / in-place ReLU, under inference mode. (One batch of 2B
  with per-half BN statistics was measured slower on CPU: the concatenations cost more than they save.)
- :func:`zen_score_reference`: the straightforward official loop on a built :class:`~zendeploy.builder.ZenNet`.
  Tests check that both agree to float precision; ``tools/bench_proxies.py`` times them against each other.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..space.blocks import BN_EPS, BN_MOMENTUM
from ..space.structure import BlockSpec
from ..space.units import block_units, iter_conv_layers
from .base import register_proxy
from .network import ProxyInput

MIXUP_GAMMA = 1e-2


def plain_conv_layers(blocks: Sequence[BlockSpec]) -> list[tuple[int, int, int, int, int]]:
    """(in, out, kernel, stride, groups) of every conv of the network without residual links and SE, in order."""
    layers: list[tuple[int, int, int, int, int]] = []
    for block in blocks:
        for unit in block_units(block, se=False, residual=False):
            layers.extend((i, o, k, s, g) for i, o, k, s, g, _ in iter_conv_layers(unit))
    return layers


def _draw_inputs(blocks, resolution, batch_size, generator):
    shape = (batch_size, blocks[0].in_channels, resolution, resolution)
    x = torch.randn(shape, generator=generator)
    e = torch.randn(shape, generator=generator)
    return x, e


def _score(delta: torch.Tensor, bn_log_terms: float) -> float:
    d = float(delta)
    if not math.isfinite(d) or d <= 0.0:
        return math.nan
    return math.log(d) + bn_log_terms


@torch.no_grad()
def zen_on(inp: ProxyInput, *, batch_size: int = 16, generator: torch.Generator,
           mixup_gamma: float = MIXUP_GAMMA) -> float:
    """One Zen-Score repeat on a network as given (a foreign model keeps its residual links: see the README). Draws x
    and e, then every conv / linear weight N(0, 1) in ``model.modules()`` order (BN weight 1, bias 0, statistics
    reset); two train-mode forwards to the pre-GAP map; the BN term over every BatchNorm of the model."""
    from .gradnorm import gaussian_init_

    x = inp.draw(batch_size, generator)
    e = inp.draw(batch_size, generator)
    model = gaussian_init_(inp.model, generator)
    output = inp.pre_gap(x)
    mixup_output = inp.pre_gap(x + mixup_gamma * e)
    delta = torch.mean(torch.sum(torch.abs(output - mixup_output), dim=[1, 2, 3]))
    log_bn = 0.0
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is not None:
            log_bn += float(torch.log(torch.sqrt(torch.mean(m.running_var))))
    return _score(delta, log_bn)


@register_proxy(
    "zen",
    description="Zen-Score: log expected feature-map change under input perturbation, corrected for BN scaling",
    reference="Lin et al., Zen-NAS, ICCV 2021 (arXiv:2102.01063)",
    min_batch_size=2,
    module_fn=zen_on,
)
@torch.inference_mode()
def zen_score_fast(
    blocks: Sequence[BlockSpec],
    *,
    resolution: int,
    batch_size: int = 16,
    generator: torch.Generator,
    num_classes: int = 1000,
    mixup_gamma: float = MIXUP_GAMMA,
) -> float:
    """One Zen-Score repeat (see module docstring); weights drawn from ``generator`` after the inputs."""
    x, e = _draw_inputs(blocks, resolution, batch_size, generator)
    clean = x.contiguous(memory_format=torch.channels_last)
    mixed = (x + mixup_gamma * e).contiguous(memory_format=torch.channels_last)
    log_bn = 0.0
    for in_c, out_c, k, stride, groups in plain_conv_layers(blocks):
        w = torch.randn((out_c, in_c // groups, k, k), generator=generator)
        w = w.contiguous(memory_format=torch.channels_last)
        pad = (k - 1) // 2
        running_mean = torch.zeros(out_c)
        running_var = torch.ones(out_c)
        # Train-mode BN, clean batch first, then the perturbed one: the running stats update in the same order as
        # the two official forwards (running_var = 0.81 + 0.09 v_clean + 0.1 v_perturbed after both).
        clean = F.conv2d(clean, w, None, stride, pad, 1, groups)
        clean = torch.relu_(F.batch_norm(clean, running_mean, running_var, None, None, True, BN_MOMENTUM, BN_EPS))
        mixed = F.conv2d(mixed, w, None, stride, pad, 1, groups)
        mixed = torch.relu_(F.batch_norm(mixed, running_mean, running_var, None, None, True, BN_MOMENTUM, BN_EPS))
        log_bn += 0.5 * math.log(float(running_var.mean()))
    delta = (clean - mixed).abs_().sum(dim=(1, 2, 3)).mean()
    return _score(delta, log_bn)


@torch.no_grad()
def zen_score_reference(
    blocks: Sequence[BlockSpec],
    *,
    resolution: int,
    batch_size: int = 16,
    generator: torch.Generator,
    num_classes: int = 1000,
    mixup_gamma: float = MIXUP_GAMMA,
) -> float:
    """The straightforward official loop on a built module (same random draws as :func:`zen_score_fast`)."""
    from ..builder import ZenNet

    model = ZenNet(blocks, num_classes=num_classes, se=False, residual=False)
    model.train()
    x, e = _draw_inputs(blocks, resolution, batch_size, generator)
    for m in model.body.modules():  # forward order: conv weights drawn in the same order as the fast path
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    nn.init.normal_(model.head.fc.weight, generator=torch.Generator().manual_seed(0))  # type: ignore[union-attr,arg-type]
    nn.init.zeros_(model.head.fc.bias)  # type: ignore[union-attr,arg-type]
    output = model.forward_pre_gap(x)
    mixup_output = model.forward_pre_gap(x + mixup_gamma * e)
    delta = torch.mean(torch.sum(torch.abs(output - mixup_output), dim=[1, 2, 3]))
    log_bn = 0.0
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            log_bn += float(torch.log(torch.sqrt(torch.mean(m.running_var))))  # type: ignore[arg-type]
    return _score(delta, log_bn)
