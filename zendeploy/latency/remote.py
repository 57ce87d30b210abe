"""Backends for hardware this host may not have: an NVIDIA T4 with TensorRT, an Android phone over adb.

- ``t4``: run ``zendeploy profile --device t4`` ON the T4 machine (``pip install "zendeploy[tensorrt,onnx]"``). Each
  unit goes PyTorch -> ONNX (the export path) -> TensorRT engine (``profilers.tensorrt.run.build_engine``, with a
  timing cache shared by all units of the run) and is timed with CUDA events around ``execute_async_v3``
  (``profilers.tensorrt.run.time_engine``): device-side time, no host clock, no data transfers.
- ``pixel``: run on a host with adb and the phone connected (``pip install "zendeploy[tflite]"``, plus TFLite's
  ``benchmark_model`` built for the phone's ABI, given by ``--benchmark-binary`` or ``ZENDEPLOY_BENCHMARK_MODEL``).
  Each unit goes PyTorch -> TFLite (NHWC, litert-torch) on the host, is pushed and timed by ``benchmark_model`` on
  the phone (``profilers.litert.adb``); the median it prints (the mean on old versions) is the pass statistic.
  Battery temperature before/after each run is read through ``dumpsys battery``.

Neither could be run where zendeploy is developed (no T4, no phone): the code paths up to the hardware boundary are
tested (the adb transport is replaced by a test double in ``tests/test_latency_remote.py``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from profilers.common import file_sha256
from profilers.tensorrt.driver import cuda_failure

from ..errors import ProfilerError as ZProfilerError, require
from .devices import DeviceSpec
from .runtime_base import Backend, TimingSettings, _wrap_profiler_errors


class _Stats:
    """TimingStats-compatible record for results that arrive already summarised (benchmark_model)."""

    def __init__(self, n, median_ms, mean_ms, min_ms, p10_ms, p90_ms, std_ms, extra=None):
        self.n, self.median_ms, self.mean_ms, self.min_ms = n, median_ms, mean_ms, min_ms
        self.p10_ms, self.p90_ms, self.std_ms, self.extra = p10_ms, p90_ms, std_ms, extra or {}

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("n", "median_ms", "mean_ms", "min_ms", "p10_ms", "p90_ms", "std_ms")}
        d.update(self.extra)
        return d


def phone_p10_p90(p5: float | None, p95: float | None, low: float | None, high: float | None,
                  median: float) -> tuple[float, float, str]:
    """``benchmark_model`` prints p5 / median / p95 (newer TFLite) or only min / max, never p10 / p90: the table's
    p10 / p90 are interpolated linearly in rank between the nearest percentiles printed, and the third value says
    from which (it is kept with every timing)."""
    if p5 is not None and p95 is not None:
        w = (10 - 5) / (50 - 5)
        return p5 + (median - p5) * w, p95 - (p95 - median) * w, "interpolated from p5 / median / p95"
    if low is not None and high is not None:
        w = 10 / 50
        return low + (median - low) * w, high - (high - median) * w, "interpolated from min / median / max"
    return median, median, "not printed (the median stands in)"


class TensorRTBackend(Backend):
    device, backend, suffix, layout = "t4", "tensorrt", ".onnx", "NCHW"
    pass_statistic = "median_ms"
    opset = 17

    def __init__(self, *, workdir: str | os.PathLike | None = None, **kw):
        super().__init__(**kw)
        self.trt = require("tensorrt", "tensorrt", "profiling on TensorRT (run this on the T4 machine)")
        require("onnx", "onnx", "exporting latency units to ONNX for TensorRT")
        from profilers.tensorrt import run as trt_run

        self._run = trt_run
        self.gpu, capability = _gpu_identity()
        from profilers.tensorrt.gpu_state import cuda_pci_bus_id

        self.pci_bus_id = cuda_pci_bus_id(_cudart(), 0)  # NVML finds this GPU by bus id: its index order is not CUDA's
        if not is_t4(self.gpu, capability):
            raise ZProfilerError(f"device 't4' needs an NVIDIA T4 (compute capability 7.5, not a vGPU slice), but "
                                 f"this machine's GPU 0 is '{self.gpu}' (compute capability "
                                 f"{'.'.join(map(str, capability)) if capability else 'unknown'}); a table must name "
                                 f"the hardware it was measured on")
        self.timing_cache = Path(workdir or ".") / "tensorrt.timing-cache"
        self.timings = self.plain_launches = self.enqueue_bound = 0
        self.graph_notes: set[str] = set()

    @_wrap_profiler_errors
    def open(self, path):
        # named by the ONNX file's hash and the TensorRT version: a changed unit or an upgrade builds a new plan
        engine_path = Path(path).with_name(self._run.plan_name(path, Path(path).stem, self.precision,
                                                                self.trt.__version__))
        if not engine_path.exists():
            self._run.build_engine(path, engine_path=engine_path, fp16=self.precision == "fp16",
                                   int8=self.precision == "int8", timing_cache_path=self.timing_cache)
        return engine_path

    @_wrap_profiler_errors
    def time(self, run, settings: TimingSettings):
        timed = self._run.time_engine_detailed(run, warmup=settings.warmup_runs, repeats=settings.min_runs,
                                               min_time_s=settings.min_time_s, max_repeats=settings.max_runs)
        self.timings += 1
        if not timed.cuda_graph:  # the provenance says CUDA graph replays: count, and say, every timing that was not
            self.plain_launches += 1
            self.graph_notes.add(str(timed.graph_note))
        self.enqueue_bound += bool(timed.enqueue_bound)
        s = timed.stats
        return _Stats(n=s.n, median_ms=s.median_ms, mean_ms=s.mean_ms, min_ms=s.min_ms, p10_ms=s.p10_ms,
                      p90_ms=s.p90_ms, std_ms=s.std_ms, extra=timed.to_dict())

    def notes(self):
        out = []
        if self.plain_launches:
            out.append(f"{self.plain_launches} of {self.timings} timings are plain execute_async_v3 launches, not CUDA "
                       f"graph replays ({'; '.join(sorted(self.graph_notes))})")
        if self.enqueue_bound:
            out.append(f"{self.enqueue_bound} of {self.timings} timings were enqueue-bound (the host's enqueue took at "
                       f"least the GPU time): without CUDA graphs a deployment would see the enqueue time")
        return out

    def device_state(self):
        from profilers.tensorrt.gpu_state import read_gpu_state

        return read_gpu_state(0, pci_bus_id=self.pci_bus_id)  # SM / memory clocks, power, temperature, throttle (NVML)

    def provenance(self):
        v = self._run.tensorrt_versions()
        return {"device": self.device, "device_name": self.gpu, "backend": self.backend,
                "backend_version": f"TensorRT {v.get('tensorrt')}, CUDA runtime {v.get('cuda_runtime')}, "
                                   f"driver {v.get('cuda_driver')}",
                "threads": None, "affinity": None, "delegate": f"TensorRT {self.precision} engine"
                            f"{' (fp16 fallback)' if self.precision == 'int8' else ''}, CUDA graph replays timed "
                            f"with CUDA events",
                "input_layout": self.layout, "exporter": self.exporter, "opset": self.opset}


T4_NAME = re.compile(r"(?:^|\s)(?:Tesla |NVIDIA )?T4(?:$|\s)")  # "Tesla T4", "NVIDIA T4"; not T400, T4000


def is_t4(name: str, capability: tuple[int, int] | None) -> bool:
    """A whole NVIDIA T4: the name says T4 (not T400 / T4000, not a 'GRID T4-8Q' vGPU slice) and, when known, the
    compute capability is 7.5 (Turing)."""
    if not T4_NAME.search(name.strip()) or "GRID" in name.upper():
        return False
    return capability is None or tuple(capability) == (7, 5)


def _cudart():
    from profilers.tensorrt.driver import load_cudart

    return _wrap_profiler_errors(load_cudart)()


def _gpu_identity() -> tuple[str, tuple[int, int] | None]:
    cudart = _cudart()
    err, props = cudart.cudaGetDeviceProperties(0)
    if int(err) != 0:
        raise ZProfilerError(cuda_failure(cudart, "cudaGetDeviceProperties", err))
    name = props.name
    name = name.decode(errors="replace").rstrip("\x00") if isinstance(name, (bytes, bytearray)) else str(name)
    capability = (int(props.major), int(props.minor)) if hasattr(props, "major") else None
    return name, capability


class PixelBackend(Backend):
    """LiteRT on an Android phone: convert on the host, time with benchmark_model over adb."""

    device, backend, suffix, layout = "pixel", "litert", ".tflite", "NHWC"
    pass_statistic = "median_ms"  # benchmark_model's median (its mean on old versions)

    def __init__(self, *, serial: str | None = None, delegate: str | None = "cpu", benchmark_binary: str | None = None,
                 transport=None, adb_path: str = "adb", accelerator_library: str | None = None, **kw):
        serial = serial or os.environ.get("ANDROID_SERIAL")  # adb's own variable; how a farm node names its phone
        super().__init__(serial=serial, delegate=delegate, **kw)
        if self.precision == "int8":
            raise ZProfilerError("int8 unit tables for phones are not supported yet (fp32, fp16 weights)")
        if delegate not in ("cpu", "gpu"):
            raise ZProfilerError(f"unknown delegate '{delegate}' for pixel (valid: cpu, gpu)")
        require("litert_torch", "tflite", "converting latency units to TFLite")
        from profilers.litert import adb

        self._adb = adb
        binary = benchmark_binary or os.environ.get("ZENDEPLOY_BENCHMARK_MODEL")
        if not binary:
            raise ZProfilerError("device 'pixel' needs a benchmark_model for the phone (TFLite's or LiteRT's): give "
                                 "--benchmark-binary PATH or set ZENDEPLOY_BENCHMARK_MODEL")
        if transport is None:
            if not serial:
                raise ZProfilerError("device 'pixel' needs --serial or ANDROID_SERIAL (see `adb devices -l`)")
            transport = adb.AdbTransport(serial, adb_path=adb_path)
        self.transport = transport
        # LiteRT's CompiledModel benchmark_model needs its GPU accelerator library pushed beside it
        library = accelerator_library or os.environ.get("ZENDEPLOY_ACCELERATOR_LIBRARY")
        # which tool it is: told by ZENDEPLOY_BENCHMARK_TOOL (tflite | litert), else read from its --help on the phone
        tool = os.environ.get("ZENDEPLOY_BENCHMARK_TOOL") or None
        self.runner = _wrap_profiler_errors(adb.AdbBenchmarkRunner)(transport, binary, accelerator_library=library,
                                                                    tool=tool)
        _wrap_profiler_errors(self.runner.prepare)()  # push the binary, tell TFLite's tool from LiteRT's
        self.info = _wrap_profiler_errors(adb.read_device_info)(transport)
        self.temperatures: list[float] = []
        self.timings = self.mean_only = 0  # runs timed; runs whose benchmark_model printed no median
        self.rerun_hot = self.still_hot = 0  # timings made again after a hot run; timings still hot after the re-runs
        # pinned to the fastest cores for the thread count, read from the phone's cpufreq (cpu6-7 on a Tensor Pixel)
        self.max_freqs, self.cores, self.mask = _wrap_profiler_errors(adb.fastest_core_pinning)(transport,
                                                                                              self.threads or 1)
        self.binary_sha256 = file_sha256(binary) if os.path.isfile(binary) else None

    def open(self, path):
        return Path(path)

    @_wrap_profiler_errors
    def time(self, run, settings: TimingSettings):
        gpu = self.delegate == "gpu"
        result = self.runner.run(str(run), num_threads=self.threads, use_gpu=gpu,
                                 warmup_runs=settings.warmup_runs, num_runs=settings.min_runs,
                                 min_secs=settings.min_time_s, taskset_mask=self.mask,
                                 gpu_precision_loss_allowed=gpu and self.precision == "fp16",
                                 max_thermal_status=PHONE_MAX_THERMAL_STATUS, hot_reruns=PHONE_HOT_RERUNS,
                                 cooldown_s=PHONE_COOLDOWN_S)
        b = result.benchmark
        for t in (result.battery_temp_before_c, result.battery_temp_after_c):
            if t is not None:
                self.temperatures.append(t)
        med = b.latency_ms
        self.timings += 1
        self.mean_only += b.statistic != "median"
        std = b.std_ms or 0.0
        p10, p90, source = phone_p10_p90(b.p5_ms, b.p95_ms, b.min_ms, b.max_ms, med)
        self.rerun_hot += result.attempts > 1
        hot = result.thermal_status_after is not None and result.thermal_status_after > PHONE_MAX_THERMAL_STATUS
        self.still_hot += hot
        return _Stats(n=b.count or settings.min_runs, median_ms=med, mean_ms=b.avg_ms, min_ms=b.min_ms or med,
                      p10_ms=p10, p90_ms=p90, std_ms=std,
                      extra={"statistic": b.statistic, "p10_p90": source, "p5_ms": b.p5_ms, "p95_ms": b.p95_ms,
                             "attempts": result.attempts, "thermal_status_before": result.thermal_status_before,
                             "thermal_status_after": result.thermal_status_after,
                             "battery_temp_after_c": result.battery_temp_after_c, "delegation": result.delegation})

    def notes(self):
        out = []
        if self.mean_only:
            out.append(f"benchmark_model printed no median for {self.mean_only} of {self.timings} timings (an old "
                       f"build): their median_ms is the tool's mean and p10/p90 are interpolated from min/max")
        if self.rerun_hot:
            out.append(f"{self.rerun_hot} of {self.timings} timings were made again after the phone ran hotter than "
                       f"thermal status {PHONE_MAX_THERMAL_STATUS} ('light') and {PHONE_COOLDOWN_S:g} s of rest")
        if self.still_hot:
            out.append(f"{self.still_hot} of {self.timings} timings ended above thermal status "
                       f"{PHONE_MAX_THERMAL_STATUS} after {PHONE_HOT_RERUNS} re-runs: the phone was throttling and "
                       f"those units may be timed slow; cool the phone and profile again for a table to ship")
        return out

    def device_state(self):
        """Thermal status, battery temperature and the cores' current frequencies after a pass."""
        battery, status, freqs = self._adb.read_heat(self.transport)
        return {"thermal_status": status, "battery_temperature_c": battery,
                "cpu_freq_khz": {str(k): v for k, v in freqs.items()}}

    def provenance(self):
        info = self.info.to_dict()
        name = " / ".join(str(info[k]) for k in ("model", "soc_model", "android_release") if info.get(k))
        binary = os.path.basename(self.runner.benchmark_binary)
        sha = f", sha256 {self.binary_sha256[:12]}" if self.binary_sha256 else ""
        build = f"; build {info['build_fingerprint']}" if info.get("build_fingerprint") else ""
        gpu = self.delegate == "gpu"
        return {"device": self.device, "device_name": name or "android phone", "backend": self.backend,
                "backend_version": f"{'LiteRT CompiledModel' if self.runner.tool == 'litert' else 'TFLite'} "
                                   f"benchmark_model ({binary}{sha}){build}",
                "threads": self.threads,
                "affinity": (f"taskset {self.mask} (cpu{','.join(map(str, self.cores))}: the fastest cores by "
                             f"cpufreq)" if self.mask else None),
                "delegate": (f"GPU delegate, fully delegated, {'fp16' if self.precision == 'fp16' else 'fp32'} "
                             f"arithmetic" if gpu else "CPU (XNNPACK)"),
                "input_layout": self.layout, "exporter": self.exporter, "opset": None}


PHONE_COOLDOWN_S = 30.0  # rest before re-running a unit after which the phone's thermal status was above 'light'
PHONE_MAX_THERMAL_STATUS = 1  # Android's THERMAL_STATUS_LIGHT: above it (moderate, severe, ...) the SoC throttles
PHONE_HOT_RERUNS = 2  # re-runs at most of a unit timed hot



def make_remote_backend(spec: DeviceSpec, **kwargs) -> Backend:
    if spec.name == "t4":
        kwargs.pop("serial", None)
        kwargs.pop("delegate", None)
        return TensorRTBackend(**kwargs)
    if spec.name == "pixel":
        return PixelBackend(**kwargs)
    raise ZProfilerError(f"device '{spec.name}' has no backend")  # pragma: no cover
