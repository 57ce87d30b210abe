"""The search's candidates scored as Ray tasks.

``RayScorer`` has the interface of the search's local scorer (``score(items) -> results``, in order): the search
hands it one step of ``K = --step`` children, it submits them as K tasks (K evaluations in flight, each on
``threads`` CPUs), and returns when all K are back, so the search commits whole steps exactly as it does locally.

- Results equal a serial run's: every candidate's proxy seed comes from the search seed and its structure, and every
  task runs with the same torch thread count, so where a candidate is scored changes nothing (on nodes of one CPU
  type and one environment, which ``check_same_versions`` enforces for the versions). K=1 is the official serial
  loop; K>1 equals a local ``--step K`` run, for any number of workers.
- A worker (or node) that dies mid-task has its candidate re-submitted (up to ``max_attempts`` tries in all) and
  counted in ``requeued``; the step is committed once, when every result is in, so nothing is lost or counted
  twice. An interruption cancels the step in flight; the checkpoint holds the state before it.
"""

from __future__ import annotations

from typing import Optional, Sequence

from .runtime import RetryingTasks, check_same_versions, require_ray, worker_identity, worker_name

_REMOTE = {}


def _score_on_worker(task: tuple, threads: int) -> dict:
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    from .. import proxies  # noqa: F401  (registration)
    from ..search.evolution import score_task

    out = score_task(task)
    out["identity"] = worker_identity()
    return out


def _remote(ray, threads: int):
    key = ("score", threads)
    if key not in _REMOTE:
        # max_retries=0: re-submission is ours, so it can be counted and bounded; the task itself never raises for
        # a bad candidate (score_task returns the official -9999).
        _REMOTE[key] = ray.remote(num_cpus=threads, max_retries=0)(_score_on_worker)
    return _REMOTE[key]


class RayScorer:
    def __init__(self, args: tuple, *, threads: int = 1, max_attempts: int = 3):
        self.ray = require_ray()
        self.args = args  # (proxy, resolution, batch_size, seed, num_classes)
        self.threads = threads
        self.max_attempts = max_attempts
        self.requeued = 0
        self._checked: set[str] = set()
        self._fn = _remote(self.ray, threads)

    def score(self, items: Sequence[tuple[str, tuple]]) -> list[dict]:
        from ..search.evolution import candidate_seed

        ray = self.ray
        proxy, resolution, batch_size, seed, num_classes = self.args
        tasks = [(proxy, blocks, resolution, batch_size, candidate_seed(seed, s), num_classes) for s, blocks in items]
        results: list[Optional[dict]] = [None] * len(tasks)
        runs = RetryingTasks(ray, lambda i: self._fn.remote(tasks[i], self.threads), len(tasks),
                             max_attempts=self.max_attempts, name=lambda i: f"candidate {items[i][0][:60]}...",
                             doing="score candidates")
        try:
            for i, out in runs:
                ident = out.pop("identity")
                name = worker_name(ident)
                if name not in self._checked:
                    check_same_versions(ident)
                    self._checked.add(name)
                out["worker"] = name
                results[i] = out
        finally:
            self.requeued += runs.requeued
        return results  # type: ignore[return-value]
