"""Random networks from a search space, for the latency grid, the calibration set and held-out validation.

Three generators, each spread over a MACs range and kept only within the space's layer limit and the input
resolution: ``sample_covering_networks`` (a random width profile on the initial stride schedule, scaled to a
log-uniform MACs target: the grid and half the calibration set), ``sample_random_width_networks`` (every block an
independent width: the other half of the calibration set) and ``sample_validation_networks`` (mutation walks from the
official ZenNets and the initial structure, as a search makes them: validation only). Different purposes use
different seeds and generators, so validation networks are never drawn the way the table's networks were.
"""

from __future__ import annotations

import math
import random
from typing import Sequence

from ..cost import network_cost
from ..errors import LatencyTableError, StructureError
from ..space.structure import BlockSpec, feature_resolutions, format_structure

GRID_SEED, CALIBRATION_SEED, VALIDATION_SEED = 1, 2, 3


def sample_networks(space, dataset: str, n: int, *, resolution: int, seed: int, max_layers: int | None = None,
                    max_macs: float | None = None, min_macs: float | None = None, num_classes: int = 1000,
                    exclude: Sequence[str] = ()) -> list[tuple[BlockSpec, ...]]:
    from ..space.mutation import random_walk

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


# ------------------------------------------------------------------------------------ the range users search

#: The largest network a default table covers, relative to the largest official ZenNet of its space at its resolution.
OFFICIAL_HEADROOM = 2.0
#: Without an official ZenNet for the space and resolution: about 1G MACs at 32x32, scaled by the pixel count.
FALLBACK_MAX_MACS_AT_32 = 1.0e9
#: The smallest network a default table covers, relative to the space's initial structure.
INITIAL_FLOOR = 0.5


def official_networks(space, resolution: int) -> list[tuple[str, tuple[BlockSpec, ...], bool, int]]:
    """The official ZenNets that belong to ``space`` and run at ``resolution``: (name, blocks, se, num_classes), one
    per distinct body (the CIFAR-10 and CIFAR-100 models of one size share theirs)."""
    from ..space.registry import BLOCK_TYPES, CONV
    from ..space.structure import parse_structure
    from ..zoo import ZOO

    types = set(space.block_types)
    out, seen = [], set()
    for name in ZOO.names():
        e = ZOO.get(name)
        if e.dataset == "test" or e.resolution != resolution or (e.structure, e.se) in seen:
            continue
        blocks = parse_structure(e.structure)
        if all(BLOCK_TYPES.get(b.name).family == CONV or b.name in types for b in blocks):
            seen.add((e.structure, e.se))
            out.append((name, blocks, e.se, e.num_classes))
    return out


def default_macs_range(space, dataset: str, resolution: int, num_classes: int) -> tuple[float, float]:
    """The MACs range a search of ``space`` at ``resolution`` reaches, which a default table covers: from half the
    initial structure to twice the largest official ZenNet of the space at that resolution (about 1G MACs at 32x32
    for the CIFAR ResNet space), or 1G MACs x (resolution / 32)^2 when the space has no official ZenNet there."""
    low = INITIAL_FLOOR * network_cost(space.initial_blocks(dataset), resolution, num_classes=num_classes).macs
    official = [network_cost(b, resolution, num_classes=num_classes).macs
                for _, b, _, _ in official_networks(space, resolution)]
    high = OFFICIAL_HEADROOM * max(official) if official else FALLBACK_MAX_MACS_AT_32 * (resolution / 32) ** 2
    return float(low), float(max(high, 2 * low))


def _stratified_targets(rng: random.Random, n: int, low: float, high: float) -> list[float]:
    """``n`` MACs targets, log-uniform over [low, high], one in each of ``n`` equal log-bins (stratified)."""
    a, b = math.log(low), math.log(high)
    return [math.exp(a + (b - a) * (i + rng.random()) / n) for i in range(n)]


def _scaled_to_macs(blocks: Sequence[BlockSpec], space, target: float, resolution: int, num_classes: int,
                    frozen: set[int]) -> tuple[BlockSpec, ...] | None:
    """``blocks`` with every free width multiplied by one factor, chosen so the MACs come near ``target``."""
    from ..space.mutation import rechain
    from ..space.units import smart_round

    hi_ch = space.max_channels or 4096

    def at(m: float) -> tuple[BlockSpec, ...]:
        out = []
        for i, b in enumerate(blocks):
            if i in frozen:
                out.append(b)
                continue
            w = min(hi_ch, max(space.min_channels, smart_round(b.out_channels * m, space.channel_base)))
            btn = None if b.bottleneck is None else min(hi_ch, max(space.min_channels,
                                                                   smart_round(b.bottleneck * m, space.channel_base)))
            out.append(BlockSpec(b.name, b.in_channels, w, b.stride, b.sub_layers, btn))
        return tuple(rechain(out))

    lo, hi = 1 / 1024, 64.0
    best = None
    for _ in range(40):  # bisection on log(m); MACs grow with m
        m = math.sqrt(lo * hi)
        cand = at(m)
        macs = network_cost(cand, resolution, num_classes=num_classes).macs
        if best is None or abs(math.log(macs / target)) < abs(math.log(best[1] / target)):
            best = (cand, macs)
        if macs < target:
            lo = m
        else:
            hi = m
    return best[0] if best is not None and abs(math.log(best[1] / target)) < math.log(1.3) else None


def _template(initial: Sequence[BlockSpec], rng: random.Random, space, lead: str, max_layers: int | None
              ) -> tuple[list[BlockSpec], set[int]]:
    """A random network on the initial structure's stride schedule: the stem, one residual block per initial one
    (sometimes followed by an extra stride-1 block), the final 1x1; block types favour ``lead``; widths, bottleneck
    ratios and sub_layers are drawn freely. Returns the blocks and the indices of blocks whose width is fixed."""
    from ..space.registry import BLOCK_TYPES, CONV

    types = space.block_types
    body = [b for b in initial if BLOCK_TYPES.get(b.name).family != CONV]
    frozen: set[int] = set()
    stages = []
    for b in body:
        stages.append(b.stride)
        if rng.random() < 0.35:
            stages.append(1)
    budget = max_layers or 3 * len(stages)
    subs = [1] * len(stages)
    weights = [math.exp(rng.uniform(-1.5, 1.5)) for _ in stages]  # depth piles up in some stages, as in ZenNets
    for _ in range(rng.randint(0, max(0, budget - len(stages)))):
        subs[rng.choices(range(len(subs)), weights)[0]] += 1
    # width profile: a random growth per stride-2 stage (0.6x to 2.5x), each block jittered independently, so
    # the scaled networks range from wide-early (large activation maps) to narrow-early, as searched networks do
    # drawn 16x too wide (the MACs scaling shrinks them): widths and bottleneck ratios survive integer rounding
    base = 16 * max(space.min_channels, initial[0].out_channels) * math.exp(rng.uniform(-0.7, 2.5))
    stem = initial[0]
    blocks: list[BlockSpec] = [BlockSpec(stem.name, stem.in_channels, max(1, int(base * math.exp(rng.uniform(-0.7, 0.7)))),
                                         stem.stride, stem.sub_layers, None)]
    growth = math.exp(rng.uniform(math.log(0.6), math.log(2.5)))
    for stride, sub in zip(stages, subs):
        name = lead if rng.random() < 0.5 else types[rng.randrange(len(types))]
        fam = BLOCK_TYPES.get(name).family
        base *= growth if stride > 1 else 1.0
        width = base * math.exp(rng.uniform(-0.9, 0.9))
        ratio = math.exp(rng.uniform(math.log(1 / 8), math.log(0.5))) if "K1K" in name else \
            math.exp(rng.uniform(math.log(0.25), 0.0)) if fam != "inverted" else math.exp(rng.uniform(-1.0, 0.3))
        w = max(1, int(width))
        blocks.append(BlockSpec(name, blocks[-1].out_channels, w, stride, sub, max(1, int(w * ratio))))
    last = initial[-1]
    if space.freeze_1x1_conv:  # the final 1x1 keeps its width in this space
        frozen.add(len(blocks))
        width = last.out_channels
    else:  # free: from narrow to the 2048 of the ImageNet ZenNets, drawn 16x wide like the others
        width = 16 * math.exp(rng.uniform(math.log(64), math.log(2048)))
    blocks.append(BlockSpec(last.name, blocks[-1].out_channels, max(1, int(width)), last.stride, last.sub_layers,
                            None))
    return blocks, frozen


#: The most parameters a sampled network may have: its fp32 weights must fit protobuf's 2 GiB single-file ONNX limit
#: (with room for the graph), since ``zendeploy export`` refuses larger models and a table times what export ships.
MAX_EXPORTABLE_PARAMS = int(0.9 * 2**31 / 4)


def _new_network_macs(blocks, seen: set, layers: int | None, resolution: int, num_classes: int) -> int | None:
    """The MACs of ``blocks`` when it is a new structure within the layer limit that runs at ``resolution`` and that
    ``zendeploy export`` can write (at most ``MAX_EXPORTABLE_PARAMS`` parameters)."""
    from ..space.structure import num_layers

    if format_structure(blocks) in seen or (layers and num_layers(blocks) > layers):
        return None
    try:
        feature_resolutions(blocks, resolution)
    except StructureError:
        return None
    cost = network_cost(blocks, resolution, num_classes=num_classes)
    return None if cost.params > MAX_EXPORTABLE_PARAMS else cost.macs


def sample_covering_networks(space, dataset: str, n: int, *, resolution: int, seed: int, min_macs: float,
                             max_macs: float, num_classes: int = 1000, max_layers: int | None = None,
                             exclude: Sequence[str] = ()) -> list[tuple[BlockSpec, ...]]:
    """``n`` networks spread log-uniformly over [min_macs, max_macs] (stratified: one per log-bin), every block type
    of the space leading in turn, free widths (a random width profile on the initial stride schedule, scaled to the
    bin's MACs), within the space's layer limit: the range a search reaches, not only its start."""
    from ..space.mutation import split_blocks

    rng = random.Random(seed)
    initial = space.initial_blocks(dataset)
    layers = max_layers or space.default_max_layers(dataset)
    types = space.block_types
    seen = set(exclude)
    out: list[tuple[BlockSpec, ...]] = []
    for i, target in enumerate(_stratified_targets(rng, n, min_macs, max_macs)):
        for _ in range(200):
            blocks, frozen = _template(initial, rng, space, types[i % len(types)], layers)
            scaled = _scaled_to_macs(blocks, space, target, resolution, num_classes, frozen)
            if scaled is None:
                continue
            scaled = tuple(split_blocks(scaled, space.split_threshold))
            macs = _new_network_macs(scaled, seen, layers, resolution, num_classes)
            if macs is None or not (min_macs * 0.77 <= macs <= max_macs * 1.3):
                continue
            seen.add(format_structure(scaled))
            out.append(scaled)
            break
        else:
            raise LatencyTableError(f"could not sample a network of about {target / 1e6:.0f}M MACs from space "
                                    f"'{space.name}' (layers <= {layers}); widen --min-macs/--max-macs")
    return out


def _spread_over_macs(draw, n: int, *, rng: random.Random, min_macs: float, max_macs: float, resolution: int,
                      num_classes: int, layers: int | None, exclude: Sequence[str], what: str, space_name: str,
                      required: bool = True) -> list[tuple[BlockSpec, ...]]:
    """``n`` networks from ``draw()``, kept by rejection so each of ``n`` equal log-MACs bins over
    [min_macs, max_macs] gets one (sparse corners are filled with spares drawn elsewhere in the range); fewer than
    ``n`` is an error when ``required``, else what could be placed."""
    a, b = math.log(min_macs), math.log(max_macs)
    bins: list[tuple[BlockSpec, ...] | None] = [None] * n
    spare: list[tuple[BlockSpec, ...]] = []  # in range, but their bin was taken: fill bins the draws cannot reach
    seen = set(exclude)
    for attempt in range(300 * n):
        if all(x is not None for x in bins):
            break
        cur = draw()
        macs = _new_network_macs(cur, seen, layers, resolution, num_classes)
        if macs is None or not (min_macs <= macs <= max_macs):
            continue
        k = min(n - 1, int((math.log(macs) - a) / (b - a) * n))
        seen.add(format_structure(cur))
        if bins[k] is None:
            bins[k] = cur
        elif len(spare) < 4 * n:
            spare.append(cur)
    got = [x for x in bins if x is not None]
    rng.shuffle(spare)
    got += spare[: n - len(got)]
    if len(got) < n and required:
        raise LatencyTableError(f"could only place {len(got)} of {n} {what} over "
                                f"{min_macs / 1e6:.0f}M-{max_macs / 1e6:.0f}M MACs in space '{space_name}'")
    return got


def sample_random_width_networks(space, dataset: str, n: int, *, resolution: int, seed: int, min_macs: float,
                                 max_macs: float, num_classes: int = 1000, max_layers: int | None = None,
                                 exclude: Sequence[str] = (), required: bool = True) -> list[tuple[BlockSpec, ...]]:
    """Networks whose every block has an independent random type, width (log-uniform), bottleneck and depth, with an
    occasional extra stride-1 block: no common width profile, so thin blocks sit between wide ones as in searched
    networks. Part of a table's calibration set (``latency.profile.default_plan``): the sum of isolated units
    departs most from the network's time on such shapes, and a calibration that never saw them misses it."""
    from ..space.mutation import split_blocks
    from ..space.registry import BLOCK_TYPES, CONV
    from ..space.units import smart_round

    rng = random.Random(seed)
    initial = space.initial_blocks(dataset)
    types = space.block_types

    def draw() -> tuple[BlockSpec, ...]:
        blocks = [initial[0]]
        for blk in initial[1:-1]:
            if BLOCK_TYPES.get(blk.name).family == CONV:
                continue
            for stride in ([blk.stride] + ([1] if rng.random() < 0.4 else [])):
                name = types[rng.randrange(len(types))]
                w = smart_round(math.exp(rng.uniform(math.log(8), math.log(space.max_channels or 1024))), 8)
                btn = smart_round(math.exp(rng.uniform(math.log(8), math.log(max(8, w)))), 8)
                blocks.append(BlockSpec(name, blocks[-1].out_channels, w, stride, rng.randint(1, 4), btn))
        last = initial[-1]
        w = last.out_channels if space.freeze_1x1_conv else smart_round(
            math.exp(rng.uniform(math.log(64), math.log(2048))), 8)
        blocks.append(BlockSpec(last.name, blocks[-1].out_channels, w, 1, 1, None))
        return tuple(split_blocks(blocks, space.split_threshold))

    return _spread_over_macs(draw, n, rng=rng, min_macs=min_macs, max_macs=max_macs, resolution=resolution,
                             num_classes=num_classes, layers=max_layers or space.default_max_layers(dataset),
                             exclude=exclude, what="random-width networks", space_name=space.name, required=required)


def sample_validation_networks(space, dataset: str, n: int, *, resolution: int, seed: int, min_macs: float,
                               max_macs: float, num_classes: int = 1000, max_layers: int | None = None,
                               exclude: Sequence[str] = ()) -> list[tuple[BlockSpec, ...]]:
    """Held-out networks that no sampler of the table produces, spread evenly over [min_macs, max_macs]: random walks
    of the search's own mutations (1-12 moves of one or two blocks) from the official ZenNets of the space (when it
    has any) and from its initial structure: the networks a search visits. (A table's grid and calibration networks
    come from ``sample_covering_networks`` and ``sample_random_width_networks``.)"""
    from ..space.mutation import mutate

    rng = random.Random(seed)
    starts = [b for _, b, _, _ in official_networks(space, resolution)] + [space.initial_blocks(dataset)]

    def draw() -> tuple[BlockSpec, ...]:
        cur = starts[rng.randrange(len(starts))]
        for _ in range(rng.randint(1, 12)):
            cur = mutate(cur, rng, space, rng.choice((1, 2)))
        return tuple(cur)

    return _spread_over_macs(draw, n, rng=rng, min_macs=min_macs, max_macs=max_macs, resolution=resolution,
                             num_classes=num_classes, layers=max_layers or space.default_max_layers(dataset),
                             exclude=exclude, what="validation networks", space_name=space.name)
