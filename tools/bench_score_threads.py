"""How ``zendeploy score`` depends on torch's thread count, on an idle and on a busy host.

For each thread count (default 1 and 2) and each load (0 and 1 busy-looping processes beside it) it scores a
network ``--repeats`` times (seeds 0..R-1; Zen-Score at batch 16) and prints the median seconds per score, the ratio
against 1 thread in the same load, and the largest difference of the scores from the 1-thread scores (the thread
count changes the order of floating-point sums, and the Zen-Score, a log of small differences, shows it).

    python tools/bench_score_threads.py --zoo zennet_cifar100_model_size1M_res32 --threads 1 2 --loads 0 1
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _burn() -> None:  # pragma: no cover - a load generator
    while True:
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", default="zennet_cifar100_model_size1M_res32")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--loads", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()

    import torch

    from zendeploy.proxies import compute_proxy

    compute_proxy("zen", args.zoo, batch_size=args.batch_size, seed=0)  # warm-up (imports, allocator)
    rows = []
    for load in args.loads:
        burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(load)]
        for p in burners:
            p.start()
        try:
            base_t, base_scores = None, None
            for th in args.threads:
                torch.set_num_threads(th)
                times, scores = [], []
                for seed in range(args.repeats):
                    t0 = time.perf_counter()
                    scores.append(compute_proxy("zen", args.zoo, batch_size=args.batch_size, seed=seed).score)
                    times.append(time.perf_counter() - t0)
                med = statistics.median(times)
                if base_t is None:
                    base_t, base_scores = med, scores
                diff = max(abs(a - b) for a, b in zip(scores, base_scores))
                rows.append((load, th, med, med / base_t, diff, statistics.mean(scores)))
        finally:
            for p in burners:
                p.terminate()
    print(f"{args.zoo}, Zen-Score at batch {args.batch_size}, {args.repeats} seeds; "
          f"ratio = median seconds / the first thread count's, same load")
    print(f"{'busy procs':>10s} {'threads':>8s} {'median s':>9s} {'ratio':>6s} {'max |score diff|':>17s} {'mean score':>11s}")
    for load, th, med, ratio, diff, mean in rows:
        print(f"{load:10d} {th:8d} {med:9.3f} {ratio:6.2f} {diff:17.4f} {mean:11.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
