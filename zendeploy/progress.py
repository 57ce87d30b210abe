"""The one progress event of zendeploy's long jobs (profiling, validation, conversion on a cluster, a device farm,
the demo, the search): a callback handed in receives ``ProgressEvent`` objects, never positional tuples.

    >>> def show(event: ProgressEvent) -> None:
    ...     print(f"{event.phase}: {event.done}/{event.total} {event.info}")

The search reports ``zendeploy.search.ProgressInfo``, a ``ProgressEvent`` (phase ``"search"``, ``done`` iterations of
``total``) with the search's own figures added (best score, acceptance, evaluations per second, workers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class ProgressEvent:
    phase: str = ""  # "convert", "time", "re-time 1", "validate", "search", ...
    done: int = 0
    total: Optional[int] = None
    info: str = ""  # one line to show next to the bar, e.g. per-worker throughput


Progress = Callable[[ProgressEvent], None]


def reporter(progress: Optional[Progress]) -> Callable[..., None]:
    """``note(phase, done, total, info="")`` sending one ``ProgressEvent`` to ``progress`` (nothing when None): what
    the library's loops call."""
    if progress is None:
        return lambda *a, **k: None

    def note(phase: str, done: int, total: Optional[int] = None, info: str = "") -> None:
        progress(ProgressEvent(phase, done, total, info))

    return note


__all__ = ["Progress", "ProgressEvent", "reporter"]
