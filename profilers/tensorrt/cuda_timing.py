"""GPU time of work enqueued on a CUDA stream, the way a deployment runs it: replayed from a CUDA graph.

:func:`time_on_stream` takes ``enqueue()``, which puts one inference on ``stream`` (for TensorRT
``IExecutionContext.execute_async_v3``), and:

1. warms up: ``warmup`` plain enqueues, each synchronised, timing the *host* side of every enqueue
   (``time.perf_counter_ns`` around the call: what submitting one inference costs the CPU);
2. captures one enqueue into a CUDA graph (``cudaStreamBeginCapture`` in thread-local mode,
   ``cudaStreamEndCapture``, ``cudaGraphInstantiate``); TensorRT needs one enqueue before capture
   to settle its deferred allocations, which the warm-up provides;
3. times replays: ``cudaEventRecord`` / ``cudaGraphLaunch`` / ``cudaEventRecord`` on the stream,
   ``cudaEventSynchronize``, ``cudaEventElapsedTime``, until ``repeats`` samples and ``min_time_s``
   of GPU time (:func:`profilers.common.measure_samples`).

Without a graph each sample would bracket one enqueue with events, and a small unit whose enqueue
takes longer than its kernels is timed at host submission speed; unit sums then overshoot whole
networks (trtexec 10 times with ``--useCudaGraph`` for the same reason, and trtexec 11 by default).
When capture fails (an engine with data-dependent shapes, a plugin that synchronises) the samples
are plain enqueues and the result says so (``cuda_graph`` False, ``graph_note`` the reason). The
median enqueue time is reported with every result, and ``enqueue_bound`` flags a unit whose host
submission takes at least its GPU time: a deployment without graphs would see the enqueue time.

``cudart`` is cuda-python's runtime module (``cuda.bindings.runtime``, or ``cuda.cudart`` before
12.6): every call returns ``(cudaError_t, *values)``.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any, Callable

from profilers.common import ProfilerError, TimingStats, measure_samples

__all__ = ["StreamTiming", "check", "time_on_stream"]


def check(cudart, result, what: str):
    """cuda-python returns ``(err, *values)``; raise :class:`ProfilerError` on error, return the value(s)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        raise ProfilerError(f"CUDA error in {what}: {getattr(err, 'name', err)}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


@dataclasses.dataclass(frozen=True)
class StreamTiming:
    """GPU time per inference (``stats``, ms), how it was launched and what the host paid to enqueue it."""

    stats: TimingStats
    cuda_graph: bool  # the samples are graph replays (False: plain enqueues, see graph_note)
    graph_note: str | None
    enqueue_ms: float | None  # median host time of one enqueue, over the warm-up
    enqueue_bound: bool  # enqueue_ms >= the GPU median

    def to_dict(self) -> dict[str, Any]:
        return {"cuda_graph": self.cuda_graph, "graph_note": self.graph_note, "enqueue_ms": self.enqueue_ms,
                "enqueue_bound": self.enqueue_bound}


def _capture(cudart, stream, enqueue: Callable[[], None]):
    """``(graph, graph_exec)`` of one enqueue; capture always ends, also when the enqueue fails."""
    mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
    check(cudart, cudart.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")
    try:
        enqueue()
    finally:
        graph = check(cudart, cudart.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
    try:
        return graph, check(cudart, cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
    except ProfilerError:
        cudart.cudaGraphDestroy(graph)
        raise


def time_on_stream(
    cudart,
    stream,
    enqueue: Callable[[], None],
    *,
    warmup: int = 20,
    repeats: int | None = 100,
    min_time_s: float | None = 1.0,
    max_repeats: int = 10_000,
    cuda_graph: bool = True,
) -> StreamTiming:
    """Time ``enqueue()`` on ``stream`` as described in the module docstring."""
    enqueue_ms: list[float] = []
    for _ in range(max(int(warmup), 1)):  # at least one: TensorRT settles its allocations before a capture
        t0 = time.perf_counter_ns()
        enqueue()
        enqueue_ms.append((time.perf_counter_ns() - t0) / 1e6)
        check(cudart, cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    graph = graph_exec = None
    note = None if cuda_graph else "CUDA graphs turned off"
    if cuda_graph:
        try:
            graph, graph_exec = _capture(cudart, stream, enqueue)
        except ProfilerError as exc:
            note = f"capture failed, plain enqueues timed ({exc})"
    start = end = None
    try:
        start = check(cudart, cudart.cudaEventCreate(), "cudaEventCreate")
        end = check(cudart, cudart.cudaEventCreate(), "cudaEventCreate")
        if graph_exec is not None:
            def launch() -> None:
                check(cudart, cudart.cudaGraphLaunch(graph_exec, stream), "cudaGraphLaunch")
        else:
            launch = enqueue

        def once() -> float:
            check(cudart, cudart.cudaEventRecord(start, stream), "cudaEventRecord")
            launch()
            check(cudart, cudart.cudaEventRecord(end, stream), "cudaEventRecord")
            check(cudart, cudart.cudaEventSynchronize(end), "cudaEventSynchronize")
            return float(check(cudart, cudart.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

        samples = measure_samples(once, warmup=0, repeats=repeats, min_time_s=min_time_s, max_repeats=max_repeats)
        check(cudart, cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
    finally:
        for event in (start, end):
            if event is not None:
                cudart.cudaEventDestroy(event)
        if graph_exec is not None:
            cudart.cudaGraphExecDestroy(graph_exec)
        if graph is not None:
            cudart.cudaGraphDestroy(graph)
    stats = TimingStats.from_samples(samples)
    host = statistics.median(enqueue_ms)
    return StreamTiming(stats, graph_exec is not None, note, round(host, 6), host >= stats.median_ms)
