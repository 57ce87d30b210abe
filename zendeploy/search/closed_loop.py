"""The closed loop after a search, as library calls (``zendeploy search --tighten-rounds``, ``zendeploy
search-measured``):

- ``search_tightening``: search; while none of the measured top-k meets the latency budget, search again in
  ``<out>/tightenN`` with the predicted budget tightened by the measured error, still deciding on the user's budget;
- ``write_run_manifest``: for a device this host cannot time, the top-k go out as a manifest for the device runners;
- ``decide_from_timings``: the device's timings of that manifest come back, and the chosen net becomes the
  best-scoring one that meets the budget as measured on the device (the run's report and best structure rewritten).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

from ..errors import ZenDeployError
from .budgets import Budgets
from .config import SearchConfig

Round = Callable[[int, float, float, float, Path], None]  # (round, measured ms, predicted ms, tightened ms, folder)


def tightened_budget(result) -> float | None:
    """The predicted budget for another round, or None when no round is needed (the chosen net meets the budget
    as measured, or nothing was measured): the budget times predicted / measured latency of the chosen net."""
    m = result.report["measured"]
    if not (m["ran"] and m.get("chosen_meets_budget_measured") is False):
        return None
    predicted, measured = result.best.latency["latency_ms"], m["chosen_measured_ms"]
    return float(f"{result.report['budgets']['latency']['value'] * predicted / measured:.4g}")


def search_tightening(run_once: Callable[[SearchConfig], Any], config: SearchConfig, rounds: int, *,
                      on_round: Round | None = None):
    """``run_once(config)`` (a search), then up to ``rounds`` more with the latency budget tightened (see
    ``tightened_budget``), each in ``<out_dir>/tightenN`` (resumed when that folder holds a checkpoint). Returns the
    last result and its folder."""
    if config.out_dir is None:
        raise ZenDeployError("a search that tightens its budget needs an output folder (out_dir)")
    out_dir = Path(config.out_dir)
    result, run_dir = run_once(config), out_dir
    user_budget = config.budgets.latency_ms
    for round_ in range(1, rounds + 1):
        tightened = tightened_budget(result)
        if tightened is None:
            break
        run_dir = out_dir / f"tighten{round_}"
        if on_round is not None:
            on_round(round_, result.report["measured"]["chosen_measured_ms"], result.best.latency["latency_ms"],
                     tightened, run_dir)
        b = config.budgets
        result = run_once(dataclasses.replace(
            config, budgets=Budgets(b.macs, b.params, b.layers, tightened, b.latency_margin), out_dir=run_dir,
            resume=(run_dir / "checkpoint.json").is_file(), decide_budget_ms=user_budget))
    return result, run_dir


def write_run_manifest(result, predictor, out: str | Path) -> str | None:
    """For a device this host cannot time (``t4``, ``pixel``): the top-k as a manifest for the device-side runners;
    the report says how to bring the timings back. Returns that command line, or None for a local device."""
    from ..latency.devices import DEVICES
    from ..space.structure import parse_structure
    from .checkpoint import write_json_atomic
    from .measure import write_remote_manifest

    device = predictor.table.provenance.device
    if device not in DEVICES or DEVICES.get(device).local:
        return None
    out = Path(out)
    nets = [parse_structure(c.structure) for c in result.top(len(result.report["top_k"]))]
    manifest = write_remote_manifest(predictor, nets, out, resolution=result.report["settings"]["resolution"])
    runner = "profilers.tensorrt" if device == "t4" else "profilers.litert.adb"
    m = result.report["measured"]
    m["manifest"] = str(manifest)
    m["next"] = (f"on the {device}: python -m {runner} --manifest {manifest} --output timings.jsonl; then here: "
                 f"zendeploy search-measured --run {out} --timings timings.jsonl")
    write_json_atomic(out / "report.json", result.report, indent=2)
    return m["next"]


def decide_from_timings(run: str | Path, timings: str | Path) -> dict:
    """Read a remote device's timings of a search's top-k (its manifest's results JSONL) and make the closed loop's
    decision; rewrites ``report.json`` and ``best_structure.txt`` and returns the report's ``measured`` section."""
    from ..io import atomic_write_text
    from ..latency import load_predictor
    from .checkpoint import write_json_atomic
    from .evolution import _candidate
    from .measure import timings_measure_fn
    from .report import measure_candidates

    run = Path(run)
    try:
        report = json.loads((run / "report.json").read_text())
        top = json.loads((run / "top_k.json").read_text())
    except (OSError, ValueError) as exc:
        raise ZenDeployError(f"'{run}' is not a finished search run ({type(exc).__name__}: "
                             f"{str(exc).strip()[:80] or 'empty'})") from None
    table = (report["settings"].get("predictor") or {}).get("table")
    if not table:
        raise ZenDeployError(f"search '{run}' had no latency table: there is no budget to decide on")
    predictor = load_predictor(table)
    b = report["budgets"].get("latency", {})
    budgets = Budgets(latency_ms=b.get("value"), latency_margin=b.get("margin_sigmas", 0.0))
    candidates = [_candidate(r["structure"], {**r, "score": r["score"], "seconds": 0.0}) for r in top]
    by_score = next(c for c in candidates if c.structure == report["structure"])
    measured = measure_candidates(timings_measure_fn(timings, predictor.batch), candidates,
                                  resolution=report["settings"]["resolution"], se=report["settings"]["se"],
                                  budgets=budgets, best=by_score)
    if not measured["ran"]:
        raise ZenDeployError(measured["reason"])
    chosen = next(r for r in top if r["structure"] == measured["chosen_structure"])
    if chosen["structure"] != by_score.structure:
        measured["best_by_score"] = {"structure": by_score.structure, "score": by_score.score}
        report["best"] = {**report["best"], **chosen}
        report["structure"], report["score"] = chosen["structure"], chosen["score"]
    report["measured"] = measured
    write_json_atomic(run / "report.json", report, indent=2)
    atomic_write_text(run / "best_structure.txt", report["structure"] + "\n")
    return measured


__all__ = ["decide_from_timings", "search_tightening", "tightened_budget", "write_run_manifest"]
