"""Anytime benchmark of the search strategies: the best network found after N evaluations, re-scored fairly.

For every setting, strategy and seed it runs one search capped at the largest N (``max_evaluations``), then, for each
N, takes the best-scoring network among the first N evaluations (the search's own single-draw scores, in the order
they were computed) and re-scores it with ``--rescore-repeats`` fresh draws (seeds the search never used; the mean).
A best-of-run is the maximum of noisy single draws; the re-score is what the network is worth. It prints, per
setting and N, the median and the min..max over seeds of each strategy, and saves a PNG of median re-scored
Zen-Score against evaluations (with the spread shaded) and the raw results as JSON.

Settings:

- ``cifar``: the official CIFAR 1M setting: resnet space at 32x32, params <= 1M (100 classes), <= 18 layers,
  population 64, Zen-Score at batch 16; the reference line is ``zennet_cifar100_model_size1M_res32`` re-scored the
  same way.
- ``imagenet``: mobilenet space at 224x224, MACs <= 400M, the space's layer budget, population 64, Zen-Score at
  batch 4 (what this host affords: ~0.3 s per score at 400M MACs); reference ``zennet_imagenet1k_flops400M_SE_res224``
  (its SE is counted in MACs; the space searches without SE, so the reference is a guide, not a target).
- ``cifar-latency``: the cifar setting with a latency budget from the shipped ONNX Runtime CPU table instead of the
  params budget: the table's prediction for the reference ZenNet.

For a setting with a latency table, ``--measure-top K`` (default 5) closes the loop the way ``zendeploy search``
does: after all searches end (so the timings do not share the cores with a search), the K best-scoring networks of
every point are timed end to end on the table's backend with the table's statistic (cached in
``<out>/measured.jsonl``), and the point's *closed-loop* network is the best-scoring of them that meets the budget as
measured, re-scored like the rest. The summary then shows how often the best network is over the budget as measured
and the Zen-Score of what the closed loop ships.

Every finished run is appended to ``<out>/runs.jsonl`` as it ends, so an interrupted benchmark resumes.

    python tools/bench_anytime.py --settings cifar imagenet --seeds 5 --evals 250 500 1000 --jobs 2
    python tools/bench_anytime.py --settings cifar-latency --seeds 5 --evals 250 500 1000 --jobs 2 --measure-top 5
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STRATEGIES = ("budget-aware", "official", "random")
RESCORE_SEED = 10_000  # fresh draws: the search's candidate seeds are SHA-256 derived, never this small range


TABLE_ENV = "ZENDEPLOY_BENCH_TABLE"  # --table, seen by the spawned search processes too


def settings(name: str) -> dict:
    table = os.environ.get(TABLE_ENV) or ROOT / "latency_tables" / "cpu-onnxruntime-fp32-b1-resnet-r32.json"
    base = {
        "cifar": dict(space="resnet", resolution=32, num_classes=100, budgets=dict(params=1_000_000, layers=18),
                      batch_size=16, reference="zennet_cifar100_model_size1M_res32"),
        "imagenet": dict(space="mobilenet", resolution=224, num_classes=1000, budgets=dict(macs=400_000_000),
                         batch_size=4, reference="zennet_imagenet1k_flops400M_SE_res224"),
        "cifar-latency": dict(space="resnet", resolution=32, num_classes=100, budgets=dict(layers=18),
                              batch_size=16, reference="zennet_cifar100_model_size1M_res32", table=str(table)),
    }
    if name not in base:
        raise SystemExit(f"unknown setting '{name}' (valid: {', '.join(base)})")
    return base[name]


def _latency_budget(cfg: dict) -> float:
    from zendeploy.builder import resolve
    from zendeploy.latency import load_predictor

    pred = load_predictor(cfg["table"])
    r = resolve(cfg["reference"])
    return float(pred.predict(r.blocks, cfg["resolution"], se=r.se, num_classes=cfg["num_classes"]).latency_ms)


def _predicted_ms(predictor, structure: str, cfg: dict) -> float:
    from zendeploy.space.structure import parse_structure

    return float(predictor.predict(parse_structure(structure), cfg["resolution"],
                                   num_classes=cfg["num_classes"]).latency_ms)


def rescore(structure: str, cfg: dict, repeats: int) -> float:
    from zendeploy.proxies import compute_proxy

    kw = dict(resolution=cfg["resolution"], batch_size=cfg["batch_size"], num_classes=cfg["num_classes"])
    vals = [compute_proxy("zen", structure, seed=RESCORE_SEED + i, **kw).score for i in range(repeats)]
    return float(statistics.mean(vals))


def run_one(job: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from zendeploy.search import Budgets, run_search

    cfg = settings(job["setting"])
    budgets = dict(cfg["budgets"])
    predictor = None
    if "table" in cfg:
        from zendeploy.latency import load_predictor

        predictor = load_predictor(cfg["table"])
        budgets["latency_ms"] = job["latency_ms"]
        budgets["latency_margin"] = job.get("latency_margin", 0.0)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run_search(cfg["space"], Budgets(**budgets), resolution=cfg["resolution"], num_classes=cfg["num_classes"],
                   population=64, iterations=50 * job["evals"], max_evaluations=job["evals"],
                   batch_size=cfg["batch_size"], seed=job["seed"], strategy=job["strategy"], predictor=predictor,
                   out_dir=Path(tmp) / "run", plot=False, checkpoint_every=1e9)
        scores = json.loads((Path(tmp) / "run" / "checkpoint.json").read_text())["scores"]
    search_seconds = time.perf_counter() - t0
    order = [(s, e["score"]) for s, e in scores.items() if e.get("valid", True)]
    points = []
    cache: dict[str, float] = {}
    for n in job["checkpoints"]:
        first = [x for x in order[:n] if x[1] == x[1]]  # drop NaN
        if not first:
            continue
        ranked = sorted(first, key=lambda x: -x[1])
        best, raw = ranked[0]
        if best not in cache:
            cache[best] = rescore(best, cfg, job["repeats"])
        point = {"evaluations": min(n, len(order)), "best_raw": raw, "rescored": cache[best], "structure": best}
        if predictor is not None:  # the top-k the closed loop would measure, in score order, with predictions
            point["top"] = [{"structure": s, "raw": v, "predicted_ms": _predicted_ms(predictor, s, cfg)}
                            for s, v in ranked[:job.get("top", 5)]]
        points.append(point)
    return {**job, "points": points, "evaluations_done": len(scores), "search_seconds": round(search_seconds, 1),
            "seconds_per_evaluation": round(search_seconds / max(len(scores), 1), 4)}


def _reference_structure(cfg: dict) -> str:
    from zendeploy.builder import resolve
    from zendeploy.space.structure import format_structure

    return format_structure(resolve(cfg["reference"]).blocks)


def measure_tops(results: list[dict], setting: str, cache_path: Path) -> dict[str, float]:
    """End-to-end ms per image of every network in the points' top-k of ``setting``, on the table's backend with the
    table's settings and statistic; cached in ``cache_path`` (one JSON line per network, appended as measured)."""
    from zendeploy.latency import load_predictor
    from zendeploy.latency.backends import backend_for
    from zendeploy.latency.profile import measure_networks
    from zendeploy.space.structure import parse_structure

    cfg = settings(setting)
    cache: dict[str, float] = {}
    if cache_path.exists():
        for line in cache_path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                if r["setting"] == setting and r.get("table", str(cfg["table"])) == str(cfg["table"]):
                    cache[r["structure"]] = r["measured_ms"]  # measured with this table's backend on this host
    wanted = sorted(({t["structure"] for r in results if r["setting"] == setting
                      for p in r["points"] for t in p.get("top", ())} | {_reference_structure(cfg)}) - set(cache))
    if not wanted:
        return cache
    table = load_predictor(cfg["table"]).table
    prov, backend = table.provenance, backend_for(table)
    print(f"{setting}: timing {len(wanted)} network(s) end to end on {prov.device} ({len(cache)} cached)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(0, len(wanted), 10):  # in chunks, each appended as it ends: an interrupted run resumes
            chunk = wanted[i:i + 10]
            per_batch = measure_networks(backend, [parse_structure(x) for x in chunk], cfg["resolution"],
                                         num_classes=cfg["num_classes"], workdir=Path(tmp), seed=i)
            with cache_path.open("a") as f:
                for x, v in zip(chunk, per_batch):
                    cache[x] = v / backend.batch
                    f.write(json.dumps({"setting": setting, "structure": x, "measured_ms": cache[x],
                                        "table": str(cfg["table"])}) + "\n")
    return cache


def closed_loop(point: dict, measured: dict[str, float], budget: float) -> dict | None:
    """The closed loop's decision for one point, made by the search's own ``measure_candidates`` on the cached
    measurements: the best-scoring of its top-k that meets ``budget`` as measured (None when the point has no top-k
    or none of it was measured)."""
    from types import SimpleNamespace

    from zendeploy.search import Budgets
    from zendeploy.search.report import measure_candidates
    from zendeploy.space.structure import format_structure

    top = [t for t in point.get("top", ()) if t["structure"] in measured]
    if not top:
        return None

    def cached(networks, resolution, *, se=False):
        return [measured[format_structure(b)] for b in networks]

    d = measure_candidates(cached, [SimpleNamespace(structure=t["structure"], latency_ms=t.get("predicted_ms"))
                                    for t in top], resolution=0, se=False, budgets=Budgets(latency_ms=budget),
                           best=SimpleNamespace(structure=point["structure"]))
    pick = d["chosen_structure"] if d["chosen_meets_budget_measured"] else None
    best_ms = measured.get(point["structure"])
    return {"best_measured_ms": best_ms, "best_over": best_ms is not None and best_ms > budget, "pick": pick,
            "pick_rank": [t["structure"] for t in top].index(pick) if pick else None,
            "pick_measured_ms": measured[pick] if pick else None}


def _summary(results: list[dict], setting: str, strategy: str, n: int) -> list[float]:
    vals = []
    for r in results:
        if r["setting"] == setting and r["strategy"] == strategy:
            pts = [p for p in r["points"] if p["evaluations"] == n]
            if pts:
                vals.append(pts[0]["rescored"])
    return vals


def _print_closed_loop(results: list[dict], setting: str, budget: float, args, measured: dict[str, float]) -> dict:
    """Print and return, per strategy and N: how many best networks are over the budget as measured, and the
    re-scored Zen-Score of the closed loop's choice (median, min..max over seeds)."""
    cfg = settings(setting)
    ref_ms = measured.get(_reference_structure(cfg))
    print(f"{'':12s} as measured end to end (top-{args.measure_top} per point; closed loop = best-scoring of them "
          f"that meets {budget:.3f} ms as measured; {cfg['reference']} measures {ref_ms:.3f} ms):")
    print(f"{'evaluations':>12s}" + "".join(f"{s:>30s}" for s in args.strategies))
    rescored: dict[str, float] = {}
    out: dict = {"budget_ms": budget, "reference_measured_ms": ref_ms, "rows": {}}
    for n in args.evals:
        cells = []
        for strategy in args.strategies:
            over, total, vals, ratios = 0, 0, [], []
            for r in results:
                if r["setting"] != setting or r["strategy"] != strategy:
                    continue
                p = next((q for q in r["points"] if q["evaluations"] == n), None)
                d = closed_loop(p, measured, budget) if p else None
                if d is None:
                    continue
                total += 1
                over += int(d["best_over"])
                if d["best_measured_ms"]:
                    ratios.append(d["best_measured_ms"] / budget)
                if d["pick"] is not None:
                    if d["pick"] not in rescored:
                        rescored[d["pick"]] = p["rescored"] if d["pick"] == p["structure"] else \
                            rescore(d["pick"], cfg, args.rescore_repeats)
                    vals.append(rescored[d["pick"]])
                p["closed_loop"] = {**d, "rescored": rescored.get(d["pick"]) if d["pick"] else None}
            out["rows"].setdefault(str(n), {})[strategy] = {"over": over, "runs": total, "picked": vals,
                                                          "best_measured_over_budget": ratios}
            cells.append(f"{statistics.median(vals):6.1f} ({min(vals):.1f}..{max(vals):.1f}) over {over}/{total}"
                         if vals else (f"- over {over}/{total}" if total else "-"))
        if any(c != "-" for c in cells):
            print(f"{n:12d}" + "".join(f"{c:>30s}" for c in cells))
    return out


def plot(results: list[dict], refs: dict, out: Path, evals: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r["setting"] for r in results})
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    for ax, setting in zip(axes[0], names):
        for strategy in STRATEGIES:
            xs, med, lo, hi = [], [], [], []
            for n in evals:
                v = _summary(results, setting, strategy, n)
                if v:
                    xs.append(n)
                    med.append(statistics.median(v))
                    lo.append(min(v))
                    hi.append(max(v))
            if xs:
                line, = ax.plot(xs, med, marker="o", label=strategy)
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
        if setting in refs:
            ax.axhline(refs[setting][1], color="k", ls="--", lw=1, label=refs[setting][0])
        ax.set_xscale("log")
        ax.set_xlabel("evaluations (proxy scores)")
        ax.set_ylabel("best network's Zen-Score (mean of fresh draws)")
        ax.set_title(setting)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", nargs="+", default=["cifar", "imagenet"])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--evals", type=int, nargs="+", default=[250, 500, 1000, 2000, 5000, 10000],
                    help="the evaluation counts reported; each run goes to the largest")
    ap.add_argument("--max-evals", type=json.loads, default={},
                    help='per setting and strategy, a smaller largest N, e.g. \'{"imagenet": 500}\'')
    ap.add_argument("--rescore-repeats", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 1)))
    ap.add_argument("--measure-top", type=int, default=5,
                    help="settings with a latency table: time the K best networks of every point end to end after "
                         "the searches and report the closed loop's choice (0: off)")
    ap.add_argument("--latency-margin", type=float, default=0.0,
                    help="settings with a latency table: the search's --latency-margin (sigmas of the prediction); give "
                         "it its own --out (finished runs are reused by setting, strategy and seed)")
    ap.add_argument("--table", type=Path, default=None,
                    help="cifar-latency: the latency table (default: the shipped ONNX Runtime CPU ResNet 32 table); "
                         "on a host other than the table's, give a copy anchored here (zendeploy latency anchor -o)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_anytime")
    args = ap.parse_args()
    if args.table is not None:
        os.environ[TABLE_ENV] = str(args.table.resolve())
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "runs.jsonl"
    done = {}
    if log.exists():
        for line in log.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[(r["setting"], r["strategy"], r["seed"], r["evals"])] = r

    refs, latency, loops = {}, {}, {}
    for setting in args.settings:
        cfg = settings(setting)
        refs[setting] = (cfg["reference"], rescore(cfg["reference"], cfg, args.rescore_repeats))
        if "table" in cfg:
            latency[setting] = _latency_budget(cfg)
    jobs = []
    for setting in args.settings:
        cap = args.max_evals.get(setting, max(args.evals))
        checkpoints = [n for n in args.evals if n <= cap]
        for strategy in args.strategies:
            for seed in range(args.seeds):
                key = (setting, strategy, seed, max(checkpoints))
                if key in done:
                    continue
                jobs.append(dict(setting=setting, strategy=strategy, seed=seed, evals=max(checkpoints),
                                 checkpoints=checkpoints, repeats=args.rescore_repeats,
                                 latency_ms=latency.get(setting), top=max(args.measure_top, 1),
                                 latency_margin=args.latency_margin))
    jobs.sort(key=lambda j: -j["evals"])  # longest first: the pool finishes together
    print(f"{len(jobs)} run(s) to do, {len(done)} done earlier; {args.jobs} at a time", flush=True)
    results = list(done.values())
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(args.jobs, maxtasksperchild=1) as pool:
        for r in pool.imap_unordered(run_one, jobs):
            results.append(r)
            with log.open("a") as f:
                f.write(json.dumps(r) + "\n")
            last = r["points"][-1]
            print(f"  {r['setting']:13s} {r['strategy']:12s} seed {r['seed']}: {last['rescored']:.1f} after "
                  f"{last['evaluations']} evaluations ({r['seconds_per_evaluation']:.2f} s each)", flush=True)

    results = [r for r in results if r["setting"] in args.settings]
    print()
    for setting in args.settings:
        ref_name, ref = refs[setting]
        extra = f", latency budget {latency[setting]:.3f} ms (the table's prediction for it)" \
            if setting in latency else ""
        print(f"{setting}: median (min..max) over seeds of the best network's Zen-Score, re-scored as the mean of "
              f"{args.rescore_repeats} fresh draws; reference {ref_name} = {ref:.1f}{extra}")
        header = f"{'evaluations':>12s}" + "".join(f"{s:>24s}" for s in args.strategies)
        print(header)
        for n in args.evals:
            cells = []
            for strategy in args.strategies:
                v = _summary(results, setting, strategy, n)
                cells.append(f"{statistics.median(v):6.1f} ({min(v):.1f}..{max(v):.1f}) n={len(v)}" if v else "-")
            if any(c != "-" for c in cells):
                print(f"{n:12d}" + "".join(f"{c:>24s}" for c in cells))
        secs = [r["seconds_per_evaluation"] for r in results if r["setting"] == setting]
        if secs:
            print(f"{'':12s} median {statistics.median(secs):.2f} s per evaluation (search time / evaluations)")
        if setting in latency and args.measure_top > 0:
            loops[setting] = _print_closed_loop(results, setting, latency[setting], args,
                                                measure_tops(results, setting, args.out / "measured.jsonl"))
        print()
    plot(results, refs, args.out / "anytime.png", args.evals)
    (args.out / "summary.json").write_text(json.dumps({"references": refs, "latency_budgets": latency,
                                                        "closed_loop": loops, "results": results}, indent=1))
    print(f"wrote {args.out / 'anytime.png'} and {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
