#!/usr/bin/env python
"""Seconds per zero-shot score: our Zen-Score fast path vs the straightforward official loop, plus the baselines.

    python tools/bench_proxies.py            # full: 3 nets x res {32, 224} x threads {1, 2}, 5 repeats
    python tools/bench_proxies.py --quick    # 2 repeats, ZenNet-0.5ms only at 32; baselines timed once
    python tools/bench_proxies.py --zennas-dir ~/ZenNAS --no-others   # also the official code itself

Table 1, Zen-Score: ``zen_score_fast`` (registered as ``zen``: functional layers, no ``nn.Module``) against
``zen_score_reference`` (the official loop on a freshly built ``ZenNet``), measured in the same process, interleaved
(the order alternates every round), after one warm-up call of each, with the same generator seeds. Both timings
include everything one score costs: weight drawing, and for the reference the model construction. We print medians,
the speed-up ratio (reference / fast) and the largest score difference between the two (float32 round-off, which deep
plain networks amplify). With ``--zennas-dir`` (a checkout of https://github.com/idstcv/ZenNAS, not shipped) a third
implementation joins the interleaved rounds: the official code itself, as ``evolution_search.py`` calls it for every
candidate (``PlainNet(..., no_reslink=True, use_se=False)`` built fresh, then ``compute_nas_score(..., repeat=1)``),
and the table gains its seconds and the ratio official / fast. Its random draws are torch's global generator, so its
scores are not comparable one by one (``tools/check_zen_official.py`` compares the scores).

Table 2, the other registered proxies at resolution 32: median seconds per score (one repeat = one freshly
initialised network), after one warm-up call per proxy. ``synflow`` cannot score a network whose last feature map is
1x1 (official train-mode BN on one image), and ``tenas`` is skipped when its per-sample gradients (batch x weights
floats) would exceed ``--tenas-max-gb``.

The machine these numbers come from is usually shared (CI, other jobs): timings are noisy; trust ratios measured in
the same run more than absolute seconds, and re-run before drawing conclusions from small differences.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from check_zen_official import load_official, official_scores  # tools/, next to this script (stdlib imports only)

DEFAULT_NETS = (
    "zennet_cifar10_model_size1M_res32",
    "zennet_imagenet1k_flops400M_SE_res224",
    "zennet_imagenet1k_latency05ms_res224",
)
NOISE_NOTE = ("NOTE: shared, noisy machine (other jobs run on the same cores): medians of interleaved repeats after a "
              "warm-up; compare ratios from the same run, not absolute seconds across runs.")


def timed(fn, *args, **kwargs) -> tuple[float, float]:
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - t0, value


def official_scorer(official, entry, resolution, batch_size, seed):
    """Repeat ``i`` of the official Zen-Score (``check_zen_official.official_scores``: a fresh ``PlainNet``, then
    ``compute_nas_score(repeat=1)``, the global seed set first)."""
    return lambda i: official_scores(*official, entry, resolution, batch_size, repeats=1, seed=seed + i)[0]


def bench_zen(blocks, num_classes, resolution, batch_size, repeats, seed, official_fn=None):
    """Median seconds of the fast path, the reference loop and (given ``official_fn(i)``) the official code, timed
    in interleaved rounds (the order reverses every round), and the largest |fast - reference| score difference."""
    from zendeploy.proxies.base import repeat_generator
    from zendeploy.proxies.zen import zen_score_fast, zen_score_reference

    def ours(fn):
        return lambda i: fn(blocks, resolution=resolution, batch_size=batch_size,
                            generator=repeat_generator(seed, i), num_classes=num_classes)

    impls = {"fast": ours(zen_score_fast), "reference": ours(zen_score_reference)}
    if official_fn is not None:
        impls["official"] = official_fn
    for fn in impls.values():
        fn(0)  # warm-up (allocator, kernels, lazy imports)
    times: dict[str, list[float]] = {k: [] for k in impls}
    max_diff = 0.0
    for i in range(repeats):
        order = list(impls) if i % 2 == 0 else list(reversed(impls))
        scores = {}
        for which in order:
            seconds, scores[which] = timed(impls[which], i)
            times[which].append(seconds)
        max_diff = max(max_diff, abs(scores["fast"] - scores["reference"]))
    medians = {k: statistics.median(v) for k, v in times.items()}
    return medians["fast"], medians["reference"], medians.get("official"), max_diff


def weight_count(blocks, resolution, num_classes) -> int:
    from zendeploy.cost import network_cost

    return int(network_cost(blocks, resolution, num_classes=num_classes).params)


def bench_other(name, blocks, num_classes, resolution, batch_size, repeats, seed, tenas_max_gb):
    """Median seconds per score of proxy ``name``, or a string saying why it was not timed."""
    from zendeploy.errors import ProxyError
    from zendeploy.proxies import get_proxy
    from zendeploy.proxies.base import repeat_generator

    if name == "tenas":
        gb = batch_size * weight_count(blocks, resolution, num_classes) * 4 / 2 ** 30
        if gb > tenas_max_gb:
            return f"skipped: G needs {gb:.1f} GB"
    fn = get_proxy(name).fn
    times = []
    try:
        for i in range(repeats + 1):  # the first call is the warm-up
            seconds, value = timed(fn, blocks, resolution=resolution, batch_size=batch_size,
                                   generator=repeat_generator(seed, i), num_classes=num_classes)
            if i:
                times.append(seconds)
    except ProxyError as exc:
        return "n/a: " + ("last feature map 1x1" if "1x1" in str(exc) else str(exc))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats, skip ZenNet-0.5ms at 224, baselines once")
    parser.add_argument("--nets", nargs="*", default=list(DEFAULT_NETS), help="zoo names")
    parser.add_argument("--res", nargs="*", type=int, default=[32, 224], help="resolutions for the Zen-Score table")
    parser.add_argument("--threads", nargs="*", type=int, default=[1, 2], help="torch thread counts")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 5, --quick 2)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-others", action="store_true", help="skip the baseline-proxy table")
    parser.add_argument("--zennas-dir", default=None,
                        help="a checkout of https://github.com/idstcv/ZenNAS: time the official code too")
    parser.add_argument("--tenas-max-gb", type=float, default=2.0,
                        help="skip tenas when its per-sample gradient matrix exceeds this (default 2 GB)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    if repeats < 1:
        print("error: --repeats must be positive", file=sys.stderr)
        return 2

    import torch
    from rich.console import Console
    from rich.table import Table

    from zendeploy.builder import resolve
    from zendeploy.errors import ZenDeployError
    from zendeploy.proxies import list_proxies
    from zendeploy.zoo import get_zoo

    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        resolved = {n: resolve(n) for n in args.nets}
    except ZenDeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    official = None
    if args.zennas_dir:
        official = load_official(args.zennas_dir)  # the same loader (one-line errors) as the score check
    console.print(NOISE_NOTE)
    console.print(f"batch {args.batch_size}, {repeats} timed repeats, torch {torch.__version__}, "
                  f"{torch.get_num_threads()} default threads")

    zen_table = Table(title="Zen-Score: seconds per score (median), fast path vs official loop (model build included)")
    columns = ["net", "res", "threads", "fast s", "reference s", "speed-up"]
    columns += ["official s", "official / fast"] if official else []
    for col in columns + ["max |score diff|"]:
        zen_table.add_column(col, justify="left" if col == "net" else "right")
    for name, r in resolved.items():
        for res in args.res:
            if args.quick and res >= 224 and "latency05ms" in name:
                continue
            for threads in args.threads:
                torch.set_num_threads(threads)
                off_fn = official_scorer(official, get_zoo(name), res, args.batch_size, args.seed) \
                    if official else None
                fast, ref, off, diff = bench_zen(r.blocks, r.num_classes, res, args.batch_size, repeats, args.seed,
                                                 off_fn)
                cells = [f"{fast:.3f}", f"{ref:.3f}", f"{ref / fast:.2f}x"]
                cells += [f"{off:.3f}", f"{off / fast:.2f}x"] if off is not None else []
                zen_table.add_row(name, str(res), str(threads), *cells, f"{diff:.1e}")
                extra = f", official {off:.3f} s ({off / fast:.2f}x)" if off is not None else ""
                console.print(f"  zen {name}@{res} x{threads}: fast {fast:.3f} s, reference {ref:.3f} s, "
                              f"{ref / fast:.2f}x{extra}", highlight=False)
    console.print(zen_table)

    if not args.no_others:
        others = [p for p in list_proxies() if p != "zen"]
        threads = max(args.threads)
        torch.set_num_threads(threads)
        other_repeats = 1 if args.quick else max(1, min(repeats, 3))
        table = Table(title=f"Other proxies at resolution 32: seconds per score (median of {other_repeats}, "
                            f"{threads} threads, batch {args.batch_size})")
        table.add_column("proxy")
        for name in resolved:
            table.add_column(name, justify="right")
        cells = {p: [] for p in ["zen"] + others}
        for name, r in resolved.items():
            for p in cells:
                value = bench_other(p, r.blocks, r.num_classes, 32, args.batch_size, other_repeats, args.seed,
                                    args.tenas_max_gb)
                cells[p].append(f"{value:.4f}" if isinstance(value, float) else value)
                console.print(f"  {p} {name}@32: {cells[p][-1]}", highlight=False)
        for p, row in cells.items():
            table.add_row(p, *row)
        console.print(table)
    console.print(NOISE_NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
