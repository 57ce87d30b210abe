"""Device-side latency runners for zendeploy.

This package is deliberately standalone: it needs only the standard library, numpy and the
runtime of the backend being measured (onnxruntime, ai-edge-litert, TensorRT + cuda-python, or
an ``adb`` binary), each imported lazily inside the function that uses it. It never imports
PyTorch or the ``zendeploy`` package, so the ``profilers/`` folder can be copied on its own to a
T4 box or a phone host and run there (``python -m profilers.<backend> --help``).

Layout:

* :mod:`profilers.common` -- :class:`TimingStats`, :class:`ProfilerError`, the warm-up/repeat
  timing loop, the environment fingerprint, atomic JSON / JSONL writing and the resumable
  manifest runner used by every backend's command line;
* :mod:`profilers.onnxruntime.run` -- onnxruntime CPUExecutionProvider;
* :mod:`profilers.litert.run` -- LiteRT (TFLite) interpreter, per signature;
* :mod:`profilers.litert.adb` / :mod:`profilers.litert.parse` -- TFLite ``benchmark_model`` on an
  Android phone over adb, and the parser of its output;
* :mod:`profilers.tensorrt.run` / :mod:`profilers.tensorrt.parse` -- TensorRT Python API with CUDA
  events, or ``trtexec``, and the parsers of trtexec's summary and ``--exportTimes`` JSON.

Every number these runners return is in milliseconds.
"""

from profilers.common import ProfilerError, TimingStats

__all__ = ["ProfilerError", "TimingStats"]
__version__ = "0.1.0"
