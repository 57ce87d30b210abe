"""Analytic and trivial baselines from the Zen-NAS paper's comparison: FLOPs (MACs), parameters, random.

- ``flops``: the network's MACs at the search resolution (``zendeploy.cost``): "bigger is better" baseline.
- ``params``: the parameter count.
- ``random``: a uniform random number per repeat: the floor any proxy must beat (Zen-NAS paper, Table 1, "Random").
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..cost import network_cost
from ..space.structure import BlockSpec
from .base import register_proxy
from .network import ProxyInput, count_macs


def _flops_on(inp: ProxyInput, **_) -> float:
    return math.log(max(count_macs(inp), 1))


def _params_on(inp: ProxyInput, **_) -> float:
    return math.log(max(sum(p.numel() for p in inp.model.parameters()), 1))


def _random_on(inp: ProxyInput, *, generator: torch.Generator, **_) -> float:
    return float(torch.rand((), generator=generator))


@register_proxy("flops", description="log of the network's MACs (multiply-accumulates)",
                reference="FLOPs baseline, Lin et al., Zen-NAS, ICCV 2021, Table 1", uses_data=False,
                module_fn=_flops_on)
def flops_proxy(blocks: Sequence[BlockSpec], *, resolution: int, num_classes: int = 1000, **_) -> float:
    return math.log(network_cost(blocks, resolution, num_classes=num_classes).macs)


@register_proxy("params", description="log of the network's parameter count",
                reference="#Params baseline, Lin et al., Zen-NAS, ICCV 2021, Table 1", uses_data=False,
                module_fn=_params_on)
def params_proxy(blocks: Sequence[BlockSpec], *, resolution: int, num_classes: int = 1000, **_) -> float:
    return math.log(network_cost(blocks, resolution, num_classes=num_classes).params)


@register_proxy("random", description="uniform random score in [0, 1): the floor every proxy must beat",
                reference="Random baseline, Lin et al., Zen-NAS, ICCV 2021, Table 1", module_fn=_random_on)
def random_proxy(blocks: Sequence[BlockSpec], *, generator: torch.Generator, **_) -> float:
    return float(torch.rand((), generator=generator))
