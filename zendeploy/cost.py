"""Exact analytic cost of a structure: multiply-accumulates (MACs) and parameters, per unit, per block and in total.

MACs are what ZenNAS and most NAS papers call "FLOPs" (one multiply-add counts once). We count the conv and linear
layers, as fvcore does for those operators: ``(C_in / groups) * C_out * k * k * H_out * W_out`` per conv and
``C_in * C_out`` per linear, with PyTorch's output size ``ceil(H / stride)`` for our 'same'-padded odd kernels. Unlike
the official counter we count the 1x1 projection shortcuts at their true output size (the official code divides
their cost by the stride a second time) and the SE convs at 1x1. Parameters are those of the built module exactly:
conv and linear weights, biases (projection convs and the classifier have one), BN weight and bias.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

from .space.structure import BlockSpec, format_structure, num_layers
from .space.units import HEAD, PROJ, PlacedUnit, Unit, iter_conv_layers, network_units, se_channels


@dataclass(frozen=True)
class UnitCost:
    macs: int
    params: int
    convs: int  # main-path convs (the depth convs), excluding SE and projection shortcuts
    output_resolution: int


@dataclass
class BlockCost:
    index: int
    block: str
    input_resolution: int
    output_resolution: int
    units: int
    macs: int = 0
    params: int = 0
    conv_layers: int = 0


@dataclass
class NetworkCost:
    structure: str
    resolution: int
    num_classes: int
    se: bool
    residual: bool
    macs: int
    params: int
    layers: int  # official ZenNAS "layers": sum of sub_layers
    conv_layers: int  # convs along the main path, including the stem and final 1x1 (no SE, no shortcuts)
    head_macs: int
    head_params: int
    blocks: list[BlockCost] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def unit_cost(unit: Unit, resolution: int) -> UnitCost:
    """MACs and parameters of one unit at an input resolution."""
    if unit.kind == HEAD:
        macs = unit.in_channels * unit.out_channels
        return UnitCost(macs, macs + unit.out_channels, 0, 1)
    macs = params = convs = 0
    res = resolution
    for in_c, out_c, k, stride, groups, bias in iter_conv_layers(unit):
        res = -(-res // stride)
        w = (in_c // groups) * out_c * k * k
        macs += w * res * res
        params += w + (out_c if bias else 0) + 2 * out_c  # + BN weight, bias
        convs += 1
    if unit.se:
        mid = unit.mid_channels
        s = se_channels(mid)
        macs += 2 * mid * s
        params += 2 * mid * s + 2 * s + 2 * mid
    if unit.shortcut == PROJ:
        macs += unit.in_channels * unit.out_channels * res * res
        params += unit.in_channels * unit.out_channels + unit.out_channels + 2 * unit.out_channels
    return UnitCost(macs, params, convs, res)


def placed_costs(placed: Sequence[PlacedUnit]) -> list[UnitCost]:
    return [unit_cost(p.unit, p.resolution) for p in placed]


def network_cost(
    blocks: Sequence[BlockSpec],
    resolution: int,
    *,
    num_classes: int = 1000,
    se: bool = False,
    residual: bool = True,
) -> NetworkCost:
    """Per-block and total MACs and parameters of a structure at an input resolution (classifier head included)."""
    placed = network_units(blocks, resolution, se=se, residual=residual, num_classes=num_classes)
    per_block = [
        BlockCost(i, str(b), 0, 0, 0) for i, b in enumerate(blocks)
    ]
    head_macs = head_params = 0
    for p, c in zip(placed, placed_costs(placed)):
        if p.unit.kind == HEAD:
            head_macs, head_params = c.macs, c.params
            continue
        bc = per_block[p.block_index]
        if bc.units == 0:
            bc.input_resolution = p.resolution
        bc.units += 1
        bc.macs += c.macs
        bc.params += c.params
        bc.conv_layers += c.convs
        bc.output_resolution = c.output_resolution
    return NetworkCost(
        structure=format_structure(blocks),
        resolution=resolution,
        num_classes=num_classes,
        se=se,
        residual=residual,
        macs=sum(b.macs for b in per_block) + head_macs,
        params=sum(b.params for b in per_block) + head_params,
        layers=num_layers(blocks),
        conv_layers=sum(b.conv_layers for b in per_block),
        head_macs=head_macs,
        head_params=head_params,
        blocks=per_block,
    )


def memory_estimate_bytes(blocks: Sequence[BlockSpec], resolution: int, *, batch: int = 1, num_classes: int = 1000,
                          se: bool = False) -> int:
    """A lower bound of what building and running the network takes, in bytes (float32): its weights, and the
    largest activation of any unit held alongside its input (twice for the proxies' two forward passes)."""
    cost = network_cost(blocks, resolution, num_classes=num_classes, se=se)
    largest = 0
    for p in network_units(blocks, resolution, se=se, residual=True, num_classes=num_classes):
        r_out = 1 if p.unit.kind == HEAD else -(-p.resolution // p.unit.stride)
        elems = p.unit.in_channels * p.resolution ** 2 + max(p.unit.mid_channels, p.unit.out_channels) * r_out ** 2
        largest = max(largest, elems)
    return 4 * (cost.params + 2 * batch * largest)


def check_fits(blocks: Sequence[BlockSpec], resolution: int, *, batch: int = 1, num_classes: int = 1000,
               se: bool = False, what: str = "this network") -> None:
    """Refuse, before any allocation, a network that cannot fit in this machine's memory (one line, with the
    estimate), instead of an allocator traceback or swapping after seconds of work."""
    import os

    from .errors import StructureError

    need = memory_estimate_bytes(blocks, resolution, batch=batch, num_classes=num_classes, se=se)
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return
    if need > 0.8 * have:
        raise StructureError(f"{what} needs at least {need / 2**30:.1f} GiB (weights and the largest activation at "
                             f"{resolution}x{resolution}, batch {batch}, {num_classes} classes); this machine has "
                             f"{have / 2**30:.1f} GiB")


def format_count(n: float | int | None) -> str:
    """400_000_000 -> '400M', 1_500 -> '1.5K' (what budgets and reports print)."""
    if n is None:
        return "-"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.4g}{suf}"
    return f"{n:.4g}"
