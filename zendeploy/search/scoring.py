"""Scoring candidates: the contract between the search and whatever computes proxies (this process, local processes,
a Ray cluster), joblib-style: the search only ever sees a ``Scorer`` handed to it.

- ``ScoreRequest`` (one candidate in) and ``ScoreResult`` (its score out) are the whole contract; a request carries
  everything a worker needs, so a scorer may run it anywhere.
- ``candidate_seed`` is the one seed rule: a candidate's proxy seed comes from the search seed and its structure
  string, so a score never depends on when, where or in which order it is computed.
- ``score_request`` runs one request; any proxy failure gives the official invalid score (-9999).
- ``LocalScorer`` runs requests in this process, or in ``workers`` spawned processes. ``zendeploy.distributed.scoring``
  has ``RayScorer`` with the same interface; the CLI (or a user's script) chooses which to build and passes it in.

A scorer is a context manager (entered once by the search) with ``score(requests) -> results`` (same order),
``requeued`` (requests re-submitted because their worker died) and ``describe() -> dict`` (for the report).
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence

from ..errors import ZenDeployError
from ..space.structure import BlockSpec

INVALID_SCORE = -9999.0  # official score of a candidate whose proxy fails


def candidate_seed(seed: int, structure: str) -> int:
    """The proxy seed of one candidate: from the search seed and the structure string (never Python's hash())."""
    digest = hashlib.sha256(f"{int(seed)}|{structure}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class ScoreRequest:
    """One candidate to score: everything a worker needs, nothing that lives only in the search."""

    structure: str
    blocks: tuple[BlockSpec, ...]
    proxy: str
    resolution: int
    batch_size: int
    seed: int  # this candidate's proxy seed (``candidate_seed``), not the search seed
    num_classes: int
    threads: int = 1  # torch threads for this evaluation (scores depend on it: rounding)


@dataclass
class ScoreResult:
    score: float
    valid: bool
    reason: Optional[str]
    seconds: float
    worker: str  # host:pid of the process that computed it
    components: Optional[dict] = None  # a rank-combined proxy's indicators (AZ-NAS); the search ranks them


def make_requests(items: Sequence[tuple[str, tuple[BlockSpec, ...]]], *, proxy: str, resolution: int,
                  batch_size: int, seed: int, num_classes: int, threads: int = 1) -> list[ScoreRequest]:
    """The requests for ``(structure, blocks)`` pairs of one search (``seed`` is the search seed)."""
    return [ScoreRequest(s, tuple(blocks), proxy, resolution, batch_size, candidate_seed(seed, s), num_classes, threads)
            for s, blocks in items]


def score_request(req: ScoreRequest) -> ScoreResult:
    """Score one candidate (in the main process or a worker). Any failure gives the official -9999."""
    from ..proxies import compute_proxy

    t0 = time.perf_counter()
    components = None
    try:
        r = compute_proxy(req.proxy, req.blocks, resolution=req.resolution, batch_size=req.batch_size, repeats=1,
                          seed=req.seed, num_classes=req.num_classes)
        valid, score, reason, components = r.valid, float(r.score), r.reason, r.components
    except ZenDeployError as exc:
        valid, score, reason = False, math.nan, str(exc)
    except Exception as exc:  # the official loop catches everything a proxy raises (e.g. out of memory)
        valid, score, reason = False, math.nan, f"{type(exc).__name__}: {exc}"
    if not valid or not math.isfinite(score):
        valid, score, components = False, INVALID_SCORE, None
    return ScoreResult(score=score, valid=valid, reason=reason, seconds=time.perf_counter() - t0,
                       worker=f"{socket.gethostname()}:{os.getpid()}", components=components)


class Scorer(Protocol):
    requeued: int

    def __enter__(self) -> "Scorer": ...

    def __exit__(self, *exc) -> bool | None: ...

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]: ...

    def describe(self) -> dict: ...


def _init_worker(threads: int) -> None:
    import torch

    from ..proxies.allocator import reuse_freed_memory  # (also registers the proxies, once per worker)

    torch.set_num_threads(threads)
    reuse_freed_memory()


class LocalScorer:
    """Scores in this process (``workers=1``) or in ``workers`` spawned processes, each at ``threads`` torch threads.

    ``task`` runs one request (default ``score_request``); a test may hand in one that injects a fault. A local pool
    never re-queues: a dead process fails the step, and ``--resume`` continues from the checkpoint before it.
    """

    requeued = 0

    def __init__(self, workers: int = 1, threads: int = 1, task: Callable[[ScoreRequest], ScoreResult] = score_request):
        self.workers, self.threads, self.task = workers, threads, task
        self.pool = None
        self._saved_threads = None

    def __enter__(self):
        import torch

        from ..proxies.allocator import reuse_freed_memory

        self._saved_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        reuse_freed_memory()
        if self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_worker, initargs=(self.threads,))
        return self

    def __exit__(self, *exc):
        import torch

        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        if self._saved_threads is not None:
            torch.set_num_threads(self._saved_threads)
        return False

    def score(self, requests: Sequence[ScoreRequest]) -> list[ScoreResult]:
        if self.pool is None or len(requests) <= 1:
            return [self.task(r) for r in requests]
        return list(self.pool.map(self.task, requests))

    def describe(self) -> dict:
        return {"executor": "local processes" if self.workers > 1 else "this process", "workers": self.workers,
                "cluster": None}
