"""Structure strings: the one currency between zendeploy's stages (official ZenNAS format).

Grammar (blocks written back to back, no separators; whitespace between and inside blocks is tolerated on input and
never written on output)::

    structure  := block+
    block      := NAME "(" INT ("," INT)* ")"
    NAME       := a registered super-block type, e.g. SuperConvK3BNRELU, SuperResK1K5K1, SuperResIDWE6K7
    args       := in,out,stride,sub_layers                      for SuperConvK*BNRELU
                | in,out,stride,bottleneck,sub_layers           for SuperRes*

Example (the start of the official ZenNet-0.1ms)::

    SuperConvK3BNRELU(3,24,2,1)SuperResK1K5K1(24,32,2,40,1)SuperResK1K5K1(32,64,2,40,1)...

Parsing and building are separate steps: text -> tuple of frozen :class:`BlockSpec` (hashable, usable as cache keys)
-> modules (``zendeploy.builder``). ``format_structure(parse_structure(s)) == s`` for every canonical string.
Every error is a :class:`~zendeploy.errors.StructureError` naming the block position and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from ..errors import StructureError
from ..registry import unknown_name_message
from .registry import BLOCK_TYPES, BlockType

# Sanity bounds: beyond these a "network" is a typo, and building it would exhaust memory.
MAX_CHANNELS = 1 << 16
MAX_STRIDE = 8
MAX_SUB_LAYERS = 256

_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*", re.ASCII)
_INT = re.compile(r"\s*([0-9]+)\s*", re.ASCII)


@dataclass(frozen=True)
class BlockSpec:
    """One super-block of a structure. ``bottleneck`` is None for ``SuperConvK*BNRELU`` blocks."""

    name: str
    in_channels: int
    out_channels: int
    stride: int
    sub_layers: int
    bottleneck: int | None = None

    @property
    def block_type(self) -> BlockType:
        return BLOCK_TYPES.get(self.name)

    @property
    def family(self) -> str:
        return self.block_type.family

    @property
    def kernel(self) -> int:
        return self.block_type.kernel

    def args(self) -> tuple[int, ...]:
        if self.bottleneck is None:
            return (self.in_channels, self.out_channels, self.stride, self.sub_layers)
        return (self.in_channels, self.out_channels, self.stride, self.bottleneck, self.sub_layers)

    def __str__(self) -> str:
        return f"{self.name}({','.join(str(a) for a in self.args())})"

    def with_(self, **changes) -> "BlockSpec":
        """A copy with some fields changed (validated again)."""
        new = replace(self, **changes)
        _check_block(new, position=None)
        return new


def make_block(name: str, *args: int) -> BlockSpec:
    """Build a validated BlockSpec from a type name and its official positional arguments."""
    btype = _lookup(name, position=None)
    return _from_args(btype, list(args), position=None)


def parse_structure(text: str) -> tuple[BlockSpec, ...]:
    """Parse an official structure string into block specs, checking names, arity, values and channel chaining."""
    if not isinstance(text, str):
        raise StructureError(f"structure must be a string, got {type(text).__name__}")
    if not text.strip():
        raise StructureError("structure string is empty")
    blocks: list[BlockSpec] = []
    pos = 0
    n = len(text)
    while pos < n:
        if text[pos:].strip() == "":
            break
        index = len(blocks) + 1
        where = f"block {index} (character {pos + 1})"
        m = _NAME.match(text, pos)
        if not m:
            raise StructureError(f"{where}: expected a block name, found '{_show(text[pos:pos + 20])}'")
        name = m.group(1)
        pos = m.end()
        if pos >= n or text[pos] != "(":
            raise StructureError(f"{where}: expected '(' after block name '{name}'")
        btype = _lookup(name, position=index)
        pos += 1
        close = text.find(")", pos)
        if close < 0:
            raise StructureError(f"{where}: missing ')' after '{name}('")
        inner = text[pos:close]
        if "(" in inner:
            raise StructureError(f"{where}: missing ')' after '{name}(' (found a nested '(')")
        if "|" in inner:
            raise StructureError(f"{where}: named blocks ('name|...') are not supported in {name}(...)")
        args = []
        for raw in inner.split(","):
            im = _INT.fullmatch(raw)
            if not im:
                shown = _show(raw) or "<empty>"
                raise StructureError(f"{where}: {name} argument '{shown}' is not a non-negative integer")
            args.append(int(im.group(1)))
        blocks.append(_from_args(btype, args, position=index))
        pos = close + 1
    check_chain(blocks)
    return tuple(blocks)


def format_structure(blocks: Iterable[BlockSpec]) -> str:
    """The official string of a sequence of blocks."""
    return "".join(str(b) for b in blocks)


def check_chain(blocks: Sequence[BlockSpec]) -> None:
    """Each block's in_channels must equal the previous block's out_channels."""
    if not blocks:
        raise StructureError("structure has no blocks")
    for i in range(1, len(blocks)):
        prev, cur = blocks[i - 1], blocks[i]
        if cur.in_channels != prev.out_channels:
            raise StructureError(
                f"block {i + 1} ({cur.name}) has in_channels {cur.in_channels} but block {i} ({prev.name}) "
                f"outputs {prev.out_channels} channels"
            )


def feature_resolutions(blocks: Sequence[BlockSpec], resolution: int) -> list[int]:
    """Input resolution of every block (PyTorch conv arithmetic: ceil(r / stride) for odd kernels, 'same' pad).

    Raises StructureError when a stride would reduce a feature map below 1 pixel (a stride > 1 applied to a map
    smaller than the stride).
    """
    if not isinstance(resolution, int) or resolution < 1:
        raise StructureError(f"resolution must be a positive integer, got {resolution!r}")
    res = resolution
    out = []
    for i, b in enumerate(blocks, 1):
        out.append(res)
        if b.stride > 1 and res // b.stride < 1:
            raise StructureError(
                f"block {i} ({b.name}, stride {b.stride}) receives a {res}x{res} feature map: input resolution "
                f"{resolution} is too small for this structure (strides reduce it below 1 pixel)"
            )
        res = -(-res // b.stride)
    return out


def total_stride(blocks: Sequence[BlockSpec]) -> int:
    s = 1
    for b in blocks:
        s *= b.stride
    return s


def num_layers(blocks: Sequence[BlockSpec]) -> int:
    """The official 'layers' of a structure: the sum of sub_layers."""
    return sum(b.sub_layers for b in blocks)


def _show(text: str) -> str:
    """User text for a one-line message: whitespace runs (newlines included) collapsed to one space."""
    return " ".join(text.split())


def _lookup(name: str, position: int | None) -> BlockType:
    if name in BLOCK_TYPES:
        return BLOCK_TYPES.get(name)
    where = f"block {position}: " if position is not None else ""
    raise StructureError(where + unknown_name_message("block type", name, BLOCK_TYPES.names()))


def _from_args(btype: BlockType, args: list[int], position: int | None) -> BlockSpec:
    names = btype.arg_names
    if len(args) != len(names):
        where = f"block {position}: " if position is not None else ""
        raise StructureError(
            f"{where}{btype.name} takes {len(names)} arguments ({','.join(names)}), got {len(args)}"
        )
    values = dict(zip(names, args))
    spec = BlockSpec(
        name=btype.name,
        in_channels=values["in_channels"],
        out_channels=values["out_channels"],
        stride=values["stride"],
        sub_layers=values["sub_layers"],
        bottleneck=values.get("bottleneck_channels"),
    )
    _check_block(spec, position)
    return spec


def _check_block(spec: BlockSpec, position: int | None) -> None:
    where = f"block {position} ({spec.name})" if position is not None else spec.name
    if spec.name not in BLOCK_TYPES:
        raise StructureError(unknown_name_message("block type", spec.name, BLOCK_TYPES.names()))
    has_btn = BLOCK_TYPES.get(spec.name).has_bottleneck
    if has_btn and spec.bottleneck is None:
        raise StructureError(f"{where}: bottleneck_channels is required")
    if not has_btn and spec.bottleneck is not None:
        raise StructureError(f"{where}: takes no bottleneck_channels")
    checks = [
        ("in_channels", spec.in_channels, MAX_CHANNELS),
        ("out_channels", spec.out_channels, MAX_CHANNELS),
        ("stride", spec.stride, MAX_STRIDE),
        ("sub_layers", spec.sub_layers, MAX_SUB_LAYERS),
    ]
    if spec.bottleneck is not None:
        checks.append(("bottleneck_channels", spec.bottleneck, MAX_CHANNELS))
    for field, value, limit in checks:
        if not isinstance(value, int) or isinstance(value, bool):
            raise StructureError(f"{where}: {field} must be an integer, got {value!r}")
        if value <= 0:
            raise StructureError(f"{where}: {field} must be positive, got {value}")
        if value > limit:
            raise StructureError(f"{where}: {field} {value} exceeds the supported maximum {limit}")
