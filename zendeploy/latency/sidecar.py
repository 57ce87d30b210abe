"""Measurements made after a table was written, kept beside it: ``<table>.measured.jsonl``.

Whenever zendeploy measures whole networks end to end on a table's own device (the closed loop after a search, the
demo), it appends one line per network: structure, resolution, classes, the latency per batch (the table's
statistic), where it came from, the date, and the fingerprint of the backend that measured it. ``zendeploy latency
refit --table T`` adds the lines whose fingerprint, resolution and classes match the table's to its calibration set,
so a table improves with use. Lines are appended and fsync'd one by one; a line cut by a kill is skipped on read.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Sequence

from ..space.structure import BlockSpec, format_structure
from .schema import LatencyTable, fingerprint_of


def sidecar_path(table_path: str | os.PathLike) -> Path:
    p = Path(table_path)
    return p.with_name(p.name.removesuffix(".json") + ".measured.jsonl")


def append_networks(table_path: str | os.PathLike, table: LatencyTable, networks: Sequence[Sequence[BlockSpec]],
                    measured_ms: Sequence[float], *, resolution: int, num_classes: int, source: str,
                    fingerprint: dict | None = None) -> Path:
    """Record ``networks`` measured end to end (``measured_ms`` per batch) beside the table."""
    path = sidecar_path(table_path)
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    fp = fingerprint if fingerprint is not None else table.provenance.fingerprint()
    with open(path, "a") as f:
        for blocks, ms in zip(networks, measured_ms):
            f.write(json.dumps({"structure": format_structure(blocks), "resolution": resolution,
                                "num_classes": num_classes, "measured_ms": float(ms), "source": source,
                                "date": stamp, "fingerprint": fp}) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return path


def read_networks(table_path: str | os.PathLike, table: LatencyTable) -> tuple[list[str], list[float], int]:
    """The sidecar's networks that were measured like ``table`` (same fingerprint, resolution, classes): their
    structures and latencies per batch (one per structure: the fastest), and how many lines were skipped."""
    path = sidecar_path(table_path)
    if not path.exists():
        return [], [], 0
    want = fingerprint_of(table.provenance.model_dump())
    best: dict[str, float] = {}
    skipped = 0
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
            ok = (rec["fingerprint"] == want and rec["resolution"] == table.space.resolution
                  and rec["num_classes"] == table.space.num_classes and float(rec["measured_ms"]) > 0)
            ms = float(rec["measured_ms"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            skipped += 1
            continue
        if not ok:
            skipped += 1
            continue
        best[rec["structure"]] = min(ms, best.get(rec["structure"], ms))
    return list(best), list(best.values()), skipped
