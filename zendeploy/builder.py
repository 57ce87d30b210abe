"""Build a PyTorch ZenNet from a zoo name, a structure string or parsed block specs.

    >>> from zendeploy import build_model
    >>> net = build_model("zennet_imagenet1k_flops400M_SE_res224")          # zoo entry: SE and classes from the entry
    >>> net = build_model("SuperConvK3BNRELU(3,8,2,1)SuperResK3K3(8,16,2,8,1)", num_classes=10)

Options: residual links on/off, SE on/off, number of classes. ``model.forward_pre_gap(x)`` runs the body only
(the features Zen-Score reads); ``model(x)`` adds global average pooling and the linear classifier.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from .errors import StructureError
from .space.blocks import build_unit
from .space.structure import BlockSpec, feature_resolutions, format_structure, parse_structure
from .space.units import Unit, block_units, HEAD


@dataclass(frozen=True)
class ResolvedStructure:
    """A structure with the settings that go with it (from the zoo entry, or defaults for a raw string)."""

    blocks: tuple[BlockSpec, ...]
    structure: str
    resolution: int | None = None
    num_classes: int = 1000
    se: bool = False
    zoo_name: str | None = None


def looks_like_structure(text: str) -> bool:
    """A structure string, complete or not (a missing final ')' is a malformed structure, not a zoo name)."""
    return "(" in text or ")" in text


def resolve(
    source: str | Sequence[BlockSpec],
    *,
    num_classes: int | None = None,
    se: bool | None = None,
    resolution: int | None = None,
) -> ResolvedStructure:
    """Turn a zoo name, structure string or block list into blocks plus settings.

    A setting given explicitly that contradicts a zoo entry raises (never silently wins); settings not given take the
    entry's values. A raw structure defaults to 1000 classes and no SE.
    """
    if isinstance(source, str):
        text = source.strip()
        if looks_like_structure(text):
            blocks = parse_structure(text)
            return ResolvedStructure(blocks, format_structure(blocks), resolution, _classes(num_classes), bool(se))
        from .zoo import ZOO, get_zoo

        if text in ZOO:
            entry = get_zoo(text)
            for what, given, have in (("num_classes", num_classes, entry.num_classes), ("se", se, entry.se)):
                if given is not None and given != have:
                    raise StructureError(f"zoo model '{text}' has {what}={have}; it cannot be built with {what}={given}")
            return ResolvedStructure(
                parse_structure(entry.structure), entry.structure, resolution or entry.resolution,
                entry.num_classes, entry.se, entry.name,
            )
        if os.path.exists(text) or text.endswith((".txt", ".json", ".pth", ".onnx")):
            raise StructureError(
                f"'{text}' looks like a file path, not a structure string or zoo name; read the structure from the "
                f"file first (the CLI takes a structure, --zoo NAME, or --run DIR)"
            )
        get_zoo(text)  # raises RegistryError with the closest zoo name
    blocks = tuple(source)  # type: ignore[arg-type]  # a str was handled above
    if not blocks or not all(isinstance(b, BlockSpec) for b in blocks):
        raise StructureError("expected a structure string, a zoo name or a sequence of BlockSpec")
    return ResolvedStructure(blocks, format_structure(blocks), resolution, _classes(num_classes), bool(se))


def _classes(num_classes: int | None) -> int:
    if num_classes is None:
        return 1000
    if num_classes < 1:
        raise StructureError(f"num_classes must be positive, got {num_classes}")
    return num_classes


class ZenNet(nn.Module):
    """A network built from block specs: ``body`` (one ``nn.Sequential`` of units per super-block) and ``head``."""

    def __init__(
        self,
        blocks: Sequence[BlockSpec],
        *,
        num_classes: int = 1000,
        se: bool = False,
        residual: bool = True,
    ):
        super().__init__()
        if num_classes < 1:
            raise StructureError(f"num_classes must be positive, got {num_classes}")
        self.blocks = tuple(blocks)
        self.structure = format_structure(self.blocks)
        self.num_classes = num_classes
        self.se = se
        self.residual = residual
        self.body = nn.Sequential(
            *[nn.Sequential(*[build_unit(u) for u in block_units(b, se=se, residual=residual)]) for b in self.blocks]
        )
        c = self.blocks[-1].out_channels
        self.head = build_unit(Unit(HEAD, c, num_classes, c, 1))

    @property
    def in_channels(self) -> int:
        return self.blocks[0].in_channels

    def forward_pre_gap(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def check_resolution(self, resolution: int) -> None:
        feature_resolutions(self.blocks, resolution)


def build_model(
    source: str | Sequence[BlockSpec],
    *,
    num_classes: int | None = None,
    se: bool | None = None,
    residual: bool = True,
) -> ZenNet:
    """Build a ZenNet from a zoo name, a structure string or block specs (see module docstring)."""
    r = resolve(source, num_classes=num_classes, se=se)
    return ZenNet(r.blocks, num_classes=r.num_classes, se=r.se, residual=residual)
