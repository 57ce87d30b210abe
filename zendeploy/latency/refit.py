"""``zendeploy latency refit`` as a library call: fit a table file's unit models and calibration again from its
stored measurements, plus what was measured since (networks in ``<table>.measured.jsonl``, units timed on demand in
``<table>.ondemand.jsonl``), re-anchor it on its anchor's own measurements when it has one, write it, and recompute
its validation report on the same measurements. Nothing is timed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .schema import LatencyTable


@dataclass
class RefitResult:
    table: LatencyTable  # the refitted table, written to ``out``
    out: Path
    networks_added: int  # networks measured since profiling that joined the calibration
    lines_skipped: int  # sidecar lines of another device, resolution or class count
    before: object | None = None  # the validation report next to the table, before and after (ValidationReport)
    after: object | None = None


def refit_file(table_path: str | os.PathLike, output: str | os.PathLike | None = None) -> RefitResult:
    """Refit ``table_path`` into ``output`` (default: in place, atomically); its ``.validation.json``, when there,
    is recomputed next to the output (with its plot)."""
    from .ondemand import load_ondemand
    from .predict import LatencyPredictor
    from .profile import refit_table
    from .sidecar import read_networks
    from .tables import load_table, save_table
    from .validate import load_report, revalidate, save_report

    table_path = Path(table_path)
    old = load_table(table_path)
    structures, measured, skipped = read_networks(table_path, old)
    holder = LatencyPredictor(old)
    load_ondemand(holder, table_path)
    ondemand = [e for e in holder.table.entries if e.origin == "on-demand"]
    new = refit_table(old, (structures, measured), ondemand)
    if old.anchor is not None and new.calibration is not None:  # the same anchor measurements, on the new fit
        from .anchor import fit_anchor

        a = old.anchor
        new = fit_anchor(new, a.structures, a.measured_ms, date=a.date, host=a.host)
    out = Path(output) if output else table_path
    report_path = Path(f"{table_path.with_suffix('')}.validation.json")
    before = load_report(report_path) if report_path.exists() else None
    save_table(new, out)
    after = None
    if before is not None:
        out_stem = out.with_suffix("")
        after = revalidate(before, out, plot_path=Path(f"{out_stem}.validation.png"))
        save_report(after, Path(f"{out_stem}.validation.json"))
    return RefitResult(new, out, len(structures), skipped, before, after)


__all__ = ["RefitResult", "refit_file"]
