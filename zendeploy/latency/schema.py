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
  measured end to end, with its errors before and after;
- ``anchor`` (optional): some of those networks measured again later on the same device, and the calibration
  fitted on them, which predictions then use (the host's speed at that time; ``latency/anchor.py``).

Units are in the field names (``_ms``). Unknown keys are refused, so a hand-edited typo is an error naming the field.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import LatencyTableError

SCHEMA_VERSION = 1


MAX_LATENCY_MS = 1e6  # 1000 s: anything slower is a corrupt or hand-edited value, not a measurement
MAX_COEFFICIENT = 1e9


UnitKind = Literal["conv", "basic", "bottleneck", "inverted", "head"]
Shortcut = Literal["proj", "identity", "none"]
Origin = Literal["grid", "network", "on-demand"]  # how an entry was measured: a profile's grid, a network, a search
ChannelBlock = Literal[1, 8, 16]

class _Strict(BaseModel):
    # NaN and infinity are refused in every float field: a table that holds one could predict NaN, and every
    # candidate would then pass a budget (``budget < nan`` is False).
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


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


def backend_fingerprint(backend) -> dict[str, Any]:
    """The fingerprint a table measured by ``backend`` would have (its provenance plus batch and precision)."""
    return fingerprint_of({**backend.provenance(), "precision": backend.precision, "batch": backend.batch})


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
    kind: UnitKind
    in_channels: int = Field(gt=0)
    out_channels: int = Field(gt=0)
    mid_channels: int = Field(gt=0)
    kernel: int = Field(gt=0)
    kernel2: int = Field(ge=0, default=0)
    stride: int = Field(gt=0)
    se: bool
    shortcut: Shortcut
    resolution: int = Field(gt=0)


class Entry(_Strict):
    key: str
    unit: UnitFields
    latency_ms: float = Field(gt=0, lt=MAX_LATENCY_MS)  # the statistic used for prediction (measurement.statistic)
    median_ms: float = Field(gt=0, lt=MAX_LATENCY_MS)
    p10_ms: float = Field(gt=0, lt=MAX_LATENCY_MS)
    p90_ms: float = Field(gt=0, lt=MAX_LATENCY_MS)
    std_ms: float = Field(ge=0, lt=MAX_LATENCY_MS)
    samples: int = Field(gt=0)
    pass_medians_ms: list[float]
    origin: Origin = "grid"

    @model_validator(mode="after")
    def _medians_physical(self):
        if any(not (0 < v < MAX_LATENCY_MS) for v in self.pass_medians_ms):
            raise ValueError("pass_medians_ms: every pass median must be a positive number of ms below 1e6")
        return self


class UnitModel(_Strict):
    """Least-squares model of one unit family: latency_ms = sum(coef * feature); see ``latency/model.py``."""

    family: str
    features: list[str]
    coefficients: list[float]
    fitted_on: int
    cv_rel_error: float = Field(ge=0)  # cross-validated mean absolute relative error on the measured entries
    cv_rel_p90: float = Field(ge=0)
    channel_block: ChannelBlock = 1  # channels counted in multiples of this (the backend's conv blocking)

    @model_validator(mode="after")
    def _coefficients_physical(self):
        if len(self.features) != len(self.coefficients):
            raise ValueError(f"{self.family}: {len(self.features)} features but {len(self.coefficients)} coefficients")
        if any(not (0 <= c <= MAX_COEFFICIENT) for c in self.coefficients):
            raise ValueError(f"{self.family}: coefficients must be non-negative and at most 1e9 (a fitted model "
                             f"never has others)")
        return self


class Calibration(_Strict):
    # affine_units: y = a + b * sum + c * n_units; affine_units_io: + d * (activation elements, in millions,
    # crossing the network's unit boundaries, per batch): what units timed alone pay for layout conversions.
    # With ``weights_free_mb`` set, also + e * max(0, weight megabytes - weights_free_mb): a network reads all its
    # weights once per inference, and once they outgrow the cache they stream from memory, a cost no unit timed
    # alone (its weights cached between runs) pays
    kind: Literal["affine_units", "affine_units_io"] = "affine_units"
    a_ms: float
    b: float
    c_ms: float
    d_ms_per_melem: float = 0.0
    e_ms_per_mb: float = 0.0
    weights_free_mb: Optional[float] = Field(default=None, ge=0)
    fitted_on: int
    rel_std: float = Field(ge=0)  # RMS of the relative residuals, leave-one-out (each network predicted by a fit
    #                                without it) when ``error`` says so; the sigma of the calibration in predictions
    mape_raw: float = Field(ge=0)
    mape_calibrated: float = Field(ge=0)  # leave-one-out when ``error`` says so
    error: Literal["fit residuals", "leave-one-out"] = "fit residuals"
    structures: list[str] = Field(default_factory=list)
    measured_ms: list[float] = Field(default_factory=list)

    @model_validator(mode="after")
    def _physical(self):
        if not (-MAX_LATENCY_MS < self.a_ms < MAX_LATENCY_MS and 0 < self.b < 1e3
                and -MAX_LATENCY_MS < self.c_ms < MAX_LATENCY_MS
                and -MAX_LATENCY_MS < self.d_ms_per_melem < MAX_LATENCY_MS
                and -MAX_LATENCY_MS < self.e_ms_per_mb < MAX_LATENCY_MS):
            raise ValueError("a_ms, b, c_ms, d_ms_per_melem, e_ms_per_mb: b must be positive and every coefficient "
                             "of a sensible size")
        if self.structures and len(self.structures) != len(self.measured_ms):
            raise ValueError(f"{len(self.structures)} structures but {len(self.measured_ms)} measured_ms")
        if any(not (0 < v < MAX_LATENCY_MS) for v in self.measured_ms):
            raise ValueError("measured_ms: every value must be a positive number of ms below 1e6")
        return self


class Anchor(_Strict):
    """The table re-anchored to the host's speed now (``latency/anchor.py``): some of its calibration networks
    measured again end to end on the table's own device, and the whole-network calibration predictions then use,
    chosen among three by their leave-one-out error on those networks: the table ``as built``, the as-built
    calibration ``scale``d by one factor, or a ``refit`` of the calibration on them. The entries and unit models stay
    as built; the as-built calibration stays in ``calibration``."""

    date: str  # ISO 8601 UTC of the re-measurement
    host: dict[str, Any] = Field(default_factory=dict)  # the CPU and its load when the anchor was measured
    transferred_from: Optional[str] = None  # the CPU the units were measured on, when the anchor's host is another
    structures: list[str] = Field(min_length=1)  # the networks measured again
    measured_ms: list[float]  # per batch, the table's statistic
    speed_ratio: float = Field(gt=0, lt=1e3)  # median of measured / as-built prediction (<1: this host is faster)
    method: Literal["as built", "scale", "refit"]
    loo_mape_pct: dict[str, float] = Field(default_factory=dict)  # each method's leave-one-out MAPE on the anchors
    calibration: Calibration  # what predictions use

    @model_validator(mode="after")
    def _measured(self):
        if len(self.structures) != len(self.measured_ms):
            raise ValueError(f"{len(self.structures)} structures but {len(self.measured_ms)} measured_ms")
        if any(not (0 < v < MAX_LATENCY_MS) for v in self.measured_ms):
            raise ValueError("measured_ms: every value must be a positive number of ms below 1e6")
        return self


class FamilyCoverage(_Strict):
    """What one unit family's measured entries span (``latency/coverage.py``)."""

    family: str
    units: int
    kernels: list[int]
    kernels2: list[int]
    strides: list[int]
    resolutions: list[int]
    se: list[bool]
    shortcuts: list[str]
    in_channels: list[int] = Field(min_length=2, max_length=2)  # [lowest, highest]
    mid_channels: list[int] = Field(min_length=2, max_length=2)
    out_channels: list[int] = Field(min_length=2, max_length=2)


class Coverage(_Strict):
    """The region a table is valid in: per unit family, and the whole networks its calibration spans."""

    families: list[FamilyCoverage] = Field(default_factory=list)
    networks: int = 0
    network_macs: Optional[list[int]] = Field(default=None, min_length=2, max_length=2)
    network_latency_ms: Optional[list[float]] = Field(default=None, min_length=2, max_length=2)  # per batch


class SpaceInfo(_Strict):
    name: str
    resolution: int
    num_classes: int = 1000
    dataset: Optional[str] = None  # which initial structure of the space the sampled networks started from
    min_macs: Optional[float] = None  # networks sampled for the grid and calibration span min_macs..max_macs
    max_macs: Optional[float] = None
    description: str = ""
    definition: dict[str, Any] = Field(default_factory=dict)  # the space itself, for spaces loaded from a file


class LatencyTable(_Strict):
    schema_version: int = SCHEMA_VERSION
    provenance: Provenance
    space: SpaceInfo
    entries: list[Entry]
    unit_models: list[UnitModel] = Field(default_factory=list)
    calibration: Optional[Calibration] = None
    coverage: Optional[Coverage] = None  # derived from entries + calibration; computed on load when absent
    anchor: Optional[Anchor] = None  # re-measured calibration networks (host speed now); predictions use its fit,
    #                                  coverage (and so the budgets a table accepts) stays the as-built one

    def effective_calibration(self) -> Optional[Calibration]:
        """The calibration predictions use: the anchor's when the table was re-anchored, else the as-built one."""
        return self.anchor.calibration if self.anchor is not None else self.calibration

    def entry_map(self) -> dict[str, Entry]:
        return {e.key: e for e in self.entries}


def _describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"])
        problems.append(f"{loc}: {err['msg']}")
    more = f" (+{len(exc.errors()) - 3} more)" if len(exc.errors()) > 3 else ""
    return "; ".join(problems) + more


def check_same_fingerprint(a: Provenance, b: Provenance, what: str = "tables") -> None:
    """Refuse to combine or compare measurements whose fingerprints differ, naming the first difference."""
    fa, fb = a.fingerprint(), b.fingerprint()
    diffs = [k for k in fa if fa[k] != fb[k]]
    if diffs:
        k = diffs[0]
        raise LatencyTableError(f"cannot combine {what}: {k} differs ({fa[k]!r} vs {fb[k]!r})"
                                + (f" and {len(diffs) - 1} more field(s)" if len(diffs) > 1 else ""))
