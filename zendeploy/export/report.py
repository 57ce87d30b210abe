"""The export report: one row per format, saved as ``exports/NAME/report.json`` and shown as a rich table.

On disk the report is a pydantic model with unknown keys forbidden and a ``schema_version``; units are in the field
names (``size_mb``, ``median_ms``, ``export_s``). A failed or skipped export is a row with its status and reason, not
a crash. ``latency_ms`` is the latency tables' statistic of the row's runtime, per batch (the fastest run of all
passes on this host's CPU runtimes, the lowest pass median on TensorRT); ``lut_ms`` is the table's prediction per
batch and ``error_pct`` is ``100 * (lut_ms - latency_ms) / latency_ms``: positive when the table over-predicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ExportError
from ..convert.common import atomic_write_json

SCHEMA_VERSION = 1
REPORT_NAME = "report.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParityResult(_Strict):
    runtime: str
    kind: Literal["parity", "drift"]
    n_inputs: int
    seed: int
    max_abs_err: float
    max_rel_err: float
    ref_max_abs: float
    tolerance: Optional[float] = None
    passed: Optional[bool] = None
    top1_agreement: Optional[float] = None
    output_shape: list[int] = Field(default_factory=list)
    inputs: str = "random"  # random (seeded standard normal) | representative (int8 calibration images) | given


class FormatRow(_Strict):
    format: str  # FORMATS key: onnx | tflite | engine
    name: str  # display name
    status: Literal["ok", "failed", "skipped"]
    reason: Optional[str] = None  # why failed/skipped (one line)
    precision: str
    layout: str  # NCHW | NHWC (of the file's input)
    file: Optional[str] = None  # path of the exported file
    source_file: Optional[str] = None  # the file it was built from (engine <- onnx)
    size_mb: Optional[float] = None
    export_s: Optional[float] = None
    parity_s: Optional[float] = None
    measure_s: Optional[float] = None
    parity: Optional[ParityResult] = None
    runtime: Optional[str] = None  # where it was measured: onnxruntime-cpu | litert-cpu | tensorrt
    threads: Optional[int] = None
    median_ms: Optional[float] = None
    p90_ms: Optional[float] = None
    mean_ms: Optional[float] = None
    std_ms: Optional[float] = None
    n_runs: Optional[int] = None
    latency_ms: Optional[float] = None  # per batch: the latency tables' statistic (runtime.measure_latency)
    pass_medians_ms: list[float] = Field(default_factory=list)
    pass_mins_ms: list[float] = Field(default_factory=list)
    lut_ms: Optional[float] = None
    lut_sigma_ms: Optional[float] = None
    error_pct: Optional[float] = None
    lut_note: Optional[str] = None  # why the LUT column is empty, when a table was given


class ExportReport(_Strict):
    schema_version: int = SCHEMA_VERSION
    zendeploy_version: str
    created_utc: str
    name: str
    structure: str
    zoo_name: Optional[str] = None
    resolution: int
    num_classes: int
    se: bool
    batch: int
    dynamic_batch: bool
    layout: str
    precision: str
    opset: int
    input_name: str
    output_name: str
    input_shape: list[int]  # the PyTorch (NCHW) input shape
    weights: Optional[str] = None
    weights_sha256: Optional[str] = None
    untrained: bool
    table: Optional[str] = None
    output_dir: str
    warnings: list[str] = Field(default_factory=list)
    manifests: dict[str, str] = Field(default_factory=dict)  # format -> profiler manifest of its file
    rows: list[FormatRow] = Field(default_factory=list)
    environment: dict[str, Any] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No row failed (skipped rows, e.g. TensorRT absent, do not count as failures)."""
        return all(r.status != "failed" for r in self.rows)

    def row(self, fmt: str) -> FormatRow:
        for r in self.rows:
            if r.format == fmt:
                return r
        raise KeyError(fmt)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def save(self, path: str | Path | None = None) -> Path:
        """Write the report atomically (temporary file + ``os.replace``); default ``<output_dir>/report.json``."""
        target = Path(path) if path is not None else Path(self.output_dir) / REPORT_NAME
        return atomic_write_json(target, self.to_dict())


def load_report(path: str | Path) -> ExportReport:
    """Read and validate a ``report.json``; problems become one ExportError line per location."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportError(f"cannot read export report '{path}': {exc}") from None
    try:
        return ExportReport.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise ExportError(f"export report '{path}' is invalid: {problems}") from None


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def render_table(report: ExportReport):
    """The report as rich renderables: a table (one row per format), then the legend and per-row notes."""
    from rich.console import Group
    from rich.markup import escape
    from rich.text import Text
    from rich.table import Table

    from rich import box

    title = (f"{report.name}: {report.resolution}x{report.resolution}, batch {report.batch}, {report.layout}, "
             f"{report.precision}" + (" (untrained weights)" if report.untrained else ""))
    table = Table(title=escape(title), box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    table.add_column("format", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for col in ("MB", "abs err", "rel err", "ms", "median ms", "p90 ms", "LUT ms", "err %"):
        table.add_column(col, justify="right", no_wrap=True)
    style = {"ok": "green", "failed": "bold red", "skipped": "yellow"}
    for r in report.rows:
        p = r.parity
        rel = "-" if p is None else _fmt(p.max_rel_err, ".1e") + ("*" if p.kind == "drift" else "")
        table.add_row(
            escape(r.format), f"[{style[r.status]}]{r.status}[/]", _fmt(r.size_mb, ".3f"),
            "-" if p is None else _fmt(p.max_abs_err, ".1e"), rel,
            _fmt(r.latency_ms, ".3f"), _fmt(r.median_ms, ".3f"), _fmt(r.p90_ms, ".3f"), _fmt(r.lut_ms, ".3f"), _fmt(r.error_pct, "+.1f"),
        )
    return Group(table, Text(_legend(report), style="dim"))


def _legend(report: ExportReport) -> str:
    lines = [
        "abs/rel err: max|torch - runtime| (/ max|torch|) on seeded random inputs; tolerance fp32 1e-4, fp16 1e-2; "
        "* = int8 drift vs fp32 PyTorch (no tolerance).",
        "ms: end-to-end inference here (ONNX Runtime CPU / LiteRT CPU, 1 thread), fastest run over 5 timing "
        "passes (TensorRT: lowest pass median), as latency tables measure; median/p90 ms: within that pass; err % = (LUT - ms) / ms.",
    ]
    for r in report.rows:
        if r.reason:
            lines.append(f"{r.format}: {r.status}: {r.reason}")
            continue
        lines.append(f"{r.format}: {r.file}" + (f" (LUT: {r.lut_note})" if r.lut_note else ""))
    return "\n".join(lines)
