#!/usr/bin/env python
"""Seconds per Zen-Score with glibc's default allocator settings and with ``reuse_freed_memory`` (zendeploy's).

The setting is process-wide, so every measurement is its own process: for each net and resolution, ``--rounds``
rounds each start one process per setting (the order alternates every round), and each process scores the net
``--repeats`` times after one warm-up (1 torch thread, batch 16, the fast path) and reports its median. The table
gives the median over rounds of those medians for both settings and their ratio (default / tuned), plus, with
``--zennas-dir``, the official ZenNAS code (``PlainNet`` + ``compute_nas_score``, as its search calls them) in the
default setting, and the ratio official / zendeploy-as-shipped (tuned).

    python tools/bench_allocator.py                       # ZenNet-1M at 32, ZenNet-400M at 32 and 224
    python tools/bench_allocator.py --zennas-dir ~/ZenNAS --rounds 5

A shared host is noisy: trust ratios from the same run, and rounds over single timings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASES = ("zennet_cifar10_model_size1M_res32@32", "zennet_imagenet1k_flops400M_SE_res224@32",
                 "zennet_imagenet1k_flops400M_SE_res224@224")
MODES = ("default", "tuned", "official")


def child(args) -> int:
    """One process: apply the setting, warm up, time ``repeats`` scores, print the median as JSON."""
    sys.path.insert(0, str(ROOT))
    import torch

    torch.set_num_threads(1)
    if args.mode == "tuned":
        from zendeploy.proxies.allocator import reuse_freed_memory

        if not reuse_freed_memory():
            print(json.dumps({"error": "the allocator settings could not be applied here"}))
            return 1
    from zendeploy.builder import resolve
    from zendeploy.proxies.base import repeat_generator
    from zendeploy.proxies.zen import zen_score_fast

    name, res = args.case.split("@")
    r = resolve(name)
    if args.mode == "official":
        sys.path.insert(0, str(ROOT / "tools"))
        from bench_proxies import official_scorer
        from check_zen_official import load_official

        from zendeploy.zoo import get_zoo

        fn = official_scorer(load_official(args.zennas_dir), get_zoo(name), int(res), args.batch_size, 0)
    else:
        def fn(i):
            return zen_score_fast(r.blocks, resolution=int(res), batch_size=args.batch_size,
                                  generator=repeat_generator(0, i), num_classes=r.num_classes)
    fn(0)
    times = []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"median_s": statistics.median(times)}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="*", default=list(DEFAULT_CASES), help="zoo name@resolution")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--zennas-dir", default=None, help="a checkout of https://github.com/idstcv/ZenNAS")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", choices=MODES, default="default", help=argparse.SUPPRESS)
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    if args.rounds < 1 or args.repeats < 1:
        print("error: --rounds and --repeats must be positive", file=sys.stderr)
        return 2
    for case in args.cases:
        if "@" not in case or not case.split("@")[1].isdigit():
            print(f"error: --cases takes zoo name@resolution, got '{case}'", file=sys.stderr)
            return 2
    if args.zennas_dir:
        sys.path.insert(0, str(ROOT / "tools"))
        from check_zen_official import load_official

        load_official(args.zennas_dir)  # a one-line error now rather than in every child
    modes = list(MODES) if args.zennas_dir else ["default", "tuned"]
    env = {k: v for k, v in os.environ.items() if k != "ZENDEPLOY_MALLOC"}
    print("NOTE: shared, noisy machine: each cell is the median over rounds of one process's median; compare the "
          "ratios from this run.")
    rows = []
    for case in args.cases:
        got: dict[str, list[float]] = {m: [] for m in modes}
        for rnd in range(args.rounds):
            for mode in (modes if rnd % 2 == 0 else list(reversed(modes))):
                cmd = [sys.executable, __file__, "--child", "--mode", mode, "--case", case, "--repeats",
                       str(args.repeats), "--batch-size", str(args.batch_size)]
                if args.zennas_dir:
                    cmd += ["--zennas-dir", args.zennas_dir]
                out = subprocess.run(cmd, capture_output=True, text=True, env=env)
                result = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}
                if out.returncode or "median_s" not in result:
                    print(f"error: {case} ({mode}): {result.get('error') or out.stderr.strip().splitlines()[-1:]}",
                          file=sys.stderr)
                    return 1
                got[mode].append(result["median_s"])
        med = {m: statistics.median(v) for m, v in got.items()}
        rows.append((case, med))
        extra = f", official {med['official']:.3f} s ({med['official'] / med['tuned']:.2f}x)" if "official" in med \
            else ""
        print(f"  {case}: default {med['default']:.3f} s, tuned {med['tuned']:.3f} s "
              f"({med['default'] / med['tuned']:.2f}x){extra}", flush=True)
    header = "| net@res | default s | tuned s | default / tuned |" + (" official s | official / tuned |"
                                                                        if args.zennas_dir else "")
    print()
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for case, med in rows:
        cells = [f"{med['default']:.3f}", f"{med['tuned']:.3f}", f"{med['default'] / med['tuned']:.2f}x"]
        if "official" in med:
            cells += [f"{med['official']:.3f}", f"{med['official'] / med['tuned']:.2f}x"]
        print(f"| {case} | " + " | ".join(cells) + " |")
    print(f"\n{args.rounds} rounds x {args.repeats} timed scores per process, batch {args.batch_size}, 1 thread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
