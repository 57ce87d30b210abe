"""The latency table (LUT) file format: plain JSON, validated with pydantic on load (never pickle).

A table holds, for one device + backend + precision + batch + input layout:

- ``provenance``: where and how it was measured (device and its CPU/GPU/SoC name, backend and versions, threads,
  delegate, precision, batch, layout, exporter and opset, date, zendeploy version, host fingerprint, measurement
  settings, drift of a reference model measured throughout);
- ``entries``: one measured latency unit each (its key, its fields, and the timing statistics: sample count,
  median, p10, p90, std, the median of every pass, and ``latency_ms``, the statistic predictions use);
- ``unit_models``: per unit family, a least-squares model fitted on the entries, used for units that were not
  measured (interpolation over the measured grid), with its cross-validated relative error;
- ``calibration``: the whole-network correction ``y = a + b * sum_of_units + c * n_units`` fitted on networks
  measured end to end, with its errors before and after.

Units are in the field names (``_ms``). Unknown keys are refused, so a hand-edited typo is an error naming the field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import LatencyTableError
from ..io import atomic_write_text

SCHEMA_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class MeasurementSettings(_Strict):
    warmup_runs: int
    min_runs: int
    min_time_s: float
    passes: int
    statistic: str  # how latency_ms is derived from the samples
    order: str  # e.g. "shuffled per pass"
    reference_model: Optional[str] = None
    reference_every: Optional[int] = None


class Provenance(_Strict):
    device: str  # zendeploy device name: cpu, tflite-cpu, t4, pixel
    device_name: str  # CPU model, GPU name or phone model + SoC
    backend: str  # onnxruntime | litert | tensorrt
    backend_version: str
    precision: str  # fp32 | fp16 | int8
    batch: int
    input_layout: str  # NCHW | NHWC
    threads: Optional[int] = None
    affinity: Optional[str] = None
    delegate: Optional[str] = None
    exporter: str
    opset: Optional[int] = None
    date: str  # ISO 8601 UTC
    zendeploy_version: str
    host: dict[str, Any] = Field(default_factory=dict)
    measurement: MeasurementSettings
    drift: dict[str, Any] = Field(default_factory=dict)  # reference-model medians over the run
    notes: list[str] = Field(default_factory=list)

    def fingerprint(self) -> dict[str, Any]:
        """What must be equal for two tables (or shards) to be combined or compared."""
        return fingerprint_of(self.model_dump())


FINGERPRINT_FIELDS = ("device", "device_name", "backend", "backend_version", "precision", "batch", "input_layout",
                      "threads", "delegate", "exporter", "opset")


def fingerprint_of(fields: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint of provenance fields (a ``Provenance`` or a backend's ``provenance()`` dict)."""
    return {k: fields.get(k) for k in FINGERPRINT_FIELDS}


def check_shards_match(shards: list[tuple[str, dict[str, Any]]]) -> None:
    """Refuse to merge measurements of devices whose fingerprints differ: ``shards`` is a list of (name, provenance
    fields); the error names the first field that differs and the two shards."""
    if not shards:
        return
    name0, f0 = shards[0][0], fingerprint_of(shards[0][1])
    for name, fields in shards[1:]:
        f = fingerprint_of(fields)
        diffs = [k for k in FINGERPRINT_FIELDS if f[k] != f0[k]]
        if diffs:
            k = diffs[0]
            more = f" and {len(diffs) - 1} more field(s)" if len(diffs) > 1 else ""
            raise LatencyTableError(f"cannot merge shards: {k} differs ({name0}: {f0[k]!r}, {name}: {f[k]!r}){more}")


class UnitFields(_Strict):
    kind: Literal["conv", "basic", "bottleneck", "inverted", "head"]
    in_channels: int = Field(gt=0)
    out_channels: int = Field(gt=0)
    mid_channels: int = Field(gt=0)
    kernel: int = Field(gt=0)
    kernel2: int = Field(ge=0, default=0)
    stride: int = Field(gt=0)
    se: bool
    shortcut: Literal["proj", "identity", "none"]
    resolution: int = Field(gt=0)


class Entry(_Strict):
    key: str
    unit: UnitFields
    latency_ms: float = Field(gt=0)  # the statistic used for prediction (see measurement.statistic)
    median_ms: float = Field(gt=0)
    p10_ms: float = Field(gt=0)
    p90_ms: float = Field(gt=0)
    std_ms: float = Field(ge=0)
    samples: int = Field(gt=0)
    pass_medians_ms: list[float]
    origin: Literal["grid", "network"] = "grid"


class UnitModel(_Strict):
    """Least-squares model of one unit family: latency_ms = sum(coef * feature); see ``latency/model.py``."""

    family: str
    features: list[str]
    coefficients: list[float]
    fitted_on: int
    cv_rel_error: float  # cross-validated mean absolute relative error on the measured entries
    cv_rel_p90: float


class Calibration(_Strict):
    kind: Literal["affine_units"] = "affine_units"  # y = a + b * sum + c * n_units
    a_ms: float
    b: float
    c_ms: float
    fitted_on: int
    rel_std: float  # std of relative residuals after calibration (on the fitting networks)
    mape_raw: float
    mape_calibrated: float
    structures: list[str] = Field(default_factory=list)
    measured_ms: list[float] = Field(default_factory=list)


class SpaceInfo(_Strict):
    name: str
    resolution: int
    num_classes: int = 1000
    dataset: Optional[str] = None  # which initial structure of the space the sampled networks started from
    max_macs: Optional[float] = None  # networks sampled for the grid and calibration stayed under this
    description: str = ""
    definition: dict[str, Any] = Field(default_factory=dict)  # the space itself, for spaces loaded from a file


class LatencyTable(_Strict):
    schema_version: int = SCHEMA_VERSION
    provenance: Provenance
    space: SpaceInfo
    entries: list[Entry]
    unit_models: list[UnitModel] = Field(default_factory=list)
    calibration: Optional[Calibration] = None

    def entry_map(self) -> dict[str, Entry]:
        return {e.key: e for e in self.entries}


def _describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"])
        problems.append(f"{loc}: {err['msg']}")
    more = f" (+{len(exc.errors()) - 3} more)" if len(exc.errors()) > 3 else ""
    return "; ".join(problems) + more


def load_table(path: str | os.PathLike) -> LatencyTable:
    """Load and validate a table; any problem is a LatencyTableError naming the file and the field."""
    p = Path(path)
    if not p.is_file():
        raise LatencyTableError(f"latency table '{p}' does not exist")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LatencyTableError(f"latency table '{p}' is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise LatencyTableError(f"latency table '{p}' must hold a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise LatencyTableError(f"latency table '{p}' has schema_version {version!r}; this zendeploy reads "
                                f"{SCHEMA_VERSION}")
    try:
        table = LatencyTable.model_validate(data)
    except ValidationError as exc:
        raise LatencyTableError(f"latency table '{p}' is invalid: {_describe_validation_error(exc)}") from None
    keys = [e.key for e in table.entries]
    if len(set(keys)) != len(keys):
        raise LatencyTableError(f"latency table '{p}' has duplicate entry keys")
    return table


def save_table(table: LatencyTable, path: str | os.PathLike) -> Path:
    return atomic_write_text(path, json.dumps(table.model_dump(mode="json"), indent=1) + "\n")


def check_same_fingerprint(a: Provenance, b: Provenance, what: str = "tables") -> None:
    """Refuse to combine or compare measurements whose fingerprints differ, naming the first difference."""
    fa, fb = a.fingerprint(), b.fingerprint()
    diffs = [k for k in fa if fa[k] != fb[k]]
    if diffs:
        k = diffs[0]
        raise LatencyTableError(f"cannot combine {what}: {k} differs ({fa[k]!r} vs {fb[k]!r})"
                                + (f" and {len(diffs) - 1} more field(s)" if len(diffs) > 1 else ""))
