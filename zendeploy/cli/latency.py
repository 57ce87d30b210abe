"""`zendeploy profile` and `zendeploy latency predict|validate|tables`."""

from __future__ import annotations

import contextlib
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .common import (
    RAY_AUTO, RAY_HELP, JsonOpt, ResOpt, RunOpt, StructArg, ZooOpt, console, err_console, print_json, run_command,
    device_choices_help, run_settings, space_choices_help, structure_source,
)

latency_app = typer.Typer(help="Predict latency from a table, validate a table, list tables.", no_args_is_help=True)

TableOpt = Annotated[Path, typer.Option("--table", "-t", help="Latency table (JSON) written by `zendeploy profile`.")]


@contextmanager
def phase_progress(enabled: bool = True):
    """A rich progress bar fed by ``ProgressEvent`` callbacks (``zendeploy.progress``); one task per phase, with ETA."""
    if not enabled:
        yield lambda event: None
        return
    with Progress(TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console,
                  transient=False) as bar:
        tasks: dict[str, int] = {}

        def update(event) -> None:
            if event.phase not in tasks:
                tasks[event.phase] = bar.add_task(event.phase, total=event.total, info=event.info)
            bar.update(tasks[event.phase], completed=event.done, total=event.total, info=event.info)  # type: ignore[arg-type]

        yield update


def profile_cmd(
    device: Annotated[str, typer.Option(help=device_choices_help())] = "cpu",
    space: Annotated[str, typer.Option(help=space_choices_help())] = "resnet",
    res: Annotated[int, typer.Option("--res", help="Input resolution.", min=8)] = 32,
    dataset: Annotated[Optional[str], typer.Option(help="Initial structure of the space: cifar or imagenet "
                                                        "(default: by resolution).")] = None,
    num_classes: Annotated[Optional[int], typer.Option(help="Classifier size (default: the dataset's).")] = None,
    batch: Annotated[int, typer.Option(help="Batch size the table is measured at.", min=1)] = 1,
    precision: Annotated[str, typer.Option(help="fp32, fp16 or int8 (fp16/int8: t4, pixel).")] = "fp32",
    threads: Annotated[int, typer.Option(help="CPU threads of the runtime (cpu, tflite-cpu, pixel).", min=1)] = 1,
    grid_networks: Annotated[int, typer.Option(help="Random networks whose units form the measured grid.",
                                               min=1)] = 60,
    calibration_networks: Annotated[int, typer.Option(help="Networks measured end to end for the calibration (half "
                                                           "with one width profile, half with a width per block).",
                                                      min=0)] = 48,
    max_macs: Annotated[Optional[str], typer.Option(help="Largest network to sample, e.g. 600M (default: twice the "
                                                         "largest official ZenNet of the space at --res, ~1G at 32).")]
    = None,
    min_macs: Annotated[Optional[str], typer.Option(help="Smallest network to sample (default: half the space's "
                                                         "initial structure).")] = None,
    passes: Annotated[int, typer.Option(help="Shuffled timing passes per unit (latency: the fastest run of all).",
                                        min=1)] = 5,
    serial: Annotated[Optional[str], typer.Option(help="adb serial of the phone (pixel).")] = None,
    delegate: Annotated[str, typer.Option(help="pixel: cpu or gpu delegate.")] = "cpu",
    benchmark_binary: Annotated[Optional[Path], typer.Option(help="pixel: benchmark_model built for the phone, "
                                                                  "TFLite's or LiteRT's (or set "
                                                                  "ZENDEPLOY_BENCHMARK_MODEL).")] = None,
    accelerator_library: Annotated[Optional[Path], typer.Option(
        help="pixel with LiteRT's benchmark_model and --delegate gpu: its libLiteRtClGlAccelerator.so (or set "
             "ZENDEPLOY_ACCELERATOR_LIBRARY).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Table path (default: "
                                                   "latency_tables/<device>-<backend>-<precision>-b<B>-<space>-r<R>.json)")] = None,
    keep_work: Annotated[bool, typer.Option(help="Keep converted unit files after success.")] = False,
    convert_only: Annotated[bool, typer.Option(help="Only convert the units (e.g. while the machine is busy); run "
                                                    "again without it to time them.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the timing order.")] = 0,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="[ADDRESS]", help=RAY_HELP + " Conversion fans out "
                                               "on the cluster; timing stays on the device, after it.")] = None,
    ray_cpus: Annotated[Optional[int], typer.Option("--ray-cpus", help="CPUs of a local Ray instance (--ray local).",
                                                    min=1)] = None,
    farm: Annotated[Optional[str], typer.Option("--farm", metavar="RESOURCE", help="Time on a device farm: the Ray "
                                                "nodes declaring this resource (e.g. t4, pixel7), one device each; "
                                                "implies --ray.")] = None,
):
    """Measure a latency table for a search space on a device (resumes an interrupted run)."""

    def body():
        from ..latency.profile_job import ProfileRequest, prepare_profile
        from ..search.budgets import parse_count

        options = {"serial": serial} | ({"delegate": delegate,
                                         "benchmark_binary": str(benchmark_binary) if benchmark_binary else None,
                                         "accelerator_library": str(accelerator_library) if accelerator_library
                                         else None} if device == "pixel" else {})
        job = prepare_profile(ProfileRequest(
            device=device, space=space, resolution=res, dataset=dataset, num_classes=num_classes, batch=batch,
            precision=precision, threads=threads, grid_networks=grid_networks,
            calibration_networks=calibration_networks, min_macs=parse_count(min_macs) if min_macs else None,
            max_macs=parse_count(max_macs) if max_macs else None, passes=passes, seed=seed, backend_options=options,
            output=output, on_farm=farm is not None))
        console.print(job.describe(), highlight=False)
        with contextlib.ExitStack() as stack:
            executor, farm_runner = _scale_out(stack, job, ray, ray_cpus, farm)
            with phase_progress() as progress:
                table = job.run(progress=progress, keep_work=keep_work, convert_only=convert_only,
                                executor=executor, farm=farm_runner)
            if executor is not None and executor.workers:
                _print_workers(executor.summary())
        if table is None:
            console.print("converted; time them with the same command without --convert-only")
            return
        _print_table_summary(table, job.out)
        console.print(f"next: zendeploy latency validate --table {job.out}")

    run_command(body)


def _scale_out(stack: contextlib.ExitStack, job, ray: str | None, ray_cpus: int | None, farm: str | None):
    """The CLI builds the scale-out and hands it to the library: a Ray executor for conversion (``--ray``) and a
    device farm for timing (``--farm``); (None, None) without them."""
    if ray is None and farm is None:
        return None, None
    from ..distributed.conversion import RayExecutor
    from ..distributed.runtime import connect

    cluster = stack.enter_context(connect(None if ray in (None, RAY_AUTO) else ray, num_cpus=ray_cpus))
    console.print(f"on {cluster.describe()}: conversion fans out; timing {'on the farm' if farm else 'here'} once "
                  f"it is done", highlight=False)
    farm_runner = None
    if farm is not None:
        from ..distributed.farm import Farm

        farm_runner = Farm(farm, job.backend)
        farm_runner.nodes()  # fails now, not after converting, when no node declares the resource
    return RayExecutor(), farm_runner


def _print_workers(rows: list[dict]) -> None:
    t = Table(title="conversion per worker", title_justify="left")
    for col in ("worker", "files", "busy s", "files/s"):
        t.add_column(col, justify="left" if col == "worker" else "right")
    for r in rows:
        rate = r["files_per_busy_second"]
        t.add_row(r["worker"], str(r["files"]), f"{r['busy_seconds']:.1f}", "-" if rate is None else f"{rate:.2f}")
    console.print(t)


def _print_table_summary(table, path) -> None:
    p = table.provenance
    console.print(f"[bold]{path}[/]: {len(table.entries)} measured units, device {p.device} ({p.device_name}), "
                  f"{p.backend_version}, {p.precision}, batch {p.batch}, threads {p.threads}")
    for m in table.unit_models:
        console.print(f"  unit model {m.family:<10} fitted on {m.fitted_on:>4} units, cross-validated error "
                      f"{m.cv_rel_error * 100:.1f}% (p90 {m.cv_rel_p90 * 100:.1f}%)")
    c = table.calibration
    if c:
        io = f" + {c.d_ms_per_melem:.5f} ms * boundary Melem" if c.kind == "affine_units_io" else ""
        weights = (f" + {c.e_ms_per_mb:.5f} ms * weight MB beyond {c.weights_free_mb:g}"
                   if c.weights_free_mb is not None else "")
        console.print(f"  calibration on {c.fitted_on} networks: y = {c.a_ms:.4f} ms + {c.b:.4f} * sum + "
                      f"{c.c_ms:.5f} ms * units{io}{weights}; MAPE {c.mape_raw:.1f}% raw -> {c.mape_calibrated:.1f}% "
                      f"calibrated ({c.error})", highlight=False)
    if p.drift.get("spread_pct") is not None:
        console.print(f"  reference unit drift over the run: {p.drift['spread_pct']:.1f}% (max/min - 1)")
    for line in p.notes:
        console.print(f"  note: {line}", highlight=False)


@latency_app.command("predict")
def predict_cmd(
    structure: StructArg = None,
    zoo: ZooOpt = None,
    run: RunOpt = None,
    table: TableOpt = ...,  # type: ignore[assignment]
    res: ResOpt = None,
    strict: Annotated[bool, typer.Option(help="Refuse a network outside the table's coverage instead of "
                                              "extrapolating.")] = False,
    units: Annotated[bool, typer.Option("--units", help="Show every unit's prediction.")] = False,
    as_json: JsonOpt = False,
):
    """Predicted latency of a structure from a table, with a 95% interval and the measured share."""

    def body():
        from ..builder import resolve
        from ..latency import load_predictor

        predictor = load_predictor(table)
        ran = run_settings(run)
        r = resolve(structure_source(structure, zoo, run), resolution=res or ran.get("resolution"),
                    num_classes=ran.get("num_classes"), se=ran.get("se"))
        resolution = r.resolution or predictor.resolution
        if resolution != predictor.resolution:  # on stderr: --json output stays valid JSON
            err_console.print(f"[yellow]warning:[/] the table was measured for resolution {predictor.resolution}; "
                              f"predicting at {resolution}", highlight=False)
        pred = predictor.predict(r.blocks, resolution, se=r.se, strict=strict,
                                 num_classes=r.num_classes if (zoo or run) else None)
        if as_json:
            print_json(dict(pred.to_dict(with_units=units), inside_coverage=pred.inside, unit=pred.unit,
                            structure=r.structure, resolution=resolution, table=str(table)))
            return
        cal = "calibrated" if pred.calibrated else "sum of units (table has no calibration)"
        anchor = predictor.table.anchor
        if anchor is not None:
            cal = f"calibrated, re-anchored {anchor.date[:10]}"
        console.print(f"latency {pred.latency_ms:.4f} ms per image (95% interval {pred.low_ms:.4f} .. "
                      f"{pred.high_ms:.4f} ms, {cal}) at batch {pred.batch} on {pred.device} ({pred.backend}, "
                      f"{pred.precision}); {pred.batch_latency_ms:.4f} ms per batch", highlight=False)
        console.print(f"units: {pred.n_units} ({pred.measured_units} measured, {pred.interpolated_units} "
                      f"interpolated, {pred.extrapolated_units} extrapolated); {pred.measured_share * 100:.0f}% of the "
                      f"raw sum {pred.raw_sum_ms:.4f} ms comes from measured entries", highlight=False)
        if pred.outside:
            console.print("[bold yellow]outside the table's coverage[/] (the number above is an extrapolation; "
                          "--strict refuses it):", highlight=False)
            for reason in pred.outside:
                console.print(f"  - {reason}", highlight=False, markup=False)
        else:
            console.print("inside the table's coverage", highlight=False)
        if anchor is not None:
            console.print(f"the table was re-anchored on {len(anchor.structures)} networks measured on "
                          f"{anchor.host.get('cpu_model') or 'its host'} at {anchor.date} ({anchor.speed_ratio:.2f}x "
                          f"the as-built predictions)" + (f"; its units were measured on {anchor.transferred_from}"
                                                          if anchor.transferred_from else ""), highlight=False)
        if units:
            t = Table("unit key", "ms", "sigma ms", "origin")
            for u in pred.units:
                t.add_row(u.key, f"{u.latency_ms:.4f}", f"{u.sigma_ms:.4f}", u.origin)
            console.print(t)

    run_command(body)


@latency_app.command("validate")
def validate_cmd(
    table: TableOpt = ...,  # type: ignore[assignment]
    samples: Annotated[int, typer.Option(help="Held-out networks (besides the official ZenNets) to measure end to "
                                               "end, spread over the table's range.", min=3)] = 50,
    passes: Annotated[int, typer.Option(help="Shuffled timing passes per network.", min=1)] = 5,
    plot: Annotated[Optional[Path], typer.Option(help="Scatter plot PNG (default: next to the table).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Report JSON (default: next to the "
                                                                          "table).")] = None,
    anchor: Annotated[int, typer.Option(help="Also measure this many of the table's calibration networks in the same "
                                             "passes and re-anchor the table on them before predicting (what "
                                             "`search --anchor` does); 0: the table as written.", min=0)] = 0,
    as_json: JsonOpt = False,
):
    """Measure held-out networks end to end and report the table's accuracy (raw and calibrated)."""

    def body():
        from ..latency.validate import save_report, validate_table

        stem = table.with_suffix("")
        with phase_progress(not as_json) as progress:
            report = validate_table(table, samples=samples, passes=passes, anchor=anchor,
                                    plot_path=plot or Path(f"{stem}.validation.png"), progress=progress)
        out = save_report(report, output or Path(f"{stem}.validation.json"))
        if as_json:
            print_json(report.to_dict())
            return
        print_accuracy_table(report)
        if report.official_outside:
            console.print(f"official ZenNets outside the table's MACs range, not measured (a search refuses them "
                          f"as outside coverage): {', '.join(report.official_outside)}", highlight=False)
        console.print(f"report {out}; plot {report.plot}")

    run_command(body)


@latency_app.command("refit")
def refit_cmd(
    table: TableOpt = ...,  # type: ignore[assignment]
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Refitted table (default: in place).")]
    = None,
    as_json: JsonOpt = False,
):
    """Fit a table's unit models and calibration again from its stored measurements (nothing is timed), e.g. after
    upgrading zendeploy; its validation report, when next to it, is recomputed on the same measurements."""

    def body():
        from ..latency.refit import refit_file
        from ..latency.sidecar import sidecar_path

        result = refit_file(table, output)
        new, out, before, after = result.table, result.out, result.before, result.after
        if result.networks_added or result.lines_skipped:
            skipped = result.lines_skipped
            err_console.print(f"{sidecar_path(table)}: {result.networks_added} network(s) measured since profiling "
                              f"join the calibration" + (f"; {skipped} line(s) of another device, resolution or "
                                                         f"class count skipped" if skipped else ""), highlight=False)
        if as_json:
            print_json({"table": str(out), "unit_models": [m.model_dump() for m in new.unit_models],
                        "calibration": new.calibration.model_dump() if new.calibration else None,
                        "validation_before": before.to_dict() if before else None,
                        "validation_after": after.to_dict() if after else None})
            return
        _print_table_summary(new, out)
        if after is not None:
            console.print(f"held-out validation (same {after.samples} measured networks), before -> after:")
            for name in ("raw", "calibrated"):
                b, a = getattr(before, name), getattr(after, name)
                if a is not None and b is not None:
                    console.print(f"  {name:<10} MAPE {b.mape_pct:.2f}% -> {a.mape_pct:.2f}%, within 10% "
                                  f"{b.within_10_pct:.0f}% -> {a.within_10_pct:.0f}%, Kendall {b.kendall_tau:.3f} -> "
                                  f"{a.kendall_tau:.3f}")

    run_command(body)


def print_accuracy_table(report) -> None:
    t = Table(title=f"{report.device} ({report.backend}): {report.samples} held-out networks, budget = median "
                    f"measured latency")
    for col in ("prediction", "MAPE %", "within 5%", "within 10%", "max err %", "bias %", "Kendall tau",
                "budget violations"):
        t.add_column(col, justify="right")
    rows = [("sum of units", report.raw), ("calibrated", report.calibrated)]
    if report.as_built is not None:  # validate --anchor: the table as written, then re-anchored on this host
        rows = [("sum of units", report.raw), ("calibrated, as built", report.as_built),
                (f"calibrated, re-anchored ({report.anchor.get('networks')} networks)", report.calibrated)]
    for name, acc in rows:
        if acc is None:
            continue
        t.add_row(name, f"{acc.mape_pct:.2f}", f"{acc.within_5_pct:.0f}%", f"{acc.within_10_pct:.0f}%",
                  f"{acc.max_abs_error_pct:.1f}", f"{acc.mean_error_pct:+.2f}", f"{acc.kendall_tau:.3f}",
                  f"{acc.violation_rate_pct:.1f}% of {acc.predicted_under_budget}")
    console.print(t)
    if report.anchor:
        console.print(f"re-anchored on {report.anchor['networks']} calibration networks measured in the same passes: "
                      f"this host ran at {report.anchor['speed_ratio']:.2f}x the as-built predictions; predictions "
                      f"used: {report.anchor.get('method')}", highlight=False)


@latency_app.command("anchor")
def anchor_cmd(
    table: TableOpt = ...,  # type: ignore[assignment]
    networks: Annotated[int, typer.Option(help="Calibration networks to measure again (spread over their MACs).",
                                          min=4)] = 12,
    passes: Annotated[int, typer.Option(help="Shuffled timing passes per network.", min=1)] = 5,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Anchored table (default: in place).")]
    = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the anchor: predict from the as-built calibration "
                                                        "again (nothing is timed).")] = False,
    as_json: JsonOpt = False,
):
    """Re-anchor a table to this host's speed now: measure some of its calibration networks end to end again and
    refit the calibration on them (the units stay as built). Only on the table's own device."""

    def body():
        from ..latency.anchor import anchor_table, clear_anchor
        from ..latency.backends import backend_for
        from ..latency.tables import load_table, save_table

        old = load_table(table)
        out = output or table
        if clear:
            save_table(clear_anchor(old), out)
            console.print(f"{out}: anchor removed; predictions use the calibration as built")
            return
        backend = backend_for(old)
        work = Path(f"{Path(table).with_suffix('')}.work") / "anchor"
        with phase_progress(not as_json) as progress:
            new = anchor_table(old, backend, networks=networks, passes=passes, workdir=work, progress=progress)
        save_table(new, out)
        a = new.anchor
        if as_json:
            print_json({"table": str(out), "anchor": a.model_dump(mode="json") if a else None})
            return
        if a is not None:
            errors = ", ".join(f"{k} {v:.1f}%" for k, v in a.loo_mape_pct.items())
            console.print(f"{out}: re-anchored on {len(a.structures)} calibration networks measured now; this host "
                          f"runs at {a.speed_ratio:.2f}x the as-built predictions; predictions now use: {a.method} "
                          f"(leave-one-out error on those networks: {errors})", highlight=False)

    run_command(body)


@latency_app.command("tables")
def tables_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder of tables.")] = Path("latency_tables"),
    as_json: JsonOpt = False,
):
    """List latency tables with their provenance."""

    def body():
        from ..latency.tables import list_tables

        rows = list_tables(folder)
        if as_json:
            print_json(rows)
            return
        from ..cost import format_count

        tab = Table("table", "device", "backend", "precision", "batch", "space", "res", "units",
                    "covers (MACs, ms per image)", "date")
        for r in rows:
            if "error" in r:
                tab.add_row(r["path"], "[red]invalid[/]", r["error"], "", "", "", "", "", "", "")
            else:
                covers = "-"
                if r["covered_macs"] and r["covered_ms_per_image"]:
                    (a, b), (c, d) = r["covered_macs"], r["covered_ms_per_image"]
                    covers = f"{format_count(a)}-{format_count(b)}, {c:.3g}-{d:.3g}"
                tab.add_row(r["path"], f"{r['device']} ({r['device_name']})", r["backend_version"], r["precision"],
                            str(r["batch"]), r["space"], str(r["resolution"]), str(r["entries"]), covers,
                            r["date"] + (f" (re-anchored {r['anchored'][:10]})" if r.get("anchored") else ""))
        console.print(tab)

    run_command(body)


def register(app: typer.Typer) -> None:
    app.command("profile")(profile_cmd)
    app.add_typer(latency_app, name="latency")
