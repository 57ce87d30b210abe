"""Time an ``.onnx`` file with onnxruntime's CPUExecutionProvider.

What is measured: the wall-clock time of one ``InferenceSession.run(None, feeds)`` call (host
clock, ``time.perf_counter_ns``), i.e. the whole CPU inference including output allocation, on
random inputs that were generated once before timing. The session uses
``GraphOptimizationLevel.ORT_ENABLE_ALL``, ``ExecutionMode.ORT_SEQUENTIAL`` and
``intra_op_num_threads`` / ``inter_op_num_threads`` = 1 unless told otherwise (one thread is what
makes numbers comparable across machines and what a latency table for a single core wants).

How: one validation run, ``warmup`` untimed runs, then timed runs until at least ``repeats`` runs
and ``min_time_s`` seconds of timed runs (see :func:`profilers.common.time_callable`); the result
is :class:`profilers.common.TimingStats` (median is the headline number).

Command line (reads a manifest, writes/resumes a JSONL file)::

    python -m profilers.onnxruntime --manifest m.json --output ort.jsonl [--intra-op-threads 1]

Needs only numpy and onnxruntime, imported lazily.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Mapping, Sequence

from profilers.common import (
    ManifestEntry,
    ProfilerError,
    TimingStats,
    add_timing_cli_args,
    cli_main,
    run_manifest,
    stats_result,
    time_callable,
)

__all__ = [
    "backend_info",
    "main",
    "make_random_inputs",
    "make_session",
    "onnxruntime_versions",
    "time_onnx_model",
]

_NUMPY_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


def _ort():
    try:
        import onnxruntime  # noqa: PLC0415
    except ImportError:
        raise ProfilerError("onnxruntime is not installed (pip install onnxruntime)") from None
    return onnxruntime


def onnxruntime_versions() -> dict[str, str]:
    """``{"onnxruntime": ..., "numpy": ...}`` of this machine."""
    ort = _ort()
    import numpy  # noqa: PLC0415

    return {"onnxruntime": ort.__version__, "numpy": numpy.__version__}


def backend_info(*, intra_op_threads: int = 1, inter_op_threads: int = 1) -> dict[str, Any]:
    """How :func:`time_onnx_model` configures onnxruntime, for the results record."""
    return {
        "name": "onnxruntime",
        "provider": "CPUExecutionProvider",
        "intra_op_threads": intra_op_threads,
        "inter_op_threads": inter_op_threads,
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "execution_mode": "ORT_SEQUENTIAL",
        "versions": onnxruntime_versions(),
    }


def make_session(model_path: str | os.PathLike[str], *, intra_op_threads: int = 1, inter_op_threads: int = 1):
    """An ``onnxruntime.InferenceSession`` on CPUExecutionProvider with the settings above."""
    ort = _ort()
    model_path = os.fspath(model_path)
    if not os.path.isfile(model_path):
        raise ProfilerError(f"model file not found: {model_path}")
    if intra_op_threads < 0 or inter_op_threads < 0:
        raise ProfilerError("thread counts must be >= 0 (0 lets onnxruntime choose)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(intra_op_threads)
    options.inter_op_num_threads = int(inter_op_threads)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(model_path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise ProfilerError(f"onnxruntime cannot load {model_path}: {exc}") from None


def make_random_inputs(
    session: Any,
    *,
    batch_size: int = 1,
    shapes: Mapping[str, Sequence[int]] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Random feeds for every input of ``session``, shapes taken from the session.

    A free (symbolic) first dimension is the batch and becomes ``batch_size``; any other free
    dimension must be fixed by the caller through ``shapes`` (``{input_name: full_shape}``),
    otherwise :class:`ProfilerError`. Float inputs get standard-normal values, integer inputs 0/1.
    """
    import numpy as np  # noqa: PLC0415

    if batch_size < 1:
        raise ProfilerError(f"batch_size must be >= 1, got {batch_size}")
    shapes = dict(shapes or {})
    rng = np.random.default_rng(seed)
    feeds: dict[str, Any] = {}
    known = set()
    for inp in session.get_inputs():
        known.add(inp.name)
        dtype = _NUMPY_DTYPES.get(inp.type)
        if dtype is None:
            raise ProfilerError(f"input {inp.name!r} has unsupported type {inp.type}")
        declared = list(inp.shape)
        if inp.name in shapes:
            shape = [int(d) for d in shapes[inp.name]]
            if len(shape) != len(declared) or any(
                isinstance(d, int) and d >= 0 and d != s for d, s in zip(declared, shape)
            ):
                raise ProfilerError(f"shape {shape} does not fit input {inp.name!r} declared as {declared}")
        else:
            shape = []
            for axis, d in enumerate(declared):
                if isinstance(d, int) and d >= 0:
                    shape.append(d)
                elif axis == 0:
                    shape.append(int(batch_size))
                else:
                    raise ProfilerError(
                        f"input {inp.name!r} has a free dimension {d!r} at axis {axis}; pass its full shape"
                    )
        if dtype.startswith("float"):
            feeds[inp.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[inp.name] = rng.integers(0, 2, size=shape).astype(dtype)
    unknown = set(shapes) - known
    if unknown:
        raise ProfilerError(f"shapes given for unknown input(s): {sorted(unknown)}")
    return feeds


def _time(
    model_path: str | os.PathLike[str],
    *,
    intra_op_threads: int,
    inter_op_threads: int,
    warmup: int,
    repeats: int | None,
    min_time_s: float | None,
    max_repeats: int,
    batch_size: int,
    shapes: Mapping[str, Sequence[int]] | None,
    seed: int,
) -> tuple[TimingStats, dict[str, list[int]]]:
    session = make_session(model_path, intra_op_threads=intra_op_threads, inter_op_threads=inter_op_threads)
    feeds = make_random_inputs(session, batch_size=batch_size, shapes=shapes, seed=seed)
    try:
        session.run(None, feeds)  # validation run: a bad shape fails here, not inside the timer
    except Exception as exc:
        raise ProfilerError(f"onnxruntime failed to run {os.fspath(model_path)}: {exc}") from None
    stats = time_callable(
        lambda: session.run(None, feeds), warmup, repeats=repeats, min_time_s=min_time_s, max_repeats=max_repeats
    )
    return stats, {name: list(arr.shape) for name, arr in feeds.items()}


def time_onnx_model(
    model_path: str | os.PathLike[str],
    *,
    intra_op_threads: int = 1,
    inter_op_threads: int = 1,
    warmup: int = 10,
    repeats: int | None = 50,
    min_time_s: float | None = 1.0,
    max_repeats: int = 10_000,
    batch_size: int = 1,
    shapes: Mapping[str, Sequence[int]] | None = None,
    seed: int = 0,
) -> TimingStats:
    """Latency of one ``session.run`` of ``model_path`` on onnxruntime CPU, in ms.

    See the module docstring for what is measured; ``batch_size``/``shapes`` fix free input
    dimensions (see :func:`make_random_inputs`).
    """
    stats, _ = _time(
        model_path,
        intra_op_threads=intra_op_threads,
        inter_op_threads=inter_op_threads,
        warmup=warmup,
        repeats=repeats,
        min_time_s=min_time_s,
        max_repeats=max_repeats,
        batch_size=batch_size,
        shapes=shapes,
        seed=seed,
    )
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m profilers.onnxruntime``: time every manifest entry, append to a JSONL file.

    A manifest entry may carry ``"shapes": {input_name: [dims]}`` to fix free dimensions.
    """
    parser = argparse.ArgumentParser(
        prog="python -m profilers.onnxruntime",
        description="Time .onnx files with onnxruntime CPUExecutionProvider (resumable).",
    )
    add_timing_cli_args(parser)
    parser.add_argument("--intra-op-threads", type=int, default=1)
    parser.add_argument("--inter-op-threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1, help="value of a free first (batch) dimension")
    args = parser.parse_args(argv)

    def measure(entry: ManifestEntry) -> dict[str, Any]:
        stats, inputs = _time(
            entry.path,
            intra_op_threads=args.intra_op_threads,
            inter_op_threads=args.inter_op_threads,
            warmup=args.warmup,
            repeats=args.repeats,
            min_time_s=args.min_time_s,
            max_repeats=args.max_repeats,
            batch_size=args.batch_size,
            shapes=entry.extra.get("shapes"),
            seed=0,
        )
        result = stats_result(stats)
        result["inputs"] = inputs
        return result

    def run():
        info = backend_info(intra_op_threads=args.intra_op_threads, inter_op_threads=args.inter_op_threads)
        info["timing"] = {
            "warmup": args.warmup, "repeats": args.repeats, "min_time_s": args.min_time_s,
            "max_repeats": args.max_repeats, "clock": "perf_counter_ns",
        }
        return run_manifest(
            args.manifest, args.output, measure, backend=info,
            runtime_versions=info["versions"], fail_fast=args.fail_fast,
        )

    return cli_main(run)
