"""Which timing statistic reproduces best on this host? The evidence behind latency tables' ``latency_ms``.

Samples networks from a search space, converts them for ONNX Runtime (1 thread), then times all of them in two
independent rounds (fresh sessions, each round ``--passes`` passes in a new shuffled order; per pass: 5 warm-up runs,
then timed runs for at least 10 runs and ``--window`` seconds). For each candidate statistic it prints how well the
two rounds agree: mean, p90 and max of |A - B| / mean(A, B) over the networks. A statistic that disagrees with itself
by x % bounds the accuracy any latency table can show against it, so the most reproducible one is what zendeploy
records (``zendeploy.latency.profile.STATISTIC``).

    python tools/bench_timing_statistic.py                       # 30 CIFAR ResNet networks at 32, 7 passes
    python tools/bench_timing_statistic.py --space mobilenet --networks 20 --json runs/timing_stat.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zendeploy.builder import ZenNet  # noqa: E402
from zendeploy.cost import network_cost  # noqa: E402
from zendeploy.latency.backends import make_backend  # noqa: E402
from zendeploy.latency.sampling import sample_networks  # noqa: E402
from zendeploy.space.spaces import load_space  # noqa: E402

STATISTICS = {
    "min of 3 pass medians": lambda ps: min(np.median(x) for x in ps[:3]),
    "min of 5 pass medians": lambda ps: min(np.median(x) for x in ps[:5]),
    "median of 5 pass medians": lambda ps: float(np.median([np.median(x) for x in ps[:5]])),
    "median of all pass medians": lambda ps: float(np.median([np.median(x) for x in ps])),
    "median of 5 pass p10s": lambda ps: float(np.median([np.percentile(x, 10) for x in ps[:5]])),
    "min of 3 pass p10s": lambda ps: min(np.percentile(x, 10) for x in ps[:3]),
    "min of 5 pass p10s": lambda ps: min(np.percentile(x, 10) for x in ps[:5]),
    "p10 of all runs of 5 passes": lambda ps: float(np.percentile(np.concatenate(ps[:5]), 10)),
    "min of all runs of 5 passes (zendeploy)": lambda ps: float(np.min(np.concatenate(ps[:5]))),
}


def time_round(runners: dict, passes: int, window: float, seed: int) -> dict[str, list[np.ndarray]]:
    samples: dict[str, list[np.ndarray]] = {k: [] for k in runners}
    for p in range(passes):
        order = list(runners)
        random.Random(seed * 1000 + p).shuffle(order)
        for key in order:
            run = runners[key]
            for _ in range(5):
                run()
            ts: list[float] = []
            end = time.perf_counter() + window
            while (len(ts) < 10 or time.perf_counter() < end) and len(ts) < 5000:
                t0 = time.perf_counter()
                run()
                ts.append((time.perf_counter() - t0) * 1e3)
            samples[key].append(np.asarray(ts))
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--space", default="resnet")
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--networks", type=int, default=30)
    ap.add_argument("--passes", type=int, default=7, help="passes per round (>= 5)")
    ap.add_argument("--window", type=float, default=0.05, help="minimum seconds timed per pass and network")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.passes < 5:
        ap.error("--passes must be at least 5")
    console = Console()
    sp = load_space(args.space)
    ds = sp.dataset_for(args.res)
    classes = sp.default_num_classes(ds)
    cap = 4 * network_cost(sp.initial_blocks(ds), args.res, num_classes=classes).macs
    nets = sample_networks(sp, ds, args.networks, resolution=args.res, seed=args.seed, max_macs=cap,
                           num_classes=classes)
    backend = make_backend("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for i, blocks in enumerate(nets):
            path = Path(tmp) / f"net{i}.onnx"
            backend.convert(ZenNet(blocks, num_classes=classes).eval(), (1, 3, args.res, args.res), path)
            paths[f"net{i}"] = path
        rounds = []
        for r in range(2):
            runners = {k: backend.open(p) for k, p in paths.items()}  # fresh sessions per round
            rounds.append(time_round(runners, args.passes, args.window, seed=r + 1))
    table = Table(title=f"round-to-round agreement, {args.networks} {args.space} networks at {args.res} "
                        f"(ONNX Runtime CPU, 1 thread, {args.passes} passes of >= {args.window} s per round)")
    for col in ("statistic", "mean |A-B| %", "p90 %", "max %", "latency range ms"):
        table.add_column(col, justify="right" if col != "statistic" else "left")
    rows = []
    for name, fn in STATISTICS.items():
        a = np.array([fn(rounds[0][k]) for k in paths])
        b = np.array([fn(rounds[1][k]) for k in paths])
        d = np.abs(a - b) / ((a + b) / 2) * 100
        rows.append({"statistic": name, "mean_pct": float(d.mean()), "p90_pct": float(np.percentile(d, 90)),
                     "max_pct": float(d.max()), "min_ms": float(a.min()), "max_ms": float(a.max())})
        table.add_row(name, f"{d.mean():.2f}", f"{np.percentile(d, 90):.2f}", f"{d.max():.2f}",
                      f"{a.min():.3f}-{a.max():.3f}")
    console.print(table)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
