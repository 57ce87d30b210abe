"""`zendeploy export`: build a ZenNet, export it (ONNX / TFLite / TensorRT), check parity, time it, report."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..export import FORMATS, OPTIONS, PRECISIONS, list_formats
from .common import (
    JsonOpt, ResOpt, RunOpt, StructArg, ZooOpt, console, err_console, print_json, run_command, run_settings,
    structure_source,
)

Precision = enum.Enum("Precision", {p: p for p in PRECISIONS}, type=str)  # type: ignore[misc]


def _accepting(option: str) -> str:
    return ", ".join(k for k in list_formats() if option in FORMATS.get(k).options)


def _formats_help() -> str:
    rows = []
    for key in list_formats():
        spec = FORMATS.get(key)
        aliases = f" (alias {', '.join(spec.aliases)})" if spec.aliases else ""
        rows.append(f"{key}{aliases}: {spec.precisions[0]}" + (f"..{spec.precisions[-1]}" if len(spec.precisions) > 1
                                                                   else "") + f", extra {spec.extra}")
    return "Comma-separated formats: " + "; ".join(rows) + "."


def export_cmd(
    structure: StructArg = None,
    zoo: ZooOpt = None,
    run: RunOpt = None,
    formats: Annotated[str, typer.Option("--format", "-f", help=_formats_help())] = "onnx",
    weights: Annotated[Optional[Path], typer.Option(
        help="State dict to load: .safetensors, or .pth/.pt read with weights_only=True (default: random init, "
             "with a warning).")] = None,
    res: ResOpt = None,
    num_classes: Annotated[Optional[int], typer.Option(
        help="Classifier size (default: the zoo entry's, or the search run's; 1000 for a bare structure).",
        min=1)] = None,
    batch: Annotated[int, typer.Option(help="Batch size of the exported input.", min=1)] = 1,
    dynamic_batch: Annotated[bool, typer.Option(
        "--dynamic-batch", help=f"Symbolic batch axis ({_accepting('dynamic_batch')}).")] = False,
    nhwc: Annotated[bool, typer.Option("--nhwc", help="Channels-last input (and feature-map outputs): what a "
                                                      "phone wants, no transposes in the TFLite graph.")] = False,
    precision: Annotated[Precision, typer.Option(help="fp32 everywhere; fp16 (weights) and int8 (PTQ) for "
                                                      "tflite and engine.")] = Precision.fp32,  # type: ignore
    opset: Annotated[int, typer.Option(help="ONNX opset.", min=11)] = OPTIONS["opset"].default,
    representative: Annotated[Optional[Path], typer.Option(
        help="Folder of images for int8 calibration (default: random inputs).")] = None,
    timing_cache: Annotated[Optional[Path], typer.Option(help="TensorRT timing cache file (read and updated).")] = None,
    table: Annotated[Optional[Path], typer.Option(
        help="Latency table (LUT) JSON: adds its prediction and the error vs the measurement.")] = None,
    measure: Annotated[bool, typer.Option("--measure/--no-measure", help="Time each file on this machine.")] = True,
    threads: Annotated[int, typer.Option(help="Runtime threads for parity and timing.", min=1)] = 1,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output folder (default: exports/NAME).")]
    = None,
    as_json: JsonOpt = False,
):
    """Export a ZenNet to ONNX / TFLite / TensorRT, check each file against PyTorch, time it, write report.json."""

    def body():
        from ..export import ExportConfig, export
        from ..export.report import render_table

        source = structure_source(structure, zoo, run)
        ran = run_settings(run)  # --run exports what was searched: its resolution and classes
        name = zoo or (Path(run).name if run is not None else None) or (output.name if output is not None else None)
        log = (lambda m: None) if as_json else _printer
        config = ExportConfig(
            formats, output_dir=output, name=name, weights=weights, resolution=res or ran.get("resolution"),
            batch=batch, num_classes=num_classes or ran.get("num_classes"), dynamic_batch=dynamic_batch, nhwc=nhwc,
            precision=precision.value, opset=opset, representative=representative, timing_cache=timing_cache,
            table=table, measure=measure, threads=threads)
        report = export(source, config, log=log)
        if as_json:
            print_json(report.to_dict())
        else:
            console.print(render_table(report))
            console.print(f"report: {Path(report.output_dir) / 'report.json'}", highlight=False, markup=False)
            for line in _next_steps(report):
                console.print(f"next: {line}", highlight=False, soft_wrap=True, markup=False)
        failed = [r for r in report.rows if r.status == "failed"]
        if failed:
            from ..errors import ExportError

            raise ExportError(f"{len(failed)} of {len(report.rows)} exports failed: "
                              + "; ".join(f"{r.format}: {r.reason}" for r in failed))

    run_command(body)


def _printer(message: str) -> None:
    from rich.markup import escape

    err_console.print(escape(message), style="dim", highlight=False, soft_wrap=True)  # warnings come by logging


def _next_steps(report) -> list[str]:
    """Commands worth running after this export (they read the manifests written next to the files)."""
    out = Path(report.output_dir)
    steps = []
    if "tflite" in report.manifests:
        steps.append(f"time it on a phone: python -m profilers.litert.adb --serial SERIAL --benchmark-binary "
                     f"./benchmark_model --manifest {report.manifests['tflite']} --output {out / 'phone.jsonl'}")
    engine_done = any(r.format == "engine" and r.status == "ok" for r in report.rows)
    if "onnx" in report.manifests and not engine_done:
        flag = {"fp16": " --fp16", "int8": " --int8"}.get(report.precision, " --fp16")
        steps.append(f"time it on the T4 box: python -m profilers.tensorrt --mode api --manifest "
                     f"{report.manifests['onnx']} --output {out / 't4.jsonl'}{flag} --timing-cache trt.cache")
    if report.untrained:
        steps.append("export trained weights: add --weights model.safetensors (or a .pth state_dict)")
    return steps


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
