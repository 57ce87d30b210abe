"""What a search is given, in two typed objects: ``SearchConfig`` (what to search and how long: every setting that
decides the result, plus where the run is written) and ``SearchHooks`` (what is handed in from outside: the latency
table, who scores, who measures the top-k, who times missing units, who listens to progress).

    >>> from zendeploy.search import Budgets, SearchConfig, search
    >>> result = search(SearchConfig("resnet", Budgets.parse(params="1M"), resolution=32, population=64,
    ...                              iterations=2000, batch_size=16, out_dir="runs/cifar_1M"))

``run_search(space, budgets, **options)`` is the same call with the fields as keyword arguments (an unknown one is
a TypeError naming it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from .budgets import Budgets
from .strategies import DEFAULT_STRATEGY


@dataclass(frozen=True)
class SearchConfig:
    """The settings of one search. ``iterations``: children generated (official ``evolution_max_iter``; rejected
    ones count); ``max_evaluations``: optional cap on proxy computations (cache misses). ``budgets.layers`` None
    takes the space's layer budget for the dataset when ``space_max_layers``. ``out_dir``: where
    ``best_structure.txt``, ``report.json``, ``top_k.json``, ``population.png`` and ``checkpoint.json`` go (None:
    nothing written, no checkpoints). ``decide_budget_ms``: the budget the closed loop checks the measured top-k
    against (default the latency budget; a search re-run with a tightened predicted budget still decides on the
    user's)."""

    space: Any = "mobilenet"  # a SearchSpace or the name / file of one
    budgets: Budgets = field(default_factory=Budgets)
    resolution: int | None = None
    dataset: str | None = None
    num_classes: int | None = None
    population: int = 256
    iterations: int = 20000
    max_evaluations: int | None = None
    proxy: str = "zen"
    batch_size: int = 64
    seed: int = 0
    step: int = 1  # children scored together; results depend on it, never on the scorer's workers
    strategy: str = DEFAULT_STRATEGY
    top_k: int = 10
    threads_per_eval: int = 1
    space_max_layers: bool = True
    random_walk_steps: int | None = None
    out_dir: str | os.PathLike | None = None
    resume: bool = False
    checkpoint_every: float = 10.0
    plot: bool = True
    decide_budget_ms: float | None = None


@dataclass
class SearchHooks:
    """What the caller hands in (never imported by the search). ``scorer``: computes the proxies
    (``zendeploy.search.scoring``; default a ``LocalScorer`` of ``workers`` processes; the Ray one is
    ``zendeploy.distributed.scoring.RayScorer``). ``measure_fn(networks, resolution, *, se)``: end-to-end latency of
    the top-k in ms per image (``search/measure.py``); ``measure_skip_reason`` says why there is none.
    ``on_outside(blocks, reasons) -> bool``: called for a candidate whose latency prediction lies outside the
    table's coverage; True when it extended the table (``zendeploy.latency.ondemand.OnDemandUnits``); without it
    such candidates are rejected and counted as ``coverage``. ``progress(ProgressInfo)``: after every step."""

    predictor: Any = None  # zendeploy.latency.LatencyPredictor (the budgets.PredictsLatency protocol)
    scorer: Any = None
    workers: int = 1
    measure_fn: Callable | None = None
    measure_skip_reason: str | None = None
    on_outside: Callable[..., bool] | None = None
    progress: Callable | None = None


def split_options(space: Any, budgets: Budgets | None, options: dict[str, Any]) -> tuple[SearchConfig, SearchHooks]:
    """``run_search``'s keyword arguments as a config and hooks (a TypeError names an unknown argument)."""
    config_names = {f.name for f in fields(SearchConfig)}
    hook_names = {f.name for f in fields(SearchHooks)}
    unknown = sorted(set(options) - config_names - hook_names)
    if unknown:
        raise TypeError(f"run_search() got unexpected keyword argument(s): {', '.join(unknown)}")
    config = SearchConfig(space=space, budgets=budgets or Budgets(),
                          **{k: v for k, v in options.items() if k in config_names})
    hooks = SearchHooks(**{k: v for k, v in options.items() if k in hook_names})
    return config, hooks


__all__ = ["SearchConfig", "SearchHooks", "split_options"]
