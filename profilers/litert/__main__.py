"""``python -m profilers.litert --manifest m.json --output results.jsonl``."""

import sys

from profilers.litert.run import main

if __name__ == "__main__":
    sys.exit(main())
