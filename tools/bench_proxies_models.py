"""Every zero-shot proxy on whole classifiers: the ImageNet ZenNet zoo and, when torchvision is installed, standard
torchvision models, side by side, through ``zendeploy.proxies.score_module`` (the model as given, re-initialised as
each proxy's paper does).

For each model it prints every proxy's score (mean of ``--repeats``) and seconds per score, the reported ImageNet
top-1 (the zoo's for ZenNets, torchvision's weight metadata otherwise), and at the end the Spearman correlation of each
proxy with that top-1 over the set. ZenNets are scored as deployed (residual links and SE on); the column
``zen (search)`` is the Zen-Score the search computes for the same structure (plain network, no SE).

    python tools/bench_proxies_models.py --res 224 --batch-size 8 --torchvision resnet18 resnet50 mobilenet_v2 \\
        mobilenet_v3_large efficientnet_b0
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def spearman(x: list[float], y: list[float]) -> float:
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return r

    rx, ry = ranks(x), ranks(y)
    mx, my = statistics.mean(rx), statistics.mean(ry)
    num = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    den = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return num / den if den else float("nan")


def torchvision_models(names: list[str]) -> list[tuple[str, object, float | None]]:
    try:
        import torchvision.models as tvm
    except Exception as exc:  # noqa: BLE001 - not installed, or a build that does not match torch
        print(f"torchvision not available ({type(exc).__name__}): scoring the ZenNet zoo only", file=sys.stderr)
        return []
    out = []
    for name in names:
        weights = tvm.get_model_weights(name).DEFAULT
        top1 = weights.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
        out.append((name, tvm.get_model(name, weights=None), top1))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--proxies", nargs="+", default=None, help="default: every registered proxy")
    ap.add_argument("--torchvision", nargs="*", default=["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large",
                                                          "efficientnet_b0"])
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from zendeploy.builder import ZenNet
    from zendeploy.proxies import compute_proxy, list_proxies, score_module
    from zendeploy.space.structure import parse_structure
    from zendeploy.zoo import ZOO

    proxies = args.proxies or list_proxies()
    models = []
    for name in ZOO.names():
        e = ZOO.get(name)
        if e.dataset == "imagenet1k" and e.resolution == 224:
            blocks = parse_structure(e.structure)
            models.append((name, ZenNet(blocks, num_classes=e.num_classes, se=e.se), e.reported_top1, e.structure))
    models += [(n, m, t, None) for n, m, t in torchvision_models(args.torchvision)]

    rows = []
    for name, model, top1, structure in models:
        row = {"model": name, "top1": top1, "scores": {}, "seconds": {}, "valid": {}}
        for proxy in proxies:
            r = score_module(model, proxy, resolution=args.res, batch_size=args.batch_size, repeats=args.repeats)
            row["scores"][proxy], row["seconds"][proxy], row["valid"][proxy] = r.score, r.seconds / r.repeats, r.valid
            if r.components is not None:
                row.setdefault("components", {})[proxy] = r.components
        if structure is not None:
            row["zen_search"] = compute_proxy("zen", structure, resolution=args.res, batch_size=args.batch_size,
                                              repeats=args.repeats).score
        rows.append(row)
        print(f"  {name}: " + ", ".join(f"{p} {row['scores'][p]:.4g}" for p in proxies), flush=True)

    from zendeploy.proxies import get_proxy
    from zendeploy.proxies.az_nas import combine_by_rank

    for p in proxies:  # a rank-combined proxy (AZ-NAS) scores the models by their indicators' ranks in this set
        spec = get_proxy(p)
        if spec.combine == "rank":
            members = [r for r in rows if r["valid"][p]]
            for r, v in zip(members, combine_by_rank([r["components"][p] for r in members], spec.components)):
                r["scores"][p] = v
    print(f"\nevery proxy at {args.res}x{args.res}, batch {args.batch_size}, {args.repeats} repeat(s), 1 thread; "
          f"score (seconds per score)")
    head = f"{'model':40s} {'top-1':>6s} " + " ".join(f"{p:>18s}" for p in proxies) + f" {'zen (search)':>13s}"
    print(head)
    for row in rows:
        cells = " ".join(f"{row['scores'][p]:>10.4g} ({row['seconds'][p]:5.2f})" if row["valid"][p]
                         else f"{'invalid':>18s}" for p in proxies)
        zs = f"{row['zen_search']:>13.2f}" if "zen_search" in row else f"{'-':>13s}"
        top1 = f"{row['top1']:6.1f}" if row["top1"] is not None else f"{'-':>6s}"
        print(f"{row['model']:40s} {top1} {cells} {zs}")
    ranked = [r for r in rows if r["top1"] is not None]
    print(f"\nSpearman correlation with reported top-1 over {len(ranked)} models:")
    for p in proxies:
        pts = [(r["scores"][p], r["top1"]) for r in ranked if r["valid"][p]]
        rho = spearman([a for a, _ in pts], [b for _, b in pts]) if len(pts) > 2 else float("nan")
        print(f"  {p:10s} {rho:+.3f} (n={len(pts)})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
