"""``zendeploy demo``: the whole product on this machine's CPU, in a few minutes, with built-in defaults.

1. profile: a small latency table for the CIFAR ResNet space at resolution 32 on ONNX Runtime CPU (1 thread),
   covering networks up to twice the reference ZenNet's MACs (``latency.profile.default_plan``, fewer networks);
2. reference: the official ZenNet ``zennet_cifar10_model_size05M_res32`` (its body, with the table's classes)
   measured end to end on this CPU and scored; its measured latency is the default budget;
3. search: the Zen-NAS evolution under that latency budget; the closed loop measures the top-k and chooses the
   best-scoring one that meets the budget as measured;
4. export: the chosen net to ONNX and TFLite, each checked for parity against PyTorch and timed on this CPU;
5. verify: the chosen net against the reference, side by side (Zen-Score, measured latency); ``ok`` is false when it
   does not meet the budget as measured or an export failed.

Every stage writes into one folder (default ``runs/demo``) and resumes: a rerun reuses the finished table and
continues the search from its checkpoint, so an interrupted demo loses no work. ``demo.json`` sums it all up.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import LatencyTableError
from .progress import Progress


TABLE_NAME = "latency_table.json"


@dataclass
class DemoSettings:
    device: str = "cpu"
    space: str = "resnet"
    resolution: int = 32
    grid_networks: int = 16
    calibration_networks: int = 12
    passes: int = 5
    reference: str = "zennet_cifar10_model_size05M_res32"  # its measured latency is the default budget
    macs_headroom: float = 2.0  # the demo table covers networks up to this times the reference's MACs
    latency_ms: float | None = None  # default: the reference ZenNet's measured latency
    # the search enforces prediction + margin * sigma <= budget: the default strategy grows every child onto the
    # predicted frontier, so with margin 0 about half of the top-k measure over a budget they are predicted to meet
    latency_margin: float = 1.0
    # the official loop: on the demo's small table (16 grid networks) the budget-aware default finds the networks the
    # table under-predicts most (measured 2.2x its prediction in a run here), and the closed loop then rejects them
    strategy: str = "official"
    population: int = 64
    iterations: int = 5000
    max_evaluations: int | None = 400  # Zen-Scores computed at most (keeps the demo to minutes)
    score_repeats: int = 4  # fresh repeats when the chosen net and the reference are scored side by side
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
    reference: dict[str, Any] = field(default_factory=dict)  # the official ZenNet: name, structure, score, ms
    rescored: float | None = None  # the chosen net's Zen-Score, mean of fresh repeats (as the reference's)
    decision: str = ""  # what the closed loop decided

    @property
    def ok(self) -> bool:
        """Every export worked and the chosen net meets its budget as measured."""
        return all(e["status"] != "failed" for e in self.exports) and self.meets_budget_measured is True

    @property
    def problems(self) -> list[str]:
        out = [f"{e['format']} export failed: {e['reason']}" for e in self.exports if e["status"] == "failed"]
        if self.meets_budget_measured is not True:
            out.append(f"the chosen net measured {self.measured_ms} ms, not within the {self.budget_ms:g} ms budget"
                       if self.measured_ms is not None else "the chosen net was not measured")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok, "problems": self.problems}


def _profile(settings: DemoSettings, out: Path, progress: Progress | None) -> Path:
    """Profile the demo table into ``out/latency_table.json`` (reused when already there; resumes otherwise)."""
    from .cost import network_cost
    from .latency.profile_job import ProfileRequest, prepare_profile
    from .latency.tables import load_table
    from .space.spaces import load_space
    from .space.structure import parse_structure
    from .zoo import get_zoo

    path = out / TABLE_NAME
    if path.exists():
        load_table(path)  # a corrupt table is an error naming the field, not silently re-profiled over
        return path
    sp = load_space(settings.space)
    ds = sp.dataset_for(settings.resolution)
    ref = network_cost(parse_structure(get_zoo(settings.reference).structure), settings.resolution,
                       num_classes=sp.default_num_classes(ds)).macs
    job = prepare_profile(ProfileRequest(device=settings.device, space=settings.space, resolution=settings.resolution,
                                         grid_networks=settings.grid_networks,
                                         calibration_networks=settings.calibration_networks,
                                         max_macs=settings.macs_headroom * ref, passes=settings.passes,
                                         seed=settings.seed, output=path))  # what `zendeploy profile` runs
    job.run(progress=progress)
    return path


def _reference(settings: DemoSettings, predictor, table_path: Path, out: Path, progress) -> dict:
    """The reference ZenNet measured end to end on the table's device (the table's statistic) and scored; cached in
    ``out/reference.json`` so a rerun keeps the budget it started with."""
    import json

    from .io import atomic_write_text
    from .latency.backends import backend_for
    from .latency.profile import measure_networks
    from .latency.sidecar import append_networks
    from .space.structure import parse_structure
    from .zoo import get_zoo

    from .latency.sampling import official_networks
    from .latency.validate import space_of
    from .space.structure import format_structure

    path = out / "reference.json"
    table = predictor.table
    space = space_of(table)
    name = settings.reference
    blocks = parse_structure(get_zoo(name).structure)
    if not set(b.name for b in blocks[1:-1]) <= set(space.block_types):  # a table of another space (--table)
        zennets = official_networks(space, table.space.resolution)
        if zennets:
            name, blocks = zennets[0][0], zennets[0][1]
        else:
            name = f"the initial structure of space '{space.name}'"
            blocks = space.initial_blocks(table.space.dataset or space.dataset_for(table.space.resolution))
    structure = format_structure(blocks)
    if path.exists():
        ref = json.loads(path.read_text())
        if ref.get("structure") == structure and ref.get("table") == str(table_path):
            return ref
    backend = backend_for(table)
    classes = table.space.num_classes
    per_batch = measure_networks(backend, [blocks], settings.resolution, num_classes=classes, passes=settings.passes,
                                 workdir=out / "reference", progress=progress)[0]
    from .latency.schema import backend_fingerprint

    append_networks(table_path, table, [blocks], [per_batch], resolution=settings.resolution, num_classes=classes,
                    source=f"demo reference {name}", fingerprint=backend_fingerprint(backend))
    score = _zen(blocks, settings)
    pred = predictor.predict(blocks, settings.resolution, num_classes=classes)
    ref = {"name": name, "structure": structure, "table": str(table_path),
           "measured_ms": per_batch / table.provenance.batch, "predicted_ms": pred.latency_ms, "zen_score": score,
           "num_classes": classes, "unit": "ms per image"}
    atomic_write_text(path, json.dumps(ref, indent=1) + "\n")
    return ref


def _zen(blocks, settings: DemoSettings) -> float:
    """Zen-Score, mean of ``score_repeats`` fresh repeats at the search's batch size (same seeds for every net)."""
    from .proxies import compute_proxy

    return float(compute_proxy("zen", blocks, resolution=settings.resolution, batch_size=settings.batch_size,
                               repeats=settings.score_repeats, seed=12345).score)


def run_demo(out_dir: str | Path = "runs/demo", settings: DemoSettings | None = None, *,
             progress: Progress | None = None, search_progress: Callable | None = None,
             log: Callable[[str], None] | None = None) -> DemoResult:
    """Run profile -> search -> export -> verify into ``out_dir``; returns the summary (also ``demo.json``)."""
    from .export import ExportConfig, export
    from .convert.common import atomic_write_json
    from .latency import load_predictor
    from .search.checkpoint import CHECKPOINT_NAME
    from .search.job import SearchRequest, prepare_search
    from .space.structure import parse_structure

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
        say(f"1/5 profile: using the existing table {table_path}")
    else:
        say(f"1/5 profile: {settings.space} space at {settings.resolution}x{settings.resolution} on "
            f"{settings.device} -> {out / TABLE_NAME}")
        table_path = _profile(settings, out, progress)
    seconds["profile"] = round(time.perf_counter() - t, 2)
    predictor = load_predictor(table_path)
    if predictor.resolution != settings.resolution:
        raise LatencyTableError(f"table '{table_path}' was measured at resolution {predictor.resolution}, the demo "
                                f"runs at {settings.resolution}")

    from .latency.validate import space_of

    space = space_of(predictor.table)  # the space the table was profiled for (a given table may be another one)
    t = time.perf_counter()
    say(f"2/5 reference: an official ZenNet (default {settings.reference}) measured end to end on "
        f"{predictor.device} and scored")
    reference = _reference(settings, predictor, table_path, out, progress)
    seconds["reference"] = round(time.perf_counter() - t, 2)
    if settings.latency_ms is not None:
        budget, budget_source = float(settings.latency_ms), "given"
    else:
        budget = float(f"{reference['measured_ms']:.4g}")
        budget_source = f"measured latency of {reference['name']} on this machine"
    say(f"3/5 search: Zen-NAS evolution, up to {settings.iterations} iterations and {settings.max_evaluations} "
        f"evaluations, latency <= {budget:g} ms per image ({budget_source}; prediction + "
        f"{settings.latency_margin:g} sigma)")
    t = time.perf_counter()
    search_dir = out / "search"
    job = prepare_search(SearchRequest(
        search_dir, space=space, res=settings.resolution, latency_ms=budget, latency_margin=settings.latency_margin,
        table=table_path, population=settings.population, iterations=settings.iterations,
        max_evaluations=settings.max_evaluations, proxy=settings.proxy, batch_size=settings.batch_size,
        seed=settings.seed, strategy=settings.strategy, top_k=settings.top_k,
        resume=(search_dir / CHECKPOINT_NAME).is_file(),
        anchor=None if settings.table is not None else 0))  # a given table is re-anchored to this host's speed
    result, _ = job.run(progress=search_progress)
    seconds["search"] = round(time.perf_counter() - t, 2)
    best = result.best
    lat = result.report["best"]["latency"]
    measured = result.report["measured"]

    say(f"4/5 export: {settings.formats} with parity checks and timing")
    t = time.perf_counter()
    export_dir = out / "export"
    report = export(best.structure, ExportConfig(settings.formats, output_dir=export_dir, name="demo",
                                                 resolution=settings.resolution,
                                                 num_classes=predictor.table.space.num_classes, table=table_path),
                    log=say)
    seconds["export"] = round(time.perf_counter() - t, 2)

    say("5/5 verify: the chosen net against the reference and the budget, as measured")
    measured_ms = measured.get("chosen_measured_ms")
    error = None if not measured_ms else round(100.0 * (lat["latency_ms"] - measured_ms) / measured_ms, 2)
    exports = [{"format": r.format, "status": r.status, "reason": r.reason, "file": r.file, "size_mb": r.size_mb,
                "max_rel_err": r.parity.max_rel_err if r.parity else None,
                "parity_passed": r.parity.passed if r.parity else None,
                "latency_ms": r.latency_ms, "median_ms": r.median_ms, "lut_ms": r.lut_ms, "error_pct": r.error_pct,
                "lut_note": r.lut_note}
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
        reference=reference, rescored=_zen(parse_structure(best.structure), settings),
        decision=measured.get("decision", ""),
    )
    artifacts["summary"] = str(out / "demo.json")
    atomic_write_json(out / "demo.json", demo.to_dict())
    return demo


__all__ = ["DemoResult", "DemoSettings", "run_demo"]
