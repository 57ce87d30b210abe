"""What every measurement backend shares: the timing settings, the ``Backend`` base class (convert with the
export converters, open, time with the standalone runners in ``profilers/``, provenance) and the translation of the
runners' errors into zendeploy's."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from torch import nn

from ..errors import ProfilerError as ZProfilerError


@dataclass
class TimingSettings:
    warmup_runs: int = 5
    min_runs: int = 10
    min_time_s: float = 0.05
    max_runs: int = 2000


def _cpu_name() -> str:
    """The CPU a table names (the same string as the environment fingerprint's ``cpu_model``)."""
    from profilers.common import cpu_model

    return cpu_model() or platform.processor() or platform.machine()


def _profilers():
    """The standalone runners ship inside the repository next to the package."""
    try:
        import profilers  # noqa: F401
    except ImportError as exc:  # pragma: no cover - installed together with zendeploy
        raise ZProfilerError("the 'profilers' package is missing from this installation") from exc
    return profilers


def profiler_caller(error: type[Exception] = ZProfilerError) -> Callable[..., Any]:
    """``call(fn, *args, **kwargs)`` turning the runners' ``ProfilerError`` (``profilers.common``, or zendeploy's
    own) into one line of ``error``: the one translation of runner errors (export passes ``ExportError``)."""
    def call(fn: Callable[..., Any], *args, **kwargs):
        from profilers.common import ProfilerError

        try:
            return fn(*args, **kwargs)
        except (ProfilerError, ZProfilerError) as exc:
            if type(exc) is error:
                raise
            raise error(str(exc)) from None

    return call


def _wrap_profiler_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    call = profiler_caller()

    def inner(*args, **kwargs):
        return call(fn, *args, **kwargs)

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
    def exporter(self) -> str:
        return self.converter.exporter

    def convert(self, module: nn.Module, input_shape: Sequence[int], path: Path) -> Path:
        return self.converter.convert(module, input_shape, path)

    def open(self, path: Path) -> Callable[[], Any]:
        """Load ``path`` once; a zero-argument callable running one inference on fixed random inputs (for timing)."""
        raise NotImplementedError

    def function(self, path: Path, **options: Any) -> Callable[[Any], Any]:
        """Load ``path``; ``x -> first output`` (numpy, float32, in the file's layout), for parity checks."""
        raise NotImplementedError(f"device '{self.device}' does not run files on this host")

    def time(self, run: Callable[[], Any], settings: TimingSettings):
        from profilers.common import time_callable

        return time_callable(run, settings.warmup_runs, repeats=settings.min_runs, min_time_s=settings.min_time_s,
                             max_repeats=settings.max_runs)

    def provenance(self) -> dict[str, Any]:
        raise NotImplementedError

    def notes(self) -> list[str]:
        """What the table's provenance should say about how this backend's timings were taken (e.g. a phone whose
        benchmark_model printed no median)."""
        return []

    def device_state(self) -> dict[str, Any] | None:
        """A reading of the device's clocks / power / temperature, taken after every timing pass and kept in the
        table's ``provenance.host.device_state``: a list of readings with their pass, or on a device farm one such
        list per shard (None: this runtime has nothing to read, e.g. a shared CPU)."""
        return None
