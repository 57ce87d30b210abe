"""``python -m profilers.tensorrt --mode api|trtexec --manifest m.json --output results.jsonl``."""

import sys

from profilers.tensorrt.run import main

if __name__ == "__main__":
    sys.exit(main())
