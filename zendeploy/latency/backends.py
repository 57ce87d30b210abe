"""Devices and their measurement backends (host side).

A backend turns a PyTorch module into the file its runtime executes, using the same converters as
``zendeploy export`` (so what is timed is what ships), opens it once, and times it with the standalone runners in
``profilers/``. Devices:

| device       | backend (runtime)                   | runs here | layout |
|--------------|-------------------------------------|-----------|--------|
| ``cpu``      | ONNX Runtime, CPU execution provider | yes       | NCHW   |
| ``tflite-cpu`` | LiteRT interpreter, XNNPACK, on this host | yes  | NHWC   |
| ``t4``       | TensorRT on an NVIDIA T4 (CUDA-event timing) | on a T4 box | NCHW |
| ``pixel``    | LiteRT ``benchmark_model`` on an Android phone over adb | with a phone | NHWC |
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from torch import nn

from .. import __version__
from ..errors import MissingExtraError, ProfilerError as ZProfilerError, require
from ..registry import Registry


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    backend: str
    description: str
    extra: str
    layout: str
    local: bool  # runs on this host's CPU (no special hardware)


DEVICES: Registry[DeviceSpec] = Registry("device")
for _d in (
    DeviceSpec("cpu", "onnxruntime", "this host's CPU, ONNX Runtime CPU execution provider", "onnx", "NCHW", True),
    DeviceSpec("tflite-cpu", "litert", "this host's CPU, LiteRT interpreter with XNNPACK", "tflite", "NHWC", True),
    DeviceSpec("t4", "tensorrt", "NVIDIA T4 with TensorRT (run on the T4 box)", "tensorrt", "NCHW", False),
    DeviceSpec("pixel", "litert", "Android phone (Pixel-class) over adb, TFLite benchmark_model", "tflite", "NHWC",
               False),
):
    DEVICES.register(_d.name, _d)


def list_devices() -> list[str]:
    return DEVICES.names()


@dataclass
class TimingSettings:
    warmup_runs: int = 5
    min_runs: int = 10
    min_time_s: float = 0.05
    max_runs: int = 2000


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _profilers():
    """The standalone runners ship inside the repository next to the package."""
    try:
        import profilers  # noqa: F401
    except ImportError as exc:  # pragma: no cover - installed together with zendeploy
        raise ZProfilerError("the 'profilers' package is missing from this installation") from exc
    return profilers


def _wrap_profiler_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    def inner(*args, **kwargs):
        from profilers.common import ProfilerError

        try:
            return fn(*args, **kwargs)
        except ProfilerError as exc:
            raise ZProfilerError(str(exc)) from None

    return inner


class Backend:
    """Convert modules to runtime files, open them, time them. Subclasses implement one runtime."""

    device: str
    backend: str
    suffix: str
    layout: str
    opset: int | None = None
    # Which per-pass statistic a latency is the minimum of (see latency/profile.py): the fastest run on this shared
    # host (the most repeatable estimate here); a dedicated device (T4, phone) keeps the pass median.
    pass_statistic: str = "min_ms"

    def __init__(self, *, batch: int = 1, threads: int = 1, precision: str = "fp32", serial: str | None = None,
                 delegate: str | None = None):
        if precision not in ("fp32", "fp16", "int8"):
            raise ZProfilerError(f"unknown precision '{precision}' (valid: fp32, fp16, int8)")
        if precision != "fp32" and self.device in ("cpu", "tflite-cpu"):
            raise ZProfilerError(f"device '{self.device}' is profiled in fp32 only (got {precision})")
        if serial is not None and self.device != "pixel":
            raise ZProfilerError(f"--serial is for --device pixel, not '{self.device}'")
        self.batch, self.threads, self.precision = batch, threads, precision
        self.serial, self.delegate = serial, delegate
        from .conversion import converter_for

        self.converter = converter_for(self.device, precision)

    @property
    def exporter(self) -> str:  # type: ignore[override]
        return self.converter.exporter

    def convert(self, module: nn.Module, input_shape: Sequence[int], path: Path) -> Path:
        return self.converter.convert(module, input_shape, path)

    def open(self, path: Path) -> Callable[[], Any]:
        raise NotImplementedError

    def time(self, run: Callable[[], Any], settings: TimingSettings):
        from profilers.common import time_callable

        return time_callable(run, settings.warmup_runs, repeats=settings.min_runs, min_time_s=settings.min_time_s,
                             max_repeats=settings.max_runs)

    def provenance(self) -> dict[str, Any]:
        raise NotImplementedError


class OnnxRuntimeBackend(Backend):
    device, backend, suffix, layout = "cpu", "onnxruntime", ".onnx", "NCHW"
    opset = 17

    def __init__(self, **kw):
        super().__init__(**kw)
        self.ort = require("onnxruntime", "onnx", "profiling on ONNX Runtime")
        _profilers()

    @_wrap_profiler_errors
    def open(self, path):
        from profilers.onnxruntime.run import make_random_inputs, make_session

        session = make_session(path, intra_op_threads=self.threads, inter_op_threads=1)
        feeds = make_random_inputs(session, batch_size=self.batch)
        session.run(None, feeds)
        return lambda: session.run(None, feeds)

    def provenance(self):
        return {"device": self.device, "device_name": _cpu_name(), "backend": self.backend,
                "backend_version": f"onnxruntime {self.ort.__version__}", "threads": self.threads,
                "affinity": _affinity(), "delegate": "CPUExecutionProvider", "input_layout": self.layout,
                "exporter": self.exporter, "opset": self.opset}


class LiteRTBackend(Backend):
    device, backend, suffix, layout = "tflite-cpu", "litert", ".tflite", "NHWC"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.litert = require("ai_edge_litert", "tflite", "profiling on LiteRT")
        require("litert_torch", "tflite", "converting latency units to TFLite")
        _profilers()

    @_wrap_profiler_errors
    def open(self, path):
        from profilers.litert.run import open_runner

        return open_runner(path, num_threads=self.threads, batch_size=self.batch)

    def provenance(self):
        from importlib.metadata import version

        return {"device": self.device, "device_name": _cpu_name(), "backend": self.backend,
                "backend_version": f"ai-edge-litert {version('ai-edge-litert')}", "threads": self.threads,
                "affinity": _affinity(), "delegate": "XNNPACK (default CPU delegate)", "input_layout": self.layout,
                "exporter": self.exporter, "opset": None}


def _affinity() -> str | None:
    try:
        cpus = sorted(os.sched_getaffinity(0))
        return ",".join(map(str, cpus))
    except (AttributeError, OSError):
        return None


BACKENDS: dict[str, type[Backend]] = {"cpu": OnnxRuntimeBackend, "tflite-cpu": LiteRTBackend}


def backend_class(device: str) -> type[Backend]:
    DEVICES.get(device)  # RegistryError naming the closest device
    if device in BACKENDS:
        return BACKENDS[device]
    from .remote import PixelBackend, TensorRTBackend

    return {"t4": TensorRTBackend, "pixel": PixelBackend}[device]


@dataclass(frozen=True)
class BackendSpec:
    """A backend described, not opened: what a device-farm node needs to open it there (``make()``), and what this
    host needs to convert for it. Picklable; needs no hardware."""

    device: str
    batch: int = 1
    threads: int = 1
    precision: str = "fp32"
    options: tuple = ()  # (name, value) pairs for make_backend, e.g. (("delegate", "gpu"),)

    @property
    def converter(self):
        from .conversion import converter_for

        return converter_for(self.device, self.precision)

    @property
    def pass_statistic(self) -> str:
        return backend_class(self.device).pass_statistic

    @property
    def backend(self) -> str:
        return DEVICES.get(self.device).backend

    def make(self) -> Backend:
        return make_backend(self.device, batch=self.batch, threads=self.threads, precision=self.precision,
                            **dict(self.options))


def make_backend(device: str, **kwargs) -> Backend:
    """The measurement backend for a device name (unknown names get the list and a suggestion)."""
    spec = DEVICES.get(device)
    if device in BACKENDS:
        return BACKENDS[device](**kwargs)
    from .remote import make_remote_backend

    return make_remote_backend(spec, **kwargs)


__all__ = ["DEVICES", "DeviceSpec", "Backend", "TimingSettings", "make_backend", "list_devices",
           "MissingExtraError"]
