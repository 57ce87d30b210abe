"""Export a ZenNet to deployable files, check each against PyTorch and time it: ``zendeploy export`` as a library.

    >>> from zendeploy.export import ExportConfig, export
    >>> report = export("zennet_imagenet1k_flops400M_SE_res224", ExportConfig("onnx,tflite", nhwc=True,
    ...                 weights="z400.pth", output_dir="exports/z400"))
    >>> report.row("tflite").parity.max_rel_err

(``export_model(source, "onnx,tflite", nhwc=True, ...)`` is the same call with the fields as keyword arguments.)

One table, :data:`FORMATS`, drives everything about the targets: option validation, dispatch to the converters
(:mod:`zendeploy.convert.onnx`, :mod:`zendeploy.convert.tflite`, :mod:`.engine`) through :data:`EXPORTERS` (one per
row, keyed alike), the CLI's choices and help, the benchmark rows and the README table (:func:`formats_markdown`). :func:`export` normalises aliases (``litert`` -> ``tflite``, ``trt`` /
``tensorrt`` -> ``engine``), refuses an unknown format with the closest name (never a guessed one), validates every
option against every requested row, then for each format: export (timed), parity check against PyTorch on seeded
random inputs, end-to-end latency on the local runtime, and the latency-table prediction when a table is given. A
format that fails is a ``failed`` row with its reason, not a crash; TensorRT where it is not installed is a
``skipped`` row. The report is written atomically to ``<output_dir>/report.json``.

Converters for other code (any ``nn.Module``): :func:`zendeploy.convert.onnx.export_onnx`,
:func:`zendeploy.convert.tflite.export_tflite`, :func:`zendeploy.convert.tflite.export_tflite_signatures`,
:func:`zendeploy.export.engine.build_engine`; checks: :func:`zendeploy.export.parity.check_parity`.
Heavy libraries are imported inside the functions that need them: importing this package does not import torch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from profilers.common import file_sha256

from ..errors import ExportError, MissingExtraError, RegistryError, StructureError, ZenDeployError, require
from ..registry import Registry, unknown_name_message

_log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from .report import ExportReport, FormatRow

from .config import DEFAULT_OPSET, ExportConfig

PRECISIONS = ("fp32", "fp16", "int8")
INPUT_NAME, OUTPUT_NAME = "input", "output"


@dataclass(frozen=True)
class FormatSpec:
    """One export target (a row of :data:`FORMATS`)."""

    key: str  # CLI value
    name: str  # display name
    aliases: tuple[str, ...]
    suffix: str
    extra: str  # pip install "zendeploy[<extra>]"
    modules: tuple[str, ...]  # what must import to export and check this format
    runtime: str  # local runtime that runs the parity check and the timing
    backend: str  # latency-table backend name a prediction must come from
    device: str  # cpu | gpu
    precisions: tuple[str, ...]
    options: frozenset[str]  # option names accepted (see OPTIONS)
    builds_from: str | None = None  # another format exported first (engine <- onnx)
    skip_when_missing: bool = False  # absent runtime/hardware -> a skipped row instead of an error
    description: str = ""


@dataclass(frozen=True)
class OptionSpec:
    name: str  # keyword of export_model
    flag: str  # CLI flag
    default: Any
    help: str


OPTIONS: dict[str, OptionSpec] = {o.name: o for o in (
    OptionSpec("opset", "--opset", DEFAULT_OPSET, "ONNX opset"),
    OptionSpec("dynamic_batch", "--dynamic-batch", False, "symbolic batch axis"),
    OptionSpec("nhwc", "--nhwc", False, "channels-last (NHWC) input and feature outputs"),
    OptionSpec("representative", "--representative", None, "int8 calibration images"),
    OptionSpec("timing_cache", "--timing-cache", None, "TensorRT timing cache file"),
)}

FORMATS: Registry[FormatSpec] = Registry("export format")
for _spec in (
    FormatSpec(
        "onnx", "ONNX", (), ".onnx", "onnx", ("onnx", "onnxruntime"), "onnxruntime-cpu", "onnxruntime", "cpu",
        ("fp32",), frozenset({"opset", "dynamic_batch", "nhwc"}),
        description="one self-contained .onnx, BatchNorm folded, ONNX-checked; ONNX Runtime parity",
    ),
    FormatSpec(
        "tflite", "TFLite", ("litert", "tfl"), ".tflite", "tflite", ("litert_torch", "ai_edge_litert"), "litert-cpu",
        "litert", "cpu", ("fp32", "fp16", "int8"), frozenset({"nhwc", "representative"}),
        description="LiteRT flatbuffer via litert-torch; fp16 weights or int8 PTQ; LiteRT interpreter parity",
    ),
    FormatSpec(
        "engine", "TensorRT", ("trt", "tensorrt"), ".engine", "tensorrt", ("onnx", "onnxruntime"), "tensorrt",
        "tensorrt", "gpu", ("fp32", "fp16", "int8"), frozenset({"opset", "dynamic_batch", "nhwc", "timing_cache"}),
        builds_from="onnx", skip_when_missing=True,
        description="TensorRT plan built from the ONNX file by the T4 profiler's builder (needs TensorRT + GPU)",
    ),
):
    FORMATS.register(_spec.key, _spec)

def _all_specs() -> list[FormatSpec]:
    return [spec for _, spec in FORMATS.items()]


ALIASES: dict[str, str] = {alias: spec.key for spec in _all_specs() for alias in (spec.key, *spec.aliases)}


def list_formats() -> list[str]:
    return FORMATS.names()


def get_format(name: str) -> FormatSpec:
    """The row for a format name or alias (case-insensitive); unknown names raise with the closest match."""
    key = ALIASES.get(name.strip().lower())
    if key is None:
        raise RegistryError(unknown_name_message("export format", name.strip(), sorted(ALIASES)))
    return FORMATS.get(key)


def resolve_formats(formats: str | Iterable[str]) -> list[FormatSpec]:
    """``"onnx,litert"`` or ``["onnx", "trt"]`` -> rows, aliases resolved, duplicates dropped, order kept."""
    names = formats.split(",") if isinstance(formats, str) else list(formats)
    names = [n for n in (str(n).strip() for n in names) if n]
    if not names:
        raise ExportError(f"no export format given (valid: {', '.join(list_formats())})")
    rows: list[FormatSpec] = []
    for name in names:
        spec = get_format(name)
        if spec not in rows:
            rows.append(spec)
    return rows


def validate_options(specs: Sequence[FormatSpec], *, precision: str, **options: Any) -> None:
    """Every non-default option and the precision must be accepted by every requested format (one-line error)."""
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision '{precision}' (valid: {', '.join(PRECISIONS)})")
    for spec in specs:
        if precision not in spec.precisions:
            takers = [s.key for s in _all_specs() if precision in s.precisions]
            raise ExportError(
                f"format '{spec.key}' does not support precision {precision} (it supports "
                f"{', '.join(spec.precisions)}; {precision} is available for {', '.join(takers)}): export them "
                f"in separate runs"
            )
    for name, value in options.items():
        opt = OPTIONS.get(name)
        if opt is None:
            raise ExportError(f"unknown export option '{name}' (valid: {', '.join(OPTIONS)})")
        if value is None or value == opt.default:
            continue
        refusing = [s.key for s in specs if name not in s.options]
        if refusing:
            takers = [s.key for s in _all_specs() if name in s.options]
            raise ExportError(f"{opt.flag} is not supported by format {', '.join(refusing)} "
                              f"(formats that accept it: {', '.join(takers)})")
    if options.get("representative") is not None and precision != "int8":
        raise ExportError("--representative is only used for int8 calibration; add --precision int8")
    opset = options.get("opset")
    if opset is not None and (not isinstance(opset, int) or opset < 11):
        raise ExportError(f"opset must be an integer >= 11, got {opset!r}")


def check_extras(specs: Sequence[FormatSpec]) -> None:
    """Import what each requested format needs, or raise MissingExtraError with the one-line install hint.

    Formats marked ``skip_when_missing`` (TensorRT) are not checked here for their own runtime: they become a
    skipped row. Their ``builds_from`` format's modules are checked.
    """
    for spec in specs:
        base = FORMATS.get(spec.builds_from) if spec.builds_from else spec
        for module in base.modules:
            require(module, base.extra, f"{spec.name} export")


def formats_markdown() -> str:
    """The README table of export formats, generated from :data:`FORMATS`."""
    lines = ["| format | `--format` | aliases | file | extra | precisions | options | runs on |",
             "|---|---|---|---|---|---|---|---|"]
    for s in _all_specs():
        opts = ", ".join(f"`{OPTIONS[o].flag}`" for o in OPTIONS if o in s.options)
        lines.append(f"| {s.name} | `{s.key}` | {', '.join(s.aliases) or '-'} | "
                     f"`{s.suffix}` | `zendeploy[{s.extra}]` | {', '.join(s.precisions)} | {opts} | {s.runtime} |")
    return "\n".join(lines)


def default_name(source: str | Sequence[Any]) -> str:
    """Folder name for an export: the zoo name, or ``net_<hash>`` of a structure string."""
    from ..builder import resolve

    r = resolve(source)
    if r.zoo_name:
        return r.zoo_name
    return "net_" + hashlib.sha1(r.structure.encode()).hexdigest()[:10]


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    from profilers.common import environment_fingerprint

    versions: dict[str, Any] = {}
    for dist in ("torch", "onnx", "onnxruntime", "litert-torch", "ai-edge-litert", "tensorrt"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = None
    env = environment_fingerprint(versions)
    env.pop("hostname", None)  # reports get shared; the host name says nothing about speed
    return env


def export_model(source: str | Sequence[Any], formats: str | Iterable[str] = "onnx", *,
                 log: Callable[[str], None] | None = None, **options: Any) -> "ExportReport":
    """``export(source, ExportConfig(formats, **options), log=log)``: the fields of :class:`ExportConfig` as
    keyword arguments (an unknown one is a TypeError)."""
    from .config import config_from_options

    return export(source, config_from_options(formats, options), log=log)


def export(source: str | Sequence[Any], config: "ExportConfig", *, log: Callable[[str], None] | None = None
           ) -> "ExportReport":
    """Build the network of ``source`` (zoo name, structure string or block specs), export it to each of
    ``config.formats``, check parity, time it, and save ``<output_dir>/report.json``; returns the report.

    User mistakes found before any work (unknown format, option a format does not accept, missing extra, bad
    structure, bad weights or table file) raise a ZenDeployError. Problems of one format afterwards become its
    ``failed`` row; ``report.ok`` is False when any row failed. ``log`` receives progress lines; warnings go to
    ``logging`` (logger ``zendeploy.export``) and into ``report.warnings``.
    """
    c = config
    formats, output_dir, name, weights = c.formats, c.output_dir, c.name, c.weights
    resolution, batch = c.resolution, c.batch
    dynamic_batch, nhwc, precision, opset = c.dynamic_batch, c.nhwc, c.precision, c.opset
    representative, timing_cache, table = c.representative, c.timing_cache, c.table
    num_classes, se, measure, threads = c.num_classes, c.se, c.measure, c.threads
    say = log or (lambda message: None)
    specs = resolve_formats(formats)
    validate_options(specs, precision=precision, opset=opset, dynamic_batch=dynamic_batch, nhwc=nhwc,
                     representative=representative, timing_cache=timing_cache)
    if batch < 1:
        raise ExportError(f"batch must be >= 1, got {batch}")
    if representative is not None and not Path(representative).is_dir():
        raise ExportError(f"representative data folder '{representative}' does not exist")
    check_extras(specs)

    from .. import __version__
    from ..builder import ZenNet, resolve
    from ..weights import load_weights
    from ..convert.common import utc_now
    from .report import ExportReport

    r = resolve(source, num_classes=num_classes, se=se, resolution=resolution)
    if r.resolution is None:
        raise StructureError("--res is required for a structure string (only zoo entries carry a resolution)")
    res = int(r.resolution)
    from ..cost import check_fits

    check_fits(r.blocks, res, batch=batch, num_classes=r.num_classes, se=r.se, what="exporting this network")
    predictor = _load_predictor(table) if table is not None else None
    model = ZenNet(r.blocks, num_classes=r.num_classes, se=r.se)
    model.check_resolution(res)
    warnings: list[str] = []
    if weights is not None:
        load_weights(model, weights)
    else:
        warnings.append("no --weights given: the model has random initial weights (untrained); its outputs are "
                        "meaningless; only the files' format, parity and speed mean something")
        _log.warning(warnings[-1])
    model.eval()

    name = name or (r.zoo_name or default_name(r.structure))
    out = Path(output_dir) if output_dir is not None else Path("exports") / name
    out.mkdir(parents=True, exist_ok=True)
    input_shape = (batch, model.in_channels, res, res)
    layout = "NHWC" if nhwc else "NCHW"
    metadata = {
        "structure": r.structure, "zoo_name": r.zoo_name or "", "resolution": res, "num_classes": r.num_classes,
        "se": r.se, "batch": batch, "dynamic_batch": dynamic_batch, "layout": layout, "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME, "weights": Path(weights).name if weights else "", "untrained": weights is None,
    }
    report = ExportReport(
        zendeploy_version=__version__, created_utc=utc_now(), name=name, structure=r.structure, zoo_name=r.zoo_name,
        resolution=res, num_classes=r.num_classes, se=r.se, batch=batch, dynamic_batch=dynamic_batch,
        layout=layout, precision=precision, opset=opset, input_name=INPUT_NAME, output_name=OUTPUT_NAME,
        input_shape=list(input_shape), weights=str(weights) if weights else None,
        weights_sha256=file_sha256(weights) if weights else None, untrained=weights is None,
        table=str(table) if table else None, output_dir=str(out), warnings=warnings, environment=_environment(),
    )
    lut = None
    if predictor is not None:
        lut = predictor.predict(r.blocks, res, se=r.se, num_classes=r.num_classes)
    timing = c.timing
    ctx = _Context(model=model, out=out, input_shape=input_shape, nhwc=nhwc, precision=precision, opset=opset,
                   dynamic_batch=dynamic_batch, representative=representative, timing_cache=timing_cache,
                   metadata=metadata, parity_inputs=c.parity_inputs, seed=c.seed, measure=measure, threads=threads,
                   timing=timing, say=say)
    for spec in specs:
        row = _export_one(spec, ctx)
        if lut is not None and row.latency_ms is not None:
            _fill_lut(row, spec, lut, predictor, batch=batch, nhwc=nhwc, num_classes=r.num_classes)
        elif predictor is not None and row.status == "ok":
            row.lut_note = "not measured"
        report.rows.append(row)
        say(f"{spec.key}: {row.status}" + (f" ({row.reason})" if row.reason else ""))
    _write_manifests(report, out)
    report.save()
    return report


def _write_manifests(report: "ExportReport", out: Path) -> None:
    """One profiler manifest per exported format (``manifest.<format>.json``), for the device-side runners:
    ``python -m profilers.litert.adb ... --manifest exports/NAME/manifest.tflite.json``."""
    from ..convert.common import atomic_write_json

    for row in report.rows:
        if row.status != "ok" or not row.file:
            continue
        path = out / f"manifest.{row.format}.json"
        key = f"{report.name}_{row.format}_{row.precision}_{row.layout.lower()}_b{report.batch}"
        atomic_write_json(path, [{"key": key, "path": Path(row.file).name}])
        report.manifests[row.format] = str(path)


@dataclass
class _Context:
    model: Any
    out: Path
    input_shape: tuple[int, ...]
    nhwc: bool
    precision: str
    opset: int
    dynamic_batch: bool
    representative: Any
    timing_cache: Any
    metadata: dict[str, Any]
    parity_inputs: int
    seed: int
    measure: bool
    threads: int
    timing: dict[str, Any]
    say: Callable[[str], None]
    onnx_file: Path | None = None


def _file_name(spec: FormatSpec, ctx: _Context) -> Path:
    if spec.key == "onnx":
        return ctx.out / "model.onnx"
    layout = "_nhwc" if ctx.nhwc else ""
    return ctx.out / f"model_{ctx.precision}{layout}{spec.suffix}"


def _export_onnx_file(ctx: _Context) -> Path:
    from ..convert.common import channels_last_module
    from ..convert.onnx import export_onnx

    if ctx.onnx_file is None:
        module = channels_last_module(ctx.model) if ctx.nhwc else ctx.model
        shape = ctx.input_shape
        if ctx.nhwc:
            from ..convert.common import nhwc_shape

            shape = nhwc_shape(shape)
        ctx.onnx_file = export_onnx(module, ctx.out / "model.onnx", input_shape=shape, opset=ctx.opset,
                                    dynamic_batch=ctx.dynamic_batch, input_name=INPUT_NAME, output_name=OUTPUT_NAME,
                                    metadata=ctx.metadata)
    return ctx.onnx_file


@dataclass(frozen=True)
class _Exporter:
    """How one row of :data:`FORMATS` is exported: ``export(ctx, spec, row) -> file``, and ``missing() -> reason or None``
    for a format whose runtime or hardware may be absent (a skipped row, never an error)."""

    export: Callable[[_Context, FormatSpec, Any], Path]
    missing: Callable[[], str | None] | None = None


def _export_tflite(ctx: _Context, spec: FormatSpec, row) -> Path:
    from ..convert.tflite import export_tflite

    return export_tflite(ctx.model, _file_name(spec, ctx), input_shape=ctx.input_shape, nhwc=ctx.nhwc,
                         precision=ctx.precision, representative=ctx.representative, metadata=ctx.metadata)


def _export_engine(ctx: _Context, spec: FormatSpec, row) -> Path:
    from .engine import build_engine

    source = _export_onnx_file(ctx)
    row.source_file = str(source)
    shapes = None
    if ctx.dynamic_batch:
        from ..convert.common import nhwc_shape

        shapes = {INPUT_NAME: nhwc_shape(ctx.input_shape) if ctx.nhwc else ctx.input_shape}
    return build_engine(source, _file_name(spec, ctx), precision=ctx.precision,
                        timing_cache=ctx.timing_cache, input_shapes=shapes)


def _tensorrt_missing() -> str | None:
    from .engine import tensorrt_missing

    return tensorrt_missing()


# the dispatch, keyed like FORMATS (tests/test_export.py checks that every format has one)
EXPORTERS: dict[str, _Exporter] = {
    "onnx": _Exporter(lambda ctx, spec, row: _export_onnx_file(ctx)),
    "tflite": _Exporter(_export_tflite),
    "engine": _Exporter(_export_engine, missing=_tensorrt_missing),
}


def _export_one(spec: FormatSpec, ctx: _Context) -> "FormatRow":
    """Export, check and time one format; every problem becomes the row's status and reason."""
    from . import runtime as rt
    from .parity import TOLERANCES, check_parity, random_inputs
    from .report import FormatRow, ParityResult

    row = FormatRow(format=spec.key, name=spec.name, status="ok", precision=ctx.precision,
                    layout="NHWC" if ctx.nhwc else "NCHW")
    exporter = EXPORTERS.get(spec.key)
    if exporter is None:  # pragma: no cover - FORMATS and EXPORTERS are kept in step by tests
        raise ExportError(f"no exporter for format '{spec.key}'")
    reason = exporter.missing() if exporter.missing is not None else None
    if reason is not None:
        row.status, row.reason = "skipped", reason
        return row
    ctx.say(f"{spec.key}: exporting ...")
    step = "export"
    try:
        t0 = time.perf_counter()
        path = exporter.export(ctx, spec, row)
        row.export_s = round(time.perf_counter() - t0, 4)
        row.file = str(path)
        row.size_mb = round(path.stat().st_size / 1e6, 4)

        step = "parity check"
        t0 = time.perf_counter()
        runner = rt.open_runner(spec.key, path, **({"threads": ctx.threads} if spec.key != "engine" else {}))
        inputs = random_inputs(ctx.input_shape, ctx.parity_inputs, ctx.seed)
        label = "random"
        if ctx.dynamic_batch and spec.key != "tflite":  # prove the batch axis is free: one input one larger
            inputs[-1] = random_inputs((ctx.input_shape[0] + 1, *ctx.input_shape[1:]), 1, ctx.seed + 1)[0]
        if ctx.precision == "int8" and ctx.representative is not None:  # drift on the data it was calibrated for
            from ..convert.tflite import representative_from_folder

            batches = representative_from_folder(ctx.representative, ctx.input_shape)
            inputs, label = [b.numpy() for b in batches[:max(ctx.parity_inputs, 1)]], "representative"
        tolerance = TOLERANCES[ctx.precision]
        record = check_parity(ctx.model, runner, input_shape=ctx.input_shape, nhwc=ctx.nhwc, tolerance=tolerance,
                              seed=ctx.seed, runtime=spec.runtime, inputs=inputs, inputs_label=label)
        row.parity_s = round(time.perf_counter() - t0, 4)
        row.parity = ParityResult(**record.to_dict())
        if record.passed is False:
            row.status, row.reason = "failed", f"parity: {record.message}"
            return row

        if ctx.measure:
            step = "timing"
            t0 = time.perf_counter()
            lat = rt.measure_latency(spec.key, path, batch=ctx.input_shape[0], threads=ctx.threads, **ctx.timing)
            row.measure_s = round(time.perf_counter() - t0, 4)
            row.runtime, row.threads, row.n_runs = lat.runtime, lat.threads, lat.n
            row.median_ms, row.p90_ms = round(lat.median_ms, 5), round(lat.p90_ms, 5)
            row.mean_ms, row.std_ms = round(lat.mean_ms, 5), round(lat.std_ms, 5)
            row.latency_ms = round(lat.latency_ms, 5)
            row.pass_medians_ms = [round(v, 5) for v in lat.pass_medians_ms]
            row.pass_mins_ms = [round(v, 5) for v in lat.pass_mins_ms]
    except MissingExtraError as exc:
        row.status, row.reason = ("skipped" if spec.skip_when_missing else "failed"), str(exc)
    except ZenDeployError as exc:
        row.status, row.reason = "failed", f"{step}: {_first_line(exc)}"
    except Exception as exc:  # a converter's own exception: keep the other formats going
        if os.environ.get("ZENDEPLOY_DEBUG"):
            raise
        row.status, row.reason = "failed", f"{step}: {type(exc).__name__}: {_first_line(exc)}"
    return row


def _load_predictor(table: str | os.PathLike):
    try:
        from ..latency.predict import load_predictor
    except ImportError:
        raise ExportError("--table needs zendeploy.latency (latency tables), which this installation lacks") from None
    return load_predictor(table)


def _fill_lut(row: "FormatRow", spec: FormatSpec, lut: Any, predictor: Any, *, batch: int, nhwc: bool,
              num_classes: int) -> None:
    """Put the table's prediction in the row when the table was measured like the row (else say why not)."""
    have = {"backend": getattr(predictor, "backend", None), "precision": getattr(predictor, "precision", None),
            "batch": getattr(predictor, "batch", None), "device": getattr(predictor, "device", None)}
    from ..latency.devices import local_device_for

    here = local_device_for(spec.key)  # the device table: onnx -> cpu, tflite -> tflite-cpu; an engine: any GPU
    devices = None if here is None else (here,)
    mismatch = []
    if have["backend"] is not None and have["backend"] != spec.backend:
        mismatch.append(f"backend {have['backend']} (row: {spec.backend})")
    if have["precision"] is not None and have["precision"] != row.precision:
        mismatch.append(f"precision {have['precision']} (row: {row.precision})")
    if have["batch"] is not None and int(have["batch"]) != batch:
        mismatch.append(f"batch {have['batch']} (row: {batch})")
    if devices is not None and have["device"] is not None and have["device"] not in devices:
        mismatch.append(f"device {have['device']} (measured here: {devices[0]})")
    table_classes = getattr(getattr(getattr(predictor, "table", None), "space", None), "num_classes", None)
    if table_classes is not None and int(table_classes) != num_classes:
        mismatch.append(f"{table_classes} classes (row: {num_classes}; pass --num-classes)")
    if mismatch:
        row.lut_note = "table was measured with " + ", ".join(mismatch)
        return
    per_batch = float(getattr(lut, "batch", 1) or 1)  # the row times whole batches; predictions are per image
    row.lut_ms = round(float(getattr(lut, "batch_latency_ms", lut.latency_ms * per_batch)), 5)
    row.lut_sigma_ms = round(float(lut.sigma_ms) * per_batch, 5)
    if row.latency_ms:
        row.error_pct = round(100.0 * (row.lut_ms - row.latency_ms) / row.latency_ms, 2)
    table_layout = getattr(getattr(getattr(predictor, "table", None), "provenance", None), "input_layout", None)
    if table_layout and table_layout != ("NHWC" if nhwc else "NCHW"):
        row.lut_note = f"table layout {table_layout} differs from the export's"


__all__ = [
    "FORMATS", "OPTIONS", "PRECISIONS", "ExportConfig", "FormatSpec", "OptionSpec", "check_extras", "export",
    "export_model",
    "formats_markdown", "get_format", "list_formats", "resolve_formats", "validate_options",
]
