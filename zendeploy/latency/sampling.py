"""Random networks from a search space, for the latency grid, the calibration set and held-out validation.

Networks are random walks of official mutations from the space's initial structure (the structures a search
visits), kept only when they respect the space's layer limit, a MACs range and the input resolution. Different
purposes use different seeds, so validation networks are never the ones the table was fitted on.
"""

from __future__ import annotations

import random
from typing import Sequence

from ..cost import network_cost
from ..errors import LatencyTableError, StructureError
from ..space.structure import BlockSpec, feature_resolutions, format_structure

GRID_SEED, CALIBRATION_SEED, VALIDATION_SEED = 1, 2, 3


def sample_networks(space, dataset: str, n: int, *, resolution: int, seed: int, max_layers: int | None = None,
                    max_macs: float | None = None, min_macs: float | None = None, num_classes: int = 1000,
                    exclude: Sequence[str] = ()) -> list[tuple[BlockSpec, ...]]:
    from ..search.mutation import random_walk

    rng = random.Random(seed)
    initial = space.initial_blocks(dataset)
    layers = max_layers or space.default_max_layers(dataset)
    seen = set(exclude)
    out: list[tuple[BlockSpec, ...]] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 200 * n + 1000:
            raise LatencyTableError(f"could only sample {len(out)} of {n} networks from space '{space.name}' within "
                                    f"the limits (layers <= {layers}, MACs {min_macs}..{max_macs})")
        blocks = random_walk(initial, rng, space)
        s = format_structure(blocks)
        if s in seen:
            continue
        if layers and sum(b.sub_layers for b in blocks) > layers:
            continue
        try:
            feature_resolutions(blocks, resolution)
        except StructureError:
            continue
        macs = network_cost(blocks, resolution, num_classes=num_classes).macs
        if (max_macs and macs > max_macs) or (min_macs and macs < min_macs):
            continue
        seen.add(s)
        out.append(blocks)
    return out
