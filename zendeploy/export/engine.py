"""ONNX -> TensorRT engine, built by the same code the T4 profiler uses (``profilers/tensorrt/run.py``).

    >>> from zendeploy.export.engine import build_engine
    >>> build_engine("model.onnx", "model.engine", precision="fp16", timing_cache="trt.cache")

The builder is :func:`profilers.tensorrt.run.build_engine` (``trt.Builder`` + ``trt.OnnxParser``, FP16/INT8 flags,
a timing cache persisted to a file); this module maps zendeploy's precision names onto it and turns its errors into
:class:`~zendeploy.errors.ExportError`. Where TensorRT (or cuda-python) is not installed, :func:`tensorrt_missing`
says why and :func:`build_engine` raises :class:`~zendeploy.errors.MissingExtraError`; ``zendeploy export`` shows
the engine row as skipped with that reason.

INT8 here has no calibrator: like ``trtexec --int8`` without ``--calib``, the profiler's builder sets placeholder
dynamic ranges, so an int8 engine is right for latency and wrong for accuracy (its parity record is a drift report).
Engines are specific to the GPU model and TensorRT version that built them.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import ExportError, MissingExtraError

PRECISIONS = ("fp32", "fp16", "int8")


def tensorrt_missing() -> str | None:
    """None when TensorRT and cuda-python can be imported, else the one-line reason (with the install hint)."""
    for module, package in (("tensorrt", "tensorrt"), ("cuda.bindings", "cuda-python")):  # "cuda" alone: any
        # namespace package (cuda-pathfinder) satisfies it without the bindings
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return str(MissingExtraError(package, "tensorrt", "TensorRT engine build"))
    return None


def _require_tensorrt() -> None:
    reason = tensorrt_missing()
    if reason is not None:
        package = "tensorrt" if "'tensorrt'" in reason else "cuda-python"
        raise MissingExtraError(package, "tensorrt", "TensorRT engine build")


def _profiler_call(fn: Callable[..., Any], *args, **kwargs):
    """The runners' errors as one line of ExportError (the runtime layer's one translator)."""
    from ..latency.runtime_base import profiler_caller

    return profiler_caller(ExportError)(fn, *args, **kwargs)


def build_engine(
    onnx_path: str | os.PathLike,
    engine_path: str | os.PathLike,
    *,
    precision: str,
    timing_cache: str | os.PathLike | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> Path:
    """Build a TensorRT engine (``.engine`` plan file, written atomically) from an ONNX file; returns its path.

    ``precision``: fp32, fp16 (FP16 flag) or int8 (INT8 flag, placeholder ranges, see module docstring).
    ``timing_cache``: a file read before and written back after the build (shared with the profiler).
    ``input_shapes`` fixes dynamic dimensions, e.g. ``{"input": (8, 3, 224, 224)}`` for a dynamic-batch ONNX.
    """
    if precision not in PRECISIONS:
        raise ExportError(f"unknown TensorRT precision '{precision}' (valid: {', '.join(PRECISIONS)})")
    if not Path(onnx_path).is_file():
        raise ExportError(f"ONNX file '{onnx_path}' does not exist")
    _require_tensorrt()
    from profilers.tensorrt.run import build_engine as profiler_build_engine

    engine_path = Path(engine_path)
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    _profiler_call(
        profiler_build_engine, onnx_path, engine_path=engine_path, fp16=precision == "fp16", int8=precision == "int8",
        timing_cache_path=timing_cache, input_shapes=input_shapes,
    )
    return engine_path


def time_engine(engine_path: str | os.PathLike, *, warmup: int = 20, repeats: int = 100, min_time_s: float = 1.0,
                input_shapes: Mapping[str, Sequence[int]] | None = None):
    """GPU time of one inference (CUDA events), by the profiler's :func:`profilers.tensorrt.run.time_engine`."""
    _require_tensorrt()
    from profilers.tensorrt.run import time_engine as profiler_time_engine

    return _profiler_call(profiler_time_engine, engine_path, input_shapes=input_shapes, warmup=warmup,
                          repeats=repeats, min_time_s=min_time_s)


def open_engine_runner(engine_path: str | os.PathLike, *, device: int = 0) -> Callable[[Any], Any]:
    """``x -> first output`` of a single-input TensorRT engine (host arrays in and out), for the parity check.

    Uses the TensorRT runtime and cuda-python the same way the profiler's ``time_engine`` does (deserialise,
    ``set_input_shape``, device buffers, ``execute_async_v3``), plus the copies back to the host.
    """
    _require_tensorrt()
    import numpy as np
    import tensorrt as trt
    from profilers.tensorrt.driver import set_device
    from profilers.tensorrt.run import _check, _cudart, _started  # the profiler's CUDA helpers

    cudart = _cudart()
    _profiler_call(set_device, cudart, device)
    runtime = _profiler_call(_started, trt.Runtime, trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
    if engine is None:
        raise ExportError("TensorRT cannot deserialize the engine (built by another TensorRT version or GPU?)")
    context = engine.create_execution_context()
    if context is None:
        raise ExportError("TensorRT could not create an execution context for the engine (out of GPU memory?)")
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if n not in inputs]
    if len(inputs) != 1 or not outputs:
        raise ExportError(f"expected one input and at least one output, engine has inputs {inputs}")

    def run(x):
        x = np.ascontiguousarray(x, dtype=np.dtype(trt.nptype(engine.get_tensor_dtype(inputs[0]))))
        if not context.set_input_shape(inputs[0], tuple(x.shape)):
            raise ExportError(f"TensorRT rejected input shape {list(x.shape)}")
        stream = _profiler_call(_check, cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        buffers: dict[str, int] = {}
        try:
            for name in names:
                shape = tuple(context.get_tensor_shape(name))
                dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
                nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
                buffers[name] = _profiler_call(_check, cudart, cudart.cudaMalloc(nbytes), "cudaMalloc")
                context.set_tensor_address(name, int(buffers[name]))
            h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
            _profiler_call(_check, cudart, cudart.cudaMemcpy(buffers[inputs[0]], x.ctypes.data, x.nbytes, h2d),
                           "cudaMemcpy")
            if not context.execute_async_v3(int(stream)):
                raise ExportError("TensorRT execute_async_v3 failed")
            _profiler_call(_check, cudart, cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
            out = outputs[0]
            host = np.empty(tuple(context.get_tensor_shape(out)),
                            dtype=np.dtype(trt.nptype(engine.get_tensor_dtype(out))))
            _profiler_call(_check, cudart, cudart.cudaMemcpy(host.ctypes.data, buffers[out], host.nbytes, d2h),
                           "cudaMemcpy")
            return host.astype(np.float32)
        finally:
            for ptr in buffers.values():
                cudart.cudaFree(ptr)
            cudart.cudaStreamDestroy(stream)

    return run
