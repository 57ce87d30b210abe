"""``python -m profilers.onnxruntime --manifest m.json --output results.jsonl``."""

import sys

from profilers.onnxruntime.run import main

if __name__ == "__main__":
    sys.exit(main())
