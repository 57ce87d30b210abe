"""Expansion of super-blocks into units: the single source of truth for what a structure contains.

A *unit* is the smallest piece the builder instantiates, the cost model counts and the latency table times: a plain
conv-BN-ReLU layer, a residual unit (basic, bottleneck or inverted), or the classifier head (global average pool +
linear). The rules follow the official ZenNAS implementation:

- ``SuperConvKxBNRELU``: ``sub_layers`` conv units; the first carries the block's stride. Never SE, never residual.
- ``SuperResKaKb``: per sub-layer one *basic* unit: KaxKa conv in->bottleneck (stride), BN, ReLU, [SE],
  KbxKb conv bottleneck->out, BN.
- ``SuperResK1KxK1``: per sub-layer two *bottleneck* units: 1x1 in->btn, BN, ReLU, KxK btn->btn (stride on the first
  unit of the block), BN, ReLU, [SE], 1x1 btn->out, BN; the second unit is out->btn->out.
- ``SuperResIDWExKx``: per sub-layer two *inverted* units: 1x1 expand to ``smart_round(c * E, 8)``, BN, ReLU,
  depthwise KxK (stride), BN, ReLU, [SE], 1x1 project, BN. The first unit projects to the bottleneck width
  (expanding the bottleneck, official semantics), the second expands ``out * E`` and projects to ``out``.

Shortcuts (when residual links are on): the first unit of every SuperRes block has a 1x1 conv (with bias) + BN
projection shortcut even when shapes match (official ``ResBlockProj``); later units project only when the stride or the
channel count changes, otherwise add the identity. A ReLU follows every residual unit (after the add). SE squeezes to
``max(1, round(C / 4))`` channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from .registry import BASIC, BOTTLENECK, CONV, INVERTED
from .structure import BlockSpec, feature_resolutions

PROJ, IDENTITY, NONE = "proj", "identity", "none"
HEAD = "head"


def smart_round(x: float, base: int | None = None) -> int:
    """Official ZenNAS width rounding: to a multiple of ``base`` (8/16/32 by size when None), at least ``base``."""
    if base is None:
        base = 32 if x > 32 * 8 else 16 if x > 16 * 8 else 8
    return int(max(base, round(x / float(base)) * base))


def se_channels(channels: int) -> int:
    return max(1, int(round(channels * 0.25)))


@dataclass(frozen=True)
class Unit:
    """One unit. ``mid_channels`` is the bottleneck (basic, bottleneck) or expanded depthwise width (inverted)."""

    kind: str  # conv | basic | bottleneck | inverted | head
    in_channels: int
    out_channels: int
    mid_channels: int
    kernel: int
    stride: int = 1
    kernel2: int = 0  # second kernel of a basic unit
    se: bool = False
    shortcut: str = NONE  # proj | identity | none

    @property
    def is_residual(self) -> bool:
        return self.shortcut != NONE


@dataclass(frozen=True)
class PlacedUnit:
    """A unit at its place in a network: which block it comes from and the input resolution it sees."""

    unit: Unit
    block_index: int  # 0-based; -1 for the head
    resolution: int


def _auto_shortcut(in_c: int, out_c: int, stride: int) -> str:
    return PROJ if (stride > 1 or in_c != out_c) else IDENTITY


def block_units(block: BlockSpec, *, se: bool = False, residual: bool = True) -> list[Unit]:
    """The units of one super-block, in forward order."""
    btype = block.block_type
    k = btype.kernel
    units: list[Unit] = []
    last = block.in_channels
    stride = block.stride
    out = block.out_channels
    btn = block.bottleneck if block.bottleneck is not None else out  # set for every family that uses it
    use_se = se and btype.family != CONV
    for i in range(block.sub_layers):
        if btype.family == CONV:
            units.append(Unit(CONV, last, out, out, k, stride))
        elif btype.family == BASIC:
            sc = (PROJ if i == 0 else _auto_shortcut(last, out, stride)) if residual else NONE
            units.append(Unit(BASIC, last, out, btn, k, stride, btype.second_kernel, use_se, sc))
        elif btype.family == BOTTLENECK:
            sc = (PROJ if i == 0 else _auto_shortcut(last, out, stride)) if residual else NONE
            units.append(Unit(BOTTLENECK, last, out, btn, k, stride, 0, use_se, sc))
            sc2 = IDENTITY if residual else NONE
            units.append(Unit(BOTTLENECK, out, out, btn, k, 1, 0, use_se, sc2))
        elif btype.family == INVERTED:
            e = btype.expansion
            sc = (PROJ if i == 0 else _auto_shortcut(last, btn, stride)) if residual else NONE
            units.append(Unit(INVERTED, last, btn, smart_round(btn * e, 8), k, stride, 0, use_se, sc))
            sc2 = _auto_shortcut(btn, out, 1) if residual else NONE
            units.append(Unit(INVERTED, btn, out, smart_round(out * e, 8), k, 1, 0, use_se, sc2))
        else:  # pragma: no cover - registry and this table are kept in step by tests
            raise AssertionError(f"unhandled block family {btype.family}")
        last = out
        stride = 1
    return units


def unit_output_resolution(unit: Unit, resolution: int) -> int:
    if unit.kind == HEAD:
        return 1
    return -(-resolution // unit.stride)


def network_units(
    blocks: Sequence[BlockSpec],
    resolution: int,
    *,
    se: bool = False,
    residual: bool = True,
    num_classes: int | None = None,
) -> list[PlacedUnit]:
    """Every unit of a network with its input resolution; the head (GAP + linear) last when ``num_classes``."""
    placed: list[PlacedUnit] = []
    res_in = feature_resolutions(blocks, resolution)
    res = resolution
    for bi, block in enumerate(blocks):
        res = res_in[bi]
        for unit in block_units(block, se=se, residual=residual):
            placed.append(PlacedUnit(unit, bi, res))
            res = unit_output_resolution(unit, res)
    if num_classes:
        c = blocks[-1].out_channels
        placed.append(PlacedUnit(Unit(HEAD, c, num_classes, c, 1), -1, res))
    return placed


def iter_conv_layers(unit: Unit) -> Iterator[tuple[int, int, int, int, int, bool]]:
    """(in, out, kernel, stride, groups, bias) of every conv of the unit's main path, in order (no SE, no shortcut)."""
    if unit.kind == CONV:
        yield (unit.in_channels, unit.out_channels, unit.kernel, unit.stride, 1, False)
    elif unit.kind == BASIC:
        yield (unit.in_channels, unit.mid_channels, unit.kernel, unit.stride, 1, False)
        yield (unit.mid_channels, unit.out_channels, unit.kernel2 or unit.kernel, 1, 1, False)
    elif unit.kind == BOTTLENECK:
        yield (unit.in_channels, unit.mid_channels, 1, 1, 1, False)
        yield (unit.mid_channels, unit.mid_channels, unit.kernel, unit.stride, 1, False)
        yield (unit.mid_channels, unit.out_channels, 1, 1, 1, False)
    elif unit.kind == INVERTED:
        yield (unit.in_channels, unit.mid_channels, 1, 1, 1, False)
        yield (unit.mid_channels, unit.mid_channels, unit.kernel, unit.stride, unit.mid_channels, False)
        yield (unit.mid_channels, unit.out_channels, 1, 1, 1, False)
