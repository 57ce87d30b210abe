"""Turning latency units and calibration networks into the files a runtime executes, apart from timing them.

A ``Converter`` is small, picklable and needs no hardware: an ONNX converter for ONNX Runtime and TensorRT (the
engine is built from the ONNX file on the T4, at timing), a TFLite converter (NHWC, litert-torch) for LiteRT on this
host and on phones. A ``ConversionJob`` names one unit or network and the file it becomes. Both travel to Ray workers
(``zendeploy.distributed.conversion``) as they are, so a file converted on a cluster node is the file this host would
have written: same exporter, same versions (checked by the exporter string each conversion reports).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..errors import ProfilerError
from ..space.structure import BlockSpec
from ..space.units import Unit

Note = Callable[..., None]  # note(phase, done, total, info=""): see zendeploy.progress.reporter


@dataclass(frozen=True)
class Converter:
    """PyTorch module -> runtime file, the way ``zendeploy export`` writes it."""

    format: str  # "onnx" | "tflite"
    precision: str = "fp32"
    opset: Optional[int] = None

    @property
    def suffix(self) -> str:
        return ".onnx" if self.format == "onnx" else ".tflite"

    @property
    def exporter(self) -> str:
        """What converted the files; part of a table's fingerprint (every file of a table must agree)."""
        if self.format == "onnx":
            import torch

            return f"torch {torch.__version__} torch.onnx (TorchScript exporter), BN folded"
        from importlib.metadata import version

        weights = "" if self.precision == "fp32" else f", {self.precision} weights"
        return f"litert-torch {version('litert-torch')} (NHWC input{weights})"

    def convert(self, module, input_shape: Sequence[int], path: Path) -> Path:
        if self.format == "onnx":
            from ..convert.onnx import export_onnx

            return export_onnx(module, path, input_shape=tuple(input_shape), opset=self.opset or 17)
        from ..convert.tflite import export_tflite

        return export_tflite(module, path, input_shape=tuple(input_shape), nhwc=True, precision=self.precision)


@dataclass(frozen=True)
class ConversionJob:
    """One latency unit (``unit`` at ``resolution``) or one whole network (``blocks``) to convert to ``file_name``."""

    key: str
    file_name: str
    batch: int
    resolution: int
    unit: Optional[Unit] = None
    blocks: Optional[tuple[BlockSpec, ...]] = None
    num_classes: int = 1000

    def module_and_shape(self):
        if self.unit is not None:
            from ..space.blocks import build_unit

            return build_unit(self.unit).eval(), (self.batch, self.unit.in_channels, self.resolution, self.resolution)
        from ..builder import ZenNet

        model = ZenNet(self.blocks, num_classes=self.num_classes, se=False).eval()
        return model, (self.batch, self.blocks[0].in_channels, self.resolution, self.resolution)


def file_name(key: str, suffix: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:16] + suffix


def unit_job(key: str, unit: Unit, resolution: int, batch: int, suffix: str) -> ConversionJob:
    return ConversionJob(key=key, file_name=file_name(key, suffix), batch=batch, resolution=resolution, unit=unit)


def network_job(key: str, blocks: Sequence[BlockSpec], resolution: int, batch: int, num_classes: int,
                suffix: str) -> ConversionJob:
    return ConversionJob(key=key, file_name=file_name(key, suffix), batch=batch, resolution=resolution,
                         blocks=tuple(blocks), num_classes=num_classes)


def convert_job(converter: Converter, job: ConversionJob, out_dir: Path) -> Path:
    module, shape = job.module_and_shape()
    return converter.convert(module, shape, Path(out_dir) / job.file_name)


def convert_to_files(converter: Converter, job: ConversionJob) -> dict[str, bytes]:
    """Convert in a private temporary folder and return every file written (the model and its side files), by
    name: what a remote worker sends back to the host."""
    with tempfile.TemporaryDirectory(prefix="zendeploy-convert-") as tmp:
        convert_job(converter, job, Path(tmp))
        return {name: (Path(tmp) / name).read_bytes() for name in sorted(os.listdir(tmp))}


def convert_locally(converter: Converter, jobs: Sequence[ConversionJob], work: Path,
                    progress: Note | None = None, done_before: int = 0, total: int | None = None) -> None:
    note = progress or (lambda *a: None)
    total = total if total is not None else done_before + len(jobs)
    for i, job in enumerate(jobs):
        convert_job(converter, job, work)
        note("convert", done_before + i + 1, total)


def converter_for(device: str, precision: str = "fp32") -> Converter:
    """The converter of a device's table files (no hardware needed: it runs on any node)."""
    from .devices import DEVICES

    spec = DEVICES.get(device)  # RegistryError naming the closest device
    if spec.format == "onnx":  # fp32 ONNX; TensorRT builds its fp16/int8 engine from it on the device
        return Converter("onnx", precision="fp32", opset=17)
    if spec.format == "tflite":  # weights in the table's precision on a phone; this host's LiteRT is fp32 only
        return Converter("tflite", precision="fp32" if spec.local else precision)
    raise ProfilerError(f"device '{device}' has no converter for '{spec.format}' files")  # pragma: no cover
