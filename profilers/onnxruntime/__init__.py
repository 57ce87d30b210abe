"""onnxruntime CPUExecutionProvider runner; see :mod:`profilers.onnxruntime.run`."""
