"""Zen-NAS against its baselines at equal evaluation counts: a table for honest comparison.

Methods (all under the same budgets, the same space, the same number of proxy evaluations, the same seeds):

- ``zen-nas``: the official evolutionary search scored with Zen-Score (``run_search``);
- ``random+zen``: random search (``strategy='random'``), every sample scored with Zen-Score, best kept;
- ``evo+<proxy>``: the same evolution scored with every other registered proxy (``flops``, ``params``, ``random``
  and whatever else ``zendeploy proxies`` lists), as in the Zen-NAS paper's proxy comparison.

Every chosen network is re-scored with one common yardstick (Zen-Score, fixed seed, mean of ``--rescore-repeats``
draws). That yardstick is the objective Zen-NAS optimises, not accuracy: it tells how well each *search* optimises
it at a given cost, and the parameter / MACs columns tell what each proxy steers towards. Comparing accuracy needs
training, which this tool does not do.

    python tools/compare_search.py                                  # resnet @ 32, 1M params, 120 evaluations
    python tools/compare_search.py --space mobilenet --res 224 --flops 400M --batch-size 4 --evaluations 40
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from zendeploy.proxies import compute_proxy, get_proxy, list_proxies  # noqa: E402
from zendeploy.search import Budgets, load_space, run_search  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="resnet")
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--params", default="1M")
    ap.add_argument("--flops", default=None)
    ap.add_argument("--max-layers", type=int, default=None)
    ap.add_argument("--evaluations", type=int, default=120)
    ap.add_argument("--population", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16, help="Zen-Score batch size (official: 64)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--proxies", nargs="+", default=None, help="proxies for evo+<proxy> (default: all but zen)")
    ap.add_argument("--rescore-repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--step", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    space = load_space(args.space)
    budgets = Budgets.parse(params=args.params if args.params not in (None, "none") else None, flops=args.flops,
                            layers=args.max_layers)
    methods = [("zen-nas", "official", "zen"), ("random+zen", "random", "zen")]
    for p in (args.proxies or [p for p in list_proxies() if p != "zen"]):
        get_proxy(p)
        methods.append((f"evo+{p}", "official", p))

    rows = {}
    for label, strategy, proxy in methods:
        for seed in args.seeds:
            t0 = time.perf_counter()
            r = run_search(space, budgets, resolution=args.res, dataset=args.dataset, population=args.population,
                           iterations=10**9, max_evaluations=args.evaluations, proxy=proxy,
                           batch_size=args.batch_size, seed=seed, strategy=strategy, workers=args.workers,
                           step=args.step)
            secs = time.perf_counter() - t0
            zen = compute_proxy("zen", r.best.structure, resolution=args.res, batch_size=args.batch_size,
                                repeats=args.rescore_repeats, seed=12345).score
            rows.setdefault(label, []).append({"proxy": proxy, "seconds": secs, "evaluations": r.evaluations,
                                               "iterations": r.iterations, "own": r.best.score, "zen": zen,
                                               "params": r.best.params, "macs": r.best.macs,
                                               "layers": r.best.layers, "structure": r.best.structure})
            print(f"  {label} seed {seed}: {secs:.1f} s", file=sys.stderr)

    def ms(xs, fmt):
        if len(xs) == 1:
            return format(xs[0], fmt)
        return f"{format(statistics.mean(xs), fmt)}±{format(statistics.stdev(xs), fmt)}"

    b = budgets.describe()
    btxt = ", ".join(f"{k} <= {v.get('text', v['value'])}" for k, v in b.items()) or "-"
    print(f"\ncompare_search: space {space.name} @ {args.res}, budgets {btxt} (+ the space's layer limit), "
          f"{args.evaluations} evaluations per method, population {args.population}, Zen batch {args.batch_size}, "
          f"seeds {args.seeds}\n")
    head = (f"{'method':<14} {'evals':>5} {'children':>8} {'time s':>8} {'own score':>14} {'Zen (rescored)':>16} "
            f"{'params':>14} {'MACs':>14} {'layers':>6}")
    print(head)
    print("-" * len(head))
    for label, rs in rows.items():
        print(f"{label:<14} {rs[0]['evaluations']:>5} {ms([r['iterations'] for r in rs], '.0f'):>8} "
              f"{ms([r['seconds'] for r in rs], '.1f'):>8} {ms([r['own'] for r in rs], '.3f'):>14} "
              f"{ms([r['zen'] for r in rs], '.2f'):>16} {ms([r['params'] / 1e6 for r in rs], '.3f') + 'M':>14} "
              f"{ms([r['macs'] / 1e6 for r in rs], '.1f') + 'M':>14} {ms([r['layers'] for r in rs], '.0f'):>6}")
    print("\nbest structures (first seed):")
    for label, rs in rows.items():
        print(f"  {label:<14} {rs[0]['structure']}")


if __name__ == "__main__":
    main()
