"""The device table: each device's runtime, the file format its converter writes, the extra it needs, its layout,
and whether it runs on this host.

| device         | backend (runtime)                                       | converter | runs here    | layout |
|----------------|---------------------------------------------------------|-----------|--------------|--------|
| ``cpu``        | ONNX Runtime, CPU execution provider                    | onnx      | yes          | NCHW   |
| ``tflite-cpu`` | LiteRT interpreter, XNNPACK, on this host               | tflite    | yes          | NHWC   |
| ``t4``         | TensorRT on an NVIDIA T4 (engine built from the ONNX)   | onnx      | on a T4 box  | NCHW   |
| ``pixel``      | LiteRT ``benchmark_model`` on an Android phone over adb | tflite    | with a phone | NHWC   |

Plain data: the converters (``conversion.py``), the backends on this host (``backends.py``), the remote ones
(``remote.py``) and the export report's runtimes (``export/runtime.py``) all read it; it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    backend: str
    description: str
    extra: str
    layout: str
    local: bool  # runs on this host's CPU (no special hardware)
    format: str = "onnx"  # the file format its converter writes (a FORMATS key of zendeploy export)


DEVICES: Registry[DeviceSpec] = Registry("device")
for _d in (
    DeviceSpec("cpu", "onnxruntime", "this host's CPU, ONNX Runtime CPU execution provider", "onnx", "NCHW", True,
               "onnx"),
    DeviceSpec("tflite-cpu", "litert", "this host's CPU, LiteRT interpreter with XNNPACK", "tflite", "NHWC", True,
               "tflite"),
    DeviceSpec("t4", "tensorrt", "NVIDIA T4 with TensorRT (run on the T4 box)", "tensorrt", "NCHW", False, "onnx"),
    DeviceSpec("pixel", "litert", "Android phone (Pixel-class) over adb, TFLite benchmark_model", "tflite", "NHWC",
               False, "tflite"),
):
    DEVICES.register(_d.name, _d)


def list_devices() -> list[str]:
    return DEVICES.names()


def local_device_for(fmt: str) -> str | None:
    """The device of this host whose runtime runs ``fmt`` files (onnx -> cpu, tflite -> tflite-cpu), or None."""
    return next((name for name in DEVICES.names() if DEVICES.get(name).local and DEVICES.get(name).format == fmt),
                None)
