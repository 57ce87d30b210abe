"""AZ-NAS: four zero-cost indicators of a network combined by their ranks within the set of candidates.

Paper: Junghyup Lee, Bumsub Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search", CVPR 2024
(reported Kendall / Spearman on NAS-Bench-201 CIFAR-10 of 0.741 / 0.913, against Zen-Score's 0.29 / 0.35). Reference
code matched: cvlab-yonsei/AZ-NAS ``ImageNet_MBV2/ZeroShotProxy/compute_az_nas_score.py`` (``compute_nas_score``) and
the rank combination of ``ImageNet_MBV2/evolution_search_az.py``.

Per network (one repeat):

1. Kaiming-normal fan-in initialisation (gain for ReLU) of conv and linear weights, biases 0, BN (1, 0), train mode.
   The network: for a structure, our ZenNet *with* its residual links (the reference scores the real network,
   ``no_reslink`` False; SE off, as every zendeploy proxy scores structures); a foreign model as given.
2. x ~ N(0, 1) of shape [B, C_in, R, R]; one forward. The layer features are the outputs of the network's ReLUs in
   forward order (the reference collects every ``RELU`` of the body), except activations of 1x1 maps followed by a
   larger map (a squeeze-excitation gate, not a stage of the network).
3. **Expressivity** of a feature [B, C, H, W]: the B*H*W positions as samples of C channels, the covariance
   ``S = X^T X / (B H W)`` of the centred features, its eigenvalues ``s`` normalised to ``p = s / sum(s)``, and the
   entropy ``sum(-p log(p + 1e-8))`` (in float64, eigenvalues clamped at 0: with fewer positions than channels,
   e.g. 2x2 maps of 512 channels at batch 16, the covariance is singular and float32 rounding gives eigenvalues
   just below 0, whose log is NaN; the reference would then record -inf for the whole network). ``expressivity`` = the sum over features; ``progressivity`` = the minimum
   increase of that entropy from one feature to the next.
4. **Trainability**, for every consecutive pair (f_in, f_out), from the last pair back: a Rademacher ``g_out``
   (+-1), ``g_in = d f_out / d f_in`` applied to it (``autograd.grad``), pixel-unshuffled to f_out's size when
   strided; ``M = g_in^T g_out / (B H W)`` ([C_in, C_out]); with ``sigma`` its largest singular value the pair gives
   ``2 - sigma - 1 / (sigma + 1e-6)`` (0 at sigma = 1, negative otherwise: gradients neither vanish nor explode). A
   pair where g_in equals g_out exactly gives -inf. ``trainability`` = the mean over pairs.
5. **Complexity**: the network's MACs.

The combination: over the N candidates scored so far, each indicator's values are ranked (``scipy.stats.rankdata``:
ties get their average rank) and the score of a candidate is ``sum_k log(rank_k / N)`` (0 for the best in every
indicator, lower otherwise). So a network's AZ-NAS score depends on the other candidates: :func:`combine_by_rank`
scores a set, the search re-ranks its population against every candidate it has scored, and a single network scored
alone gets 0 (its indicators are in ``ProxyResult.components``).

Random draws, all from ``generator``: weights in module order, then x, then the Rademacher signs, pair by pair.
"""

from __future__ import annotations

import bisect
import math
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..space.structure import BlockSpec
from .base import register_proxy
from .gradnorm import NORMS, _norm_init_, _unknown
from .network import ProxyInput, count_macs, structure_input

COMPONENTS = ("expressivity", "progressivity", "trainability", "complexity")
ACTIVATIONS = (nn.ReLU, nn.ReLU6)


@torch.no_grad()
def kaiming_fanin_init_(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """The reference's ``kaiming_normal_fanin_init``: conv/linear weights N(0, 2 / fan_in), biases 0, norms (1, 0)."""
    for m in model.modules():
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, NORMS):
            _norm_init_(m)
        else:
            _unknown(m, "AZ-NAS's Kaiming initialisation")
    return model


def layer_features(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The ReLU outputs of one forward, in order (in-place ReLUs are run out of place so each output is a node of the
    graph), without squeeze-excitation gates (1x1 maps followed by a larger one)."""
    feats: list[torch.Tensor] = []
    acts = [m for m in model.modules() if isinstance(m, ACTIVATIONS)]
    for m in acts:
        m.inplace = False

    def hook(_module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            feats.append(output)

    handles = [m.register_forward_hook(hook) for m in acts]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    keep = []
    for i, f in enumerate(feats):
        later = max((g.shape[2] * g.shape[3] for g in feats[i + 1:]), default=0)
        if f.shape[2] * f.shape[3] == 1 and later > 1:
            continue
        keep.append(f)
    return keep


def expressivity_entropy(feature: torch.Tensor) -> float:
    """The entropy of the normalised eigenvalues of a feature's channel covariance (positions as samples)."""
    b, c, h, w = feature.shape
    f = feature.detach().permute(0, 2, 3, 1).reshape(b * h * w, c)
    f = f - f.mean(dim=0, keepdim=True)
    f = f.double()
    n = f.shape[0]
    # X^T X / n (C x C) and X X^T / n (n x n) have the same non-zero eigenvalues, and zeros add nothing to the
    # entropy: decompose the smaller one (a 2x2 map of 5304 channels at batch 8 is a 32 x 32 problem, not 5304^2)
    sigma = (f.T @ f if c <= n else f @ f.T) / n
    s = torch.linalg.eigvalsh(sigma).clamp_min(0.0)  # a covariance is PSD: negative eigenvalues are rounding
    p = s / s.sum()
    return float(torch.sum(-p * torch.log(p + 1e-8)))


def trainability_term(f_in: torch.Tensor, f_out: torch.Tensor, generator: torch.Generator) -> float | None:
    """One pair's term; None when f_out does not depend on f_in (parallel branches)."""
    g_out = (torch.bernoulli(torch.full_like(f_out, 0.5), generator=generator) - 0.5) * 2
    g_in = torch.autograd.grad(f_out, f_in, grad_outputs=g_out, retain_graph=True, allow_unused=True)[0]
    if g_in is None:
        return None
    if g_out.shape == g_in.shape and torch.equal(g_in, g_out):
        return -math.inf
    if g_in.shape[2:] != g_out.shape[2:]:
        stride = g_in.shape[2] // g_out.shape[2]
        if stride < 1 or g_in.shape[2] != stride * g_out.shape[2] or g_in.shape[3] != stride * g_out.shape[3]:
            return None
        g_in = nn.functional.pixel_unshuffle(g_in, stride)
    bo, co, ho, wo = g_out.shape
    a = g_in.permute(0, 2, 3, 1).reshape(-1, g_in.shape[1])
    o = g_out.permute(0, 2, 3, 1).reshape(-1, co)
    n = bo * ho * wo
    if n < min(a.shape[1], co):  # rank <= n: with a^T = Qa Ra and o^T = Qo Ro (reduced QR, orthonormal columns),
        ra = torch.linalg.qr(a.T).R  # a^T o = Qa (Ra Ro^T) Qo^T has the singular values of the n x n Ra Ro^T (a 2x2
        ro = torch.linalg.qr(o.T).R  # map of 5304 channels at batch 8: 32 x 32 instead of 5304 x 5304)
        mat = ra @ ro.T / n
    else:
        mat = a.T @ o / n
        if mat.shape[0] < mat.shape[1]:
            mat = mat.T
    s = float(torch.linalg.svdvals(mat).max())
    return -s - 1 / (s + 1e-6) + 2


def az_nas_indicators(model: nn.Module, x: torch.Tensor, generator: torch.Generator, macs: int) -> dict:
    """The four indicators of ``model`` (as initialised) on the batch ``x``."""
    feats = layer_features(model, x)
    if len(feats) < 2:
        raise ValueError("AZ-NAS needs at least two ReLU feature maps")
    entropies = np.array([expressivity_entropy(f) for f in feats])
    terms = []
    for i in reversed(range(1, len(feats))):
        t = trainability_term(feats[i - 1], feats[i], generator)
        if t is not None:
            terms.append(t)
    nan_to = lambda v: float(v) if not math.isnan(v) else -math.inf  # noqa: E731 - the reference's rule
    return {"expressivity": nan_to(float(entropies.sum())),
            "progressivity": nan_to(float(np.min(entropies[1:] - entropies[:-1]))),
            "trainability": nan_to(float(np.mean(terms))) if terms else -math.inf,
            "complexity": float(macs)}


def az_nas_on(inp: ProxyInput, *, batch_size: int = 16, generator: torch.Generator) -> dict:
    """One AZ-NAS repeat on a network: its four indicators (the score is their rank combination over a set)."""
    macs = count_macs(inp)
    model = kaiming_fanin_init_(inp.model, generator)
    x = inp.draw(batch_size, generator)
    return az_nas_indicators(model, x, generator, macs)


@register_proxy(
    "az-nas",
    description="AZ-NAS: expressivity, progressivity, trainability and complexity, combined by rank over the "
                "candidates scored",
    reference="Lee and Ham, AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search, CVPR 2024; "
              "cvlab-yonsei/AZ-NAS compute_az_nas_score.py",
    min_batch_size=2,
    module_fn=az_nas_on,
    combine="rank",
    components=COMPONENTS,
)
def az_nas_score(
    blocks: Sequence[BlockSpec],
    *,
    resolution: int,
    batch_size: int = 16,
    generator: torch.Generator,
    num_classes: int = 1000,
) -> dict:
    """One AZ-NAS repeat (see module docstring): the indicators of the structure's network with residual links."""
    return az_nas_on(structure_input(blocks, resolution, num_classes, residual=True), batch_size=batch_size,
                     generator=generator)


def _average_rank(sorted_values: list, v: float) -> float:
    lo, hi = bisect.bisect_left(sorted_values, v), bisect.bisect_right(sorted_values, v)
    return (lo + 1 + hi) / 2  # scipy.stats.rankdata's 'average' for the tie block [lo, hi)


class RankCombiner:
    """The AZ-NAS combination over a growing set: ``add`` each candidate's indicators, ``score`` any member's
    ``sum_k log(rank_k / N)`` against everything added (sorted lists: O(log N) per score, O(N) per add)."""

    def __init__(self, components: Sequence[str] = COMPONENTS):
        self.components = tuple(components)
        self.sorted: dict[str, list] = {k: [] for k in self.components}
        self.n = 0

    def add(self, values: Mapping[str, float]) -> None:
        for k in self.components:
            bisect.insort(self.sorted[k], float(values[k]))
        self.n += 1

    def score(self, values: Mapping[str, float]) -> float:
        if self.n == 0:
            return 0.0
        return float(sum(math.log(_average_rank(self.sorted[k], float(values[k])) / self.n)
                         for k in self.components))


def combine_by_rank(indicators: Sequence[Mapping[str, float]], components: Sequence[str] = COMPONENTS) -> list[float]:
    """The AZ-NAS score of each member of a set from its indicators (the reference's ``np.log(rankdata(v) / N)``
    summed over indicators)."""
    c = RankCombiner(components)
    for v in indicators:
        c.add(v)
    return [c.score(v) for v in indicators]
