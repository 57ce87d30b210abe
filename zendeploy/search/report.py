"""What a search run writes: ``best_structure.txt``, ``report.json``, ``top_k.json`` and ``population.png``.

``best_structure.txt`` holds the official structure string (one line), so ``zendeploy info/score/latency
predict/export --run DIR`` read it directly. ``report.json`` states every budget with its unit and batch, the chosen
network's score, parameters, MACs, layers and predicted latency with its interval, the settings, the versions, the
search time and the evaluation counts, and whether the top-k candidates were measured end to end.
"""

from __future__ import annotations

import math
import platform
from pathlib import Path
from typing import Any, Sequence

from ..cost import format_count
from ..errors import ZenDeployError, first_line
from ..io import atomic_write_text
from .budgets import Budgets
from .checkpoint import write_json_atomic


def versions() -> dict:
    from .. import __version__

    out = {"zendeploy": __version__, "python": platform.python_version(), "platform": platform.platform()}
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return out


def measure_candidates(measure_fn, candidates: Sequence, *, resolution: int, se: bool, budgets: Budgets, best,
                       skip_reason: str | None = None) -> dict:
    """Closing the loop: measure the top-k end to end with ``measure_fn`` (the device backend) when given."""
    if measure_fn is None:
        return {"ran": False, "reason": skip_reason or "no end-to-end measurement backend was given",
                "chosen_meets_budget_measured": None}
    from ..space.structure import parse_structure

    results: list[dict[str, Any]] = [{"structure": c.structure, "predicted_ms": c.latency_ms} for c in candidates]
    name = getattr(measure_fn, "name", getattr(measure_fn, "__name__", type(measure_fn).__name__))
    try:
        outs = list(measure_fn([parse_structure(c.structure) for c in candidates], resolution, se=se))
    except ZenDeployError as exc:
        return {"ran": False, "backend": name, "reason": f"measurement failed: {first_line(exc)}",
                "chosen_meets_budget_measured": None}
    if len(outs) != len(results):
        return {"ran": False, "backend": name, "reason": f"measurement returned {len(outs)} results for "
                f"{len(results)} networks", "chosen_meets_budget_measured": None}
    for entry, out in zip(results, outs):
        entry["measured_ms"] = float(out["latency_ms"] if isinstance(out, dict) else out)
        if isinstance(out, dict):
            entry["details"] = {k: v for k, v in out.items() if k != "latency_ms"}
        if budgets.latency_ms is not None:
            entry["meets_budget_measured"] = entry["measured_ms"] <= budgets.latency_ms
    chosen = next((r for r in results if r["structure"] == best.structure), None)
    chosen_ms = chosen.get("measured_ms") if chosen else None
    meets = None
    decision = "no latency budget: the best-scoring network is kept"
    if budgets.latency_ms is not None and chosen_ms is not None:
        meets = chosen_ms <= budgets.latency_ms
        # the closed loop decides: candidates are in score order, so the first that meets the budget as measured
        # is the best-scoring network that does
        pick = next((r for r in results if r["meets_budget_measured"]), None)
        if meets:
            decision = "the best-scoring network meets the budget as measured"
        elif pick is not None:
            decision = (f"the best-scoring network measured {chosen_ms:.4g} ms, over the budget; chose the "
                        f"best-scoring of the top-{len(results)} that meets it as measured")
            chosen, chosen_ms, meets = pick, pick["measured_ms"], True
        else:
            decision = (f"none of the top-{len(results)} meets the budget as measured (fastest "
                        f"{min(r['measured_ms'] for r in results):.4g} ms); the best-scoring network is kept and "
                        f"does not meet it")
    return {"ran": True, "backend": name, "unit": "ms per image", "results": results,
            "chosen_structure": chosen["structure"] if chosen else None, "chosen_measured_ms": chosen_ms,
            "chosen_meets_budget_measured": meets, "decision": decision}


def _record(c) -> dict:
    d = {"structure": c.structure, "score": c.score, "valid": c.valid, "params": c.params, "macs": c.macs,
         "layers": c.layers}
    if c.latency is not None:
        d["latency"] = c.latency
    if not c.valid and c.reason:
        d["invalid_reason"] = c.reason
    return d


def worker_throughput(workers: dict, wall_seconds: float | None) -> list[dict]:
    """Per worker (``host:pid``): evaluations, busy seconds, evaluations per busy second, and the share of the wall
    time it was busy (``utilisation``; None after a resume, whose wall time spans earlier runs)."""
    rows = []
    for name, w in sorted(workers.items()):
        busy = float(w["seconds"])
        rows.append({"worker": name, "evaluations": int(w["evaluations"]), "busy_seconds": round(busy, 3),
                     "evaluations_per_busy_second": round(w["evaluations"] / busy, 3) if busy > 0 else None,
                     "utilisation": round(busy / wall_seconds, 3) if wall_seconds else None})
    return rows


def build_report(result, *, settings: dict, budgets: Budgets, predictor, smallest: dict, measured: dict,
                 top_k: int) -> dict:
    best = result.best
    from .budgets import predictor_batch

    lat_batch = predictor_batch(predictor)
    device = getattr(predictor, "device", None) if predictor is not None else None
    best_d = _record(best)
    best_d["params_text"] = format_count(best.params)
    best_d["macs_text"] = format_count(best.macs)
    if best.latency is not None:
        lat = dict(best.latency)
        lat["unit"] = f"ms per image{f' at batch {lat_batch}' if lat_batch else ''}{f' on {device}' if device else ''}"
        best_d["latency"] = lat
    its = result.iterations
    return {
        "best": best_d,
        "structure": best.structure,
        "score": best.score,
        "proxy": settings["proxy"],
        "budgets": budgets.describe(latency_batch=lat_batch, device=device),
        "settings": settings,
        "versions": versions(),
        "search_seconds": round(result.seconds, 3),
        "iterations": its,
        "evaluations": result.evaluations,
        "cache_hits": result.cache_hits,
        "accepted": result.accepted,
        "rejected": {"total": sum(result.rejected.values()), **result.rejected},
        "acceptance_rate": (result.accepted / its) if its else 0.0,
        "evaluations_per_second": (result.evaluations / result.seconds) if result.seconds > 0 else None,
        "resumed": result.resumed,
        "workers": worker_throughput(result.workers, result.seconds if not result.resumed else None),
        "requeued": result.requeued,
        "population_size": len(result.population),
        "top_k": [_record(c) for c in result.top(top_k)],
        "smallest_network": smallest,
        "measured": measured,
    }


def write_run(out_dir: Path, result, *, scores: dict, budgets: Budgets, top_k: int, plot: bool,
              has_latency: bool) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    atomic_write_text(out_dir / "best_structure.txt", result.best.structure + "\n")
    files.append("best_structure.txt")
    write_json_atomic(out_dir / "top_k.json", [_record(c) for c in result.top(top_k)], indent=2)
    files.append("top_k.json")
    if plot:
        plot_population(out_dir / "population.png", result, scores, budgets, has_latency=has_latency)
        files.append("population.png")
    result.report["files"] = files + ["report.json", "checkpoint.json"]
    write_json_atomic(out_dir / "report.json", result.report, indent=2)
    files.append("report.json")
    return files


def plot_population(path: Path, result, scores: dict, budgets: Budgets, *, has_latency: bool) -> None:
    """Latency (or MACs) against score: every scored candidate, the final population, the budget, the chosen net."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    use_latency = has_latency
    # x axis: predicted latency with a table; else the budgeted size measure (MACs unless only params are budgeted)
    size_key = "params" if (budgets.params is not None and budgets.macs is None) else "macs"

    def xval(e) -> float | None:
        if use_latency:
            lat = e.get("latency") if isinstance(e, dict) else e.latency
            return None if lat is None else float(lat["latency_ms"])
        m = e.get(size_key) if isinstance(e, dict) else getattr(e, size_key)
        return None if m is None else m / 1e6

    fig = Figure(figsize=(7, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    pts = [(xval(e), e["score"]) for e in scores.values() if e.get("valid") and xval(e) is not None]
    if pts:
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=6, c="0.75", label=f"scored ({len(pts)})")  # type: ignore[arg-type]
    pop = [(xval(c), c.score) for c in result.population if c.valid and xval(c) is not None]
    if pop:
        ax.scatter([p[0] for p in pop], [p[1] for p in pop], s=12, c="tab:blue", label=f"population ({len(pop)})")  # type: ignore[arg-type]
    bx = xval(result.best)
    if bx is not None and math.isfinite(result.best.score):
        ax.scatter([bx], [result.best.score], s=160, marker="*", c="tab:red", zorder=5, label="chosen")
    if use_latency and budgets.latency_ms is not None:
        ax.axvline(budgets.latency_ms, color="tab:red", ls="--", lw=1, label=f"budget {budgets.latency_ms:g} ms")
    elif not use_latency and getattr(budgets, size_key) is not None:
        limit = getattr(budgets, size_key)
        ax.axvline(limit / 1e6, color="tab:red", ls="--", lw=1, label=f"budget {format_count(limit)}")
    ax.set_xlabel("predicted latency (ms per image)" if use_latency else
                  ("parameters (millions)" if size_key == "params" else "MACs (millions)"))
    ax.set_ylabel(f"score ({result.report.get('proxy', 'proxy')})")
    ax.set_title(f"{result.report['settings']['space']} @ {result.report['settings']['resolution']}: "
                 f"{result.evaluations} evaluations", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(str(path))
