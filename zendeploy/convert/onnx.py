"""PyTorch -> ONNX: one self-contained, checked file with BatchNorm folded, for any ``nn.Module``.

    >>> from zendeploy.convert.onnx import export_onnx
    >>> export_onnx(model, "model.onnx", input_shape=(1, 3, 224, 224), metadata={"structure": s})

Exporter choice: the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``). Measured with torch 2.13
on this project's 2-core CI box: about 0.1-0.2 s for a whole tiny ZenNet and 10-35 ms (median 26 ms) for one
latency unit, against about 5 s for the tiny ZenNet with the ``torch.export``-based (dynamo) exporter, which also
failed to convert its opset-18 graph down to the requested opset 17 and wrote the weights to a ``.data`` side file.
In eval mode (``training=TrainingMode.EVAL``) the TorchScript exporter folds each BatchNorm into the preceding
convolution and constant-folds the rest; the function checks the result holds no ``BatchNormalization`` node.
PyTorch marks that exporter deprecated; its deprecation warnings are silenced here and the choice is documented so
it can be revisited when it is removed.

The file is written atomically (temporary file + ``os.replace``) after ``onnx.checker.check_model(full_check=True)``
passed; models over 2 GB (protobuf's limit; no official ZenNet comes close, and the latency samplers never draw
one: `latency.sampling.MAX_EXPORTABLE_PARAMS`) are refused rather than split into side files.
Provenance goes into ``metadata_props`` (string to string): zendeploy and torch versions, date, plus ``metadata``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from ..errors import ExportError, require
from ..io import atomic_write_bytes
from .common import check_shape, eval_mode, provenance, quiet

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

DEFAULT_OPSET = 17
_TWO_GB = 2 * 1024**3
_EXPORTER_WARNINGS = (
    r".*legacy TorchScript-based ONNX export.*",
    r".*The feature will be removed.*",
    r".*torch\.onnx\.dynamo_export.*",
    r".*TorchScript.*deprecated.*",
)


def export_onnx(
    model: "nn.Module",
    path: str | os.PathLike,
    *,
    input_shape: Sequence[int],
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
    input_name: str = "input",
    output_name: str = "output",
    metadata: Mapping[str, object] | None = None,
) -> Path:
    """Export ``model`` (evaluated in eval mode, float32 input of ``input_shape``) to one ONNX file at ``path``.

    ``dynamic_batch`` makes axis 0 of the input and output symbolic (``batch``). ``metadata`` values are stored as
    strings in ``metadata_props`` (non-strings JSON-encoded). Returns the path. Raises ExportError (tracing or checker
    failure, BatchNorm left in the graph, model over 2 GB) or MissingExtraError (``onnx`` not installed).
    """
    onnx = require("onnx", "onnx", "ONNX export")
    import torch

    shape = check_shape(input_shape)
    path = Path(path)
    if opset < 7:
        raise ExportError(f"opset {opset} is too old; use 13 or newer (default {DEFAULT_OPSET})")
    dynamic_axes = {input_name: {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
    buffer = io.BytesIO()
    sample = torch.zeros(shape, dtype=torch.float32)
    try:
        with eval_mode(model), torch.no_grad(), quiet(*_EXPORTER_WARNINGS):
            torch.onnx.export(
                model, (sample,), buffer, dynamo=False, opset_version=int(opset), do_constant_folding=True,  # type: ignore[arg-type]
                training=torch.onnx.TrainingMode.EVAL, input_names=[input_name], output_names=[output_name],
                dynamic_axes=dynamic_axes,
            )
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"torch.onnx.export failed for {type(model).__name__}: {_first_line(exc)}") from exc
    data = buffer.getvalue()
    if len(data) >= _TWO_GB:
        raise ExportError(f"the ONNX model is {len(data) / 1e9:.1f} GB, over protobuf's 2 GB single-file limit")
    proto = onnx.load_from_string(data)
    batch_norms = sum(node.op_type == "BatchNormalization" for node in proto.graph.node)
    if batch_norms:
        raise ExportError(
            f"{batch_norms} BatchNormalization node(s) left in the ONNX graph (a BatchNorm not preceded by a "
            f"convolution cannot be folded); fold or remove it in the module before export"
        )
    meta = provenance({"exporter": f"torch.onnx TorchScript exporter (torch {torch.__version__})",
                       "opset": str(opset), "input_shape": list(shape), **dict(metadata or {})})
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in meta.items():
        if key in existing:
            existing[key].value = value
        else:
            proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "zendeploy"
    from .. import __version__

    proto.producer_version = __version__
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ExportError(f"the exported ONNX model fails the ONNX checker: {_first_line(exc)}") from exc
    atomic_write_bytes(path, proto.SerializeToString())
    return path


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict (reads the graph, not the weights' values)."""
    onnx = require("onnx", "onnx", "reading ONNX metadata")
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
