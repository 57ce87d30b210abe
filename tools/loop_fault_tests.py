"""Run the suite's fault-injection tests (``-m fault``) many times in a row, optionally under CPU load, and print a
table of passes per test: the evidence that no fault test can flake.

    python tools/loop_fault_tests.py --runs 20 --load 2

``--load N`` keeps N busy-looping processes running for the whole loop (what a shared CI host looks like). Every
run is a fresh pytest process, so each one pays Ray's start-up again, as CI does.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _burn() -> None:  # pragma: no cover - a load generator
    while True:
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--load", type=int, default=0, help="busy processes running alongside (default 0)")
    ap.add_argument("-k", default=None, help="pytest -k expression to narrow the tests")
    args = ap.parse_args()

    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    passed, failed, seconds = Counter(), Counter(), []
    try:
        for run in range(1, args.runs + 1):
            cmd = [sys.executable, "-m", "pytest", "-m", "fault", "-q", "-rA", "-p", "no:cacheprovider"]
            if args.k:
                cmd += ["-k", args.k]
            t0 = time.perf_counter()
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            seconds.append(time.perf_counter() - t0)
            for status, test in re.findall(r"^(PASSED|FAILED|ERROR) (\S+)", out.stdout, re.M):
                (passed if status == "PASSED" else failed)[test] += 1
            bad = [t for t in failed]
            print(f"run {run}/{args.runs}: rc {out.returncode}, {seconds[-1]:.0f} s"
                  + (f", failing so far: {', '.join(bad)}" if bad else ""), flush=True)
            if out.returncode not in (0,):  # keep the whole output of a failing run for diagnosis
                log = ROOT / "runs" / f"fault-run-{run}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(out.stdout + "\n" + out.stderr)
                failures = re.findall(r"^(?:E  .*|FAILED .*)$", out.stdout, re.M)
                print("\n".join(failures[:20]) + f"\nfull output: {log}", file=sys.stderr)
    finally:
        for b in burners:
            b.terminate()
    tests = sorted(set(passed) | set(failed))
    print(f"\n{args.runs} runs, load {args.load} busy process(es), median {sorted(seconds)[len(seconds) // 2]:.0f} s "
          f"per run\n")
    print("| test | passed | failed |\n|---|---|---|")
    for t in tests:
        print(f"| `{t}` | {passed[t]}/{args.runs} | {failed[t]} |")
    return 0 if not failed and tests else 1


if __name__ == "__main__":
    sys.exit(main())
