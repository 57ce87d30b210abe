"""Open an exported file in its runtime and get a ``numpy -> numpy`` function, plus end-to-end timing.

Both go through the latency tables' runtime layer (``zendeploy.latency.backends``: the backend of the device that
runs the format here, built on the standalone runners in ``profilers/`` with the settings the tables are measured
with: one thread, ORT_ENABLE_ALL for ONNX Runtime; the default XNNPACK CPU delegate for LiteRT) and the one timing
loop (``zendeploy.latency.timing``), so the parity check and the latency column run exactly what a profiler would.

A runner takes and returns arrays in the *file's* layout (NHWC for an NHWC export). LiteRT files with quantised
(int8/uint8) inputs or outputs are handled here: the float input is quantised with the tensor's scale and zero point
and the output is dequantised, so callers always deal in float32.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ExportError, require

Runner = Callable[[Any], Any]

# Loop settings for the end-to-end latency column of the export report (CLI defaults).
DEFAULT_WARMUP = 5
DEFAULT_REPEATS = 20
DEFAULT_MIN_TIME_S = 0.5
DEFAULT_PASSES = 5


@dataclass(frozen=True)
class Latency:
    """End-to-end latency of one exported file on one local runtime (milliseconds)."""

    runtime: str
    median_ms: float  # of the pass with the fastest run
    min_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    n: int
    threads: int
    pass_medians_ms: tuple[float, ...] = ()
    pass_mins_ms: tuple[float, ...] = ()
    statistic: str = "min_ms"  # the latency tables' pass statistic for this runtime (latency.backends)

    @property
    def latency_ms(self) -> float:
        """The latency tables' statistic: over passes, the minimum of the pass minima (host CPU runtimes) or of the
        pass medians (TensorRT, as the T4 tables)."""
        values = self.pass_medians_ms if self.statistic == "median_ms" else self.pass_mins_ms
        return min(values) if values else getattr(self, self.statistic)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _translated(fn: Callable[..., Any], *args, **kwargs):
    """Call into the runtime layer and turn its ProfilerError into ExportError (one line)."""
    from ..latency.runtime_base import profiler_caller

    return profiler_caller(ExportError)(fn, *args, **kwargs)


def local_backend(fmt: str, *, threads: int = 1, batch: int = 1):
    """The latency backend that runs ``fmt`` files on this host."""
    from ..latency.backends import make_backend
    from ..latency.devices import local_device_for

    device = local_device_for(fmt)  # the device table names the runtime: onnx -> cpu, tflite -> tflite-cpu
    if device is None:
        raise ExportError(f"no runtime on this host runs '{fmt}' files")
    return _translated(make_backend, device, batch=batch, threads=threads)


def onnx_runner(path: str | os.PathLike, *, threads: int = 1) -> Runner:
    """``x -> first output`` through an ONNX Runtime CPU session configured like the ONNX Runtime profiler."""
    return _translated(local_backend("onnx", threads=threads).function, path)


def litert_runner(path: str | os.PathLike, *, signature: str | None = None, threads: int = 1) -> Runner:
    """``x -> first output`` of one signature (the only one when None) through the LiteRT interpreter; int8/uint8
    inputs and outputs are (de)quantised, so callers deal in float32."""
    return _translated(local_backend("tflite", threads=threads).function, path, signature=signature)


def engine_runner(path: str | os.PathLike) -> Runner:
    """``x -> first output`` of a TensorRT engine, through the TensorRT profiler's runner."""
    from .engine import open_engine_runner

    return open_engine_runner(path)


RUNNERS: dict[str, Callable[..., Runner]] = {"onnx": onnx_runner, "tflite": litert_runner, "engine": engine_runner}


def open_runner(fmt: str, path: str | os.PathLike, **kwargs) -> Runner:
    """The runner for a format key of ``FORMATS`` (onnx, tflite, engine)."""
    return RUNNERS[fmt](path, **kwargs)


def measure_latency(fmt: str, path: str | os.PathLike, *, batch: int = 1, threads: int = 1,
                    warmup: int = DEFAULT_WARMUP, repeats: int = DEFAULT_REPEATS,
                    min_time_s: float = DEFAULT_MIN_TIME_S, signature: str | None = None,
                    passes: int = DEFAULT_PASSES) -> Latency:
    """Median and spread of one inference of ``path`` on this machine, timed by the latency tables' backend.

    What one sample is: ONNX Runtime ``session.run`` / LiteRT signature-runner call (inputs copied in, outputs out),
    wall clock, after ``warmup`` untimed runs, until ``repeats`` runs and ``min_time_s`` seconds were timed. This is
    done ``passes`` times (the one timing loop, ``latency.timing.run_pass``); every pass's median and fastest run
    are kept and ``latency_ms`` is the statistic the latency tables of that runtime use (``Backend.pass_statistic``:
    the fastest run of all on this host's CPU runtimes, where a shared host's noise only ever slows runs down; the
    lowest pass median for TensorRT).
    """
    from ..latency.runtime_base import TimingSettings
    from ..latency.timing import FileTimer, run_pass

    if passes < 1:
        raise ExportError(f"passes must be >= 1, got {passes}")
    key = os.fspath(path)
    if fmt == "engine":
        from ..latency.remote import TensorRTBackend
        from .engine import time_engine

        runtime, statistic = "tensorrt", TensorRTBackend.pass_statistic

        def time_one(_key):
            return time_engine(path, warmup=warmup, repeats=repeats, min_time_s=min_time_s)
    else:
        backend = local_backend(fmt, threads=threads, batch=batch)
        runtime, statistic = f"{backend.backend}-cpu", backend.pass_statistic
        settings = TimingSettings(warmup_runs=warmup, min_runs=repeats, min_time_s=min_time_s, max_runs=10_000)
        timer = FileTimer(backend, {key: Path(path)}, settings,
                          open_options={"signature": signature} if fmt == "tflite" else None)

        def time_one(_key):
            return _translated(timer, _key)

    runs: list = []
    for p in range(passes):
        run_pass([key], p, time_one, lambda _k, _p, stats: runs.append(stats), seed=0)
    best = min(runs, key=lambda r: getattr(r, statistic))
    return Latency(runtime, best.median_ms, best.min_ms, best.p90_ms, best.mean_ms, best.std_ms, best.n, threads,
                   tuple(r.median_ms for r in runs), tuple(r.min_ms for r in runs), statistic)


def tflite_op_counts(path: str | os.PathLike, *, signature: str | None = None) -> dict[str, int]:
    """Builtin operator counts of a ``.tflite`` file (every subgraph, or the one behind ``signature``), read from
    the flatbuffer with LiteRT's schema: e.g. check an NHWC export has no ``TRANSPOSE``."""
    schema = require("ai_edge_litert.schema_py_generated", "tflite", "reading TFLite files")
    model = schema.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    subgraphs: Sequence[int] = range(model.SubgraphsLength())
    if signature is not None:
        keys = {model.SignatureDefs(i).SignatureKey().decode(): model.SignatureDefs(i).SubgraphIndex()
                for i in range(model.SignatureDefsLength())}
        if signature not in keys:
            raise ExportError(f"{path} has no signature '{signature}' (it has {sorted(keys)})")
        subgraphs = [keys[signature]]
    counts: dict[str, int] = {}
    for s in subgraphs:
        graph = model.Subgraphs(s)
        for i in range(graph.OperatorsLength()):
            code = model.OperatorCodes(graph.Operators(i).OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = names.get(builtin, str(builtin))
            counts[name] = counts.get(name, 0) + 1
    return counts
