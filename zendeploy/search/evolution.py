"""The search loop: a steady-state population whose children come from a strategy (``strategies.py``: the
budget-aware default, the official Zen-NAS loop, random search), plus what the official code lacks: a score cache,
budgets checked from tables, parallel scoring, checkpoints and resume.

Official loop (``evolution_search.py``, ``strategy='official'``), reproduced with ``step=1``:

    for each iteration:
        while len(population) > population_size: remove the member with the lowest score (first one on ties)
        if len(population) <= 10: child = mutate(initial structure, 1 replacement)
        else:                     child = mutate(uniformly random member, 2 replacements)
        if layers / params / MACs / latency over budget: continue        (the iteration still counts)
        score the child; append it to the population                      (duplicates allowed)
    best = the member with the highest score (first one on ties)

Every strategy shares the eviction, the budget check, the scoring and the choice of the best; only where a child
comes from differs.

``iterations`` counts children generated (rejected ones included), as the official ``evolution_max_iter`` does.

Additions (none of them changes what a serial ``step=1`` official run does with a given seed):

- Scores are cached by structure string: a duplicate child is appended with its cached score and never scored again.
  Each candidate's proxy seed is derived from the search seed and the structure (SHA-256), so a structure's score
  does not depend on when, where or in which order it is computed.
- ``step`` > 1 generates ``step`` accepted children from the same population snapshot before scoring them together
  (by the ``scorer`` handed in: ``workers`` local processes, or ``step`` Ray tasks in flight with
  ``zendeploy.distributed.scoring.RayScorer``), then appends them in order. Results depend on ``step``, never on
  ``workers`` or the cluster (``zendeploy.search.scoring``).
- Proxies run with ``threads_per_eval`` torch threads (default 1) in the main process and in workers alike: the
  number of threads changes convolution rounding, and scores must not depend on the worker count.
- Checkpoints (atomic) every ``checkpoint_every`` seconds and on interruption; ``resume=True`` continues from the last
  completed step and gives the same result as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from ..cost import format_count
from ..errors import BudgetError, SearchSpaceError
from ..progress import ProgressEvent
from ..space.spaces import SearchSpace, load_space
from ..space.structure import BlockSpec, format_structure, parse_structure
from . import checkpoint as ckpt
from .budgets import (
    BudgetChecker, Budgets, check_feasible, check_table, predictor_batch,
)
from .config import SearchConfig, SearchHooks, split_options
from .scoring import LocalScorer, make_requests
from .strategies import canonical_strategy, make_strategy

CHECK_CACHE_SIZE = 200_000  # budget verdicts kept by structure (cleared when full)

# measure_fn(networks, resolution, *, se) -> one end-to-end latency per network, in ms per image (a float, or a dict
# with 'latency_ms'); networks is a list of block tuples (the top-k), measured together so a backend can interleave
# them. Give it a ``name`` attribute for the report.
MeasureFn = Callable[..., Sequence[Any]]


@dataclass
class Candidate:
    structure: str
    score: float
    valid: bool
    params: int
    macs: int
    layers: int
    latency: Optional[dict] = None
    proxy_seconds: float = 0.0
    reason: Optional[str] = None

    @property
    def latency_ms(self) -> Optional[float]:
        return None if self.latency is None else self.latency.get("latency_ms")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class ProgressInfo(ProgressEvent):
    """The search's progress event: ``phase`` "search", ``done`` = ``iteration`` of ``total`` = ``iterations``."""

    iteration: int
    iterations: int
    evaluations: int
    max_evaluations: Optional[int]
    best_score: Optional[float]
    population: int
    accepted: int
    rejected: int
    cache_hits: int
    elapsed: float
    acceptance_rate: float
    evaluations_per_second: float
    iterations_per_second: float
    workers: dict = field(default_factory=dict)  # worker -> {"evaluations", "seconds"} (busy time), this run
    requeued: int = 0  # candidates re-submitted because their worker died
    on_demand_units: int = 0  # units timed on demand (outside the table's coverage), this run
    on_demand_seconds: float = 0.0


@dataclass
class SearchResult:
    best: Candidate
    population: list[Candidate]  # best first
    iterations: int
    evaluations: int
    cache_hits: int
    accepted: int
    rejected: dict
    seconds: float
    resumed: bool = False
    out_dir: Optional[str] = None
    report: dict = field(default_factory=dict)
    files: list = field(default_factory=list)
    workers: dict = field(default_factory=dict)  # per-worker evaluations and busy seconds, this run
    requeued: int = 0  # candidates re-submitted after their worker died (all runs of this search)

    @property
    def structure(self) -> str:
        return self.best.structure

    def top(self, k: int) -> list[Candidate]:
        """The ``k`` best distinct structures (the official population may hold a structure more than once)."""
        seen: set[str] = set()
        out: list[Candidate] = []
        for c in self.population:
            if c.structure not in seen and len(out) < k:
                seen.add(c.structure)
                out.append(c)
        return out


# ------------------------------------------------------------------------------------------------------- engine


def _resolve_predictor_info(predictor) -> dict | None:
    if predictor is None:
        return None
    info = {
        "device": getattr(predictor, "device", None),
        "batch": predictor_batch(predictor),
        "precision": getattr(predictor, "precision", None),
        "table": str(getattr(predictor, "table_path", getattr(predictor, "path", "")) or "") or None,
        "table_sha256": getattr(predictor, "sha256", None),  # --resume with another table is refused
        "type": type(predictor).__name__,
    }
    if getattr(predictor, "anchor_sha256", None):  # re-anchored (search --anchor): the anchor's measurements too
        info["anchor_sha256"] = predictor.anchor_sha256
        a = predictor.table.anchor
        info["anchor"] = {"networks": len(a.structures), "speed_ratio": round(a.speed_ratio, 4),
                          "method": a.method, "date": a.date}
    return info


def _locked(search):
    """``search`` holding the run folder's lock (``checkpoint.RunLock``) for as long as it runs: a second search into
    the same ``out_dir`` is refused in one line, instead of both overwriting one checkpoint."""
    import functools

    @functools.wraps(search)
    def run(*args, **kwargs):
        out_dir = kwargs.get("out_dir")
        if out_dir is None:
            return search(*args, **kwargs)
        from ..io import OutputPathError

        if Path(out_dir).exists() and not Path(out_dir).is_dir():
            raise OutputPathError(f"output folder '{out_dir}' is a file; give a folder for the run")
        try:
            lock = ckpt.RunLock(out_dir)
            lock.__enter__()
        except OSError as exc:
            raise OutputPathError(f"cannot use '{out_dir}' as the run folder: {exc.strerror or exc}") from None
        try:
            return search(*args, **kwargs)
        finally:
            lock.__exit__()

    return run


@_locked
def run_search(space: SearchSpace | str = "mobilenet", budgets: Budgets | None = None, **options) -> SearchResult:
    """``search(SearchConfig(space, budgets, ...), SearchHooks(...))`` with the fields of both as keyword arguments
    (``search/config.py`` documents every one; an unknown one is a TypeError)."""
    return search(*split_options(space, budgets, options))


def search(config: SearchConfig, hooks: SearchHooks | None = None) -> SearchResult:
    """Search ``config.space`` under ``config.budgets`` and return the best candidate (see the module docstring for
    the semantics, ``search/config.py`` for every setting and hook)."""
    hooks = hooks or SearchHooks()
    c = config
    space, budgets, resolution, dataset, num_classes = c.space, c.budgets, c.resolution, c.dataset, c.num_classes
    population, iterations, max_evaluations, top_k = c.population, c.iterations, c.max_evaluations, c.top_k
    proxy, batch_size, seed, step, strategy = c.proxy, c.batch_size, c.seed, c.step, c.strategy
    threads_per_eval, space_max_layers, random_walk_steps = c.threads_per_eval, c.space_max_layers, c.random_walk_steps
    out_dir, resume, checkpoint_every, plot = c.out_dir, c.resume, c.checkpoint_every, c.plot
    decide_budget_ms = c.decide_budget_ms
    predictor, scorer, workers, progress = hooks.predictor, hooks.scorer, hooks.workers, hooks.progress
    measure_fn, measure_skip_reason, on_outside = hooks.measure_fn, hooks.measure_skip_reason, hooks.on_outside
    from ..proxies import get_proxy

    space = load_space(space)
    budgets = budgets or Budgets()
    strategy = canonical_strategy(strategy)  # SearchSpaceError naming the valid ones
    for name, value, low in (("population", population, 1), ("iterations", iterations, 0), ("step", step, 1),
                             ("workers", workers, 1), ("top_k", top_k, 1), ("threads_per_eval", threads_per_eval, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise BudgetError(f"{name} must be an integer >= {low}, got {value!r}")
    if max_evaluations is not None and (not isinstance(max_evaluations, int) or max_evaluations < 1):
        raise BudgetError(f"max_evaluations must be a positive integer, got {max_evaluations!r}")
    spec = get_proxy(proxy)  # RegistryError naming the closest proxy
    if batch_size < spec.min_batch_size:
        raise BudgetError(f"proxy '{proxy}' needs a batch size of at least {spec.min_batch_size}, got {batch_size}")

    dataset = space.dataset_for(resolution, dataset)
    if resolution is None:
        resolution = space.default_resolution(dataset)
        if resolution is None:
            raise SearchSpaceError(f"resolution is required for dataset '{dataset}' of space '{space.name}'")
    num_classes = num_classes or space.default_num_classes(dataset)
    space.check_resolution(dataset, resolution)
    layers_from_space = False
    if budgets.layers is None and space_max_layers and space.default_max_layers(dataset) is not None:
        budgets = Budgets(budgets.macs, budgets.params, space.default_max_layers(dataset), budgets.latency_ms,
                          budgets.latency_margin)
        layers_from_space = True
    if not budgets.constrains_size:
        raise BudgetError("give at least one size budget (MACs/--flops, --params or --latency-ms): without one the "
                          "Zen-Score only grows with width and depth")
    if budgets.latency_ms is not None and predictor is None:
        raise BudgetError("a latency budget needs a latency table (--table): candidates are never timed")

    if predictor is not None:
        check_table(predictor, space_name=space.name, resolution=resolution, num_classes=num_classes,
                    budgets=budgets)
    initial = space.initial_blocks(dataset)
    initial_str = format_structure(initial)
    checker = BudgetChecker(budgets, resolution, num_classes=num_classes, se=space.se, predictor=predictor)
    checker.on_outside = on_outside
    smallest = check_feasible(space, initial, budgets, resolution, num_classes=num_classes, se=space.se,
                              predictor=predictor)
    initial_check = checker.check(initial)

    fingerprint = {
        "space": {k: v for k, v in space.to_dict().items() if k not in ("description", "source")},
        "dataset": dataset, "resolution": resolution, "num_classes": num_classes, "budgets": budgets.to_dict(),
        "seed": seed, "proxy": proxy, "batch_size": batch_size, "population": population, "step": step,
        "strategy": strategy, "random_walk_steps": random_walk_steps, "threads_per_eval": threads_per_eval,
        # the table by content (its hash), not by how its path was spelled
        "predictor": {k: v for k, v in (_resolve_predictor_info(predictor) or {}).items()
                      if k not in ("table", "anchor")} or None,
    }

    # ---- state (fresh or from a checkpoint)
    rng = random.Random(seed)
    pop: list[list] = []  # [structure, score], official list order
    scores: dict[str, dict] = {}
    counters: dict[str, Any] = {"iterations": 0, "evaluations": 0, "cache_hits": 0, "accepted": 0, "steps": 0,
                                "rejected": {}}
    elapsed0 = 0.0
    resumed = False
    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None:
        has_ckpt = (out_path / ckpt.CHECKPOINT_NAME).is_file()
        if resume:
            data = ckpt.load_checkpoint(out_path)
            ckpt.compare_fingerprints(data["fingerprint"], json_roundtrip(fingerprint), str(out_path))
            rng = ckpt.restore_rng(data["rng_state"])
            pop = [[s, float(v)] for s, v in data["population"]]
            scores = data["scores"]
            counters = data["counters"]
            elapsed0 = float(data.get("elapsed", 0.0))
            resumed = True
        elif has_ckpt or (out_path / "best_structure.txt").exists():
            raise ckpt.CheckpointError(f"'{out_path}' already holds a search; pass --resume (resume=True) to "
                                       f"continue it, or choose another output folder")
    elif resume:
        raise ckpt.CheckpointError("resume needs an output folder (out_dir)")

    checks: dict[str, Any] = {}
    probes: dict[str, Any] = {}

    def probe(blocks):
        """A budget check for the strategy's width search: cached apart, never timing units on demand."""
        key = format_structure(blocks)
        if key not in probes:
            if len(probes) >= CHECK_CACHE_SIZE:
                probes.clear()
            hook, checker.on_outside = checker.on_outside, None
            try:
                probes[key] = checker.check(blocks)
            finally:
                checker.on_outside = hook
        return probes[key]

    if checker.on_outside is not None:
        extend_table = checker.on_outside

        def on_outside_then_forget(blocks, reasons):
            extended = extend_table(blocks, reasons)
            if extended:
                probes.clear()  # a probe may have seen these units outside the table
            return extended

        checker.on_outside = on_outside_then_forget
    proposer = make_strategy(strategy, space, initial, rng, population=population, check=probe,
                             random_walk_steps=random_walk_steps, can_extend=checker.on_outside is not None)
    committed_rng = rng.getstate()

    def state_dict(rng_state, done=False) -> dict:
        return {"fingerprint": fingerprint, "rng_state": ckpt.rng_state_to_json(rng_state), "population": pop,
                "scores": scores, "counters": counters, "elapsed": elapsed0 + (time.perf_counter() - t_start),
                "done": done, "initial": initial_str}

    # a rank-combined proxy (AZ-NAS): a candidate's score is its indicators' ranks among every candidate scored so
    # far, so the population is re-ranked after every step (from ``scores``: the same after --resume)
    combiner = None
    if spec.combine == "rank":
        from ..proxies.az_nas import RankCombiner

        combiner = RankCombiner(spec.components)
        for e in scores.values():
            if e.get("valid") and e.get("components"):
                combiner.add(e["components"])

    def rerank(everyone: bool = False) -> None:
        if combiner is None:
            return
        for s in (scores if everyone else {m[0] for m in pop}):
            e = scores[s]
            if e.get("valid") and e.get("components"):
                e["score"] = combiner.score(e["components"])
        for m in pop:
            m[1] = scores[m[0]]["score"]

    t_start = time.perf_counter()
    last_ckpt = t_start
    best_score = max((v for _, v in pop), default=None)
    session_workers: dict[str, dict] = {}  # per-worker throughput of this run (not checkpointed: pids change)
    requeued_before = int(counters.get("requeued", 0))

    def report_progress():
        if progress is None:
            return
        el = elapsed0 + (time.perf_counter() - t_start)
        rej = sum(counters["rejected"].values())
        its = counters["iterations"]
        progress(ProgressInfo(
            phase="search", done=its, total=iterations, iteration=its, iterations=iterations, evaluations=counters["evaluations"],
            max_evaluations=max_evaluations, best_score=best_score, population=len(pop),
            accepted=counters["accepted"], rejected=rej, cache_hits=counters["cache_hits"], elapsed=el,
            acceptance_rate=(counters["accepted"] / its) if its else 0.0,
            evaluations_per_second=counters["evaluations"] / el if el > 0 else 0.0,
            iterations_per_second=its / el if el > 0 else 0.0,
            workers=session_workers, requeued=int(counters.get("requeued", 0)),
            on_demand_units=int(getattr(on_outside, "units", 0) or 0),
            on_demand_seconds=float(getattr(on_outside, "seconds", 0.0) or 0.0),
        ))

    report_progress()
    if scorer is not None and workers > 1:
        raise BudgetError("workers sizes the local process pool; a scorer handed in brings its own workers")
    scorer = scorer if scorer is not None else LocalScorer(workers, threads_per_eval)
    with contextlib.ExitStack() as stack:
        stack.enter_context(scorer)
        try:
            while counters["iterations"] < iterations and (
                    max_evaluations is None or counters["evaluations"] < max_evaluations):
                while len(pop) > population:  # official eviction at the top of each iteration
                    _evict_min(pop)
                it = counters["iterations"]
                children: list[str] = []
                new: dict[str, tuple[BlockSpec, ...]] = {}
                hits = 0
                rejected: Counter = Counter()
                while len(children) < step and it < iterations:
                    if max_evaluations is not None and counters["evaluations"] + len(new) >= max_evaluations:
                        break
                    done = it / iterations if iterations else 1.0
                    if max_evaluations:
                        done = max(done, (counters["evaluations"] + len(new)) / max_evaluations)
                    child = proposer.propose(pop, done, lambda s: s in scores or s in new)
                    it += 1
                    s = format_structure(child)
                    chk = checks.get(s)
                    if chk is None:
                        if len(checks) >= CHECK_CACHE_SIZE:  # bounded memory; checks are deterministic anyway
                            checks.clear()
                        chk = checks[s] = checker.check(child)
                    if not chk.ok:
                        rejected[chk.kind] += 1
                        continue
                    children.append(s)
                    if s in scores or s in new:
                        hits += 1
                    else:
                        new[s] = child
                results = scorer.score(make_requests(
                    list(new.items()), proxy=proxy, resolution=resolution, batch_size=batch_size, seed=seed,
                    num_classes=num_classes, threads=threads_per_eval))
                # ---- commit the step (the state saved on interruption is the one before it)
                for (s, child), res in zip(new.items(), results):
                    w = session_workers.setdefault(res.worker, {"evaluations": 0, "seconds": 0.0})
                    w["evaluations"] += 1
                    w["seconds"] += res.seconds
                    chk = checks.get(s) or checker.check(child)
                    scores[s] = {"score": res.score, "valid": res.valid, "reason": res.reason,
                                 "seconds": round(res.seconds, 6), "params": chk.params, "macs": chk.macs,
                                 "layers": chk.layers, "latency": chk.latency}
                    if combiner is not None and res.valid and res.components:
                        scores[s]["components"] = res.components
                        combiner.add(res.components)
                for s in children:
                    pop.append([s, scores[s]["score"]])
                    if combiner is None and (best_score is None or scores[s]["score"] > best_score):
                        best_score = scores[s]["score"]
                if combiner is not None:
                    rerank()
                    best_score = max((v for _, v in pop), default=None)
                counters["iterations"] = it
                counters["evaluations"] += len(new)
                counters["cache_hits"] += hits
                counters["accepted"] += len(children)
                counters["steps"] += 1
                counters["requeued"] = requeued_before + scorer.requeued
                for k, n in rejected.items():
                    counters["rejected"][k] = counters["rejected"].get(k, 0) + n
                committed_rng = rng.getstate()
                report_progress()
                if out_path is not None and time.perf_counter() - last_ckpt >= checkpoint_every:
                    ckpt.save_checkpoint(out_path, state_dict(committed_rng))
                    last_ckpt = time.perf_counter()
        except BaseException:
            if out_path is not None:
                ckpt.save_checkpoint(out_path, state_dict(committed_rng))
            raise

    if not pop:
        rej = ", ".join(f"{k} {n}" for k, n in sorted(counters["rejected"].items())) or "none"
        hint = f"; the initial structure itself breaks the budgets ({initial_check.reason})" if not initial_check.ok \
            else ""
        raise BudgetError(f"no candidate met the budgets in {counters['iterations']} iterations (rejected: {rej})"
                          f"{hint}; loosen the budgets or start from a smaller initial structure")
    while len(pop) > population:  # the official loop stops without this; it never removes the best
        _evict_min(pop)
    rerank(everyone=True)  # every candidate's final rank-combined score, for the run's files
    seconds = elapsed0 + (time.perf_counter() - t_start)
    if out_path is not None:
        ckpt.save_checkpoint(out_path, state_dict(rng.getstate(), done=True))

    members = [_candidate(s, scores[s]) for s, _ in pop]
    best_idx = max(range(len(pop)), key=lambda i: (pop[i][1], -i))  # official max(); first index on ties
    best = members[best_idx]
    if predictor is not None:  # the chosen network's prediction in full (candidate records keep a summary)
        best.latency = checker.latency_of(parse_structure(best.structure), full=True)
    ranked = sorted(range(len(members)), key=lambda i: (-members[i].score, i))
    population_sorted = [members[i] for i in ranked]

    result = SearchResult(
        best=best, population=population_sorted, iterations=counters["iterations"],
        evaluations=counters["evaluations"], cache_hits=counters["cache_hits"], accepted=counters["accepted"],
        rejected=dict(counters["rejected"]), seconds=seconds, resumed=resumed,
        out_dir=str(out_path) if out_path is not None else None, workers=session_workers,
        requeued=int(counters.get("requeued", 0)),
    )
    from .report import build_report, measure_candidates, write_run

    settings = {
        "space": space.name, "space_source": space.source, "space_description": space.description,
        "dataset": dataset, "resolution": resolution, "num_classes": num_classes, "se": space.se,
        "strategy": strategy, "proxy": proxy, "proxy_batch_size": batch_size, "population": population,
        "iterations": iterations, "max_evaluations": max_evaluations, "seed": seed, "workers": workers,
        "step": step, "threads_per_eval": threads_per_eval, "initial_structure": initial_str,
        "initial_within_budgets": initial_check.ok, "initial_rejected_by": initial_check.reason,
        "layers_budget_from_space": layers_from_space, "random_walk_steps": random_walk_steps,
        "predictor": _resolve_predictor_info(predictor),
        **{k: v for k, v in scorer.describe().items() if k in ("executor", "cluster")},
        "on_demand": None if on_outside is None else {
            "units_timed": int(getattr(on_outside, "units", 0) or 0),
            "seconds": round(float(getattr(on_outside, "seconds", 0.0) or 0.0), 2),
            "journal": str(getattr(on_outside, "journal", "")) or None},
    }
    decide = budgets if decide_budget_ms is None else Budgets(latency_ms=decide_budget_ms)
    measured = measure_candidates(measure_fn, result.top(top_k), resolution=resolution, se=space.se,
                                  budgets=decide, best=best, skip_reason=measure_skip_reason)
    if measured.get("chosen_structure") not in (None, best.structure):  # the closed loop chose another network
        by_score = best
        best = next(c for c in population_sorted if c.structure == measured["chosen_structure"])
        best.latency = checker.latency_of(parse_structure(best.structure), full=True)
        result.best = best
        measured["best_by_score"] = {"structure": by_score.structure, "score": by_score.score}
    result.report = build_report(result, settings=settings, budgets=budgets, predictor=predictor,
                                 smallest=smallest, measured=measured, top_k=top_k)
    if out_path is not None:
        result.files = write_run(out_path, result, scores=scores, budgets=budgets, top_k=top_k, plot=plot,
                                 has_latency=predictor is not None)
    return result


def _evict_min(pop: list[list]) -> None:
    """Official eviction: remove the first member with the minimum score."""
    lowest = min(v for _, v in pop)
    for i, (_, v) in enumerate(pop):
        if v == lowest:
            del pop[i]
            return


def _candidate(structure: str, e: Mapping) -> Candidate:
    return Candidate(structure=structure, score=float(e["score"]), valid=bool(e["valid"]), params=e["params"],
                     macs=e["macs"], layers=e["layers"], latency=e.get("latency"),
                     proxy_seconds=float(e.get("seconds", 0.0)), reason=e.get("reason"))


def json_roundtrip(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj))


def describe_budget_line(budgets: Budgets) -> str:
    parts = []
    if budgets.macs is not None:
        parts.append(f"MACs <= {format_count(budgets.macs)}")
    if budgets.params is not None:
        parts.append(f"params <= {format_count(budgets.params)}")
    if budgets.layers is not None:
        parts.append(f"layers <= {budgets.layers}")
    if budgets.latency_ms is not None:
        m = f" (+{budgets.latency_margin:g} sigma)" if budgets.latency_margin else ""
        parts.append(f"latency{m} <= {budgets.latency_ms:g} ms")
    return ", ".join(parts)
