"""TensorRT runners: Python API + CUDA events or ``trtexec`` (:mod:`profilers.tensorrt.run`) and
the parsers of trtexec's output (:mod:`profilers.tensorrt.parse`)."""
