"""Shared pieces of the device-side runners: statistics, the timing loop, files, manifests.

Standard library only (numpy is looked up lazily, for its version string). Nothing here imports a
backend runtime, PyTorch or the ``zendeploy`` package.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import socket
import sys
import tempfile
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

__all__ = [
    "MAX_ERROR_CHARS",
    "ManifestEntry",
    "ManifestReport",
    "ProfilerError",
    "TimingStats",
    "add_timing_cli_args",
    "append_jsonl",
    "atomic_write_bytes",
    "atomic_write_json",
    "cli_main",
    "environment_fingerprint",
    "load_manifest",
    "measure_callable",
    "measure_samples",
    "read_jsonl",
    "run_manifest",
    "stats_result",
    "time_callable",
    "utc_now",
]

MAX_ERROR_CHARS = 400
"""Longest message a :class:`ProfilerError` keeps (tool outputs can be megabytes)."""


class ProfilerError(Exception):
    """A measurement could not be made; the message is always a single line.

    Runs of whitespace (including newlines from a tool's output) are collapsed to one space and
    the text is cut to :data:`MAX_ERROR_CHARS` characters, so a command line can print
    ``error: <message>`` and a JSONL log stays one line per event.
    """

    def __init__(self, message: object) -> None:
        text = " ".join(str(message).split())
        if len(text) > MAX_ERROR_CHARS:
            text = text[: MAX_ERROR_CHARS - 3] + "..."
        super().__init__(text)


# --------------------------------------------------------------------------------------------
# statistics


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Percentile ``q`` (0..100) of already-sorted values, linear interpolation between ranks.

    This is the "linear" (type 7) definition, the default of ``numpy.percentile``.
    """
    n = len(sorted_values)
    if n == 1:
        return float(sorted_values[0])
    pos = (n - 1) * (q / 100.0)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


@dataclasses.dataclass(frozen=True)
class TimingStats:
    """Summary of ``n`` latency samples, all in milliseconds.

    ``median_ms`` is the statistic the host should use as "the" latency (robust to the odd
    preempted run); ``mean_ms``/``std_ms`` (sample standard deviation, ``n - 1`` in the
    denominator, 0 for a single sample) and the 10th/90th percentiles (linear interpolation, as
    ``numpy.percentile``) describe the spread.
    """

    n: int
    median_ms: float
    mean_ms: float
    min_ms: float
    p10_ms: float
    p90_ms: float
    std_ms: float

    @classmethod
    def from_samples(cls, samples_ms: Iterable[float]) -> "TimingStats":
        """Summarise a list of per-run latencies in milliseconds.

        Raises :class:`ProfilerError` when the list is empty or holds a negative, NaN or
        infinite value: a latency table must never receive a made-up number.
        """
        values = [float(v) for v in samples_ms]
        if not values:
            raise ProfilerError("no timing samples to summarise")
        bad = [v for v in values if not math.isfinite(v) or v < 0.0]
        if bad:
            raise ProfilerError(f"invalid timing sample(s): {bad[:3]} (must be finite and >= 0 ms)")
        values.sort()
        n = len(values)
        mean = math.fsum(values) / n
        if n > 1:
            var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
            std = math.sqrt(var)
        else:
            std = 0.0
        return cls(
            n=n,
            median_ms=_percentile(values, 50.0),
            mean_ms=mean,
            min_ms=values[0],
            p10_ms=_percentile(values, 10.0),
            p90_ms=_percentile(values, 90.0),
            std_ms=std,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` for JSON (field names as in the dataclass)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TimingStats":
        """Inverse of :meth:`to_dict`; raises :class:`ProfilerError` on a missing field."""
        try:
            return cls(
                n=int(data["n"]),
                **{f.name: float(data[f.name]) for f in dataclasses.fields(cls) if f.name != "n"},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfilerError(f"not a TimingStats record: {exc!r}") from None


def stats_result(stats: TimingStats) -> dict[str, Any]:
    """The part of a results record every runner shares: full stats plus the headline number."""
    return {"stats": stats.to_dict(), "latency_ms": stats.median_ms, "statistic": "median"}


# --------------------------------------------------------------------------------------------
# timing loop


def measure_samples(
    measure_once: Callable[[], float],
    *,
    warmup: int,
    repeats: int | None = None,
    min_time_s: float | None = None,
    max_repeats: int = 10_000,
) -> list[float]:
    """Run ``measure_once`` (which returns one latency in ms) ``warmup`` times and discard the
    results, then keep calling it until at least ``repeats`` samples were taken AND their sum is
    at least ``min_time_s`` seconds, stopping early only at ``max_repeats`` samples.

    ``repeats=None`` means "at least one sample"; ``min_time_s=None`` means no time floor. At
    least one of the two must be given. Returns the timed samples in run order.
    """
    if warmup < 0:
        raise ProfilerError(f"warmup must be >= 0, got {warmup}")
    if repeats is None and min_time_s is None:
        raise ProfilerError("give repeats and/or min_time_s")
    min_count = 1 if repeats is None else int(repeats)
    if min_count < 1:
        raise ProfilerError(f"repeats must be >= 1, got {repeats}")
    floor_s = 0.0 if min_time_s is None else float(min_time_s)
    if not math.isfinite(floor_s) or floor_s < 0:
        raise ProfilerError(f"min_time_s must be >= 0, got {min_time_s}")
    if max_repeats < min_count:
        raise ProfilerError(f"max_repeats ({max_repeats}) is below repeats ({min_count})")

    for _ in range(int(warmup)):
        measure_once()
    samples: list[float] = []
    total_ms = 0.0
    floor_ms = floor_s * 1000.0
    while len(samples) < max_repeats and (len(samples) < min_count or total_ms < floor_ms):
        ms = float(measure_once())
        samples.append(ms)
        total_ms += ms
    return samples


def measure_callable(
    fn: Callable[[], Any],
    warmup: int,
    repeats: int | None = None,
    min_time_s: float | None = None,
    max_repeats: int = 10_000,
) -> list[float]:
    """Wall-clock samples (ms) of ``fn()``, each bracketed by ``time.perf_counter_ns``.

    Same warm-up / stopping rule as :func:`measure_samples`.
    """
    clock = time.perf_counter_ns

    def once() -> float:
        t0 = clock()
        fn()
        return (clock() - t0) / 1e6

    return measure_samples(
        once, warmup=warmup, repeats=repeats, min_time_s=min_time_s, max_repeats=max_repeats
    )


def time_callable(
    fn: Callable[[], Any],
    warmup: int,
    repeats: int | None = None,
    min_time_s: float | None = None,
    max_repeats: int = 10_000,
) -> TimingStats:
    """Time ``fn()`` on the host clock and summarise it.

    ``warmup`` untimed calls first (caches, lazy allocation, JIT, thread-pool start-up), then
    timed calls, each measured alone with ``time.perf_counter_ns``, until at least ``repeats``
    calls were timed and the timed calls add up to at least ``min_time_s`` seconds (capped at
    ``max_repeats`` calls). Returns :class:`TimingStats` of the timed calls.
    """
    return TimingStats.from_samples(
        measure_callable(fn, warmup, repeats=repeats, min_time_s=min_time_s, max_repeats=max_repeats)
    )


# --------------------------------------------------------------------------------------------
# environment


def cpu_model(cpuinfo_path: str = "/proc/cpuinfo") -> str | None:
    """This machine's CPU as /proc/cpuinfo names it (a generic x86 name gets its family, model and stepping)."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return platform.processor() or None
    found: dict[str, str] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip()
        if value and name not in found:
            found[name] = value
    # x86 "model name"; ARM boards "Hardware" / "Model"; MIPS "cpu model".
    for name in ("model name", "hardware", "model", "cpu model", "processor"):
        found_value = found.get(name)
        if found_value and not found_value.isdigit():
            family, model = found.get("cpu family", ""), found.get("model", "")
            if name == "model name" and not any(c.isdigit() for c in found_value) and family.isdigit() \
                    and model.isdigit():
                # a cloud VM's generic "Intel(R) Xeon(R) Processor" names several generations: say which one
                return f"{found_value} (family {family}, model {model}, stepping {found.get('stepping', '?')})"
            return found_value
    if "cpu part" in found:  # ARM without a name: implementer + part id at least
        return f"ARM implementer {found.get('cpu implementer', '?')} part {found['cpu part']}"
    return platform.processor() or None


def environment_fingerprint(
    runtime_versions: Mapping[str, Any] | None = None, *, cpuinfo_path: str = "/proc/cpuinfo"
) -> dict[str, Any]:
    """Describe the machine a measurement ran on, so latency tables can be told apart.

    Returns ``hostname``, ``platform`` (``platform.platform()``), ``machine``, ``python``, the CPU
    model from ``/proc/cpuinfo`` (``None`` when unknown), ``logical_cores`` (``os.cpu_count()``),
    ``affinity_cores`` (CPUs this process may run on, where the OS tells), the ``numpy`` version
    (``None`` if numpy is absent) and the ``runtime_versions`` mapping passed in (e.g.
    ``{"onnxruntime": "1.32.0"}``).
    """
    try:
        import numpy  # noqa: PLC0415  (lazy on purpose)

        numpy_version: str | None = numpy.__version__
    except ImportError:
        numpy_version = None
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(cpuinfo_path),
        "logical_cores": os.cpu_count(),
        "affinity_cores": affinity,
        "numpy": numpy_version,
        "runtime_versions": dict(runtime_versions or {}),
    }


def utc_now() -> str:
    """Current UTC time, ISO 8601 with seconds, e.g. ``2025-01-31T12:00:00Z``."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# files


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON so that ``path`` is either the old file or the complete new one.

    The text goes to a temporary file in the same directory, is flushed and fsync'ed, then
    ``os.replace``-d over ``path`` (atomic on POSIX and Windows). NaN/inf are refused
    (:class:`ProfilerError`) because they are not JSON.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    try:
        text = json.dumps(obj, indent=indent, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProfilerError(f"cannot write {path} as JSON: {exc}") from None
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Binary twin of :func:`atomic_write_json` (temporary file, fsync, ``os.replace``)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks): what names a model, a binary or a table by content."""
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def append_jsonl(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append one JSON object as one line to ``path``, then flush and fsync.

    If the file's last line was cut short (a previous run was killed mid-write), a newline is
    written first so the new record starts on its own line; :func:`read_jsonl` skips the cut
    line.
    """
    path = os.fspath(path)
    try:
        line = json.dumps(dict(record), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProfilerError(f"cannot write record to {path} as JSON: {exc}") from None
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        prefix = b""
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                prefix = b"\n"
        f.seek(0, os.SEEK_END)
        f.write(prefix + line.encode("utf-8") + b"\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records of a JSONL file; a missing file is empty. Lines that are not a JSON object (a
    record cut short by a crash) are skipped."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return []
    records: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                records.append(obj)
    return records


# --------------------------------------------------------------------------------------------
# manifests


@dataclasses.dataclass(frozen=True)
class ManifestEntry:
    """One model to time. ``path`` is resolved against the manifest's folder; ``model`` keeps the
    path as written in the manifest; ``extra`` holds any other keys of the entry (e.g.
    ``"shapes"``)."""

    key: str
    path: str
    model: str
    signature: str | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def load_manifest(path: str | os.PathLike[str]) -> list[ManifestEntry]:
    """Read a manifest: a JSON list of ``{"key": str, "path": str, "signature": str?}``.

    Relative model paths are taken relative to the manifest file. Raises :class:`ProfilerError`
    for unreadable JSON, a missing/empty key or path, or a duplicated key.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise ProfilerError(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ProfilerError(f"manifest {path} is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ProfilerError(f"manifest {path} must be a JSON list of entries")
    base = os.path.dirname(os.path.abspath(path))
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ProfilerError(f"manifest {path} entry {i} is not an object")
        key, model = item.get("key"), item.get("path")
        if not isinstance(key, str) or not key:
            raise ProfilerError(f"manifest {path} entry {i} has no string 'key'")
        if not isinstance(model, str) or not model:
            raise ProfilerError(f"manifest {path} entry {key!r} has no string 'path'")
        if key in seen:
            raise ProfilerError(f"manifest {path} has the key {key!r} twice")
        seen.add(key)
        signature = item.get("signature")
        if signature is not None and not isinstance(signature, str):
            raise ProfilerError(f"manifest {path} entry {key!r}: 'signature' must be a string")
        extra = {k: v for k, v in item.items() if k not in ("key", "path", "signature")}
        resolved = model if os.path.isabs(model) else os.path.normpath(os.path.join(base, model))
        entries.append(ManifestEntry(key=key, path=resolved, model=model, signature=signature, extra=extra))
    return entries


@dataclasses.dataclass
class ManifestReport:
    """What :func:`run_manifest` did: keys measured now, keys found already done, keys that
    failed (key -> one-line message)."""

    measured: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else 1."""
        return 1 if self.failed else 0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_manifest(
    manifest_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    measure: Callable[[ManifestEntry], Mapping[str, Any]],
    *,
    backend: Mapping[str, Any],
    runtime_versions: Mapping[str, Any] | None = None,
    fail_fast: bool = False,
    log: Callable[[str], None] = _stderr,
) -> ManifestReport:
    """Measure every manifest entry whose key is not yet in ``output_path`` and append one JSONL
    record per key as soon as it is measured (so a killed run loses at most one key).

    ``measure(entry)`` returns the backend-specific part of the record (at least ``stats``,
    ``latency_ms`` and ``statistic``; see :func:`stats_result`). The record written is
    ``{"key", "model", "signature", "backend", <measure's keys>, "environment", "measured_at"}``.
    A key whose measurement raises :class:`ProfilerError` is reported in the returned
    :class:`ManifestReport` and not written, so the next run retries it; with ``fail_fast`` the
    error is re-raised instead.
    """
    entries = load_manifest(manifest_path)
    done = {r.get("key") for r in read_jsonl(output_path)}
    environment = environment_fingerprint(runtime_versions)
    report = ManifestReport()
    for entry in entries:
        if entry.key in done:
            report.skipped.append(entry.key)
            continue
        try:
            result = dict(measure(entry))
        except ProfilerError as exc:
            if fail_fast:
                raise
            report.failed[entry.key] = str(exc)
            log(f"error: {entry.key}: {exc}")
            continue
        record: dict[str, Any] = {
            "key": entry.key,
            "model": entry.model,
            "signature": entry.signature,
            "backend": dict(backend),
        }
        record.update(result)
        record["environment"] = environment
        record["measured_at"] = utc_now()
        append_jsonl(output_path, record)
        report.measured.append(entry.key)
        latency = result.get("latency_ms")
        shown = f"{latency:.4f} ms" if isinstance(latency, (int, float)) else "done"
        log(f"{entry.key}: {shown}")
    log(
        f"{len(report.measured)} measured, {len(report.skipped)} already done, "
        f"{len(report.failed)} failed -> {os.fspath(output_path)}"
    )
    return report


def add_timing_cli_args(
    parser: argparse.ArgumentParser,
    *,
    warmup: int = 10,
    repeats: int = 50,
    min_time_s: float = 1.0,
    with_max_repeats: bool = True,
) -> None:
    """The flags every backend command line shares (manifest, output, loop settings)."""
    parser.add_argument("--manifest", required=True, help='JSON list of {"key", "path", "signature"?}')
    parser.add_argument("--output", required=True, help="results JSONL; keys already in it are skipped")
    parser.add_argument("--warmup", type=int, default=warmup, help=f"untimed runs first (default {warmup})")
    parser.add_argument("--repeats", type=int, default=repeats, help=f"at least this many timed runs (default {repeats})")
    parser.add_argument(
        "--min-time", type=float, default=min_time_s, dest="min_time_s",
        help=f"and at least this many seconds of timed runs (default {min_time_s})",
    )
    if with_max_repeats:
        parser.add_argument("--max-repeats", type=int, default=10_000, help="hard cap on timed runs (default 10000)")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first key that fails")


def cli_main(run: Callable[[], ManifestReport]) -> int:
    """Run a command-line body: print ``error: <message>`` for a :class:`ProfilerError` and return
    the exit code (0 ok, 1 some key failed or a fatal error)."""
    try:
        report = run()
    except ProfilerError as exc:
        _stderr(f"error: {exc}")
        return 1
    return report.exit_code
