"""Units a search needs but its table never measured, timed on demand on this host (``cpu``, ``tflite-cpu``).

When a candidate's prediction lies outside the table's coverage because of its units (a kernel, SE variant, stride or
channel count the table never measured), ``OnDemandUnits`` converts those units with the table's converter, times
them with the table's settings and statistic (shuffled passes, the fastest run), adds them to the predictor and
appends them to ``<table>.ondemand.jsonl`` (fsync'd, one entry per line, with the backend's fingerprint). Later
searches with the same table load them (``load_ondemand``), and ``zendeploy latency refit`` folds them into the
table. A candidate that is outside for a reason no unit can fix (its MACs beyond the calibrated networks) stays
rejected. Remote devices (``t4``, ``pixel``) have no on-demand timer: their out-of-coverage candidates are rejected
and counted.

The search hands this in (``run_search(..., on_outside=...)``); nothing in the search imports it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Sequence

from ..progress import Progress, reporter
from ..space.structure import BlockSpec
from ..space.units import network_units
from .coverage import check_units
from .model import unit_key
from .schema import Entry, backend_fingerprint, fingerprint_of
from .timing import FileTimer, run_pass

log = logging.getLogger(__name__)


def ondemand_path(table_path: str | os.PathLike) -> Path:
    p = Path(table_path)
    return p.with_name(p.name.removesuffix(".json") + ".ondemand.jsonl")


def load_ondemand(predictor, table_path: str | os.PathLike) -> int:
    """Add the on-demand entries recorded beside the table (same fingerprint only) to ``predictor``; returns how
    many were added. A cut or foreign line is skipped."""
    path = ondemand_path(table_path)
    if not path.exists():
        return 0
    want = fingerprint_of(predictor.table.provenance.model_dump())
    entries = []
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
            if rec.get("fingerprint") != want:
                continue
            entries.append(Entry.model_validate(rec["entry"]))
        except Exception:  # noqa: BLE001 - a line cut by a kill, or hand-edited: skipped, never trusted
            continue
    before = len(predictor.table.entries)
    predictor.add_entries(entries)
    return len(predictor.table.entries) - before


class OnDemandUnits:
    """``on_outside(blocks, reasons) -> bool`` for the search: time the candidate's units that lie outside the
    table's unit coverage, add them to ``predictor``; True when it did (the caller predicts again)."""

    def __init__(self, predictor, backend, table_path: str | os.PathLike, workdir: str | os.PathLike, *,
                 settings=None, se: bool = False, num_classes: int | None = None,
                 progress: Progress | None = None):
        from .profile import ProfileSettings

        self.predictor, self.backend = predictor, backend
        self.journal = ondemand_path(table_path)
        self.work = Path(workdir)
        self.settings = settings or ProfileSettings()
        self.se = se
        self.num_classes = num_classes or predictor.table.space.num_classes
        self.note = reporter(progress)  # ProgressEvent('on-demand', units timed so far, None, 'N s')
        self.units = 0  # timed by this object
        self.seconds = 0.0
        self.refused = False  # the table's fingerprint differs from this host's backend: nothing is timed
        self.fingerprint = backend_fingerprint(backend)

    def missing(self, blocks: Sequence[BlockSpec], resolution: int) -> dict:
        """The candidate's units outside the unit coverage, by key."""
        out = {}
        for p in network_units(blocks, resolution, se=self.se, residual=True, num_classes=self.num_classes):
            if check_units(self.predictor.coverage, [(p.unit, p.resolution)]):
                out[unit_key(p.unit, p.resolution)] = (p.unit, p.resolution)
        return out

    def __call__(self, blocks: Sequence[BlockSpec], reasons: Sequence[str], resolution: int | None = None) -> bool:
        from .conversion import convert_job, unit_job
        from .profile import _entry

        if self.fingerprint != fingerprint_of(self.predictor.table.provenance.model_dump()):
            if not self.refused:  # this host is not the table's device (another CPU, versions, threads)
                self.refused = True
                log.warning("the table was measured on another device or setup than this host's backend; units "
                            "outside its coverage are not timed here (candidates needing them are rejected)")
            return False
        res = resolution or self.predictor.resolution
        todo = self.missing(blocks, res)
        if not todo:
            return False  # outside for a reason no unit fixes (e.g. the network's MACs)
        t0 = time.perf_counter()
        self.work.mkdir(parents=True, exist_ok=True)
        b = self.backend
        paths = {}
        for key, (unit, r) in todo.items():
            job = unit_job(key, unit, r, b.batch, b.converter.suffix)
            if not (self.work / job.file_name).exists():
                convert_job(b.converter, job, self.work)
            paths[key] = self.work / job.file_name
        recs: dict[str, list[dict]] = {k: [] for k in todo}
        s = self.settings
        timer = FileTimer(b, paths, s.timing)
        for p in range(s.passes):
            run_pass(todo, p, timer, lambda key, _p, stats: recs[key].append({"stats": stats.to_dict()}), seed=s.seed)
        timer.close()
        entries = [_entry(k, u, r, recs[k], "on-demand", b.pass_statistic) for k, (u, r) in todo.items()]
        with open(self.journal, "a") as f:
            for e in entries:
                f.write(json.dumps({"entry": e.model_dump(mode="json"), "fingerprint": self.fingerprint,
                                    "reason": "; ".join(reasons)[:300]}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.predictor.add_entries(entries)
        self.units += len(entries)
        self.seconds += time.perf_counter() - t0
        log.info("timed %d unit(s) on demand in %.1f s (%s)", len(entries), time.perf_counter() - t0,
                 "; ".join(reasons)[:120])
        self.note("on-demand", self.units, None, f"{self.seconds:.0f} s")
        return True
