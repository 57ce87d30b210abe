"""Drive TFLite's ``benchmark_model`` binary on an Android phone over adb.

What is measured: whatever ``benchmark_model`` measures -- the wall-clock time of each
``Interpreter::Invoke()`` on the phone (``--warmup_runs`` untimed runs, then at least
``--num_runs`` runs and at least ``--min_secs`` seconds), summarised by the tool as
count/avg/std/min/max (and p5/median/p95 in newer builds). :mod:`profilers.litert.parse` turns
its text into milliseconds; the headline number is the median when the tool prints it, else the
mean. ``--num_threads`` (default 1) and ``--use_gpu=true|false`` are passed through; with the GPU,
``--require_full_delegation=true`` and an explicit GPU precision too (TFLite's
``--gpu_precision_loss_allowed``, LiteRT's ``--allow_fp16``), and a run whose output does not say the delegate executes the whole graph is an error (as is an "Unconsumed cmdline
flags" warning: the binary ignored a flag). The runner pins the benchmark with ``taskset`` to the
fastest cores, read on the phone from ``cpufreq`` (``cpuinfo_max_freq``: cpu6-7 on a Tensor G1/G2
Pixel, cpu4-7 on a 4 + 4 phone) unless given a mask, and records the mask.

How: the binary and each model are pushed to ``/data/local/tmp/zendeploy``; the benchmark runs
as an argument list through ``adb -s SERIAL shell``; the battery temperature (``dumpsys battery``),
the thermal status (``dumpsys thermalservice``) and the cores' current frequencies are read before
and after each run, and a run after which the phone is hotter than ``--max-thermal-status`` is made
again after a cool-down. The binary's sha256 and the phone's ``ro.build.fingerprint`` go into the
provenance.

:class:`AdbTransport` is the only place that starts a process (``adb -s SERIAL ...``, an argument
list, never a shell string); everything else talks to an object with its ``serial``, ``run`` and
``push``, so tests can put a double at this hardware boundary.

Command line::

    python -m profilers.litert.adb --serial SERIAL --benchmark-binary ./benchmark_model \\
        --manifest m.json --output phone.jsonl [--threads 1] [--use-gpu [--gpu-precision fp16]] [--taskset auto]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import posixpath
import re
import shlex
import subprocess
import time
from typing import Any, Protocol, Sequence

from profilers.common import (
    ManifestEntry,
    ProfilerError,
    add_timing_cli_args,
    cli_main,
    file_sha256,
    run_manifest,
)
from profilers.litert.parse import BenchmarkModelResult, parse_benchmark_model_output

__all__ = [
    "DEFAULT_REMOTE_DIR",
    "AdbBenchmarkResult",
    "AdbBenchmarkRunner",
    "AdbTransport",
    "DeviceInfo",
    "build_benchmark_command",
    "main",
    "BENCHMARK_TOOLS",
    "check_benchmark_output",
    "core_mask",
    "detect_benchmark_tool",
    "fastest_core_pinning",
    "fastest_cores",
    "read_battery_temperature",
    "read_cpu_cur_freqs",
    "read_cpu_max_freqs",
    "read_device_info",
    "read_heat",
    "read_thermal_status",
    "time_tflite_on_device",
]

DEFAULT_REMOTE_DIR = "/data/local/tmp/zendeploy"
BENCHMARK_TOOLS = ("tflite", "litert")  # TFLite's Interpreter benchmark_model; LiteRT's CompiledModel one
_HEX_MASK = re.compile(r"^(?:0[xX])?([0-9a-fA-F]+)$")


class Transport(Protocol):
    """What the orchestration needs from a transport (see :class:`AdbTransport`)."""

    serial: str

    def run(self, args: Sequence[str]) -> tuple[int, str, str]: ...

    def push(self, local: str, remote: str) -> None: ...


def _last_line(*texts: str) -> str:
    for text in texts:
        lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
        if lines:
            return lines[-1]
    return "no output"


class AdbTransport:
    """Runs the host's ``adb`` client against one device: ``[adb_path, "-s", serial, *args]``.

    ``run`` returns ``(exit code, stdout, stderr)`` and never raises for a non-zero exit (callers
    decide); it raises :class:`ProfilerError` only when adb cannot be started or times out.
    ``push`` raises :class:`ProfilerError` when the copy fails.
    """

    def __init__(self, serial: str, *, adb_path: str = "adb", timeout_s: float = 900.0) -> None:
        if not isinstance(serial, str) or not serial.strip():
            raise ProfilerError("an adb serial is required (see `adb devices -l`)")
        self.serial = serial
        self.adb_path = adb_path
        self.timeout_s = timeout_s

    def command(self, args: Sequence[str]) -> list[str]:
        """The argument list ``run`` starts."""
        if isinstance(args, (str, bytes)) or not all(isinstance(a, str) for a in args):
            raise ProfilerError("adb arguments must be a list of strings")
        return [self.adb_path, "-s", self.serial, *args]

    def run(self, args: Sequence[str], *, timeout_s: float | None = None) -> tuple[int, str, str]:
        cmd = self.command(args)
        limit = self.timeout_s if timeout_s is None else timeout_s
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, errors="replace", timeout=limit, check=False
            )
        except FileNotFoundError:
            raise ProfilerError(f"adb client not found: {self.adb_path}") from None
        except subprocess.TimeoutExpired:
            raise ProfilerError(f"adb -s {self.serial} {' '.join(args)} timed out after {limit:g} s") from None
        return proc.returncode, proc.stdout, proc.stderr

    def push(self, local: str, remote: str) -> None:
        rc, out, err = self.run(["push", local, remote])
        if rc != 0:
            raise ProfilerError(f"adb -s {self.serial} push {local} {remote} failed (exit {rc}): {_last_line(err, out)}")


def _shell(transport: Transport, argv: Sequence[str], *, check: bool = True) -> tuple[int, str, str]:
    """Run one remote command. Each remote argument is quoted for the device's shell (adb joins
    them with spaces); safe arguments such as ``--graph=/data/local/tmp/m.tflite`` stay as-is."""
    args = ["shell", *(shlex.quote(a) for a in argv)]
    rc, out, err = transport.run(args)
    if check and rc != 0:
        raise ProfilerError(
            f"adb -s {transport.serial} shell {' '.join(argv)} failed (exit {rc}): {_last_line(err, out)}"
        )
    return rc, out, err


# --------------------------------------------------------------------------------------------
# device information


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """What the phone says about itself (``getprop``, ``dumpsys battery``); ``None`` = unknown."""

    serial: str
    model: str | None
    manufacturer: str | None
    soc_model: str | None
    android_release: str | None
    sdk: str | None
    abi: str | None
    battery_temperature_c: float | None
    build_fingerprint: str | None = None  # ro.build.fingerprint: the exact OS build the phone runs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _getprop(transport: Transport, name: str) -> str | None:
    rc, out, _ = _shell(transport, ["getprop", name], check=False)
    value = out.strip()
    return value if rc == 0 and value else None


def read_battery_temperature(transport: Transport) -> float | None:
    """Battery temperature in deg C from ``dumpsys battery`` (``temperature: 310`` = 31.0 C)."""
    rc, out, _ = _shell(transport, ["dumpsys", "battery"], check=False)
    if rc != 0:
        return None
    m = re.search(r"^\s*temperature:\s*(-?\d+)\s*$", out, re.MULTILINE)
    return int(m.group(1)) / 10.0 if m else None


def read_device_info(transport: Transport) -> DeviceInfo:
    """Model, SoC (``ro.soc.model``, else ``ro.board.platform``/``ro.hardware``), Android release,
    SDK level, ABI and battery temperature of the device behind ``transport``."""
    soc = _getprop(transport, "ro.soc.model") or _getprop(transport, "ro.board.platform") or _getprop(
        transport, "ro.hardware"
    )
    return DeviceInfo(
        serial=transport.serial,
        model=_getprop(transport, "ro.product.model"),
        manufacturer=_getprop(transport, "ro.product.manufacturer"),
        soc_model=soc,
        android_release=_getprop(transport, "ro.build.version.release"),
        sdk=_getprop(transport, "ro.build.version.sdk"),
        abi=_getprop(transport, "ro.product.cpu.abi"),
        battery_temperature_c=read_battery_temperature(transport),
        build_fingerprint=_getprop(transport, "ro.build.fingerprint"),
    )


CPU_SYSFS = "/sys/devices/system/cpu"
_CPUFREQ_LINE = re.compile(r"cpu(\d+)/cpufreq/\w+:(\d+)\s*$")


def _read_cpufreq(transport: Transport, name: str) -> dict[int, int]:
    """``{cpu: kHz}`` from ``/sys/devices/system/cpu/cpu*/cpufreq/<name>`` (one ``grep -H`` over all CPUs; the
    glob is expanded by the phone's shell). Empty when the phone does not expose cpufreq."""
    rc, out, _ = _shell(transport, ["sh", "-c", f"grep -H . {CPU_SYSFS}/cpu[0-9]*/cpufreq/{name}"], check=False)
    freqs = {}
    for line in out.splitlines() if rc == 0 else []:
        m = _CPUFREQ_LINE.search(line.strip())
        if m:
            freqs[int(m.group(1))] = int(m.group(2))
    return freqs


def read_cpu_max_freqs(transport: Transport) -> dict[int, int]:
    """Each core's maximum frequency (kHz, ``cpuinfo_max_freq``): what tells big cores from little ones."""
    return _read_cpufreq(transport, "cpuinfo_max_freq")


def read_cpu_cur_freqs(transport: Transport) -> dict[int, int]:
    """Each core's current frequency (kHz, ``scaling_cur_freq``), read around every run to spot throttling."""
    return _read_cpufreq(transport, "scaling_cur_freq")


def fastest_cores(max_freqs: dict[int, int], threads: int = 1) -> list[int]:
    """The cores of the fastest cluster (cores sharing the top maximum frequency), adding the next clusters until
    there are at least ``threads`` cores: on a Tensor G2 Pixel (4 x A55, 2 x A78, 2 x X1) cpu6-7 for one or two
    threads, cpu4-7 for four; on a 4 + 4 phone cpu4-7."""
    if not max_freqs:
        return []
    chosen: list[int] = []
    for freq in sorted(set(max_freqs.values()), reverse=True):
        chosen += sorted(c for c, f in max_freqs.items() if f == freq)
        if len(chosen) >= threads:
            break
    return sorted(chosen)


def core_mask(cores: Sequence[int]) -> str:
    """Hex CPU mask for ``taskset`` (cpu6-7 -> ``c0``)."""
    if not cores:
        raise ProfilerError("no CPU cores to pin to")
    return format(sum(1 << c for c in cores), "x")


_THERMAL_STATUS = re.compile(r"Thermal Status:\s*(\d+)")


def read_thermal_status(transport: Transport) -> int | None:
    """The phone's thermal status from ``dumpsys thermalservice`` (0 none, 1 light, 2 moderate: the SoC throttles,
    ...; Android 10+), None when the service does not say."""
    rc, out, _ = _shell(transport, ["dumpsys", "thermalservice"], check=False)
    m = _THERMAL_STATUS.search(out) if rc == 0 else None
    return int(m.group(1)) if m else None


def read_heat(transport: Transport) -> tuple[float | None, int | None, dict[int, int]]:
    """Battery temperature (C), thermal status and the cores' current frequencies (kHz): what is read around
    every run and after every pass to tell a throttled timing from a cool one."""
    return read_battery_temperature(transport), read_thermal_status(transport), read_cpu_cur_freqs(transport)


def fastest_core_pinning(transport: Transport, threads: int) -> tuple[dict[int, int], list[int], str | None]:
    """The phone's cores' maximum frequencies, the fastest cores for ``threads`` (:func:`fastest_cores`) and their
    ``taskset`` mask (None when the phone does not expose cpufreq: the run is not pinned)."""
    max_freqs = read_cpu_max_freqs(transport)
    cores = fastest_cores(max_freqs, threads)
    return max_freqs, cores, (core_mask(cores) if cores else None)


def _check_tool(tool: str) -> str:
    if tool not in BENCHMARK_TOOLS:
        raise ProfilerError(f"unknown benchmark_model tool {tool!r} (valid: {', '.join(BENCHMARK_TOOLS)})")
    return tool


# --------------------------------------------------------------------------------------------
# benchmark_model command


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _seconds(value: float) -> str:
    return f"{float(value):g}"


def build_benchmark_command(
    binary: str,
    graph: str,
    *,
    num_threads: int = 1,
    use_gpu: bool = False,
    warmup_runs: int = 10,
    num_runs: int = 50,
    min_secs: float = 1.0,
    warmup_min_secs: float | None = None,
    max_secs: float | None = None,
    signature: str | None = None,
    use_xnnpack: bool | None = None,
    enable_op_profiling: bool = False,
    taskset_mask: int | str | None = None,
    gpu_precision_loss_allowed: bool = False,
    tool: str = "tflite",
    library_dir: str | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The remote argument list of one ``benchmark_model`` run (flag names as in
    ``tensorflow/lite/tools/benchmark/README.md`` and ``benchmark_model.cc``)::

        [taskset MASK] BINARY --graph=G --num_threads=N --use_gpu=true|false
            --warmup_runs=W --num_runs=R --min_secs=S [--warmup_min_secs=..] [--max_secs=..]
            [--signature_to_run_for=..] [--use_xnnpack=..] [--enable_op_profiling=true] [extra]

    With the GPU delegate also ``--require_full_delegation=true`` (a unit the delegate does not take whole fails
    instead of running partly on the CPU under a "GPU" label) and an explicit ``--gpu_precision_loss_allowed``
    (the tool's default, true, would make an "fp32" GPU table an fp16 one).

    ``tool="litert"`` is LiteRT's CompiledModel ``benchmark_model`` (``litert/tools/benchmark_litert_model.cc``):
    the accelerator is chosen with ``--use_cpu`` / ``--use_gpu`` (full delegation needs ``--use_cpu=false``: the
    tool aborts on both), the GPU precision with ``--allow_fp16=true|false`` (default true: fp16 arithmetic; false
    sets the GPU options' precision to fp32), there is no ``--use_xnnpack``, and its GPU accelerator library is
    found through ``LD_LIBRARY_PATH`` (``library_dir``, where the runner pushed it)::

        [LD_LIBRARY_PATH=DIR] [taskset MASK] BINARY --graph=G --num_threads=N --use_cpu=.. --use_gpu=.. ...
    """
    _check_tool(tool)
    if tool == "litert" and use_xnnpack is not None:
        raise ProfilerError("LiteRT's benchmark_model has no --use_xnnpack (its CPU accelerator is XNNPACK)")
    if num_threads < 1:
        raise ProfilerError(f"num_threads must be >= 1, got {num_threads}")
    if warmup_runs < 0 or num_runs < 1:
        raise ProfilerError(f"need warmup_runs >= 0 and num_runs >= 1, got {warmup_runs}, {num_runs}")
    if min_secs < 0:
        raise ProfilerError(f"min_secs must be >= 0, got {min_secs}")
    argv: list[str] = []
    if library_dir:
        argv.append(f"LD_LIBRARY_PATH={library_dir}")  # an assignment word for the phone's sh, before taskset
    if taskset_mask is not None:
        if isinstance(taskset_mask, int):
            if taskset_mask <= 0:
                raise ProfilerError(f"taskset mask must be > 0, got {taskset_mask}")
            mask = format(taskset_mask, "x")
        else:
            m = _HEX_MASK.match(str(taskset_mask).strip())
            if not m or int(m.group(1), 16) == 0:
                raise ProfilerError(f"taskset mask must be a non-zero hex CPU mask like 'f0', got {taskset_mask!r}")
            mask = m.group(1).lower()
        argv += ["taskset", mask]
    argv += [binary, f"--graph={graph}", f"--num_threads={int(num_threads)}"]
    if tool == "litert":
        argv.append(f"--use_cpu={_bool(not use_gpu)}")
    argv += [
        f"--use_gpu={_bool(use_gpu)}",
        f"--warmup_runs={int(warmup_runs)}",
        f"--num_runs={int(num_runs)}",
        f"--min_secs={_seconds(min_secs)}",
    ]
    if use_gpu and tool == "litert":
        argv += ["--require_full_delegation=true", f"--allow_fp16={_bool(gpu_precision_loss_allowed)}"]
    elif use_gpu:
        argv += ["--require_full_delegation=true", f"--gpu_precision_loss_allowed={_bool(gpu_precision_loss_allowed)}"]
    if warmup_min_secs is not None:
        argv.append(f"--warmup_min_secs={_seconds(warmup_min_secs)}")
    if max_secs is not None:
        argv.append(f"--max_secs={_seconds(max_secs)}")
    if signature:
        argv.append(f"--signature_to_run_for={signature}")
    if use_xnnpack is not None:
        argv.append(f"--use_xnnpack={_bool(use_xnnpack)}")
    if enable_op_profiling:
        argv.append("--enable_op_profiling=true")
    argv += [str(a) for a in extra_args]
    return argv


@dataclasses.dataclass(frozen=True)
class AdbBenchmarkResult:
    """One on-device run: the parsed statistics, the remote command, battery temperatures."""

    benchmark: BenchmarkModelResult
    command: list[str]
    battery_temp_before_c: float | None
    battery_temp_after_c: float | None
    thermal_status_before: int | None = None
    thermal_status_after: int | None = None
    cpu_freq_before_khz: dict[int, int] = dataclasses.field(default_factory=dict)
    cpu_freq_after_khz: dict[int, int] = dataclasses.field(default_factory=dict)
    attempts: int = 1  # runs made: a run that left the phone hotter than allowed is made again after a cool-down
    delegation: str | None = None  # GPU: what the tool said ("completely executed by the delegate", ...)

    @property
    def latency_ms(self) -> float:
        return self.benchmark.latency_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark.to_dict(),
            "command": list(self.command),
            "battery_temp_before_c": self.battery_temp_before_c,
            "battery_temp_after_c": self.battery_temp_after_c,
            "thermal_status_before": self.thermal_status_before,
            "thermal_status_after": self.thermal_status_after,
            "cpu_freq_before_khz": {str(k): v for k, v in self.cpu_freq_before_khz.items()},
            "cpu_freq_after_khz": {str(k): v for k, v in self.cpu_freq_after_khz.items()},
            "attempts": self.attempts,
            "delegation": self.delegation,
        }


_UNCONSUMED = re.compile(r"Unconsumed cmdline flags:\s*(.*)")
_LITERT_TOOL = re.compile(r"NPU Vendor Flags from LiteRT|--use_npu\b|--dispatch_library_path|(?<![\w-])--allow_fp16\b")
_TFLITE_TOOL = re.compile(r"--graph\b.*|--use_xnnpack|--gpu_precision_loss_allowed")


def detect_benchmark_tool(help_text: str) -> str:
    """Which ``benchmark_model`` printed this ``--help``: ``"litert"`` (LiteRT's CompiledModel tool: its usage
    lists ``--use_npu`` / ``--allow_fp16`` and "NPU Vendor Flags from LiteRT") or ``"tflite"`` (TFLite's
    Interpreter tool). Both start with "STARTING!", so that line tells nothing."""
    if _LITERT_TOOL.search(help_text):
        return "litert"
    if _TFLITE_TOOL.search(help_text):
        return "tflite"
    raise ProfilerError("cannot tell which benchmark_model this is: its --help lists neither TFLite's nor LiteRT's "
                        f"flags (last line: {_last_line(help_text)[:100]!r})")
_FULLY_DELEGATED = re.compile(r"model graph will be completely executed by the delegate")
_DELEGATION = re.compile(r"(Explicitly applied .*? delegate, and the model graph will be .*?executed by the delegate"
                         r"[^.\n]*|Though .*? delegate is explicitly applied, the model graph will not be executed "
                         r"by the delegate)")


def check_benchmark_output(text: str, *, use_gpu: bool, tool: str = "tflite") -> str | None:
    """Refuse what benchmark_model only warns about: a flag it did not consume (it runs on, ignoring it, so the
    run is not the one asked for), and with the GPU a graph not completely executed by the delegate. Returns the
    tool's delegation line (GPU) or None. LiteRT's tool with ``--require_full_delegation=true --use_cpu=false``
    fails to compile a graph the GPU cannot take whole, so a run that succeeded is fully accelerated."""
    m = _UNCONSUMED.search(text)
    if m:
        raise ProfilerError(f"benchmark_model did not understand flag(s) {m.group(1).strip()}: this binary is not the "
                            f"{tool} benchmark_model these flags are for (or too old for them)")
    if not use_gpu:
        return None
    if tool == "litert":
        if "GPU accelerator could not be loaded" in text:
            raise ProfilerError("LiteRT's GPU accelerator could not be loaded on the phone (push "
                                "libLiteRtClGlAccelerator.so with --accelerator-library)")
        return "LiteRT GPU accelerator, CPU off, full delegation required"
    said = _DELEGATION.search(text)
    if not _FULLY_DELEGATED.search(text):
        raise ProfilerError("the GPU delegate did not take the whole graph" + (f" ({said.group(1)})" if said else
                            " (benchmark_model printed no delegation line)") + "; a GPU table needs every op on the "
                            "GPU")
    return said.group(1) if said else None


class AdbBenchmarkRunner:
    """Pushes ``benchmark_model`` once, then pushes and times model files on one device."""

    def __init__(self, transport: Transport, benchmark_binary: str, *, remote_dir: str = DEFAULT_REMOTE_DIR,
                 tool: str | None = None, accelerator_library: str | None = None) -> None:
        """``tool``: ``"tflite"`` or ``"litert"`` (default: detected from the binary's ``--help`` on the phone).
        ``accelerator_library``: LiteRT's GPU accelerator (``libLiteRtClGlAccelerator.so``), pushed beside the
        binary and found through ``LD_LIBRARY_PATH``; LiteRT's tool needs it for the GPU."""
        self.tool = None if tool is None else _check_tool(tool)
        self.transport = transport
        self.benchmark_binary = os.fspath(benchmark_binary)
        self.remote_dir = remote_dir.rstrip("/") or "/"
        self.remote_binary = posixpath.join(self.remote_dir, "benchmark_model")
        self.accelerator_library = os.fspath(accelerator_library) if accelerator_library else None
        self._prepared = False

    def prepare(self) -> None:
        """Create the remote folder, push the binary (and LiteRT's accelerator library), make it executable, and
        tell which benchmark_model it is (once)."""
        if self._prepared:
            return
        if not os.path.isfile(self.benchmark_binary):
            raise ProfilerError(f"benchmark_model binary not found: {self.benchmark_binary}")
        if self.accelerator_library and not os.path.isfile(self.accelerator_library):
            raise ProfilerError(f"accelerator library not found: {self.accelerator_library}")
        _shell(self.transport, ["mkdir", "-p", self.remote_dir])
        self.transport.push(self.benchmark_binary, self.remote_binary)
        _shell(self.transport, ["chmod", "755", self.remote_binary])
        if self.tool is None:
            _, out, err = _shell(self.transport, [self.remote_binary, "--help"], check=False)  # exits 1 by design
            self.tool = detect_benchmark_tool(f"{out}\n{err}")
        if self.accelerator_library:
            self.transport.push(self.accelerator_library,
                                posixpath.join(self.remote_dir, os.path.basename(self.accelerator_library)))
        self._prepared = True

    def push_model(self, model_path: str) -> str:
        """Copy a model into the remote folder; returns its remote path."""
        model_path = os.fspath(model_path)
        if not os.path.isfile(model_path):
            raise ProfilerError(f"model file not found: {model_path}")
        remote = posixpath.join(self.remote_dir, os.path.basename(model_path))
        self.transport.push(model_path, remote)
        return remote

    def run(
        self,
        model_path: str,
        *,
        num_threads: int = 1,
        use_gpu: bool = False,
        warmup_runs: int = 10,
        num_runs: int = 50,
        min_secs: float = 1.0,
        max_secs: float | None = None,
        signature: str | None = None,
        taskset_mask: int | str | None = None,
        gpu_precision_loss_allowed: bool = False,
        extra_args: Sequence[str] = (),
        remove_model: bool = True,
        max_thermal_status: int | None = None,
        hot_reruns: int = 2,
        cooldown_s: float = 30.0,
    ) -> AdbBenchmarkResult:
        """Push ``model_path``, run ``benchmark_model`` on it, parse the output.

        Battery temperature, thermal status and the cores' current frequencies are read before and after the run.
        With ``max_thermal_status`` (e.g. 1, "light"), a run after which the phone reports a higher status is
        made again, up to ``hot_reruns`` times, each after ``cooldown_s`` seconds of rest; the result says how
        many attempts it took and keeps the last run's readings.

        Raises :class:`ProfilerError` (one line) when adb fails, the benchmark exits non-zero, its output has no
        statistics, it ignored a flag, or (GPU) the delegate did not take the whole graph.
        """
        self.prepare()
        tool = self.tool or "tflite"
        if use_gpu and tool == "litert" and not self.accelerator_library:
            raise ProfilerError("LiteRT's benchmark_model needs its GPU accelerator library on the phone: give "
                                "--accelerator-library path/to/libLiteRtClGlAccelerator.so")
        remote = self.push_model(model_path)
        argv = build_benchmark_command(
            self.remote_binary, remote, num_threads=num_threads, use_gpu=use_gpu, warmup_runs=warmup_runs,
            num_runs=num_runs, min_secs=min_secs, max_secs=max_secs, signature=signature,
            taskset_mask=taskset_mask, gpu_precision_loss_allowed=gpu_precision_loss_allowed, tool=tool,
            library_dir=self.remote_dir if (tool == "litert" and self.accelerator_library) else None,
            extra_args=extra_args,
        )
        try:
            attempt = 0
            while True:
                attempt += 1
                before, status_before, freq_before = read_heat(self.transport)
                rc, out, err = _shell(self.transport, argv, check=False)
                after, status_after, freq_after = read_heat(self.transport)
                hot = (max_thermal_status is not None and status_after is not None
                       and status_after > max_thermal_status)
                if rc != 0 or not hot or attempt > hot_reruns:
                    break
                time.sleep(cooldown_s)
        finally:
            if remove_model:
                _shell(self.transport, ["rm", "-f", remote], check=False)
        text = f"{out}\n{err}"
        if rc != 0:
            detail = next(
                (ln.strip() for ln in text.splitlines() if re.search(r"ERROR|Error|error|failed|Failed", ln)),
                _last_line(err, out),
            )
            raise ProfilerError(f"benchmark_model failed on {self.transport.serial} (exit {rc}): {detail}")
        delegation = check_benchmark_output(text, use_gpu=use_gpu, tool=tool)
        return AdbBenchmarkResult(
            benchmark=parse_benchmark_model_output(text),
            command=argv,
            battery_temp_before_c=before,
            battery_temp_after_c=after,
            thermal_status_before=status_before,
            thermal_status_after=status_after,
            cpu_freq_before_khz=freq_before,
            cpu_freq_after_khz=freq_after,
            attempts=attempt,
            delegation=delegation,
        )


def time_tflite_on_device(
    model_path: str,
    *,
    serial: str,
    benchmark_binary: str,
    adb_path: str = "adb",
    transport: Transport | None = None,
    **run_options: Any,
) -> AdbBenchmarkResult:
    """One-call form: push the binary and ``model_path`` to phone ``serial`` and time it.

    ``run_options`` are those of :meth:`AdbBenchmarkRunner.run`. ``transport`` replaces the
    real :class:`AdbTransport` (tests).
    """
    transport = transport or AdbTransport(serial, adb_path=adb_path)
    return AdbBenchmarkRunner(transport, benchmark_binary).run(model_path, **run_options)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m profilers.litert.adb``: time every manifest entry on one phone."""
    parser = argparse.ArgumentParser(
        prog="python -m profilers.litert.adb",
        description="Time .tflite files with TFLite benchmark_model on an Android phone (resumable).",
    )
    add_timing_cli_args(parser, with_max_repeats=False)
    parser.add_argument("--serial", required=True, help="device serial (adb devices -l)")
    parser.add_argument("--benchmark-binary", required=True, help="benchmark_model built for the phone's ABI")
    parser.add_argument("--adb", default="adb", help="adb client path (default: adb on PATH)")
    parser.add_argument("--remote-dir", default=DEFAULT_REMOTE_DIR)
    parser.add_argument("--threads", type=int, default=1, help="--num_threads (default 1)")
    parser.add_argument("--use-gpu", action="store_true",
                        help="--use_gpu=true (GPU delegate; every unit must be fully delegated)")
    parser.add_argument("--gpu-precision", choices=("fp32", "fp16"), default="fp32",
                        help="GPU arithmetic: fp16 allows fp16 (TFLite: --gpu_precision_loss_allowed=true, LiteRT: "
                             "--allow_fp16=true); default fp32 (false)")
    parser.add_argument("--taskset", default="auto",
                        help="CPU affinity: a hex mask (e.g. c0), 'auto' (default: the fastest cores for --threads, "
                             "read from the phone's cpufreq) or 'none'")
    parser.add_argument("--max-secs", type=float, default=None, help="--max_secs cap per run")
    parser.add_argument("--tool", choices=("auto", *BENCHMARK_TOOLS), default="auto",
                        help="which benchmark_model: TFLite's or LiteRT's CompiledModel one (default: detected)")
    parser.add_argument("--accelerator-library", default=None,
                        help="LiteRT's GPU accelerator (libLiteRtClGlAccelerator.so), for LiteRT's tool with --use-gpu")
    parser.add_argument("--max-thermal-status", type=int, default=1,
                        help="re-run a unit after which the phone's thermal status is above this (0 none, 1 light, "
                             "2 moderate: throttling); -1 never re-runs")
    parser.add_argument("--hot-reruns", type=int, default=2, help="re-runs of a hot unit at most")
    parser.add_argument("--cooldown-s", type=float, default=30.0, help="rest before re-running a hot unit")
    args = parser.parse_args(argv)

    def run():
        transport = AdbTransport(args.serial, adb_path=args.adb)
        runner = AdbBenchmarkRunner(transport, args.benchmark_binary, remote_dir=args.remote_dir,
                                    tool=None if args.tool == "auto" else args.tool,
                                    accelerator_library=args.accelerator_library)
        device = read_device_info(transport)
        max_freqs, _, mask = fastest_core_pinning(transport, args.threads)
        if args.taskset != "auto":
            mask = None if args.taskset == "none" else args.taskset
        binary_sha = file_sha256(args.benchmark_binary) if os.path.isfile(args.benchmark_binary) else None
        info = {
            "name": "litert-benchmark_model-adb",
            "device": device.to_dict(),
            "num_threads": args.threads,
            "use_gpu": args.use_gpu,
            "gpu_precision": args.gpu_precision if args.use_gpu else None,
            "taskset": mask,
            "affinity": {"requested": args.taskset, "mask": mask,
                         "max_freq_khz": {str(k): v for k, v in sorted(max_freqs.items())}},
            "timing": {"warmup_runs": args.warmup, "num_runs": args.repeats, "min_secs": args.min_time_s,
                       "max_secs": args.max_secs, "clock": "benchmark_model (on device)",
                       "max_thermal_status": args.max_thermal_status, "hot_reruns": args.hot_reruns,
                       "cooldown_s": args.cooldown_s},
            "tool": args.tool,  # each record's "tool" says which one ran (detected when auto)
            "versions": {"benchmark_binary": os.path.basename(args.benchmark_binary),
                         "benchmark_binary_sha256": binary_sha, "build_fingerprint": device.build_fingerprint},
        }

        def measure(entry: ManifestEntry) -> dict[str, Any]:
            result = runner.run(
                entry.path, num_threads=args.threads, use_gpu=args.use_gpu, warmup_runs=args.warmup,
                num_runs=args.repeats, min_secs=args.min_time_s, max_secs=args.max_secs,
                signature=entry.signature, taskset_mask=mask,
                gpu_precision_loss_allowed=args.gpu_precision == "fp16",
                max_thermal_status=None if args.max_thermal_status < 0 else args.max_thermal_status,
                hot_reruns=args.hot_reruns, cooldown_s=args.cooldown_s,
            )
            out = result.to_dict()
            out["tool"] = runner.tool
            out["stats"] = out.pop("benchmark")
            out["latency_ms"] = result.benchmark.latency_ms
            out["statistic"] = result.benchmark.statistic
            return out

        return run_manifest(args.manifest, args.output, measure, backend=info,
                            runtime_versions=info["versions"], fail_fast=args.fail_fast)

    return cli_main(run)


if __name__ == "__main__":
    import sys

    sys.exit(main())
