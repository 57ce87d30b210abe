"""The device table: each device's runtime, the extra it needs, its layout, and whether it runs on this host.

| device       | backend (runtime)                   | runs here | layout |
|--------------|-------------------------------------|-----------|--------|
| ``cpu``      | ONNX Runtime, CPU execution provider | yes       | NCHW   |
| ``tflite-cpu`` | LiteRT interpreter, XNNPACK, on this host | yes  | NHWC   |
| ``t4``       | TensorRT on an NVIDIA T4 (CUDA-event timing) | on a T4 box | NCHW |
| ``pixel``    | LiteRT ``benchmark_model`` on an Android phone over adb | with a phone | NHWC |

Plain data: the converters (``conversion.py``), the backends on this host (``backends.py``) and the remote ones
(``remote.py``) all read it; it imports none of them.
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
