"""The settings of one export (``zendeploy export``'s options) as one typed object.

    >>> from zendeploy.export import ExportConfig, export
    >>> report = export("zennet_imagenet1k_flops400M_SE_res224", ExportConfig("onnx,tflite", nhwc=True,
    ...                 weights="z400.pth", output_dir="exports/z400"))

``export_model(source, formats, **options)`` is the same call with the fields as keyword arguments (an unknown one
is a TypeError naming it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Iterable

DEFAULT_OPSET = 17


@dataclass(frozen=True)
class ExportConfig:
    """``formats``: keys or aliases of ``FORMATS`` ("onnx,tflite", ["onnx", "trt"]). ``output_dir``: default
    ``exports/<name>``; ``name``: the zoo name or ``net_<hash>``. ``resolution``, ``num_classes``, ``se``: the
    network's (zoo entries carry them). Format options (``opset``, ``dynamic_batch``, ``nhwc``, ``representative``,
    ``timing_cache``) are checked against every requested format (``OPTIONS``). ``table``: a latency table whose
    prediction goes next to each measured latency. Timing (``measure``): ``threads``, and ``warmup`` / ``repeats``
    / ``min_time_s`` / ``passes`` (None: ``export.runtime``'s defaults)."""

    formats: str | Iterable[str] = "onnx"
    output_dir: str | os.PathLike | None = None
    name: str | None = None
    weights: str | os.PathLike | None = None
    resolution: int | None = None
    batch: int = 1
    dynamic_batch: bool = False
    nhwc: bool = False
    precision: str = "fp32"
    opset: int = DEFAULT_OPSET
    representative: str | os.PathLike | None = None
    timing_cache: str | os.PathLike | None = None
    table: str | os.PathLike | None = None
    num_classes: int | None = None
    se: bool | None = None
    measure: bool = True
    threads: int = 1
    warmup: int | None = None
    repeats: int | None = None
    min_time_s: float | None = None
    passes: int | None = None
    parity_inputs: int = 2
    seed: int = 0

    @property
    def timing(self) -> dict[str, Any]:
        """The loop settings given (``export.runtime.measure_latency`` keywords)."""
        return {k: v for k, v in (("warmup", self.warmup), ("repeats", self.repeats), ("min_time_s", self.min_time_s),
                                  ("passes", self.passes)) if v is not None}


def config_from_options(formats: str | Iterable[str], options: dict[str, Any]) -> ExportConfig:
    names = {f.name for f in fields(ExportConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise TypeError(f"export_model() got unexpected keyword argument(s): {', '.join(unknown)}")
    return ExportConfig(formats=formats, **options)


__all__ = ["DEFAULT_OPSET", "ExportConfig", "config_from_options"]
