"""`zendeploy demo`: profile -> search under a latency budget -> export -> verify, on this machine's CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import JsonOpt, console, err_console, print_json, run_command
from .latency import phase_progress

HELP = (
    "The whole product on this CPU in a few minutes: profile a small latency table (CIFAR ResNet space, 32x32, ONNX "
    "Runtime), measure the official ZenNet-0.5M here and take its latency as the budget, search a ZenNet under it, "
    "keep the best-scoring net that meets it as measured, export it to ONNX and TFLite with parity checks, and show "
    "it beside the reference. Exits 1 when the chosen net misses the budget as measured. Rerunning resumes."
)


def demo_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for every artifact.")] = Path("runs/demo"),
    latency_ms: Annotated[Optional[float], typer.Option(
        "--latency-ms", help="Latency budget in ms per image (default: the measured latency of the official "
                             "zennet_cifar10_model_size05M_res32 on this machine).", min=0.0)] = None,
    latency_margin: Annotated[float, typer.Option(
        "--latency-margin", help="Enforce prediction + Z sigma <= budget (the demo table's sigma is wide: a margin "
                                 "keeps the chosen net under the budget as measured).", min=0.0)] = 1.0,
    strategy: Annotated[str, typer.Option(
        help="Search strategy (official by default here: on the demo's small table the budget-aware strategy finds "
             "the networks the table under-predicts).")] = "official",
    iterations: Annotated[int, typer.Option(
        help="Search iterations (children generated; most break the budget and are rejected unscored).", min=1)] = 5000,
    population: Annotated[int, typer.Option(help="Search population.", min=1)] = 64,
    max_evaluations: Annotated[int, typer.Option(help="Zen-Scores computed at most.", min=1)] = 400,
    table: Annotated[Optional[Path], typer.Option(
        help="Use this latency table instead of profiling one (e.g. a shipped one from latency_tables/).")] = None,
    grid_networks: Annotated[int, typer.Option(help="Networks whose units form the table's grid.", min=2)] = 16,
    calibration_networks: Annotated[int, typer.Option(help="Networks measured end to end for calibration.",
                                                      min=4)] = 12,
    formats: Annotated[str, typer.Option("--format", "-f", help="Export formats.")] = "onnx,tflite",
    seed: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOpt = False,
):
    def body():
        from ..demo import DemoSettings, run_demo
        from ..errors import ExportError

        settings = DemoSettings(latency_ms=latency_ms, latency_margin=latency_margin, strategy=strategy,
                                iterations=iterations,
                                population=population,
                                max_evaluations=max_evaluations,
                                table=str(table) if table else None, grid_networks=grid_networks,
                                calibration_networks=calibration_networks, formats=formats, seed=seed)
        log = (lambda m: None) if as_json else (lambda m: err_console.print(m, highlight=False, markup=False))
        with phase_progress(enabled=not as_json) as progress:
            result = run_demo(output, settings, progress=progress, log=log,
                              search_progress=progress)  # the search's ProgressInfo is a ProgressEvent
        if as_json:
            print_json(result.to_dict())
        else:
            _print_summary(result)
        if not result.ok:
            raise ExportError("demo not ok: " + "; ".join(result.problems))

    run_command(body)


def _fmt(x, spec: str, none: str = "-") -> str:
    return none if x is None else format(x, spec)


def _print_summary(r) -> None:
    from rich.table import Table

    from ..cost import format_count

    ref = r.reference
    meets = {True: "meets the budget", False: "OVER the budget", None: "not measured"}[r.meets_budget_measured]
    side = Table(title=f"zendeploy demo: budget {r.budget_ms:g} ms per image ({r.budget_source})",
                 title_justify="left")
    for col in ("", "chosen by the search", f"reference {ref.get('name', '')}"):
        side.add_column(col, overflow="fold")
    side.add_row("structure", r.structure, ref.get("structure", "-"))
    side.add_row("Zen-Score (mean of fresh repeats)", _fmt(r.rescored, ".4g"), _fmt(ref.get("zen_score"), ".4g"))
    side.add_row("params / MACs", f"{format_count(r.params)} / {format_count(r.macs)}", "-")
    side.add_row("predicted (table)", f"{r.predicted_ms:.4g} ms +- {r.predicted_sigma_ms:.2g}",
                 _fmt(ref.get("predicted_ms"), ".4g") + " ms")
    side.add_row("measured here", f"{_fmt(r.measured_ms, '.4g')} ms ({meets})",
                 _fmt(ref.get("measured_ms"), ".4g") + " ms")
    console.print(side)
    t = Table(show_header=False, title_justify="left")
    t.add_row("closed loop", r.decision or "-")
    t.add_row("prediction error", f"{_fmt(r.prediction_error_pct, '+.1f')}% (chosen net)")
    for e in r.exports:
        if e["status"] == "ok":
            lut = f", table {e['lut_ms']:.4g} ms ({e['error_pct']:+.1f}%)" if e["lut_ms"] is not None else ""
            t.add_row(f"export {e['format']}", f"parity max rel. err {_fmt(e['max_rel_err'], '.1e')}, "
                      f"measured {_fmt(e['latency_ms'], '.4g')} ms (fastest of 5 passes; median "
                      f"{_fmt(e['median_ms'], '.4g')}){lut}")
        else:
            t.add_row(f"export {e['format']}", f"{e['status']}: {e['reason']}")
    t.add_row("time", ", ".join(f"{k} {v:.0f} s" for k, v in r.seconds.items()))
    console.print(t)
    art = Table(title="artifacts", show_header=False, title_justify="left")
    for k, v in r.artifacts.items():
        art.add_row(k, v)
    console.print(art)
    console.print(f"next: zendeploy info --run {r.out_dir}/search --res 32", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("demo", help=HELP)(demo_cmd)
