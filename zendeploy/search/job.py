"""What ``zendeploy search`` does, as a library call: a ``SearchRequest`` (the command's options) becomes a
``SearchJob`` (the search config, the latency table's predictor, the top-k measurement and the on-demand timer of a
table measured on this host), which ``run()`` searches, tightening the latency budget when asked.

    >>> job = prepare_search(SearchRequest("runs/cifar", space="resnet", res=32, params="1M",
    ...                                    table="latency_tables/cpu-onnxruntime-fp32-b1-resnet-r32.json",
    ...                                    latency_ms=2))
    >>> result, run_dir = job.run(progress=print)

Only the CLI builds scale-out (a Ray ``scorer``) and hands it to :func:`prepare_search`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import BudgetError, LatencyTableError
from .budgets import Budgets
from .closed_loop import Round, search_tightening, write_run_manifest
from .config import SearchConfig, SearchHooks
from .strategies import DEFAULT_STRATEGY

@dataclass
class SearchRequest:
    """The options of ``zendeploy search`` (see its ``--help``); budgets as text ('1M', '400M'), as typed."""

    out: str | Path
    space: Any = "mobilenet"  # a built-in space, a YAML/JSON space file or a SearchSpace
    res: int | None = None
    dataset: str | None = None
    latency_ms: float | None = None
    latency_margin: float = 0.0
    device: str | None = None  # the device the table was measured on (checked against the table)
    table: str | Path | None = None
    flops: str | None = None  # MACs, as ZenNAS calls them
    params: str | None = None
    max_layers: int | None = None
    population: int = 256
    iterations: int = 20000
    max_evaluations: int | None = None
    proxy: str = "zen"
    batch_size: int = 64
    num_classes: int | None = None
    seed: int = 0
    workers: int = 1
    step: int = 1
    strategy: str = DEFAULT_STRATEGY
    top_k: int = 10
    resume: bool = False
    checkpoint_every: float = 10.0
    tighten_rounds: int = 0
    # re-measure this many of the table's calibration networks at the start and refit its calibration on them
    # (``latency/anchor.py``): the host's speed now; only for a table of this host's device; 0: the table as written
    anchor: int | None = 0  # None: DEFAULT_ANCHOR_NETWORKS with a latency budget on a table of this host, else 0


@dataclass
class SearchJob:
    config: SearchConfig
    hooks: SearchHooks
    tighten_rounds: int = 0
    reused_units: int = 0  # units timed on demand by earlier searches of this table, loaded into the predictor
    running_dir: Path | None = None  # the folder of the search running now (a tightening round has its own)

    def run(self, *, progress: Callable | None = None, on_round: Round | None = None):
        """Search (resuming from a checkpoint when the config says so), then up to ``tighten_rounds`` more with the
        latency budget tightened by the measured error; for a device this host cannot time, the top-k go out as a
        manifest. Returns the last result and its folder."""
        from .evolution import search

        hooks = dataclasses.replace(self.hooks, progress=progress)

        def search_once(config: SearchConfig):
            self.running_dir = Path(config.out_dir) if config.out_dir is not None else None
            return search(config, hooks)

        result, run_dir = search_tightening(search_once, self.config, self.tighten_rounds, on_round=on_round)
        predictor = self.hooks.predictor
        if self.hooks.measure_fn is None and getattr(predictor, "table", None) is not None:
            write_run_manifest(result, predictor, run_dir)  # nothing measured here, so no round was tightened
        return result, run_dir


def load_table_predictor(table: str | Path | None, device: str | None = None):
    """The latency predictor of a table file (None without one); ``device``, when given, must be the table's."""
    if table is None:
        if device is not None:
            raise LatencyTableError("--device names the device of a latency table: give --table too")
        return None
    if not Path(table).exists():
        raise LatencyTableError(f"latency table '{table}' does not exist")
    from ..latency import load_predictor

    predictor = load_predictor(table)
    table_device = getattr(predictor, "device", None)
    if device is not None and table_device is not None and str(device) != str(table_device):
        raise LatencyTableError(f"latency table '{table}' was measured on '{table_device}', not '{device}' (--device)")
    return predictor


def _auto_anchor(predictor, backend, latency_ms) -> int:
    """``--anchor``'s default: re-anchor when a latency budget rests on a calibrated table that ``backend`` (this
    host's, None when it has none for the table's device) can anchor; otherwise the table is searched as written."""
    if predictor is None or backend is None or latency_ms is None or predictor.table.calibration is None:
        return 0
    from ..errors import ZenDeployError
    from ..latency.anchor import DEFAULT_ANCHOR_NETWORKS, check_anchorable

    try:
        check_anchorable(predictor.table, backend)
    except ZenDeployError:
        return 0
    return DEFAULT_ANCHOR_NETWORKS


def prepare_search(request: SearchRequest, *, scorer: Any = None,
                   anchor_progress: Callable | None = None) -> SearchJob:
    """Check the request (a latency budget needs a table, local workers and a handed-in scorer exclude each other),
    load the table, and hand the search what a table measured on this host allows: the top-k measured at the end,
    and units outside the table's coverage timed on demand (earlier searches' on-demand units are reused), and, with
    ``anchor``, the table re-anchored to this host's speed (``anchor_progress`` sees that measurement's events)."""
    from ..space.spaces import load_space
    from .measure import local_measure_fn

    r = request
    space = load_space(r.space)
    if r.latency_ms is not None and r.table is None:
        raise BudgetError("--latency-ms needs --table: latency budgets are checked against a latency table, "
                          "candidates are never timed")
    if scorer is not None and r.workers > 1:
        raise BudgetError("--workers sizes the local process pool; with --ray the cluster's CPUs do the work "
                          "(set how many candidates are in flight with --step)")
    predictor = load_table_predictor(r.table, r.device)
    budgets = Budgets.parse(flops=r.flops, params=r.params, layers=r.max_layers, latency_ms=r.latency_ms,
                            latency_margin=r.latency_margin)
    out = Path(r.out)
    if predictor is not None:  # a table that cannot back the search is refused before anything is measured
        from .budgets import check_table

        dataset = space.dataset_for(r.res, r.dataset)
        resolution = r.res or space.default_resolution(dataset)
        if resolution is not None:
            check_table(predictor, space_name=space.name, resolution=resolution,
                        num_classes=r.num_classes or space.default_num_classes(dataset), budgets=budgets)
    measure_fn, measure_reason = local_measure_fn(r.device, predictor, out / "measure", r.num_classes)
    on_outside, reused = None, 0
    backend = None
    if predictor is not None and measure_fn is not None:  # the table's device is on this host
        from ..latency.backends import backend_for

        backend = backend_for(predictor.table)
    anchor = r.anchor
    if anchor is None:  # auto: anchor a table of this host's device when a latency budget rests on it
        anchor = _auto_anchor(predictor, backend, r.latency_ms)
    if anchor and predictor is None:
        raise BudgetError("--anchor re-measures a latency table's calibration networks: give --table too")
    if anchor and measure_fn is None:
        raise BudgetError(f"--anchor measures networks on the table's device, which this host cannot: {measure_reason}")
    if predictor is not None and r.table is not None:
        from ..latency.ondemand import OnDemandUnits, load_ondemand

        reused = load_ondemand(predictor, r.table)
        if backend is not None:  # the table's device is on this host: out-of-coverage units are timed here
            if anchor:  # the table re-anchored to this host's speed now (kept in the run folder for --resume)
                from ..latency.anchor import anchored_predictor

                predictor = anchored_predictor(predictor, backend, networks=anchor, run_dir=out,
                                               progress=anchor_progress)
                measure_fn, measure_reason = local_measure_fn(r.device, predictor, out / "measure", r.num_classes)
            on_outside = OnDemandUnits(predictor, backend, r.table, out / "ondemand", se=space.se)
    hooks = SearchHooks(predictor=predictor, scorer=scorer, workers=r.workers, measure_fn=measure_fn,
                        measure_skip_reason=measure_reason, on_outside=on_outside)
    config = SearchConfig(
        space, budgets, resolution=r.res, dataset=r.dataset, num_classes=r.num_classes, population=r.population,
        iterations=r.iterations, max_evaluations=r.max_evaluations, proxy=r.proxy, batch_size=r.batch_size,
        seed=r.seed, step=r.step, strategy=r.strategy, top_k=r.top_k, space_max_layers=r.max_layers is None,
        out_dir=out, resume=r.resume, checkpoint_every=r.checkpoint_every)
    return SearchJob(config, hooks, r.tighten_rounds, reused_units=reused)


__all__ = ["SearchJob", "SearchRequest", "load_table_predictor", "prepare_search"]
