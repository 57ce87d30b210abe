"""The measurement backends of the devices this host runs (ONNX Runtime, LiteRT), and the one factory for all of
them (``make_backend`` / ``BackendSpec``; the remote ones live in ``remote.py``, the device table in ``devices.py``).

A backend turns a PyTorch module into the file its runtime executes, using the same converters as
``zendeploy export`` (so what is timed is what ships), opens it once, and times it with the standalone runners in
``profilers/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import MissingExtraError, ProfilerError as ZProfilerError, require
from .devices import DEVICES, DeviceSpec, list_devices
from .runtime_base import Backend, TimingSettings, _cpu_name, _profilers, _wrap_profiler_errors


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

    @_wrap_profiler_errors
    def function(self, path, **_options):
        import numpy as np
        from profilers.onnxruntime.run import make_session

        session = make_session(path, intra_op_threads=self.threads, inter_op_threads=1)
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]

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
        _profilers()  # converting needs litert-torch too; the converter (convert.tflite) asks for it when it runs

    @_wrap_profiler_errors
    def open(self, path, *, signature: str | None = None):
        from profilers.litert.run import open_runner

        return open_runner(path, signature=signature, num_threads=self.threads, batch_size=self.batch)

    def function(self, path, *, signature: str | None = None, **_options):
        """``x -> first output`` of one signature (the only one when None); quantised (int8/uint8) inputs and
        outputs are quantised / dequantised with the tensors' scale and zero point, so callers deal in float32."""
        import numpy as np

        interpreter_mod = require("ai_edge_litert.interpreter", "tflite", "running TFLite files")
        try:
            interpreter = interpreter_mod.Interpreter(model_path=os.fspath(path), num_threads=self.threads)
        except Exception as exc:
            raise ZProfilerError(f"LiteRT cannot load {path}: {exc}") from None
        names = list(interpreter.get_signature_list())
        if signature is None:
            if len(names) != 1:
                raise ZProfilerError(f"{path} has signatures {names}; name one")
            signature = names[0]
        if signature not in names:
            raise ZProfilerError(f"{path} has no signature '{signature}' (it has {names})")
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

        return lambda x: dequantise(runner(**{in_name: quantise(x)})[out_name])

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


def backend_for(table, *, threads: int | None = None, **kwargs) -> Backend:
    """The backend a table was measured with, opened on this host: its device, batch, threads (or ``threads``) and
    precision."""
    p = table.provenance
    return make_backend(p.device, batch=p.batch, threads=threads or p.threads or 1, precision=p.precision, **kwargs)


def make_backend(device: str, **kwargs) -> Backend:
    """The measurement backend for a device name (unknown names get the list and a suggestion)."""
    spec = DEVICES.get(device)
    if device in BACKENDS:
        return BACKENDS[device](**kwargs)
    from .remote import make_remote_backend

    return make_remote_backend(spec, **kwargs)


__all__ = ["DEVICES", "DeviceSpec", "Backend", "TimingSettings", "backend_for", "make_backend", "list_devices",
           "MissingExtraError"]
