"""PyTorch module -> runtime file: the converters every stage shares (below latency, search and export).

:func:`zendeploy.convert.onnx.export_onnx` (TorchScript exporter, BatchNorm folded) and
:func:`zendeploy.convert.tflite.export_tflite` / :func:`~zendeploy.convert.tflite.export_tflite_signatures`
(litert-torch, optional NHWC I/O, fp16 / int8 weights) write a file atomically with provenance in its metadata;
:mod:`zendeploy.convert.common` holds the layout wrapper and the quiet / eval-mode contexts they share. The latency
tables convert their units with these (``zendeploy.latency.conversion``) and ``zendeploy export`` converts the found
network with them, so a profiled unit and an exported network are the same kind of file. Importing this package does
not import torch.
"""
