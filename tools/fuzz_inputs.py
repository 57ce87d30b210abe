"""Fuzz the user-facing inputs at scale: ``tests/test_fuzz.py`` with ``--examples`` cases per input kind (structure
strings, latency-table files, ``zendeploy info`` arguments); prints one line per kind with its case count and time.

    python tools/fuzz_inputs.py --examples 10000

Every case must either work or fail with one line (a ZenDeployError; exit code 1 and no traceback for the CLI).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINDS = {"structure strings": "test_structure_strings_parse_or_fail_in_one_line",
         "latency tables": "test_corrupt_tables_are_refused_in_one_line",
         "CLI arguments (info)": "test_cli_info_is_one_line_or_works"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=10_000)
    args = ap.parse_args()
    print(f"| input kind | cases | result | seconds |\n|---|---|---|---|")
    failed = 0
    for kind, test in KINDS.items():
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              f"tests/test_fuzz.py::{test}"], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "FUZZ_EXAMPLES": str(args.examples)})
        ok = out.returncode == 0
        failed += not ok
        summary = re.findall(r"(\d+ (?:passed|failed))", out.stdout)
        print(f"| {kind} | {args.examples} | {'no traceback, every failure one line' if ok else 'FAILED'} "
              f"({', '.join(summary)}) | {time.perf_counter() - t0:.0f} |", flush=True)
        if not ok:
            print(out.stdout[-3000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
