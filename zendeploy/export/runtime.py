"""Open an exported file in its runtime and get a ``numpy -> numpy`` function, plus end-to-end timing.

Sessions are built by the standalone runners in ``profilers/`` (the same settings the latency tables are measured
with: one thread, ORT_ENABLE_ALL for ONNX Runtime; the default XNNPACK CPU delegate for LiteRT), so the parity check
and the latency column run exactly what a profiler would.

A runner takes and returns arrays in the *file's* layout (NHWC for an NHWC export). LiteRT files with quantised
(int8/uint8) inputs or outputs are handled here: the float input is quantised with the tensor's scale and zero point
and the output is dequantised, so callers always deal in float32.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

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


def _profiler_call(fn: Callable[..., Any], *args, **kwargs):
    """Call into ``profilers`` and turn its ProfilerError into ExportError (one line)."""
    from profilers.common import ProfilerError

    try:
        return fn(*args, **kwargs)
    except ProfilerError as exc:
        raise ExportError(str(exc)) from None


def onnx_runner(path: str | os.PathLike, *, threads: int = 1) -> Runner:
    """``x -> first output`` through an ONNX Runtime CPU session configured like the ONNX Runtime profiler."""
    require("onnxruntime", "onnx", "running ONNX files")
    from profilers.onnxruntime.run import make_session

    session = _profiler_call(make_session, path, intra_op_threads=threads, inter_op_threads=1)
    name = session.get_inputs()[0].name

    def run(x):
        import numpy as np

        return session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return run


def litert_runner(path: str | os.PathLike, *, signature: str | None = None, threads: int = 1) -> Runner:
    """``x -> first output`` of one signature (the only one when None) through the LiteRT interpreter."""
    interpreter_mod = require("ai_edge_litert.interpreter", "tflite", "running TFLite files")
    import numpy as np

    try:
        interpreter = interpreter_mod.Interpreter(model_path=os.fspath(path), num_threads=int(threads))
    except Exception as exc:
        raise ExportError(f"LiteRT cannot load {path}: {exc}") from None
    names = list(interpreter.get_signature_list())
    if signature is None:
        if len(names) != 1:
            raise ExportError(f"{path} has signatures {names}; name one")
        signature = names[0]
    if signature not in names:
        raise ExportError(f"{path} has no signature '{signature}' (it has {names})")
    runner = interpreter.get_signature_runner(signature)
    (in_name, in_detail), = list(runner.get_input_details().items())[:1]
    out_details = runner.get_output_details()
    out_name = "output_0" if "output_0" in out_details else next(iter(out_details))
    out_detail = out_details[out_name]

    def quantise(x):
        dtype = np.dtype(in_detail["dtype"])
        if dtype.kind == "f":
            return np.ascontiguousarray(x, dtype=dtype)
        scale, zero = in_detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(np.asarray(x, np.float32) / scale) + zero, info.min, info.max).astype(dtype)

    def dequantise(y):
        if np.dtype(out_detail["dtype"]).kind == "f":
            return y.astype(np.float32, copy=False)
        scale, zero = out_detail["quantization"]
        return (y.astype(np.float32) - zero) * scale

    def run(x):
        return dequantise(runner(**{in_name: quantise(x)})[out_name])

    return run


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
    """Median and spread of one inference of ``path`` on this machine, timed by the backend's profiler.

    What one sample is: ONNX Runtime ``session.run`` / LiteRT signature-runner call (inputs copied in, outputs out),
    wall clock, after ``warmup`` untimed runs, until ``repeats`` runs and ``min_time_s`` seconds were timed. This is
    done ``passes`` times; every pass's median and fastest run are kept and ``latency_ms`` is the statistic the
    latency tables of that runtime use (the fastest run of all on this host's CPU runtimes: a shared host's noise
    only ever slows runs down; the lowest pass median for TensorRT).
    """
    if passes < 1:
        raise ExportError(f"passes must be >= 1, got {passes}")
    runs = [_measure_once(fmt, path, batch=batch, threads=threads, warmup=warmup, repeats=repeats,
                          min_time_s=min_time_s, signature=signature) for _ in range(passes)]
    statistic = "median_ms" if fmt == "engine" else "min_ms"
    best = min(runs, key=lambda r: getattr(r, statistic))
    return Latency(best.runtime, best.median_ms, best.min_ms, best.p90_ms, best.mean_ms, best.std_ms, best.n,
                   best.threads, tuple(r.median_ms for r in runs), tuple(r.min_ms for r in runs), statistic)


def _measure_once(fmt: str, path: str | os.PathLike, *, batch: int, threads: int, warmup: int, repeats: int,
                  min_time_s: float, signature: str | None) -> Latency:
    path = Path(path)
    if fmt == "onnx":
        require("onnxruntime", "onnx", "timing ONNX files")
        from profilers.onnxruntime.run import time_onnx_model

        stats = _profiler_call(time_onnx_model, path, intra_op_threads=threads, inter_op_threads=1, warmup=warmup,
                               repeats=repeats, min_time_s=min_time_s, batch_size=batch)
        runtime = "onnxruntime-cpu"
    elif fmt == "tflite":
        require("ai_edge_litert", "tflite", "timing TFLite files")
        from profilers.litert.run import time_tflite_model

        stats = _profiler_call(time_tflite_model, path, signature=signature, num_threads=threads, warmup=warmup,
                               repeats=repeats, min_time_s=min_time_s, batch_size=batch)
        runtime = "litert-cpu"
    elif fmt == "engine":
        from .engine import time_engine

        stats = time_engine(path, warmup=warmup, repeats=repeats, min_time_s=min_time_s)
        runtime = "tensorrt"
    else:
        raise ExportError(f"no local runtime times '{fmt}' files")
    return Latency(runtime, stats.median_ms, stats.min_ms, stats.p90_ms, stats.mean_ms, stats.std_ms, stats.n, threads)


def tflite_op_counts(path: str | os.PathLike, *, signature: str | None = None) -> dict[str, int]:
    """Builtin operator counts of a ``.tflite`` file (every subgraph, or the one behind ``signature``), read from
    the flatbuffer with LiteRT's schema: e.g. check an NHWC export has no ``TRANSPOSE``."""
    schema = require("ai_edge_litert.schema_py_generated", "tflite", "reading TFLite files")
    model = schema.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    subgraphs = range(model.SubgraphsLength())
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
