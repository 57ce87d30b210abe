"""Time a ``.tflite`` file with the LiteRT (TFLite) interpreter of ``ai-edge-litert``.

What is measured: the wall-clock time (``time.perf_counter_ns``) of one call of a signature
runner, ``interpreter.get_signature_runner(name)(**inputs)``, which copies the inputs in, invokes
the graph and copies the outputs out; for a model without signatures, one
``interpreter.invoke()`` with the inputs already set. Inputs are random, made once before timing.
The interpreter is built with ``num_threads`` (default 1) and the default op resolver, under which
LiteRT applies the XNNPACK delegate to the CPU graph. A model with several signatures has each
signature timed separately (:func:`time_tflite_signatures`).

How: one validation call, ``warmup`` untimed calls, then timed calls until at least ``repeats``
calls and ``min_time_s`` seconds of timed calls (:func:`profilers.common.time_callable`); the
result is :class:`profilers.common.TimingStats` (median is the headline number).

Command line (reads a manifest, writes/resumes a JSONL file)::

    python -m profilers.litert --manifest m.json --output litert.jsonl [--threads 1]

A manifest entry with ``"signature"`` times that signature; without it, every signature of the
model is timed and the record carries ``"signatures": {name: stats}``.

Needs only numpy and ai-edge-litert, imported lazily.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable, Mapping, Sequence

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
    "list_signatures",
    "litert_versions",
    "main",
    "time_tflite_model",
    "time_tflite_signatures",
]


def _interpreter_module():
    try:
        from ai_edge_litert import interpreter  # noqa: PLC0415
    except ImportError:
        raise ProfilerError("ai-edge-litert is not installed (pip install ai-edge-litert)") from None
    return interpreter


def litert_versions() -> dict[str, str]:
    """``{"ai-edge-litert": ..., "numpy": ...}`` of this machine."""
    _interpreter_module()
    import numpy  # noqa: PLC0415

    try:
        from importlib.metadata import version  # noqa: PLC0415

        litert = version("ai-edge-litert")
    except Exception:  # metadata missing (vendored copy): still report something honest
        litert = "unknown"
    return {"ai-edge-litert": litert, "numpy": numpy.__version__}


def backend_info(*, num_threads: int = 1) -> dict[str, Any]:
    """How this runner configures the interpreter, for the results record."""
    return {
        "name": "litert",
        "api": "ai_edge_litert.interpreter.Interpreter",
        "num_threads": num_threads,
        "op_resolver": "AUTO (XNNPACK delegate applied by default)",
        "versions": litert_versions(),
    }


def _load(model_path: str | os.PathLike[str], num_threads: int):
    module = _interpreter_module()
    model_path = os.fspath(model_path)
    if not os.path.isfile(model_path):
        raise ProfilerError(f"model file not found: {model_path}")
    if num_threads < 1:
        raise ProfilerError(f"num_threads must be >= 1, got {num_threads}")
    try:
        return module.Interpreter(model_path=model_path, num_threads=int(num_threads))
    except Exception as exc:  # LiteRT raises ValueError/RuntimeError with C++ messages
        raise ProfilerError(f"LiteRT cannot load {model_path}: {exc}") from None


def list_signatures(model_path: str | os.PathLike[str]) -> list[str]:
    """Signature keys of a ``.tflite`` file, in the order the model stores them."""
    interpreter = _load(model_path, 1)
    return list(interpreter.get_signature_list().keys())


def _random_array(rng, detail: Mapping[str, Any], batch_size: int, what: str):
    import numpy as np  # noqa: PLC0415

    shape = [int(d) for d in detail.get("shape_signature", detail["shape"])]
    if any(d < 0 for d in shape[1:]):
        raise ProfilerError(f"{what} has a free dimension beyond the batch axis: {shape}")
    if shape and shape[0] < 0:
        shape[0] = int(batch_size)
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -8), min(info.max, 8), size=shape, endpoint=True).astype(dtype)
    if dtype.kind == "b":
        return np.zeros(shape, dtype=dtype)
    raise ProfilerError(f"{what} has unsupported dtype {dtype}")


def _signature_callable(interpreter, name: str, batch_size: int, seed: int) -> Callable[[], Any]:
    import numpy as np  # noqa: PLC0415

    try:
        runner = interpreter.get_signature_runner(name)
    except ValueError as exc:
        raise ProfilerError(f"signature {name!r}: {exc}") from None
    rng = np.random.default_rng(seed)
    feeds = {
        arg: _random_array(rng, detail, batch_size, f"signature {name!r} input {arg!r}")
        for arg, detail in runner.get_input_details().items()
    }
    return lambda: runner(**feeds)


def _invoke_callable(interpreter, batch_size: int, seed: int) -> Callable[[], Any]:
    import numpy as np  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    details = interpreter.get_input_details()
    arrays = [_random_array(rng, d, batch_size, f"input {d['name']!r}") for d in details]
    for detail, arr in zip(details, arrays):
        if list(arr.shape) != [int(x) for x in detail["shape"]]:
            interpreter.resize_tensor_input(detail["index"], list(arr.shape))
    interpreter.allocate_tensors()
    for detail, arr in zip(details, arrays):
        interpreter.set_tensor(detail["index"], arr)
    return interpreter.invoke


def open_runner(
    model_path: str | os.PathLike[str],
    *,
    signature: str | None = None,
    num_threads: int = 1,
    batch_size: int = 1,
    seed: int = 0,
) -> Callable[[], Any]:
    """Load ``model_path`` once and return a zero-argument callable running one inference on fixed random inputs.

    For hosts that time the same model in several passes without reloading it. ``signature`` as in
    :func:`time_tflite_model` (None: the only signature, or ``invoke()`` for a model without signatures). The
    first inference runs here, so a model that cannot run fails now with :class:`ProfilerError`.
    """
    interpreter = _load(model_path, num_threads)
    names = list(interpreter.get_signature_list().keys())
    if signature is None and len(names) > 1:
        raise ProfilerError(f"{os.fspath(model_path)} has {len(names)} signatures {names}; choose one")
    if signature is None and names:
        signature = names[0]
    fn = _invoke_callable(interpreter, batch_size, seed) if signature is None else _signature_callable(
        interpreter, signature, batch_size, seed
    )
    try:
        fn()
    except Exception as exc:
        raise ProfilerError(f"LiteRT failed to run {os.fspath(model_path)}: {exc}") from None
    return fn


def _time_one(
    interpreter, signature: str | None, *, warmup, repeats, min_time_s, max_repeats, batch_size, seed, label: str
) -> TimingStats:
    fn = _invoke_callable(interpreter, batch_size, seed) if signature is None else _signature_callable(
        interpreter, signature, batch_size, seed
    )
    try:
        fn()  # validation call
    except Exception as exc:
        raise ProfilerError(f"LiteRT failed to run {label}: {exc}") from None
    return time_callable(fn, warmup, repeats=repeats, min_time_s=min_time_s, max_repeats=max_repeats)


def time_tflite_model(
    model_path: str | os.PathLike[str],
    *,
    signature: str | None = None,
    num_threads: int = 1,
    warmup: int = 10,
    repeats: int | None = 50,
    min_time_s: float | None = 1.0,
    max_repeats: int = 10_000,
    batch_size: int = 1,
    seed: int = 0,
) -> TimingStats:
    """Latency (ms) of one signature of ``model_path``.

    ``signature=None`` is allowed when the model has at most one signature (a model without
    signatures is timed through ``interpreter.invoke()``); with several signatures it raises
    :class:`ProfilerError` naming them -- use :func:`time_tflite_signatures`. A free first
    dimension (-1 in ``shape_signature``) becomes ``batch_size``.
    """
    interpreter = _load(model_path, num_threads)
    names = list(interpreter.get_signature_list().keys())
    if signature is None and len(names) > 1:
        raise ProfilerError(f"{os.fspath(model_path)} has {len(names)} signatures {names}; choose one")
    if signature is None and names:
        signature = names[0]
    if signature is not None and signature not in names:
        raise ProfilerError(f"{os.fspath(model_path)} has no signature {signature!r} (it has {names})")
    return _time_one(
        interpreter, signature, warmup=warmup, repeats=repeats, min_time_s=min_time_s,
        max_repeats=max_repeats, batch_size=batch_size, seed=seed,
        label=f"{os.fspath(model_path)}" + (f" signature {signature!r}" if signature else ""),
    )


def time_tflite_signatures(
    model_path: str | os.PathLike[str],
    *,
    signatures: Sequence[str] | None = None,
    num_threads: int = 1,
    warmup: int = 10,
    repeats: int | None = 50,
    min_time_s: float | None = 1.0,
    max_repeats: int = 10_000,
    batch_size: int = 1,
    seed: int = 0,
) -> dict[str, TimingStats]:
    """Latency (ms) of each signature of ``model_path`` (all of them by default), each timed
    separately through its own signature runner on one shared interpreter, in model order.

    A model without signatures gives ``{"": stats}`` (timed through ``invoke()``).
    """
    interpreter = _load(model_path, num_threads)
    names = list(interpreter.get_signature_list().keys())
    if signatures is None:
        wanted: list[str | None] = list(names) if names else [None]
    else:
        missing = [s for s in signatures if s not in names]
        if missing:
            raise ProfilerError(f"{os.fspath(model_path)} has no signature(s) {missing} (it has {names})")
        wanted = list(signatures)
    results: dict[str, TimingStats] = {}
    for name in wanted:
        results[name or ""] = _time_one(
            interpreter, name, warmup=warmup, repeats=repeats, min_time_s=min_time_s,
            max_repeats=max_repeats, batch_size=batch_size, seed=seed,
            label=f"{os.fspath(model_path)}" + (f" signature {name!r}" if name else ""),
        )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m profilers.litert``: time every manifest entry on this machine's CPU."""
    parser = argparse.ArgumentParser(
        prog="python -m profilers.litert",
        description="Time .tflite files with the ai-edge-litert interpreter (resumable).",
    )
    add_timing_cli_args(parser)
    parser.add_argument("--threads", type=int, default=1, help="interpreter num_threads (default 1)")
    parser.add_argument("--batch-size", type=int, default=1, help="value of a free first dimension")
    args = parser.parse_args(argv)
    timing = dict(warmup=args.warmup, repeats=args.repeats, min_time_s=args.min_time_s, max_repeats=args.max_repeats)

    def measure(entry: ManifestEntry) -> dict[str, Any]:
        if entry.signature is not None:
            stats = time_tflite_model(
                entry.path, signature=entry.signature, num_threads=args.threads, batch_size=args.batch_size, **timing
            )
            return stats_result(stats)
        per_signature = time_tflite_signatures(
            entry.path, num_threads=args.threads, batch_size=args.batch_size, **timing
        )
        if len(per_signature) == 1:
            return stats_result(next(iter(per_signature.values())))
        return {
            "signatures": {name: stats_result(s) for name, s in per_signature.items()},
            "latency_ms": None,
            "statistic": "median",
        }

    def run():
        info = backend_info(num_threads=args.threads)
        info["timing"] = dict(timing, clock="perf_counter_ns")
        return run_manifest(
            args.manifest, args.output, measure, backend=info,
            runtime_versions=info["versions"], fail_fast=args.fail_fast,
        )

    return cli_main(run)
