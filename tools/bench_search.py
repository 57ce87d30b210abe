"""Benchmark zendeploy's Zen-NAS search against a straightforward reimplementation of the official loop.

For each setting (default: the ImageNet mobilenet space at 224 under the official flops400M budgets, and the CIFAR
resnet space at 32 under the official params1M budgets) it runs, for the same number of proxy evaluations:

- ``zendeploy``: ``run_search`` (official semantics, score cache, functional Zen-Score, latency from a table);
- ``random``: ``run_search(strategy='random')`` under the same budgets;
- ``official``: the official ``evolution_search.py`` loop written out below (string candidate lists built with sets
  and ``random.choice``, no cache, the Zen-Score of a built module on unseeded weights, and, when a latency budget is
  set, the latency of every candidate timed by running it: 3 warm-up forwards + 1 timed forward at the proxy batch
  size, divided by the batch, as ``benchmark_network_latency.get_model_latency``; here on CPU in fp32). It runs in a
  process of its own, with the C allocator's defaults (zendeploy's scorers set ``reuse_freed_memory``), and with
  ``--zennas-dir`` (a checkout of https://github.com/idstcv/ZenNAS) it scores with the official code itself
  (``PlainNet`` + ``compute_nas_score``) instead of ``zen_score_reference``.

It prints evaluations per second (proxy scores per second) and children per second, where the official loop's time
went (scoring, latency timing, the rest), and the best score reached. The official best is the maximum of noisy
single-draw scores, so every method's best is also re-scored under one protocol (Zen-Score, fixed seed, mean of
``--rescore-repeats`` draws) for an honest comparison.

Latency: with ``--table T`` the zendeploy runs use the real predictor; without it they use a MACs-proportional
stand-in predictor (``--latency`` on, the default, labelled "stand-in") so the cost of a table lookup, not the
value, is what is compared. The latency budget is set loose (non-binding) so all methods search the same space.

    python tools/bench_search.py                       # short defaults (a few minutes on 2 cores)
    python tools/bench_search.py --evals 60 400 --proxy-batch 8 16
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from zendeploy.builder import ZenNet  # noqa: E402
from zendeploy.cost import network_cost  # noqa: E402
from zendeploy.proxies import compute_proxy  # noqa: E402
from zendeploy.proxies.zen import zen_score_reference  # noqa: E402
from zendeploy.search import Budgets, load_space, run_search  # noqa: E402
from zendeploy.space.structure import format_structure, make_block, num_layers, parse_structure  # noqa: E402

from zennas_official import official_candidates  # noqa: E402  (tools/, next to this script)


# ----------------------------------------------------------------------------------------- stand-in latency table
class _Pred:
    def __init__(self, ms, rel):
        self.latency_ms, self.sigma_ms = ms, ms * rel
        self.low_ms, self.high_ms = max(0.0, ms - 1.96 * self.sigma_ms), ms + 1.96 * self.sigma_ms

    def to_dict(self):
        return {"latency_ms": self.latency_ms, "sigma_ms": self.sigma_ms, "low_ms": self.low_ms,
                "high_ms": self.high_ms, "source": "stand-in"}


class StandInPredictor:
    """Stands in for a measured latency table when none is given: ms from MACs (what matters here is the cost of a
    lookup per candidate, microseconds, against timing the candidate)."""

    device = "stand-in"
    batch = 1

    def predict(self, blocks, resolution, *, se=False, num_classes=1000):
        return _Pred(network_cost(blocks, resolution, se=se, num_classes=num_classes).macs / 1e9 * 5.0, 0.05)


# ------------------------------------------------------------------------------ the official loop, written out
def _split(blocks, threshold=6):
    out = []
    for b in blocks:
        if b.bottleneck is not None and b.sub_layers >= threshold:
            first = threshold // 2
            out.append(make_block(b.name, b.in_channels, b.out_channels, b.stride, b.bottleneck, first))
            out.append(make_block(b.name, b.out_channels, b.out_channels, 1, b.bottleneck, threshold - first))
        else:
            out.append(b)
    return out


def _new_random_structure_str(structure, space, num_replaces):
    blocks = list(parse_structure(structure))
    selected = set()
    for _ in range(num_replaces):
        rid = random.randint(0, len(blocks) - 1)
        if rid in selected:
            continue
        selected.add(rid)
        cands = [x for sub in official_candidates(blocks[rid], space.block_groups, space.max_channels,
                                                 space.freeze_1x1_conv) for x in sub]
        new = parse_structure(random.choice(cands))[0]
        if rid > 0:
            new = new.with_(in_channels=blocks[rid - 1].out_channels)
        blocks[rid] = new
    last = blocks[0].out_channels
    for i in range(1, len(blocks)):
        blocks[i] = blocks[i].with_(in_channels=last)
        last = blocks[i].out_channels
    return format_structure(_split(blocks))


def _official_latency(blocks, batch, resolution, num_classes):
    model = ZenNet(blocks, num_classes=num_classes, residual=True).eval()
    x = torch.randn(batch, 3, resolution, resolution)
    with torch.no_grad():
        for _ in range(3):
            model(x)
        t0 = time.time()
        model(x)
    return (time.time() - t0) / batch


def official_loop(space, dataset, budgets: Budgets, *, resolution, batch_size, population, max_evaluations,
                  num_classes, seed, time_latency, official=None):
    """The official search loop; candidates are scored by ``zen_score_reference`` or, given ``official`` (the
    ZenNAS modules ``check_zen_official.load_official`` returns), by the official code itself as its search calls
    it: a fresh ``PlainNet(..., no_reslink=True, use_se=False)`` and ``compute_nas_score(repeat=1)``."""
    random.seed(seed)
    gen = torch.Generator().manual_seed(seed)
    initial = space.initial[dataset]
    pop_s, pop_v = [], []
    stats = {"score_s": 0.0, "latency_s": 0.0, "iterations": 0, "evaluations": 0}
    t_start = time.perf_counter()
    all_scores = []
    while stats["evaluations"] < max_evaluations:
        while len(pop_s) > population:
            i = pop_v.index(min(pop_v))
            pop_v.pop(i)
            pop_s.pop(i)
        if len(pop_s) <= 10:
            s = _new_random_structure_str(initial, space, 1)
        else:
            s = _new_random_structure_str(pop_s[random.randint(0, len(pop_s) - 1)], space, 2)
        stats["iterations"] += 1
        blocks = parse_structure(s)
        if budgets.layers is not None and budgets.layers < num_layers(blocks):
            continue
        cost = network_cost(blocks, resolution, num_classes=num_classes)
        if budgets.params is not None and budgets.params < cost.params:
            continue
        if budgets.macs is not None and budgets.macs < cost.macs:
            continue
        if time_latency:
            t0 = time.perf_counter()
            _official_latency(blocks, batch_size, resolution, num_classes)
            stats["latency_s"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (), generator=gen)))
        try:
            if official is None:
                v = zen_score_reference(blocks, resolution=resolution, batch_size=batch_size, generator=g,
                                        num_classes=num_classes)
            else:
                from check_zen_official import official_zen_score

                torch.manual_seed(g.initial_seed())  # the official code draws from the global generator
                v = official_zen_score(*official, s, num_classes, resolution, batch_size)
            if not math.isfinite(v):
                v = -9999
        except Exception:
            v = -9999
        stats["score_s"] += time.perf_counter() - t0
        stats["evaluations"] += 1
        pop_s.append(s)
        pop_v.append(v)
        all_scores.append(v)
    stats["seconds"] = time.perf_counter() - t_start
    best = max(pop_v)
    return pop_s[pop_v.index(best)], best, stats


# ------------------------------------------------------------------------------------------------------ driver
@dataclass
class Row:
    setting: str
    method: str
    evaluations: int
    iterations: int
    seconds: float
    best: str
    best_score: float
    rescored: float
    params: int
    macs: int
    notes: str = ""

    @property
    def evals_per_s(self):
        return self.evaluations / self.seconds if self.seconds else float("nan")

    @property
    def children_per_s(self):
        return self.iterations / self.seconds if self.seconds else float("nan")


def rescore(structure, resolution, batch_size, repeats):
    r = compute_proxy("zen", structure, resolution=resolution, batch_size=batch_size, repeats=repeats, seed=12345)
    return r.score


def _official_in_child(job: dict):
    """The official loop in a process of its own: zendeploy's scorers set process-wide allocator settings
    (``reuse_freed_memory``), which the official code, run as its users run it, does not have."""
    torch.set_num_threads(1)
    zennas_dir = job.pop("zennas_dir")
    official = None
    if zennas_dir:
        from check_zen_official import load_official

        official = load_official(zennas_dir)
    return official_loop(load_space(job.pop("space_name")), official=official, **job)


def run_setting(name, space_name, dataset, resolution, budgets, *, evals, population, batch_size, seed, workers,
                step, predictor, time_latency, rescore_repeats, num_classes, zennas_dir=None):
    import multiprocessing

    space = load_space(space_name)
    rows = []
    common = dict(resolution=resolution, dataset=dataset, num_classes=num_classes, population=population,
                  iterations=10**9, max_evaluations=evals, proxy="zen", batch_size=batch_size, seed=seed,
                  predictor=predictor, workers=workers, step=step, space_max_layers=False)
    for method, strategy in (("zendeploy", "official"), ("random", "random")):
        t0 = time.perf_counter()
        r = run_search(space, budgets, strategy=strategy, **common)
        secs = time.perf_counter() - t0
        rows.append(Row(name, method, r.evaluations, r.iterations, secs, r.best.structure, r.best.score,
                        rescore(r.best.structure, resolution, batch_size, rescore_repeats), r.best.params,
                        r.best.macs, f"cache hits {r.cache_hits}, rejected {sum(r.rejected.values())}"))
        print(f"  {name}: {method} done in {secs:.1f} s", file=sys.stderr)
    job = dict(space_name=space_name, dataset=dataset, budgets=budgets, resolution=resolution, batch_size=batch_size,
               population=population, max_evaluations=evals, num_classes=num_classes, seed=seed,
               time_latency=time_latency, zennas_dir=zennas_dir)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        best, score, st = pool.apply(_official_in_child, (job,))
    cost = network_cost(parse_structure(best), resolution, num_classes=num_classes)
    other = st["seconds"] - st["score_s"] - st["latency_s"]
    rows.append(Row(name, "official loop", st["evaluations"], st["iterations"], st["seconds"], best, score,
                    rescore(best, resolution, batch_size, rescore_repeats), cost.params, cost.macs,
                    f"time: score {st['score_s']:.1f} s, latency timing {st['latency_s']:.1f} s, other {other:.1f} s"))
    print(f"  {name}: official loop done in {st['seconds']:.1f} s", file=sys.stderr)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--evals", type=int, nargs=2, default=[24, 200], metavar=("IMAGENET", "CIFAR"),
                    help="proxy evaluations per method (mobilenet@224, resnet@32)")
    ap.add_argument("--proxy-batch", type=int, nargs=2, default=[4, 16], metavar=("IMAGENET", "CIFAR"),
                    help="Zen-Score batch size (official: 64; smaller keeps the benchmark short on CPU)")
    ap.add_argument("--population", type=int, nargs=2, default=[16, 32], metavar=("IMAGENET", "CIFAR"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed and method; the table "
                    "shows means (± std over seeds)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("--table", type=str, default=None, help="latency table for the zendeploy runs")
    ap.add_argument("--no-latency", action="store_true", help="no latency budget (no timing in the official loop)")
    ap.add_argument("--rescore-repeats", type=int, default=3)
    ap.add_argument("--only", choices=["imagenet", "cifar"], default=None)
    ap.add_argument("--json", type=str, default=None, help="also write the rows to this JSON file")
    ap.add_argument("--zennas-dir", default=None, help="a checkout of https://github.com/idstcv/ZenNAS: the official "
                    "loop scores with the official code (default: zen_score_reference, the same loop on our modules)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.zennas_dir:
        from check_zen_official import load_official

        load_official(args.zennas_dir)  # a one-line error now, not after the zendeploy runs

    predictor = None
    if not args.no_latency:
        if args.table:
            from zendeploy.latency import load_predictor

            predictor = load_predictor(args.table)
        else:
            predictor = StandInPredictor()
    lat = None if args.no_latency else 1e6  # loose: the budget exists (so the official loop times), never binds
    if args.table and not args.no_latency:  # a table refuses budgets beyond what it covers: its slowest network
        cov = getattr(predictor, "coverage", None) or predictor.table.coverage
        lat = cov.network_latency_ms[1] / predictor.table.provenance.batch

    settings = []
    if args.only in (None, "imagenet"):  # scripts/Zen_NAS_ImageNet_flops400M.sh: 400M FLOPs, 14 layers
        settings.append(("mobilenet@224 (400M MACs, 14 layers)", "mobilenet", "imagenet", 224,
                         Budgets(macs=400_000_000, layers=14, latency_ms=lat), args.evals[0], args.population[0],
                         args.proxy_batch[0], 1000))
    if args.only in (None, "cifar"):  # scripts/Zen_NAS_cifar_params1M.sh: 1M params, 18 layers, 100 classes
        settings.append(("resnet@32 (1M params, 18 layers)", "resnet", "cifar", 32,
                         Budgets(params=1_000_000, layers=18, latency_ms=lat), args.evals[1], args.population[1],
                         args.proxy_batch[1], 100))
    rows = []
    for name, space, ds, res, budgets, evals, pop, bs, classes in settings:
        print(f"{name}: {evals} evaluations per method, population {pop}, Zen batch {bs}", file=sys.stderr)
        for seed in args.seeds:
            rows += run_setting(name, space, ds, res, budgets, evals=evals, population=pop, batch_size=bs,
                                seed=seed, workers=args.workers, step=args.step, predictor=predictor,
                                time_latency=not args.no_latency, rescore_repeats=args.rescore_repeats,
                                num_classes=classes, zennas_dir=args.zennas_dir)

    lat_note = ("no latency budget" if args.no_latency else
                f"latency: zendeploy/random {'table ' + args.table if args.table else 'stand-in predictor'}, "
                f"official loop times every candidate (CPU fp32)")
    print(f"\nbench_search: seeds {args.seeds}, workers {args.workers}, step {args.step}, {lat_note}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)\n")

    def ms(xs, fmt):
        if len(xs) == 1:
            return format(xs[0], fmt)
        return f"{format(statistics.mean(xs), fmt)}±{format(statistics.stdev(xs), fmt)}"

    head = (f"{'setting':<38} {'method':<14} {'evals':>5} {'children':>9} {'time s':>8} {'evals/s':>8} "
            f"{'child/s':>8} {'best (found)':>14} {'best (rescored)':>16} {'params':>8} {'MACs':>8}")
    print(head)
    print("-" * len(head))
    groups: dict = {}
    for r in rows:
        groups.setdefault((r.setting, r.method), []).append(r)
    for (setting, method), rs in groups.items():
        secs = sum(r.seconds for r in rs)
        print(f"{setting:<38} {method:<14} {rs[0].evaluations:>5} {ms([r.iterations for r in rs], '.0f'):>9} "
              f"{ms([r.seconds for r in rs], '.1f'):>8} {sum(r.evaluations for r in rs) / secs:>8.2f} "
              f"{sum(r.iterations for r in rs) / secs:>8.1f} {ms([r.best_score for r in rs], '.2f'):>14} "
              f"{ms([r.rescored for r in rs], '.2f'):>16} {statistics.mean(r.params for r in rs) / 1e6:>7.3f}M "
              f"{statistics.mean(r.macs for r in rs) / 1e6:>7.1f}M")
    print()
    for setting in dict.fromkeys(r.setting for r in rows):
        by = {m: rs for (st, m), rs in groups.items() if st == setting}

        def rate(rs, key):
            return sum(getattr(r, key) for r in rs) / sum(r.seconds for r in rs)

        ours, off, rnd = by["zendeploy"], by["official loop"], by["random"]
        mean = lambda rs: statistics.mean(r.rescored for r in rs)  # noqa: E731
        wins = sum(o.rescored >= f.rescored for o, f in zip(ours, off))
        print(f"{setting}: zendeploy {rate(ours, 'evaluations') / rate(off, 'evaluations'):.2f}x the official "
              f"loop's evaluations/s ({rate(ours, 'iterations') / rate(off, 'iterations'):.2f}x children/s); "
              f"best re-scored {mean(ours):.2f} vs official {mean(off):.2f} vs random {mean(rnd):.2f} "
              f"(zendeploy >= official in {wins}/{len(ours)} seeds)")
        for r in off:
            print(f"  seed run: official loop {r.notes}")
        for r in ours:
            print(f"  seed run: zendeploy {r.notes}")
    if args.json:
        Path(args.json).write_text(json.dumps([{**r.__dict__, "evals_per_s": r.evals_per_s,
                                                 "children_per_s": r.children_per_s} for r in rows], indent=2))


if __name__ == "__main__":
    main()
