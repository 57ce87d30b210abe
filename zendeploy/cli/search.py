"""``zendeploy search``: the Zen-NAS evolutionary search under budgets (a thin layer over ``zendeploy.search``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..search.strategies import DEFAULT_STRATEGY, STRATEGIES
from .common import (
    RAY_HELP, console, describe_workers, device_choices_help, err_console, run_command, space_choices_help,
)

STRATEGY_HELP = (f"{' | '.join(STRATEGIES)}: budget-aware (default) scales every child onto the budget's frontier; "
                 "official is the Zen-NAS loop draw for draw (alias: evolution); random is random search.")

HELP = (
    "Search a ZenNet under budgets with the Zen-NAS evolution (budget-aware by default, the official loop or random "
    "search with --strategy), scoring with a zero-shot "
    "proxy; latency budgets come from a latency table, never from timing candidates. Writes best_structure.txt, "
    "report.json, top_k.json, population.png and checkpoint.json to -o DIR."
)


def _advise(request, ray: str | None) -> None:
    """Settings that work but waste the workers, said before the search starts."""
    if ray is not None and request.step == 1:
        err_console.print("[yellow]note:[/] --ray with --step 1 scores one candidate at a time (the official "
                          "serial loop); --step K puts K evaluations in flight (e.g. K = the cluster's CPUs)",
                          highlight=False)
    if request.workers > 1 and request.step < request.workers:
        err_console.print(f"[yellow]note:[/] --workers {request.workers} with --step {request.step}: at most "
                          f"{request.step} candidate(s) are scored at a time; use --step >= {request.workers} to keep "
                          f"every worker busy (results depend on --step, never on --workers)", highlight=False)


class _SearchBar:
    """The search's progress bar: it starts with the first report (after every setting has been checked), and a
    tightening round starts a fresh one."""

    def __init__(self, iterations: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.iterations = iterations
        self.bar = Progress(
            TextColumn("[bold]search"), BarColumn(), TextColumn("{task.completed}/{task.total} it"),
            TextColumn("best {task.fields[best]}"), TextColumn("pop {task.fields[pop]}"),
            TextColumn("accept {task.fields[acc]}"), TextColumn("{task.fields[eps]} eval/s"),
            TextColumn("{task.fields[per_worker]}"), TextColumn("{task.fields[ondemand]}"), TimeElapsedColumn(),
            console=err_console, transient=False)
        self.task: Any = None  # a rich TaskID once the bar has started

    def update(self, p) -> None:  # a zendeploy.search.ProgressInfo
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task("search", total=self.iterations, best="-", pop=0, acc="-", eps="-",
                                          per_worker="", ondemand="")
        self.bar.update(self.task, completed=p.iteration,
                        best="-" if p.best_score is None else f"{p.best_score:.4g}", pop=p.population,
                        acc=f"{p.acceptance_rate:.0%}", eps=f"{p.evaluations_per_second:.1f}",
                        per_worker=describe_workers(p.workers, p.requeued),
                        ondemand=f"on-demand {p.on_demand_units} units {p.on_demand_seconds:.0f} s"
                        if p.on_demand_units else "")

    def stop(self) -> None:
        self.bar.stop()
        self.task = None


def search_command(
    out: Annotated[Path, typer.Option("-o", "--out", help="Run folder, e.g. runs/NAME.")],
    space: Annotated[str, typer.Option("--space", help=space_choices_help())] = "mobilenet",
    res: Annotated[Optional[int], typer.Option("--res", help="Input resolution (default: 224 ImageNet, 32 CIFAR).",
                                               min=1)] = None,
    dataset: Annotated[Optional[str], typer.Option(
        "--dataset", help="Initial structure to start from: imagenet | cifar (default: cifar when --res <= 64).")] = None,
    latency_ms: Annotated[Optional[float], typer.Option(
        "--latency-ms", help="Latency budget in ms per image at the table's batch size (needs --table).")] = None,
    latency_margin: Annotated[float, typer.Option(
        "--latency-margin", help="Enforce prediction + Z * sigma <= budget.", min=0.0)] = 0.0,
    device: Annotated[Optional[str], typer.Option("--device", help=device_choices_help("Device the table was measured on (checked)"))]
    = None,
    table: Annotated[Optional[Path], typer.Option("--table", help="Latency table (latency_tables/...).")] = None,
    flops: Annotated[Optional[str], typer.Option(
        "--flops", help="MACs budget (what ZenNAS calls FLOPs), e.g. 400M, 1.2G.")] = None,
    params: Annotated[Optional[str], typer.Option("--params", help="Parameter budget, e.g. 1M, 5M.")] = None,
    max_layers: Annotated[Optional[int], typer.Option(
        "--max-layers", help="Layer budget (sum of sub_layers; default: the space's for the dataset).", min=1)] = None,
    population: Annotated[int, typer.Option("--population", min=1)] = 256,
    iterations: Annotated[int, typer.Option("--iterations", help="Children generated (rejected ones count).",
                                            min=0)] = 20000,
    max_evaluations: Annotated[Optional[int], typer.Option(
        "--max-evaluations", help="Stop after this many proxy evaluations.", min=1)] = None,
    proxy: Annotated[str, typer.Option("--proxy", help="Proxy name (the registry: see `zendeploy proxies`).")]
    = "zen",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Proxy batch size (official: 64).", min=1)] = 64,
    num_classes: Annotated[Optional[int], typer.Option(
        "--num-classes", help="Classifier size for parameter counts (default: 1000 ImageNet, 100 CIFAR).", min=1)]
    = None,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    workers: Annotated[int, typer.Option("--workers", help="Local processes scoring in parallel.", min=1)] = 1,
    step: Annotated[int, typer.Option(
        "--step", help="Children scored per step: 1 = the official loop; >1 lets --workers score in parallel. "
                       "Results depend on --step, never on --workers.", min=1)] = 1,
    strategy: Annotated[str, typer.Option("--strategy", help=STRATEGY_HELP)] = DEFAULT_STRATEGY,
    top_k: Annotated[int, typer.Option("--top-k", help="Candidates kept in top_k.json (and measured).", min=1)] = 10,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the search in -o DIR from its checkpoint.")]
    = False,
    checkpoint_every: Annotated[float, typer.Option("--checkpoint-every", help="Seconds between checkpoints.",
                                                    min=0.0)] = 10.0,
    ray: Annotated[Optional[str], typer.Option(
        "--ray", metavar="[ADDRESS]", help=RAY_HELP + " --step K evaluations are in flight; results equal a local "
        "run with the same --step.")] = None,
    ray_cpus: Annotated[Optional[int], typer.Option("--ray-cpus", help="CPUs of a local Ray instance (--ray local).",
                                                    min=1)] = None,
    tighten_rounds: Annotated[int, typer.Option(
        "--tighten-rounds", help="When none of the top-k meets the latency budget as measured, search again (in "
                                 "-o DIR/tightenN) with the predicted budget tightened by the measured error, up to "
                                 "this many times.", min=0)] = 0,
    anchor: Annotated[Optional[int], typer.Option(
        "--anchor", help="Re-measure this many of the table's calibration networks on this host first and refit the "
                         "table's calibration on them (the host's speed now; kept in -o DIR for --resume). Default: "
                         "12 with a latency budget on a table of this host's device, else 0.", min=0)] = None,
):
    def body():
        from ..search.job import SearchRequest, prepare_search

        request = SearchRequest(
            out, space=space, res=res, dataset=dataset, latency_ms=latency_ms, latency_margin=latency_margin,
            device=device, table=table, flops=flops, params=params, max_layers=max_layers, population=population,
            iterations=iterations, max_evaluations=max_evaluations, proxy=proxy, batch_size=batch_size,
            num_classes=num_classes, seed=seed, workers=workers, step=step, strategy=strategy, top_k=top_k,
            resume=resume, checkpoint_every=checkpoint_every, tighten_rounds=tighten_rounds, anchor=anchor)
        scorer = None
        if ray is not None:
            from ..distributed.scoring import RayScorer

            scorer = RayScorer(ray, num_cpus=ray_cpus)
        from .latency import phase_progress

        with phase_progress() as anchor_progress:
            job = prepare_search(request, scorer=scorer, anchor_progress=anchor_progress)
        _advise(request, ray)
        anchor_info = getattr(job.hooks.predictor, "table", None) and job.hooks.predictor.table.anchor
        if anchor_info is not None and getattr(job.hooks.predictor, "anchor_sha256", None):
            err_console.print(f"latency table re-anchored on {len(anchor_info.structures)} networks "
                              f"measured here: this host runs at {anchor_info.speed_ratio:.2f}x its as-built "
                              f"predictions (--anchor 0 to search with the table as written)", highlight=False)
        if job.reused_units:
            err_console.print(f"note: {job.reused_units} unit(s) timed on demand by earlier searches reused",
                              highlight=False)
        bar = _SearchBar(iterations)

        def on_round(round_, measured_ms, predicted, tightened, run_dir):
            bar.stop()
            err_console.print(f"none of the top-k meets {latency_ms:g} ms as measured (the best measured "
                              f"{measured_ms / predicted - 1:+.0%} against its prediction); searching again with the "
                              f"predicted budget tightened to {tightened:g} ms -> {run_dir}", highlight=False)

        try:
            result, run_dir = job.run(progress=bar.update, on_round=on_round)
        except KeyboardInterrupt:
            bar.stop()
            err_console.print(f"interrupted: checkpoint saved in {job.running_dir}; run the same command with "
                              f"--resume to continue", highlight=False)
            raise typer.Exit(code=130) from None
        finally:
            bar.stop()
        _print_summary(result, run_dir)
        return result

    run_command(body)


def _print_summary(result, out: Path) -> None:
    from rich.table import Table

    from ..cost import format_count

    r = result.report
    b = result.best
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_row("structure", b.structure)
    t.add_row("score", f"{b.score:.6g} ({r['proxy']})")
    t.add_row("params / MACs", f"{format_count(b.params)} / {format_count(b.macs)}")
    t.add_row("layers", str(b.layers))
    lat = r["best"].get("latency")
    if lat:
        t.add_row("latency (predicted)", f"{lat['latency_ms']:.4g} ms +- {lat['sigma_ms']:.2g} "
                  f"[{lat.get('low_ms', float('nan')):.4g}, {lat.get('high_ms', float('nan')):.4g}] {lat['unit']}")
    budgets = ", ".join(f"{k} <= {v.get('text', v['value'])}" for k, v in r["budgets"].items())
    t.add_row("budgets", budgets)
    rej = r["rejected"]
    t.add_row("evaluations", f"{result.evaluations} scored, {result.cache_hits} cache hits, {rej['total']} rejected "
              f"({', '.join(f'{k} {v}' for k, v in rej.items() if k != 'total') or 'none'}), "
              f"{result.iterations} iterations in {result.seconds:.1f} s")
    if len(r.get("workers") or []) > 1 or r.get("requeued"):
        t.add_row("workers", describe_workers({w["worker"]: {"evaluations": w["evaluations"],
                                                          "seconds": w["busy_seconds"]} for w in r["workers"]},
                                              r.get("requeued", 0), long=True))
    m = r["measured"]
    if m["ran"]:
        meets = m.get("chosen_meets_budget_measured")
        t.add_row("measured", f"{m.get('chosen_measured_ms')} ms per image; meets budget: {meets}")
        t.add_row("closed loop", m.get("decision", "-"))
    else:
        t.add_row("measured", f"not run ({m['reason']})")
    if not r["settings"]["initial_within_budgets"]:
        t.add_row("note", f"the initial structure breaks the budgets ({r['settings']['initial_rejected_by']})")
    console.print(t)
    console.print(f"wrote {', '.join(result.files)} to {out}", highlight=False)
    console.print(f"next: zendeploy info --run {out} --res {r['settings']['resolution']}", highlight=False)


def search_measured_command(
    run: Annotated[Path, typer.Option("--run", help="A search run folder (its top-k were written as a manifest).")],
    timings: Annotated[Path, typer.Option("--timings", help="The device runner's results JSONL for that manifest.")],
):
    """Bring a remote device's timings of a search's top-k back and make the closed loop's decision: the chosen net
    becomes the best-scoring one that meets the budget as measured on the device."""

    def body():
        from ..search.closed_loop import decide_from_timings

        measured = decide_from_timings(run, timings)
        console.print(measured["decision"], highlight=False)
        console.print(f"chosen: {measured['chosen_structure']} ({measured['chosen_measured_ms']:.4g} ms per image on "
                      f"the device); wrote {run / 'report.json'} and {run / 'best_structure.txt'}", highlight=False)

    run_command(body)


def register(app: typer.Typer) -> None:
    app.command("search", help=HELP)(search_command)
    app.command("search-measured")(search_measured_command)
