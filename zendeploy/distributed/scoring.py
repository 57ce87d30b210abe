"""The search's candidates scored as Ray tasks: ``RayScorer``, a ``zendeploy.search.scoring.Scorer``.

The search hands it one step of ``K = --step`` requests; it submits them as K tasks (K evaluations in flight, each
on the request's thread count of CPUs) and returns when all K are back, so the search commits whole steps exactly as
it does locally.

- Results equal a serial run's: every request carries its own proxy seed (``candidate_seed``) and thread count, so
  where a candidate is scored changes nothing (on nodes of one CPU type and one environment, which
  ``check_same_versions`` enforces for the versions). K=1 is the official serial loop; K>1 equals a local
  ``--step K`` run, for any number of workers.
- A worker (or node) that dies mid-task has its request re-submitted (up to ``max_attempts`` tries in all) and
  counted in ``requeued``; the step is committed once, when every result is in, so nothing is lost or counted
  twice. An interruption cancels the step in flight; the checkpoint holds the state before it.
- Entering the scorer connects to the cluster (``connect``: an address, ``"local"``, or Ray's default) and leaving
  it disconnects (a local instance it started stops). ``task`` is the function a worker runs on one request
  (default ``score_request``); a test hands in one that kills its own worker to inject a fault.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Callable, Optional, Sequence

from ..search.scoring import ScoreRequest, ScoreResult, score_request
from .runtime import RetryingTasks, check_same_versions, connect, require_ray, worker_identity, worker_name


def _score_on_worker(task: Callable[[ScoreRequest], ScoreResult], request: ScoreRequest) -> tuple[ScoreResult, dict]:
    import torch

    from ..proxies.allocator import reuse_freed_memory  # (also registers the proxies)

    if torch.get_num_threads() != request.threads:
        torch.set_num_threads(request.threads)
    reuse_freed_memory()

    return task(request), worker_identity()


class RayScorer:
    def __init__(self, address: Optional[str] = None, *, num_cpus: Optional[int] = None, max_attempts: int = 3,
                 task: Callable[[ScoreRequest], ScoreResult] = score_request):
        self.ray = require_ray()
        self.address, self.num_cpus = address, num_cpus
        self.max_attempts, self.task = max_attempts, task
        self.requeued = 0
        self.cluster = None
        self._checked: set[str] = set()
        self._fns: dict[int, object] = {}
        self._stack: Optional[contextlib.ExitStack] = None

    def __enter__(self):
        self._stack = contextlib.ExitStack()
        self.cluster = self._stack.enter_context(connect(self.address, num_cpus=self.num_cpus))
        return self

    def __exit__(self, *exc):
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
        return False

    def _fn(self, threads: int):
        if threads not in self._fns:
            # max_retries=0: re-submission is ours, so it can be counted and bounded; a task never raises for a bad
            # candidate (score_request returns the official -9999).
            self._fns[threads] = self.ray.remote(num_cpus=threads, max_retries=0)(_score_on_worker)
        return self._fns[threads]

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        results: list[Optional[ScoreResult]] = [None] * len(requests)
        runs = RetryingTasks(self.ray, lambda i: self._fn(requests[i].threads).remote(self.task, requests[i]),
                             len(requests), max_attempts=self.max_attempts,
                             name=lambda i: f"candidate {requests[i].structure[:60]}...", doing="score candidates")
        try:
            for i, (out, ident) in runs:
                name = worker_name(ident)
                if name not in self._checked:
                    check_same_versions(ident)
                    self._checked.add(name)
                results[i] = replace(out, worker=name)
        finally:
            self.requeued += runs.requeued
        return results  # type: ignore[return-value]

    def describe(self) -> dict:
        return {"executor": "ray", "cluster": self.cluster.describe() if self.cluster is not None else None}
