"""Scale-out benchmark: the search and LiteRT unit conversion on Ray with 1 and 2 local workers.

Two jobs, each measured in the same run against a reference with no Ray at all:

- ``search``: ``run_search`` (CIFAR resnet space at 32, params <= 1M, Zen-Score at the official batch 64,
  ``--step K`` children per step) in this process (reference), then on a local Ray instance with 1 and with 2 CPUs.
  Throughput is proxy evaluations per second of the search itself; Ray's start-up (instance + first worker imports)
  is measured apart, since a cluster pays it once per job, not per candidate. Every run's best structure must equal
  the reference's (same seed and step), which the table shows.
- ``overhead``: the same search with the ``params`` proxy (no forward pass: microseconds), so its rate is the
  cost of everything but scoring (mutation, budget checks, and with Ray the task round trip): the ceiling the host
  puts on a cluster's search throughput.
- ``litert``: ``--units`` latency units (from the resnet space's plan at 32) converted to TFLite by litert-torch:
  one after the other in this process (reference), then by ``RayExecutor`` with 1 and 2 CPUs.

Each configuration is repeated ``--repeats`` times in interleaved order; the table gives the median rate, the spread
(min-max) and the median ratio against the reference of the same repeat. On a shared 2-core host the 2-worker rows
are bounded by the 2 cores (and by the host's own noise: timings of one network spread 14-21 % over minutes here).

    python tools/bench_scale.py                       # ~5 min on 2 cores
    python tools/bench_scale.py --jobs search --repeats 5 --json scale.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray  # noqa: E402

from zendeploy.latency.conversion import converter_for  # noqa: E402
from zendeploy.latency.profile import conversion_jobs, plan_profile  # noqa: E402
from zendeploy.latency.sampling import GRID_SEED, sample_networks  # noqa: E402
from zendeploy.latency.schema import SpaceInfo  # noqa: E402
from zendeploy.distributed.scoring import RayScorer  # noqa: E402
from zendeploy.search import Budgets, load_space, run_search  # noqa: E402

CONFIGS = ("reference", "ray-1", "ray-2")


def _start(cpus: int) -> float:
    t0 = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="error")
    return time.perf_counter() - t0


def _search(args, config: str, proxy: str = "zen") -> dict:
    kw = dict(resolution=32, population=64, iterations=args.iterations * (1 if proxy == "zen" else 10), proxy=proxy,
              batch_size=64 if proxy == "zen" else 1, seed=args.seed, step=args.step, plot=False)
    budgets = Budgets.parse(params="1M")
    startup = 0.0
    if config != "reference":
        startup = _start(int(config.split("-")[1]))
        t0 = time.perf_counter()  # first tasks: workers start and import torch + zendeploy
        run_search("resnet", budgets, **{**kw, "iterations": args.step, "seed": args.seed + 1},
                   scorer=RayScorer())
        startup += time.perf_counter() - t0
    try:
        r = run_search("resnet", budgets, **kw, scorer=None if config == "reference" else RayScorer())
    finally:
        if config != "reference":
            ray.shutdown()
    return {"rate": r.evaluations / r.seconds, "n": r.evaluations, "seconds": r.seconds, "startup_s": startup,
            "best": r.best.structure, "workers": len(r.workers)}


def _units(n: int):
    sp = load_space("resnet")
    nets = sample_networks(sp, "cifar", 4, resolution=32, seed=GRID_SEED, max_macs=4e8, num_classes=100)
    plan = plan_profile(nets, [], 32, num_classes=100, corners=False)
    space = SpaceInfo(name="resnet", resolution=32, num_classes=100, dataset="cifar")
    jobs = [j for j in conversion_jobs(plan, 1, ".tflite", space).values()]
    return jobs[:: max(1, len(jobs) // n)][:n]


def _litert(args, config: str, jobs) -> dict:
    from zendeploy.distributed.conversion import RayExecutor
    from zendeploy.latency.conversion import convert_locally

    converter = converter_for("tflite-cpu")
    startup = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        if config == "reference":
            t0 = time.perf_counter()  # warm-up, as the Ray rows get: the converter's first call imports and traces
            convert_locally(converter, jobs[:1], Path(tmp) / "warm")
            startup = time.perf_counter() - t0
            t0 = time.perf_counter()
            convert_locally(converter, jobs, Path(tmp))
            seconds = time.perf_counter() - t0
        else:
            startup = _start(int(config.split("-")[1]))
            try:
                t0 = time.perf_counter()
                RayExecutor().convert(converter, jobs[:1], Path(tmp) / "warm", lambda *a, **k: None)
                startup += time.perf_counter() - t0
                t0 = time.perf_counter()
                executor = RayExecutor()
                executor.convert(converter, jobs, Path(tmp), lambda *a, **k: None)
                seconds = time.perf_counter() - t0
            finally:
                ray.shutdown()
        files = sum(1 for p in Path(tmp).glob("*.tflite"))  # (the warm-up file is in a sub-folder)
    assert files == len(jobs), f"{files} of {len(jobs)} files converted"
    return {"rate": len(jobs) / seconds, "n": len(jobs), "seconds": seconds, "startup_s": startup}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", nargs="+", default=["search", "overhead", "litert"],
                    choices=["search", "overhead", "litert"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=96, help="search: children generated per run")
    ap.add_argument("--step", type=int, default=8, help="search: children per step (evaluations in flight)")
    ap.add_argument("--units", type=int, default=6, help="litert: units converted per run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)

    runs: dict[tuple[str, str], list[dict]] = {}
    jobs = _units(args.units) if "litert" in args.jobs else []
    for rep in range(args.repeats):
        for job in args.jobs:
            order = CONFIGS if rep % 2 == 0 else CONFIGS[::-1]  # interleaved, so drift hits every config alike
            for config in order:
                out = _litert(args, config, jobs) if job == "litert" else \
                    _search(args, config, "zen" if job == "search" else "params")
                runs.setdefault((job, config), []).append(out)
                print(f"  repeat {rep + 1} {job:<6} {config:<9} {out['rate']:.3f}/s "
                      f"({out['n']} in {out['seconds']:.1f} s, start-up {out['startup_s']:.1f} s)", flush=True)

    rows = []
    for job in args.jobs:
        ref = runs[(job, "reference")]
        for config in CONFIGS:
            rs = runs[(job, config)]
            ratios = [r["rate"] / q["rate"] for r, q in zip(rs, ref)]
            row = {"job": job, "config": config, "unit": "files/s" if job == "litert" else "evaluations/s",
                   "median_rate": statistics.median(r["rate"] for r in rs),
                   "min_rate": min(r["rate"] for r in rs), "max_rate": max(r["rate"] for r in rs),
                   "median_ratio": statistics.median(ratios), "median_startup_s": statistics.median(
                       r["startup_s"] for r in rs), "repeats": len(rs)}
            if job != "litert":
                row["same_best_as_reference"] = all(r["best"] == q["best"] for r, q in zip(rs, ref))
            rows.append(row)

    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"scale-out on {ray.__version__ and 'Ray ' + ray.__version__}, medians of {args.repeats} "
                    f"repeats (ratio: against the reference of the same repeat)")
    for col in ("job", "config", "median rate", "min-max", "ratio", "start-up s", "same best"):
        t.add_column(col, justify="left" if col in ("job", "config") else "right")
    for r in rows:
        t.add_row(r["job"], r["config"], f"{r['median_rate']:.3f} {r['unit']}",
                  f"{r['min_rate']:.3f}-{r['max_rate']:.3f}", f"{r['median_ratio']:.2f}x",
                  f"{r['median_startup_s']:.1f}", str(r.get("same_best_as_reference", "")))
    Console(width=140).print(t)
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "rows": rows, "runs": {
            f"{j}/{c}": v for (j, c), v in runs.items()}}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
