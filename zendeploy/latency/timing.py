"""The one timing loop of zendeploy: shuffled passes over keyed files, and what makes it trustworthy on a shared host.

Everything that times (a table's units in ``profile``, whole networks in ``measure_networks``, units timed on demand
by a search, a device-farm node's share, the export report's latency column) runs ``run_pass`` over its keys:

- ``pass_order``: each pass visits the keys in a new shuffled order, the same on this host and on every farm node;
- ``FileTimer``: opens each file once in the backend's runtime and times it with the backend's settings;
- ``Journal``: every timing appended (fsync'd) as it is made, so a killed run resumes without timing anything twice;
- ``noisy_keys``: which keys get an extra pass (their pass medians spread too much);
- ``low_statistic`` / ``STATISTICS``: the latency a set of passes yields (the minimum over passes of one field);
- ``drift_summary``: the reference unit's medians over the run, the record of clock or load drift.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

DEFAULT_PASSES = 5
# The statistic of every latency zendeploy records on a backend of this host (table entries, calibration and
# validation networks, the search's closing-the-loop measurement, export timings): ``Backend.pass_statistic`` is
# ``min_ms``. Chosen by tools/bench_timing_statistic.py on a 2-core shared host:
# over three runs (two independent timing rounds of 30 networks each), the fastest run of 5 passes reproduced to
# 2.2 / 6.9 / 4.9 % (mean |diff| between rounds), against 8.1 / 11.2 / 29.4 % for the minimum of 3 pass medians (the
# earlier statistic), 4.7 / 3.6 / 12.4 % for the median of 7 pass medians, 1.9 / 11.7 / 8.5 % for the minimum of 5
# pass p10s. Noise on a shared host only ever slows a run down, so the floor is the most repeatable estimate.
# Dedicated devices (T4, phone) keep the minimum over passes of the pass median (``median_ms``).
STATISTICS = {
    "min_ms": "latency_ms = fastest timed run over all passes (minimum of the pass minima)",
    "median_ms": "latency_ms = minimum over passes of the per-pass median",
}

TimeOne = Callable[[str], Any]  # key -> the runners' TimingStats (``profilers.common``)
Record = Callable[[str, int, Any], None]  # (key, pass, stats)


def low_statistic(pass_stats: Sequence[Mapping], field: str = "min_ms") -> float:
    """``latency_ms`` from per-pass timing statistics (dicts): the minimum over passes of ``field``."""
    return min(float(st[field]) for st in pass_stats)


def pass_order(keys: Iterable[str], seed: int, p: int) -> list[str]:
    """The shuffled order of timing pass ``p`` (the same on this host and on every farm device)."""
    order = list(keys)
    random.Random(seed * 7919 + p).shuffle(order)
    return order


def run_pass(keys: Iterable[str], p: int, time_one: TimeOne, record: Record, *, seed: int,
             skip: Callable[[str, int], bool] | None = None) -> int:
    """Time every key of ``keys`` once, in pass ``p``'s shuffled order, handing each result to ``record``; keys for
    which ``skip(key, p)`` holds (timed before a resume) are left out. Returns how many were timed."""
    timed = 0
    for key in pass_order(keys, seed, p):
        if skip is not None and skip(key, p):
            continue
        record(key, p, time_one(key))
        timed += 1
    return timed


class FileTimer:
    """``key -> TimingStats``: each file opened once in ``backend``'s runtime (with ``open_options``, e.g. a TFLite
    ``signature``), then timed with ``settings``."""

    def __init__(self, backend, paths: Mapping[str, Path], settings, open_options: Mapping[str, Any] | None = None):
        self.backend, self.paths, self.settings = backend, paths, settings
        self.open_options = dict(open_options or {})
        self.runners: dict[str, Callable] = {}

    def __call__(self, key: str):
        if key not in self.runners:
            self.runners[key] = self.backend.open(self.paths[key], **self.open_options)
        return self.backend.time(self.runners[key], self.settings)

    def close(self) -> None:
        self.runners.clear()


class Journal:
    """Append-only JSONL log of timings (``{"key", "pass", "stats", ...}``, fsync'd line by line); the resume state.
    A line cut by a kill is ignored, so that timing is made again."""

    def __init__(self, path: Path):
        self.path = path
        self.done: dict[tuple[str, int], dict] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    self.done[(rec["key"], int(rec["pass"]))] = rec
                except (json.JSONDecodeError, KeyError, ValueError, TypeError):
                    continue

    def has(self, key: str, p: int) -> bool:
        return (key, p) in self.done

    def add(self, rec: dict) -> None:
        self.done[(rec["key"], int(rec["pass"]))] = rec
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def passes_of(self, key: str) -> list[int]:
        return sorted(p for (k, p) in self.done if k == key)


def noisy_keys(journal: Journal, keys: Sequence[str], spread: float, p: int) -> list[str]:
    """Keys that need extra pass ``p``: their pass medians spread more than ``spread`` (max/min - 1), or the pass
    already started for them before a resume."""
    out = []
    for key in keys:
        meds = [rec["stats"]["median_ms"] for (k, q), rec in journal.done.items() if k == key and q < p]
        if journal.has(key, p) or (meds and max(meds) / min(meds) - 1 > spread):
            out.append(key)
    return out


def drift_summary(reference_key: str, medians: Sequence[float]) -> dict:
    """The reference unit's medians over a run and their spread in percent (max/min - 1)."""
    return {"reference_key": reference_key, "reference_medians_ms": [round(v, 5) for v in medians],
            "spread_pct": round((max(medians) / min(medians) - 1) * 100, 2) if medians else None}


@dataclass
class Timed:
    """What a timing phase leaves besides the journal: the backend's provenance fields, the host fingerprint, the
    reference-unit drift and notes (a farm adds its shards)."""

    provenance: dict
    host: dict
    drift: dict
    notes: list[str] = field(default_factory=list)


__all__ = ["DEFAULT_PASSES", "STATISTICS", "FileTimer", "Journal", "Timed", "drift_summary", "low_statistic",
           "noisy_keys", "pass_order", "run_pass"]
