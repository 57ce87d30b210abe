"""Connecting to Ray, and what every remote task reports about the worker that ran it.

``connect(address)``:

- ``None`` / ``"auto"`` (``--ray`` without a value): Ray's own default: the cluster in ``RAY_ADDRESS`` or one started
  on this machine with ``ray start``, else a new local instance;
- ``"local"``: always a new local instance on this machine (``num_cpus`` caps its CPUs);
- anything else: that cluster (``HOST:PORT`` of a head node, or ``ray://HOST:10001`` for Ray Client).

A Ray instance zendeploy started is shut down when the job ends; one it joined is left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from ..errors import MissingExtraError, ZenDeployError


class ClusterError(ZenDeployError):
    """The Ray cluster could not be reached, or its workers cannot run zendeploy's tasks."""


def require_ray(option: str = "--ray"):
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError("ray", "ray", option) from exc
    return ray


@dataclass
class Cluster:
    """A connected Ray cluster: its address, size, and whether zendeploy started it."""

    address: str
    started_here: bool
    nodes: int
    cpus: float
    resources: dict

    def describe(self) -> str:
        kind = "local Ray instance" if self.started_here else f"Ray cluster {self.address}"
        return f"{kind}: {self.nodes} node(s), {self.cpus:g} CPU(s)"


def ray_logging_level() -> int:
    """The level ``ray.init`` gives Ray's logger: the one its caller set (the CLI sets ERROR unless ``--verbose``),
    at least WARNING. Ray re-levels its logger at init, so without this a start-up notice (token authentication,
    ...) would reach the user as if it were zendeploy's."""
    return max(logging.getLogger("ray").getEffectiveLevel(), logging.WARNING)


@contextlib.contextmanager
def connect(address: Optional[str] = None, *, num_cpus: Optional[int] = None) -> Iterator[Cluster]:
    """Connect (or start), yield the ``Cluster``, and shut a local instance down afterwards."""
    ray = require_ray()
    if ray.is_initialized():  # e.g. a notebook or a test that already connected: use it as it is
        yield describe_cluster(ray, started_here=False)
        return
    addr = None if address in (None, "", "auto") else address
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=True,
                                  logging_level=ray_logging_level())
    if addr == "local" or addr is None:
        kwargs["num_cpus"] = num_cpus
    elif num_cpus is not None:
        raise ClusterError(f"--ray-cpus sizes a local Ray instance; cluster {addr} has the CPUs its nodes declare")
    if addr not in (None, "local"):
        check_reachable(addr)
    joins = addr not in (None, "local") or bool(os.environ.get("RAY_ADDRESS")) or (
        addr is None and os.path.exists(os.path.join(tempfile.gettempdir(), "ray", "ray_current_cluster")))
    try:
        ray.init(address=addr, **kwargs)
    except ConnectionError as exc:
        raise ClusterError(f"cannot connect to Ray cluster '{address}': {_first_line(exc)}") from None
    except Exception as exc:  # ray raises RuntimeError / ValueError on bad addresses and failed starts
        raise ClusterError(f"cannot start or join Ray ('{address or 'auto'}'): {type(exc).__name__}: "
                           f"{_first_line(exc)}") from None
    try:
        yield describe_cluster(ray, started_here=not joins)
    finally:
        ray.shutdown()  # a driver disconnects; a local instance it started stops with it


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, with one line, when nothing listens at a cluster address (Ray itself retries for minutes)."""
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ClusterError(f"Ray address '{address}' is not HOST:PORT or ray://HOST:PORT (or auto, local)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterError(f"cannot reach a Ray cluster at {host}:{port} ({exc.strerror or type(exc).__name__}); is "
                           f"its head node started (ray start --head)?") from None


def describe_cluster(ray, *, started_here: bool) -> Cluster:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    res = ray.cluster_resources()
    address = ray.get_runtime_context().gcs_address if hasattr(ray.get_runtime_context(), "gcs_address") else "?"
    return Cluster(address=str(address), started_here=started_here, nodes=len(nodes), cpus=float(res.get("CPU", 0)),
                   resources={k: v for k, v in res.items() if not k.startswith("node:") and k not in
                              ("memory", "object_store_memory")})


def worker_identity() -> dict:
    """Who ran a task: host name, process id, Ray node id, and the versions that decide its results."""
    import platform

    from .. import __version__

    ident = {"host": socket.gethostname(), "pid": os.getpid(), "zendeploy": __version__,
             "python": platform.python_version()}
    try:
        import torch

        ident["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - a hard dependency
        ident["torch"] = None
    try:
        import ray

        ident["node"] = ray.get_runtime_context().get_node_id()
    except Exception:  # pragma: no cover - outside Ray
        ident["node"] = None
    return ident


def rate_span(rates, digits: int = 1) -> str:
    """Per-worker rates for a progress bar: ``"1.9"`` for one worker, ``"1.8-2.1"`` (slowest-fastest) for several,
    ``""`` for none."""
    rates = sorted(rates)
    if not rates:
        return ""
    return f"{rates[0]:.{digits}f}" if len(rates) == 1 else f"{rates[0]:.{digits}f}-{rates[-1]:.{digits}f}"


def worker_name(ident: dict) -> str:
    return f"{ident.get('host')}:{ident.get('pid')}"


def check_same_versions(ident: dict, keys: tuple[str, ...] = ("zendeploy", "torch", "python")) -> None:
    """Refuse results from a worker whose versions differ from this host's (they change scores and files)."""
    here = worker_identity()
    for k in keys:
        if ident.get(k) != here.get(k):
            raise ClusterError(f"Ray worker {worker_name(ident)} runs {k} {ident.get(k)}, this host {here.get(k)}; "
                               f"install the same zendeploy environment on every node")


# A Ray error that means the worker or its node went away (the task itself did not fail): re-run it elsewhere.
def worker_lost_errors(ray) -> tuple[type[BaseException], ...]:
    e = ray.exceptions
    return tuple(getattr(e, n) for n in ("WorkerCrashedError", "NodeDiedError", "ObjectLostError", "OwnerDiedError",
                                         "LocalRayletDiedError", "ActorDiedError", "ActorUnavailableError",
                                         "RayActorError", "ObjectFetchTimedOutError") if hasattr(e, n))


def describe_task_error(exc: BaseException) -> str:
    """One line for a task that raised on a worker (e.g. zendeploy missing on a node)."""
    cause = getattr(exc, "cause", None) or exc
    return f"{type(cause).__name__}: {_first_line(cause)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class RetryingTasks:
    """Run ``n`` Ray tasks (``start(i)`` submits task ``i`` and returns its object ref) with at most ``window`` in
    flight, and yield ``(i, result)`` as they finish. A task lost with its worker or node is submitted again (up to
    ``max_attempts`` tries in all) and counted in ``requeued``; a task that raised stops the run with one line
    (``doing`` says what the tasks do). Leaving the loop early (an error, Ctrl-C) cancels what is still running."""

    def __init__(self, ray, start, n: int, *, window: Optional[int] = None, max_attempts: int = 3,
                 name=lambda i: f"task {i}", doing: str = "run tasks"):
        self.ray, self.start, self.n = ray, start, n
        self.window = window or max(1, n)
        self.max_attempts, self.name, self.doing = max_attempts, name, doing
        self.requeued = 0

    def __iter__(self):
        ray = self.ray
        lost = worker_lost_errors(ray)
        queue = list(range(self.n))[::-1]
        attempts = [0] * self.n
        pending: dict = {}

        def submit():
            while queue and len(pending) < self.window:
                i = queue.pop()
                attempts[i] += 1
                pending[self.start(i)] = i

        try:
            submit()
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    i = pending.pop(ref)
                    try:
                        out = ray.get(ref)
                    except lost as exc:
                        if attempts[i] >= self.max_attempts:
                            raise ClusterError(f"{self.name(i)} was lost with its worker {attempts[i]} times "
                                               f"({type(exc).__name__}); the cluster is unstable") from None
                        self.requeued += 1
                        queue.append(i)
                        continue
                    except ray.exceptions.RayTaskError as exc:
                        raise ClusterError(f"a Ray worker could not {self.doing} ({describe_task_error(exc)}); is "
                                           f"zendeploy installed on every node?") from None
                    yield i, out
                submit()
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
