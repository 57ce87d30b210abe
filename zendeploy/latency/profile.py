"""Build a latency table: plan units, convert them, time them in shuffled passes, fit, calibrate, write.

Method (single timings on a shared 2-core host spread by 14-21 % over minutes, so nothing rests on one timing):

1. Plan: the units of ``grid_networks`` (networks sampled from the search space, so unit shapes follow the space's
   stage and resolution schedule) plus, per unit signature, its smallest and widest variant (so the fitted model
   interpolates rather than extrapolates), de-duplicated by key.
2. Convert every unit (and every calibration network) with the export path of the target (ONNX, TFLite).
3. Time: ``passes`` passes over all units, each in a freshly shuffled order; per pass and unit: warm-up runs, then
   timed runs until both a minimum count and a minimum total time are reached; the pass's statistics (fastest run,
   p10, median, p90) are kept. A unit's ``latency_ms`` is its fastest run over all passes (a low statistic over
   passes spread in time is what resists
   noise). A fixed reference unit is re-timed every ``reference_every`` units to record clock or load drift.
4. Fit the per-family unit models (``latency/model.py``) on the measured entries.
5. Calibrate: time the calibration networks end to end the same way, predict them from the table (as a search
   would), and fit ``y = a + b * sum + c * n_units``.

Every timing is appended to ``<table>.partial.jsonl`` (fsync'd) as it is made; converted files live in
``<table>.work/``. A killed run resumes where it stopped: converted files are reused and finished (unit, pass)
timings are not repeated. The table is written atomically at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

from .. import __version__
from ..builder import ZenNet
from ..errors import LatencyTableError
from ..io import atomic_write_text
from ..progress import Progress, reporter
from ..space.structure import BlockSpec, format_structure
from ..space.units import HEAD, Unit, network_units
from .backends import Backend, TimingSettings
from .calibrate import fit_calibration
from .conversion import ConversionJob, convert_locally, file_name as _file_name, network_job, unit_job
from .model import fields_unit, fit_unit_models, unit_fields, unit_key
from .predict import LatencyPredictor
from .schema import Entry, LatencyTable, MeasurementSettings, Origin, Provenance, SpaceInfo
from .tables import save_table
from .timing import (DEFAULT_PASSES, STATISTICS, FileTimer, Journal, Timed, drift_summary, low_statistic,
                     noisy_keys, run_pass)

class Farm(Protocol):
    """What ``profile_table`` needs of a device farm (``zendeploy.distributed.farm.Farm`` is the Ray one, handed in
    by the CLI): time every file on the farm's devices into the journal, returning what a timing phase leaves."""

    def measure(self, items: dict, reference_key: str, settings: "ProfileSettings", journal: Journal,
                note: Note, work: Path) -> "Timed": ...

Note = Callable[..., None]  # note(phase, done, total, info=""): progress.reporter of the callback handed in

@dataclass
class ProfilePlan:
    units: dict[str, tuple[Unit, int]]  # key -> (unit, input resolution)
    networks: list[tuple[BlockSpec, ...]]  # calibration networks
    reference_key: str


@dataclass
class ProfileSettings:
    passes: int = DEFAULT_PASSES
    timing: TimingSettings = field(default_factory=TimingSettings)
    reference_every: int = 50
    seed: int = 0
    remeasure_spread: float = 0.15  # an entry whose pass medians spread more (max/min - 1) gets extra passes
    max_extra_passes: int = 2


def _channel_corners(units: dict[str, tuple[Unit, int]]) -> dict[str, tuple[Unit, int]]:
    """Per signature, the narrowest and the widest variant seen, so the family models cover the whole range."""
    groups: dict[tuple, list[Unit]] = {}
    for unit, res in units.values():
        sig = (unit.kind, unit.kernel, unit.kernel2, unit.stride, res, unit.se, unit.shortcut)
        groups.setdefault(sig, []).append(unit)
    extra: dict[str, tuple[Unit, int]] = {}
    for (kind, *_rest, res, _se, shortcut), members in groups.items():
        for pick in (min, max):
            i = pick(u.in_channels for u in members)
            o = i if shortcut == "identity" else pick(u.out_channels for u in members)
            m = o if kind == "conv" else (i if kind == HEAD else pick(u.mid_channels for u in members))
            if kind == HEAD:
                o = members[0].out_channels
            u0 = members[0]
            corner = Unit(kind, i, o, m, u0.kernel, u0.stride, u0.kernel2, u0.se, shortcut)
            extra[unit_key(corner, res)] = (corner, res)
    return extra


def plan_profile(grid_networks: Sequence[Sequence[BlockSpec]], calibration_networks: Sequence[Sequence[BlockSpec]],
                 resolution: int, *, num_classes: int, se: bool = False, corners: bool = True,
                 official: Sequence[tuple[Sequence[BlockSpec], bool]] = ()) -> ProfilePlan:
    """The units to measure: those of ``grid_networks`` (at the space's ``se``) and of ``official`` networks
    (``(blocks, se)``: the official ZenNets of the space, measured exactly, SE units included), plus each unit
    signature's narrowest and widest variant; and the calibration networks, timed end to end."""
    from .calibrate import MIN_CALIBRATION_NETWORKS

    if 0 < len(calibration_networks) < MIN_CALIBRATION_NETWORKS:
        raise LatencyTableError(f"{len(calibration_networks)} calibration network(s) cannot calibrate a table: the "
                                f"calibration has 3 parameters and its error is measured leave-one-out, so it needs "
                                f"at least {MIN_CALIBRATION_NETWORKS} (or 0 for none)")
    units: dict[str, tuple[Unit, int]] = {}
    for blocks, net_se in [(b, se) for b in grid_networks] + [(b, s) for b, s in official]:
        for p in network_units(blocks, resolution, se=net_se, residual=True, num_classes=num_classes):
            units.setdefault(unit_key(p.unit, p.resolution), (p.unit, p.resolution))
    if corners:
        for k, v in _channel_corners(units).items():
            units.setdefault(k, v)
    if not units:
        raise LatencyTableError("nothing to profile: no grid networks were given")
    per_family: dict[str, int] = {}
    for u, _ in units.values():
        per_family[u.kind] = per_family.get(u.kind, 0) + 1
    for blocks in calibration_networks:
        for p in network_units(blocks, resolution, se=se, num_classes=num_classes):
            measured = unit_key(p.unit, p.resolution) in units  # e.g. the one head of a fixed-width final conv
            if not measured and per_family.get(p.unit.kind, 0) < 2:
                raise LatencyTableError(f"the grid has {per_family.get(p.unit.kind, 0)} '{p.unit.kind}' unit(s), too "
                                        f"few to model the calibration networks; add grid networks that use them")
    ref = min(units, key=lambda k: (units[k][0].kind != "conv", k))  # a small, stable unit: the stem conv
    return ProfilePlan(units, [tuple(b) for b in calibration_networks], ref)


def default_plan(space, resolution: int, *, dataset: str | None = None, num_classes: int | None = None,
                 grid_networks: int = 60, calibration_networks: int = 48, min_macs: float | None = None,
                 max_macs: float | None = None) -> tuple[ProfilePlan, SpaceInfo]:
    """What ``zendeploy profile`` measures by default: the range a search of ``space`` at ``resolution`` reaches
    (``sampling.default_macs_range``, narrowed or widened by ``min_macs`` / ``max_macs``), sampled log-uniformly
    in MACs with every block type, the exact units of the space's official ZenNets at that resolution, and
    ``calibration_networks`` networks over the same range timed end to end: half with a common width profile
    (``sample_covering_networks``), half with an independent width per block (``sample_random_width_networks``;
    where the range holds too few of those, covering networks make up the count)."""
    from .sampling import (CALIBRATION_SEED, GRID_SEED, default_macs_range, official_networks,
                           sample_covering_networks, sample_random_width_networks)

    ds = space.dataset_for(resolution, dataset)
    space.check_resolution(ds, resolution)
    classes = num_classes or space.default_num_classes(ds)
    low, high = default_macs_range(space, ds, resolution, classes)
    low, high = float(min_macs or low), float(max_macs or high)
    if not 0 < low < high:
        raise LatencyTableError(f"the MACs range to profile is empty ({low:.4g} to {high:.4g}); give --min-macs "
                                f"below --max-macs")
    grid = sample_covering_networks(space, ds, grid_networks, resolution=resolution, seed=GRID_SEED, min_macs=low,
                                    max_macs=high, num_classes=classes)
    taken = [format_structure(b) for b in grid]
    mixed = sample_random_width_networks(space, ds, calibration_networks // 2, resolution=resolution,
                                         seed=CALIBRATION_SEED, min_macs=low, max_macs=high, num_classes=classes,
                                         exclude=taken, required=False) if calibration_networks >= 2 else []
    taken += [format_structure(b) for b in mixed]
    cover = calibration_networks - len(mixed)
    cal = sample_covering_networks(space, ds, cover, resolution=resolution, seed=CALIBRATION_SEED, min_macs=low,
                                   max_macs=high, num_classes=classes, exclude=taken) if cover else []
    cal = cal + mixed
    official = [(b, se) for _, b, se, _ in official_networks(space, resolution)]
    plan = plan_profile(grid, cal, resolution, num_classes=classes, se=space.se, official=official)
    info = SpaceInfo(name=space.name, resolution=resolution, num_classes=classes, dataset=ds, min_macs=low,
                     max_macs=high, description=space.description,
                     definition={} if space.source == "builtin" else space.to_dict())
    return plan, info


def _input_shape(batch: int, channels: int, res: int) -> tuple[int, int, int, int]:
    return (batch, channels, res, res)


def _entry(key: str, unit: Unit, res: int, recs: list[dict], origin: Origin, field: str) -> Entry:
    meds = [r["stats"]["median_ms"] for r in recs]
    return Entry(key=key, unit=unit_fields(unit, res), latency_ms=low_statistic([r["stats"] for r in recs], field),
                 median_ms=statistics.median(meds),
                 p10_ms=statistics.median(r["stats"]["p10_ms"] for r in recs),
                 p90_ms=statistics.median(r["stats"]["p90_ms"] for r in recs),
                 std_ms=statistics.median(r["stats"]["std_ms"] for r in recs),
                 samples=sum(r["stats"]["n"] for r in recs), pass_medians_ms=meds, origin=origin)


def conversion_jobs(plan: ProfilePlan, batch: int, suffix: str, space: SpaceInfo) -> dict[str, ConversionJob]:
    """Every file a table needs: its units (sorted by key), then its calibration networks, keyed as in the journal."""
    jobs = {key: unit_job(key, unit, res, batch, suffix) for key, (unit, res) in sorted(plan.units.items())}
    for blocks in plan.networks:
        key = f"net|{format_structure(blocks)}"
        jobs[key] = network_job(key, blocks, space.resolution, batch, space.num_classes, suffix)
    return jobs


class LocalExecutor:
    """Conversion on this host, one file after the other (the default)."""

    notes: tuple[str, ...] = ()

    def convert(self, converter, jobs, work: Path, progress: Note, *, done_before: int = 0,
                total: int | None = None) -> None:
        convert_locally(converter, jobs, work, progress, done_before=done_before, total=total)

    def quiet(self):
        return contextlib.nullcontext()


LOCAL = LocalExecutor()
Executor = LocalExecutor  # the protocol: convert(...), quiet(), notes


def _time_here(backend: Backend, items: dict[str, Path], reference_key: str, settings: ProfileSettings,
               journal: Journal, note: Note) -> Timed:
    """Time every file here in ``settings.passes`` shuffled passes (skipping timings the journal holds), re-time the
    reference unit every ``reference_every`` timings, then extra passes for noisy entries."""
    from profilers.common import environment_fingerprint

    keys = list(items)
    timer = FileTimer(backend, items, settings.timing)
    drift: list[float] = []
    n_jobs = settings.passes * len(keys)
    state = {"count": sum(1 for k in keys for p in range(settings.passes) if journal.has(k, p)), "since_ref": 0}

    def record(key: str, p: int, stats) -> None:
        journal.add({"key": key, "pass": p, "stats": stats.to_dict()})
        state["count"] += 1
        state["since_ref"] += 1
        if state["since_ref"] >= settings.reference_every:
            state["since_ref"] = 0
            drift.append(timer(reference_key).median_ms)
        note("time", state["count"], n_jobs)

    states: list[dict] = []  # the device's clocks / temperature after each pass timed in this run (T4: NVML)

    def read_state(p: int) -> None:
        state = backend.device_state()
        if state is not None:
            states.append({"pass": p, **state})

    for p in range(settings.passes):
        run_pass(keys, p, timer, record, seed=settings.seed, skip=journal.has)
        read_state(p)
    for extra in range(settings.max_extra_passes):  # re-measure noisy entries in extra shuffled passes
        p = settings.passes + extra
        noisy = noisy_keys(journal, keys, settings.remeasure_spread, p)
        if not noisy:
            break
        done = [sum(journal.has(k, p) for k in noisy)]

        def record_extra(key: str, q: int, stats, label=f"re-time {extra + 1}") -> None:
            journal.add({"key": key, "pass": q, "stats": stats.to_dict()})
            done[0] += 1
            note(label, done[0], len(noisy))

        run_pass(noisy, p, timer, record_extra, seed=settings.seed, skip=journal.has)
        read_state(p)
    timer.close()
    ref = [journal.done[(reference_key, p)]["stats"]["median_ms"] for p in range(settings.passes)] + drift
    host = environment_fingerprint()
    if states:
        host["device_state"] = states
    return Timed(provenance=backend.provenance(), host=host, drift=drift_summary(reference_key, ref),
                 notes=backend.notes())


def profile_table(
    backend: Backend,
    plan: ProfilePlan,
    out_path: str | os.PathLike,
    *,
    space: SpaceInfo,
    settings: ProfileSettings | None = None,
    progress: Progress | None = None,
    keep_work: bool = False,
    convert_only: bool = False,
    executor: "Executor | None" = None,
    farm: Farm | None = None,
) -> LatencyTable | None:
    """Measure ``plan`` on ``backend`` and write the table to ``out_path`` (resumable; see module docstring).

    ``convert_only``: stop after converting (returns None); a later call with the same plan times the files. Convert
    on a busy machine, time in a quiet window.
    ``executor``: where conversion runs (default: here; ``zendeploy.distributed.conversion.RayExecutor`` fans it out
    on a Ray cluster and keeps this host quiet while it times). ``farm``: time on a device farm instead of here
    (``zendeploy.distributed.farm.Farm``); ``backend`` is then a ``BackendSpec`` (nothing is timed on this host).
    """
    settings = settings or ProfileSettings()
    out = Path(out_path)
    work = out.with_name(out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    journal = Journal(out.with_name(out.name + ".partial.jsonl"))
    meta_path = work / "plan.json"
    meta = {"device": backend.device, "batch": backend.batch, "threads": backend.threads, "space": space.name,
            "precision": backend.precision, "timing": "farm" if farm is not None else "here",
            "resolution": space.resolution, "units": sorted(plan.units),
            "networks": [format_structure(n) for n in plan.networks]}
    if meta_path.exists() and json.loads(meta_path.read_text()) != meta:
        raise LatencyTableError(f"'{work}' holds an unfinished run with other settings; delete it (and "
                                f"{journal.path.name}) to start over, or rerun with the same options to resume")
    atomic_write_text(meta_path, json.dumps(meta))
    note = reporter(progress)
    started = dt.datetime.now(dt.timezone.utc)

    # 1. convert (files are reused on resume), here or on a cluster (``executor``)
    jobs = conversion_jobs(plan, backend.batch, backend.converter.suffix, space)
    items = {key: work / job.file_name for key, job in jobs.items()}
    nets = {key: job.blocks for key, job in jobs.items() if job.blocks is not None}
    todo = [job for job in jobs.values() if not items[job.key].exists()]
    note("convert", len(jobs) - len(todo), len(jobs))
    (executor or LOCAL).convert(backend.converter, todo, work, note, done_before=len(jobs) - len(todo),
                                total=len(jobs))
    if convert_only:
        return None

    # 2. time, in shuffled passes: on this host (in a quiet phase: nothing else of ours runs), or on a device farm
    if farm is not None:
        timed = farm.measure(items, plan.reference_key, settings, journal, note, work)
    else:
        with (executor or LOCAL).quiet():
            timed = _time_here(backend, items, plan.reference_key, settings, journal, note)

    # 3. entries, unit models
    entries = []
    for key, (unit, res) in sorted(plan.units.items()):
        recs = [journal.done[(key, p)] for p in journal.passes_of(key)]
        entries.append(_entry(key, unit, res, recs, "grid", backend.pass_statistic))
    prov_fields = timed.provenance
    measurement = MeasurementSettings(
        warmup_runs=settings.timing.warmup_runs, min_runs=settings.timing.min_runs,
        min_time_s=settings.timing.min_time_s, passes=settings.passes,
        statistic=STATISTICS[backend.pass_statistic],
        order=f"every pass over all units in a new shuffled order; entries whose pass medians spread more than "
              f"{settings.remeasure_spread:.0%} re-timed in up to {settings.max_extra_passes} extra passes",
        reference_model=plan.reference_key,
        reference_every=settings.reference_every)
    provenance = Provenance(**prov_fields, precision=backend.precision, batch=backend.batch,
                            date=started.isoformat(timespec="seconds"), zendeploy_version=__version__,
                            host=timed.host, measurement=measurement, drift=timed.drift, notes=list(timed.notes))
    if executor is not None and executor.notes:
        provenance.notes.extend(executor.notes)
    table = LatencyTable(provenance=provenance, space=space, entries=entries, unit_models=fit_unit_models(entries))

    # 4. calibration on networks measured end to end, predicted the way a search predicts them
    if len(nets) >= 3:
        measured = [low_statistic([journal.done[(key, p)]["stats"] for p in journal.passes_of(key)], backend.pass_statistic)
                    for key in nets]
        table.calibration = calibrate(table, list(nets.values()), measured)
        from .calibrate import FEW_CALIBRATION_NETWORKS

        if len(nets) < FEW_CALIBRATION_NETWORKS:
            table.provenance.notes.append(
                f"calibrated on only {len(nets)} networks: its leave-one-out error is itself uncertain "
                f"(use {FEW_CALIBRATION_NETWORKS} or more)")
    from .coverage import compute_coverage

    table.coverage = compute_coverage(table)
    save_table(table, out)
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
        journal.path.unlink(missing_ok=True)
    return table


def calibrate(table: LatencyTable, networks: Sequence[Sequence[BlockSpec]], measured_ms: Sequence[float]):
    """Fit ``y = a + b * sum + c * n_units [+ d * boundary elements] [+ e * weights beyond the cache]`` of
    ``table``'s unit predictions to networks measured end to end (the boundary term from ``IO_TERM_MIN_NETWORKS``
    networks on, the weights term from ``WEIGHTS_TERM_MIN_NETWORKS`` when it lowers the leave-one-out error)."""
    predictor = LatencyPredictor(table.model_copy(update={"calibration": None, "anchor": None}))
    preds = [predictor.predict(blocks, table.space.resolution, num_classes=table.space.num_classes)
             for blocks in networks]
    from .calibrate import IO_TERM_MIN_NETWORKS

    io = [p.boundary_melems for p in preds] if len(preds) >= IO_TERM_MIN_NETWORKS else None
    return fit_calibration([p.raw_sum_ms for p in preds], [p.n_units for p in preds], list(measured_ms),
                           [format_structure(b) for b in networks], boundary_melems=io,
                           weights_mb=[p.weights_mb for p in preds])


def refit_table(table: LatencyTable, extra_networks: tuple[Sequence[str], Sequence[float]] = ((), ()),
                extra_entries: Sequence[Entry] = ()) -> LatencyTable:
    """The same measurements, fitted again by this version of zendeploy: new unit models from the entries and a new
    calibration from the calibration networks stored with their measured latencies, plus ``extra_networks``
    (structures, ms per batch) measured later on the same device (``latency/sidecar.py``), and ``extra_entries``
    timed on demand by searches (``latency/ondemand.py``). An anchor is dropped (``refit.refit_file`` fits it again
    from its own measurements). Nothing is timed."""
    from ..space.structure import parse_structure

    refitted = table.model_copy(deep=True)
    known = refitted.entry_map()
    added_units = [e for e in extra_entries if e.key not in known]
    refitted.entries = list(refitted.entries) + added_units
    if added_units:
        refitted.provenance.notes.append(f"{len(added_units)} unit(s) timed on demand by searches joined the entries")
    refitted.unit_models = fit_unit_models(refitted.entries)
    refitted.calibration = None
    old = table.calibration
    from .calibrate import MIN_CALIBRATION_NETWORKS
    from .coverage import compute_coverage

    nets = dict(zip(old.structures, old.measured_ms)) if old is not None else {}
    added = 0
    for s, ms in zip(*extra_networks):
        added += s not in nets
        nets[s] = min(ms, nets.get(s, ms))
    if len(nets) >= MIN_CALIBRATION_NETWORKS:
        refitted.calibration = calibrate(refitted, [parse_structure(s) for s in nets], list(nets.values()))
    if added:
        refitted.provenance.notes.append(f"{added} network(s) measured after profiling (the closed loop of searches, "
                                         f"the demo) joined the calibration")
    refitted.anchor = None  # fitted on the old models: refit_file anchors the refitted table again
    refitted.coverage = compute_coverage(refitted)
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    prefix = "unit models and calibration refitted from the stored measurements by "
    notes = [n for n in refitted.provenance.notes if not n.startswith(prefix)]  # the latest refit is what holds
    refitted.provenance.notes = notes + [f"{prefix}zendeploy {__version__} on {stamp}"]
    return refitted


def measure_networks(backend: Backend, networks: Sequence[Sequence[BlockSpec]], resolution: int, *,
                     num_classes: int, passes: int = DEFAULT_PASSES, timing: TimingSettings | None = None, workdir: Path,
                     seed: int = 0, progress: Progress | None = None,
                     se: bool | Sequence[bool] = False) -> list[float]:
    """End-to-end latency (``backend.pass_statistic``, minimum over passes) of whole networks, in shuffled passes
    (``se``: one flag for all networks, or one per network)."""
    timing = timing or TimingSettings()
    note = reporter(progress)
    workdir.mkdir(parents=True, exist_ok=True)
    ses = [bool(se)] * len(networks) if isinstance(se, bool) else [bool(x) for x in se]
    paths = []
    for i, blocks in enumerate(networks):
        tag = "|se" if ses[i] else ""
        path = workdir / _file_name("net|" + format_structure(blocks) + f"|{num_classes}{tag}", backend.suffix)
        if not path.exists():
            model = ZenNet(tuple(blocks), num_classes=num_classes, se=ses[i]).eval()
            backend.convert(model, _input_shape(backend.batch, blocks[0].in_channels, resolution), path)
        paths.append(path)
        note("convert", i + 1, len(networks))
    keys = [str(i) for i in range(len(networks))]
    timer = FileTimer(backend, dict(zip(keys, paths)), timing)
    best = {key: float("inf") for key in keys}
    done = [0]

    def record(key: str, p: int, stats) -> None:
        best[key] = min(best[key], getattr(stats, backend.pass_statistic))
        done[0] += 1
        note("time", done[0], passes * len(networks))

    for p in range(passes):
        run_pass(keys, p, timer, record, seed=seed)
    timer.close()
    return [best[key] for key in keys]


__all__ = ["DEFAULT_PASSES", "STATISTICS", "calibrate", "default_plan", "low_statistic", "refit_table", "ProfilePlan", "ProfileSettings", "plan_profile", "profile_table", "measure_networks", "HEAD",
           "fields_unit"]
