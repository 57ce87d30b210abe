"""Benchmark zendeploy export: time per format, and the exported files' latency vs PyTorch eager on this CPU.

    python tools/bench_export.py                                  # tiny + CIFAR zoo nets, onnx and tflite
    python tools/bench_export.py --zoo zennet_imagenet1k_flops400M_SE_res224 --res 224 --formats onnx,tflite
    python tools/bench_export.py --units test_tiny_mobilenet --units-count 8   # per-unit conversion cost
    python tools/bench_export.py --json bench.json                # also save the rows as JSON

Network table, one row per (network, format): export seconds, parity max rel error, median / p90 ms of one inference
on the format's local runtime (ONNX Runtime CPU, LiteRT CPU with XNNPACK) and of PyTorch eager (``torch.no_grad``),
all single-threaded unless ``--threads``, and the speed-up over eager. Export and timing run through the same
``export_model`` as ``zendeploy export``; eager timing uses the profilers' timing loop (warm-up, then at least
``--repeats`` runs and ``--min-time`` seconds).

Unit table (``--units NAME``): what the latency-table builder pays per unit: ``export_onnx`` per unit,
``export_tflite`` per unit (NHWC, fp32) and one ``export_tflite_signatures`` file holding the same units.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_ZOO = ["test_tiny_resnet", "test_tiny_mobilenet", "zennet_cifar10_model_size05M_res32"]


def _eager_stats(model, shape, *, warmup: int, repeats: int, min_time_s: float):
    import torch
    from profilers.common import time_callable

    x = torch.randn(shape)
    with torch.no_grad():
        return time_callable(lambda: model(x), warmup, repeats=repeats, min_time_s=min_time_s)


def bench_networks(names, *, res, formats, threads, warmup, repeats, min_time_s, work: Path) -> list[dict]:
    import torch

    from zendeploy import build_model
    from zendeploy.export import export_model

    torch.set_num_threads(threads)
    rows = []
    for name in names:
        model = build_model(name).eval()
        from zendeploy.zoo import get_zoo

        resolution = res or get_zoo(name).resolution
        eager = _eager_stats(model, (1, model.in_channels, resolution, resolution), warmup=warmup, repeats=repeats,
                             min_time_s=min_time_s)
        rows.append({"network": name, "resolution": resolution, "format": "pytorch-eager", "export_s": None,
                     "size_mb": None, "max_rel_err": None, "median_ms": eager.median_ms, "p90_ms": eager.p90_ms,
                     "speedup": 1.0, "status": "ok"})
        for fmt in formats:
            report = export_model(name, fmt, output_dir=work / name / fmt, resolution=resolution, threads=threads,
                                  warmup=warmup, repeats=repeats, min_time_s=min_time_s,
                                  nhwc=fmt in ("tflite", "litert"))
            for r in report.rows:
                rows.append({
                    "network": name, "resolution": resolution, "format": f"{r.format} {r.layout}",
                    "export_s": r.export_s, "size_mb": r.size_mb,
                    "max_rel_err": r.parity.max_rel_err if r.parity else None,
                    "median_ms": r.median_ms, "p90_ms": r.p90_ms,
                    "speedup": (eager.median_ms / r.median_ms) if r.median_ms else None,
                    "status": r.status if not r.reason else f"{r.status}: {r.reason}",
                })
    return rows


def bench_units(name, *, count: int, res, work: Path) -> list[dict]:
    from zendeploy.convert.onnx import export_onnx
    from zendeploy.convert.tflite import export_tflite, export_tflite_signatures
    from zendeploy.space.blocks import build_unit
    from zendeploy.space.structure import parse_structure
    from zendeploy.space.units import network_units
    from zendeploy.zoo import get_zoo

    entry = get_zoo(name)
    resolution = res or entry.resolution
    placed = network_units(parse_structure(entry.structure), resolution, se=entry.se, num_classes=entry.num_classes)
    placed = placed[:count]
    modules = {f"u{i}_{p.unit.kind}": (build_unit(p.unit).eval(), (1, p.unit.in_channels, p.resolution, p.resolution))
               for i, p in enumerate(placed)}
    rows = []
    # Warm-up conversions: the first call of each converter pays imports and one-off initialisation.
    first_name, (first_module, first_shape) = next(iter(modules.items()))
    export_onnx(first_module, work / "warm.onnx", input_shape=first_shape)
    export_tflite(first_module, work / "warm.tflite", input_shape=first_shape)
    for label, fn in (
        ("export_onnx, per unit", lambda n, m, s: export_onnx(m, work / f"{n}.onnx", input_shape=s)),
        ("export_tflite NHWC fp32, per unit", lambda n, m, s: export_tflite(m, work / f"{n}.tflite", input_shape=s)),
    ):
        times = []
        for n, (m, s) in modules.items():
            t0 = time.perf_counter()
            fn(n, m, s)
            times.append(time.perf_counter() - t0)
        rows.append({"what": label, "units": len(times), "total_s": sum(times), "per_unit_s": sum(times) / len(times),
                     "min_s": min(times), "max_s": max(times)})
    t0 = time.perf_counter()
    export_tflite_signatures(modules, work / "units.tflite", nhwc=True)
    total = time.perf_counter() - t0
    rows.append({"what": "export_tflite_signatures, one file", "units": len(modules), "total_s": total,
                 "per_unit_s": total / len(modules), "min_s": None, "max_s": None})
    return rows


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", action="append", help=f"zoo network (repeatable; default: {', '.join(DEFAULT_ZOO)})")
    parser.add_argument("--res", type=int, default=None, help="input resolution (default: the zoo entry's)")
    parser.add_argument("--formats", default="onnx,tflite", help="comma-separated export formats")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--min-time", type=float, default=1.0, dest="min_time_s")
    parser.add_argument("--units", default=None, help="zoo network whose units to convert one by one")
    parser.add_argument("--units-count", type=int, default=8, help="how many of its units (from the stem)")
    parser.add_argument("--no-networks", action="store_true", help="only the unit benchmark")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    result: dict = {"threads": args.threads}
    with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
        work = Path(tmp)
        if not args.no_networks:
            rows = bench_networks(args.zoo or DEFAULT_ZOO, res=args.res, formats=args.formats.split(","),
                                  threads=args.threads, warmup=args.warmup, repeats=args.repeats,
                                  min_time_s=args.min_time_s, work=work)
            result["networks"] = rows
            t = Table(title=f"Export and end-to-end latency on this CPU ({args.threads} thread(s), batch 1)",
                      box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
            for col in ("network", "res", "format", "export s", "MB", "max rel err", "median ms", "p90 ms",
                        "x eager", "status"):
                t.add_column(col, justify="left" if col in ("network", "format", "status") else "right")
            for r in rows:
                t.add_row(r["network"], str(r["resolution"]), r["format"], _fmt(r["export_s"], ".2f"),
                          _fmt(r["size_mb"], ".2f"), _fmt(r["max_rel_err"], ".1e"), _fmt(r["median_ms"], ".3f"),
                          _fmt(r["p90_ms"], ".3f"), _fmt(r["speedup"], ".2f"), r["status"])
            console.print(t)
        if args.units:
            rows = bench_units(args.units, count=args.units_count, res=args.res, work=work)
            result["units"] = {"network": args.units, "rows": rows}
            t = Table(title=f"Per-unit conversion cost ({args.units}, first {args.units_count} units)",
                      box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
            for col in ("converter", "units", "total s", "per unit s", "min s", "max s"):
                t.add_column(col, justify="left" if col == "converter" else "right")
            for r in rows:
                t.add_row(r["what"], str(r["units"]), f"{r['total_s']:.2f}", f"{r['per_unit_s']:.3f}",
                          _fmt(r["min_s"], ".3f"), _fmt(r["max_s"], ".3f"))
            console.print(t)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
