"""The super-block types of the official ZenNAS search space, registered under their exact official names.

A block type is plain data (family, kernel, expansion); the PyTorch modules live in ``space/blocks.py`` and the
expansion of a block into residual units in ``space/units.py``. Families:

- ``conv``: ``SuperConvK{1,3,5,7}BNRELU(in,out,stride,sub_layers)``: sub_layers x (KxK conv, BN, ReLU).
- ``basic``: ``SuperResK{3,5,7}K{3,5,7}(in,out,stride,bottleneck,sub_layers)``: one basic residual unit per sub-layer
  (KxK in->bottleneck with the stride, then KxK bottleneck->out).
- ``bottleneck``: ``SuperResK1K{3,5,7}K1(...)``: two 1x1 -> KxK -> 1x1 bottleneck units per sub-layer.
- ``inverted``: ``SuperResIDWE{1,2,4,6}K{3,5,7}(...)``: two inverted-residual units (1x1 expand by E, depthwise KxK,
  1x1 project) per sub-layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry

CONV, BASIC, BOTTLENECK, INVERTED = "conv", "basic", "bottleneck", "inverted"


@dataclass(frozen=True)
class BlockType:
    name: str
    family: str
    kernel: int
    expansion: int = 1
    kernel2: int = 0  # second KxK of a basic unit; 0 means "same as kernel"

    @property
    def second_kernel(self) -> int:
        return self.kernel2 or self.kernel

    @property
    def has_bottleneck(self) -> bool:
        return self.family != CONV

    @property
    def arg_names(self) -> tuple[str, ...]:
        if self.has_bottleneck:
            return ("in_channels", "out_channels", "stride", "bottleneck_channels", "sub_layers")
        return ("in_channels", "out_channels", "stride", "sub_layers")

    @property
    def units_per_sub_layer(self) -> int:
        return 2 if self.family in (BOTTLENECK, INVERTED) else 1


BLOCK_TYPES: Registry[BlockType] = Registry("block type")

for _k in (1, 3, 5, 7):
    BLOCK_TYPES.register(f"SuperConvK{_k}BNRELU", BlockType(f"SuperConvK{_k}BNRELU", CONV, _k))
for _k in (3, 5, 7):
    for _k2 in (3, 5, 7):
        # The official code registers the square kernels (K3K3, K5K5, K7K7); mixed kernels are our extension.
        BLOCK_TYPES.register(f"SuperResK{_k}K{_k2}", BlockType(f"SuperResK{_k}K{_k2}", BASIC, _k, 1, _k2))
for _k in (3, 5, 7):
    BLOCK_TYPES.register(f"SuperResK1K{_k}K1", BlockType(f"SuperResK1K{_k}K1", BOTTLENECK, _k))
for _e in (1, 2, 4, 6):
    for _k in (3, 5, 7):
        BLOCK_TYPES.register(f"SuperResIDWE{_e}K{_k}", BlockType(f"SuperResIDWE{_e}K{_k}", INVERTED, _k, _e))


def list_blocks(include: str | None = None, exclude: str | None = None) -> list[str]:
    """Names of all registered super-block types, optionally filtered with fnmatch patterns."""
    return BLOCK_TYPES.names(include, exclude)


def get_block_type(name: str) -> BlockType:
    return BLOCK_TYPES.get(name)
