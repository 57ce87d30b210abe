"""``zendeploy demo``: the whole product on this machine's CPU, in a few minutes, with built-in defaults.

1. profile: a small latency table for the CIFAR ResNet space at resolution 32 on ONNX Runtime CPU (1 thread);
2. search: the Zen-NAS evolution under a latency budget from that table (default: the predicted latency of the
   space's initial structure, so the search must find a more expressive net at the same speed);
3. export: the winner to ONNX and TFLite, each checked for parity against PyTorch and timed on this CPU;
4. verify: the chosen net measured end to end against the budget and against the table's prediction.

Every stage writes into one folder (default ``runs/demo``) and resumes: a rerun reuses the finished table and
continues the search from its checkpoint, so an interrupted demo loses no work. ``demo.json`` sums it all up.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import LatencyTableError

Progress = Callable[[str, int, int], None]  # (phase, done, total)

TABLE_NAME = "latency_table.json"


@dataclass
class DemoSettings:
    device: str = "cpu"
    space: str = "resnet"
    resolution: int = 32
    grid_networks: int = 16
    calibration_networks: int = 12
    passes: int = 5
    latency_ms: float | None = None  # default: the predicted latency of the space's initial structure
    population: int = 64
    iterations: int = 5000
    proxy: str = "zen"
    batch_size: int = 16
    seed: int = 0
    top_k: int = 5
    formats: str = "onnx,tflite"
    table: str | None = None  # an existing table instead of profiling one


@dataclass
class DemoResult:
    out_dir: str
    table: str
    budget_ms: float
    budget_source: str
    structure: str
    score: float
    params: int
    macs: int
    predicted_ms: float
    predicted_sigma_ms: float
    measured_ms: float | None
    meets_budget_measured: bool | None
    prediction_error_pct: float | None
    exports: list[dict[str, Any]]
    artifacts: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(e["status"] != "failed" for e in self.exports)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def _profile(settings: DemoSettings, out: Path, progress: Progress | None) -> Path:
    """Profile the demo table into ``out/latency_table.json`` (reused when already there; resumes otherwise)."""
    from .cost import network_cost
    from .latency.backends import make_backend
    from .latency.profile import ProfileSettings, plan_profile, profile_table
    from .latency.sampling import CALIBRATION_SEED, GRID_SEED, sample_networks
    from .latency.schema import SpaceInfo, load_table
    from .search.spaces import load_space

    path = out / TABLE_NAME
    if path.exists():
        load_table(path)  # a corrupt table is an error naming the field, not silently re-profiled over
        return path
    sp = load_space(settings.space)
    ds = sp.dataset_for(settings.resolution)
    sp.check_resolution(ds, settings.resolution)
    classes = sp.default_num_classes(ds)
    cap = 4 * network_cost(sp.initial_blocks(ds), settings.resolution, num_classes=classes).macs
    grid = sample_networks(sp, ds, settings.grid_networks, resolution=settings.resolution, seed=GRID_SEED,
                           max_macs=cap, num_classes=classes)
    cal = sample_networks(sp, ds, settings.calibration_networks, resolution=settings.resolution,
                          seed=CALIBRATION_SEED, max_macs=cap, num_classes=classes)
    plan = plan_profile(grid, cal, settings.resolution, num_classes=classes, se=sp.se)
    info = SpaceInfo(name=sp.name, resolution=settings.resolution, num_classes=classes, dataset=ds,
                     max_macs=float(cap), description=sp.description)
    backend = make_backend(settings.device)
    profile_table(backend, plan, path, space=info,
                  settings=ProfileSettings(passes=settings.passes, seed=settings.seed), progress=progress)
    return path


def _default_budget(predictor, sp, resolution: int) -> float:
    """The predicted latency of the space's initial structure, rounded up to 3 significant digits."""
    ds = sp.dataset_for(resolution)
    pred = predictor.predict(sp.initial_blocks(ds), resolution, se=sp.se, num_classes=sp.default_num_classes(ds))
    digits = 2 - int(math.floor(math.log10(pred.latency_ms)))
    return math.ceil(pred.latency_ms * 10 ** digits) / 10 ** digits


def run_demo(out_dir: str | Path = "runs/demo", settings: DemoSettings | None = None, *,
             progress: Progress | None = None, search_progress: Callable | None = None,
             log: Callable[[str], None] | None = None) -> DemoResult:
    """Run profile -> search -> export -> verify into ``out_dir``; returns the summary (also ``demo.json``)."""
    from .export import export_model
    from .export._common import atomic_write_json
    from .latency import load_predictor
    from .search import Budgets, run_search
    from .search.checkpoint import CHECKPOINT_NAME
    from .search.measure import local_measure_fn

    settings = settings or DemoSettings()
    say = log or (lambda m: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    if settings.table is not None:
        table_path = Path(settings.table)
        if not table_path.is_file():
            raise LatencyTableError(f"latency table '{table_path}' does not exist")
        say(f"1/4 profile: using the existing table {table_path}")
    else:
        say(f"1/4 profile: {settings.space} space at {settings.resolution}x{settings.resolution} on "
            f"{settings.device} -> {out / TABLE_NAME}")
        table_path = _profile(settings, out, progress)
    seconds["profile"] = round(time.perf_counter() - t, 2)
    predictor = load_predictor(table_path)
    if predictor.resolution != settings.resolution:
        raise LatencyTableError(f"table '{table_path}' was measured at resolution {predictor.resolution}, the demo "
                                f"runs at {settings.resolution}")

    from .latency.validate import space_of

    space = space_of(predictor.table)  # the space the table was profiled for (a given table may be another one)
    if settings.latency_ms is not None:
        budget, budget_source = float(settings.latency_ms), "given"
    else:
        budget = _default_budget(predictor, space, settings.resolution)
        budget_source = "predicted latency of the space's initial structure"
    say(f"2/4 search: Zen-NAS evolution, {settings.iterations} iterations, latency <= {budget:g} ms "
        f"({budget_source})")
    t = time.perf_counter()
    search_dir = out / "search"
    measure_fn, reason = local_measure_fn(None, predictor, search_dir / "measure")  # the table's own device
    result = run_search(
        space, Budgets(latency_ms=budget), resolution=settings.resolution, population=settings.population,
        iterations=settings.iterations, proxy=settings.proxy, batch_size=settings.batch_size, seed=settings.seed,
        predictor=predictor, out_dir=search_dir, resume=(search_dir / CHECKPOINT_NAME).is_file(),
        top_k=settings.top_k, measure_fn=measure_fn, measure_skip_reason=reason, progress=search_progress,
    )
    seconds["search"] = round(time.perf_counter() - t, 2)
    best = result.best
    lat = result.report["best"]["latency"]
    measured = result.report["measured"]

    say(f"3/4 export: {settings.formats} with parity checks and timing")
    t = time.perf_counter()
    export_dir = out / "export"
    report = export_model(best.structure, settings.formats, output_dir=export_dir, name="demo",
                          resolution=settings.resolution, num_classes=predictor.table.space.num_classes,
                          table=table_path, log=say)
    seconds["export"] = round(time.perf_counter() - t, 2)

    say("4/4 verify: parity and measured latency against the budget and the prediction")
    measured_ms = measured.get("chosen_measured_ms")
    error = None if not measured_ms else round(100.0 * (lat["latency_ms"] - measured_ms) / measured_ms, 2)
    exports = [{"format": r.format, "status": r.status, "reason": r.reason, "file": r.file, "size_mb": r.size_mb,
                "max_rel_err": r.parity.max_rel_err if r.parity else None,
                "parity_passed": r.parity.passed if r.parity else None,
                "latency_ms": r.latency_ms, "median_ms": r.median_ms, "lut_ms": r.lut_ms, "error_pct": r.error_pct, "lut_note": r.lut_note}
               for r in report.rows]
    artifacts = {"latency table": str(table_path)}
    validation_png = Path(str(table_path).removesuffix(".json") + ".validation.png")
    if validation_png.exists():
        artifacts["table validation plot"] = str(validation_png)
    for name in result.files:
        artifacts[f"search {name}"] = str(search_dir / name)
    for r in report.rows:
        if r.file:
            artifacts[f"{r.format} model"] = r.file
    artifacts["export report"] = str(export_dir / "report.json")
    demo = DemoResult(
        out_dir=str(out), table=str(table_path), budget_ms=budget, budget_source=budget_source,
        structure=best.structure, score=best.score, params=best.params, macs=best.macs,
        predicted_ms=lat["latency_ms"], predicted_sigma_ms=lat["sigma_ms"], measured_ms=measured_ms,
        meets_budget_measured=measured.get("chosen_meets_budget_measured"), prediction_error_pct=error,
        exports=exports, artifacts=artifacts, seconds=seconds,
        settings=asdict(settings) | {"latency_ms": budget, "measure": measured.get("reason") or "ran"},
    )
    artifacts["summary"] = str(out / "demo.json")
    atomic_write_json(out / "demo.json", demo.to_dict())
    return demo


__all__ = ["DemoResult", "DemoSettings", "run_demo"]
