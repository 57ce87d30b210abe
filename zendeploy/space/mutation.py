"""Mutation: the official ZenNAS ``get_new_random_structure_str`` as pure functions of (random.Random, blocks).

Official semantics reproduced (``evolution_search.py`` + ``SearchSpace/search_space_*.py`` + ``PlainNet``):

1. ``num_replaces`` times: pick a block index uniformly (``randint(0, n-1)``); an index already picked in this child
   is skipped (no redraw), so "two replacements" mutate one block with probability 1/n.
2. The picked block is replaced by one candidate drawn uniformly from the official candidate list (one draw):

   - plain conv blocks (``SuperConvK*BNRELU``): same type, same in_channels and stride, width from the scaled-width
     list, ``sub_layers`` set to 1 (the official candidate string hard-codes 1). In spaces with
     ``freeze_1x1_conv`` (the official IDW "fixfc" space) a ``SuperConvK1BNRELU`` keeps its width.
   - residual blocks: a type from the space's groups, out width and bottleneck width each from the scaled-width list
     of the current value, sub_layers from {s-2..s+2} without non-positive values; in_channels and stride kept.

   Scaled-width list: ``smart_round(clamp(c * f), 8)`` for f in {2.5, 2, 1.5, 1.25, 1, 1/1.25, 1/1.5, 1/2, 1/2.5}
   clamped to the space's bounds ([8, inf) IDW, [8, 2048] ResNet), duplicates removed.

   Candidate weighting (official quirk, reproduced with ``type_weighting='official'``): the official
   ``gen_search_space`` appends, for each type of a group, the group's growing candidate list to the list of lists
   and then rebinds it with ``list(set(...))``; the next type's candidates are first appended *in place* to the list
   object already stored. So in a group of n types, list j holds types 0..min(j+1, n-1), and type i (0-based) appears
   in ``n - max(0, i - 1)`` lists: in the ResNet space K1K3K1 : K1K5K1 : K1K7K1 = 3 : 3 : 2 (same for K3K3, K5K5,
   K7K7); in the IDW space E1K3 and E2K3 12 times, E4K3 11 times, ..., E6K7 twice. Within a type, each distinct
   (out, bottleneck, sub_layers) is equally likely (the product runs over de-duplicated lists). We draw one index
   over that virtual flattened list (the same distribution as the official ``random.choice``; the official order
   comes from Python's hash-randomised set iteration, so no fixed order could be "the" official one).
3. Widths are re-chained (each block's in_channels = the previous block's out_channels; the first block keeps its
   in_channels), then every residual block with ``sub_layers >= 6`` is split: official ``split(6)`` writes
   ``(in,out,stride,btn,6//2)`` + ``(out,out,1,btn,6-6//2)``, i.e. **3 + 3 whatever the original count** (a 7-layer
   block becomes 3 + 3). Conv blocks never split.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Sequence

from .registry import BLOCK_TYPES, CONV
from .structure import MAX_CHANNELS, BlockSpec
from .units import smart_round
from .spaces import SearchSpace


def _scaled(c: int, s: float) -> float:
    """c scaled by s with the official arithmetic: c * s for s >= 1, c / (1/s) for s < 1 (c/1.25, c/1.5, ...)."""
    if s >= 1:
        return c * s
    return c / round(1.0 / s, 9)


def channel_choices(channels: int, space: SearchSpace) -> list[int]:
    """Official ``get_select_student_channels_list``: distinct rounded scaled widths, largest first."""
    values = set()
    lo, hi = space.min_channels, space.max_channels
    for s in space.channel_scales:
        x = max(lo, _scaled(channels, s))
        if hi is not None:
            x = min(hi, x)
        v = smart_round(x, space.channel_base)
        if v >= lo and (hi is None or v <= hi) and v <= MAX_CHANNELS:
            values.add(v)
    if not values:  # only possible with exotic bounds; keep the block's own width
        values.add(channels)
    return sorted(values, reverse=True)


def sub_layer_choices(sub_layers: int, space: SearchSpace) -> list[int]:
    """Official ``get_select_student_sublayers_list`` minus the non-positive values (filtered by the official code)."""
    values = {max(0, round(sub_layers + d)) for d in space.sub_layer_deltas}
    values.discard(0)
    if not values:
        values.add(max(1, sub_layers))
    return sorted(values, reverse=True)


def type_weights(space: SearchSpace) -> list[tuple[str, int]]:
    """(type, multiplicity) in the official flattened candidate list (see module docstring)."""
    out: list[tuple[str, int]] = []
    for group in space.block_groups:
        n = len(group)
        for i, name in enumerate(group):
            out.append((name, n - max(0, i - 1) if space.type_weighting == "official" else 1))
    return out


def mutate_block(block: BlockSpec, rng: random.Random, space: SearchSpace) -> BlockSpec:
    """One official block replacement (one random draw)."""
    if BLOCK_TYPES.get(block.name).family == CONV:
        if space.freeze_1x1_conv and BLOCK_TYPES.get(block.name).kernel == 1:
            outs = [block.out_channels]
        else:
            outs = channel_choices(block.out_channels, space)
        out = outs[rng.randrange(len(outs))]
        return BlockSpec(block.name, block.in_channels, out, block.stride, 1, None)
    outs = channel_choices(block.out_channels, space)
    btns = channel_choices(block.bottleneck if block.bottleneck is not None else block.out_channels, space)
    subs = sub_layer_choices(block.sub_layers, space)
    per_type = len(outs) * len(btns) * len(subs)
    weights = type_weights(space)
    k = rng.randrange(sum(w for _, w in weights) * per_type)
    for name, w in weights:
        span = w * per_type
        if k < span:
            break
        k -= span
    k %= per_type
    out = outs[k // (len(btns) * len(subs))]
    btn = btns[(k // len(subs)) % len(btns)]
    sub = subs[k % len(subs)]
    return BlockSpec(name, block.in_channels, out, block.stride, sub, btn)


def rechain(blocks: Sequence[BlockSpec]) -> list[BlockSpec]:
    """Each block's in_channels := previous block's out_channels (the first block keeps its own)."""
    out = [blocks[0]]
    for b in blocks[1:]:
        prev = out[-1].out_channels
        out.append(b if b.in_channels == prev else replace(b, in_channels=prev))
    return out


def split_blocks(blocks: Sequence[BlockSpec], threshold: int = 6) -> list[BlockSpec]:
    """Official ``MasterNet.split``: a residual block with sub_layers >= threshold becomes
    (in,out,stride,btn,threshold//2) + (out,out,1,btn,threshold - threshold//2)."""
    out: list[BlockSpec] = []
    first, second = threshold // 2, threshold - threshold // 2
    for b in blocks:
        if b.bottleneck is not None and b.sub_layers >= threshold:
            out.append(replace(b, sub_layers=first))
            out.append(BlockSpec(b.name, b.out_channels, b.out_channels, 1, second, b.bottleneck))
        else:
            out.append(b)
    return out


def mutate(
    blocks: Sequence[BlockSpec], rng: random.Random, space: SearchSpace, num_replaces: int = 1
) -> tuple[BlockSpec, ...]:
    """A child of ``blocks``: ``num_replaces`` official block replacements, re-chained, then split."""
    new = list(blocks)
    picked: set[int] = set()
    for _ in range(num_replaces):
        i = rng.randint(0, len(new) - 1)
        if i in picked:  # official: `continue`, no redraw
            continue
        picked.add(i)
        new[i] = mutate_block(new[i], rng, space)
    return tuple(split_blocks(rechain(new), space.split_threshold))


def random_walk(
    blocks: Sequence[BlockSpec], rng: random.Random, space: SearchSpace, max_steps: int | None = None
) -> tuple[BlockSpec, ...]:
    """A random structure for random search: ``randint(1, max_steps)`` single-block mutations of ``blocks``
    (default ``max_steps`` = 4 x the number of blocks), each followed by re-chaining and splitting."""
    steps = rng.randint(1, max_steps or 4 * len(blocks))
    cur = tuple(blocks)
    for _ in range(steps):
        cur = mutate(cur, rng, space, 1)
    return cur
