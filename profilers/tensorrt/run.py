"""Time an ``.onnx`` model with TensorRT on an NVIDIA GPU, two ways.

(a) TensorRT Python API + cuda-python (:func:`build_engine`, :func:`time_engine`,
:func:`time_onnx_tensorrt`). The engine is built with ``trt.Builder`` / ``trt.OnnxParser`` and a
builder config carrying the FP16/INT8 flags and a **timing cache persisted to a file** and reused
by every later build (``create_timing_cache`` from the file's bytes, ``set_timing_cache``, and the
merged cache serialised back after the build). What is measured: the device time of one
``IExecutionContext.execute_async_v3`` call, captured once into a CUDA graph after ``warmup``
plain launches and replayed between two ``cudaEventRecord`` on the same stream, read with
``cudaEventElapsedTime`` after ``cudaEventSynchronize`` (:mod:`profilers.tensorrt.cuda_timing`) --
GPU time of one inference without host<->device copies (inputs are random data uploaded once), the
counterpart of trtexec's "GPU Compute Time" with ``--useCudaGraph``, until at least ``repeats``
replays and ``min_time_s`` seconds of measured GPU time. The host's enqueue time is kept beside it
(a unit whose enqueue takes longer than its kernels is flagged ``enqueue_bound``), and the runner
reads the GPU's clocks, power and temperature before and after every unit
(:mod:`profilers.tensorrt.gpu_state`). Result: :class:`profilers.common.TimingStats` (median is the
headline number).

INT8 builds allow FP16 too (layers without an int8 kernel run in fp16, as deployments build them,
not in fp32). INT8 without a calibrator (and without Q/DQ nodes in the ONNX) uses placeholder
dynamic ranges (network inputs +-2, layer outputs +-4), as ``trtexec --int8`` does without
``--calib``: the latency is that of an INT8 engine, its outputs are meaningless.

Saved engines (``--engine-dir`` here, the T4 latency backend's work folder) are named by
:func:`plan_name`: the ONNX file's content hash and the TensorRT version are part of the name, so a
plan is never reused for another model or by another TensorRT.

(b) ``trtexec`` (:func:`build_trtexec_command`, :func:`run_trtexec`): the argument list
(``--onnx=``, ``--fp16``/``--int8``, ``--shapes=``, ``--warmUp=`` ms, ``--iterations=``,
``--duration=`` s, ``--useCudaGraph``, ``--noDataTransfers``, ``--timingCacheFile=``,
``--saveEngine=``, ``--exportTimes=``) is started without a shell and its summary is parsed with
:mod:`profilers.tensorrt.parse`; with an ``--exportTimes`` file the per-iteration GPU compute
times give a full :class:`TimingStats` too.

TensorRT, cuda-python and numpy are imported lazily; without TensorRT the API functions raise
:class:`profilers.common.ProfilerError` ("TensorRT is not installed ...").

Command line::

    python -m profilers.tensorrt --mode api --manifest m.json --output trt.jsonl \\
        --fp16 --timing-cache trt.cache [--shape input:1x3x224x224]
    python -m profilers.tensorrt --mode trtexec --trtexec /usr/src/tensorrt/bin/trtexec ...
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import re
import subprocess
import tempfile
from typing import Any, Mapping, Sequence

from profilers.common import (
    ManifestEntry,
    ProfilerError,
    TimingStats,
    add_timing_cli_args,
    atomic_write_bytes,
    cli_main,
    file_sha256,
    run_manifest,
    stats_result,
)
from profilers.tensorrt.cuda_timing import StreamTiming, check as _check, time_on_stream
from profilers.tensorrt.driver import (
    driver_cuda_version, load_cudart, set_device, tensorrt_cuda_major, tensorrt_init_failure,
)
from profilers.tensorrt.gpu_state import cuda_pci_bus_id, read_gpu_state
from profilers.tensorrt.parse import (
    TrtexecSummary, _version_from, parse_trtexec_output, parse_trtexec_times_json, trace_stats,
)

__all__ = [
    "TrtexecResult",
    "build_engine",
    "build_trtexec_command",
    "format_shapes",
    "main",
    "parse_shape_arg",
    "plan_name",
    "run_trtexec",
    "tensorrt_versions",
    "time_engine",
    "time_engine_detailed",
    "time_onnx_tensorrt",
    "time_onnx_tensorrt_detailed",
]


# --------------------------------------------------------------------------------------------
# lazy imports


SUPPORTED_MAJORS = (8, 9, 10)  # TensorRT 11 removed the weak-typing builder flags and set_dynamic_range used here
OLDEST_SUPPORTED = (8, 6)  # execute_async_v3, num_io_tensors, set_input_shape (8.5) and builder_optimization_level (8.6)


def check_tensorrt_version(version: str | None, what: str = "TensorRT") -> None:
    """Refuse, in one line, a TensorRT this runner was not written for. TensorRT 11 removed ``BuilderFlag.FP16`` /
    ``INT8``, ``ITensor.set_dynamic_range`` and trtexec's ``--fp16`` / ``--int8`` (precision comes from the ONNX:
    fp16 weights or AutoCast, Q/DQ nodes for int8), and turned CUDA graphs and spin-wait on by default in trtexec; a
    run would fail or measure something else than the provenance says."""
    if not version:
        return
    try:
        parts = [int(x) for x in str(version).split(".")[:2]]
    except ValueError:
        return
    major, minor = parts[0], (parts[1] if len(parts) > 1 else 0)
    if major not in SUPPORTED_MAJORS or (major, minor) < OLDEST_SUPPORTED:
        raise ProfilerError(
            f"{what} {version} is not supported: this profiler supports TensorRT "
            f"{OLDEST_SUPPORTED[0]}.{OLDEST_SUPPORTED[1]}-{SUPPORTED_MAJORS[-1]}.x (TensorRT 11 dropped the fp16/int8 "
            f"builder flags it uses); install 'tensorrt-cu12>=10,<11' (what pip install \"zendeploy[tensorrt]\" "
            f"pins) or use a TensorRT 10 container")


def _trt():
    try:
        import tensorrt  # noqa: PLC0415
    except ImportError:
        raise ProfilerError(
            "TensorRT is not installed (pip install tensorrt, or run inside an NVIDIA TensorRT container); "
            "with only the trtexec binary use mode 'trtexec'"
        ) from None
    check_tensorrt_version(getattr(tensorrt, "__version__", None))
    return tensorrt


_cudart = load_cudart


def tensorrt_versions() -> dict[str, Any]:
    """TensorRT, cuda-python, CUDA runtime and driver versions of this machine."""
    trt = _trt()
    versions: dict[str, Any] = {"tensorrt": trt.__version__}
    try:
        from importlib.metadata import version  # noqa: PLC0415

        versions["cuda-python"] = version("cuda-python")
    except Exception:
        versions["cuda-python"] = None
    try:
        cudart = _cudart()
        versions["cuda_runtime"] = _check(cudart, cudart.cudaRuntimeGetVersion(), "cudaRuntimeGetVersion")
        versions["cuda_driver"] = _check(cudart, cudart.cudaDriverGetVersion(), "cudaDriverGetVersion")
    except ProfilerError:
        versions["cuda_runtime"] = versions["cuda_driver"] = None
    return versions


# --------------------------------------------------------------------------------------------
# shapes


def parse_shape_arg(text: str) -> dict[str, tuple[int, ...]]:
    """``"input:1x3x224x224,mask:1x224x224"`` -> ``{"input": (1, 3, 224, 224), ...}``."""
    shapes: dict[str, tuple[int, ...]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, dims = part.rpartition(":")
        name = name.strip("'")
        if not sep or not name or not re.fullmatch(r"\d+(x\d+)*", dims):
            raise ProfilerError(f"bad shape {part!r}: expected name:DxDxD")
        shapes[name] = tuple(int(d) for d in dims.split("x"))
    return shapes


def format_shapes(shapes: Mapping[str, Sequence[int]]) -> str:
    """``{"input": (1, 3, 224, 224)}`` -> ``"input:1x3x224x224"`` (trtexec's ``--shapes`` spec; a
    name containing ``:`` or ``,`` is wrapped in single quotes, which trtexec strips)."""
    parts = []
    for name, dims in shapes.items():
        if not dims or any(int(d) < 1 for d in dims):
            raise ProfilerError(f"shape of {name!r} must be positive dims, got {list(dims)}")
        shown = f"'{name}'" if (":" in name or "," in name) else name
        parts.append(f"{shown}:{'x'.join(str(int(d)) for d in dims)}")
    return ",".join(parts)


# --------------------------------------------------------------------------------------------
# (a) TensorRT Python API


def _float_types(trt) -> tuple:
    return tuple(t for t in (getattr(trt, "float32", None), getattr(trt, "float16", None), getattr(trt, "bfloat16", None)) if t is not None)


def _has_qdq(trt, network) -> bool:
    kinds = {getattr(trt.LayerType, n) for n in ("QUANTIZE", "DEQUANTIZE") if hasattr(trt.LayerType, n)}
    return any(network.get_layer(i).type in kinds for i in range(network.num_layers))


def _set_placeholder_dynamic_ranges(trt, network, in_range: float = 2.0, out_range: float = 4.0) -> None:
    floats = _float_types(trt)
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if tensor.dtype in floats:
            tensor.set_dynamic_range(-in_range, in_range)
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        for j in range(layer.num_outputs):
            tensor = layer.get_output(j)
            if tensor.dtype in floats:
                tensor.set_dynamic_range(-out_range, out_range)


def _started(factory, logger):
    """``trt.Builder(logger)`` / ``trt.Runtime(logger)``; when TensorRT cannot start CUDA (a driver too old for its
    CUDA build) the binding raises a bare ``TypeError``: name the cause instead."""
    try:
        return factory(logger)
    except TypeError as exc:
        raise ProfilerError(tensorrt_init_failure(exc, driver_cuda_version(_cudart()), tensorrt_cuda_major(),
                                                  getattr(factory, "__name__", "Builder"))) from None


def build_engine(
    onnx_path: str | os.PathLike[str],
    *,
    engine_path: str | os.PathLike[str] | None = None,
    fp16: bool = False,
    int8: bool = False,
    timing_cache_path: str | os.PathLike[str] | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    workspace_mib: int | None = None,
    builder_optimization_level: int | None = None,
    verbose: bool = False,
    device: int = 0,
) -> bytes:
    """Build a serialised TensorRT engine from an ONNX file; returns the plan bytes.

    ``input_shapes`` fixes inputs with dynamic dimensions (one optimisation profile with
    min = opt = max). ``timing_cache_path``: the cache is loaded from that file when it exists
    (an empty cache otherwise, or when the stored one was made on a different GPU), used for the
    build, and the merged cache is written back atomically. ``engine_path`` also saves the plan. ``device``: the
    CUDA device it is built for (the one it will be timed on).
    """
    trt = _trt()
    onnx_path = os.fspath(onnx_path)
    if not os.path.isfile(onnx_path):
        raise ProfilerError(f"model file not found: {onnx_path}")
    set_device(_cudart(), device)  # TensorRT builds for the current CUDA device
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = _started(trt.Builder, logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ProfilerError(f"TensorRT cannot parse {onnx_path}: {errors or 'unknown error'}")

    config = builder.create_builder_config()
    if workspace_mib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    if builder_optimization_level is not None:
        config.builder_optimization_level = int(builder_optimization_level)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if int8:
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)  # fallback for layers without an int8 kernel: fp16, not fp32
        if not _has_qdq(trt, network):
            _set_placeholder_dynamic_ranges(trt, network)

    shapes = {k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()}
    names = [network.get_input(i).name for i in range(network.num_inputs)]
    unknown = set(shapes) - set(names)
    if unknown:
        raise ProfilerError(f"shapes given for unknown input(s) {sorted(unknown)}; inputs are {names}")
    profile = None
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        declared = tuple(tensor.shape)
        if tensor.name in shapes:
            shape = shapes[tensor.name]
            if len(shape) != len(declared) or any(d >= 0 and d != s for d, s in zip(declared, shape)):
                raise ProfilerError(f"shape {list(shape)} does not fit input {tensor.name!r} declared as {list(declared)}")
        elif any(d < 0 for d in declared):
            raise ProfilerError(f"input {tensor.name!r} has dynamic shape {list(declared)}; pass input_shapes")
        else:
            continue
        if any(d < 0 for d in declared):
            if profile is None:
                profile = builder.create_optimization_profile()
            profile.set_shape(tensor.name, shape, shape, shape)
    if profile is not None:
        config.add_optimization_profile(profile)

    if timing_cache_path is not None:
        timing_cache_path = os.fspath(timing_cache_path)
        blob = b""
        if os.path.isfile(timing_cache_path):
            with open(timing_cache_path, "rb") as f:
                blob = f.read()
        cache = config.create_timing_cache(blob)
        if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
            cache = config.create_timing_cache(b"")  # made on another GPU/driver: start afresh
            config.set_timing_cache(cache, ignore_mismatch=False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ProfilerError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)")
    plan = bytes(memoryview(serialized))
    if timing_cache_path is not None:
        atomic_write_bytes(timing_cache_path, bytes(memoryview(config.get_timing_cache().serialize())))
    if engine_path is not None:
        atomic_write_bytes(engine_path, plan)
    return plan


def _itemsize(trt, dtype) -> int:
    size = getattr(dtype, "itemsize", None)
    if size:
        return int(size)
    import numpy as np  # noqa: PLC0415

    return int(np.dtype(trt.nptype(dtype)).itemsize)


def time_engine(engine: bytes | str | os.PathLike[str], **options: Any) -> TimingStats:
    """GPU time (ms) of one inference of a serialised engine (bytes or a plan file): the statistics of
    :func:`time_engine_detailed` (same options)."""
    return time_engine_detailed(engine, **options).stats


def time_engine_detailed(
    engine: bytes | str | os.PathLike[str],
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    warmup: int = 20,
    repeats: int | None = 100,
    min_time_s: float | None = 1.0,
    max_repeats: int = 10_000,
    device: int = 0,
    seed: int = 0,
    cuda_graph: bool = True,
) -> StreamTiming:
    """GPU time (ms) of one ``execute_async_v3`` of a serialised engine (bytes or a plan file), replayed
    from a CUDA graph and measured with CUDA events (:func:`profilers.tensorrt.cuda_timing.time_on_stream`),
    with the host's enqueue time and whether the graph was used.

    Dynamic input dimensions take ``input_shapes`` or else the opt shape of profile 0. Outputs
    whose shape depends on the data are not supported (:class:`ProfilerError`).
    """
    trt = _trt()
    cudart = _cudart()
    import numpy as np  # noqa: PLC0415

    if not isinstance(engine, (bytes, bytearray, memoryview)):
        path = os.fspath(engine)
        if not os.path.isfile(path):
            raise ProfilerError(f"engine file not found: {path}")
        with open(path, "rb") as f:
            engine = f.read()
    set_device(cudart, device)
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = _started(trt.Runtime, logger)
    cuda_engine = runtime.deserialize_cuda_engine(bytes(engine))
    if cuda_engine is None:
        raise ProfilerError("TensorRT cannot deserialize the engine (built by another TensorRT version or GPU?)")
    context = cuda_engine.create_execution_context()
    if context is None:
        raise ProfilerError("TensorRT could not create an execution context (out of GPU memory?)")

    shapes = {k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()}
    names = [cuda_engine.get_tensor_name(i) for i in range(cuda_engine.num_io_tensors)]
    is_input = {n: cuda_engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
    unknown = set(shapes) - {n for n in names if is_input[n]}
    if unknown:
        raise ProfilerError(f"shapes given for unknown input(s) {sorted(unknown)}; inputs are {[n for n in names if is_input[n]]}")
    for name in names:
        if not is_input[name]:
            continue
        shape = tuple(cuda_engine.get_tensor_shape(name))
        if name in shapes:
            shape = shapes[name]
        elif any(d < 0 for d in shape):
            shape = tuple(cuda_engine.get_tensor_profile_shape(name, 0)[1])  # (min, opt, max)
        if not context.set_input_shape(name, shape):
            raise ProfilerError(f"TensorRT rejected shape {list(shape)} for input {name!r}")

    rng = np.random.default_rng(seed)
    buffers: list[int] = []
    stream = None
    try:
        stream = _check(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        for name in names:
            shape = tuple(context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ProfilerError(f"tensor {name!r} has a data-dependent shape {list(shape)}; not supported")
            dtype = cuda_engine.get_tensor_dtype(name)
            count = math.prod(shape) if shape else 1
            nbytes = max(count * _itemsize(trt, dtype), 1)
            ptr = _check(cudart, cudart.cudaMalloc(nbytes), f"cudaMalloc({nbytes}) for {name}")
            buffers.append(ptr)
            if is_input[name]:
                try:
                    np_dtype = np.dtype(trt.nptype(dtype))
                except TypeError:
                    np_dtype = None  # bf16/fp8/int4: no numpy type, leave zeros
                if np_dtype is not None and np_dtype.kind == "f":
                    host = np.ascontiguousarray(rng.standard_normal(count).astype(np_dtype))
                    _check(cudart, cudart.cudaMemcpy(ptr, host, host.nbytes,
                                                     cudart.cudaMemcpyKind.cudaMemcpyHostToDevice), "cudaMemcpy")
                else:
                    _check(cudart, cudart.cudaMemset(ptr, 0, nbytes), "cudaMemset")
            if not context.set_tensor_address(name, int(ptr)):
                raise ProfilerError(f"TensorRT rejected the device buffer of {name!r}")
        handle = int(stream)

        def enqueue() -> None:
            if not context.execute_async_v3(handle):
                raise ProfilerError("TensorRT execute_async_v3 failed")

        return time_on_stream(cudart, stream, enqueue, warmup=warmup, repeats=repeats, min_time_s=min_time_s,
                              max_repeats=max_repeats, cuda_graph=cuda_graph)
    finally:
        for ptr in buffers:
            cudart.cudaFree(ptr)
        if stream is not None:
            cudart.cudaStreamDestroy(stream)


def time_onnx_tensorrt(onnx_path: str | os.PathLike[str], **options: Any) -> TimingStats:
    """:func:`build_engine` then :func:`time_engine`: GPU time (ms) of one inference of the ONNX
    model as a TensorRT engine (the options of :func:`time_onnx_tensorrt_detailed`)."""
    return time_onnx_tensorrt_detailed(onnx_path, **options).stats


def time_onnx_tensorrt_detailed(
    onnx_path: str | os.PathLike[str],
    *,
    fp16: bool = False,
    int8: bool = False,
    timing_cache_path: str | os.PathLike[str] | None = None,
    engine_path: str | os.PathLike[str] | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    workspace_mib: int | None = None,
    warmup: int = 20,
    repeats: int | None = 100,
    min_time_s: float | None = 1.0,
    max_repeats: int = 10_000,
    device: int = 0,
    cuda_graph: bool = True,
) -> StreamTiming:
    """:func:`time_onnx_tensorrt` with the launch details (:func:`time_engine_detailed`). A saved
    ``engine_path`` is reused when it exists (name it with :func:`plan_name`, so it belongs to this
    ONNX file and this TensorRT)."""
    if engine_path is not None and os.path.isfile(engine_path):
        plan: bytes | str | os.PathLike[str] = engine_path
    else:
        plan = build_engine(
            onnx_path, engine_path=engine_path, fp16=fp16, int8=int8, timing_cache_path=timing_cache_path,
            input_shapes=input_shapes, workspace_mib=workspace_mib, device=device,
        )
    return time_engine_detailed(
        plan, input_shapes=input_shapes, warmup=warmup, repeats=repeats, min_time_s=min_time_s,
        max_repeats=max_repeats, device=device, cuda_graph=cuda_graph,
    )


def plan_name(onnx_path: str | os.PathLike[str], stem: str, precision: str, tensorrt_version: str) -> str:
    """``<stem>.<precision>.<first 12 hex of the ONNX file's sha256>.trt<version>.plan``: a saved engine
    names the model bytes and the TensorRT that built it, so a changed ONNX file or an upgraded
    TensorRT builds a new plan instead of timing a stale one."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)
    version = re.sub(r"[^0-9.]+", "", str(tensorrt_version)) or "unknown"
    return f"{safe}.{precision}.{file_sha256(onnx_path)[:12]}.trt{version}.plan"


# --------------------------------------------------------------------------------------------
# (b) trtexec


def _number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def build_trtexec_command(
    onnx_path: str | None = None,
    *,
    load_engine: str | None = None,
    trtexec: str = "trtexec",
    fp16: bool = False,
    int8: bool = False,
    shapes: Mapping[str, Sequence[int]] | None = None,
    warmup_ms: float | None = 200,
    iterations: int | None = None,
    duration_s: float | None = None,
    avg_runs: int | None = None,
    use_cuda_graph: bool = False,
    no_data_transfers: bool = False,
    use_spin_wait: bool = False,
    timing_cache_file: str | None = None,
    save_engine: str | None = None,
    export_times: str | None = None,
    device: int | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The argument list of one ``trtexec`` run (flags as in ``trtexec --help`` of TensorRT 8/10).

    Exactly one of ``onnx_path`` (build, then time) and ``load_engine`` (time a saved plan).
    ``warmup_ms`` is trtexec's ``--warmUp`` (milliseconds); ``iterations``/``duration_s`` are
    "at least N iterations" / "at least N seconds".
    """
    if (onnx_path is None) == (load_engine is None):
        raise ProfilerError("give exactly one of onnx_path and load_engine")
    args = [trtexec]
    args.append(f"--onnx={onnx_path}" if onnx_path is not None else f"--loadEngine={load_engine}")
    if fp16 or int8:  # int8 with fp16 fallback, as the API path builds it
        args.append("--fp16")
    if int8:
        args.append("--int8")
    if shapes:
        args.append(f"--shapes={format_shapes(shapes)}")
    if warmup_ms is not None:
        if warmup_ms < 0:
            raise ProfilerError(f"warmup_ms must be >= 0, got {warmup_ms}")
        args.append(f"--warmUp={_number(warmup_ms)}")
    if iterations is not None:
        if iterations < 1:
            raise ProfilerError(f"iterations must be >= 1, got {iterations}")
        args.append(f"--iterations={int(iterations)}")
    if duration_s is not None:
        if duration_s < 0:
            raise ProfilerError(f"duration_s must be >= 0, got {duration_s}")
        args.append(f"--duration={_number(duration_s)}")
    if avg_runs is not None:
        args.append(f"--avgRuns={int(avg_runs)}")
    if use_cuda_graph:
        args.append("--useCudaGraph")
    if no_data_transfers:
        args.append("--noDataTransfers")
    if use_spin_wait:
        args.append("--useSpinWait")
    if timing_cache_file is not None:
        args.append(f"--timingCacheFile={timing_cache_file}")
    if save_engine is not None:
        args.append(f"--saveEngine={save_engine}")
    if export_times is not None:
        args.append(f"--exportTimes={export_times}")
    if device is not None:
        args.append(f"--device={int(device)}")
    args += [str(a) for a in extra_args]
    return args


@dataclasses.dataclass(frozen=True)
class TrtexecResult:
    """A ``trtexec`` run: its parsed summary, :class:`TimingStats` of the per-iteration GPU
    compute times when ``--exportTimes`` was used, and the argument list that ran."""

    summary: TrtexecSummary
    compute_stats: TimingStats | None
    command: list[str]

    @property
    def latency_ms(self) -> float:
        """Median GPU compute time (ms)."""
        return self.compute_stats.median_ms if self.compute_stats is not None else self.summary.latency_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary.to_dict(),
            "compute_stats": None if self.compute_stats is None else self.compute_stats.to_dict(),
            "command": list(self.command),
            "latency_ms": self.latency_ms,
        }


def _error_line(text: str) -> str:
    for ln in text.splitlines():
        if "[E]" in ln or "Error" in ln or "error:" in ln:
            return re.sub(r"^\s*(?:\[[^\]]*\]\s*)*", "", ln).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def dynamic_inputs(onnx_path: str | os.PathLike[str]) -> set[str] | None:
    """Names of the ONNX graph inputs with a dynamic dimension (a name or no value), or None when the onnx package
    is not installed to tell (the runner then passes the shapes it was given)."""
    try:
        import onnx  # noqa: PLC0415
    except ImportError:
        return None
    try:
        model = onnx.load(os.fspath(onnx_path), load_external_data=False)
    except Exception:  # noqa: BLE001 - unreadable here: let trtexec report it
        return None
    inits = {i.name for i in model.graph.initializer}
    out = set()
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = inp.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
            out.add(inp.name)
    return out


def run_trtexec(
    onnx_path: str | None = None,
    *,
    timeout_s: float = 3600.0,
    collect_times: bool = True,
    **options: Any,
) -> TrtexecResult:
    """Run ``trtexec`` (see :func:`build_trtexec_command` for ``options``) and parse its summary.

    With ``collect_times`` and no ``export_times`` option, the per-iteration times go to a
    temporary JSON file that is parsed and deleted. Raises :class:`ProfilerError` (one line) when
    trtexec is missing, times out, exits non-zero or prints no summary.
    """
    tmpdir = None
    if collect_times and options.get("export_times") is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="trtexec-times-")
        options["export_times"] = os.path.join(tmpdir.name, "times.json")
    try:
        args = build_trtexec_command(onnx_path, **options)
        for key in ("save_engine", "timing_cache_file", "export_times"):  # trtexec does not create folders
            target = options.get(key)
            if target:
                os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        try:
            proc = subprocess.run(args, capture_output=True, text=True, errors="replace", timeout=timeout_s, check=False)
        except FileNotFoundError:
            raise ProfilerError(f"trtexec not found: {args[0]}") from None
        except subprocess.TimeoutExpired:
            raise ProfilerError(f"trtexec timed out after {timeout_s:g} s") from None
        text = f"{proc.stdout}\n{proc.stderr}"
        check_tensorrt_version(_version_from(text), "trtexec of TensorRT")
        if proc.returncode != 0:
            raise ProfilerError(f"trtexec exited with {proc.returncode}: {_error_line(text)}")
        summary = parse_trtexec_output(text)
        compute_stats = None
        times_path = options.get("export_times")
        if times_path is not None and os.path.isfile(times_path):
            with open(times_path, encoding="utf-8") as f:
                compute_stats = trace_stats(parse_trtexec_times_json(f.read()))
        return TrtexecResult(summary=summary, compute_stats=compute_stats, command=args)
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()


# --------------------------------------------------------------------------------------------
# command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m profilers.tensorrt``: time every manifest entry with TensorRT (resumable).

    A manifest entry may carry ``"shapes": {input_name: [dims]}``; ``--shape`` gives the default.
    """
    parser = argparse.ArgumentParser(
        prog="python -m profilers.tensorrt",
        description="Time .onnx files with TensorRT (Python API + CUDA events, or trtexec).",
    )
    add_timing_cli_args(parser, warmup=20, repeats=100)
    parser.add_argument("--mode", choices=("api", "trtexec"), default="api")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--int8", action="store_true")
    parser.add_argument("--timing-cache", default=None, help="timing cache file shared by all builds")
    parser.add_argument("--engine-dir", default=None,
                        help="save each engine in <dir>, named by key, precision, ONNX hash and TensorRT version, "
                             "and reuse it on the next run")
    parser.add_argument("--shape", default=None, help="default input shapes, e.g. input:1x3x224x224")
    parser.add_argument("--device", type=int, default=0)
    parser.add_argument("--trtexec", default="trtexec", help="trtexec binary (mode trtexec)")
    parser.add_argument("--warmup-ms", type=float, default=200, help="trtexec --warmUp in ms (mode trtexec)")
    parser.add_argument("--use-cuda-graph", action="store_true", help="trtexec --useCudaGraph (mode trtexec)")
    parser.add_argument("--no-cuda-graph", action="store_true",
                        help="mode api: time plain execute_async_v3 launches instead of CUDA graph replays")
    parser.add_argument("--no-data-transfers", action="store_true", help="trtexec --noDataTransfers")
    args = parser.parse_args(argv)
    default_shapes = parse_shape_arg(args.shape) if args.shape else {}

    precision = "int8" if args.int8 else "fp16" if args.fp16 else "fp32"

    def engine_path(entry: ManifestEntry, tensorrt_version: str | None) -> str | None:
        """api: a plan reused when it exists, so named by the ONNX hash and the TensorRT version; trtexec
        rebuilds and saves every time: ``<key>.plan``."""
        if not args.engine_dir or (tensorrt_version is not None and not os.path.isfile(entry.path)):
            return None  # api without its ONNX file: the build names the missing file
        if tensorrt_version is None:
            return os.path.join(args.engine_dir, re.sub(r"[^A-Za-z0-9_.-]+", "_", entry.key) + ".plan")
        return os.path.join(args.engine_dir, plan_name(entry.path, entry.key, precision, tensorrt_version))

    def shapes_of(entry: ManifestEntry) -> dict[str, tuple[int, ...]]:
        given = entry.extra.get("shapes")
        return {k: tuple(v) for k, v in given.items()} if given else dict(default_shapes)

    @functools.cache
    def timed_gpu_bus() -> str | None:  # read once: NVML's index order is not CUDA's
        return cuda_pci_bus_id(_cudart(), args.device)

    def gpu_state() -> dict[str, Any]:
        return read_gpu_state(args.device, pci_bus_id=timed_gpu_bus())

    def measure_api(entry: ManifestEntry) -> dict[str, Any]:
        before = gpu_state()
        timed = time_onnx_tensorrt_detailed(
            entry.path, fp16=args.fp16, int8=args.int8, timing_cache_path=args.timing_cache,
            engine_path=engine_path(entry, _trt().__version__), input_shapes=shapes_of(entry) or None,
            warmup=args.warmup, repeats=args.repeats, min_time_s=args.min_time_s, max_repeats=args.max_repeats,
            device=args.device, cuda_graph=not args.no_cuda_graph,
        )
        return {**stats_result(timed.stats), **timed.to_dict(),
                "gpu_state": {"before": before, "after": gpu_state()}}

    def measure_trtexec(entry: ManifestEntry) -> dict[str, Any]:
        shapes = shapes_of(entry)
        dynamic = dynamic_inputs(entry.path)
        if dynamic is not None:  # trtexec refuses --shapes for an input whose shape is fixed in the ONNX
            shapes = {k: v for k, v in shapes.items() if k in dynamic}
        result = run_trtexec(
            entry.path, trtexec=args.trtexec, fp16=args.fp16, int8=args.int8, shapes=shapes or None,
            warmup_ms=args.warmup_ms, iterations=args.repeats, duration_s=args.min_time_s,
            use_cuda_graph=args.use_cuda_graph, no_data_transfers=args.no_data_transfers,
            timing_cache_file=args.timing_cache, save_engine=engine_path(entry, None), device=args.device,
        )
        out = result.to_dict()
        out["stats"] = out.pop("compute_stats")
        out["statistic"] = "median"
        return out

    def run():
        if args.mode == "api":
            versions = tensorrt_versions()
            timing = {"warmup": args.warmup, "repeats": args.repeats, "min_time_s": args.min_time_s,
                      "max_repeats": args.max_repeats, "clock": "cudaEventElapsedTime",
                      "launch": "execute_async_v3" if args.no_cuda_graph else "CUDA graph replay"}
        else:
            versions = {"trtexec": args.trtexec}
            timing = {"warmUp_ms": args.warmup_ms, "iterations": args.repeats, "duration_s": args.min_time_s,
                      "clock": "trtexec GPU Compute Time"}
        info = {
            "name": f"tensorrt-{args.mode}", "fp16": args.fp16, "int8": args.int8, "device": args.device,
            "int8_fp16_fallback": args.int8,
            "timing_cache": args.timing_cache,
            # api: requested (each record's cuda_graph says whether the capture worked); trtexec: the flag passed
            "use_cuda_graph": (not args.no_cuda_graph) if args.mode == "api" else args.use_cuda_graph,
            "no_data_transfers": args.no_data_transfers, "timing": timing, "versions": versions,
        }
        measure = measure_api if args.mode == "api" else measure_trtexec
        return run_manifest(args.manifest, args.output, measure, backend=info,
                            runtime_versions=versions, fail_fast=args.fail_fast)

    return cli_main(run)
