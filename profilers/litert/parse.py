"""Parse the text printed by TFLite's ``benchmark_model`` into milliseconds.

``benchmark_model`` prints, for the warm-up phase and then for the regular phase, one statistics
line of ``tensorflow::Stat<int64>`` (microseconds)::

    count=50 first=249042 curr=250889 min=247067 max=254474 avg=249684 std=1442
    count=1 curr=3512391                                  (all runs equal: no min/max/avg/std)
    count=50 first=... std=2565 p5=1238753 median=1239807 p95=1247415   (TFLite >= ~2.15)

followed by a summary line, whose wording changed over the versions::

    Average inference timings in us: Warmup: 146161, Init: 4452, no stats: 137722      (1.x)
    Average inference timings in us: Warmup: 83235, Init: 38467, Inference: 79760.9    (1.x)
    Inference timings in us: Init: 5579, First inference: 1357602, Warmup (avg): 1.3576e+06,
        Inference (avg): 1.24027e+06                                                   (2.x)

Lines may carry a prefix (``INFO: ``, a logcat ``I tflite  : ``). With
``--enable_op_profiling`` the profiler adds ``Timings (microseconds): count=...`` lines, which are
per-operator sums and are ignored here. The regular-phase line is the stats line whose ``avg``
equals the summary's inference average (the same number printed twice); without a summary line,
the last stats line. :func:`parse_benchmark_model_output` is pure: text in, numbers out, and it
raises :class:`profilers.common.ProfilerError` when the text has no such line -- never a zero.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from profilers.common import ProfilerError

__all__ = ["BenchmarkModelResult", "parse_benchmark_model_output"]

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_COUNT = re.compile(r"(?<![\w.])count=(\d+)")
_PAIR = re.compile(rf"\b(first|curr|min|max|avg|std|p5|median|p95)=({_NUM})")
_NEW_SUMMARY = re.compile(
    rf"Inference timings in us:\s*Init:\s*({_NUM}),\s*First inference:\s*({_NUM}),\s*"
    rf"Warmup \(avg\):\s*({_NUM}),\s*Inference \(avg\):\s*({_NUM})"
)
_OLD_SUMMARY = re.compile(
    rf"Average inference timings in us:\s*Warmup:\s*({_NUM}),\s*Init:\s*({_NUM}),\s*"
    rf"(?:no stats|Inference):\s*({_NUM})"
)
_MEM_DELTA = re.compile(rf"Memory footprint delta from the start of the tool \(MB\):\s*init=({_NUM})\s+overall=({_NUM})")
_MEM_OLD = re.compile(rf"(?<!Overall )Peak memory footprint \(MB\):\s*init=({_NUM})\s+overall=({_NUM})")
_MEM_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring:\s*({_NUM})")
_INIT_SESSION = re.compile(rf"Initialized session in\s*({_NUM})\s*ms")
_PROFILER_PREFIX = re.compile(r"(Timings|Memory)\s*\((microseconds|bytes)\)\s*:\s*$")
_FAILED = re.compile(r"Benchmarking failed|Failed to (?:allocate|invoke|apply|initialize|load|create)|"
                     r"Error: |ERROR: ")


@dataclasses.dataclass(frozen=True)
class BenchmarkModelResult:
    """Steady-state inference statistics of one ``benchmark_model`` run, in milliseconds.

    ``avg_ms`` is always there. ``count``/``std_ms``/``min_ms``/``max_ms``/``first_ms``/``curr_ms``
    come from the regular-phase stats line (``None`` when the output lacks it; ``std_ms`` is the
    population standard deviation that ``benchmark_model`` prints); ``p5_ms``/``median_ms``/
    ``p95_ms`` exist only in newer versions. ``latency_ms`` is the median when printed, else the
    mean. ``init_ms``, ``first_inference_ms`` and ``warmup_avg_ms`` come from the summary line;
    the memory fields (MB) from the memory lines when present.
    """

    avg_ms: float
    count: int | None = None
    std_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    first_ms: float | None = None
    curr_ms: float | None = None
    p5_ms: float | None = None
    median_ms: float | None = None
    p95_ms: float | None = None
    init_ms: float | None = None
    first_inference_ms: float | None = None
    warmup_avg_ms: float | None = None
    memory_init_mb: float | None = None
    memory_overall_mb: float | None = None
    peak_memory_mb: float | None = None
    summary_format: str | None = None

    @property
    def latency_ms(self) -> float:
        """The headline latency: median if ``benchmark_model`` printed one, else the mean."""
        return self.median_ms if self.median_ms is not None else self.avg_ms

    @property
    def statistic(self) -> str:
        """``"median"`` or ``"mean"``: which statistic :attr:`latency_ms` is."""
        return "median" if self.median_ms is not None else "mean"

    def to_dict(self) -> dict[str, Any]:
        """All fields plus ``latency_ms`` and ``statistic``, for JSON."""
        out = dataclasses.asdict(self)
        out["latency_ms"] = self.latency_ms
        out["statistic"] = self.statistic
        return out


def _us_to_ms(value: str | float | None) -> float | None:
    if value is None:
        return None
    return float(value) / 1000.0


def _stats_lines(text: str) -> list[dict[str, Any]]:
    """Every ``count=...`` line that is not an op-profiler ``Timings``/``Memory`` line."""
    found = []
    for line in text.splitlines():
        m = _COUNT.search(line)
        if not m:
            continue
        if _PROFILER_PREFIX.search(line[: m.start()]):
            continue
        fields: dict[str, Any] = {"count": int(m.group(1))}
        for key, value in _PAIR.findall(line[m.end():]):
            fields.setdefault(key, float(value))
        if "avg" not in fields and "curr" in fields:
            # "count=N curr=X" (or "...(all same)"): every run took exactly X.
            fields.update(avg=fields["curr"], min=fields["curr"], max=fields["curr"], std=0.0)
            fields.setdefault("first", fields["curr"])
        if "avg" in fields:
            found.append(fields)
    return found


def _close(a: float, b: float) -> bool:
    # The two numbers are the same double printed with 6 significant digits.
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=0.51)


def parse_benchmark_model_output(text: str) -> BenchmarkModelResult:
    """Steady-state inference statistics (ms) from ``benchmark_model``'s stdout+stderr.

    Raises :class:`ProfilerError` when the text says the benchmark failed, when it has neither a
    stats line nor a summary line, or when the stats lines disagree with the summary.
    """
    if not isinstance(text, str) or not text.strip():
        raise ProfilerError("benchmark_model output is empty")

    summary_format = None
    inference_avg_us = init_us = first_us = warmup_us = None
    m = _NEW_SUMMARY.search(text)
    if m:
        summary_format = "2.x"
        init_us, first_us, warmup_us, inference_avg_us = (float(g) for g in m.groups())
    else:
        m = _OLD_SUMMARY.search(text)
        if m:
            summary_format = "1.x"
            warmup_us, init_us, inference_avg_us = (float(g) for g in m.groups())

    candidates = _stats_lines(text)
    failed_line = next((ln.strip() for ln in text.splitlines() if "Benchmarking failed" in ln), None)
    if failed_line is None and inference_avg_us is None and not candidates:
        failed_line = next((ln.strip() for ln in text.splitlines() if _FAILED.search(ln)), None)
    if failed_line is not None:
        raise ProfilerError(f"benchmark_model reported a failure: {failed_line}")

    chosen: dict[str, Any] | None = None
    if inference_avg_us is not None:
        matches = [c for c in candidates if _close(c["avg"], inference_avg_us)]
        if matches:
            chosen = matches[-1]
        elif candidates:
            raise ProfilerError(
                f"benchmark_model output is inconsistent: no stats line has avg={inference_avg_us:g} us "
                f"as its summary line says (found avg={[c['avg'] for c in candidates]})"
            )
    elif candidates:
        chosen = candidates[-1]

    if chosen is None and inference_avg_us is None:
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        raise ProfilerError(
            "not benchmark_model output: no 'count=... avg=...' line and no 'Inference timings in us' "
            f"line (first line: {first[:80]!r})"
        )

    if init_us is None:
        mi = _INIT_SESSION.search(text)
        init_ms = float(mi.group(1)) if mi else None
    else:
        init_ms = init_us / 1000.0
    mem_init = mem_overall = peak = None
    mm = _MEM_DELTA.search(text) or _MEM_OLD.search(text)
    if mm:
        mem_init, mem_overall = float(mm.group(1)), float(mm.group(2))
    mp = _MEM_PEAK.search(text)
    if mp:
        peak = float(mp.group(1))

    headline_us = chosen.get("median", chosen["avg"]) if chosen is not None else inference_avg_us
    if headline_us is None or headline_us <= 0:
        raise ProfilerError(
            "benchmark_model reports a latency of 0 us (below its 1 us resolution); refusing to record 0 ms"
        )
    if chosen is None:
        assert inference_avg_us is not None
        avg_ms = inference_avg_us / 1000.0
        return BenchmarkModelResult(
            avg_ms=avg_ms, init_ms=init_ms, first_inference_ms=_us_to_ms(first_us),
            warmup_avg_ms=_us_to_ms(warmup_us), memory_init_mb=mem_init, memory_overall_mb=mem_overall,
            peak_memory_mb=peak, summary_format=summary_format,
        )
    if chosen["count"] < 1:
        raise ProfilerError("benchmark_model ran the model 0 times (count=0)")
    return BenchmarkModelResult(
        avg_ms=chosen["avg"] / 1000.0,
        count=chosen["count"],
        std_ms=_us_to_ms(chosen.get("std")),
        min_ms=_us_to_ms(chosen.get("min")),
        max_ms=_us_to_ms(chosen.get("max")),
        first_ms=_us_to_ms(chosen.get("first")),
        curr_ms=_us_to_ms(chosen.get("curr")),
        p5_ms=_us_to_ms(chosen.get("p5")),
        median_ms=_us_to_ms(chosen.get("median")),
        p95_ms=_us_to_ms(chosen.get("p95")),
        init_ms=init_ms,
        first_inference_ms=_us_to_ms(first_us),
        warmup_avg_ms=_us_to_ms(warmup_us),
        memory_init_mb=mem_init,
        memory_overall_mb=mem_overall,
        peak_memory_mb=peak,
        summary_format=summary_format,
    )
