"""Search spaces: which block types a mutation may pick, width bounds, initial structures, layer limits, SE.

Two built-ins reproduce the official ZenNAS spaces (idstcv/ZenNAS, ``SearchSpace/*.py`` and ``scripts/*.sh``):

- ``mobilenet``: ``SearchSpace/search_space_IDW_fixfc.py``. Inverted-residual blocks ``SuperResIDWE{1,2,4,6}K{3,5,7}``
  in one group (official order E1K3, E2K3, E4K3, E6K3, E1K5, ... E6K7), widths >= 8 with no upper bound, and every
  ``SuperConvK1BNRELU`` keeps its width ("fixfc": the final 1x1 conv never changes).
  ImageNet initial structure: ``scripts/Zen_NAS_ImageNet_flops{400,600,800}M.sh`` (max_layers 14 as in the 400M
  script). The official repository never searches CIFAR in this space; the CIFAR initial structure here is
  zendeploy's own (the ImageNet one with the stem and first block at stride 1, the stride pattern of the official
  CIFAR initial structure, and a 512-wide final 1x1 as in the official CIFAR ZenNets).
- ``resnet``: ``SearchSpace/search_space_XXBL.py``. Two groups, ``SuperResK1K{3,5,7}K1`` bottlenecks and
  ``SuperResK{3,5,7}K{3,5,7}`` basic blocks (the official square kernels K3K3, K5K5, K7K7), widths in [8, 2048]; every
  block may change, the final 1x1 included. ImageNet initial structure: ``scripts/Zen_NAS_ImageNet_latency*.sh``
  (max_layers 20 as in the 0.5 ms script). Its official text ends ``SuperResK3K3(256,512,2,256,1)
  SuperConvK1BNRELU(256,512,1,1)``: the channels do not chain; the official loop never scores the initial structure
  and re-chains every child, so every child has ``SuperConvK1BNRELU(512,512,1,1)``; we store it re-chained.
  CIFAR initial structure: ``scripts/Zen_NAS_cifar_params{1,2}M.sh`` (max_layers 18 as in the 1M script).

Official search settings kept as dataset defaults: resolution 224 / 32, ``num_classes`` 1000 / 100 (the official CIFAR
scripts search with 100 classes).

A space can also be a YAML or JSON file (see :func:`load_space` and ``tests/fixtures/search/*.yaml``)::

    name: tiny-resnet
    block_types: [[SuperResK1K3K1, SuperResK1K5K1], [SuperResK3K3]]   # groups; a flat list is one group
    min_channels: 8
    max_channels: 512
    initial:
      cifar: "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)...SuperConvK1BNRELU(64,128,1,1)"
    max_layers: {cifar: 18}
    se: false
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from ..errors import SearchSpaceError, StructureError
from ..registry import unknown_name_message
from .registry import BLOCK_TYPES, CONV
from .structure import BlockSpec, MAX_CHANNELS, feature_resolutions, parse_structure

# get_select_student_channels_list: [c*2.5, c*2, c*1.5, c*1.25, c, c/1.25, c/1.5, c/2, c/2.5]
OFFICIAL_CHANNEL_SCALES = (2.5, 2.0, 1.5, 1.25, 1.0, 1 / 1.25, 1 / 1.5, 1 / 2, 1 / 2.5)
# get_select_student_sublayers_list: [s, s+1, s+2, s-1, s-2], non-positive values dropped
OFFICIAL_SUB_LAYER_DELTAS = (0, 1, 2, -1, -2)
OFFICIAL_SPLIT_THRESHOLD = 6  # MasterNet.split(split_layer_threshold=6)

DATASET_DEFAULTS = {
    "imagenet": {"resolution": 224, "num_classes": 1000},
    "cifar": {"resolution": 32, "num_classes": 100},
}
DEFAULT_KEY = "default"  # a space file with one initial structure (no dataset keys)


@dataclass(frozen=True)
class SearchSpace:
    """A search space. ``block_groups`` mirror the official ``seach_space_block_type_list_list``."""

    name: str
    block_groups: tuple[tuple[str, ...], ...]
    initial: dict[str, str]  # dataset -> official structure string
    max_layers: dict[str, int] = field(default_factory=dict)  # dataset -> default layer budget
    min_channels: int = 8
    max_channels: int | None = None
    channel_base: int = 8  # widths are smart_round(x, channel_base): multiples of 8 in both official spaces
    channel_scales: tuple[float, ...] = OFFICIAL_CHANNEL_SCALES
    sub_layer_deltas: tuple[int, ...] = OFFICIAL_SUB_LAYER_DELTAS
    freeze_1x1_conv: bool = False  # official "fixfc": SuperConvK1BNRELU blocks keep their width
    split_threshold: int = OFFICIAL_SPLIT_THRESHOLD
    se: bool = False  # costs and latency of candidates are counted with SE; the proxy never uses SE (official)
    type_weighting: str = "official"  # 'official' (the official code's type multiplicities, see mutation.py) | 'uniform'
    description: str = ""
    source: str = ""  # 'builtin' or the file it was loaded from

    @property
    def block_types(self) -> list[str]:
        seen: list[str] = []
        for group in self.block_groups:
            for name in group:
                if name not in seen:
                    seen.append(name)
        return seen

    @property
    def datasets(self) -> list[str]:
        return list(self.initial)

    def dataset_for(self, resolution: int | None = None, dataset: str | None = None) -> str:
        """Which initial structure to use: ``dataset`` when given, the only one, or by resolution (<= 64: cifar)."""
        if dataset is not None:
            if dataset in self.initial:
                return dataset
            raise SearchSpaceError(
                f"space '{self.name}' has no initial structure for dataset '{dataset}' "
                f"(it has: {', '.join(self.initial)})"
            )
        if len(self.initial) == 1:
            return next(iter(self.initial))
        guess = "cifar" if (resolution is not None and resolution <= 64) else "imagenet"
        if guess in self.initial:
            return guess
        return next(iter(self.initial))

    def initial_blocks(self, dataset: str) -> tuple[BlockSpec, ...]:
        return parse_structure(self.initial[dataset])

    def default_resolution(self, dataset: str) -> int | None:
        return DATASET_DEFAULTS.get(dataset, {}).get("resolution")

    def default_num_classes(self, dataset: str) -> int:
        return DATASET_DEFAULTS.get(dataset, {}).get("num_classes", 1000)

    def default_max_layers(self, dataset: str) -> int | None:
        return self.max_layers.get(dataset, self.max_layers.get(DEFAULT_KEY))

    def to_dict(self) -> dict:
        """The space in the space-file schema: ``space_from_dict(space.to_dict())`` rebuilds it."""
        return {
            "name": self.name, "description": self.description,
            "block_types": [list(g) for g in self.block_groups], "initial": dict(self.initial),
            "max_layers": dict(self.max_layers), "min_channels": self.min_channels,
            "max_channels": self.max_channels, "channel_base": self.channel_base,
            "channel_scales": list(self.channel_scales), "sub_layer_deltas": list(self.sub_layer_deltas),
            "freeze_1x1_conv": self.freeze_1x1_conv, "split_threshold": self.split_threshold, "se": self.se,
            "type_weighting": self.type_weighting,
        }

    def check_resolution(self, dataset: str, resolution: int) -> None:
        try:
            feature_resolutions(self.initial_blocks(dataset), resolution)
        except StructureError as exc:
            raise SearchSpaceError(f"space '{self.name}' ({dataset}): {exc}") from None


_IDW = tuple(f"SuperResIDWE{e}K{k}" for k in (3, 5, 7) for e in (1, 2, 4, 6))

MOBILENET = SearchSpace(
    name="mobilenet",
    block_groups=(_IDW,),
    initial={
        "imagenet": (
            "SuperConvK3BNRELU(3,8,2,1)SuperResIDWE6K3(8,32,2,8,1)SuperResIDWE6K3(32,48,2,32,1)"
            "SuperResIDWE6K3(48,96,2,48,1)SuperResIDWE6K3(96,128,2,96,1)SuperConvK1BNRELU(128,2048,1,1)"
        ),
        "cifar": (  # zendeploy's own: the official repository has no CIFAR search in this space
            "SuperConvK3BNRELU(3,8,1,1)SuperResIDWE6K3(8,32,1,8,1)SuperResIDWE6K3(32,48,2,32,1)"
            "SuperResIDWE6K3(48,96,2,48,1)SuperResIDWE6K3(96,128,2,96,1)SuperConvK1BNRELU(128,512,1,1)"
        ),
    },
    max_layers={"imagenet": 14, "cifar": 18},
    min_channels=8,
    max_channels=None,
    freeze_1x1_conv=True,
    description="official IDW space (search_space_IDW_fixfc.py): inverted residual E{1,2,4,6}K{3,5,7}, final 1x1 fixed",
    source="builtin",
)

RESNET = SearchSpace(
    name="resnet",
    block_groups=(
        ("SuperResK1K3K1", "SuperResK1K5K1", "SuperResK1K7K1"),
        ("SuperResK3K3", "SuperResK5K5", "SuperResK7K7"),
    ),
    initial={
        "imagenet": (  # official text has SuperConvK1BNRELU(256,512,1,1): re-chained, as every official child is
            "SuperConvK3BNRELU(3,32,2,1)SuperResK3K3(32,64,2,32,1)SuperResK3K3(64,128,2,64,1)"
            "SuperResK3K3(128,256,2,128,1)SuperResK3K3(256,512,2,256,1)SuperConvK1BNRELU(512,512,1,1)"
        ),
        "cifar": (
            "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,1,8,1)SuperResK3K3(16,32,2,16,1)"
            "SuperResK3K3(32,64,2,32,1)SuperResK3K3(64,64,2,32,1)SuperConvK1BNRELU(64,128,1,1)"
        ),
    },
    max_layers={"imagenet": 20, "cifar": 18},
    min_channels=8,
    max_channels=2048,
    freeze_1x1_conv=False,
    description="official ResNet space (search_space_XXBL.py): K1K{3,5,7}K1 bottlenecks, K{3,5,7}K{3,5,7} basic blocks",
    source="builtin",
)

BUILTIN_SPACES: dict[str, SearchSpace] = {"mobilenet": MOBILENET, "resnet": RESNET}


def list_spaces() -> list[str]:
    return list(BUILTIN_SPACES)


# --------------------------------------------------------------------------------------------------- space files


def _space_model():
    """The pydantic model of a space file (built lazily: pydantic is only imported when a file is loaded)."""
    from pydantic import BaseModel, ConfigDict, field_validator, model_validator

    class SpaceFile(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=False)

        name: Optional[str] = None
        description: str = ""
        block_types: Union[list[str], list[list[str]]]
        initial: Union[str, dict[str, str]]
        max_layers: Union[int, dict[str, int], None] = None
        min_channels: int = 8
        max_channels: Optional[int] = None
        channel_base: int = 8
        channel_scales: list[float] = list(OFFICIAL_CHANNEL_SCALES)
        sub_layer_deltas: list[int] = list(OFFICIAL_SUB_LAYER_DELTAS)
        freeze_1x1_conv: bool = False
        split_threshold: int = OFFICIAL_SPLIT_THRESHOLD
        se: bool = False
        type_weighting: Literal["official", "uniform"] = "official"

        @field_validator("block_types")
        @classmethod
        def _types(cls, v):
            groups = [v] if v and isinstance(v[0], str) else v
            if not groups or any(not g for g in groups):
                raise ValueError("must name at least one block type in every group")
            for g in groups:
                for name in g:
                    if name not in BLOCK_TYPES:
                        raise ValueError(unknown_name_message("block type", name, BLOCK_TYPES.names()))
                    if BLOCK_TYPES.get(name).family == CONV:
                        raise ValueError(
                            f"'{name}' is a plain conv block; block_types lists the SuperRes types a residual block "
                            f"may become (conv blocks keep their type and only change width)"
                        )
            return groups

        @field_validator("initial")
        @classmethod
        def _initial(cls, v):
            items = {DEFAULT_KEY: v} if isinstance(v, str) else v
            if not items:
                raise ValueError("must give at least one initial structure")
            for key, text in items.items():
                try:
                    parse_structure(text)
                except StructureError as exc:
                    where = "" if key == DEFAULT_KEY else f"{key}: "
                    raise ValueError(f"{where}{exc}") from None
            return items

        @field_validator("min_channels", "channel_base", "split_threshold")
        @classmethod
        def _positive(cls, v):
            if v < 1:
                raise ValueError(f"must be positive, got {v}")
            return v

        @field_validator("channel_scales")
        @classmethod
        def _scales(cls, v):
            if not v or any(not (0 < s <= 100) for s in v):
                raise ValueError("must be a non-empty list of positive factors")
            return v

        @field_validator("sub_layer_deltas")
        @classmethod
        def _deltas(cls, v):
            if not v:
                raise ValueError("must be a non-empty list of integers")
            return v

        @field_validator("max_layers")
        @classmethod
        def _max_layers(cls, v):
            vals = [v] if isinstance(v, int) else list((v or {}).values())
            if any(x < 1 for x in vals):
                raise ValueError("must be positive")
            return v

        @model_validator(mode="after")
        def _bounds(self):
            if self.min_channels % self.channel_base:
                raise ValueError(f"min_channels {self.min_channels} is not a multiple of channel_base "
                                 f"{self.channel_base}")
            if self.max_channels is not None:
                if self.max_channels < self.min_channels:
                    raise ValueError(f"max_channels {self.max_channels} is below min_channels {self.min_channels}")
                if self.max_channels % self.channel_base:
                    raise ValueError(f"max_channels {self.max_channels} is not a multiple of channel_base "
                                     f"{self.channel_base}")
                if self.max_channels > MAX_CHANNELS:
                    raise ValueError(f"max_channels {self.max_channels} exceeds the supported maximum {MAX_CHANNELS}")
            if self.split_threshold < 2:
                raise ValueError("split_threshold must be at least 2")
            return self

    return SpaceFile


def _format_validation_error(path: str, exc) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("list[str]", "list[list[str]]", "str",
                                                                    "dict[str,str]", "int", "dict[str,int]"))
    msg = str(err.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if err.get("type") == "missing":
        msg = "is required"
    elif err.get("type") == "extra_forbidden":
        msg = "is not a known field (known: name, description, block_types, initial, max_layers, min_channels, " \
              "max_channels, channel_base, channel_scales, sub_layer_deltas, freeze_1x1_conv, split_threshold, se, " \
              "type_weighting)"
    if loc:
        field_part = f"field '{loc}' " if msg.startswith("is ") else f"field '{loc}': "
    else:
        field_part = ""
    return f"space file '{path}': {field_part}{msg}".replace("\n", " ")


def space_from_dict(data: Any, *, source: str = "<dict>", default_name: str = "custom") -> SearchSpace:
    """Validate a space definition (the parsed YAML/JSON) and build a SearchSpace; errors are one line."""
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise SearchSpaceError(f"space file '{source}': expected a mapping of fields, got {type(data).__name__}")
    model = _space_model()
    try:
        m = model.model_validate(data)
    except ValidationError as exc:
        raise SearchSpaceError(_format_validation_error(source, exc)) from None
    if isinstance(m.max_layers, int):
        max_layers = {k: m.max_layers for k in m.initial}
    else:
        max_layers = dict(m.max_layers or {})
        unknown = [k for k in max_layers if k not in m.initial]
        if unknown:
            raise SearchSpaceError(f"space file '{source}': field 'max_layers' names dataset '{unknown[0]}', which "
                                   f"has no initial structure (have: {', '.join(m.initial)})")
    return SearchSpace(
        name=m.name or default_name,
        block_groups=tuple(tuple(g) for g in m.block_types),
        initial=dict(m.initial),
        max_layers=max_layers,
        min_channels=m.min_channels,
        max_channels=m.max_channels,
        channel_base=m.channel_base,
        channel_scales=tuple(float(s) for s in m.channel_scales),
        sub_layer_deltas=tuple(int(d) for d in m.sub_layer_deltas),
        freeze_1x1_conv=m.freeze_1x1_conv,
        split_threshold=m.split_threshold,
        se=m.se,
        type_weighting=m.type_weighting,
        description=m.description,
        source=source,
    )


def load_space(name_or_file: str | os.PathLike | SearchSpace) -> SearchSpace:
    """A built-in space by name (``mobilenet``, ``resnet``) or a YAML/JSON space file."""
    if isinstance(name_or_file, SearchSpace):
        return name_or_file
    text = str(name_or_file).strip()
    if text in BUILTIN_SPACES:
        return BUILTIN_SPACES[text]
    path = Path(text)
    looks_like_file = path.suffix.lower() in (".yaml", ".yml", ".json") or os.sep in text or "/" in text
    if not path.is_file():
        if looks_like_file:
            raise SearchSpaceError(f"space file '{text}' does not exist")
        raise SearchSpaceError(unknown_name_message("search space", text, list(BUILTIN_SPACES))
                               + "; or give a YAML/JSON space file")
    raw = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            import yaml

            data = yaml.safe_load(raw)
    except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError: one line, with the position
        problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
        if problem and mark is not None:
            first = f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SearchSpaceError(f"space file '{text}' is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
                               f"{first}") from None
    return space_from_dict(data, source=text, default_name=path.stem)
