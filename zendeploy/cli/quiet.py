"""One voice: a user of the CLI sees zendeploy's lines, not the start-up noise of the libraries under it.

A TFLite export loads TensorFlow Lite's converter and interpreter (C++ logging through absl: "All log messages
before absl::InitializeLog()", oneDNN and flatbuffer op counts, "Created TensorFlow Lite XNNPACK delegate"),
torchao ("Failed to load ..._C_cutlass_90a.abi3.so", which reads like a broken install and is not: the CUDA
kernels of a CPU wheel) and torch's pytree deprecation notices. ``third_party_quiet()`` silences them at their
source for the length of one command:

- environment variables read by the native libraries when they load (set only if the user has not set them);
- the Python loggers of those libraries raised to ERROR, and warnings from outside zendeploy ignored;
- native writes to file descriptor 2 (C++ logging never goes through Python) captured in a temporary file, while
  Python's ``sys.stderr`` (zendeploy's messages, typer's usage errors, a traceback) stays on the terminal.

What was captured is replayed on the terminal if the command dies of an unexpected error (a bug report needs it),
and ``zendeploy --verbose ...`` (or ``ZENDEPLOY_VERBOSE=1``) turns all of this off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from typing import Sequence

NATIVE_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow Lite converter / interpreter C++ logging: errors only
    "GLOG_minloglevel": "3",
    "ABSL_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": None,  # left alone: it changes numerics, only its notice is noise (captured below)
}
QUIET_LOGGERS = ("torchao", "torch", "torch.utils._pytree", "torch._dynamo", "torch.export", "absl", "jax",
                 "tensorflow", "ai_edge_litert", "litert_torch", "ai_edge_torch", "onnxscript", "ray", "filelock")


def verbose_requested(argv: Sequence[str] = ()) -> bool:
    """``--verbose`` among ``argv``, or ``ZENDEPLOY_VERBOSE=1`` in the environment."""
    return "--verbose" in argv or os.environ.get("ZENDEPLOY_VERBOSE") == "1"


@contextlib.contextmanager
def third_party_quiet(enabled: bool = True):
    if not enabled:
        yield
        return
    for key, value in NATIVE_ENV.items():
        if value is not None:
            os.environ.setdefault(key, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"zendeploy(\.|$)")

    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to protect (a closed descriptor): nothing to capture
        yield
        return
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=getattr(python_stderr, "encoding", None),
                           errors="backslashreplace")
    capture = tempfile.TemporaryFile()
    os.dup2(capture.fileno(), 2)
    failed = False
    try:
        yield
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException:
        failed = True
        raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr.close()
        sys.stderr = python_stderr
        if failed:
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            if text.strip():
                python_stderr.write("output of the libraries zendeploy called (shown because it failed):\n" + text)
                python_stderr.flush()
        capture.close()
