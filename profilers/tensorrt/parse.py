"""Parse ``trtexec`` output and its ``--exportTimes`` JSON into milliseconds.

Performance summary formats handled (log prefixes such as ``[04/08/2025-23:15:51] [I] `` are
ignored):

* TensorRT >= 8.0 (8.x, 10.x)::

      === Performance summary ===
      Throughput: 8.66824 qps
      Latency: min = 110.946 ms, max = 115.703 ms, mean = 112.938 ms, median = 112.567 ms,
               percentile(90%) = 114.427 ms, percentile(95%) = 115.415 ms, percentile(99%) = 115.703 ms
      Enqueue Time: ... / H2D Latency: ... / GPU Compute Time: ... / D2H Latency: ...
      (8.0-8.4 also "End-to-End Host Latency: ..."; older 8.x print only percentile(99%))
      Total Host Walltime: 3.34555 s
      Total GPU Compute Time: 3.23514 s

* TensorRT 7.x (blocks of ``key: value`` lines)::

      Host Latency
      min: 26.8054 ms (end to end 26.8135 ms)
      mean: 26.9861 ms (end to end 26.9996 ms)
      percentile: 27.1187 ms at 99% (end to end 27.1382 ms at 99%)
      throughput: 37.0368 qps
      Enqueue Time            (min/max/median only)
      GPU Compute
      min: 26.7439 ms ... percentile: 27.0562 ms at 99%
      total compute time: 3.04253 s

The headline number is the **GPU Compute Time median**: the device time of one inference,
without host-device copies (with ``--noDataTransfers`` "Latency" equals it). When a text holds
several summaries (runs concatenated), the last one is used. Parsers raise
:class:`profilers.common.ProfilerError` when the summary is missing -- they never return zeros.

``--exportTimes`` writes one JSON object per timed iteration; key names differ between TensorRT 7
(``inMs``/``outMs``) and 8+/10 (``h2dMs``/``d2hMs``); :func:`parse_trtexec_times_json`
normalises them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Iterable, Mapping

from profilers.common import ProfilerError, TimingStats

__all__ = [
    "TrtexecMetric",
    "TrtexecSummary",
    "TrtexecTrace",
    "parse_trtexec_output",
    "parse_trtexec_times_json",
    "trace_stats",
]

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PREFIX = re.compile(r"^\s*(?:\[[^\]]*\]\s*)*")  # "[date] [I] [TRT] " log prefixes
_NEW_METRIC = re.compile(
    r"^(Latency|End-to-End Host Latency|Enqueue Time|H2D Latency|GPU Compute Time|D2H Latency):\s*(min\s*=.*)$"
)
_NEW_FIELD = re.compile(rf"(min|max|mean|median|percentile\(({_NUM})%\))\s*=\s*({_NUM})\s*ms")
_OLD_SECTION = re.compile(r"^(Host Latency|Enqueue Time|GPU Compute|H2D Latency|D2H Latency)\s*$")
_OLD_FIELD = re.compile(
    rf"^(min|max|mean|median):\s*({_NUM})\s*ms(?:\s*\(end to end\s*({_NUM})\s*ms\))?\s*$"
)
_OLD_PERCENTILE = re.compile(
    rf"^percentile:\s*({_NUM})\s*ms at\s*({_NUM})%(?:\s*\(end to end\s*({_NUM})\s*ms at\s*{_NUM}%\))?\s*$"
)
_THROUGHPUT = re.compile(rf"^(?:Throughput|throughput):\s*({_NUM})\s*qps")
_QUERIES = re.compile(rf"Timing trace has\s*(\d+)\s*queries over\s*({_NUM})\s*s")
_WALL = re.compile(rf"^(?:Total Host Walltime|walltime):\s*({_NUM})\s*s")
_TOTAL_GPU = re.compile(rf"^(?:Total GPU Compute Time|total compute time):\s*({_NUM})\s*s")
_VERSION_LINE = re.compile(r"TensorRT version:\s*(\d+(?:\.\d+)*)")
_VERSION_TAG = re.compile(r"\[TensorRT v(\d{4,6})\]")

_NEW_NAMES = {
    "Latency": "latency",
    "End-to-End Host Latency": "end_to_end",
    "Enqueue Time": "enqueue",
    "H2D Latency": "h2d",
    "GPU Compute Time": "gpu_compute",
    "D2H Latency": "d2h",
}
_OLD_NAMES = {
    "Host Latency": "latency",
    "Enqueue Time": "enqueue",
    "GPU Compute": "gpu_compute",
    "H2D Latency": "h2d",
    "D2H Latency": "d2h",
}


@dataclasses.dataclass(frozen=True)
class TrtexecMetric:
    """One row of trtexec's summary, in ms. ``percentiles`` maps e.g. ``99.0`` to its value.
    Fields trtexec did not print are ``None`` (TensorRT 7 prints no mean for Enqueue Time)."""

    min_ms: float | None = None
    max_ms: float | None = None
    mean_ms: float | None = None
    median_ms: float | None = None
    percentiles: Mapping[float, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "mean_ms": self.mean_ms,
            "median_ms": self.median_ms,
            "percentiles": {f"{k:g}": v for k, v in sorted(self.percentiles.items())},
        }


@dataclasses.dataclass(frozen=True)
class TrtexecSummary:
    """trtexec's performance summary. ``gpu_compute`` is always present (else the parser raised)."""

    gpu_compute: TrtexecMetric
    latency: TrtexecMetric | None = None
    end_to_end: TrtexecMetric | None = None
    enqueue: TrtexecMetric | None = None
    h2d: TrtexecMetric | None = None
    d2h: TrtexecMetric | None = None
    throughput_qps: float | None = None
    queries: int | None = None
    total_host_walltime_s: float | None = None
    total_gpu_compute_s: float | None = None
    tensorrt_version: str | None = None
    summary_format: str = "trt8+"

    @property
    def latency_ms(self) -> float:
        """Headline number: median GPU Compute Time (ms)."""
        assert self.gpu_compute.median_ms is not None
        return self.gpu_compute.median_ms

    @property
    def statistic(self) -> str:
        return "median"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, TrtexecMetric) else value
        out["latency_ms"] = self.latency_ms
        out["statistic"] = self.statistic
        return out


def _version_from(text: str) -> str | None:
    m = _VERSION_LINE.search(text)
    if m:
        return m.group(1)
    m = _VERSION_TAG.search(text)
    if not m:
        return None
    digits = m.group(1)
    if len(digits) == 4:  # v8601 -> 8.6.1
        return f"{int(digits[0])}.{int(digits[1])}.{int(digits[2:])}"
    if len(digits) == 5:  # v10000 is not used, but keep something sane: 1.00.00
        return f"{int(digits[0])}.{int(digits[1:3])}.{int(digits[3:])}"
    return f"{int(digits[0:2])}.{int(digits[2:4])}.{int(digits[4:6])}"  # v100900 -> 10.9.0


def _parse_new_body(body: str) -> TrtexecMetric:
    values: dict[str, float] = {}
    percentiles: dict[float, float] = {}
    for name, pct, value in _NEW_FIELD.findall(body):
        if name.startswith("percentile"):
            percentiles[float(pct)] = float(value)
        else:
            values[name] = float(value)
    return TrtexecMetric(
        min_ms=values.get("min"), max_ms=values.get("max"), mean_ms=values.get("mean"),
        median_ms=values.get("median"), percentiles=percentiles,
    )


def _stripped_lines(text: str) -> list[str]:
    return [_PREFIX.sub("", ln).rstrip() for ln in text.splitlines()]


def parse_trtexec_output(text: str) -> TrtexecSummary:
    """Performance summary of a ``trtexec`` run (TensorRT 7, 8 or 10) in ms.

    Raises :class:`ProfilerError` when trtexec reported ``&&&& FAILED``, or when the text has no
    GPU Compute summary with min/max/mean/median.
    """
    if not isinstance(text, str) or not text.strip():
        raise ProfilerError("trtexec output is empty")
    raw_lines = text.splitlines()
    if any(ln.startswith("&&&& FAILED") for ln in raw_lines):
        error = next((ln for ln in raw_lines if "] [E] " in ln or ln.lstrip().startswith("[E]")), None)
        detail = _PREFIX.sub("", error).strip() if error else next(ln for ln in raw_lines if ln.startswith("&&&& FAILED"))
        raise ProfilerError(f"trtexec failed: {detail}")

    lines = _stripped_lines(text)
    # Start of the last summary: TRT8+ "=== Performance summary ===", TRT7 the last "Host Latency".
    start = 0
    fmt = None
    for i, ln in enumerate(lines):
        if ln.strip() == "=== Performance summary ===":
            start, fmt = i, "trt8+"
        elif ln.strip() == "Host Latency":
            start, fmt = i, "trt7"
    if fmt is None:
        # Summary lines without the banner (a pasted excerpt): use the last "GPU Compute" row.
        for i, ln in enumerate(lines):
            if ln.startswith("GPU Compute Time:"):
                fmt = "trt8+"
            elif ln.strip() == "GPU Compute":
                fmt = "trt7"
        start = 0
    if fmt is None:
        first = next((ln.strip() for ln in raw_lines if ln.strip()), "")
        raise ProfilerError(f"no 'GPU Compute Time' summary found in trtexec output (first line: {first[:80]!r})")

    metrics: dict[str, TrtexecMetric] = {}
    throughput = wall = total_gpu = None
    block = lines[start:]
    if fmt == "trt8+":
        for ln in block:
            m = _NEW_METRIC.match(ln)
            if m:
                metrics[_NEW_NAMES[m.group(1)]] = _parse_new_body(m.group(2))
                continue
            m = _THROUGHPUT.match(ln)
            if m:
                throughput = float(m.group(1))
            m = _WALL.match(ln)
            if m:
                wall = float(m.group(1))
            m = _TOTAL_GPU.match(ln)
            if m:
                total_gpu = float(m.group(1))
    else:
        section = None
        fields: dict[str, dict[str, Any]] = {}
        e2e: dict[str, Any] = {}
        for ln in block:
            s = ln.strip()
            m = _OLD_SECTION.match(s)
            if m:
                section = _OLD_NAMES[m.group(1)]
                fields.setdefault(section, {"percentiles": {}})
                continue
            if section is None:
                continue
            m = _OLD_FIELD.match(s)
            if m:
                fields[section][m.group(1)] = float(m.group(2))
                if m.group(3) is not None and section == "latency":
                    e2e[m.group(1)] = float(m.group(3))
                continue
            m = _OLD_PERCENTILE.match(s)
            if m:
                fields[section]["percentiles"][float(m.group(2))] = float(m.group(1))
                if m.group(3) is not None and section == "latency":
                    e2e.setdefault("percentiles", {})[float(m.group(2))] = float(m.group(3))
                continue
            m = _THROUGHPUT.match(s)
            if m:
                throughput = float(m.group(1))
            m = _WALL.match(s)
            if m:
                wall = float(m.group(1))
            m = _TOTAL_GPU.match(s)
            if m:
                total_gpu = float(m.group(1))
        for name, f in fields.items():
            metrics[name] = TrtexecMetric(
                min_ms=f.get("min"), max_ms=f.get("max"), mean_ms=f.get("mean"),
                median_ms=f.get("median"), percentiles=dict(f["percentiles"]),
            )
        if e2e:
            metrics["end_to_end"] = TrtexecMetric(
                min_ms=e2e.get("min"), max_ms=e2e.get("max"), mean_ms=e2e.get("mean"),
                median_ms=e2e.get("median"), percentiles=dict(e2e.get("percentiles", {})),
            )

    gpu = metrics.get("gpu_compute")
    if gpu is None or gpu.min_ms is None or gpu.max_ms is None or gpu.mean_ms is None or gpu.median_ms is None:
        raise ProfilerError("trtexec output has no complete 'GPU Compute Time' line (min/max/mean/median)")
    if not (gpu.min_ms <= gpu.median_ms <= gpu.max_ms):
        raise ProfilerError(f"trtexec GPU Compute Time is inconsistent: {gpu.to_dict()}")
    if gpu.median_ms <= 0:
        raise ProfilerError("trtexec reports a GPU Compute Time median of 0 ms; refusing to record it")

    queries = None
    qm = None
    for qm in _QUERIES.finditer(text):
        pass
    if qm is not None:
        queries = int(qm.group(1))
    return TrtexecSummary(
        gpu_compute=gpu,
        latency=metrics.get("latency"),
        end_to_end=metrics.get("end_to_end"),
        enqueue=metrics.get("enqueue"),
        h2d=metrics.get("h2d"),
        d2h=metrics.get("d2h"),
        throughput_qps=throughput,
        queries=queries,
        total_host_walltime_s=wall,
        total_gpu_compute_s=total_gpu,
        tensorrt_version=_version_from(text),
        summary_format=fmt,
    )


# --------------------------------------------------------------------------------------------
# --exportTimes


@dataclasses.dataclass(frozen=True)
class TrtexecTrace:
    """One timed iteration of ``--exportTimes`` (ms). ``end_to_end_ms`` only in TRT 7 / early 8."""

    h2d_ms: float
    compute_ms: float
    d2h_ms: float
    latency_ms: float
    end_to_end_ms: float | None = None


def _first_key(row: Mapping[str, Any], names: Iterable[str], where: str) -> float:
    for name in names:
        if name in row:
            try:
                return float(row[name])
            except (TypeError, ValueError):
                raise ProfilerError(f"{where}: {name} is not a number: {row[name]!r}") from None
    raise ProfilerError(f"{where}: none of {list(names)} present (keys: {sorted(row)[:8]})")


def parse_trtexec_times_json(data: str | bytes | list[Any]) -> list[TrtexecTrace]:
    """Per-iteration timings from ``trtexec --exportTimes=<file>`` (the file's text, or the
    already-loaded list). Accepts TensorRT 7 keys (``inMs``/``computeMs``/``outMs``) and
    TensorRT 8+/10 keys (``h2dMs``/``computeMs``/``d2hMs``). Raises :class:`ProfilerError` for an
    empty or malformed trace."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ProfilerError(f"--exportTimes file is not valid JSON: {exc}") from None
    if not isinstance(data, list) or not data:
        raise ProfilerError("--exportTimes file holds no iterations (expected a non-empty JSON list)")
    traces: list[TrtexecTrace] = []
    for i, row in enumerate(data):
        where = f"--exportTimes iteration {i}"
        if not isinstance(row, dict):
            raise ProfilerError(f"{where} is not an object")
        h2d = _first_key(row, ("h2dMs", "inMs"), where)
        compute = _first_key(row, ("computeMs",), where)
        d2h = _first_key(row, ("d2hMs", "outMs"), where)
        latency = _first_key(row, ("latencyMs",), where) if "latencyMs" in row else h2d + compute + d2h
        e2e = float(row["endToEndMs"]) if "endToEndMs" in row else None
        traces.append(TrtexecTrace(h2d_ms=h2d, compute_ms=compute, d2h_ms=d2h, latency_ms=latency, end_to_end_ms=e2e))
    return traces


def trace_stats(traces: Iterable[TrtexecTrace], field: str = "compute_ms") -> TimingStats:
    """:class:`TimingStats` of one field of an ``--exportTimes`` trace (default: GPU compute)."""
    if field not in {f.name for f in dataclasses.fields(TrtexecTrace)}:
        raise ProfilerError(f"unknown trace field {field!r}")
    values = [getattr(t, field) for t in traces]
    if any(v is None for v in values):
        raise ProfilerError(f"trace field {field!r} is missing in some iterations")
    return TimingStats.from_samples(values)
