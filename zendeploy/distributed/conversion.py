"""A latency table's conversion (PyTorch -> ONNX / TFLite, ~2 s a unit for LiteRT) fanned out on a Ray cluster.

``RayExecutor`` is the executor ``latency.profile.profile_table`` takes: it submits one Ray task per missing file
(``window`` in flight), each converting in a private folder and returning the files it wrote; this host writes
them atomically into the run's work folder as they arrive, so an interrupted run keeps every finished file and a
rerun converts only the rest. A task lost with its worker is re-submitted (``max_attempts`` tries in all); a
conversion that fails names the unit. Every worker must convert with the same exporter as this host (the exporter
string is part of the table's fingerprint), which is checked on its first file.

``quiet()`` is the timing phase on this host: it starts only after every conversion task has returned, and while
it runs an actor holds all CPUs of this host's Ray node (when this host is one), so the cluster schedules nothing
else here while units are timed.
"""

from __future__ import annotations

import contextlib
import time
from typing import Optional, Sequence

from ..errors import ProfilerError, ZenDeployError, first_line
from ..io import atomic_write_bytes
from .runtime import (
    ClusterError, RetryingTasks, check_same_versions, rate_span, require_ray, worker_identity, worker_name,
)

_REMOTE: dict = {}


def _convert_on_worker(converter, job) -> dict:
    from ..latency.conversion import convert_to_files

    ident = worker_identity()
    t0 = time.perf_counter()
    try:
        files = convert_to_files(converter, job)
    except ZenDeployError as exc:
        return {"error": first_line(exc), "identity": ident}
    return {"files": files, "exporter": converter.exporter, "identity": ident, "seconds": time.perf_counter() - t0}


def _remote(ray):
    if "convert" not in _REMOTE:
        _REMOTE["convert"] = ray.remote(num_cpus=1, max_retries=0)(_convert_on_worker)
    return _REMOTE["convert"]


class _Hold:
    """Holds CPUs of one node while this host times (see ``RayExecutor.quiet``)."""

    def ready(self) -> bool:
        return True


class RayExecutor:
    def __init__(self, *, window: Optional[int] = None, max_attempts: int = 3):
        self.ray = require_ray()
        self.window = window
        self.max_attempts = max_attempts
        self.workers: dict[str, dict] = {}  # worker -> {"files", "seconds"}
        self.requeued = 0
        self.notes: list[str] = []

    # ------------------------------------------------------------------------------------------------ conversion
    def convert(self, converter, jobs: Sequence, work, progress, *, done_before: int = 0,
                total: Optional[int] = None) -> None:
        ray = self.ray
        if not jobs:
            return
        total = total if total is not None else done_before + len(jobs)
        window = self.window or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        fn = _remote(ray)
        conv_ref = ray.put(converter)
        checked: set[str] = set()
        done = done_before
        t0 = time.perf_counter()
        runs = RetryingTasks(ray, lambda i: fn.remote(conv_ref, jobs[i]), len(jobs), window=window,
                             max_attempts=self.max_attempts, name=lambda i: f"converting {jobs[i].key}",
                             doing="convert units")
        try:
            for i, out in runs:
                ident = out["identity"]
                name = worker_name(ident)
                if "error" in out:
                    raise ProfilerError(f"converting {jobs[i].key} on {name} failed: {out['error']}")
                if name not in checked:
                    check_same_versions(ident)
                    if out["exporter"] != converter.exporter:
                        raise ClusterError(f"Ray worker {name} converts with {out['exporter']}, this host with "
                                           f"{converter.exporter}; install the same versions on every node")
                    checked.add(name)
                for fname, data in out["files"].items():
                    atomic_write_bytes(work / fname, data)
                w = self.workers.setdefault(name, {"files": 0, "seconds": 0.0})
                w["files"] += 1
                w["seconds"] += out["seconds"]
                done += 1
                progress("convert", done, total, info=describe_converters(self.workers))
        finally:
            self.requeued += runs.requeued
        wall = time.perf_counter() - t0
        self.notes.append(f"{len(jobs)} files converted on Ray in {wall:.0f} s by {len(self.workers)} worker(s) "
                          f"on {len({n.split(':')[0] for n in self.workers})} host(s)"
                          + (f", {self.requeued} re-queued after a worker died" if self.requeued else "")
                          + "; timed on this host after every conversion had finished")

    def summary(self) -> list[dict]:
        return [{"worker": n, "files": w["files"], "busy_seconds": round(w["seconds"], 2),
                 "files_per_busy_second": round(w["files"] / w["seconds"], 3) if w["seconds"] > 0 else None}
                for n, w in sorted(self.workers.items())]

    # ---------------------------------------------------------------------------------------------------- timing
    @contextlib.contextmanager
    def quiet(self):
        """Hold every CPU of this host's Ray node (if it is one) while timing runs here."""
        ray = self.ray
        node = _this_node(ray)
        if node is None:
            yield
            return
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        cpus = float(node["Resources"].get("CPU", 0))
        holder = ray.remote(num_cpus=cpus)(_Hold).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote()
        try:
            ray.get(holder.ready.remote())  # waits until nothing else of the cluster runs on this node
            yield
        finally:
            ray.kill(holder)


def _this_node(ray) -> Optional[dict]:
    try:
        node_id = ray.get_runtime_context().get_node_id()
    except Exception:  # pragma: no cover - Ray Client: the driver is not a node
        return None
    for n in ray.nodes():
        if n.get("Alive") and n.get("NodeID") == node_id:
            return n
    return None


def describe_converters(workers: dict) -> str:
    span = rate_span([w["files"] / w["seconds"] for w in workers.values() if w["seconds"] > 0], digits=2)
    return f"{len(workers)} worker(s), {span} files/s each" if span else ""


__all__ = ["RayExecutor", "describe_converters"]
